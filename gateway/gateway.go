package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/gateway/config"
	"github.com/greipsec/greipsec/ikev2"
)

// Options configures a Gateway. The zero value runs a real gateway: TUN
// devices configured through the kernel, raw ESP and UDP sockets, and IKE
// on UDP port 500.
type Options struct {
	// Logger receives the gateway's log; nil means slog.Default().
	Logger *slog.Logger
	// Inner creates and configures the inner device of a tunnel with
	// inner = "tun"; nil means TUNInner. Tunnels with inner = "netstack"
	// always get NetstackInner, which needs nothing of the system.
	Inner InnerFunc
	// Bind opens the dataplane's outer sockets; nil means
	// dataplane.DefaultBind.
	Bind dataplane.BindFunc
	// ListenIKE opens the UDP port 500 socket of a local address; nil
	// means net.ListenUDP.
	ListenIKE ListenFunc
	// Workers is the number of encryption and decryption workers each; 0
	// means GOMAXPROCS.
	Workers int
}

// ListenFunc opens a UDP socket bound to local.
type ListenFunc func(local netip.AddrPort) (PacketConn, error)

// PacketConn is what the IKE runner needs of a UDP socket: the methods of
// *net.UDPConn it calls.
type PacketConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	Close() error
}

// ListenUDP is the default ListenFunc: net.ListenUDP on local.
func ListenUDP(local netip.AddrPort) (PacketConn, error) {
	return net.ListenUDP("udp", net.UDPAddrFromAddrPort(local))
}

// A Gateway is a running greipsec gateway: one dataplane Device, a tunnel
// with its inner device for each [[tunnel]] of the configuration, and the
// IKE runner that negotiates and installs the Child SAs of the tunnels keyed
// by IKE. Its methods are safe for concurrent use.
type Gateway struct {
	log     *slog.Logger
	opts    Options
	device  *dataplane.Device
	ike     *ikeRunner
	started time.Time

	// opMu serialises Reload and Close, which change the set of tunnels.
	opMu sync.Mutex

	mu      sync.Mutex // guards tunnels, order and closed
	tunnels map[string]*tunnel
	order   []string // tunnel names in the order of the configuration
	closed  bool

	// state keeps the sequence numbers of manual SAs; loaded with the
	// first manual tunnel. Guarded by opMu.
	state *manualState

	ready   atomic.Bool // start-up done, not reloading or closing
	stop    chan struct{}
	workers sync.WaitGroup
}

// tunnel is one running tunnel.
type tunnel struct {
	cfg   config.Tunnel // as configured: what Reload compares
	dp    *dataplane.Tunnel
	mtu   int
	inner Inner
	peer  *ikePeer // nil for manual keys
	// manual holds the activity of a manually keyed tunnel's SAs; the IKE
	// runner keeps that of negotiated ones.
	manual *manualActivity
	// services are a netstack tunnel's proxies and forwards (netstack.go).
	services atomic.Pointer[services]
	// link sets the inner interface's carrier; keepalive, if not nil,
	// sends GRE keepalives (keepalive.go).
	link      *linkState
	keepalive *keepalive
}

// New starts a gateway for cfg: it checks the IKE configuration of every
// tunnel first, then creates the dataplane and brings the tunnels up one
// after the other, each with its inner device and, if keyed by IKE, its
// IKE session. If any step fails, what was built so far is taken down
// again, and the error is one line that says what failed and, where it
// can, what to do about it.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Inner == nil {
		opts.Inner = TUNInner
	}
	if opts.ListenIKE == nil {
		opts.ListenIKE = ListenUDP
	}
	// Everything that can be checked without touching the system first:
	// a config IKE refuses fails before anything exists.
	prepared, err := prepareAll(cfg.Tunnels)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Path, err)
	}
	g := &Gateway{
		log:     opts.Logger,
		opts:    opts,
		started: time.Now(),
		tunnels: make(map[string]*tunnel),
		stop:    make(chan struct{}),
	}
	// Manual SAs resume their sequence numbers from the state file.
	if err := g.prepareManual(cfg.StateFile, prepared); err != nil {
		if g.state != nil {
			g.state.close(nil)
		}
		return nil, fmt.Errorf("%s: %w", cfg.Path, err)
	}
	g.ike = newIKERunner(g.log, opts.ListenIKE)
	g.device = dataplane.NewDevice(dataplane.Options{Logger: g.log, Workers: opts.Workers, Bind: opts.Bind, IKE: g.ike.receive4500})
	g.ike.device = g.device
	for _, p := range prepared {
		t, err := g.startTunnel(p)
		if err != nil {
			g.Close()
			return nil, err
		}
		g.mu.Lock()
		g.tunnels[p.name()] = t
		g.order = append(g.order, p.name())
		g.mu.Unlock()
	}
	g.workers.Add(2)
	go g.ike.routineSummaries(g.stop, &g.workers)
	go g.routineManualActivity()
	g.ready.Store(true)
	return g, nil
}

// prepared is a tunnel checked and ready to start: its configuration and,
// for IKE, the session, made but not started.
type prepared struct {
	cfg config.Tunnel // as configured: what Reload compares
	// dp is what the dataplane runs: cfg.Dataplane, with manual SAs that
	// resume from the state file (prepareManual).
	dp      dataplane.TunnelConfig
	ike     *ikev2.Config // the session's copy of cfg.IKE, nil for manual keys
	session *ikev2.Session
	mtu     int
}

func (p *prepared) name() string { return p.cfg.Dataplane.Name }

// prepare checks one tunnel as far as it can without touching the system.
func prepare(tc config.Tunnel) (*prepared, error) {
	p := &prepared{cfg: tc, dp: tc.Dataplane}
	dc := tc.Dataplane
	mtu, err := dataplane.ResolveMTU(&dc)
	if err != nil {
		return nil, err
	}
	p.mtu = mtu
	if tc.IKE != nil {
		ic := *tc.IKE
		// transport = "udp" means ESP-in-UDP always, NAT or not: claim a
		// NAT, as swanctl's "encap = yes" does.
		if dc.Transport == dataplane.TransportUDP {
			ic.ForceEncap = true
		}
		s, err := ikev2.NewSession(&ic, nil)
		if err != nil {
			return nil, fmt.Errorf("tunnel %q: %w", dc.Name, err)
		}
		p.ike, p.session = &ic, s
	}
	return p, nil
}

// prepareAll prepares every tunnel of a configuration and checks what the
// runner needs across them: one IKE tunnel per peer address (IKE messages
// find their session by the peer's address).
func prepareAll(tunnels []config.Tunnel) ([]*prepared, error) {
	var list []*prepared
	peers := make(map[netip.Addr]string)
	for _, tc := range tunnels {
		p, err := prepare(tc)
		if err != nil {
			return nil, err
		}
		if p.ike != nil {
			if other, dup := peers[p.ike.PeerAddr]; dup {
				return nil, fmt.Errorf("tunnel %q: a second IKE tunnel to peer %s (tunnel %q is the first); IKE tells its tunnels apart by the peer address", p.name(), p.ike.PeerAddr, other)
			}
			peers[p.ike.PeerAddr] = p.name()
		}
		list = append(list, p)
	}
	return list, nil
}

// prepareManual prepares the manual SAs of tunnels to resume from the
// state file at path, loading it with the first manual tunnel.
func (g *Gateway) prepareManual(path string, tunnels []*prepared) error {
	for _, p := range tunnels {
		if !p.isManual() {
			continue
		}
		if g.state == nil {
			s, err := loadManualState(path, g.log)
			if err != nil {
				return fmt.Errorf("state-file: %w", err)
			}
			g.state = s
		}
		if err := g.state.prepare(p); err != nil {
			return err
		}
	}
	return nil
}

// startTunnel brings one prepared tunnel up: the inner device, the
// dataplane tunnel on it, a netstack tunnel's listeners, then the IKE
// session. On error it undoes what it
// did and returns one line saying what failed and what to do.
func (g *Gateway) startTunnel(p *prepared) (*tunnel, error) {
	dc := p.dp
	inner, err := g.innerFunc(&p.cfg)(&p.cfg, p.mtu)
	if err != nil {
		return nil, fmt.Errorf("tunnel %q: %w", dc.Name, withHint(err))
	}
	dt, err := g.device.AddTunnel(dc, inner.Device)
	if err != nil {
		inner.Device.Close()
		undoInner(g.log, dc.Name, inner)
		return nil, fmt.Errorf("tunnel %q: %w", dc.Name, withHint(err))
	}
	t := &tunnel{cfg: p.cfg, dp: dt, mtu: p.mtu, inner: inner}
	t.link = g.newLinkState(&p.cfg, inner)
	// A netstack tunnel's proxies and forwards: a listener that cannot be
	// opened fails the start before IKE sends anything.
	err = g.startServices(t)
	if err == nil && p.session != nil {
		var follow func(up bool)
		if p.cfg.LinkFollowsIKE {
			follow = t.link.setIKE
		}
		t.peer, err = g.ike.addPeer(p.ike, p.session, dt, follow)
		if err != nil {
			t.stopServices()
		}
	}
	if err != nil {
		if rerr := g.device.RemoveTunnel(dc.Name); rerr != nil {
			g.log.Warn("removing the tunnel after a failed start", "tunnel", dc.Name, "err", rerr)
		}
		undoInner(g.log, dc.Name, inner)
		return nil, fmt.Errorf("tunnel %q: %w", dc.Name, withHint(err))
	}
	g.startKeepalive(t, t.link)
	if p.session == nil {
		t.manual = &manualActivity{started: time.Now()}
		if g.state != nil {
			g.state.track(t)
		}
	}
	o := dt.Overhead()
	keying := "manual"
	if t.peer != nil {
		keying = "ike"
	}
	g.log.Info("tunnel up", "tunnel", dc.Name, "interface", dc.Interface, "mode", dc.Mode, "transport", dc.Transport,
		"local", dc.Local, "peer", dc.Peer, "keying", keying, "mtu", p.mtu, "mss4", o.MSS4(), "mss6", o.MSS6())
	return t, nil
}

// newLinkState returns the carrier control of tunnel c's inner interface
// (keepalive.go). With link-follows-ike, the carrier goes off now, until
// the first IKE SA is up.
func (g *Gateway) newLinkState(c *config.Tunnel, inner Inner) *linkState {
	l := &linkState{g: g, name: c.Dataplane.Name, iface: c.Dataplane.Interface, set: inner.SetCarrier}
	if c.LinkFollowsIKE && l.set != nil {
		l.setIKE(false)
	}
	return l
}

// stopTunnel takes a running tunnel down: its IKE SA is deleted (DELETE
// sent while the sockets are open), then the dataplane tunnel is removed
// and the inner device's configuration undone.
func (g *Gateway) stopTunnel(t *tunnel) error {
	name := t.cfg.Dataplane.Name
	t.stopServices()
	t.stopKeepalive()
	if t.peer != nil {
		g.ike.removePeer(t.peer)
	}
	out, in := t.dp.OutboundSA(), t.dp.InboundSAs()
	err := g.device.RemoveTunnel(name)
	if t.manual != nil && g.state != nil {
		g.state.removed(out, in)
	}
	undoInner(g.log, name, t.inner)
	g.log.Info("tunnel down", "tunnel", name)
	return err
}

func undoInner(log *slog.Logger, name string, inner Inner) {
	if inner.Undo == nil {
		return
	}
	if err := inner.Undo(); err != nil {
		log.Warn("removing the inner interface's configuration", "tunnel", name, "err", err)
	}
}

// Close takes the gateway down: it deletes the IKE SAs (best effort, while
// the sockets are still open), stops the tunnels, undoes the configuration
// of the inner interfaces and closes the dataplane. It is idempotent, and
// undoes a gateway that New could only build in part.
func (g *Gateway) Close() error {
	g.opMu.Lock()
	defer g.opMu.Unlock()
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	g.ready.Store(false)
	var tunnels []*tunnel
	for _, name := range slices.Backward(g.order) {
		tunnels = append(tunnels, g.tunnels[name])
	}
	g.mu.Unlock()

	for _, t := range tunnels {
		t.stopServices() // a netstack tunnel's listeners, before its stack goes
	}
	g.ike.close() // DELETE for every IKE SA, at once
	close(g.stop)
	g.workers.Wait()
	err := g.device.Close() // closes the inner devices
	for _, t := range tunnels {
		undoInner(g.log, t.cfg.Dataplane.Name, t.inner)
	}
	if g.state != nil {
		var outs []*esp.SA
		for _, t := range tunnels {
			if sa := t.dp.OutboundSA(); t.manual != nil && sa != nil {
				outs = append(outs, sa)
			}
		}
		if serr := g.state.close(outs); serr != nil && err == nil {
			err = serr
		}
	}
	return err
}

// Ready reports whether the gateway has brought up every tunnel of its
// configuration and is neither reloading nor closing: what systemd's
// READY=1 and the /readyz probe announce.
func (g *Gateway) Ready() bool { return g.ready.Load() }

// Tunnels returns the names of the running tunnels, in the order of the
// configuration.
func (g *Gateway) Tunnels() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.order)
}

// tunnel returns the running tunnel called name.
func (g *Gateway) tunnel(name string) (*tunnel, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, ErrClosed
	}
	t, ok := g.tunnels[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (tunnels: %s)", ErrUnknownTunnel, name, listOrNone(g.order))
	}
	return t, nil
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// Errors of the operator commands, for the control API to map to answers.
var (
	ErrClosed        = errors.New("gateway: closed")
	ErrUnknownTunnel = errors.New("gateway: no tunnel")
	// ErrManual: the tunnel is keyed by hand; there is no IKE to command.
	ErrManual = errors.New("gateway: the tunnel has manual keys, not IKE")
	// ErrState: the command does not apply in the tunnel's state, e.g.
	// rekeying a Child SA that does not exist.
	ErrState = errors.New("gateway: not possible now")
)
