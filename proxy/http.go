package proxy

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"
)

// HTTP is an HTTP/1.1 forward proxy whose connections go out through Dialer
// (a tunnel's netstack). It serves CONNECT (RFC 9110 §9.3.6) by relaying
// bytes, and requests in absolute form ("GET http://host/path",
// RFC 9112 §3.2.2) by forwarding them with net/http's reverse proxy, which
// drops the hop-by-hop headers. The zero value is not usable: Dialer must
// be set.
//
// Failures to reach the destination answer 502 Bad Gateway, or 504 Gateway
// Timeout for a timeout; a request in another form answers 400.
type HTTP struct {
	// Dialer connects to the destinations.
	Dialer Dialer
	// Resolver resolves host names; nil refuses them (502).
	Resolver Resolver
	// Users, when not empty, requires Basic proxy authentication
	// (RFC 9110 §11.7.1, RFC 7617) with one of its user → password pairs;
	// without it the proxy answers 407.
	Users  map[string]string
	Limits Limits
	Logger *slog.Logger

	stats Stats
}

// Stats returns the proxy's counters.
func (h *HTTP) Stats() *Stats { return &h.stats }

// Serve serves HTTP proxy clients that connect to l until ctx ends or l
// fails. It then closes l and every connection, CONNECT tunnels included,
// and returns nil for ctx or the error of l.Accept.
func (h *HTTP) Serve(ctx context.Context, l net.Listener) error {
	ll := newLimitListener(l, h.Limits.maxConns(), &h.stats)
	idle := orDefault(h.Limits.IdleTimeout, DefaultTCPIdleTimeout)
	transport := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return h.dial(ctx, addr)
		},
		MaxIdleConns:          64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   h.Limits.handshakeTimeout(),
		ExpectContinueTimeout: time.Second,
	}
	defer transport.CloseIdleConnections()
	rp := &httputil.ReverseProxy{
		// Out is In with its absolute URL, less the hop-by-hop headers
		// (Proxy-Authorization and Proxy-Connection among them); no
		// X-Forwarded-For is added.
		Rewrite:      func(pr *httputil.ProxyRequest) { pr.Out.Host = pr.In.Host },
		Transport:    transport,
		ErrorHandler: h.badGateway,
		ErrorLog:     log.New(discard{}, "", 0),
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !h.authorized(r) {
				h.stats.Failed.Add(1)
				w.Header().Set("Proxy-Authenticate", `Basic realm="greipsec"`)
				http.Error(w, "proxy authentication required", http.StatusProxyAuthRequired)
				return
			}
			switch {
			case r.Method == http.MethodConnect:
				h.connect(ctx, w, r, idle)
			case r.URL.IsAbs() && r.URL.Host != "" && (r.URL.Scheme == "http" || r.URL.Scheme == "https"):
				rp.ServeHTTP(w, r)
			default:
				http.Error(w, "this is an HTTP proxy: requests must name an absolute http:// URI, or use CONNECT", http.StatusBadRequest)
			}
		}),
		ReadHeaderTimeout: h.Limits.handshakeTimeout(),
		IdleTimeout:       idle,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.New(discard{}, "", 0),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	stop := context.AfterFunc(ctx, func() {
		srv.Close()
		ll.closeAll()
	})
	defer stop()
	err := srv.Serve(ll)
	ll.closeAll()
	if ctx.Err() != nil || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// dial connects to "host:port" through Dialer, resolving a name with
// Resolver, within DialTimeout.
func (h *HTTP) dial(ctx context.Context, hostport string) (net.Conn, error) {
	host, port, err := splitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, h.Limits.dialTimeout())
	defer cancel()
	return resolveDial(ctx, h.Dialer, h.Resolver, "tcp", host, port)
}

// connect serves CONNECT: it connects to the request's authority, answers
// 200 and relays between the client's connection and the destination.
func (h *HTTP) connect(ctx context.Context, w http.ResponseWriter, r *http.Request, idle time.Duration) {
	far, err := h.dial(ctx, r.Host)
	if err != nil {
		h.badGateway(w, r, err)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		far.Close()
		http.Error(w, "cannot take over the connection", http.StatusInternalServerError)
		return
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		far.Close()
		return
	}
	c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		c.Close()
		far.Close()
		return
	}
	// Bytes the client sent after its request, before the answer.
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ := brw.Reader.Peek(n)
		if _, err := far.Write(early); err != nil {
			c.Close()
			far.Close()
			return
		}
	}
	relay(c, far, idle)
}

// badGateway answers a request whose destination could not be reached.
func (h *HTTP) badGateway(w http.ResponseWriter, r *http.Request, err error) {
	h.stats.Failed.Add(1)
	orLogger(h.Logger).Debug("HTTP proxy: destination unreachable", "host", r.Host, "err", err)
	status := http.StatusBadGateway
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		status = http.StatusGatewayTimeout
	}
	http.Error(w, "greipsec: "+r.Host+": "+err.Error(), status)
}

// authorized checks the Proxy-Authorization header when Users is set.
func (h *HTTP) authorized(r *http.Request) bool {
	if len(h.Users) == 0 {
		return true
	}
	scheme, creds, ok := strings.Cut(r.Header.Get("Proxy-Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(creds))
	if err != nil {
		return false
	}
	user, password, ok := strings.Cut(string(raw), ":")
	want, known := h.Users[user]
	return ok && known && subtle.ConstantTimeCompare([]byte(want), []byte(password)) == 1
}

// discard drops net/http's own log lines (client errors, TLS handshakes):
// per-connection noise; the proxy counts its failures instead.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
