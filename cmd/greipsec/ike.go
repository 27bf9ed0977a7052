package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/ikev2"
)

// ikePort is the IKE port (RFC 7296 §2); NAT traversal moves IKE to the
// ESP-in-UDP port, 4500 (RFC 3948), which the dataplane's socket shares.
const ikePort = 500

// The ikeRunner is the thin, I/O-owning shell around the sans-I/O IKE
// sessions (one per tunnel): it owns the UDP port 500 sockets, gets the IKE
// messages that arrive on port 4500 from the dataplane, hands each message
// to the session of the peer it came from, sends what the sessions emit, and
// installs the Child SAs they negotiate into the dataplane.
type ikeRunner struct {
	log    *slog.Logger
	device *dataplane.Device
	peers  map[netip.Addr]*ikePeer // by peer address; fixed once started
	socks  map[netip.Addr]*net.UDPConn
	wg     sync.WaitGroup
}

// ikePeer is one tunnel's session and the goroutine that owns it.
type ikePeer struct {
	runner  *ikeRunner
	cfg     *ikev2.Config
	session *ikev2.Session
	tunnel  *dataplane.Tunnel
	in      chan ikeMessage
	stop    chan struct{} // closed by ikeRunner.close
	done    chan struct{} // closed when routineSession returns
	// inSA and outSA are the Child SA pair installed last; only
	// routineSession uses them.
	inSA, outSA *esp.SA
	transport   bool // the pair is in ESP transport mode
}

type ikeMessage struct {
	data        []byte
	local, peer netip.AddrPort
}

func newIKERunner(log *slog.Logger) *ikeRunner {
	return &ikeRunner{log: log, peers: make(map[netip.Addr]*ikePeer), socks: make(map[netip.Addr]*net.UDPConn)}
}

// addPeer creates the session for a tunnel. It is called for every tunnel
// before start, so a bad IKE config fails before anything runs.
func (r *ikeRunner) addPeer(cfg *ikev2.Config) (*ikePeer, error) {
	if _, dup := r.peers[cfg.PeerAddr]; dup {
		return nil, fmt.Errorf("tunnel %q: a second IKE tunnel to peer %s", cfg.Name, cfg.PeerAddr)
	}
	s, err := ikev2.NewSession(cfg, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tunnel %q: %w", cfg.Name, err)
	}
	p := &ikePeer{runner: r, cfg: cfg, session: s, in: make(chan ikeMessage, 64),
		stop: make(chan struct{}), done: make(chan struct{})}
	r.peers[cfg.PeerAddr] = p
	return p, nil
}

// listen opens the port 500 socket of every local address in use.
func (r *ikeRunner) listen() error {
	for _, p := range r.peers {
		local := p.cfg.LocalAddr
		if _, ok := r.socks[local]; ok {
			continue
		}
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, ikePort)))
		if err != nil {
			return fmt.Errorf("IKE: listen on %s: %w", netip.AddrPortFrom(local, ikePort), err)
		}
		r.socks[local] = c
	}
	return nil
}

// start runs the sockets' readers and the sessions.
func (r *ikeRunner) start() {
	for local, c := range r.socks {
		r.wg.Add(1)
		go r.routineReceive500(local, c)
	}
	for _, p := range r.peers {
		go p.routineSession()
	}
}

// close deletes the IKE SAs (best effort), stops the sessions and closes the
// sockets. Call it before closing the dataplane, whose socket carries IKE on
// port 4500.
func (r *ikeRunner) close() {
	for _, p := range r.peers {
		close(p.stop)
	}
	deadline := time.After(3 * time.Second)
	for _, p := range r.peers {
		select {
		case <-p.done:
		case <-deadline:
			r.log.Warn("IKE session did not stop in time", "tunnel", p.cfg.Name)
		}
	}
	for _, c := range r.socks {
		c.Close()
	}
	r.wg.Wait()
}

// receive4500 is the dataplane's hook for IKE messages on the ESP-in-UDP
// socket, non-ESP marker removed. pkt is only valid during the call.
func (r *ikeRunner) receive4500(pkt []byte, from netip.AddrPort) {
	r.dispatch(pkt, netip.AddrPort{}, from)
}

func (r *ikeRunner) routineReceive500(local netip.Addr, c *net.UDPConn) {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			r.log.Debug("IKE receive", "err", err)
			continue
		}
		r.dispatch(buf[:n], netip.AddrPortFrom(local, ikePort), from)
	}
}

// dispatch hands a copy of an IKE message to the session of its peer.
func (r *ikeRunner) dispatch(pkt []byte, local, from netip.AddrPort) {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	p, ok := r.peers[from.Addr()]
	if !ok {
		r.log.Debug("IKE message from an unknown peer dropped", "from", from)
		return
	}
	if !local.IsValid() {
		local = netip.AddrPortFrom(p.cfg.LocalAddr, dataplane.DefaultUDPPort)
	}
	m := ikeMessage{data: append([]byte(nil), pkt...), local: local, peer: from}
	select {
	case p.in <- m:
	default: // the session is behind: drop, the sender retransmits
	}
}

// acquireInterval is how often traffic without an SA may make a session
// start at once.
const acquireInterval = 5 * time.Second

// routineSession owns p.session: every call into it happens here.
func (p *ikePeer) routineSession() {
	defer close(p.done)
	s := p.session
	s.Start(time.Now())
	p.flush()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// Once a second the dataplane's counters tell whether packets are
	// dropped for want of an SA (then an active session starts now rather
	// than after its back-off) and whether ESP arrived from the peer (then
	// no liveness check is needed).
	counters := time.NewTicker(time.Second)
	defer counters.Stop()
	var noSA, rx uint64
	var rxSA *esp.SA // the SA rx counts for
	var acquired time.Time
	// The dataplane counts bytes and sequence numbers; the Child SA's
	// channels close when it is due for rekeying by them.
	var rekeyAsked *esp.SA
	for {
		timer.Stop()
		if next := s.NextTimeout(); !next.IsZero() {
			timer.Reset(max(time.Until(next), 0))
		}
		var inSoft, outSoft <-chan struct{}
		if p.inSA != nil && p.inSA != rekeyAsked {
			inSoft, outSoft = p.inSA.SoftExpiry(), p.outSA.SoftExpiry()
		}
		select {
		case m := <-p.in:
			s.Receive(m.data, m.local, m.peer, time.Now())
		case <-timer.C:
			s.Tick(time.Now())
		case <-inSoft:
			rekeyAsked = p.inSA
			s.RekeyChild(p.inSA.SPI(), time.Now())
		case <-outSoft:
			rekeyAsked = p.inSA
			s.RekeyChild(p.inSA.SPI(), time.Now())
		case now := <-counters.C:
			if p.inSA != rxSA {
				rxSA, rx = p.inSA, 0
			}
			if p.inSA != nil {
				if n := p.inSA.Stats().RxPackets; n != rx {
					rx = n
					s.PeerAlive(now)
				}
			}
			if n := p.tunnel.Stats().NoSA.Load(); n != noSA && now.Sub(acquired) >= acquireInterval {
				noSA, acquired = n, now
				s.Acquire(now)
			}
		case <-p.stop:
			s.Close(time.Now())
			p.flush()
			return
		}
		p.flush()
	}
}

// flush sends the session's datagrams and acts on its events.
func (p *ikePeer) flush() {
	r := p.runner
	dgrams, events := p.session.Output()
	for _, d := range dgrams {
		if err := r.send(d); err != nil {
			r.log.Debug("IKE send failed", "tunnel", p.cfg.Name, "to", d.Peer, "err", err)
		}
	}
	for _, ev := range events {
		p.handle(ev)
	}
}

func (r *ikeRunner) send(d ikev2.Datagram) error {
	if d.Local.Port() == ikePort && d.Peer.Port() == ikePort {
		c, ok := r.socks[d.Local.Addr()]
		if !ok {
			return fmt.Errorf("no IKE socket on %s", d.Local.Addr())
		}
		_, err := c.WriteToUDPAddrPort(d.Data, d.Peer)
		return err
	}
	// RFC 3948 §2.2: IKE on the ESP-in-UDP port goes behind a non-ESP marker.
	msg := make([]byte, esp.NonESPMarkerLen+len(d.Data))
	copy(msg[esp.NonESPMarkerLen:], d.Data)
	return r.device.SendUDP(d.Local.Port(), d.Peer, [][]byte{msg})
}

func (p *ikePeer) handle(ev ikev2.Event) {
	log := p.runner.log.With("tunnel", p.cfg.Name)
	switch ev := ev.(type) {
	case ikev2.IKESAUp:
		log.Info("IKE SA established", "spi_i", fmt.Sprintf("%016x", ev.SPIi), "spi_r", fmt.Sprintf("%016x", ev.SPIr),
			"initiator", ev.Initiator, "nat", ev.NAT)
	case ikev2.IKESADown:
		log.Warn("IKE SA down", "reason", ev.Reason, "err", ev.Err)
	case ikev2.ChildSAUp:
		if err := p.install(ev); err != nil {
			log.Error("installing Child SA failed", "err", err)
			return
		}
		mode := "tunnel"
		if ev.Transport {
			mode = "transport"
		}
		log.Info("Child SA installed", "spi_in", fmt.Sprintf("0x%08x", ev.InSPI), "spi_out", fmt.Sprintf("0x%08x", ev.OutSPI),
			"mode", mode, "udp_encap", ev.Encap, "peer", ev.Peer, "esn", ev.ESN)
	case ikev2.ChildSADown:
		if p.inSA != nil && p.inSA.SPI() == ev.InSPI {
			p.inSA, p.outSA = nil, nil
		}
		p.tunnel.RemoveInboundSA(ev.InSPI)
		if cur := p.tunnel.OutboundSA(); cur != nil && cur.SPI() == ev.OutSPI {
			p.tunnel.SetOutboundSA(nil)
		}
		log.Info("Child SA removed", "spi_in", fmt.Sprintf("0x%08x", ev.InSPI), "spi_out", fmt.Sprintf("0x%08x", ev.OutSPI), "reason", ev.Reason)
	case ikev2.PeerMoved:
		if p.inSA == nil {
			return
		}
		if err := p.tunnel.SetOuter(true, ev.Peer, !p.transport); err != nil {
			log.Error("following the peer's new NAT mapping failed", "err", err)
			return
		}
		log.Info("peer moved behind its NAT; ESP-in-UDP follows", "peer", ev.Peer)
	case ikev2.SendKeepalive:
		if err := p.runner.device.SendUDP(ev.Local.Port(), ev.Peer, [][]byte{{0xff}}); err != nil {
			log.Debug("NAT keepalive failed", "err", err)
		}
	}
}

// install puts a negotiated Child SA pair into the dataplane: inbound first,
// so the peer's first packets are accepted, then the outer path, then the
// outbound SA.
func (p *ikePeer) install(ev ikev2.ChildSAUp) error {
	inCfg, outCfg, err := espConfigs(ev)
	if err != nil {
		return err
	}
	// Byte lifetime (iked "bytes"): ChildBytes is the hard limit, where the
	// SA stops; the rekey starts at 80% of it, leaving time to finish.
	hard := p.cfg.ChildBytes
	soft := hard - hard/5
	inCfg.SoftBytes, inCfg.HardBytes = soft, hard
	outCfg.SoftBytes, outCfg.HardBytes = soft, hard
	in, err := esp.NewSA(inCfg)
	if err != nil {
		return fmt.Errorf("inbound SA: %w", err)
	}
	out, err := esp.NewSA(outCfg)
	if err != nil {
		return fmt.Errorf("outbound SA: %w", err)
	}
	if err := p.tunnel.AddInboundSA(in); err != nil {
		return err
	}
	peer := netip.AddrPortFrom(ev.Peer.Addr().Unmap(), 0)
	if ev.Encap {
		peer = netip.AddrPortFrom(peer.Addr(), ev.Peer.Port())
	}
	if err := p.tunnel.SetOuter(ev.Encap, peer, !ev.Transport); err != nil {
		p.tunnel.RemoveInboundSA(ev.InSPI)
		return err
	}
	p.tunnel.SetOutboundSA(out)
	p.inSA, p.outSA, p.transport = in, out, ev.Transport
	return nil
}
