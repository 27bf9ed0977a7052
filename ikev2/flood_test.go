package ikev2

import (
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// TestFloodBoundedMemory ("Memory after abuse", issue 6): 100,000 distinct
// spoofed IKE_SA_INIT requests with the peer's address, 1,000 a second of
// virtual time for 100 s (so that half-open SAs expire and are replaced),
// reach a responder Session that has an established IKE
// SA, directly and through a Gate. What the session keeps is bounded (the
// half-open table, the Gate's SPIs), the heap retained afterwards grows by
// less than 1 MiB, and the established IKE SA keeps answering the peer's
// liveness checks and stays exactly as it was.
func TestFloodBoundedMemory(t *testing.T) {
	for _, gated := range []bool{false, true} {
		t.Run(map[bool]string{false: "session", true: "gate"}[gated], func(t *testing.T) {
			g, err := NewGate(GateConfig{})
			if err != nil {
				t.Fatal(err)
			}
			p := gatedPair(t, g)
			sa, child := p.b.sa, p.b.sa.child
			in, out, upAt := child.inSPI, child.outSPI, child.upAt
			peer := p.b.sa.peer
			ca, _ := gwConfigs(ModeTransport)
			mut := newInitMutator(t, spoofInit(t, ca, nil))

			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			before := ms.HeapAlloc
			const n = 100000
			admitted := 0
			for i := 1; i <= n; i++ {
				if i%1000 == 0 {
					p.now = p.now.Add(time.Second)
					p.b.Tick(p.now)
					_, evs := p.b.Output()
					p.evB = append(p.evB, evs...)
				}
				if i%10000 == 0 {
					// The peer's liveness check goes through the flood.
					p.a.sendRequest(p.a.sa, ExchangeInformational, nil, ignoreResponse, p.now)
					p.run(time.Second, func() bool { return p.a.sa.req == nil })
					if p.a.sa.req != nil {
						t.Fatalf("after %d spoofed requests the liveness check went unanswered", i)
					}
				}
				msg := mut.next(uint64(i))
				from := netip.AddrPortFrom(addrA, uint16(1024+i%60000))
				if gated {
					if v, _ := g.Admit(msg, ap500(addrB), from, p.now); v != VerdictInit {
						continue
					}
					admitted++
				}
				p.b.Receive(msg, ap500(addrB), from, p.now)
				_, evs := p.b.Output() // the answers go to the spoofed addresses
				p.evB = append(p.evB, evs...)
				if len(p.b.half) > DefaultBlockThresholdPeer {
					t.Fatalf("%d half-open SAs", len(p.b.half))
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&ms)
			growth := int64(ms.HeapAlloc) - int64(before)
			st := p.b.Stats()
			t.Logf("heap %d → %d bytes (%+d) after %d spoofed IKE_SA_INITs (%d reached the session); half-open %d; stats %+v; gate %+v",
				before, ms.HeapAlloc, growth, n, map[bool]int{false: n, true: admitted}[gated], len(p.b.half), st, g.Stats())
			if growth > 1<<20 {
				t.Errorf("retained heap grew by %d bytes", growth)
			}
			if p.b.sa != sa || p.b.sa.child != child || child.inSPI != in || child.outSPI != out || child.upAt != upAt || p.b.sa.peer != peer || p.b.old != nil || p.b.own != nil ||
				len(downs(p.evB)) != 0 || countEvents[ChildSADown](p.evB) != 0 {
				t.Errorf("the flood changed the established IKE SA: %v", p.evB)
			}
			// Each half-open lifetime, at most the cookie threshold get in.
			const most = uint64(100*time.Second/halfOpenLifetime+2) * DefaultCookieThresholdPeer
			if st.HalfOpenCreated > most || st.HalfOpenExpired == 0 || (!gated && st.CookiesSent < n-most) {
				t.Errorf("stats %+v", st)
			}
			if gated && (uint64(admitted) > most || g.Stats().CookiesSent < n-most) {
				t.Errorf("the gate let %d of %d through: %+v", admitted, n, g.Stats())
			}
		})
	}
}
