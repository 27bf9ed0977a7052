package gateway

import (
	"crypto/rand"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/greipsec/greipsec/ikev2"
)

// initRequest returns a well-formed IKE_SA_INIT request, as side local
// (the last byte of 192.0.2.x) would send to peer: a real session's first
// message, whose KE a responder must do a key exchange with.
func initRequest(t *testing.T, s *testSide, local, peer int) []byte {
	t.Helper()
	cfg, err := s.parse(t, ikeConf(local, peer, "active", ""))
	if err != nil {
		t.Fatal(err)
	}
	ic := *cfg.Tunnels[0].IKE
	sess, err := ikev2.NewSession(&ic, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close(time.Now())
	sess.Start(time.Now())
	dgrams, _ := sess.Output()
	if len(dgrams) != 1 {
		t.Fatalf("a starting session sent %d datagrams, want its IKE_SA_INIT request", len(dgrams))
	}
	return dgrams[0].Data
}

// flood sends copies of msg with a fresh initiator SPI each from `from`
// to `to` until stop is closed, and returns how many it sent.
func flood(hub *udpHub, msg []byte, from, to netip.AddrPort, stop <-chan struct{}) (sent int) {
	m := append([]byte(nil), msg...)
	for {
		select {
		case <-stop:
			return sent
		default:
		}
		rand.Read(m[:8]) // SPIi: a new IKE SA each time
		hub.inject(from, to, m)
		sent++
	}
}

// TestGateSpoofedInitFlood is the attack of issue 6 items 1 and 2 in
// process: a flood of IKE_SA_INIT requests spoofed with the peer's own
// address at the responder of an established tunnel. The established IKE
// SA's traffic goes through the Gate to the session's priority queue, so
// a rekey of the IKE SA by the peer, which needs an exchange through the
// flooded responder, completes; the 10 ms flow loses nothing; the Gate
// answers the flood with cookies (the spoofer never sees them) and keeps
// the half-open SAs at its block threshold. Before the Gate was wired, the
// flood and the established traffic shared one queue of 64, which the
// flood (a key exchange per request) kept full: the rekey's request was
// dropped every time and the rekey failed.
func TestGateSpoofedInitFlood(t *testing.T) {
	p := newTestPair()
	a, _ := upPair(t, p, ikeConf(1, 2, "passive", ""), ikeConf(2, 1, "active", "retransmit-tries = 2"))
	msg := initRequest(t, p.b, 2, 1)

	f := startFlow(p.a.tun("gre0"), p.b.tun("gre0"), 10*time.Millisecond)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent [2]int
	for i := range sent {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent[i] = flood(p.hub, msg, netip.AddrPortFrom(outerB, 500), netip.AddrPortFrom(outerA, 500), stop)
		}()
	}
	stopFlood := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopFlood()

	// Let the flood fill the init queue, then rekey through it.
	if !waitFor(5*time.Second, func() bool { return p.a.gw.Status().IKEDrops.CookiesSent > 100 }) {
		t.Fatalf("the Gate sent no cookies under the flood: %+v", p.a.gw.Status().IKEDrops)
	}
	if _, err := p.b.gw.Rekey("gre0", TargetIKE); err != nil {
		t.Fatal(err)
	}
	var a2 TunnelStatus
	if !waitFor(10*time.Second, func() bool {
		a2, _ = p.a.gw.TunnelStatus("gre0")
		return tunnelUp(&a2) && a2.IKE.Rekeys == 1
	}) {
		t.Fatalf("IKE SA not rekeyed under the flood: %s\nA's IKE drops %+v", jsonOf(a2), p.a.gw.Status().IKEDrops)
	}
	stopFlood()
	drops := p.a.gw.Status().IKEDrops
	if sent, received := f.end(); received != sent {
		t.Errorf("flow under the flood: %d sent, %d received", sent, received)
	}
	t.Logf("flood of %d spoofed IKE_SA_INIT; A's Gate: %+v", sent[0]+sent[1], drops)
	if drops.QueueFullEstablished != 0 {
		t.Errorf("%d messages of the established IKE SA dropped behind the flood", drops.QueueFullEstablished)
	}
	if drops.HalfOpen > ikev2.DefaultBlockThresholdPeer {
		t.Errorf("%d half-open IKE SAs, more than the block threshold %d", drops.HalfOpen, ikev2.DefaultBlockThresholdPeer)
	}
	if a2.IKE.Establishments != 1 || a2.IKE.Downs != 0 || a2.IKE.Input["half_open_created"] > uint64(ikev2.DefaultBlockThresholdPeer) {
		t.Errorf("the flood changed the tunnel: %s (was %s)", jsonOf(a2.IKE), jsonOf(a.IKE))
	}
}

// TestRestartedPassivePeerHint: A, passive, restarts (all its SAs lost)
// while B, active, goes on sending ESP on the old Child SA. A's dataplane
// tells its session of the unknown SPI (dataplane.Options.UnknownSPI); A,
// with no IKE SA, answers with the one-way INVALID_SPI notification (RFC
// 7296 §1.5) and B sets up a new IKE SA at once. Without the hook, B
// noticed only at its next liveness check (dpd, 5 minutes here). The test
// takes about 12 s: hints act only on IKE SAs older than 10 s.
func TestRestartedPassivePeerHint(t *testing.T) {
	p := newTestPair()
	confA, confB := ikeConf(1, 2, "passive", "dpd = \"5m\""), ikeConf(2, 1, "active", "dpd = \"5m\"")
	a, _ := upPair(t, p, confA, confB)
	// A hint replaces only an IKE SA older than hintMinAge (10 s; younger,
	// it may be a crossing's loser).
	if !waitFor(20*time.Second, func() bool {
		b, _ := p.b.gw.TunnelStatus("gre0")
		return b.IKE != nil && b.IKE.EstablishedSeconds > 10
	}) {
		t.Fatal("B's IKE SA did not stay up 10 s")
	}
	// As SIGKILL: A's DELETE never reaches B.
	p.hub.mu.Lock()
	p.hub.mute = map[netip.Addr]bool{outerA: true}
	p.hub.mu.Unlock()
	p.a.gw.Close()
	p.hub.mu.Lock()
	p.hub.mute = nil
	p.hub.mu.Unlock()
	p.a.start(t, confA)

	f := startFlow(p.b.tun("gre0"), p.a.tun("gre0"), 10*time.Millisecond)
	defer f.end()
	var b2 TunnelStatus
	if !waitFor(8*time.Second, func() bool {
		a2, _ := p.a.gw.TunnelStatus("gre0")
		b2, _ = p.b.gw.TunnelStatus("gre0")
		return tunnelUp(&a2) && tunnelUp(&b2) && a2.IKE.SPIr != a.IKE.SPIr
	}) {
		t.Fatalf("no new IKE SA after A restarted: B %s\nA's device %+v", jsonOf(b2), p.a.gw.Status().Device)
	}
	if b2.IKE.Input["hints"] == 0 {
		t.Errorf("B came back without a hint: %s", jsonOf(b2.IKE))
	}
	before := f.received.Load()
	if !waitFor(5*time.Second, func() bool { return f.received.Load() > before+10 }) {
		t.Errorf("no traffic B to A after the new IKE SA")
	}
}
