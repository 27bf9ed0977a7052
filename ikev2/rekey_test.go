package ikev2

import (
	"bytes"
	"testing"
	"time"
)

// checkRekeyedPair checks, after a Child SA rekey, that each side has one
// more ChildSAUp than ChildSADown, that the last Child SAs form a pair with
// fresh keys, and that the newest ChildSAUp names the SA it replaces.
func checkRekeyedPair(t *testing.T, p *pair, ups int) {
	t.Helper()
	for side, evs := range map[string][]Event{"A": p.evA, "B": p.evB} {
		u, d := countEvents[ChildSAUp](evs), countEvents[ChildSADown](evs)
		if u != d+1 || u < ups {
			t.Errorf("%s: %d ups, %d downs: %v", side, u, d, evs)
		}
		if len(downs(evs)) != 0 {
			t.Errorf("%s: IKE SA down: %v", side, evs)
		}
	}
	a, _ := p.checkChildPair()
	first := childUps(p.evA)[0]
	if bytes.Equal(append(a.InKey, a.InAuthKey...), append(first.InKey, first.InAuthKey...)) || a.InSPI == first.InSPI {
		t.Error("rekeyed Child SA has the old keys or SPI")
	}
	if a.Rekeyed == nil {
		t.Error("ChildSAUp of the rekey does not name the old SA")
	}
}

func TestRekeyChild(t *testing.T) {
	for _, tc := range []struct {
		name  string
		espA  []ESPProposal
		espB  []ESPProposal
		invKE bool
	}{
		{"no-pfs", []ESPProposal{{Encr: uint16(EncrAESGCM16), KeyBits: 256}}, []ESPProposal{{Encr: uint16(EncrAESGCM16), KeyBits: 256}}, false},
		{"pfs", []ESPProposal{{Encr: uint16(EncrAESGCM16), KeyBits: 256, DH: uint16(DHECP384)}}, []ESPProposal{{Encr: uint16(EncrAESGCM16), KeyBits: 256, DH: uint16(DHECP384)}}, false},
		{"pfs-invalid-ke", []ESPProposal{
			{Encr: uint16(EncrAESGCM16), KeyBits: 256, DH: uint16(DHECP256)},
			{Encr: uint16(EncrAESGCM16), KeyBits: 256, DH: uint16(DHCurve25519)},
		}, []ESPProposal{{Encr: uint16(EncrAESGCM16), KeyBits: 256, DH: uint16(DHCurve25519)}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, cb := gwConfigs(ModeTransport)
			ca.ESPProposals, cb.ESPProposals = tc.espA, tc.espB
			ca.ChildLifetime, cb.ChildLifetime = 10*time.Minute, 10*time.Minute
			p := newPair(t, ca, cb)
			p.start()
			if !p.run(time.Minute, p.bothUp) {
				t.Fatalf("no tunnel: A %v; B %v", p.evA, p.evB)
			}
			p.run(10*time.Minute, nil)
			checkRekeyedPair(t, p, 2)
			if u := childUps(p.evA); !u[len(u)-1].Transport {
				t.Error("rekeyed Child SA lost transport mode")
			}
			if n := countEvents[ChildSAUp](p.evA); n != 2 {
				t.Errorf("A: %d Child SAs in 11 minutes, want 2", n)
			}
			invalidKE := false
			for _, d := range p.sentB {
				if m, err := ParseMessage(d.Data); err == nil && m.Exchange == ExchangeCreateChildSA && len(d.Data) < 100 {
					invalidKE = true // an error answer: only INVALID_KE_PAYLOAD here
				}
			}
			if invalidKE != tc.invKE {
				t.Errorf("INVALID_KE_PAYLOAD round: %v, want %v", invalidKE, tc.invKE)
			}
			// And again an hour later: it keeps rekeying.
			p.run(time.Hour, nil)
			checkRekeyedPair(t, p, 7)
		})
	}
}

func TestRekeyChildCollision(t *testing.T) {
	for i := 0; i < 8; i++ {
		ca, cb := gwConfigs(ModeTransport)
		cb.Role = RoleActive
		p := newPair(t, ca, cb)
		p.start()
		if !p.run(time.Minute, p.bothUp) {
			t.Fatal("no tunnel")
		}
		// Both sides rekey the Child SA at the same moment (§2.8.1).
		at := p.now.Add(time.Second)
		p.a.sa.child.rekeyAt, p.b.sa.child.rekeyAt = at, at
		p.run(time.Minute, nil)
		checkRekeyedPair(t, p, 2)
		if p.a.sa.child.inSPI != p.b.sa.child.outSPI || len(p.a.sa.extra)+len(p.b.sa.extra) != 0 {
			t.Fatalf("collision left A child %+v extra %d, B child %+v extra %d", p.a.sa.child, len(p.a.sa.extra), p.b.sa.child, len(p.b.sa.extra))
		}
	}
}

func TestRekeyIKE(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	ca.IKELifetime, cb.IKELifetime = 10*time.Minute, 10*time.Minute
	ca.DPD = time.Minute
	p := newPair(t, ca, cb)
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatal("no tunnel")
	}
	spii := p.a.sa.spii
	p.run(11*time.Minute, nil)
	if countEvents[IKESAUp](p.evA) != 2 || countEvents[IKESAUp](p.evB) != 2 || len(downs(p.evA))+len(downs(p.evB)) != 0 {
		t.Fatalf("events: A %v; B %v", p.evA, p.evB)
	}
	if p.a.sa.spii == spii || p.a.sa.spii != p.b.sa.spii || p.a.sa.spir != p.b.sa.spir || p.a.old != nil || p.b.old != nil {
		t.Fatal("IKE SA not replaced on both sides")
	}
	if !bytes.Equal(p.a.sa.skd, p.b.sa.skd) || p.a.sa.child == nil || p.b.sa.child == nil {
		t.Fatal("new IKE SA keys differ or Child SA lost")
	}
	// The new IKE SA works: DPD goes on, and a child rekey runs on it.
	p.run(2*time.Hour, nil)
	checkRekeyedPair(t, p, 2)
	if len(downs(p.evA))+len(downs(p.evB)) != 0 {
		t.Fatalf("events: A %v; B %v", p.evA, p.evB)
	}
	p.b.Close(p.now)
	p.run(time.Second, nil)
	if d := downs(p.evA); len(d) != 1 {
		t.Errorf("A after B's close: %v", p.evA)
	}
}

func TestRekeyLossyNAT(t *testing.T) {
	ca, cb := gwConfigs(ModeTunnel)
	ca.ForceEncap = true
	for _, c := range []*Config{ca, cb} {
		c.ChildLifetime, c.IKELifetime = 10*time.Minute, 15*time.Minute
		c.ESPProposals[0].DH = uint16(DHECP256)
	}
	p := newPair(t, ca, cb)
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatal("no tunnel")
	}
	// The first request of each rekey and its first answer are lost.
	na, nb := len(p.sentA), len(p.sentB)
	p.filter = func(from string, k int, d Datagram) pairAction {
		if m, err := ParseMessage(d.Data); err != nil || m.Exchange != ExchangeCreateChildSA {
			return pairAction{}
		}
		if from == "A" && k == na || from == "B" && k == nb {
			return pairAction{drop: true}
		}
		return pairAction{}
	}
	p.run(20*time.Minute, nil)
	checkRekeyedPair(t, p, 2)
	for _, d := range []Datagram{p.sentA[na], p.sentB[nb]} {
		if m, _ := ParseMessage(d.Data); m == nil || m.Exchange != ExchangeCreateChildSA {
			t.Errorf("first datagram after the handshake is not CREATE_CHILD_SA: %v", m)
		}
	}
	if countEvents[IKESAUp](p.evA) != 2 || countEvents[IKESAUp](p.evB) != 2 {
		t.Errorf("IKE SA not rekeyed: A %v; B %v", p.evA, p.evB)
	}
	for _, d := range p.sentA[na:] {
		if d.Local.Port() != 4500 || d.Peer.Port() != 4500 {
			t.Errorf("A sent from %v to %v after the NAT switch", d.Local, d.Peer)
		}
	}
	a, b := p.checkChildPair()
	if !a.Encap || !b.Encap || b.Peer.Port() != 4500 {
		t.Errorf("rekeyed child lost UDP encapsulation: %+v", a)
	}
}

func TestRekeyIKECollision(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	p := newPair(t, ca, cb)
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatal("no tunnel")
	}
	// Both sides rekey the IKE SA at once: each answers the other's
	// request with TEMPORARY_FAILURE (§2.25.2) and tries again after a
	// random delay, so one rekey wins.
	at := p.now.Add(time.Second)
	p.a.sa.ikeRekeyAt, p.b.sa.ikeRekeyAt = at, at
	p.run(time.Minute, func() bool { return countEvents[IKESAUp](p.evA) == 2 && countEvents[IKESAUp](p.evB) == 2 })
	p.run(time.Minute, nil)
	if countEvents[IKESAUp](p.evA) != 2 || countEvents[IKESAUp](p.evB) != 2 || len(downs(p.evA))+len(downs(p.evB)) != 0 {
		t.Fatalf("events: A %v; B %v", p.evA, p.evB)
	}
	if p.a.sa.spii != p.b.sa.spii || p.a.sa.spir != p.b.sa.spir || p.a.old != nil || p.b.old != nil {
		t.Error("IKE SAs differ after the collision")
	}
	tf := 0
	for _, d := range append(append([]Datagram(nil), p.sentA...), p.sentB...) {
		if m, err := ParseMessage(d.Data); err == nil && m.Exchange == ExchangeCreateChildSA && m.IsResponse() && len(d.Data) < 100 {
			tf++
		}
	}
	if tf != 2 {
		t.Errorf("%d short CREATE_CHILD_SA answers, want 2 TEMPORARY_FAILURE", tf)
	}
}

// TestRekeyChildOnBytes: the runner asks for a rekey when the byte
// lifetime runs out; the session rekeys at once, not at the time lifetime.
func TestRekeyChildOnBytes(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	ca.ChildLifetime, cb.ChildLifetime = time.Hour, time.Hour
	p := newPair(t, ca, cb)
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatalf("no tunnel: A %v; B %v", p.evA, p.evB)
	}
	ups := childUps(p.evA)
	first := ups[len(ups)-1]
	p.a.RekeyChild(first.InSPI+1, p.now) // not ours: nothing happens
	p.run(time.Minute, nil)
	if n := countEvents[ChildSAUp](p.evA); n != 1 {
		t.Fatalf("RekeyChild with a foreign SPI rekeyed: %d Child SAs", n)
	}
	p.a.RekeyChild(first.InSPI, p.now)
	p.run(time.Minute, nil)
	checkRekeyedPair(t, p, 2)
	if u := childUps(p.evA); u[len(u)-1].Rekeyed == nil || u[len(u)-1].Rekeyed.InSPI != first.InSPI {
		t.Errorf("the new Child SA does not replace inbound SPI 0x%08x", first.InSPI)
	}
}
