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

// TestRekeyIKECollision: both sides rekey the IKE SA at the same moment.
// Each answers the other's request (no TEMPORARY_FAILURE), and by the
// lowest-nonce rule of §2.8.2 both keep the same new IKE SA: the one
// created with the lowest of the four nonces is deleted by its creator,
// the old one by the initiator of the surviving exchange. The Child SA
// moves to the survivor and keeps working (a Child SA rekey runs on it).
func TestRekeyIKECollision(t *testing.T) {
	for i := range 8 {
		ca, cb := gwConfigs(ModeTransport)
		p := newPair(t, ca, cb)
		p.start()
		if !p.run(time.Minute, p.bothUp) {
			t.Fatal("no tunnel")
		}
		at := p.now.Add(time.Second)
		p.a.sa.ikeRekeyAt, p.b.sa.ikeRekeyAt = at, at
		p.run(time.Minute, nil)
		if countEvents[IKESAUp](p.evA) != 2 || countEvents[IKESAUp](p.evB) != 2 || len(downs(p.evA))+len(downs(p.evB)) != 0 {
			t.Fatalf("%d: events: A %v; B %v", i, p.evA, p.evB)
		}
		if p.a.sa.spii != p.b.sa.spii || p.a.sa.spir != p.b.sa.spir || p.a.old != nil || p.b.old != nil {
			t.Fatalf("%d: IKE SAs differ after the collision: A %x/%x old %v, B %x/%x old %v", i, p.a.sa.spii, p.a.sa.spir, p.a.old != nil, p.b.sa.spii, p.b.sa.spir, p.b.old != nil)
		}
		if p.a.Stats().RekeyCollisions != 1 || p.b.Stats().RekeyCollisions != 1 {
			t.Errorf("%d: collisions A %d, B %d", i, p.a.Stats().RekeyCollisions, p.b.Stats().RekeyCollisions)
		}
		for _, d := range append(append([]Datagram(nil), p.sentA...), p.sentB...) {
			if m, err := ParseMessage(d.Data); err == nil && m.Exchange == ExchangeCreateChildSA && m.IsResponse() && len(d.Data) < 100 {
				t.Errorf("%d: a short CREATE_CHILD_SA answer (TEMPORARY_FAILURE?)", i)
			}
		}
		if p.a.sa.child == nil || p.b.sa.child == nil {
			t.Fatalf("%d: Child SA lost", i)
		}
		p.a.RekeyChild(p.a.sa.child.inSPI, p.now)
		p.run(time.Minute, nil)
		checkRekeyedPair(t, p, 2)
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

// TestChildDeletedAlone: when the peer deletes the Child SA alone, the IKE
// SA stays (no IKESADown, no new IKE_SA_INIT), and when traffic needs the
// tunnel (Acquire) CREATE_CHILD_SA makes a new Child SA on it, in either
// role, with PFS and transport mode as configured. Before, an active side
// deleted the whole IKE SA and started over. A Child SA the operator
// deleted here (DeleteChild) is not brought back by traffic, only by
// Initiate.
func TestChildDeletedAlone(t *testing.T) {
	for _, deleter := range []string{"A", "B"} {
		t.Run("deleted by "+deleter, func(t *testing.T) {
			ca, cb := gwConfigs(ModeTransport)
			pfs := []ESPProposal{{Encr: uint16(EncrAESGCM16), KeyBits: 256, DH: uint16(DHECP384)}}
			ca.ESPProposals, cb.ESPProposals = pfs, pfs
			p := newPair(t, ca, cb)
			p.start()
			if !p.run(time.Minute, p.bothUp) {
				t.Fatal("no tunnel")
			}
			del, other := p.a, p.b
			if deleter == "B" {
				del, other = p.b, p.a
			}
			spii, spir := p.a.sa.spii, p.a.sa.spir
			first := p.a.sa.child.inSPI
			if !del.DeleteChild(p.now) {
				t.Fatal("no Child SA to delete")
			}
			p.run(10*time.Second, nil)
			if other.sa == nil || other.sa.child != nil || other.sa.spii != spii || len(downs(p.evA))+len(downs(p.evB)) != 0 {
				t.Fatalf("after the DELETE: IKE SA %v; A %v; B %v", other.sa, p.evA, p.evB)
			}
			// Traffic on the deleter's side: held by the operator.
			del.Acquire(p.now)
			p.run(5*time.Second, nil)
			if del.sa.child != nil || other.sa.child != nil {
				t.Fatal("a Child SA the operator deleted came back with traffic")
			}
			// Traffic on the other side: a new Child SA on the same IKE SA.
			other.Acquire(p.now)
			p.run(10*time.Second, func() bool { return p.a.sa.child != nil && p.b.sa.child != nil })
			if p.a.sa.child == nil || p.b.sa.child == nil || p.a.sa.spii != spii || p.a.sa.spir != spir {
				t.Fatalf("no new Child SA on the IKE SA: A %v; B %v", p.evA, p.evB)
			}
			a, _ := p.checkChildPair()
			if a.InSPI == first || !a.Transport || a.Rekeyed != nil {
				t.Errorf("new Child SA %+v", a)
			}
			if n := countEvents[IKESAUp](p.evA) + countEvents[IKESAUp](p.evB); n != 2 || len(downs(p.evA))+len(downs(p.evB)) != 0 {
				t.Errorf("IKE SA events: A %v; B %v", p.evA, p.evB)
			}
			inits := 0
			for _, d := range append(append([]Datagram(nil), p.sentA...), p.sentB...) {
				if h, err := ParseHeader(d.Data); err == nil && h.Exchange == ExchangeIKESAInit {
					inits++
				}
			}
			if inits != 2 {
				t.Errorf("%d IKE_SA_INIT messages, want the first request and response only", inits)
			}
			// The operator's Initiate brings back one it deleted.
			if !p.a.DeleteChild(p.now) {
				t.Fatal("no Child SA to delete")
			}
			p.run(5*time.Second, nil)
			if !p.a.Initiate(p.now) {
				t.Fatal("Initiate did nothing")
			}
			p.run(10*time.Second, nil)
			if p.a.sa.child == nil || p.b.sa.child == nil {
				t.Fatal("Initiate did not create the Child SA")
			}
			// A second Child SA is refused: one per IKE SA.
			p.a.sa.child, p.a.sa.childHeld = nil, false
			p.a.Acquire(p.now)
			p.run(5*time.Second, nil)
			if p.a.sa.child != nil {
				t.Error("the peer accepted a second Child SA")
			}
		})
	}
}

// TestRekeyOutboundEvent: after a Child SA rekey each side is told when
// the peer has the new SA (ChildSAOutbound), which is when the DELETE
// exchange of the replaced SA is done: the responder of the rekey not
// before the initiator's DELETE arrives, however late (make before break:
// until then it sends with the replaced SA), the initiator when that
// DELETE is answered. The event names the new SA and comes just before
// the replaced SA's ChildSADown.
func TestRekeyOutboundEvent(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	p := newPair(t, ca, cb)
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatal("no tunnel")
	}
	// Hold back A's DELETE of the replaced SA for 2 s.
	var deleteAt time.Time
	p.filter = func(from string, n int, d Datagram) pairAction {
		if m, err := ParseMessage(d.Data); err == nil && from == "A" && m.Exchange == ExchangeInformational && !m.IsResponse() && deleteAt.IsZero() {
			deleteAt = p.now.Add(2 * time.Second)
			return pairAction{delay: 2 * time.Second}
		}
		return pairAction{}
	}
	p.evA, p.evB = nil, nil
	p.a.RekeyChild(p.a.sa.child.inSPI, p.now)
	p.run(time.Second, nil)
	if n := countEvents[ChildSAOutbound](p.evB); n != 0 || len(childUps(p.evB)) != 1 {
		t.Fatalf("B, before A's DELETE: %v", p.evB)
	}
	p.run(5*time.Second, nil)
	for side, evs := range map[string][]Event{"A": p.evA, "B": p.evB} {
		up := childUps(evs)
		var i int
		var out ChildSAOutbound
		for i = range evs {
			if o, ok := evs[i].(ChildSAOutbound); ok {
				out = o
				break
			}
		}
		if len(up) != 1 || out.InSPI != up[0].InSPI || out.OutSPI != up[0].OutSPI || countEvents[ChildSAOutbound](evs) != 1 {
			t.Fatalf("%s: %v", side, evs)
		}
		if i+1 >= len(evs) {
			t.Fatalf("%s: no ChildSADown after ChildSAOutbound: %v", side, evs)
		}
		if d, ok := evs[i+1].(ChildSADown); !ok || d.InSPI != up[0].Rekeyed.InSPI {
			t.Errorf("%s: after ChildSAOutbound %v, want the replaced SA's ChildSADown", side, evs[i+1])
		}
	}
}
