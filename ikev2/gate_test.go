package ikev2

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

// gatedPair returns an established pair whose B shares the Gate g, the
// way a runner's sessions do.
func gatedPair(t testing.TB, g *Gate) *pair {
	t.Helper()
	ca, cb := gwConfigs(ModeTransport)
	cb.Gate = g
	p := newPair(t, ca, cb)
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatal("no tunnel")
	}
	return p
}

// TestGateAdmit: the Gate sorts datagrams into the priority queue (IKE SAs
// we have), the init queue (IKE_SA_INIT, half-open SAs), stateless answers
// (COOKIE, INVALID_MAJOR_VERSION) and drops, and counts each.
func TestGateAdmit(t *testing.T) {
	g, err := NewGate(GateConfig{})
	if err != nil {
		t.Fatal(err)
	}
	p := gatedPair(t, g)
	ca, _ := gwConfigs(ModeTransport)
	mut := newInitMutator(t, spoofInit(t, ca, nil))
	local := ap500(addrB)
	fromA := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(addrA, port) }
	admit := func(msg []byte, from netip.AddrPort) (Verdict, []byte) {
		return g.Admit(msg, local, from, p.now)
	}
	want := GateStats{}
	expect := func(what string, got, v Verdict) {
		t.Helper()
		if got != v {
			t.Errorf("%s: verdict %v, want %v", what, got, v)
		}
	}

	v, _ := admit([]byte{1, 2, 3}, fromA(500))
	expect("garbage", v, VerdictDrop)
	want.Malformed++
	v, _ = admit(mut.next(1), netip.AddrPortFrom(netip.MustParseAddr("198.51.100.1"), 500))
	expect("unknown peer", v, VerdictDrop)
	want.UnknownPeer++
	v, _ = admit(mut.next(1), fromA(500))
	expect("IKE_SA_INIT", v, VerdictInit)
	want.Init++
	huge := append(append([]byte(nil), mut.next(1)...), make([]byte, DefaultMaxInitLen)...)
	binaryPutLength(huge)
	v, _ = admit(huge, fromA(500))
	expect("oversized IKE_SA_INIT", v, VerdictDrop)
	want.Malformed++

	// A's liveness check on the established IKE SA: priority.
	n := len(p.sentA)
	p.a.sendRequest(p.a.sa, ExchangeInformational, nil, ignoreResponse, p.now)
	p.collect()
	dpd := p.sentA[n].Data
	v, _ = admit(dpd, fromA(500))
	expect("established", v, VerdictEstablished)
	want.Established++
	bad := append([]byte(nil), dpd...)
	bad[hdrSPIr]++ // an SPI we do not have
	v, _ = admit(bad, fromA(500))
	expect("unknown SPI", v, VerdictDrop)
	want.UnknownSPI++

	// Spoofed IKE_SA_INITs reach the session until its half-open SAs pass
	// the cookie threshold; then the Gate answers them itself.
	for i := uint64(2); i <= DefaultCookieThresholdPeer+1; i++ {
		msg := mut.next(i)
		v, _ = admit(msg, fromA(uint16(i)))
		expect("IKE_SA_INIT", v, VerdictInit)
		want.Init++
		p.b.Receive(msg, local, fromA(uint16(i)), p.now)
		p.b.Output()
	}
	if g.HalfOpen() != DefaultCookieThresholdPeer {
		t.Fatalf("half-open %d", g.HalfOpen())
	}
	// The half-open SA's next message (its IKE_AUTH) goes to the init queue.
	h := p.b.half[0]
	auth := Message{Header: Header{SPIi: h.spii, SPIr: h.spir, Exchange: ExchangeIKEAuth, Flags: FlagInitiator, MessageID: 1},
		Payloads: []Payload{&EncryptedPayload{NextPayload: PayloadNone, Data: make([]byte, 32)}}}
	v, _ = admit(auth.Encode(nil), h.initFrom)
	expect("half-open", v, VerdictInit)
	want.Init++

	msg := mut.next(100)
	v, reply := admit(msg, fromA(100))
	expect("over the cookie threshold", v, VerdictReply)
	want.CookiesSent++
	rm, err := ParseMessage(reply)
	if err != nil || !rm.IsResponse() || rm.SPIi != 100 || len(rm.Payloads) != 1 || rm.Payloads[0].(*NotifyPayload).NotifyType != NotifyCookie {
		t.Fatalf("cookie answer %v %v", rm, err)
	}
	// With its cookie the request gets in, at the Gate and at the session.
	m, _ := ParseMessage(msg)
	m.Payloads = append([]Payload{rm.Payloads[0]}, m.Payloads...)
	withCookie := m.Encode(nil)
	v, _ = admit(withCookie, fromA(100))
	expect("with cookie", v, VerdictInit)
	want.Init++
	if dgs, _ := deliverTo(p.b, withCookie, local, fromA(100), p.now); len(dgs) != 1 || len(p.b.half) != DefaultCookieThresholdPeer+1 {
		t.Errorf("the session refused a request with a valid cookie")
	}
	// The cookie is bound to the initiator: another SPI is answered anew.
	binaryPutSPIi(withCookie, 101)
	v, _ = admit(withCookie, fromA(100))
	expect("cookie of another SPI", v, VerdictReply)
	want.CookiesSent++

	// Past the block threshold even a valid cookie is dropped.
	for i := uint64(200); len(p.b.half) < DefaultBlockThresholdPeer; i++ {
		m, _ := ParseMessage(mut.next(i))
		_, ni, _ := scanInit(mut.next(i))
		m.Payloads = append([]Payload{&NotifyPayload{NotifyType: NotifyCookie, Data: g.cookies.make(ni, addrA, i, p.now)}}, m.Payloads...)
		p.b.Receive(m.Encode(nil), local, fromA(uint16(i)), p.now)
		p.b.Output()
	}
	v, _ = admit(withCookie, fromA(100))
	expect("over the block threshold", v, VerdictDrop)
	want.Blocked++
	// The established IKE SA is not affected.
	v, _ = admit(dpd, fromA(500))
	expect("established during a flood", v, VerdictEstablished)
	want.Established++

	// The half-open SAs expire; then an overflowing init queue makes the
	// peer send cookies for a while.
	p.now = p.now.Add(halfOpenLifetime)
	p.b.Tick(p.now)
	if g.HalfOpen() != 0 {
		t.Fatalf("half-open %d after expiry", g.HalfOpen())
	}
	v, _ = admit(mut.next(300), fromA(300))
	expect("after expiry", v, VerdictInit)
	want.Init++
	g.QueueFull(VerdictInit, addrA, p.now)
	want.QueueFullInit++
	g.QueueFull(VerdictEstablished, addrA, p.now)
	want.QueueFullEstablished++
	v, _ = admit(mut.next(301), fromA(301))
	expect("after QueueFull", v, VerdictReply)
	want.CookiesSent++
	v, _ = admit(mut.next(302), fromA(302))
	expect("still overloaded", v, VerdictReply)
	want.CookiesSent++
	p.now = p.now.Add(DefaultOverloadHold)
	v, _ = admit(mut.next(303), fromA(303))
	expect("after the overload hold", v, VerdictInit)
	want.Init++

	// The session's Close withdraws its peer and SPIs.
	p.b.Close(p.now)
	v, _ = admit(dpd, fromA(500))
	expect("after Close", v, VerdictDrop)
	want.UnknownPeer++
	if got := g.Stats(); got != want {
		t.Errorf("stats\n got %+v\nwant %+v", got, want)
	}
	if g.HalfOpen() != 0 || len(g.spis) != 0 || len(g.peers) != 0 {
		t.Errorf("after Close: half-open %d, SPIs %d, peers %d", g.HalfOpen(), len(g.spis), len(g.peers))
	}
}

func binaryPutLength(msg []byte) {
	n := uint32(len(msg))
	msg[hdrLength], msg[hdrLength+1], msg[hdrLength+2], msg[hdrLength+3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
}

func binaryPutSPIi(msg []byte, spi uint64) {
	for i := 7; i >= 0; i-- {
		msg[hdrSPIi+i] = byte(spi)
		spi >>= 8
	}
}

// TestGateConcurrent: receive goroutines call Admit while the session's
// goroutine changes what the Gate knows (run with -race).
func TestGateConcurrent(t *testing.T) {
	g, err := NewGate(GateConfig{})
	if err != nil {
		t.Fatal(err)
	}
	p := gatedPair(t, g)
	ca, _ := gwConfigs(ModeTransport)
	init := spoofInit(t, ca, nil)
	n := len(p.sentA)
	p.a.sendRequest(p.a.sa, ExchangeInformational, nil, ignoreResponse, p.now)
	p.collect()
	dpd := p.sentA[n].Data
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mut := newInitMutator(t, init)
			for i := uint64(1); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				now := epoch.Add(time.Duration(i) * time.Second) // rotates the cookie secret too
				if v, _ := g.Admit(dpd, ap500(addrB), ap500(addrA), now); v != VerdictEstablished {
					t.Errorf("worker %d: established message: %v", w, v)
					return
				}
				g.Admit(mut.next(i<<8|uint64(w)), ap500(addrB), netip.AddrPortFrom(addrA, uint16(i)), now)
			}
		}()
	}
	mut := newInitMutator(t, init)
	for i := uint64(1); i <= 2000; i++ {
		p.b.Receive(mut.next(i), ap500(addrB), netip.AddrPortFrom(addrA, uint16(i)), p.now)
		p.b.Output()
		if i%100 == 0 {
			p.now = p.now.Add(10 * time.Second)
			p.b.Tick(p.now)
			p.b.Output()
		}
	}
	close(stop)
	wg.Wait()
}

// BenchmarkGateAdmit measures the Gate's cost per datagram on the receive
// goroutine: a spoofed IKE_SA_INIT answered with a COOKIE, and a message of
// an established IKE SA.
func BenchmarkGateAdmit(b *testing.B) {
	g, err := NewGate(GateConfig{})
	if err != nil {
		b.Fatal(err)
	}
	p := gatedPair(b, g)
	p.b.RequireCookies(true)
	ca, _ := gwConfigs(ModeTransport)
	mut := newInitMutator(b, spoofInit(b, ca, nil))
	b.Run("cookie", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			if v, _ := g.Admit(mut.next(uint64(i)+1), ap500(addrB), ap500(addrA), p.now); v != VerdictReply {
				b.Fatal(v)
			}
		}
	})
	n := len(p.sentA)
	p.a.sendRequest(p.a.sa, ExchangeInformational, nil, ignoreResponse, p.now)
	p.collect()
	dpd := p.sentA[n].Data
	b.Run("established", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if v, _ := g.Admit(dpd, ap500(addrB), ap500(addrA), p.now); v != VerdictEstablished {
				b.Fatal(v)
			}
		}
	})
}

// BenchmarkResponderInit measures what one spoofed IKE_SA_INIT request
// costs a responder Session: the full answer (proposal, ECP-384 key
// exchange, key schedule; what every request cost before cookies were
// switched on) and the stateless COOKIE answer once they are.
func BenchmarkResponderInit(b *testing.B) {
	ca, cb := gwConfigs(ModeTransport)
	mut := newInitMutator(b, spoofInit(b, ca, nil))
	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		var s *Session
		for i := range b.N {
			if i%DefaultCookieThresholdPeer == 0 {
				s, _ = NewSession(cb, nil) // a fresh table: no cookies yet
			}
			s.Receive(mut.next(uint64(i)+1), ap500(addrB), netip.AddrPortFrom(addrA, uint16(i)), epoch)
			if d, _ := s.Output(); len(d) != 1 || len(d[0].Data) < 200 {
				b.Fatal("no full answer")
			}
		}
	})
	b.Run("cookie", func(b *testing.B) {
		b.ReportAllocs()
		s, _ := NewSession(cb, nil)
		s.RequireCookies(true)
		for i := range b.N {
			s.Receive(mut.next(uint64(i)+1), ap500(addrB), netip.AddrPortFrom(addrA, uint16(i)), epoch)
			if d, _ := s.Output(); len(d) != 1 || len(d[0].Data) > 100 {
				b.Fatal("no cookie answer")
			}
		}
	})
}
