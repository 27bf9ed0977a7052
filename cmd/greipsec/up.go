package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/greipsec/greipsec/gateway"
	"github.com/greipsec/greipsec/gateway/config"
	"github.com/greipsec/greipsec/gateway/control"
	"github.com/greipsec/greipsec/tun"
)

var upCommand = &command{
	name:  "up",
	args:  "[-c FILE] [flags]",
	short: "run the tunnels of a configuration until SIGINT or SIGTERM",
	long: `Bring up every tunnel of the configuration file: create the TUN devices,
set their addresses, MTU and routes, negotiate IKE, and run until SIGINT or
SIGTERM, then send DELETE to the peers and remove what was created. A
second SIGINT or SIGTERM exits at once.

SIGHUP, or "greipsec reload", re-reads the configuration: unchanged tunnels
keep running, new ones come up, removed ones go down, changed ones are set
up again; a configuration with a mistake changes nothing. SIGUSR1 logs the
counters. Under systemd (Type=notify) it reports READY=1 once every tunnel
is up, RELOADING=1 while reloading and STOPPING=1 when stopping.

The control socket (for show, initiate, terminate, rekey and reload) is
[control] socket of the configuration, else /run/greipsec/greipsec.sock as
root and $XDG_RUNTIME_DIR/greipsec/greipsec.sock (or, without it,
greipsec-UID/greipsec.sock in the temporary directory) as any other user;
metrics are served on [metrics] address if set.

A tunnel with inner = "netstack" and transport = "udp" (and, to need no
port below 1024, [tunnel.ike] port-500 = false) needs no privilege at all:
up runs as any user, with no capability.`,
	setup: setupUp,
}

func setupUp(fs *flag.FlagSet) runFunc {
	path := fs.String("c", defaultConfig, "configuration `file`")
	level := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	format := fs.String("log-format", "text", "log `format`: text or json")
	verbose := fs.Bool("v", false, "log at debug level (--log-level debug)")
	socket := fs.String("control", "", "control socket `path` (default: [control] socket, else "+config.ControlSocket()+")")
	metrics := fs.String("metrics", "", "serve /metrics, /healthz and /readyz on `host:port` (default: [metrics] address)")
	stateFile := fs.String("state-file", "", "keep the sequence numbers of manual SAs in `path` (default: state-file of the configuration)")
	examplePSK := fs.Bool("allow-example-psk", false, "run with the public pre-shared key of examples/ (greipsec demo does)")
	runAs := fs.String("user", "", "once the sockets and devices exist, run as `user[:group]` (a name or ID) with only CAP_NET_ADMIN, CAP_NET_RAW and CAP_NET_BIND_SERVICE (Linux; default: user of the configuration)")
	return func(args []string, _, stderr io.Writer) error {
		if err := noArgs("up", args); err != nil {
			return err
		}
		if *verbose {
			*level = "debug"
		}
		log, err := newLogger(stderr, *level, *format)
		if err != nil {
			return usagef("up", "%v", err)
		}
		d := &upDaemon{log: log, path: *path, socketFlag: *socket, metricsFlag: *metrics, stateFlag: *stateFile, examplePSK: *examplePSK, uid: -1, gid: -1}
		cfg, err := d.load()
		if err != nil {
			return err
		}
		if spec := cmp.Or(*runAs, cfg.User); spec != "" {
			if d.uid, d.gid, err = lookupUser(spec); err != nil {
				return err
			}
		}
		return d.run(cfg)
	}
}

// newLogger makes the logger of up from its flags.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	switch level {
	case "debug":
		l = slog.LevelDebug
	case "info":
		l = slog.LevelInfo
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		return nil, fmt.Errorf("--log-level: unknown level %q (expected debug, info, warn or error)", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: unknown format %q (expected text or json)", format)
}

// upDaemon is a running "greipsec up": the gateway, its control socket and
// metrics endpoint, and the signals.
type upDaemon struct {
	log         *slog.Logger
	path        string // the configuration file, re-read by reload
	socketFlag  string
	metricsFlag string
	stateFlag   string
	examplePSK  bool // --allow-example-psk
	uid, gid    int  // --user, resolved; uid -1: stay as is

	gw      *gateway.Gateway
	control *control.Server

	mu      sync.Mutex // serialises reloads; guards cfg and metrics
	cfg     *config.Config
	metrics *metricsServer
}

func (d *upDaemon) run(cfg *config.Config) error {
	// Signals first: a SIGHUP during start-up must not kill the process
	// (its default action), and a SIGTERM then stops it once it is up.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, append([]os.Signal{os.Interrupt, syscall.SIGTERM}, extraSignals...)...)
	defer signal.Stop(sigs)
	// The control socket first: another greipsec holding it is found
	// before this one touches the system.
	socket := d.socketFlag
	if socket == "" {
		socket = cfg.Control.Socket
	}
	l, err := control.Listen(socket, cfg.Control.Group)
	if err != nil {
		return err
	}
	gw, err := gateway.New(cfg, gateway.Options{Logger: d.log})
	if err != nil {
		l.Close()
		return err
	}
	d.gw, d.cfg = gw, cfg
	d.control = control.Serve(l, d)
	if addr := d.metricsAddress(cfg); addr != "" {
		if d.metrics, err = startMetrics(addr, gw); err != nil {
			d.control.Close()
			gw.Close()
			return err
		}
	}
	if d.uid >= 0 {
		if err := d.dropPrivileges(cfg); err != nil {
			d.shutdownNow()
			return err
		}
	}
	d.log.Info("ready", "tunnels", len(cfg.Tunnels), "control", socket, "metrics", d.metricsAddress(cfg))
	notify(d.log, daemon.SdNotifyReady)

	for sig := range sigs {
		switch {
		case isReloadSignal(sig):
			d.log.Info("reloading", "signal", sig.String())
			if _, err := d.Reload(); err != nil {
				d.log.Error("reload failed", "err", err)
			}
			continue
		case isStatsSignal(sig):
			d.logStats()
			continue
		}
		d.log.Info("shutting down", "signal", sig.String())
		break
	}
	return d.shutdown(sigs)
}

// shutdown stops everything; a second SIGINT or SIGTERM meanwhile exits
// the process at once.
func (d *upDaemon) shutdown(sigs chan os.Signal) error {
	notify(d.log, daemon.SdNotifyStopping)
	return stopOrExit(d.log, sigs, func() error {
		d.logStats()
		d.control.Close()
		d.mu.Lock()
		if d.metrics != nil {
			d.metrics.close()
		}
		d.mu.Unlock()
		err := d.gw.Close()
		d.log.Info("stopped")
		return err
	}, os.Exit)
}

// stopOrExit runs stop and returns its result, unless a SIGINT or SIGTERM
// comes from sigs first: then it calls exit(1) at once, leaving the
// cleanup unfinished, as an operator whose shutdown hangs asks for. Other
// signals are ignored meanwhile.
func stopOrExit(log *slog.Logger, sigs <-chan os.Signal, stop func() error, exit func(int)) error {
	done := make(chan error, 1)
	go func() { done <- stop() }()
	for {
		select {
		case err := <-done:
			return err
		case sig := <-sigs:
			if sig == os.Interrupt || sig == syscall.SIGTERM {
				log.Error("second signal while shutting down: exiting now, without finishing the cleanup", "signal", sig.String())
				exit(1)
				return errors.New("exited")
			}
		}
	}
}

// dropPrivileges runs the process as --user from now on (privdrop_linux.go).
func (d *upDaemon) dropPrivileges(cfg *config.Config) error {
	manual := false
	for _, t := range cfg.Tunnels {
		manual = manual || t.IKE == nil
	}
	errs, warns := userAccess(d.uid, d.gid, d.path, cfg.StateFile, manual)
	for _, w := range warns {
		d.log.Warn(w)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// TUN devices that a reload creates: /dev/net/tun may not open for
	// the user (0600 in some containers).
	if err := tun.ReserveSpares(tunSpares); err != nil {
		d.log.Debug("no spare TUN descriptors", "err", err)
	}
	if err := dropPrivileges(d.uid, d.gid); err != nil {
		return err
	}
	d.log.Info("privileges dropped", "uid", d.uid, "gid", d.gid, "capabilities", keptCapNames(), "no_new_privs", true)
	return nil
}

// tunSpares is how many TUN devices reloads may create after the
// privilege drop when the user cannot open /dev/net/tun.
const tunSpares = 16

// shutdownNow takes down what run started, after a failure.
func (d *upDaemon) shutdownNow() {
	d.control.Close()
	d.mu.Lock()
	if d.metrics != nil {
		d.metrics.close()
	}
	d.mu.Unlock()
	d.gw.Close()
}

// lookupUser resolves --user: user[:group], names or IDs; without a
// group, the user's primary group.
func lookupUser(spec string) (uid, gid int, err error) {
	name, group, hasGroup := strings.Cut(spec, ":")
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		uid, gid = n, n
		if u, err := user.LookupId(name); err == nil {
			gid, _ = strconv.Atoi(u.Gid)
		}
	} else {
		u, err := user.Lookup(name)
		if err != nil {
			return 0, 0, fmt.Errorf("--user: %v", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	if hasGroup {
		if n, err := strconv.Atoi(group); err == nil && n >= 0 {
			gid = n
		} else {
			g, err := user.LookupGroup(group)
			if err != nil {
				return 0, 0, fmt.Errorf("--user: %v", err)
			}
			gid, _ = strconv.Atoi(g.Gid)
		}
	}
	if uid == 0 {
		return 0, 0, fmt.Errorf("--user %s: that is root; name an unprivileged user", spec)
	}
	return uid, gid, nil
}

// load reads the configuration file, with the command line's overrides.
func (d *upDaemon) load() (*config.Config, error) {
	cfg, err := config.Load(d.path)
	if err != nil {
		return nil, err
	}
	if err := cfg.ExamplePSK(); err != nil && !d.examplePSK {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		d.log.Warn(w.Error())
	}
	// What the host tells: a route that would loop the tunnel into
	// itself stops everything before it starts.
	var fatal []error
	for _, p := range gateway.CheckHost(cfg) {
		if p.Fatal {
			fatal = append(fatal, p.Err)
		} else {
			d.log.Warn(p.Err.Error())
		}
	}
	if len(fatal) > 0 {
		return nil, errors.Join(fatal...)
	}
	if d.stateFlag != "" {
		abs, err := filepath.Abs(d.stateFlag)
		if err != nil {
			return nil, fmt.Errorf("--state-file: %w", err)
		}
		cfg.StateFile = abs
	}
	return cfg, nil
}

func (d *upDaemon) metricsAddress(cfg *config.Config) string {
	if d.metricsFlag != "" {
		return d.metricsFlag
	}
	return cfg.Metrics.Address
}

// Reload re-reads the configuration file and applies it (control.Backend,
// SIGHUP). A file with mistakes changes nothing.
func (d *upDaemon) Reload() (gateway.ReloadResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	notify(d.log, reloadingState())
	defer notify(d.log, daemon.SdNotifyReady)
	cfg, err := d.load()
	if err != nil {
		return gateway.ReloadResult{}, err
	}
	res, err := d.gw.Reload(cfg)
	if d.socketFlag == "" && (cfg.Control != d.cfg.Control) {
		d.log.Warn("the [control] settings changed: they take effect when greipsec is restarted")
	}
	old, next := d.metricsAddress(d.cfg), d.metricsAddress(cfg)
	d.cfg = cfg
	if old != next {
		if d.metrics != nil {
			d.metrics.close()
			d.metrics = nil
		}
		if next != "" {
			m, merr := startMetrics(next, d.gw)
			if merr != nil {
				err = errors.Join(err, merr)
			}
			d.metrics = m
		}
		d.log.Info("metrics endpoint moved", "from", old, "to", next)
	}
	return res, err
}

// The rest of control.Backend is the gateway's.
func (d *upDaemon) Status() gateway.Status { return d.gw.Status() }
func (d *upDaemon) TunnelStatus(name string) (gateway.TunnelStatus, error) {
	return d.gw.TunnelStatus(name)
}
func (d *upDaemon) Initiate(name string, t gateway.Target) (string, error) {
	return d.gw.Initiate(name, t)
}
func (d *upDaemon) Terminate(name string, t gateway.Target) (string, error) {
	return d.gw.Terminate(name, t)
}
func (d *upDaemon) Rekey(name string, t gateway.Target) (string, error) { return d.gw.Rekey(name, t) }

// logStats logs the counters of every tunnel, one line each, and the
// device's. Each installed Child SA adds its SPIs and drop counters, with
// the field names of earlier versions (in_spi, auth_failures, replays, ...).
func (d *upDaemon) logStats() {
	st := d.gw.Status()
	for _, t := range st.Tunnels {
		args := []any{"tunnel", t.Name,
			"tx_packets", t.Traffic.TxPackets, "tx_bytes", t.Traffic.TxBytes,
			"rx_packets", t.Traffic.RxPackets, "rx_bytes", t.Traffic.RxBytes,
			"no_sa", t.Drops["no_sa"], "seq_exhausted", t.Drops["seq_exhausted"], "bad_inner", t.Drops["bad_inner"],
			"send_errors", t.Drops["send_errors"], "write_errors", t.Drops["write_errors"],
			"no_policy", t.Drops["no_policy"], "too_big", t.Drops["too_big"], "bad_source", t.Drops["bad_source"], "queue_full", t.Drops["queue_full"]}
		if t.IKE != nil {
			args = append(args, "ike", t.IKE.State)
		}
		for _, c := range t.ChildSAs {
			args = append(args, "out_spi", "0x"+c.OutSPI, "reserve_waits", c.ReserveWaits, "reserve_errors", c.ReserveErrors,
				"in_spi", "0x"+c.InSPI, "auth_failures", c.Drops["auth_failure"], "replays", c.Drops["replay"],
				"bad_padding", c.Drops["bad_padding"], "bad_next_header", c.Drops["bad_next_header"],
				"bad_gre", c.Drops["bad_gre"], "bad_selector", c.Drops["bad_selector"])
		}
		d.log.Info("counters", args...)
	}
	d.log.Info("device counters", "unknown_spi", st.Device.UnknownSPI, "malformed", st.Device.Malformed,
		"receive_errors", st.Device.ReceiveErrors, "nat_keepalives", st.Device.Keepalives, "ike_4500", st.Device.IKEReceived, "no_buffer", st.Device.NoBuffer,
		"ike_unknown_peer", st.IKEDrops.UnknownPeer, "ike_queue_full", st.IKEDrops.QueueFull, "ike_send_errors", st.IKEDrops.SendErrors)
}

// notify sends a state to systemd, if it started us with a notify socket.
func notify(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("telling systemd our state failed", "state", state, "err", err)
	}
}

// metricsServer serves the gateway's metrics handler on one address.
type metricsServer struct {
	srv  *http.Server
	done chan struct{}
}

func startMetrics(addr string, gw *gateway.Gateway) (*metricsServer, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	m := &metricsServer{
		srv: &http.Server{
			Handler:           gw.MetricsHandler(),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			MaxHeaderBytes:    1 << 14,
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(m.done)
		m.srv.Serve(l)
	}()
	return m, nil
}

func (m *metricsServer) close() {
	m.srv.Close()
	<-m.done
}
