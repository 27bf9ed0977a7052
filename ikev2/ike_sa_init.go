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
				initiator:  true,
				state:      stateInitSent,
				spii:       spi,
				created:    now,
				createdSeq: s.stamp(),
				ni:         ni,
				local:      netip.AddrPortFrom(s.cfg.LocalAddr, portIKE),
				peer:       netip.AddrPortFrom(s.cfg.PeerAddr, portIKE),
			}
			if s.cfg.StartNATT {
				sa.local = netip.AddrPortFrom(s.cfg.LocalAddr, s.cfg.NATTPort)
				sa.peer = netip.AddrPortFrom(s.cfg.PeerAddr, s.cfg.PeerNATTPort)
			}
			s.sa = sa
			s.gate.setSPI(spi, s.cfg.PeerAddr, false)
			s.sendInitRequest(sa, now)
			return
		}
	}
	s.emit(IKESADown{Reason: "cannot start the IKE SA", Err: err})
	s.scheduleRestart(now)
}

// newIKESPI returns a random non-zero IKE SPI that no IKE SA of the
// Gate's sessions uses.
func (s *Session) newIKESPI() (uint64, error) {
	for {
		b, err := s.randomBytes(ikeSPILen)
		if err != nil {
			return 0, err
		}
		if spi := binary.BigEndian.Uint64(b); spi != 0 && !s.gate.spiInUse(spi) {
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
	if p := s.cfg.PubKey; p != nil {
		payloads = append(payloads, SignatureHashesPayload(p.ourHashes()))
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
		hashes []HashAlgorithm
		req    peerCertReq
	)
	for _, p := range m.Payloads {
		switch p := p.(type) {
		case *SAPayload:
			saP = p
		case *KEPayload:
			ke = p
		case *NoncePayload:
			nonce = p
		case *CertReqPayload:
			req.note(p)
		case *NotifyPayload:
			switch {
			case p.NotifyType == NotifyCookie:
				cookie = p.Data
			case p.NotifyType == NotifyIKEv2FragmentationSupported:
				frag = true
			case p.NotifyType == NotifySignatureHashAlgorithms:
				hashes, _ = ParseSignatureHashes(p.Data)
			case p.NotifyType.IsError() && errNot == nil:
				errNot = p
			}
		}
	}

	// Nothing here is authenticated: an error answer may be forged by
	// anyone who saw our request. It is noted and reported if no valid
	// answer comes before the retransmissions run out (giveUp, engine.go),
	// and does not end the attempt at once (§2.21.1 allows both).
	switch {
	case cookie != nil && saP == nil:
		// §2.6: repeat the request with the cookie first. A responder that
		// keeps asking is stopped by the resend limit and the
		// retransmission limit.
		if len(cookie) < 1 || len(cookie) > 64 || bytes.Equal(cookie, sa.cookie) || sa.initResends >= maxInitResends {
			return
		}
		sa.initResends++
		sa.cookie = append([]byte(nil), cookie...)
		s.sendInitRequest(sa, now)
		return
	case errNot != nil && errNot.NotifyType == NotifyInvalidKEPayload:
		s.stats.ErrorAnswers++
		if len(errNot.Data) != 2 {
			return
		}
		group := binary.BigEndian.Uint16(errNot.Data)
		if group == s.keGroup || !s.proposesGroup(group) || sa.initResends >= maxInitResends {
			sa.initErr = fmt.Sprintf("peer answered INVALID_KE_PAYLOAD asking for key exchange group %d, which our IKE proposals do not offer", group)
			return
		}
		sa.initResends++
		s.keGroup = group
		s.sendInitRequest(sa, now)
		return
	case errNot != nil:
		s.stats.ErrorAnswers++
		reason := fmt.Sprintf("peer answered %v to IKE_SA_INIT", errNot.NotifyType)
		if errNot.NotifyType == NotifyNoProposalChosen {
			reason += ": no IKE proposal in common; check the ike proposals on both sides"
		}
		sa.initErr = reason
		return
	case saP == nil || ke == nil || nonce == nil || hdr.SPIr == 0:
		s.stats.Malformed++
		return
	}

	prop, err := AcceptIKE(s.cfg.IKEProposals, saP)
	if err != nil || prop.DH != sa.dh.Group() || uint16(ke.Group) != prop.DH {
		// Unauthenticated too: wait for a valid answer (N2).
		s.stats.ErrorAnswers++
		if err == nil {
			err = fmt.Errorf("key exchange group %d", ke.Group)
		}
		sa.initErr = "peer answered IKE_SA_INIT with a proposal we did not offer: " + err.Error()
		return
	}
	if !nonceLenOK(prop.PRF, nonce.Nonce) {
		s.stats.Malformed++
		return // §2.10; not authenticated: wait for a valid answer
	}
	gir, err := sa.dh.SharedSecret(ke.Data)
	if err != nil {
		s.stats.Malformed++
		return // a bad KE value is not authenticated: wait for a good answer
	}
	sa.spir = hdr.SPIr
	sa.nr = append([]byte(nil), nonce.Nonce...)
	sa.initResp = msg
	err = s.deriveIKEKeys(sa, prop, gir)
	clear(gir)
	if err != nil {
		s.fail(sa, "cannot derive the IKE SA keys", err, now)
		return
	}
	s.processNATD(sa, hdr, m.Payloads, local, peer)
	sa.fragment = frag && s.cfg.Fragmentation
	sa.peerHashes, sa.peerReq = hashes, req
	ikecrypto.WipeDH(sa.dh)
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

// maxInitResends bounds how often one attempt rebuilds its IKE_SA_INIT
// request for a COOKIE or INVALID_KE_PAYLOAD answer, which anyone can forge.
const maxInitResends = 4

// receiveInitRequest answers an IKE_SA_INIT request as responder. The
// request is not authenticated, so the order of the steps is what protects
// us (RFC 7296 §2.6, RFC 8019): first what costs nothing (the header, a
// retransmission, the peer's address), then the cookie and the half-open
// limits, found by scanning the payload headers only, and only then the
// full parse, the proposal and the key exchange. The request never touches
// the current IKE SA or our own attempt: it makes a half-open SA in a table
// of its own (halfopen.go).
func (s *Session) receiveInitRequest(msg []byte, hdr Header, local, peer netip.AddrPort, now time.Time) {
	s.stats.InitRequests++
	if hdr.SPIr != 0 || hdr.MessageID != 0 || !hdr.IsInitiator() || hdr.SPIi == 0 || len(msg) > s.gate.cfg.MaxInitLen {
		s.stats.Malformed++
		return
	}
	if peer.Addr() != s.cfg.PeerAddr {
		s.stats.Malformed++
		return // not our peer (the runner routes by address; be safe)
	}
	// A retransmitted request: answer it again from the cache.
	if sa := s.findHalf(hdr.SPIi, peer); sa != nil {
		if bytes.Equal(msg, sa.initReq) {
			s.stats.InitRetransmits++
			s.resendResponse(sa, local, peer)
		}
		return
	}
	for _, sa := range [...]*ikeSA{s.sa, s.own, s.old} {
		if sa != nil && !sa.initiator && sa.spii == hdr.SPIi && sa.initFrom == peer {
			return // a late copy of the request of an established SA
		}
	}
	cookie, ni, ok := scanInit(msg)
	if !ok {
		s.stats.Malformed++
		return
	}
	switch s.gate.initPolicy(s.gp, now) {
	case initBlock:
		s.stats.InitBlocked++
		return
	case initCookie:
		if !s.gate.cookies.valid(cookie, ni, peer.Addr(), hdr.SPIi, now) {
			s.stats.CookiesSent++
			s.send(local, peer, cookieReply(hdr, s.gate.cookies.make(ni, peer.Addr(), hdr.SPIi, now)))
			return
		}
	}
	if s.halfFull() {
		s.stats.InitBlocked++
		return
	}

	msg = append([]byte(nil), msg...)
	m, err := ParseMessage(msg)
	if err != nil {
		s.stats.Malformed++
		var uc *UnsupportedCriticalError
		if errors.As(err, &uc) {
			s.answerInitError(hdr, local, peer, uc.Notify())
		}
		return
	}
	if CheckPayloads(ExchangeIKESAInit, false, false, m.Payloads) != nil {
		s.stats.Malformed++
		return
	}
	var (
		saP    *SAPayload
		ke     *KEPayload
		nonce  *NoncePayload
		frag   bool
		hashes []HashAlgorithm
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
			switch p.NotifyType {
			case NotifyIKEv2FragmentationSupported:
				frag = true
			case NotifySignatureHashAlgorithms:
				hashes, _ = ParseSignatureHashes(p.Data)
			}
		}
	}

	// Proposal: prefer one whose group is the one in KE; if only another
	// group is acceptable, ask for it (INVALID_KE_PAYLOAD, §1.2).
	prop, chosen, invalidKE, err := s.selectIKEWithKE(saP, uint16(ke.Group))
	if err != nil {
		s.answerInitError(hdr, local, peer, &NotifyPayload{NotifyType: NotifyNoProposalChosen})
		s.note(IKESADown{Reason: fmt.Sprintf("peer %v offered no IKE proposal we accept (NO_PROPOSAL_CHOSEN sent): offered %s", peer.Addr(), proposalsString(saP)), Err: err}, now)
		return
	}
	if invalidKE != 0 {
		s.answerInitError(hdr, local, peer, &NotifyPayload{NotifyType: NotifyInvalidKEPayload, Data: binary.BigEndian.AppendUint16(nil, invalidKE)})
		return
	}
	if !nonceLenOK(prop.PRF, nonce.Nonce) {
		s.answerInitError(hdr, local, peer, &NotifyPayload{NotifyType: NotifyInvalidSyntax})
		return
	}

	dh, err := ikecrypto.GenerateDH(prop.DH, s.rand)
	if err != nil {
		return
	}
	gir, err := dh.SharedSecret(ke.Data)
	pub := dh.Public()
	ikecrypto.WipeDH(dh)
	if err != nil {
		s.answerInitError(hdr, local, peer, &NotifyPayload{NotifyType: NotifyInvalidSyntax})
		return
	}
	defer clear(gir)
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
		createdSeq: s.stamp(),
		ni:         append([]byte(nil), nonce.Nonce...),
		nr:         nr,
		initReq:    msg,
		local:      local,
		peer:       peer,
		initFrom:   peer,
		peerNextID: 1,
		nextID:     0,
	}
	if err := s.deriveIKEKeys(sa, prop, gir); err != nil {
		return
	}
	s.processNATD(sa, hdr, m.Payloads, local, peer)
	sa.fragment = frag && s.cfg.Fragmentation
	sa.peerHashes = hashes

	resp := []Payload{
		&SAPayload{Proposals: []Proposal{chosen}},
		&KEPayload{Group: TransformID(prop.DH), Data: pub},
		&NoncePayload{Nonce: nr},
	}
	// The CERTREQ of a responder goes here, the only place before the
	// initiator's IKE_AUTH (§1.2): a peer that sends its certificate only
	// when asked (strongSwan's default) needs it.
	if cr := certReqPayload(s.cfg.PubKey); cr != nil {
		resp = append(resp, cr)
	}
	resp = append(resp, s.natNotifies(sa.spii, sa.spir, local, peer)...)
	if sa.fragment {
		resp = append(resp, &NotifyPayload{NotifyType: NotifyIKEv2FragmentationSupported})
	}
	if p := s.cfg.PubKey; p != nil {
		resp = append(resp, SignatureHashesPayload(p.ourHashes()))
	}
	m2 := Message{Header: sa.header(ExchangeIKESAInit, 0, true), Payloads: resp}
	sa.initResp = m2.Encode(nil)
	sa.lastResp, sa.haveResp = [][]byte{sa.initResp}, true
	s.send(local, peer, sa.initResp)
	s.addHalf(sa)
	// A well-formed request from the peer's address: the path may be back
	// (recovery.go).
	s.peerStirs(now)
}

// nonceLenOK reports whether a peer's nonce is long enough for the PRF of
// the SA it keys: at least half the PRF's preferred key size, and at least
// 16 octets (RFC 7296 §2.10; the upper bound of 256 is the payload's).
func nonceLenOK(prfID uint16, nonce []byte) bool {
	prf, err := ikecrypto.NewPRF(prfID)
	if err != nil {
		return false
	}
	return len(nonce) >= max(MinNonceLen, prf.Size()/2) && len(nonce) <= MaxNonceLen
}

// answerInitError answers an IKE_SA_INIT request with one notify and keeps
// no state (§2.6, §2.21.1).
func (s *Session) answerInitError(hdr Header, local, peer netip.AddrPort, n *NotifyPayload) {
	s.stats.InitRejected++
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
	clear(seed)
	out, in, err := keys.Ciphers(sa.initiator, prop.Encr, prop.KeyBits, prop.Integ)
	keys.WipeSK() // the ciphers have their own copies
	if err != nil {
		keys.Wipe()
		return err
	}
	sa.prop, sa.prf = prop, prf
	sa.skd, sa.skpi, sa.skpr = keys.SKd, keys.SKpi, keys.SKpr
	sa.out, sa.in = out, in
	return nil
}
