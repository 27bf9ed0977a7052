package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/ikev2"
)

// ikePeer is one tunnel's IKE session and the goroutine that owns it,
// routineSession: every call into the session happens there, the operator
// commands and status snapshots too (through ctl).
type ikePeer struct {
	runner *ikeRunner
	log    *slog.Logger
	cfg    *ikev2.Config
	tunnel *dataplane.Tunnel

	in       chan ikeMessage
	ctl      chan peerOp
	stop     chan struct{} // closed to stop the session
	stopOnce sync.Once
	done     chan struct{} // closed when routineSession returns

	// Owned by routineSession.
	session *ikev2.Session
	// inSA and outSA are the Child SA pair installed last.
	inSA, outSA *esp.SA
	transport   bool      // the pair is in ESP transport mode
	pairs       []*saPair // every installed pair, until it is removed
	retired     esp.Stats // the counters of pairs gone, so totals never fall
	// superseded holds the inbound SPIs of Child SAs a rekey replaced:
	// their inbound SA stays rekeyedInboundDelay after their ChildSADown.
	superseded map[uint32]bool
	// pending is a rekeyed Child SA not yet used for sending.
	pending *pendingSwitch
	held    bool // terminated by the operator: nothing starts it again but initiate
	up      bool // an IKE SA was established at the last flush
	// link, if not nil, is told when up changes (link-follows-ike).
	link  func(up bool)
	trace traceLimit // per-message debug lines

	counts peerCounters
}

// peerCounters count a session's life, for status and metrics.
type peerCounters struct {
	established   atomic.Uint64 // IKE SAs established (not counting rekeys)
	ikeRekeys     atomic.Uint64 // IKE SAs rekeyed
	childRekeys   atomic.Uint64 // Child SAs rekeyed
	downs         atomic.Uint64 // IKE SAs gone (deleted, failed, timed out)
	installFailed atomic.Uint64 // Child SAs the dataplane refused
	lastDown      atomic.Pointer[string]
}

// saPair is an installed Child SA: its two ESP SAs and when packets last
// moved through each (sampled once a second).
type saPair struct {
	in, out         *esp.SA
	installed       time.Time
	lastIn, lastOut activity
	// removeAt, when set, is when the inbound SA of a pair replaced by a
	// rekey leaves the dataplane.
	removeAt time.Time
}

// rekeyedInboundDelay is how long the inbound SA of a Child SA replaced by
// a rekey stays installed after its DELETE, for the packets the peer sealed
// with it that are still on their way, reordered behind the DELETE: as
// strongSwan's charon.delete_rekeyed_delay (5 s). Nothing is sent with it.
const rekeyedInboundDelay = 5 * time.Second

// activity records when a packet counter last changed, sampled.
type activity struct {
	n  uint64
	at time.Time // zero: never seen moving
}

func (a *activity) observe(n uint64, now time.Time) {
	if n != a.n {
		a.n, a.at = n, now
	}
}

// peerOp is an operator command or a status request, run by routineSession.
type peerOp struct {
	fn  func(now time.Time) error
	res chan error
}

func newIKEPeer(r *ikeRunner, cfg *ikev2.Config, s *ikev2.Session, t *dataplane.Tunnel) *ikePeer {
	return &ikePeer{
		runner:  r,
		log:     r.log.With("tunnel", cfg.Name),
		cfg:     cfg,
		tunnel:  t,
		session: s,
		in:      make(chan ikeMessage, 64),
		ctl:     make(chan peerOp),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// errBusy: the session did not take a command in time.
var errBusy = errors.New("gateway: the IKE session is busy; try again")

// do runs fn on the session's goroutine and returns its result, or an
// error if the session does not take it before timeout or has stopped.
func (p *ikePeer) do(timeout time.Duration, fn func(now time.Time) error) error {
	op := peerOp{fn: fn, res: make(chan error, 1)}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case p.ctl <- op:
	case <-p.done:
		return ErrClosed
	case <-t.C:
		return errBusy
	}
	select {
	case err := <-op.res:
		return err
	case <-p.done:
		select {
		case err := <-op.res:
			return err
		default:
			return ErrClosed
		}
	}
}

// shutdown stops the session (it sends DELETE for its IKE SA) and waits for
// its goroutine until deadline.
func (p *ikePeer) shutdown(deadline time.Time) {
	p.stopOnce.Do(func() { close(p.stop) })
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.log.Warn("IKE session did not stop in time")
	}
}

// acquireInterval is how often traffic without an SA may make a session
// start at once.
const acquireInterval = 5 * time.Second

// routineSession owns p.session: every call into it happens here.
func (p *ikePeer) routineSession() {
	defer close(p.done)
	p.session.Start(time.Now())
	p.flush()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// Once a second the dataplane's counters tell whether packets are
	// dropped for want of an SA (then an active session starts now rather
	// than after its back-off), whether ESP arrived from the peer (then no
	// liveness check is needed), and when each SA last moved a packet.
	counters := time.NewTicker(time.Second)
	defer counters.Stop()
	var noSA, rx uint64
	var rxSA *esp.SA // the SA rx counts for
	var acquired time.Time
	// The dataplane counts bytes and sequence numbers; the Child SA's
	// channels close when it is due for rekeying by them.
	var rekeyAsked *esp.SA
	for {
		s := p.session
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
			now := time.Now()
			p.traceMessage(m.data, true, m.local, m.peer, now)
			s.Receive(m.data, m.local, m.peer, now)
		case <-timer.C:
			s.Tick(time.Now())
		case <-inSoft:
			rekeyAsked = p.inSA
			s.RekeyChild(p.inSA.SPI(), time.Now())
		case <-outSoft:
			rekeyAsked = p.inSA
			s.RekeyChild(p.inSA.SPI(), time.Now())
		case op := <-p.ctl:
			op.res <- op.fn(time.Now())
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
				if !p.held {
					s.Acquire(now)
				}
			}
			for _, pair := range p.pairs {
				pair.lastIn.observe(pair.in.Stats().RxPackets, now)
				pair.lastOut.observe(pair.out.Stats().TxPackets, now)
			}
			p.removeRetired(now, false)
			if pend := p.pending; pend != nil && (pend.in.Stats().RxPackets > 0 || !now.Before(pend.deadline)) {
				p.switchOutbound()
			}
		case <-p.stop:
			p.session.Close(time.Now())
			p.flush()
			p.removeRetired(time.Now(), true)
			return
		}
		p.flush()
	}
}

// flush sends the session's datagrams and acts on its events.
func (p *ikePeer) flush() {
	r := p.runner
	dgrams, events := p.session.Output()
	now := time.Now()
	for _, d := range dgrams {
		p.traceMessage(d.Data, false, d.Local, d.Peer, now)
		if err := r.send(d); err != nil {
			r.sendFailed(d, err)
		}
	}
	wasUp := p.up
	for _, ev := range events {
		if up, ok := ev.(ikev2.IKESAUp); ok {
			what := "IKE SA established"
			if wasUp {
				what = "IKE SA rekeyed"
				p.counts.ikeRekeys.Add(1)
			} else {
				p.counts.established.Add(1)
			}
			wasUp = true
			p.log.Info(what, "spi_i", fmt.Sprintf("%016x", up.SPIi), "spi_r", fmt.Sprintf("%016x", up.SPIr),
				"initiator", up.Initiator, "nat", up.NAT)
			continue
		}
		p.handle(ev)
	}
	if up := p.session.Established(); up != p.up && p.link != nil {
		p.link(up)
	}
	p.up = p.session.Established()
	if !p.up {
		// No IKE SA: the Child SAs it replaced go with it.
		p.removeRetired(now, true)
	}
}

// traceMessage logs one IKE message at debug level, rate limited: its
// exchange, message ID, direction, payload types and the peer.
func (p *ikePeer) traceMessage(msg []byte, inbound bool, local, peer netip.AddrPort, now time.Time) {
	if !p.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	ok, suppressed := p.trace.allow(now)
	if !ok {
		return
	}
	info := p.session.Describe(msg, inbound)
	dir, kind := "out", "request"
	if inbound {
		dir = "in"
	}
	if info.Response {
		kind = "response"
	}
	args := []any{"dir", dir, "exchange", info.Exchange.String(), "msgid", info.MessageID, "type", kind,
		"payloads", info.Payloads, "local", local.String(), "peer", peer.String(),
		"spi_i", fmt.Sprintf("%016x", info.SPIi), "spi_r", fmt.Sprintf("%016x", info.SPIr), "bytes", len(msg)}
	if info.Err != "" {
		args = append(args, "parse_err", info.Err)
	}
	if suppressed > 0 {
		args = append(args, "traces_suppressed", suppressed)
	}
	p.log.Debug("IKE message", args...)
}

func (p *ikePeer) handle(ev ikev2.Event) {
	log := p.log
	switch ev := ev.(type) {
	case ikev2.IKESADown:
		p.counts.downs.Add(1)
		reason := ev.Reason
		if ev.Err != nil {
			reason += ": " + ev.Err.Error()
		}
		p.counts.lastDown.Store(&reason)
		log.Warn("IKE SA down", "reason", ev.Reason, "err", ev.Err)
	case ikev2.ChildSAUp:
		if err := p.install(ev); err != nil {
			p.counts.installFailed.Add(1)
			log.Error("installing Child SA failed", "err", err)
			return
		}
		if ev.Rekeyed != nil {
			p.counts.childRekeys.Add(1)
			if p.superseded == nil {
				p.superseded = make(map[uint32]bool)
			}
			p.superseded[ev.Rekeyed.InSPI] = true
		}
		mode := "tunnel"
		if ev.Transport {
			mode = "transport"
		}
		log.Info("Child SA installed", "spi_in", fmt.Sprintf("0x%08x", ev.InSPI), "spi_out", fmt.Sprintf("0x%08x", ev.OutSPI),
			"mode", mode, "udp_encap", ev.Encap, "peer", ev.Peer, "esn", ev.ESN)
	case ikev2.ChildSAOutbound:
		// The peer has the rekeyed SA's inbound half: send with it.
		if pend := p.pending; pend != nil && pend.in.SPI() == ev.InSPI {
			p.switchOutbound()
		}
	case ikev2.ChildSADown:
		p.uninstall(ev)
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
			p.runner.sendFailed(ikev2.Datagram{Local: ev.Local, Peer: ev.Peer}, err)
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
	sel := childSelectors(ev)
	if err := p.tunnel.AddInboundSA(in, sel); err != nil {
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
	// A rekey: keep sending with the replaced SA until the peer is known
	// to have the new inbound SA (switchOutbound).
	if cur := p.tunnel.OutboundSA(); ev.Rekeyed != nil && cur != nil && cur.SPI() == ev.Rekeyed.OutSPI {
		p.pending = &pendingSwitch{out: out, in: in, sel: sel, replaces: ev.Rekeyed.InSPI, deadline: time.Now().Add(pendingSwitchTimeout)}
	} else {
		p.pending = nil
		if err := p.tunnel.SetOutboundSA(out, sel); err != nil {
			p.tunnel.RemoveInboundSA(ev.InSPI)
			return err
		}
	}
	p.inSA, p.outSA, p.transport = in, out, ev.Transport
	p.pairs = append(p.pairs, &saPair{in: in, out: out, installed: time.Now()})
	return nil
}

// childSelectors returns the Child SA's negotiated traffic selectors, which
// the dataplane enforces in route mode (RFC 4301 §5).
func childSelectors(ev ikev2.ChildSAUp) *dataplane.Selectors {
	conv := func(ts []ikev2.Selector) []dataplane.Selector {
		out := make([]dataplane.Selector, len(ts))
		for i, s := range ts {
			out[i] = dataplane.Selector{Prefix: s.Prefix, Protocol: s.Protocol}
		}
		return out
	}
	return &dataplane.Selectors{Local: conv(ev.LocalTS), Peer: conv(ev.PeerTS)}
}

// pendingSwitch is a rekeyed Child SA whose outbound SA is not in use yet
// (make before break, ikev2.ChildSAUp). The responder of a CREATE_CHILD_SA
// installs its new SAs as it sends its response, and the initiator (say
// strongSwan keying the Linux kernel, whose inbound SA is larval until
// then) when the response arrives: the responder sending with the new SA
// at once loses what arrives before. The initiator has the mirror problem
// with a responder that installs after answering, as this runner does
// (flush sends, then acts on events). Either side therefore goes on
// sending with the replaced SA until the peer has shown that it has the
// new one: a packet arrives on the new inbound SA (the peer installs
// inbound before it sends), or the replaced SA's DELETE exchange is done
// (ikev2.ChildSAOutbound: both have processed the rekey), or the replaced
// SA is gone, or pendingSwitchTimeout passes.
type pendingSwitch struct {
	out, in  *esp.SA
	sel      *dataplane.Selectors
	replaces uint32 // inbound SPI of the Child SA it replaces
	deadline time.Time
}

// pendingSwitchTimeout bounds how long a rekeyed Child SA waits for the
// peer before it is used for sending anyway.
const pendingSwitchTimeout = 3 * time.Second

// switchOutbound starts sending with the pending rekeyed SA.
func (p *ikePeer) switchOutbound() {
	if p.pending != nil {
		// The selectors were checked when the inbound SA was installed.
		if err := p.tunnel.SetOutboundSA(p.pending.out, p.pending.sel); err != nil {
			p.log.Error("switching to the rekeyed outbound SA failed", "err", err)
		}
		p.pending = nil
	}
}

// uninstall takes a Child SA pair out of the dataplane, and adds its
// counters to the retired totals; the inbound SA of one a rekey replaced
// stays rekeyedInboundDelay longer (removeRetired takes it out).
func (p *ikePeer) uninstall(ev ikev2.ChildSADown) {
	if pend := p.pending; pend != nil {
		switch ev.InSPI {
		case pend.replaces:
			p.switchOutbound()
		case pend.in.SPI():
			p.pending = nil
		}
	}
	if p.inSA != nil && p.inSA.SPI() == ev.InSPI {
		p.inSA, p.outSA = nil, nil
	}
	if cur := p.tunnel.OutboundSA(); cur != nil && cur.SPI() == ev.OutSPI {
		p.tunnel.SetOutboundSA(nil, nil)
	}
	i := slices.IndexFunc(p.pairs, func(x *saPair) bool { return x.in.SPI() == ev.InSPI })
	if p.superseded[ev.InSPI] {
		delete(p.superseded, ev.InSPI)
		if i >= 0 {
			p.pairs[i].removeAt = time.Now().Add(rekeyedInboundDelay)
			return
		}
	}
	p.tunnel.RemoveInboundSA(ev.InSPI)
	if i >= 0 {
		p.retire(i)
	}
}

// removeRetired takes out of the dataplane the inbound SAs of rekeyed pairs
// whose delay has passed at now, or all of them.
func (p *ikePeer) removeRetired(now time.Time, all bool) {
	for i := 0; i < len(p.pairs); {
		pair := p.pairs[i]
		if pair.removeAt.IsZero() || !all && now.Before(pair.removeAt) {
			i++
			continue
		}
		p.tunnel.RemoveInboundSA(pair.in.SPI())
		p.retire(i)
	}
}

// retire removes p.pairs[i], adding its counters to the retired totals.
func (p *ikePeer) retire(i int) {
	addStats(&p.retired, p.pairs[i].in.Stats())
	addStats(&p.retired, p.pairs[i].out.Stats())
	p.pairs = slices.Delete(p.pairs, i, i+1)
}

// addStats adds the counters of b to a.
func addStats(a *esp.Stats, b esp.Stats) {
	a.TxPackets += b.TxPackets
	a.TxBytes += b.TxBytes
	a.RxPackets += b.RxPackets
	a.RxBytes += b.RxBytes
	a.AuthFailures += b.AuthFailures
	a.Replays += b.Replays
	a.BadPadding += b.BadPadding
	a.BadNextHeader += b.BadNextHeader
	a.BadGRE += b.BadGRE
	a.BadSelector += b.BadSelector
	a.Other += b.Other
}
