package ikev2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/greipsec/greipsec/ikev2/ikecrypto"
)

// IKE_SA_INIT (RFC 7296 §1.2): negotiate the IKE SA's transforms, exchange
// KE and nonces, detect NATs (§2.23) and fragmentation support (RFC 7383
// §2.3); the answers INVALID_KE_PAYLOAD (§1.2) and COOKIE (§2.6); and the
// key schedule (§2.14).
//
//	HDR, SAi1, KEi, Ni, N(NAT_DETECTION_*), [N(IKEV2_FRAGMENTATION_SUPPORTED)] -->
//	<-- HDR, SAr1, KEr, Nr, N(NAT_DETECTION_*), [N(IKEV2_FRAGMENTATION_SUPPORTED)]

// initiate starts a new IKE SA as initiator.
func (s *Session) initiate(now time.Time) {
	spi, err := s.newIKESPI()
	if err == nil {
		var ni []byte
		if ni, err = s.randomBytes(nonceLen); err == nil {
			sa := &ikeSA{
				initiator: true,
				state:     stateInitSent,
				spii:      spi,
				created:   now,
				ni:        ni,
				local:     netip.AddrPortFrom(s.cfg.LocalAddr, portIKE),
				peer:      netip.AddrPortFrom(s.cfg.PeerAddr, portIKE),
			}
			if s.cfg.StartNATT {
				sa.local = netip.AddrPortFrom(s.cfg.LocalAddr, s.cfg.NATTPort)
				sa.peer = netip.AddrPortFrom(s.cfg.PeerAddr, s.cfg.PeerNATTPort)
			}
			s.sa = sa
			s.sendInitRequest(sa, now)
			return
		}
	}
	s.emit(IKESADown{Reason: "cannot start the IKE SA", Err: err})
	s.scheduleRestart(now)
}

// newIKESPI returns a random non-zero IKE SPI.
func (s *Session) newIKESPI() (uint64, error) {
	for {
		b, err := s.randomBytes(ikeSPILen)
		if err != nil {
			return 0, err
		}
		if spi := binary.BigEndian.Uint64(b); spi != 0 {
			return spi, nil
		}
	}
}

// sendInitRequest (re)builds and sends the IKE_SA_INIT request, with a
// fresh key of s.keGroup and sa.cookie if the responder asked for one.
func (s *Session) sendInitRequest(sa *ikeSA, now time.Time) {
	if sa.dh == nil || sa.dh.Group() != s.keGroup {
		dh, err := ikecrypto.GenerateDH(s.keGroup, s.rand)
		if err != nil {
			s.fail(sa, "cannot generate a key exchange value", err, now)
			return
		}
		sa.dh = dh
	}
	var payloads []Payload
	if sa.cookie != nil {
		payloads = append(payloads, &NotifyPayload{NotifyType: NotifyCookie, Data: sa.cookie})
	}
	payloads = append(payloads,
		IKESAPayload(s.cfg.IKEProposals, nil),
		&KEPayload{Group: TransformID(sa.dh.Group()), Data: sa.dh.Public()},
		&NoncePayload{Nonce: sa.ni},
	)
	payloads = append(payloads, s.natNotifies(sa.spii, 0, sa.local, sa.peer)...)
	if s.cfg.Fragmentation {
		payloads = append(payloads, &NotifyPayload{NotifyType: NotifyIKEv2FragmentationSupported})
	}
	m := Message{Header: sa.header(ExchangeIKESAInit, 0, false), Payloads: payloads}
	sa.initReq = m.Encode(nil)
	sa.nextID = 1
	sa.req = &request{exchange: ExchangeIKESAInit, id: 0, datagrams: [][]byte{sa.initReq}}
	s.transmit(sa, sa.req, now)
}

// receiveInitResponse processes the answer to our IKE_SA_INIT request.
// Nothing in it is authenticated yet, so anything unexpected is dropped;
// the retransmission timer goes on.
func (s *Session) receiveInitResponse(sa *ikeSA, msg []byte, hdr Header, local, peer netip.AddrPort, now time.Time) {
	msg = append([]byte(nil), msg...)
	m, err := ParseMessage(msg)
	if err != nil || CheckPayloads(ExchangeIKESAInit, true, false, m.Payloads) != nil {
		return
	}
	var (
		saP    *SAPayload
		ke     *KEPayload
		nonce  *NoncePayload
		frag   bool
		errNot *NotifyPayload
		cookie []byte
	)
	for _, p := range m.Payloads {
		switch p := p.(type) {
		case *SAPayload:
			saP = p
		case *KEPayload:
			ke = p
		case *NoncePayload:
			nonce = p
		case *NotifyPayload:
			switch {
			case p.NotifyType == NotifyCookie:
				cookie = p.Data
			case p.NotifyType == NotifyIKEv2FragmentationSupported:
				frag = true
			case p.NotifyType.IsError() && errNot == nil:
				errNot = p
			}
		}
	}

	switch {
	case cookie != nil && saP == nil:
		// §2.6: repeat the request with the cookie first. A responder that
		// keeps asking is stopped by the retransmission limit.
		if len(cookie) < 1 || len(cookie) > 64 || bytes.Equal(cookie, sa.cookie) {
			return
		}
		sa.cookie = append([]byte(nil), cookie...)
		s.sendInitRequest(sa, now)
		return
	case errNot != nil && errNot.NotifyType == NotifyInvalidKEPayload:
		if len(errNot.Data) != 2 {
			return
		}
		group := binary.BigEndian.Uint16(errNot.Data)
		if group == s.keGroup || !s.proposesGroup(group) {
			s.fail(sa, fmt.Sprintf("peer answered INVALID_KE_PAYLOAD asking for key exchange group %d, which our IKE proposals do not offer", group),
				errors.New("ikev2: no common key exchange group"), now)
			return
		}
		s.keGroup = group
		s.sendInitRequest(sa, now)
		return
	case errNot != nil:
		reason := fmt.Sprintf("peer answered %v to IKE_SA_INIT", errNot.NotifyType)
		if errNot.NotifyType == NotifyNoProposalChosen {
			reason += ": no IKE proposal in common; check the ike proposals on both sides"
		}
		s.fail(sa, reason, fmt.Errorf("ikev2: IKE_SA_INIT failed: %v", errNot.NotifyType), now)
		return
	case saP == nil || ke == nil || nonce == nil || hdr.SPIr == 0:
		return
	}

	prop, err := AcceptIKE(s.cfg.IKEProposals, saP)
	if err != nil || prop.DH != sa.dh.Group() || uint16(ke.Group) != prop.DH {
		s.fail(sa, "peer answered IKE_SA_INIT with a proposal we did not offer", err, now)
		return
	}
	gir, err := sa.dh.SharedSecret(ke.Data)
	if err != nil {
		return // a bad KE value is not authenticated: wait for a good answer
	}
	sa.spir = hdr.SPIr
	sa.nr = append([]byte(nil), nonce.Nonce...)
	sa.initResp = msg
	if err := s.deriveIKEKeys(sa, prop, gir); err != nil {
		s.fail(sa, "cannot derive the IKE SA keys", err, now)
		return
	}
	s.processNATD(sa, hdr, m.Payloads, local, peer)
	sa.fragment = frag && s.cfg.Fragmentation
	sa.dh = nil
	s.requestDone(sa)
	if sa.nat() {
		sa.local, sa.peer = s.natPorts(sa.local, sa.peer)
	}
	sa.state = stateAuthSent
	s.sendAuthRequest(sa, now)
}

// proposesGroup reports whether one of our IKE proposals uses group.
func (s *Session) proposesGroup(group uint16) bool {
	for _, p := range s.cfg.IKEProposals {
		if p.DH == group {
			return true
		}
	}
	return false
}

// receiveInitRequest answers an IKE_SA_INIT request as responder.
func (s *Session) receiveInitRequest(msg []byte, hdr Header, local, peer netip.AddrPort, now time.Time) {
	if hdr.SPIr != 0 || hdr.MessageID != 0 || !hdr.IsInitiator() || hdr.SPIi == 0 {
		return
	}
	// A retransmitted request: answer it again from the cache.
	for _, sa := range []*ikeSA{s.sa, s.half} {
		if sa != nil && !sa.initiator && sa.spii == hdr.SPIi && sa.peer.Addr() == peer.Addr() {
			if sa.state == stateInitDone && sa.haveResp && sa.peerNextID == 1 {
				s.resendResponse(sa, local, peer)
			}
			return
		}
	}
	if peer.Addr().Unmap() != s.cfg.PeerAddr {
		return // not our peer (the runner routes by address; be safe)
	}
	msg = append([]byte(nil), msg...)
	m, err := ParseMessage(msg)
	if err != nil {
		var uc *UnsupportedCriticalError
		if errors.As(err, &uc) {
			s.answerInitError(hdr, local, peer, uc.Notify())
		}
		return
	}
	if CheckPayloads(ExchangeIKESAInit, false, false, m.Payloads) != nil {
		return
	}
	var (
		saP   *SAPayload
		ke    *KEPayload
		nonce *NoncePayload
		frag  bool
	)
	for _, p := range m.Payloads {
		switch p := p.(type) {
		case *SAPayload:
			saP = p
		case *KEPayload:
			ke = p
		case *NoncePayload:
			nonce = p
		case *NotifyPayload:
			if p.NotifyType == NotifyIKEv2FragmentationSupported {
				frag = true
			}
		}
	}

	// Simultaneous initiation: the side whose own nonce is lower gives up
	// its attempt and answers; the other ignores the request.
	if cur := s.sa; cur != nil && cur.initiator {
		switch cur.state {
		case stateInitSent:
			if bytes.Compare(cur.ni, nonce.Nonce) >= 0 {
				return
			}
			// Abandon ours silently: it never got anywhere. Should no SA
			// come of theirs, start again later.
			s.sa = nil
			defer s.scheduleRestart(now)
		case stateAuthSent:
			return
		}
	}

	if s.cookies.required && !s.cookies.check(m.Payloads, nonce.Nonce, peer.Addr(), hdr.SPIi) {
		s.answerInitError(hdr, local, peer, &NotifyPayload{NotifyType: NotifyCookie, Data: s.cookies.make(nonce.Nonce, peer.Addr(), hdr.SPIi)})
		return
	}

	// Proposal: prefer one whose group is the one in KE; if only another
	// group is acceptable, ask for it (INVALID_KE_PAYLOAD, §1.2).
	prop, chosen, invalidKE, err := s.selectIKEWithKE(saP, uint16(ke.Group))
	if err != nil {
		s.answerInitError(hdr, local, peer, &NotifyPayload{NotifyType: NotifyNoProposalChosen})
		s.emit(IKESADown{Reason: fmt.Sprintf("peer %v offered no IKE proposal we accept (NO_PROPOSAL_CHOSEN sent): offered %s", peer.Addr(), proposalsString(saP)), Err: err})
		return
	}
	if invalidKE != 0 {
		s.answerInitError(hdr, local, peer, &NotifyPayload{NotifyType: NotifyInvalidKEPayload, Data: binary.BigEndian.AppendUint16(nil, invalidKE)})
		return
	}

	dh, err := ikecrypto.GenerateDH(prop.DH, s.rand)
	if err != nil {
		return
	}
	gir, err := dh.SharedSecret(ke.Data)
	if err != nil {
		s.answerInitError(hdr, local, peer, &NotifyPayload{NotifyType: NotifyInvalidSyntax})
		return
	}
	spir, err := s.newIKESPI()
	if err != nil {
		return
	}
	nr, err := s.randomBytes(nonceLen)
	if err != nil {
		return
	}
	sa := &ikeSA{
		state:      stateInitDone,
		spii:       hdr.SPIi,
		spir:       spir,
		created:    now,
		ni:         append([]byte(nil), nonce.Nonce...),
		nr:         nr,
		initReq:    msg,
		local:      local,
		peer:       peer,
		peerNextID: 1,
		nextID:     0,
	}
	if err := s.deriveIKEKeys(sa, prop, gir); err != nil {
		return
	}
	s.processNATD(sa, hdr, m.Payloads, local, peer)
	sa.fragment = frag && s.cfg.Fragmentation

	resp := []Payload{
		&SAPayload{Proposals: []Proposal{chosen}},
		&KEPayload{Group: TransformID(dh.Group()), Data: dh.Public()},
		&NoncePayload{Nonce: nr},
	}
	resp = append(resp, s.natNotifies(sa.spii, sa.spir, local, peer)...)
	if sa.fragment {
		resp = append(resp, &NotifyPayload{NotifyType: NotifyIKEv2FragmentationSupported})
	}
	m2 := Message{Header: sa.header(ExchangeIKESAInit, 0, true), Payloads: resp}
	sa.initResp = m2.Encode(nil)
	sa.lastResp, sa.haveResp = [][]byte{sa.initResp}, true
	s.send(local, peer, sa.initResp)

	switch {
	case s.sa == nil:
		s.sa = sa
	case s.sa.state == stateEstablished:
		s.half = sa // the peer restarted: replace ours once it authenticates
	default:
		s.sa = sa // a newer attempt of the peer replaces a half-open one
	}
}

// answerInitError answers an IKE_SA_INIT request with one notify and keeps
// no state (§2.6, §2.21.1).
func (s *Session) answerInitError(hdr Header, local, peer netip.AddrPort, n *NotifyPayload) {
	m := Message{
		Header:   Header{SPIi: hdr.SPIi, Exchange: ExchangeIKESAInit, Flags: FlagResponse, MessageID: hdr.MessageID},
		Payloads: []Payload{n},
	}
	s.send(local, peer, m.Encode(nil))
}

// deriveIKEKeys runs the key schedule of a new IKE SA (§2.14) and sets up
// its SK ciphers.
func (s *Session) deriveIKEKeys(sa *ikeSA, prop IKEProposal, gir []byte) error {
	prf, err := ikecrypto.NewPRF(prop.PRF)
	if err != nil {
		return err
	}
	el, il, err := ikecrypto.KeyLens(prop.Encr, prop.KeyBits, prop.Integ)
	if err != nil {
		return err
	}
	var spii, spir [8]byte
	binary.BigEndian.PutUint64(spii[:], sa.spii)
	binary.BigEndian.PutUint64(spir[:], sa.spir)
	seed := ikecrypto.SKEYSEED(prf, sa.ni, sa.nr, gir)
	keys := ikecrypto.DeriveIKESAKeys(prf, seed, sa.ni, sa.nr, spii[:], spir[:], el, il)
	out, in, err := keys.Ciphers(sa.initiator, prop.Encr, prop.KeyBits, prop.Integ)
	if err != nil {
		return err
	}
	sa.prop, sa.prf = prop, prf
	sa.skd, sa.skpi, sa.skpr = keys.SKd, keys.SKpi, keys.SKpr
	sa.out, sa.in = out, in
	return nil
}
