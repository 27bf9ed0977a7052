// Package control is greipsec's control socket: a small versioned API,
// JSON over HTTP on a Unix socket (the convention of Docker and
// Tailscale), that `greipsec show`, `initiate`, `terminate`, `rekey` and
// `reload` use to talk to a running `greipsec up`.
//
//	GET  /v1/status                          the gateway's Status
//	GET  /v1/tunnels/{name}                  one tunnel's TunnelStatus
//	POST /v1/tunnels/{name}/initiate?sa=ike  swanctl --initiate (sa=ike or child)
//	POST /v1/tunnels/{name}/terminate?sa=ike swanctl --terminate
//	POST /v1/tunnels/{name}/rekey?sa=child   swanctl --rekey
//	POST /v1/reload                          re-read the configuration file
//	GET  /v1/version                         the daemon's build
//
// An error is answered with a 4xx or 5xx status and {"error": "..."}; a
// command with {"message": "..."}. Who may use the socket is decided by
// its file mode: 0600 (root), or 0660 with a group (see Listen).
package control

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/greipsec/greipsec/gateway"
)

// DefaultSocket is where the control socket is when the configuration and
// the command line do not say otherwise.
const DefaultSocket = "/run/greipsec/greipsec.sock"

// Backend is what the server serves: a *gateway.Gateway for the status and
// the commands, and Reload, which re-reads the configuration file the
// daemon was started with.
type Backend interface {
	Status() gateway.Status
	TunnelStatus(name string) (gateway.TunnelStatus, error)
	Initiate(name string, target gateway.Target) (string, error)
	Terminate(name string, target gateway.Target) (string, error)
	Rekey(name string, target gateway.Target) (string, error)
	Reload() (gateway.ReloadResult, error)
}

// Message is the answer to a command.
type Message struct {
	Message string `json:"message"`
}

// ReloadAnswer is the answer to POST /v1/reload: what was done, and the
// error if the reload failed in part or whole.
type ReloadAnswer struct {
	Result gateway.ReloadResult `json:"result"`
	Error  string               `json:"error,omitempty"`
}

// VersionAnswer is the answer to GET /v1/version.
type VersionAnswer struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	GoVersion string `json:"go_version"`
}

// errorAnswer is the body of an error answer.
type errorAnswer struct {
	Error string `json:"error"`
}

// Handler returns the API's HTTP handler for b.
func Handler(b Backend) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, b.Status())
	})
	mux.HandleFunc("GET /v1/tunnels/{name}", func(w http.ResponseWriter, r *http.Request) {
		st, err := b.TunnelStatus(r.PathValue("name"))
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, http.StatusOK, st)
	})
	command := func(do func(string, gateway.Target) (string, error), def gateway.Target) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			target := def
			if s := r.URL.Query().Get("sa"); s != "" {
				var err error
				if target, err = gateway.ParseTarget(s); err != nil {
					reply(w, http.StatusBadRequest, errorAnswer{err.Error()})
					return
				}
			}
			msg, err := do(r.PathValue("name"), target)
			if err != nil {
				fail(w, err)
				return
			}
			reply(w, http.StatusOK, Message{msg})
		}
	}
	mux.HandleFunc("POST /v1/tunnels/{name}/initiate", command(b.Initiate, gateway.TargetIKE))
	mux.HandleFunc("POST /v1/tunnels/{name}/terminate", command(b.Terminate, gateway.TargetIKE))
	mux.HandleFunc("POST /v1/tunnels/{name}/rekey", command(b.Rekey, gateway.TargetChild))
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		res, err := b.Reload()
		a := ReloadAnswer{Result: res}
		code := http.StatusOK
		if err != nil {
			a.Error = err.Error()
			code = http.StatusUnprocessableEntity
		}
		reply(w, code, a)
	})
	mux.HandleFunc("GET /v1/version", func(w http.ResponseWriter, r *http.Request) {
		v, rev, gov := gateway.BuildInfo()
		reply(w, http.StatusOK, VersionAnswer{Version: v, Revision: rev, GoVersion: gov})
	})
	return mux
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// fail answers err with the status its kind calls for.
func fail(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, gateway.ErrUnknownTunnel):
		code = http.StatusNotFound
	case errors.Is(err, gateway.ErrManual), errors.Is(err, gateway.ErrState):
		code = http.StatusConflict
	case errors.Is(err, gateway.ErrClosed):
		code = http.StatusServiceUnavailable
	}
	reply(w, code, errorAnswer{err.Error()})
}

// A Server serves the API on a listener until Close.
type Server struct {
	srv  *http.Server
	l    net.Listener
	done chan struct{}
}

// Serve serves Handler(b) on l (from Listen) in a goroutine of its own.
func Serve(l net.Listener, b Backend) *Server {
	s := &Server{
		srv: &http.Server{
			Handler:           Handler(b),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			// A reload may take a few seconds: the DELETEs of the
			// removed tunnels and the start of the new ones.
			WriteTimeout:   2 * time.Minute,
			MaxHeaderBytes: 1 << 14,
		},
		l:    l,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		s.srv.Serve(l)
	}()
	return s
}

// Close stops serving, closes the listener (which removes the socket
// file) and waits for the serving goroutine.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}
