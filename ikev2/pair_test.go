package ikev2

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// The pair harness runs two Sessions in one test with a virtual clock. It
// moves Datagrams between them, and a filter can drop, duplicate or delay
// any of them; when nothing is in flight, the clock jumps to the next
// timeout (RFC 7296 exchanges stepped one message at a time, as strongSwan's
// exchange tests do).

var (
	addrA = netip.MustParseAddr("192.0.2.1")
	addrB = netip.MustParseAddr("192.0.2.2")
	epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// pairAction is what the filter does with one datagram.
type pairAction struct {
	drop  bool
	dup   bool
	delay time.Duration
}

// pairWire is one datagram on its way.
type pairWire struct {
	from string // "A" or "B"
	d    Datagram
	at   time.Time
}

type pair struct {
	t      testing.TB
	now    time.Time
	a, b   *Session
	evA    []Event
	evB    []Event
	sentA  []Datagram // everything A sent, in order
	sentB  []Datagram
	flight []pairWire
	// filter decides the fate of the n-th datagram (from 0) sent by from.
	filter func(from string, n int, d Datagram) pairAction
	// natA rewrites the source port of A's datagrams, as a NAT in front of
	// A would: port+natShift (10000 when zero).
	natA     bool
	natShift uint16
}

func newPair(t testing.TB, ca, cb *Config) *pair {
	t.Helper()
	a, err := NewSession(ca, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSession(cb, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &pair{t: t, now: epoch, a: a, b: b}
}

// collect takes the output of both sessions and puts it on the pairWire.
func (p *pair) collect() {
	for _, side := range []string{"A", "B"} {
		s := p.a
		if side == "B" {
			s = p.b
		}
		dgs, evs := s.Output()
		for _, d := range dgs {
			n := len(p.sentA)
			if side == "A" {
				p.sentA = append(p.sentA, d)
			} else {
				n = len(p.sentB)
				p.sentB = append(p.sentB, d)
			}
			var act pairAction
			if p.filter != nil {
				act = p.filter(side, n, d)
			}
			if act.drop {
				continue
			}
			w := pairWire{from: side, d: d, at: p.now.Add(act.delay)}
			p.flight = append(p.flight, w)
			if act.dup {
				p.flight = append(p.flight, w)
			}
		}
		if side == "A" {
			p.evA = append(p.evA, evs...)
		} else {
			p.evB = append(p.evB, evs...)
		}
	}
}

// deliverDue delivers the first datagram due now; it reports whether there
// was one.
func (p *pair) deliverDue() bool {
	for i, w := range p.flight {
		if w.at.After(p.now) {
			continue
		}
		p.flight = append(p.flight[:i:i], p.flight[i+1:]...)
		src, dst := w.d.Local, w.d.Peer
		shift := p.natShift
		if shift == 0 {
			shift = 10000
		}
		if w.from == "A" && p.natA {
			src = netip.AddrPortFrom(src.Addr(), src.Port()+shift)
		}
		to := p.b
		if w.from == "B" {
			to = p.a
			if p.natA {
				dst = netip.AddrPortFrom(dst.Addr(), dst.Port()-shift)
			}
		}
		to.Receive(w.d.Data, dst, src, p.now)
		return true
	}
	return false
}

// run runs the pair until done returns true or the virtual time limit
// passes. It reports whether done became true.
func (p *pair) run(limit time.Duration, done func() bool) bool {
	end := p.now.Add(limit)
	for steps := 0; steps < 100000; steps++ {
		p.collect()
		if done != nil && done() {
			return true
		}
		if p.deliverDue() {
			continue
		}
		next := time.Time{}
		for _, t := range []time.Time{p.a.NextTimeout(), p.b.NextTimeout()} {
			if !t.IsZero() && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
		for _, w := range p.flight {
			if next.IsZero() || w.at.Before(next) {
				next = w.at
			}
		}
		if next.IsZero() || next.After(end) {
			p.now = end
			return done != nil && done()
		}
		if next.After(p.now) {
			p.now = next
		}
		p.a.Tick(p.now)
		p.b.Tick(p.now)
	}
	p.t.Fatal("pair: too many steps")
	return false
}

// start starts both sessions.
func (p *pair) start() {
	p.a.Start(p.now)
	p.b.Start(p.now)
}

func childUps(evs []Event) []ChildSAUp {
	var r []ChildSAUp
	for _, e := range evs {
		if u, ok := e.(ChildSAUp); ok {
			r = append(r, u)
		}
	}
	return r
}

func countEvents[T Event](evs []Event) int {
	n := 0
	for _, e := range evs {
		if _, ok := e.(T); ok {
			n++
		}
	}
	return n
}

func downs(evs []Event) []IKESADown {
	var r []IKESADown
	for _, e := range evs {
		if d, ok := e.(IKESADown); ok {
			r = append(r, d)
		}
	}
	return r
}

// bothUp reports whether both sides have emitted a ChildSAUp.
func (p *pair) bothUp() bool {
	return len(childUps(p.evA)) > 0 && len(childUps(p.evB)) > 0
}

// checkChildPair checks that the last Child SAs of A and B are the two ends
// of one SA pair: SPIs crossed, keys crossed, same transforms.
func (p *pair) checkChildPair() (ChildSAUp, ChildSAUp) {
	p.t.Helper()
	ua, ub := childUps(p.evA), childUps(p.evB)
	if len(ua) == 0 || len(ub) == 0 {
		p.t.Fatalf("no Child SA: A events %v, B events %v", p.evA, p.evB)
	}
	a, b := ua[len(ua)-1], ub[len(ub)-1]
	if a.InSPI != b.OutSPI || a.OutSPI != b.InSPI || a.InSPI == a.OutSPI {
		p.t.Errorf("SPIs not crossed: A in %#x out %#x, B in %#x out %#x", a.InSPI, a.OutSPI, b.InSPI, b.OutSPI)
	}
	// NULL encryption has no encryption keys; the integrity keys differ.
	inKey, outKey := append(a.InKey, a.InAuthKey...), append(a.OutKey, a.OutAuthKey...)
	if !bytes.Equal(a.InKey, b.OutKey) || !bytes.Equal(a.OutKey, b.InKey) || bytes.Equal(inKey, outKey) {
		p.t.Errorf("keys not crossed")
	}
	if a.Encr != b.Encr || a.KeyBits != b.KeyBits || a.ESN != b.ESN || a.Transport != b.Transport || a.Encap != b.Encap {
		p.t.Errorf("transforms differ: A %+v, B %+v", a, b)
	}
	if len(a.InKey) == 0 && a.Encr != uint16(EncrNull) {
		p.t.Errorf("empty keys")
	}
	if !bytes.Equal(a.InAuthKey, b.OutAuthKey) || !bytes.Equal(a.OutAuthKey, b.InAuthKey) || a.Integ != b.Integ {
		p.t.Errorf("integrity keys not crossed")
	}
	return a, b
}

// gwConfigs returns the configs of two gateways A (active) and B (passive)
// for GRE over ESP between their addresses.
func gwConfigs(mode ChildMode) (*Config, *Config) {
	ike := []IKEProposal{{Encr: uint16(EncrAESCBC), KeyBits: 256, Integ: uint16(IntegHMACSHA2_384_192), PRF: uint16(PRFHMACSHA2_384), DH: uint16(DHECP384)}}
	esp := []ESPProposal{{Encr: uint16(EncrAESGCM16), KeyBits: 256}}
	gre := func(a netip.Addr) []Selector { return []Selector{{Prefix: netip.PrefixFrom(a, 32), Protocol: 47}} }
	a := &Config{
		Name: "a", Role: RoleActive, LocalAddr: addrA, PeerAddr: addrB, PSK: []byte("secret"),
		IKEProposals: ike, ESPProposals: esp, Mode: mode,
		LocalTS: gre(addrA), PeerTS: gre(addrB),
	}
	b := &Config{
		Name: "b", Role: RolePassive, LocalAddr: addrB, PeerAddr: addrA, PSK: []byte("secret"),
		IKEProposals: ike, ESPProposals: esp, Mode: mode,
		LocalTS: gre(addrB), PeerTS: gre(addrA),
	}
	return a, b
}

func routeConfigs() (*Config, *Config) {
	a, b := gwConfigs(ModeTunnel)
	all := []Selector{{Prefix: netip.MustParsePrefix("0.0.0.0/0")}, {Prefix: netip.MustParsePrefix("::/0")}}
	a.LocalTS, a.PeerTS, b.LocalTS, b.PeerTS = all, all, all, all
	return a, b
}

func TestPairModes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mk        func() (*Config, *Config)
		transport bool
		nTS       int
	}{
		{"gre-transport", func() (*Config, *Config) { return gwConfigs(ModeTransport) }, true, 1},
		{"gre-transport-or-tunnel", func() (*Config, *Config) { return gwConfigs(ModeTransportOrTunnel) }, true, 1},
		{"gre-tunnel", func() (*Config, *Config) { return gwConfigs(ModeTunnel) }, false, 1},
		{"route", routeConfigs, false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, cb := tc.mk()
			p := newPair(t, ca, cb)
			p.start()
			if !p.run(time.Minute, p.bothUp) {
				t.Fatalf("no tunnel: A %v; B %v", p.evA, p.evB)
			}
			a, b := p.checkChildPair()
			if a.Transport != tc.transport {
				t.Errorf("transport = %v, want %v", a.Transport, tc.transport)
			}
			if len(a.LocalTS) != tc.nTS || len(b.PeerTS) != tc.nTS || a.LocalTS[0] != b.PeerTS[0] || a.PeerTS[0] != b.LocalTS[0] {
				t.Errorf("selectors: A %v↔%v, B %v↔%v", a.LocalTS, a.PeerTS, b.LocalTS, b.PeerTS)
			}
			if a.Encap || a.Peer != netip.AddrPortFrom(addrB, 0) || b.Peer != netip.AddrPortFrom(addrA, 0) {
				t.Errorf("ESP peers %v, %v without NAT", a.Peer, b.Peer)
			}
			if !p.a.Established() || !p.b.Established() {
				t.Error("not established")
			}
			if countEvents[IKESAUp](p.evA) != 1 || countEvents[IKESAUp](p.evB) != 1 {
				t.Errorf("IKESAUp events: %v / %v", p.evA, p.evB)
			}
			// A quiet tunnel stays up: nothing is sent for an hour.
			n := len(p.sentA) + len(p.sentB)
			p.run(50*time.Minute, nil)
			if len(p.sentA)+len(p.sentB) != n || len(downs(p.evA))+len(downs(p.evB)) != 0 {
				t.Errorf("idle tunnel sent %d datagrams, events %v %v", len(p.sentA)+len(p.sentB)-n, p.evA, p.evB)
			}
		})
	}
}

func TestPairTransforms(t *testing.T) {
	type ikeSet struct {
		encr    TransformID
		keyBits int
		integ   TransformID
		prf     TransformID
	}
	ikeSets := []ikeSet{
		{EncrAESCBC, 128, IntegHMACSHA2_256_128, PRFHMACSHA2_256},
		{EncrAESCBC, 256, IntegHMACSHA2_256_128, PRFHMACSHA2_256},
		{EncrAESCBC, 128, IntegHMACSHA2_384_192, PRFHMACSHA2_384},
		{EncrAESCBC, 256, IntegHMACSHA2_384_192, PRFHMACSHA2_384},
		{EncrAESCBC, 128, IntegHMACSHA2_512_256, PRFHMACSHA2_512},
		{EncrAESCBC, 256, IntegHMACSHA2_512_256, PRFHMACSHA2_512},
		{EncrAESGCM16, 128, IntegNone, PRFHMACSHA2_256},
		{EncrAESGCM16, 256, IntegNone, PRFHMACSHA2_384},
	}
	groups := []TransformID{DHModP2048, DHECP256, DHECP384, DHECP521, DHCurve25519}
	esps := []ESPProposal{
		{Encr: uint16(EncrAESGCM16), KeyBits: 128},
		{Encr: uint16(EncrAESGCM16), KeyBits: 256},
		{Encr: uint16(EncrChaCha20Poly1305)},
		{Encr: uint16(EncrAESGCM16), KeyBits: 128, ESN: true},
		{Encr: uint16(EncrAESGCM16), KeyBits: 256, ESN: true},
		{Encr: uint16(EncrChaCha20Poly1305), ESN: true},
	}
	i := 0
	for _, is := range ikeSets {
		for _, g := range groups {
			// Every IKE set with every group; the ESP sets rotate so
			// that each is used with several IKE sets.
			esp := esps[i%len(esps)]
			i++
			name := fmt.Sprintf("%v-%d-%v-%v-%v/%v", is.encr.Name(TransformENCR), is.keyBits, is.integ.Name(TransformINTEG), is.prf.Name(TransformPRF), g.Name(TransformDH), esp)
			t.Run(name, func(t *testing.T) {
				ca, cb := gwConfigs(ModeTransport)
				ike := []IKEProposal{{Encr: uint16(is.encr), KeyBits: is.keyBits, Integ: uint16(is.integ), PRF: uint16(is.prf), DH: uint16(g)}}
				ca.IKEProposals, cb.IKEProposals = ike, ike
				ca.ESPProposals, cb.ESPProposals = []ESPProposal{esp}, []ESPProposal{esp}
				p := newPair(t, ca, cb)
				p.start()
				if !p.run(time.Minute, p.bothUp) {
					t.Fatalf("no tunnel: A %v; B %v", p.evA, p.evB)
				}
				a, _ := p.checkChildPair()
				if a.Encr != esp.Encr || a.KeyBits != esp.KeyBits || a.ESN != esp.ESN {
					t.Errorf("child %+v, want %+v", a, esp)
				}
				wantKey := 36
				if esp.Encr == uint16(EncrAESGCM16) {
					wantKey = esp.KeyBits/8 + 4
				}
				if len(a.InKey) != wantKey {
					t.Errorf("key length %d, want %d", len(a.InKey), wantKey)
				}
			})
		}
	}
}

func TestPairWrongPSK(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	cb.PSK = []byte("other")
	p := newPair(t, ca, cb)
	p.start()
	p.run(time.Second, func() bool { return len(downs(p.evA)) > 0 && len(downs(p.evB)) > 0 })
	for side, evs := range map[string][]Event{"A": p.evA, "B": p.evB} {
		d := downs(evs)
		if len(d) == 0 || !strings.Contains(d[0].Reason, "AUTHENTICATION_FAILED") {
			t.Errorf("%s: downs %v, want AUTHENTICATION_FAILED", side, d)
		}
		if countEvents[ChildSAUp](evs) != 0 || countEvents[IKESAUp](evs) != 0 {
			t.Errorf("%s: SA up with a wrong PSK: %v", side, evs)
		}
	}
	// The active side tries again after a back-off, and fails again.
	p.run(10*time.Second, nil)
	if n := len(downs(p.evA)); n < 2 {
		t.Errorf("A did not retry: %d downs", n)
	}
}

func TestPairWrongID(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	cb.PeerID = IdentityFQDN("someone.example")
	p := newPair(t, ca, cb)
	p.start()
	p.run(time.Second, func() bool { return len(downs(p.evA)) > 0 && len(downs(p.evB)) > 0 })
	if d := downs(p.evB); len(d) == 0 || !strings.Contains(d[0].Reason, "someone.example") {
		t.Errorf("B: %v", d)
	}
	if d := downs(p.evA); len(d) == 0 || !strings.Contains(d[0].Reason, "AUTHENTICATION_FAILED") {
		t.Errorf("A: %v", d)
	}
}

func TestPairFQDNIDs(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	ca.LocalID, cb.PeerID = IdentityFQDN("a.example"), IdentityFQDN("a.example")
	ca.PeerID, cb.LocalID = IdentityRFC822("b@example"), IdentityRFC822("b@example")
	p := newPair(t, ca, cb)
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatalf("no tunnel: A %v; B %v", p.evA, p.evB)
	}
	p.checkChildPair()
}

func TestPairNoProposalChosen(t *testing.T) {
	t.Run("IKE", func(t *testing.T) {
		ca, cb := gwConfigs(ModeTransport)
		cb.IKEProposals = []IKEProposal{{Encr: uint16(EncrAESGCM16), KeyBits: 128, PRF: uint16(PRFHMACSHA2_256), DH: uint16(DHECP384)}}
		p := newPair(t, ca, cb)
		p.start()
		// The answer is not authenticated: A waits for a valid one until
		// its retransmissions run out (N2), then reports what it got.
		p.run(3*time.Minute, func() bool { return len(downs(p.evA)) > 0 && len(downs(p.evB)) > 0 })
		if d := downs(p.evA); len(d) == 0 || !strings.Contains(d[0].Reason, "NO_PROPOSAL_CHOSEN") {
			t.Errorf("A: %v", d)
		}
		if d := downs(p.evB); len(d) == 0 || !strings.Contains(d[0].Reason, "NO_PROPOSAL_CHOSEN") {
			t.Errorf("B: %v", d)
		}
	})
	t.Run("ESP", func(t *testing.T) {
		ca, cb := gwConfigs(ModeTransport)
		cb.ESPProposals = []ESPProposal{{Encr: uint16(EncrChaCha20Poly1305)}}
		p := newPair(t, ca, cb)
		p.start()
		p.run(time.Second, func() bool { return len(downs(p.evA)) > 0 && len(downs(p.evB)) > 0 })
		if d := downs(p.evA); len(d) == 0 || !strings.Contains(d[0].Reason, "NO_PROPOSAL_CHOSEN") {
			t.Errorf("A: %v", d)
		}
		if d := downs(p.evB); len(d) == 0 || !strings.Contains(d[0].Reason, "NO_PROPOSAL_CHOSEN") {
			t.Errorf("B: %v", d)
		}
		if countEvents[ChildSAUp](p.evA)+countEvents[ChildSAUp](p.evB) != 0 {
			t.Error("Child SA up without a common proposal")
		}
	})
}

func TestPairTSUnacceptable(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	cb.PeerTS = []Selector{{Prefix: netip.MustParsePrefix("198.51.100.7/32"), Protocol: 47}}
	p := newPair(t, ca, cb)
	p.start()
	p.run(time.Second, func() bool { return len(downs(p.evA)) > 0 && len(downs(p.evB)) > 0 })
	if d := downs(p.evA); len(d) == 0 || !strings.Contains(d[0].Reason, "TS_UNACCEPTABLE") {
		t.Errorf("A: %v", d)
	}
	if d := downs(p.evB); len(d) == 0 || !strings.Contains(d[0].Reason, "TS_UNACCEPTABLE") {
		t.Errorf("B: %v", d)
	}
}

func TestPairTransportRefused(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	cb.Mode = ModeTunnel
	p := newPair(t, ca, cb)
	p.start()
	p.run(time.Second, func() bool { return len(downs(p.evA)) > 0 && len(downs(p.evB)) > 0 })
	if d := downs(p.evA); len(d) == 0 || !strings.Contains(d[0].Reason, "refused transport mode") {
		t.Errorf("A: %v", d)
	}
	// B installed a tunnel-mode child, which A's DELETE removed.
	if countEvents[ChildSAUp](p.evB) != countEvents[ChildSADown](p.evB) || len(downs(p.evB)) == 0 {
		t.Errorf("B: %v", p.evB)
	}
}

func TestPairTransportFallback(t *testing.T) {
	ca, cb := gwConfigs(ModeTransportOrTunnel)
	cb.Mode = ModeTunnel
	p := newPair(t, ca, cb)
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatalf("no tunnel: A %v; B %v", p.evA, p.evB)
	}
	if a, _ := p.checkChildPair(); a.Transport {
		t.Error("transport mode, want the tunnel-mode fallback")
	}
}

func TestPairInvalidKE(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	p1 := IKEProposal{Encr: uint16(EncrAESGCM16), KeyBits: 256, PRF: uint16(PRFHMACSHA2_384), DH: uint16(DHECP256)}
	p2 := p1
	p2.DH = uint16(DHCurve25519)
	ca.IKEProposals = []IKEProposal{p1, p2}
	cb.IKEProposals = []IKEProposal{p2}
	p := newPair(t, ca, cb)
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatalf("no tunnel: A %v; B %v", p.evA, p.evB)
	}
	p.checkChildPair()
	// A's first request carried an ECP-256 KE; B answered INVALID_KE_PAYLOAD.
	m, err := ParseMessage(p.sentB[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	n, ok := m.Payloads[0].(*NotifyPayload)
	if !ok || n.NotifyType != NotifyInvalidKEPayload || !bytes.Equal(n.Data, []byte{0, 31}) {
		t.Errorf("B's first answer: %v", m)
	}
	if p.a.sa.prop.DH != uint16(DHCurve25519) {
		t.Errorf("IKE SA group %d", p.a.sa.prop.DH)
	}
}

func TestPairCookie(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	p := newPair(t, ca, cb)
	p.b.RequireCookies(true)
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatalf("no tunnel: A %v; B %v", p.evA, p.evB)
	}
	p.checkChildPair()
	m, err := ParseMessage(p.sentB[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := m.Payloads[0].(*NotifyPayload); !ok || n.NotifyType != NotifyCookie || len(m.Payloads) != 1 {
		t.Errorf("B's first answer: %v", m)
	}
	m, err = ParseMessage(p.sentA[1].Data)
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := m.Payloads[0].(*NotifyPayload); !ok || n.NotifyType != NotifyCookie {
		t.Errorf("A's second request: %v", m)
	}
	if p.b.sa.spii != p.a.sa.spii {
		t.Error("SPIs differ")
	}
}

func TestPairNAT(t *testing.T) {
	t.Run("forced", func(t *testing.T) {
		ca, cb := gwConfigs(ModeTunnel)
		ca.ForceEncap = true
		p := newPair(t, ca, cb)
		p.start()
		if !p.run(time.Minute, p.bothUp) {
			t.Fatalf("no tunnel: A %v; B %v", p.evA, p.evB)
		}
		a, b := p.checkChildPair()
		if !a.Encap || !b.Encap {
			t.Error("no UDP encapsulation")
		}
		if a.Peer != netip.AddrPortFrom(addrB, 4500) || b.Peer != netip.AddrPortFrom(addrA, 4500) {
			t.Errorf("ESP peers %v %v", a.Peer, b.Peer)
		}
		// IKE_SA_INIT on 500, IKE_AUTH on 4500.
		if p.sentA[0].Peer.Port() != 500 || p.sentA[1].Peer.Port() != 4500 || p.sentA[1].Local.Port() != 4500 {
			t.Errorf("A's ports: %v, %v", p.sentA[0], p.sentA[1])
		}
		if p.sentB[1].Local.Port() != 4500 || p.sentB[1].Peer.Port() != 4500 {
			t.Errorf("B's ports: %v->%v", p.sentB[1].Local, p.sentB[1].Peer)
		}
		// A fakes being behind a NAT: it sends keepalives, B does not.
		p.run(70*time.Second, nil)
		ka := 0
		for _, e := range p.evA {
			if k, ok := e.(SendKeepalive); ok {
				ka++
				if k.Local.Port() != 4500 || k.Peer != netip.AddrPortFrom(addrB, 4500) {
					t.Errorf("keepalive %v", k)
				}
			}
		}
		if ka != 3 || countEvents[SendKeepalive](p.evB) != 0 {
			t.Errorf("keepalives: A %d, B %d", ka, countEvents[SendKeepalive](p.evB))
		}
	})
	t.Run("real", func(t *testing.T) {
		ca, cb := gwConfigs(ModeTunnel)
		p := newPair(t, ca, cb)
		p.natA = true // A's ports change on the way: 500→10500, 4500→14500
		p.start()
		if !p.run(time.Minute, p.bothUp) {
			t.Fatalf("no tunnel: A %v; B %v", p.evA, p.evB)
		}
		a, b := p.checkChildPair()
		if !a.Encap || !b.Encap {
			t.Error("no UDP encapsulation")
		}
		if b.Peer != netip.AddrPortFrom(addrA, 14500) {
			t.Errorf("B's ESP peer %v, want A's mapped port", b.Peer)
		}
		// The NAT mapping changes; B follows A's new port once an
		// authenticated request arrives from it.
		p.natShift = 20000
		n := len(p.sentB)
		p.a.sendRequest(p.a.sa, ExchangeInformational, nil, ignoreResponse, p.now)
		p.run(time.Second, nil)
		if len(p.sentB) != n+1 || p.sentB[n].Peer != netip.AddrPortFrom(addrA, 24500) || countEvents[IKESADown](p.evA) != 0 {
			t.Errorf("B answered to %v, want the new mapping", p.sentB[n:])
		}
		// And B's ESP follows: the runner is told where A is now.
		var moved []PeerMoved
		for _, e := range p.evB {
			if m, ok := e.(PeerMoved); ok {
				moved = append(moved, m)
			}
		}
		if len(moved) != 1 || moved[0].Peer != netip.AddrPortFrom(addrA, 24500) {
			t.Errorf("B's PeerMoved events %v, want one to %v", moved, netip.AddrPortFrom(addrA, 24500))
		}
	})
}

// TestPairStartNATT: an initiator that may not open port 500 (an
// unprivileged container on ESP-in-UDP port 14500) starts IKE on its NAT-T
// port, toward the peer's (RFC 7296 §2.23); neither side ever uses port
// 500, and ESP and the keepalives go between the two NAT-T ports.
func TestPairStartNATT(t *testing.T) {
	ca, cb := gwConfigs(ModeTunnel)
	ca.StartNATT, ca.ForceEncap = true, true
	ca.NATTPort, ca.PeerNATTPort = 14500, 4500
	cb.PeerNATTPort = 14500 // B keeps its default port 4500
	p := newPair(t, ca, cb)
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatalf("no tunnel: A %v; B %v", p.evA, p.evB)
	}
	a, b := p.checkChildPair()
	if !a.Encap || !b.Encap {
		t.Error("no UDP encapsulation")
	}
	if a.Peer != netip.AddrPortFrom(addrB, 4500) || b.Peer != netip.AddrPortFrom(addrA, 14500) {
		t.Errorf("ESP peers: A sends to %v, B to %v; want %v:4500 and %v:14500", a.Peer, b.Peer, addrB, addrA)
	}
	for _, d := range p.sentA {
		if d.Local.Port() != 14500 || d.Peer.Port() != 4500 {
			t.Errorf("A sent from %v to %v; want 14500 -> 4500 throughout", d.Local, d.Peer)
		}
	}
	for _, d := range p.sentB {
		if d.Local.Port() != 4500 || d.Peer.Port() != 14500 {
			t.Errorf("B sent from %v to %v; want 4500 -> 14500 throughout", d.Local, d.Peer)
		}
	}
	p.run(30*time.Second, nil)
	ka := 0
	for _, e := range p.evA {
		if k, ok := e.(SendKeepalive); ok {
			ka++
			if k.Local.Port() != 14500 || k.Peer != netip.AddrPortFrom(addrB, 4500) {
				t.Errorf("keepalive %v, want 14500 -> %v:4500", k, addrB)
			}
		}
	}
	if ka == 0 {
		t.Error("A, claiming a NAT, sent no keepalive")
	}
	st := p.a.Status(p.now)
	if st.IKE == nil || st.IKE.Local != netip.AddrPortFrom(addrA, 14500) || st.IKE.Peer != netip.AddrPortFrom(addrB, 4500) {
		t.Errorf("A's status endpoints: %+v", st.IKE)
	}
}

// TestConfigNATTPort500: port 500 is IKE without the non-ESP marker; it
// cannot be the NAT-T port, on either side.
func TestConfigNATTPort500(t *testing.T) {
	for _, edit := range []func(*Config){
		func(c *Config) { c.NATTPort = 500 },
		func(c *Config) { c.PeerNATTPort = 500 },
	} {
		c, _ := gwConfigs(ModeTunnel)
		edit(c)
		if _, err := NewSession(c, nil); err == nil || !strings.Contains(err.Error(), "NAT-T port cannot be 500") {
			t.Errorf("NewSession: %v, want the NAT-T port refused", err)
		}
	}
}

// dropOnce drops the n-th datagram of side once.
func dropOnce(side string, n int) func(string, int, Datagram) pairAction {
	return func(from string, k int, _ Datagram) pairAction {
		return pairAction{drop: from == side && k == n}
	}
}

func TestPairLossDuplicationReorder(t *testing.T) {
	// The handshake is A0 (IKE_SA_INIT), B0, A1 (IKE_AUTH), B1.
	for _, tc := range []struct {
		name   string
		filter func(string, int, Datagram) pairAction
	}{
		{"drop-init-request", dropOnce("A", 0)},
		{"drop-init-response", dropOnce("B", 0)},
		{"drop-auth-request", dropOnce("A", 2)},
		{"drop-auth-response", dropOnce("B", 1)},
		{"dup-all", func(string, int, Datagram) pairAction { return pairAction{dup: true} }},
		{"delay-init-response", func(from string, k int, _ Datagram) pairAction {
			return pairAction{delay: map[bool]time.Duration{true: 3 * time.Second}[from == "B" && k == 0]}
		}},
		{"delay-auth-request", func(from string, k int, _ Datagram) pairAction {
			return pairAction{delay: map[bool]time.Duration{true: 2500 * time.Millisecond}[from == "A" && k == 2]}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, cb := gwConfigs(ModeTransport)
			p := newPair(t, ca, cb)
			p.filter = tc.filter
			p.start()
			if !p.run(time.Minute, p.bothUp) {
				t.Fatalf("no tunnel: A %v; B %v", p.evA, p.evB)
			}
			p.run(10*time.Second, nil) // let duplicates and retransmissions land
			p.checkChildPair()
			if countEvents[ChildSAUp](p.evA) != 1 || countEvents[ChildSAUp](p.evB) != 1 ||
				len(downs(p.evA))+len(downs(p.evB)) != 0 {
				t.Errorf("events: A %v; B %v", p.evA, p.evB)
			}
		})
	}
}

// TestPairSilentPeerRecovery: an active side whose peer is unreachable for
// 200 s (an outage), with no traffic of its own to make it hurry (the
// passive peer's hosts are the ones waiting), sets up the IKE SA within
// setupRetransmitLimit + silentRestartDelay + a round trip of the path's
// return: requests at most 6 s apart, a new attempt 1 s after a silent
// one. With the doubling schedule it took 24 s (bench/attack, 200 s
// outage, active/passive).
func TestPairSilentPeerRecovery(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	cb.Role = RolePassive
	p := newPair(t, ca, cb)
	down := true
	p.filter = func(string, int, Datagram) pairAction { return pairAction{drop: down} }
	p.start()
	p.run(200*time.Second, nil)
	down = false
	restored := p.now
	if !p.run(time.Minute, p.bothUp) {
		t.Fatalf("no tunnel after the outage: A %v; B %v", p.evA, p.evB)
	}
	if took := p.now.Sub(restored); took > setupRetransmitLimit+silentRestartDelay+time.Second {
		t.Errorf("up %v after the path came back, want at most %v", took, setupRetransmitLimit+silentRestartDelay+time.Second)
	}
}

func TestPairRetransmitGiveUp(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	ca.RetransmitTimeout, ca.RetransmitTries = time.Second, 3
	p := newPair(t, ca, cb)
	p.filter = func(from string, _ int, _ Datagram) pairAction { return pairAction{drop: from == "A"} }
	p.start()
	p.run(time.Minute, func() bool { return len(downs(p.evA)) > 0 })
	d := downs(p.evA)
	if len(d) == 0 || !strings.Contains(d[0].Reason, "did not answer") {
		t.Fatalf("A: %v", d)
	}
	// 1 + 3 retransmissions, after 1, 2 and 4 s; given up 6 s later
	// (8 s, capped at setupRetransmitLimit while the IKE SA is set up).
	if len(p.sentA) != 4 || p.now.Sub(epoch) != 13*time.Second {
		t.Errorf("sent %d, gave up after %v", len(p.sentA), p.now.Sub(epoch))
	}
}

func TestPairDPD(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	ca.DPD, ca.RetransmitTimeout, ca.RetransmitTries = 30*time.Second, time.Second, 2
	p := newPair(t, ca, cb)
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatal("no tunnel")
	}
	// Alive: DPD requests are answered.
	n := len(p.sentA)
	p.run(2*time.Minute, nil)
	if len(p.sentA)-n < 3 || len(downs(p.evA)) != 0 {
		t.Fatalf("DPD: %d requests, A %v", len(p.sentA)-n, p.evA)
	}
	// Traffic: ESP from B keeps arriving (the runner says so with
	// PeerAlive), so A sends no liveness checks at all.
	n = len(p.sentA)
	for i := 0; i < 12; i++ {
		p.a.PeerAlive(p.now)
		p.run(10*time.Second, nil)
	}
	if len(p.sentA) != n {
		t.Errorf("A sent %d IKE messages in 2 minutes of ESP traffic, want none", len(p.sentA)-n)
	}
	// Dead: B vanishes.
	p.filter = func(from string, _ int, _ Datagram) pairAction { return pairAction{drop: true} }
	start := p.now
	p.run(2*time.Minute, func() bool { return len(downs(p.evA)) > 0 })
	d := downs(p.evA)
	if len(d) == 0 || !strings.Contains(d[0].Reason, "liveness") {
		t.Fatalf("A: %v", d)
	}
	if p.now.Sub(start) > 40*time.Second {
		t.Errorf("dead peer found after %v", p.now.Sub(start))
	}
	if countEvents[ChildSADown](p.evA) != 1 {
		t.Errorf("A: %v", p.evA)
	}
}

func TestPairDelete(t *testing.T) {
	for _, closer := range []string{"A", "B"} {
		t.Run("close-"+closer, func(t *testing.T) {
			ca, cb := gwConfigs(ModeTransport)
			p := newPair(t, ca, cb)
			p.start()
			if !p.run(time.Minute, p.bothUp) {
				t.Fatal("no tunnel")
			}
			c, other, evOther := p.a, p.b, &p.evB
			if closer == "B" {
				c, other, evOther = p.b, p.a, &p.evA
			}
			c.Close(p.now)
			p.run(time.Second, nil)
			if other.Established() || c.Established() {
				t.Error("still established")
			}
			if d := downs(*evOther); len(d) != 1 || !strings.Contains(d[0].Reason, "peer deleted") {
				t.Errorf("peer: %v", *evOther)
			}
			if countEvents[ChildSADown](p.evA) != 1 || countEvents[ChildSADown](p.evB) != 1 {
				t.Errorf("child downs: A %v; B %v", p.evA, p.evB)
			}
		})
	}
	t.Run("child", func(t *testing.T) {
		ca, cb := gwConfigs(ModeTransport)
		p := newPair(t, ca, cb)
		p.start()
		if !p.run(time.Minute, p.bothUp) {
			t.Fatal("no tunnel")
		}
		p.b.deleteChild(p.b.sa, "test", p.now)
		p.run(time.Second, nil)
		if countEvents[ChildSADown](p.evA) != 1 || countEvents[ChildSADown](p.evB) != 1 {
			t.Errorf("child downs: A %v; B %v", p.evA, p.evB)
		}
		// The active side starts over and gets a new tunnel.
		p.run(time.Minute, func() bool { return countEvents[ChildSAUp](p.evA) == 2 && countEvents[ChildSAUp](p.evB) == 2 })
		p.checkChildPair()
	})
}

// settledPair checks that, once everything settled, both sides have one
// established IKE SA, the same, with one Child SA, the same pair the
// runners were last told about, and nothing else left over.
func (p *pair) settled() {
	p.t.Helper()
	for _, s := range []*Session{p.a, p.b} {
		if !s.Established() || s.old != nil || s.own != nil || len(s.half) != 0 || s.sa.child == nil || len(s.sa.extra) != 0 {
			p.t.Fatalf("%s not settled: sa %+v own %v old %v half %d", s.cfg.Name, s.sa, s.own, s.old, len(s.half))
		}
	}
	if p.a.sa.spii != p.b.sa.spii || p.a.sa.spir != p.b.sa.spir || p.a.sa.initiator == p.b.sa.initiator {
		p.t.Fatal("the two sides kept different IKE SAs")
	}
	a, b := p.checkChildPair()
	if a.InSPI != p.a.sa.child.inSPI || b.InSPI != p.b.sa.child.inSPI {
		p.t.Fatal("the last Child SA announced is not the one kept")
	}
	for side, evs := range map[string][]Event{"A": p.evA, "B": p.evB} {
		if countEvents[ChildSAUp](evs) != countEvents[ChildSADown](evs)+1 || len(downs(evs)) != 0 {
			p.t.Fatalf("%s: events %v", side, evs)
		}
	}
}

// TestPairSimultaneous: both sides initiate at once. Neither gives up its
// own attempt for the other's unauthenticated IKE_SA_INIT; both IKE SAs
// complete, and both sides delete the same redundant one (crossing.go).
func TestPairSimultaneous(t *testing.T) {
	for i := 0; i < 10; i++ {
		ca, cb := gwConfigs(ModeTransport)
		cb.Role = RoleActive
		p := newPair(t, ca, cb)
		if i%2 == 1 {
			// Delay one side's messages, so that the two IKE SAs complete
			// in a different order on each side.
			p.filter = func(from string, _ int, _ Datagram) pairAction {
				return pairAction{delay: map[bool]time.Duration{true: 50 * time.Millisecond}[from == "B"]}
			}
		}
		p.start()
		if !p.run(time.Minute, p.bothUp) {
			t.Fatalf("no tunnel: A %v; B %v", p.evA, p.evB)
		}
		p.run(5*time.Minute, nil)
		p.settled()
		if p.a.stats.Crossings != 1 || p.b.stats.Crossings != 1 {
			t.Errorf("crossings: A %d, B %d", p.a.stats.Crossings, p.b.stats.Crossings)
		}
	}
}

func TestPairPeerRestart(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	p := newPair(t, ca, cb)
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatal("no tunnel")
	}
	// A restarts: a new session with the same config, B keeps its SA.
	a2, err := NewSession(ca, nil)
	if err != nil {
		t.Fatal(err)
	}
	aOld := p.a
	p.a, p.evA = a2, nil
	p.a.Start(p.now)
	if !p.run(time.Minute, p.bothUp) {
		t.Fatalf("no tunnel after restart: A %v; B %v", p.evA, p.evB)
	}
	p.checkChildPair()
	if countEvents[ChildSAUp](p.evB) != 2 || countEvents[ChildSADown](p.evB) != 1 || len(downs(p.evB)) != 0 ||
		countEvents[IKESAUp](p.evB) != 2 {
		t.Errorf("B: %v", p.evB)
	}
	// The new IKE SA came with INITIAL_CONTACT: B dropped the old one at
	// once, without waiting for a DELETE. A late DELETE from the old A
	// finds no IKE SA and is dropped.
	if p.b.old != nil {
		t.Error("old IKE SA kept after INITIAL_CONTACT")
	}
	aOld.Close(p.now)
	dgs, _ := aOld.Output()
	if len(dgs) != 1 {
		t.Fatalf("old A sent %d datagrams on Close", len(dgs))
	}
	p.collect()
	n := len(p.evB)
	p.b.Receive(dgs[0].Data, dgs[0].Peer, dgs[0].Local, p.now)
	answer, evs := p.b.Output()
	if len(answer) != 0 || len(evs) != 0 || !p.b.Established() || len(p.evB) != n || p.b.Stats().UnknownSPI != 1 {
		t.Fatalf("B answered the old DELETE with %d datagrams, events %v", len(answer), evs)
	}
}

func TestPairFragmentation(t *testing.T) {
	for _, drop := range []bool{false, true} {
		t.Run(fmt.Sprintf("drop=%v", drop), func(t *testing.T) {
			ca, cb := routeConfigs()
			for _, c := range []*Config{ca, cb} {
				c.Fragmentation, c.FragmentSize = true, 256
				c.ESPProposals = []ESPProposal{
					{Encr: uint16(EncrAESGCM16), KeyBits: 256}, {Encr: uint16(EncrAESGCM16), KeyBits: 128},
					{Encr: uint16(EncrChaCha20Poly1305)}, {Encr: uint16(EncrAESGCM16), KeyBits: 256, ESN: true},
				}
			}
			p := newPair(t, ca, cb)
			if drop {
				p.filter = dropOnce("A", 2) // the first fragment of IKE_AUTH
			}
			p.start()
			if !p.run(time.Minute, p.bothUp) {
				t.Fatalf("no tunnel: A %v; B %v", p.evA, p.evB)
			}
			p.checkChildPair()
			frags := 0
			for _, d := range append(append([]Datagram(nil), p.sentA...), p.sentB...) {
				m, err := ParseMessage(d.Data)
				if err != nil {
					t.Fatal(err)
				}
				if m.Exchange == ExchangeIKESAInit {
					continue
				}
				if len(d.Data) > 256 {
					t.Errorf("%v: %d bytes > 256", m, len(d.Data))
				}
				if _, ok := m.Payloads[0].(*EncryptedFragmentPayload); ok {
					frags++
				}
			}
			if frags < 4 {
				t.Errorf("%d fragments sent", frags)
			}
		})
	}
	// Without support on one side, no fragments.
	ca, cb := routeConfigs()
	ca.Fragmentation, ca.FragmentSize = true, 256
	p := newPair(t, ca, cb)
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatal("no tunnel")
	}
	for _, d := range p.sentA {
		if m, _ := ParseMessage(d.Data); m != nil && m.Payloads[0].Type() == PayloadSKF {
			t.Error("fragment sent to a peer without fragmentation support")
		}
	}
}

// TestPairAcquire: after a failure an active session waits out its
// back-off, unless traffic needs the tunnel: Acquire starts it at once.
func TestPairAcquire(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	good := *cb
	cb.PSK = []byte("other")
	p := newPair(t, ca, cb)
	p.start()
	p.run(time.Second, func() bool { return len(downs(p.evA)) > 0 })
	if len(downs(p.evA)) == 0 {
		t.Fatal("A did not fail with a wrong PSK")
	}
	// B is fixed (its operator corrected the PSK).
	b, err := NewSession(&good, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.b = b
	sent := len(p.sentA)
	p.run(time.Second, nil)
	if len(p.sentA) != sent {
		t.Fatalf("A tried again within a second of failing: the back-off is gone")
	}
	p.b.Acquire(p.now) // never started: ignored
	p.a.Acquire(p.now)
	if !p.run(time.Second, p.bothUp) {
		t.Fatalf("Acquire did not bring the tunnel up at once: A %v; B %v", p.evA, p.evB)
	}
}
