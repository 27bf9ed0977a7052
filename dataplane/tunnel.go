package dataplane

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/tun"
)

// A Tunnel is one GRE-over-IPsec (or route-based) tunnel of a Device: an
// inner TUN device, the peer's outer address, one outbound SA and any number
// of inbound SAs (several during a rekey).
type Tunnel struct {
	device   *Device
	cfg      TunnelConfig
	overhead Overhead
	mtu      int

	// limits is what fits the outer path (pathmtu.go); pmtuLearned is
	// when its path MTU went below the configured one (Unix ns, 0: not).
	limits      atomic.Pointer[pathLimits]
	pmtuLearned atomic.Int64
	icmp        icmpState // the TUN reader's

	tun  tun.Device
	path atomic.Pointer[outerPath]

	outbound atomic.Pointer[outboundSA]
	closing  atomic.Bool

	// largeBuffers: the tunnel's packets do not fit small buffers (a
	// jumbo path or inner MTU), so all of them travel in large ones.
	largeBuffers bool
	// inFlight is the number of inbound packets between the socket
	// receiver and the end of the TUN write (inboundBudget).
	inFlight atomic.Int64

	// Summaries of repeated failures (the data path never logs per packet).
	sendErrs, writeErrs, readErrs *errorLog

	// greSeq is the last GRE sequence number sent (RFC 2890 §2.2). Only
	// RoutineReadFromTUN and inject touch it, holding sendMu.
	greSeq uint32

	// sendMu is held by RoutineReadFromTUN while it assigns sequence
	// numbers to a batch and queues it, and by inject (keepalive.go), so
	// that the two take turns. outClosed: the outbound queue is closed.
	sendMu    sync.Mutex
	outClosed bool

	// sending and delivering are stage 3 of each direction: handing
	// sealed batches to the socket (RoutineSequentialSender, or the TUN
	// reader, inline.go) and writing opened groups to the TUN device
	// (RoutineSequentialReceiver, or a socket receiver).
	sending, delivering stage3

	queue struct {
		outbound chan *outboundContainer // closed by RoutineReadFromTUN
		inbound  chan *inboundContainer  // closed by Device.Close
	}

	stats TunnelStats
}

// outerPath is where and how a tunnel's ESP packets travel. It starts as
// configured; IKE may change it while packets flow (NAT traversal moves ESP
// into UDP, a peer may only accept tunnel mode), so each batch loads it once.
type outerPath struct {
	bind      *bindState
	endpoint  conn.Endpoint
	peer      netip.Addr // the endpoint's address, unmapped: inbound ESP must come from it
	transport Transport
	mode      Mode
}

// outboundSA is the SA that seals a tunnel's packets, with the policy its
// packets must be within.
type outboundSA struct {
	sa     *esp.SA
	policy *policy
}

// TunnelStats counts a tunnel's traffic and the drops that no SA counts.
// The SAs count their own (esp.SA.Stats).
type TunnelStats struct {
	TxPackets    atomic.Uint64 // ESP packets handed to the socket
	TxBytes      atomic.Uint64 // inner bytes of those
	RxPackets    atomic.Uint64 // inner packets written to the TUN device
	RxBytes      atomic.Uint64
	NoSA         atomic.Uint64 // outbound packets with no outbound SA installed
	NoPolicy     atomic.Uint64 // outbound packets outside the outbound SA's selectors (route mode) or Allowed
	SeqExhausted atomic.Uint64 // outbound packets refused: the SA's sequence numbers or lifetime ran out
	BadInner     atomic.Uint64 // packets from the TUN device that are not IPv4 or IPv6
	TooBig       atomic.Uint64 // packets from the TUN device too large to seal in a buffer
	SendErrors   atomic.Uint64 // batches the socket refused
	WriteErrors  atomic.Uint64 // batches the TUN device refused
	ReadErrors   atomic.Uint64 // TUN reads that failed
	BadSource    atomic.Uint64 // inbound ESP from an outer source other than the peer, dropped before decryption
	QueueFull    atomic.Uint64 // inbound packets dropped because the tunnel had its share in flight (slow TUN device)

	// Path MTU (pathmtu.go).
	PathMTUChanges   atomic.Uint64 // times the path MTU in effect changed
	PathMTUDrops     atomic.Uint64 // packets too large for the path dropped (IPv4 with DF, IPv6 beyond 1280)
	ICMPSent         atomic.Uint64 // ICMP "fragmentation needed" / ICMPv6 "packet too big" written to the inner device
	ICMPRateLimited  atomic.Uint64 // drops not answered: the tunnel's ICMP rate limit
	FragmentedBefore atomic.Uint64 // IPv4 packets without DF fragmented before encryption
	OuterFragmented  atomic.Uint64 // packets sent larger than the path MTU (IPv6 up to 1280, after-encryption): the outer packet is fragmented

	// GRE keepalives (keepalive.go).
	KeepalivesSent      atomic.Uint64 // keepalive requests sent (SendKeepalive)
	KeepaliveReplies    atomic.Uint64 // GRE packets of Protocol Type 0 received: replies to ours
	KeepalivesReflected atomic.Uint64 // the peer's keepalive requests sent back to it in the tunnel
	KeepaliveDrops      atomic.Uint64 // keepalives not sent for want of a free buffer
}

func (c *TunnelConfig) check() error {
	switch {
	case c.Name == "":
		return errors.New("dataplane: tunnel has no name")
	case !c.Local.IsValid() || !c.Peer.IsValid():
		return fmt.Errorf("dataplane: tunnel %q: local and peer addresses are required", c.Name)
	case c.Local.Unmap().Is4() != c.Peer.Unmap().Is4():
		return fmt.Errorf("dataplane: tunnel %q: local %s and peer %s are of different address families", c.Name, c.Local, c.Peer)
	case c.Mode > ModeRoute:
		return fmt.Errorf("dataplane: tunnel %q: unknown mode %v", c.Name, c.Mode)
	case c.Transport > TransportUDP:
		return fmt.Errorf("dataplane: tunnel %q: unknown transport %v", c.Name, c.Transport)
	}
	for i, p := range c.Allowed {
		if !p.IsValid() {
			return fmt.Errorf("dataplane: tunnel %q: allowed prefix %d is invalid", c.Name, i+1)
		}
	}
	c.Local, c.Peer = c.Local.Unmap(), c.Peer.Unmap()
	return nil
}

func newTunnel(d *Device, cfg TunnelConfig, mtu int, dev tun.Device, bs *bindState) (*Tunnel, error) {
	t := &Tunnel{
		device:   d,
		cfg:      cfg,
		overhead: OverheadOf(&cfg),
		mtu:      mtu,
		tun:      dev,
	}
	t.limits.Store(t.newLimits(t.overhead.PathMTU))
	t.icmp.buf = make([]byte, icmpBufferLen)
	// The largest packet a buffer must hold: outbound, the inner MTU with
	// the headroom and the ESP trailer; inbound, an ESP packet of the path.
	need := max(outboundOffset+mtu+t.overhead.ESP.TrailerLen(t.overhead.Encap()+mtu), t.overhead.MaxESPLen)
	t.largeBuffers = need > smallBufferSize
	attrs := []any{"tunnel", cfg.Name}
	t.sendErrs = newErrorLog(d.log, slog.LevelWarn, "send error", attrs...)
	t.writeErrs = newErrorLog(d.log, slog.LevelWarn, "TUN write error", attrs...)
	t.readErrs = newErrorLog(d.log, slog.LevelWarn, "TUN read error", attrs...)
	peer := netip.AddrPortFrom(cfg.Peer, 0)
	if cfg.Transport == TransportUDP {
		peer = netip.AddrPortFrom(cfg.Peer, cfg.PeerUDPPort)
	}
	if err := t.setPath(bs, cfg.Transport, peer, cfg.Mode); err != nil {
		return nil, err
	}
	t.queue.outbound = make(chan *outboundContainer, queueOutboundSize)
	t.queue.inbound = make(chan *inboundContainer, queueInboundSize)
	return t, nil
}

func (t *Tunnel) start() {
	d := t.device
	d.readers.Add(1)
	go t.RoutineReadFromTUN()
	d.workers.Add(2)
	go t.RoutineSequentialSender()
	go t.RoutineSequentialReceiver()
}

func (t *Tunnel) setPath(bs *bindState, transport Transport, peer netip.AddrPort, mode Mode) error {
	ep, err := bs.bind.ParseEndpoint(peer.String())
	if err != nil {
		return fmt.Errorf("dataplane: tunnel %q: peer %s: %w", t.cfg.Name, peer, err)
	}
	t.path.Store(&outerPath{bind: bs, endpoint: ep, peer: peer.Addr().Unmap(), transport: transport, mode: mode})
	return nil
}

// SetOuter changes how the tunnel's ESP packets travel: over ESP-in-UDP to
// peer (udp), or raw ESP to peer's address; and for a GRE tunnel, whether
// ESP is in tunnel mode (tunnelMode: ModeGRETunnel) or transport mode. IKE
// calls it when a Child SA is installed. The UDP socket must be open: the
// config's transport is udp, or NATTraversal is set.
func (t *Tunnel) SetOuter(udp bool, peer netip.AddrPort, tunnelMode bool) error {
	d := t.device
	d.mu.Lock()
	defer d.mu.Unlock()
	transport := TransportESP
	if udp {
		transport = TransportUDP
	}
	bs, ok := d.binds[d.bindKeyFor(transport, t.cfg.Local, t.cfg.UDPPort)]
	if !ok {
		return fmt.Errorf("dataplane: tunnel %q: no %s socket open", t.cfg.Name, transport)
	}
	mode := t.cfg.Mode
	if mode != ModeRoute {
		mode = ModeGRETransport
		if tunnelMode {
			mode = ModeGRETunnel
		}
	}
	return t.setPath(bs, transport, peer, mode)
}

// Name returns the tunnel's configured name.
func (t *Tunnel) Name() string { return t.cfg.Name }

// Config returns the tunnel's configuration.
func (t *Tunnel) Config() TunnelConfig { return t.cfg }

// MTU returns the inner MTU in effect.
func (t *Tunnel) MTU() int { return t.mtu }

// Overhead returns the per-packet overhead the MTU was derived from.
func (t *Tunnel) Overhead() Overhead { return t.overhead }

// Stats returns the tunnel's counters.
func (t *Tunnel) Stats() *TunnelStats { return &t.stats }

// OutboundSA returns the SA that seals outbound packets, or nil.
func (t *Tunnel) OutboundSA() *esp.SA {
	if out := t.outbound.Load(); out != nil {
		return out.sa
	}
	return nil
}

// SetOutboundSA makes sa the SA for outbound packets (nil: drop them). Used
// at start with manual keys and by IKE when a Child SA is installed or
// rekeyed. In route mode an outbound packet must be within sel (source in
// Local, destination in Peer) and the tunnel's Allowed list, else it is
// dropped and counted as NoPolicy (RFC 4301 §5.1); IKE passes the Child
// SA's negotiated selectors, and nil sel (manual keys) leaves only Allowed.
// In the GRE modes sel is not used: the selectors are the GRE between the
// gateways. It fails only for an invalid prefix in sel.
func (t *Tunnel) SetOutboundSA(sa *esp.SA, sel *Selectors) error {
	if sa == nil {
		t.outbound.Store(nil)
		return nil
	}
	pol, err := newPolicy(t.cfg.Mode, sel, t.cfg.Allowed)
	if err != nil {
		return fmt.Errorf("dataplane: tunnel %q: outbound SA 0x%08x: %w", t.cfg.Name, sa.SPI(), err)
	}
	t.outbound.Store(&outboundSA{sa: sa, policy: pol})
	return nil
}

// AddInboundSA installs sa: inbound ESP with its SPI is decrypted and
// delivered to this tunnel. The SPI must be unique in the Device. In route
// mode every inner packet the SA carries must be within sel (source in
// Peer, destination in Local, with the selector's protocol) and have its
// source in the tunnel's Allowed list; in the GRE modes the source of the
// packet GRE carries must be in Allowed. Packets outside are dropped and
// counted on the SA (esp.DropSelector; RFC 4301 §5.2). IKE passes the
// Child SA's negotiated selectors; nil sel (manual keys) leaves only
// Allowed.
func (t *Tunnel) AddInboundSA(sa *esp.SA, sel *Selectors) error {
	pol, err := newPolicy(t.cfg.Mode, sel, t.cfg.Allowed)
	if err != nil {
		return fmt.Errorf("dataplane: tunnel %q: inbound SA 0x%08x: %w", t.cfg.Name, sa.SPI(), err)
	}
	d := t.device
	d.inboundMu.Lock()
	defer d.inboundMu.Unlock()
	old := *d.inbound.Load()
	if _, ok := old[sa.SPI()]; ok {
		return fmt.Errorf("dataplane: tunnel %q: inbound SPI 0x%08x already in use", t.cfg.Name, sa.SPI())
	}
	next := make(map[uint32]*inboundSA, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[sa.SPI()] = &inboundSA{sa: sa, tunnel: t, policy: pol}
	d.inbound.Store(&next)
	return nil
}

// RemoveInboundSA uninstalls the inbound SA with the given SPI, if it
// belongs to this tunnel.
func (t *Tunnel) RemoveInboundSA(spi uint32) {
	d := t.device
	d.inboundMu.Lock()
	defer d.inboundMu.Unlock()
	old := *d.inbound.Load()
	if in, ok := old[spi]; !ok || in.tunnel != t {
		return
	}
	next := make(map[uint32]*inboundSA, len(old))
	for k, v := range old {
		if k != spi {
			next[k] = v
		}
	}
	d.inbound.Store(&next)
}

// InboundSAs returns the inbound SAs installed for this tunnel.
func (t *Tunnel) InboundSAs() []*esp.SA {
	var sas []*esp.SA
	for _, in := range *t.device.inbound.Load() {
		if in.tunnel == t {
			sas = append(sas, in.sa)
		}
	}
	return sas
}

// stopLogs ends the tunnel's error summaries.
func (t *Tunnel) stopLogs() {
	t.sendErrs.stop()
	t.writeErrs.stop()
	t.readErrs.stop()
}

// LogValue returns every counter, for logging (slog.LogValuer):
// log.Info("counters", "tunnel", t.Name(), "stats", t.Stats()).
func (s *TunnelStats) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Uint64("tx_packets", s.TxPackets.Load()), slog.Uint64("tx_bytes", s.TxBytes.Load()),
		slog.Uint64("rx_packets", s.RxPackets.Load()), slog.Uint64("rx_bytes", s.RxBytes.Load()),
		slog.Uint64("no_sa", s.NoSA.Load()), slog.Uint64("no_policy", s.NoPolicy.Load()),
		slog.Uint64("seq_exhausted", s.SeqExhausted.Load()), slog.Uint64("bad_inner", s.BadInner.Load()),
		slog.Uint64("too_big", s.TooBig.Load()), slog.Uint64("send_errors", s.SendErrors.Load()),
		slog.Uint64("write_errors", s.WriteErrors.Load()), slog.Uint64("read_errors", s.ReadErrors.Load()),
		slog.Uint64("bad_source", s.BadSource.Load()), slog.Uint64("queue_full", s.QueueFull.Load()),
		slog.Uint64("path_mtu_changes", s.PathMTUChanges.Load()), slog.Uint64("path_mtu_drops", s.PathMTUDrops.Load()),
		slog.Uint64("icmp_sent", s.ICMPSent.Load()), slog.Uint64("icmp_rate_limited", s.ICMPRateLimited.Load()),
		slog.Uint64("fragmented_before", s.FragmentedBefore.Load()), slog.Uint64("outer_fragmented", s.OuterFragmented.Load()),
		slog.Uint64("keepalives_sent", s.KeepalivesSent.Load()), slog.Uint64("keepalive_replies", s.KeepaliveReplies.Load()),
		slog.Uint64("keepalives_reflected", s.KeepalivesReflected.Load()), slog.Uint64("keepalive_drops", s.KeepaliveDrops.Load()),
	)
}
