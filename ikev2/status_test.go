package ikev2

import (
	"strings"
	"testing"
	"time"
)

// TestStatus checks the snapshots of both ends of a pair against what the
// pair knows: states while connecting, then SPIs and Child SA SPIs crossed,
// the negotiated proposals, addresses and the rekey times.
func TestStatus(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	p := newPair(t, ca, cb)
	if st := p.a.Status(p.now); st.IKE != nil || st.Role != RoleActive || len(st.Others) != 0 {
		t.Fatalf("status before Start: %+v", st)
	}
	p.start()
	st := p.a.Status(p.now)
	if st.IKE == nil || st.IKE.State != IKEConnecting || st.IKE.Phase != "IKE_SA_INIT sent" || !st.IKE.Initiator ||
		st.IKE.Request != ExchangeIKESAInit || st.IKE.Child != nil {
		t.Fatalf("A after Start: %+v", st.IKE)
	}
	upAt := p.now
	if !p.run(time.Minute, p.bothUp) {
		t.Fatalf("no tunnel: %v / %v", p.evA, p.evB)
	}
	ua, _ := p.checkChildPair()
	sa, sb := p.a.Status(p.now), p.b.Status(p.now)
	a, b := sa.IKE, sb.IKE
	if a == nil || b == nil || a.State != IKEEstablished || b.State != IKEEstablished {
		t.Fatalf("not established: A %+v, B %+v", a, b)
	}
	if a.SPIi != b.SPIi || a.SPIr != b.SPIr || a.SPIi == 0 || a.SPIr == 0 || !a.Initiator || b.Initiator {
		t.Errorf("IKE SPIs/roles: A %x/%x init %v, B %x/%x init %v", a.SPIi, a.SPIr, a.Initiator, b.SPIi, b.SPIr, b.Initiator)
	}
	if a.Proposal != ca.IKEProposals[0] || b.Proposal != ca.IKEProposals[0] {
		t.Errorf("proposals %v / %v, want %v", a.Proposal, b.Proposal, ca.IKEProposals[0])
	}
	if a.Local.Addr() != addrA || a.Peer.Addr() != addrB || a.Local.Port() != 500 || a.NATLocal || a.NATPeer {
		t.Errorf("A endpoints %v -> %v, NAT %v/%v", a.Local, a.Peer, a.NATLocal, a.NATPeer)
	}
	if a.Established.Before(upAt) || a.Established.After(p.now) {
		t.Errorf("A established at %v, outside [%v, %v]", a.Established, upAt, p.now)
	}
	// The original initiator rekeys at the lifetime, the responder a tenth later.
	if got, want := a.RekeyAt.Sub(a.Established), 24*time.Hour; got != want {
		t.Errorf("A rekeys the IKE SA %v after establishing it, want %v", got, want)
	}
	if got, want := b.RekeyAt.Sub(b.Established), 24*time.Hour+24*time.Hour/10; got != want {
		t.Errorf("B rekeys the IKE SA %v after establishing it, want %v", got, want)
	}
	ac, bc := a.Child, b.Child
	if ac == nil || bc == nil {
		t.Fatalf("no Child SA in status: A %+v, B %+v", a, b)
	}
	if ac.InSPI != ua.InSPI || ac.OutSPI != ua.OutSPI || ac.InSPI != bc.OutSPI || ac.OutSPI != bc.InSPI {
		t.Errorf("Child SPIs: A in %x out %x (event %x/%x), B in %x out %x", ac.InSPI, ac.OutSPI, ua.InSPI, ua.OutSPI, bc.InSPI, bc.OutSPI)
	}
	if !ac.Transport || ac.Encap || ac.Proposal != ca.ESPProposals[0] || len(ac.LocalTS) != 1 || ac.LocalTS[0] != bc.PeerTS[0] {
		t.Errorf("Child A %+v, B %+v", ac, bc)
	}
	if got := ac.RekeyAt.Sub(ac.Installed); got != time.Hour {
		t.Errorf("A rekeys the Child SA %v after installing it, want 1h", got)
	}
	if sa.LocalID.String() != "192.0.2.1" || sa.PeerID.String() != "192.0.2.2" {
		t.Errorf("IDs %v / %v", sa.LocalID, sa.PeerID)
	}
}

// TestInitiateAndRekeyIKE: a passive session initiates when told to (as
// swanctl --initiate); RekeyIKE replaces the IKE SA's SPIs and keeps the
// Child SA; neither acts when there is nothing to do.
func TestInitiateAndRekeyIKE(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	ca.Role = RolePassive
	p := newPair(t, ca, cb)
	if p.a.RekeyIKE(p.now) {
		t.Error("RekeyIKE without an IKE SA reported a rekey")
	}
	p.start() // both passive: nothing happens
	p.run(time.Minute, nil)
	if len(p.sentA)+len(p.sentB) != 0 {
		t.Fatalf("two passive sessions sent %d datagrams", len(p.sentA)+len(p.sentB))
	}
	if !p.b.Initiate(p.now) {
		t.Fatal("Initiate on an idle passive session did nothing")
	}
	if p.b.Initiate(p.now) {
		t.Error("a second Initiate while connecting started another IKE SA")
	}
	if !p.run(time.Minute, p.bothUp) {
		t.Fatalf("no tunnel after Initiate: %v / %v", p.evA, p.evB)
	}
	before := p.a.Status(p.now).IKE
	if !p.a.RekeyIKE(p.now) {
		t.Fatal("RekeyIKE on an established IKE SA did nothing")
	}
	if !p.run(time.Minute, func() bool { return countEvents[IKESAUp](p.evA) == 2 && countEvents[IKESAUp](p.evB) == 2 }) {
		t.Fatalf("IKE SA not rekeyed: %v / %v", p.evA, p.evB)
	}
	p.run(time.Minute, nil) // the old IKE SA's DELETE
	after := p.a.Status(p.now)
	if after.IKE == nil || after.IKE.State != IKEEstablished || after.IKE.SPIi == before.SPIi || after.IKE.SPIr == before.SPIr {
		t.Errorf("after RekeyIKE: %+v (before SPIs %x/%x)", after.IKE, before.SPIi, before.SPIr)
	}
	if after.IKE.Child == nil || after.IKE.Child.InSPI != before.Child.InSPI || len(after.Others) != 0 {
		t.Errorf("Child SA after the IKE rekey: %+v, others %+v", after.IKE.Child, after.Others)
	}
	if n := len(downs(p.evA)) + countEvents[ChildSADown](p.evA); n != 0 {
		t.Errorf("the IKE rekey took something down: %v", p.evA)
	}
}

// TestDescribe traces every datagram of a pair coming up, as the runner's
// debug log does, on both sides: the payloads inside SK are listed with
// both the sender's and the receiver's keys, describing changes nothing,
// and no trace holds the PSK.
func TestDescribe(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	ca.PSK, cb.PSK = []byte("the-secret-psk"), []byte("the-secret-psk")
	p := newPair(t, ca, cb)
	var traces []string
	p.filter = func(from string, n int, d Datagram) pairAction {
		sender, receiver := p.a, p.b
		if from == "B" {
			sender, receiver = p.b, p.a
		}
		out, in := sender.Describe(d.Data, false), receiver.Describe(d.Data, true)
		if out.Err != "" || out.Payloads != in.Payloads || out.Exchange != in.Exchange || out.MessageID != in.MessageID {
			t.Errorf("%s datagram %d: sender describes %+v, receiver %+v", from, n, out, in)
		}
		traces = append(traces, out.Exchange.String()+" "+out.Payloads)
		return pairAction{}
	}
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatalf("no tunnel while describing: %v / %v", p.evA, p.evB)
	}
	all := strings.Join(traces, "\n")
	for _, want := range []string{
		"IKE_SA_INIT SA KE Nonce N(NAT_DETECTION_SOURCE_IP) N(NAT_DETECTION_DESTINATION_IP)",
		"IKE_AUTH SK{IDi N(INITIAL_CONTACT) AUTH SA TSi TSr N(USE_TRANSPORT_MODE)",
		"IKE_AUTH SK{IDr AUTH SA TSi TSr",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no trace like %q in:\n%s", want, all)
		}
	}
	if strings.Contains(all, "the-secret-psk") {
		t.Error("a trace holds the PSK")
	}
	if info := p.a.Describe([]byte("garbage"), true); info.Err == "" {
		t.Errorf("garbage described without an error: %+v", info)
	}
}
