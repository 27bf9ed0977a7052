package ikev2

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/greipsec/greipsec/ikev2/ikecrypto"
)

// The attacks of the security review (shared/reviews/security-2026-11.md,
// appendix A), made into tests: each fails on the code the review read and
// passes now.

// TestAttackSpoofedInitKeepsOwnAttempt (H2, review A.3): one spoofed
// IKE_SA_INIT with the peer's address and the highest nonce possible made
// an initiating session abandon its own attempt, with or without cookies,
// and drop the peer's genuine answer. Now our attempt goes on untouched and
// completes at once.
func TestAttackSpoofedInitKeepsOwnAttempt(t *testing.T) {
	for _, cookies := range []bool{false, true} {
		t.Run(fmt.Sprintf("cookies=%v", cookies), func(t *testing.T) {
			ca, cb := gwConfigs(ModeTransport)
			p := newPair(t, ca, cb)
			p.a.RequireCookies(cookies)
			p.start()
			p.collect() // A's IKE_SA_INIT request is on its way to B
			own := p.a.sa
			spoof := spoofInit(t, cb, constReader(0xff))
			p.a.Receive(spoof, ap500(addrA), ap500(addrB), p.now)
			if p.a.sa != own || own.state != stateInitSent {
				t.Fatalf("A gave up its own attempt for a spoofed IKE_SA_INIT")
			}
			if !p.run(time.Second, p.bothUp) {
				t.Fatalf("no tunnel within a second: A %v; B %v", p.evA, p.evB)
			}
			if p.a.sa != own {
				t.Error("the tunnel is not A's own attempt")
			}
			p.checkChildPair()
		})
	}
}

// TestAttackSpoofedInitsDoNotDisplaceHalfOpen (H2): a responder kept one
// half-open slot, which every new IKE_SA_INIT replaced: spoofed requests
// arriving between the peer's IKE_SA_INIT and its IKE_AUTH made that
// IKE_AUTH find no SA, again and again. Now each request has its own entry
// in the half-open table, and the peer's IKE_AUTH finds its own.
func TestAttackSpoofedInitsDoNotDisplaceHalfOpen(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	p := newPair(t, ca, cb)
	mut := newInitMutator(t, spoofInit(t, ca, nil))
	i := uint64(0)
	p.filter = func(from string, _ int, d Datagram) pairAction {
		if from == "A" {
			// Right behind each of A's datagrams, two spoofed requests.
			for range 2 {
				i++
				p.b.Receive(mut.next(i), ap500(addrB), netip.AddrPortFrom(addrA, uint16(2000+i)), p.now)
				p.b.Output()
			}
		}
		return pairAction{}
	}
	p.start()
	if !p.run(10*time.Second, p.bothUp) {
		t.Fatalf("no tunnel under spoofed IKE_SA_INITs: A %v; B %v", p.evA, p.evB)
	}
	p.checkChildPair()
	if p.b.stats.CookiesSent == 0 {
		t.Error("B never asked for a cookie")
	}
}

// TestAttackCookiesUnderLoad (M1): cookies were never required and every
// spoofed IKE_SA_INIT cost a key exchange. Now, past the per-peer cookie
// threshold, a request without a valid cookie is answered with one, from no
// state and without a key exchange; past the block threshold new requests
// are dropped; and the genuine peer, which can receive its cookie, still
// gets its tunnel.
func TestAttackCookiesUnderLoad(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	p := newPair(t, ca, cb)
	mut := newInitMutator(t, spoofInit(t, ca, nil))
	const n = 50
	for i := uint64(1); i <= n; i++ {
		dgs, _ := deliverTo(p.b, mut.next(i), ap500(addrB), netip.AddrPortFrom(addrA, uint16(1000+i)), p.now)
		if len(dgs) != 1 {
			t.Fatalf("request %d: %d answers", i, len(dgs))
		}
		m, err := ParseMessage(dgs[0].Data)
		if err != nil {
			t.Fatal(err)
		}
		cookie := len(m.Payloads) == 1 && m.Payloads[0].Type() == PayloadNotify && m.Payloads[0].(*NotifyPayload).NotifyType == NotifyCookie
		if want := i > DefaultCookieThresholdPeer; cookie != want {
			t.Fatalf("request %d: answered with a cookie: %v, want %v (%v)", i, cookie, want, m)
		}
	}
	st := p.b.Stats()
	if len(p.b.half) != DefaultCookieThresholdPeer || st.HalfOpenCreated != DefaultCookieThresholdPeer || st.CookiesSent != n-DefaultCookieThresholdPeer {
		t.Errorf("half-open %d, stats %+v", len(p.b.half), st)
	}
	// The genuine peer gets a cookie too, comes back with it, and is let in.
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatalf("no tunnel: A %v; B %v", p.evA, p.evB)
	}
	p.checkChildPair()
	// Half-open SAs of the flood expire; the tunnel stays.
	p.run(time.Minute, nil)
	if len(p.b.half) != 0 || p.b.Stats().HalfOpenExpired != DefaultCookieThresholdPeer || !p.b.Established() {
		t.Errorf("after a minute: half-open %d, stats %+v", len(p.b.half), p.b.Stats())
	}

	// Past the block threshold nothing gets in, valid cookie or not.
	g, err := NewGate(GateConfig{CookieThresholdPeer: 1, BlockThresholdPeer: 2})
	if err != nil {
		t.Fatal(err)
	}
	cb.Gate = g
	b, err := NewSession(cb, nil)
	if err != nil {
		t.Fatal(err)
	}
	withCookie := func(i uint64) []byte {
		msg := mut.next(i)
		_, ni, _ := scanInit(msg)
		m, _ := ParseMessage(msg)
		m.Payloads = append([]Payload{&NotifyPayload{NotifyType: NotifyCookie, Data: g.cookies.make(ni, addrA, i, p.now)}}, m.Payloads...)
		return m.Encode(nil)
	}
	for i := uint64(1); i <= 5; i++ {
		deliverTo(b, withCookie(i), ap500(addrB), netip.AddrPortFrom(addrA, uint16(i)), p.now)
	}
	if len(b.half) != 2 || b.Stats().InitBlocked != 3 {
		t.Errorf("block threshold 2: half-open %d, stats %+v", len(b.half), b.Stats())
	}
}

// TestAttackReplayMovesNothing (M2, review A.4): a replayed (retransmitted)
// request from another port moved the peer, and ESP-in-UDP with it; and an
// initiator behind a NAT followed the peer too. Now only a new request, or
// the response to ours, moves the peer, and only when the peer is behind a
// NAT and we are not the NATed original initiator (RFC 7296 §2.23).
func TestAttackReplayMovesNothing(t *testing.T) {
	ca, cb := gwConfigs(ModeTunnel)
	p := newPair(t, ca, cb)
	p.natA = true
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatal("no tunnel")
	}
	mappedA := p.b.sa.peer
	// A liveness check, answered.
	n := len(p.sentA)
	p.a.sendRequest(p.a.sa, ExchangeInformational, nil, ignoreResponse, p.now)
	p.run(time.Second, nil)
	dpd := p.sentA[n]
	// The attacker replays it from port 31337.
	evilA := netip.AddrPortFrom(addrA, 31337)
	dgs, evs := deliverTo(p.b, dpd.Data, dpd.Peer, evilA, p.now)
	if countEvents[PeerMoved](evs) != 0 || p.b.sa.peer != mappedA {
		t.Errorf("replayed request moved B's peer to %v (events %v)", p.b.sa.peer, evs)
	}
	if len(dgs) != 1 || dgs[0].Peer != evilA {
		t.Errorf("a retransmitted request is answered where it came from (§2.11): %v", dgs)
	}
	if p.b.Stats().Retransmits != 1 {
		t.Errorf("stats %+v", p.b.Stats())
	}

	// A new request of B's, arriving at A (the initiator, behind the NAT)
	// from another port: A answers it there but does not move.
	before := p.a.sa.peer
	n = len(p.sentB)
	p.b.sendRequest(p.b.sa, ExchangeInformational, nil, ignoreResponse, p.now)
	p.collect()
	p.flight = nil
	evilB := netip.AddrPortFrom(addrB, 31337)
	dgs, evs = deliverTo(p.a, p.sentB[n].Data, netip.AddrPortFrom(addrA, 4500), evilB, p.now)
	if p.a.sa.peer != before || countEvents[PeerMoved](evs) != 0 {
		t.Errorf("A, the NATed initiator, moved its peer to %v", p.a.sa.peer)
	}
	if len(dgs) != 1 || dgs[0].Peer != evilB {
		t.Errorf("A's answer went to %v", dgs)
	}
	// And a new request from a new mapping still moves B's peer (the NAT
	// in front of A changed), as TestPairNAT checks in full.
	p.natShift = 20000
	p.a.sendRequest(p.a.sa, ExchangeInformational, nil, ignoreResponse, p.now)
	p.run(time.Second, nil)
	if p.b.sa.peer == mappedA {
		t.Error("B no longer follows a NAT rebinding")
	}
}

// TestAttackHalfOpenInformational (L1, review A.3b): a half-open IKE SA,
// which anyone able to send from the peer's address completes, could run
// INFORMATIONAL: its DELETE reached the Child SAs of the established IKE
// SA, and its AUTHENTICATION_FAILED was logged as the peer's. Now nothing
// but IKE_AUTH is accepted before authentication.
func TestAttackHalfOpenInformational(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	p := newPair(t, ca, cb)
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatal("no tunnel")
	}
	// A rekeys its Child SA; its DELETE of the old one is lost, so B keeps
	// the old one on its way out.
	p.filter = func(from string, _ int, d Datagram) pairAction {
		m, err := ParseHeader(d.Data)
		return pairAction{drop: err == nil && from == "A" && m.Exchange == ExchangeInformational && !m.IsResponse()}
	}
	p.a.RekeyChild(p.a.sa.child.inSPI, p.now)
	p.run(time.Second, nil)
	p.filter = nil
	if len(p.b.sa.extra) != 1 {
		t.Fatalf("B has %d Child SAs on their way out, want 1", len(p.b.sa.extra))
	}
	old := p.b.sa.extra[0]

	// X claims A's address, knows A's proposals but not the PSK, and
	// completes IKE_SA_INIT with B.
	x, err := NewSession(ca, nil)
	if err != nil {
		t.Fatal(err)
	}
	x.Start(p.now)
	req, _ := x.Output()
	resp, _ := deliverTo(p.b, req[0].Data, ap500(addrB), ap500(addrA), p.now)
	if len(resp) != 1 {
		t.Fatal("B did not answer X")
	}
	x.Receive(resp[0].Data, ap500(addrA), ap500(addrB), p.now)
	x.Output()
	if x.sa == nil || x.sa.state != stateAuthSent {
		t.Fatal("X has no keys")
	}
	nb := len(p.evB)
	for _, ps := range [][]Payload{
		{&DeletePayload{Protocol: ProtocolESP, SPIs: []uint32{old.outSPI}}},
		{&NotifyPayload{NotifyType: NotifyAuthenticationFailed}},
		{&DeletePayload{Protocol: ProtocolIKE}},
	} {
		msg := sealRaw(t, x.sa, x.sa.header(ExchangeInformational, 1, false), ps[0].Type(), EncodePayloadChain(nil, ps))
		dgs, evs := deliverTo(p.b, msg, ap500(addrB), ap500(addrA), p.now)
		if len(dgs)+len(evs) != 0 {
			t.Errorf("B answered %v with %d datagrams and events %v", ps[0], len(dgs), evs)
		}
	}
	p.collect()
	if len(p.b.sa.extra) != 1 || p.b.sa.extra[0] != old || len(p.evB) != nb || !p.b.Established() {
		t.Errorf("a half-open SA changed B: extra %d, events %v", len(p.b.sa.extra), p.evB[nb:])
	}
	if p.b.Stats().NotAuthenticated != 3 {
		t.Errorf("stats %+v", p.b.Stats())
	}
}

// TestDeleteOnlyWithinIKESA (L1): a DELETE resolved Child SA SPIs in every
// IKE SA of the session. Now only in the IKE SA it arrived on and its rekey
// predecessor or successor.
func TestDeleteOnlyWithinIKESA(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	p := newPair(t, ca, cb)
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatal("no tunnel")
	}
	// Another IKE SA of B's, not related to the current one by rekeying,
	// with a Child SA on its way out.
	other := &childSA{inSPI: 0x1111, outSPI: 0x2222, announced: true}
	p.b.old = &ikeSA{state: stateEstablished, retired: true, retireAt: p.now.Add(time.Minute), extra: []*childSA{other}}
	p.a.sendRequest(p.a.sa, ExchangeInformational, []Payload{&DeletePayload{Protocol: ProtocolESP, SPIs: []uint32{other.outSPI}}}, ignoreResponse, p.now)
	p.run(time.Second, nil)
	if len(p.b.old.extra) != 1 {
		t.Error("a DELETE on one IKE SA removed a Child SA of another")
	}
	for _, e := range p.evB {
		if d, ok := e.(ChildSADown); ok && d.InSPI == other.inSPI {
			t.Errorf("ChildSADown %v", d)
		}
	}
}

// TestChildInstallFailed (L2): when the runner could not install a Child
// SA, the session kept the IKE SA up (and answered liveness checks) while
// ESP black-holed. Now the Child SA and its IKE SA are deleted with the
// peer and an active session starts again, backing off while installing
// keeps failing.
func TestChildInstallFailed(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	p := newPair(t, ca, cb)
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatal("no tunnel")
	}
	up := childUps(p.evB)[0]
	p.b.ChildInstallFailed(up.InSPI+1, errors.New("not ours"), p.now) // unknown: ignored
	p.b.ChildInstallFailed(up.InSPI, errors.New("dataplane: inbound SPI in use"), p.now)
	p.run(time.Second, nil)
	if d := downs(p.evB); len(d) != 1 || !strings.Contains(d[0].Reason, "installing the Child SA") || !strings.Contains(d[0].Err.Error(), "SPI in use") {
		t.Errorf("B: %v", d)
	}
	if countEvents[ChildSADown](p.evB) != 1 || countEvents[ChildSADown](p.evA) != 1 {
		t.Errorf("Child SA not removed on both sides: A %v; B %v", p.evA, p.evB)
	}
	if d := downs(p.evA); len(d) != 1 || !strings.Contains(d[0].Reason, "peer deleted") {
		t.Errorf("A: %v", d)
	}
	// A, the active side, starts again.
	if !p.run(time.Minute, func() bool { return countEvents[ChildSAUp](p.evA) == 2 && countEvents[ChildSAUp](p.evB) == 2 }) {
		t.Fatalf("no new tunnel: A %v; B %v", p.evA, p.evB)
	}
	p.checkChildPair()

	// Installing keeps failing on A: each attempt fails, and the attempts
	// back off.
	var starts []time.Time
	p.a.ChildInstallFailed(p.a.sa.child.inSPI, errors.New("no"), p.now)
	seen := len(p.evA)
	nSent := len(p.sentA)
	p.run(10*time.Minute, func() bool {
		for _, e := range p.evA[seen:] {
			if u, ok := e.(ChildSAUp); ok {
				p.a.ChildInstallFailed(u.InSPI, errors.New("no"), p.now)
			}
		}
		seen = len(p.evA)
		for _, d := range p.sentA[nSent:] {
			if h, err := ParseHeader(d.Data); err == nil && h.Exchange == ExchangeIKESAInit {
				starts = append(starts, p.now)
			}
		}
		nSent = len(p.sentA)
		return false
	})
	if len(starts) < 4 {
		t.Fatalf("%d restarts in 10 minutes", len(starts))
	}
	for i := 2; i < len(starts); i++ {
		if starts[i].Sub(starts[i-1]) < starts[i-1].Sub(starts[i-2]) {
			t.Errorf("restart intervals shrink: %v", starts)
			break
		}
	}
}

// TestSPIInUse (L2): inbound SPIs were checked only against the current
// Child SA; the dataplane then refused a duplicate. Now Config.SPIInUse
// is asked for every new inbound SPI.
func TestSPIInUse(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	var refused []uint32
	ca.SPIInUse = func(spi uint32) bool {
		if len(refused) < 3 {
			refused = append(refused, spi)
			return true
		}
		return false
	}
	p := newPair(t, ca, cb)
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatal("no tunnel")
	}
	a, _ := p.checkChildPair()
	if len(refused) != 3 {
		t.Fatalf("SPIInUse asked %d times", len(refused))
	}
	for _, spi := range refused {
		if a.InSPI == spi {
			t.Errorf("inbound SPI 0x%08x chosen although in use", spi)
		}
	}
}

// TestHardLifetime (L3): a peer that keeps refusing rekeys kept one key in
// use for ever. Now the Child SA and the IKE SA are deleted at their hard
// lifetime (1.1 times the rekey time by default, or as configured).
func TestHardLifetime(t *testing.T) {
	t.Run("child", func(t *testing.T) {
		ca, cb := gwConfigs(ModeTransport)
		ca.ChildLifetime, cb.ChildLifetime = 10*time.Minute, 10*time.Minute
		p := newPair(t, ca, cb)
		p.start()
		if !p.run(time.Minute, p.bothUp) {
			t.Fatal("no tunnel")
		}
		start := p.now
		first := childUps(p.evA)[0]
		// B no longer accepts A's ESP proposal: every rekey fails.
		p.b.cfg.ESPProposals = []ESPProposal{{Encr: uint16(EncrChaCha20Poly1305)}}
		p.run(11*time.Minute-time.Second, nil)
		if countEvents[ChildSADown](p.evA) != 0 {
			t.Fatalf("Child SA gone before its hard lifetime: %v", p.evA)
		}
		p.run(2*time.Second, nil)
		var down *ChildSADown
		for _, e := range p.evA {
			if d, ok := e.(ChildSADown); ok && d.InSPI == first.InSPI {
				down = &d
			}
		}
		if down == nil || !strings.Contains(down.Reason, "hard lifetime") {
			t.Fatalf("at %v: A %v", p.now.Sub(start), p.evA)
		}
		if countEvents[ChildSADown](p.evB) == 0 {
			t.Error("B kept the Child SA")
		}
	})
	t.Run("ike", func(t *testing.T) {
		ca, cb := gwConfigs(ModeTransport)
		ca.IKELifetime, cb.IKELifetime = 10*time.Minute, 10*time.Minute
		ca.IKEHardLifetime = 12 * time.Minute
		p := newPair(t, ca, cb)
		p.start()
		if !p.run(time.Minute, p.bothUp) {
			t.Fatal("no tunnel")
		}
		p.b.cfg.IKEProposals = []IKEProposal{{Encr: uint16(EncrAESGCM16), KeyBits: 128, PRF: uint16(PRFHMACSHA2_256), DH: uint16(DHECP256)}}
		p.run(12*time.Minute-time.Second, nil)
		if len(downs(p.evA)) != 0 {
			t.Fatalf("IKE SA gone before its hard lifetime: %v", downs(p.evA))
		}
		p.run(2*time.Second, nil)
		if d := downs(p.evA); len(d) != 1 || !strings.Contains(d[0].Reason, "hard lifetime") {
			t.Fatalf("A: %v", d)
		}
	})
	_, cb := gwConfigs(ModeTransport)
	cb.ChildLifetime, cb.ChildHardLifetime = time.Hour, time.Hour
	if _, err := NewSession(cb, nil); err == nil || !strings.Contains(err.Error(), "hard lifetime") {
		t.Errorf("hard lifetime = lifetime accepted: %v", err)
	}
}

// TestWipeKeys (L7): SK_pi and SK_pr are cleared after IKE_AUTH, SK_d and
// the rest when the IKE SA dies, and the PSK on Close.
func TestWipeKeys(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	p := newPair(t, ca, cb)
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatal("no tunnel")
	}
	if p.a.sa.skpi != nil || p.a.sa.skpr != nil || p.b.sa.skpi != nil || p.b.sa.skpr != nil {
		t.Error("SK_pi/SK_pr kept after IKE_AUTH")
	}
	skd, psk := p.a.sa.skd, p.a.cfg.PSK
	sa := p.a.sa
	p.a.Close(p.now)
	zero := func(b []byte) bool {
		for _, x := range b {
			if x != 0 {
				return false
			}
		}
		return len(b) > 0
	}
	if !zero(skd) || !zero(psk) || sa.out != nil || sa.in != nil {
		t.Errorf("keys not wiped: SK_d %x, PSK %q", skd, psk)
	}
}

// TestShortNonce (L8): a 16-octet nonce was accepted with any PRF. RFC 7296
// §2.10 wants at least half the PRF's key size: 32 octets for
// PRF_HMAC_SHA2_512.
func TestShortNonce(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	ike := []IKEProposal{{Encr: uint16(EncrAESCBC), KeyBits: 256, Integ: uint16(IntegHMACSHA2_512_256), PRF: uint16(PRFHMACSHA2_512), DH: uint16(DHECP256)}}
	ca.IKEProposals, cb.IKEProposals = ike, ike
	b, err := NewSession(cb, nil)
	if err != nil {
		t.Fatal(err)
	}
	dh, err := ikecrypto.GenerateDH(uint16(DHECP256), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		nonce int
		ok    bool
	}{{16, false}, {31, false}, {32, true}} {
		m := Message{
			Header: Header{SPIi: uint64(i + 1), Exchange: ExchangeIKESAInit, Flags: FlagInitiator},
			Payloads: []Payload{IKESAPayload(ike, nil), &KEPayload{Group: DHECP256, Data: dh.Public()},
				&NoncePayload{Nonce: make([]byte, tc.nonce)}},
		}
		dgs, _ := deliverTo(b, m.Encode(nil), ap500(addrB), ap500(addrA), epoch)
		if len(dgs) != 1 {
			t.Fatalf("nonce %d: %d answers", tc.nonce, len(dgs))
		}
		r, _ := ParseMessage(dgs[0].Data)
		refused := len(r.Payloads) == 1 && r.Payloads[0].(*NotifyPayload).NotifyType == NotifyInvalidSyntax
		if wantHalf := map[bool]int{true: 1}[tc.ok]; refused == tc.ok || len(b.half) != wantHalf {
			t.Errorf("%d-octet nonce with PRF_HMAC_SHA2_512: answer %v, half-open %d", tc.nonce, r, len(b.half))
		}
	}
	if !nonceLenOK(uint16(PRFHMACSHA2_256), make([]byte, 16)) || nonceLenOK(uint16(PRFHMACSHA2_384), make([]byte, 23)) ||
		!nonceLenOK(uint16(PRFHMACSHA2_384), make([]byte, 24)) || nonceLenOK(uint16(PRFHMACSHA2_256), make([]byte, 257)) {
		t.Error("nonceLenOK")
	}
}

// TestForgedInitError (N2): an unauthenticated NO_PROPOSAL_CHOSEN, or
// INVALID_KE_PAYLOAD naming a group we do not offer, ended our attempt at
// once. Now it is noted and the genuine answer still completes the
// exchange; only if none comes is the error reported.
func TestForgedInitError(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	p := newPair(t, ca, cb)
	p.start()
	p.collect()
	spii := p.a.sa.spii
	for _, n := range []*NotifyPayload{
		{NotifyType: NotifyNoProposalChosen},
		{NotifyType: NotifyInvalidKEPayload, Data: []byte{0, 2}},
		{NotifyType: NotifyInvalidSyntax},
	} {
		m := Message{Header: Header{SPIi: spii, Exchange: ExchangeIKESAInit, Flags: FlagResponse}, Payloads: []Payload{n}}
		p.a.Receive(m.Encode(nil), ap500(addrA), ap500(addrB), p.now)
	}
	if !p.run(time.Second, p.bothUp) {
		t.Fatalf("a forged error answer ended the attempt: A %v", p.evA)
	}
	if p.a.Stats().ErrorAnswers != 3 {
		t.Errorf("stats %+v", p.a.Stats())
	}
}

// TestInvalidMajorVersion: an IKE_SA_INIT request of major version 3 is
// answered with INVALID_MAJOR_VERSION in a version 2.0 header (RFC 7296
// §2.5), by the session and by the Gate, without state; version 1 (IKEv1)
// is dropped.
func TestInvalidMajorVersion(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	b, err := NewSession(cb, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := spoofInit(t, ca, nil)
	msg[hdrVersion] = 0x30
	check := func(who string, reply []byte) {
		t.Helper()
		if len(reply) < HeaderLen || reply[hdrVersion] != 0x20 {
			t.Fatalf("%s: answer %x", who, reply)
		}
		m, err := ParseMessage(reply)
		if err != nil {
			t.Fatal(err)
		}
		if !m.IsResponse() || m.SPIi != uint64FromBytes(msg) || m.SPIr != 0 || m.Exchange != ExchangeIKESAInit || len(m.Payloads) != 1 ||
			m.Payloads[0].(*NotifyPayload).NotifyType != NotifyInvalidMajorVersion {
			t.Errorf("%s: answer %v", who, m)
		}
	}
	dgs, evs := deliverTo(b, msg, ap500(addrB), ap500(addrA), epoch)
	if len(dgs) != 1 || len(evs) != 0 || len(b.half) != 0 || b.sa != nil {
		t.Fatalf("session: %d answers, events %v, state kept", len(dgs), evs)
	}
	check("session", dgs[0].Data)
	v, reply := b.gate.Admit(msg, ap500(addrB), ap500(addrA), epoch)
	if v != VerdictReply {
		t.Fatalf("gate: verdict %v", v)
	}
	check("gate", reply)
	msg[hdrVersion] = 0x10
	if dgs, _ := deliverTo(b, msg, ap500(addrB), ap500(addrA), epoch); len(dgs) != 0 {
		t.Error("IKEv1 answered")
	}
	if v, _ := b.gate.Admit(msg, ap500(addrB), ap500(addrA), epoch); v != VerdictDrop {
		t.Errorf("gate: IKEv1 verdict %v", v)
	}
}

func uint64FromBytes(b []byte) uint64 {
	var v uint64
	for _, x := range b[:8] {
		v = v<<8 | uint64(x)
	}
	return v
}
