package ikev2

import (
	"errors"
	"fmt"
	"time"

	"github.com/greipsec/greipsec/ikev2/ikecrypto"
)

// IKE_AUTH (RFC 7296 §1.2): identities, pre-shared key authentication
// (§2.15) and the first Child SA (§1.2, §2.9, §1.3.1 for transport mode).
// The Child SA may fail while the IKE SA succeeds (§1.2): the error notify
// then replaces SA, TSi and TSr in the response.
//
//	HDR, SK {IDi, [N(INITIAL_CONTACT)], AUTH, SAi2, TSi, TSr,
//	         [N(USE_TRANSPORT_MODE)], N(ESP_TFC_PADDING_NOT_SUPPORTED)} -->
//	<-- HDR, SK {IDr, AUTH, SAr2, TSi, TSr, [N(USE_TRANSPORT_MODE)], ...}

// authFailedHint is what a person should check when authentication fails.
const authFailedHint = "check that both sides use the same pre-shared key and that each side's peer ID is the other's local ID"

// pubKeyFailedHint is authFailedHint for public-key authentication.
const pubKeyFailedHint = "check that each side has the other's public key or the CA certificate of the other's certificate, and that each side's peer ID is the other's local ID"

// failedHint returns the hint for the session's authentication method.
func (s *Session) failedHint() string {
	if s.cfg.PubKey != nil {
		return pubKeyFailedHint
	}
	return authFailedHint
}

// idMatches reports whether the peer's identity got is the configured
// want: equal, or for a DN the same attributes however encoded.
func idMatches(got, want Identity) bool {
	if got.IDType == IDDERASN1DN && want.IDType == IDDERASN1DN {
		return sameDN(got.Data, want.Data)
	}
	return got.Equal(want)
}

// localAuth returns the AUTH payload of our IKE_AUTH message (§2.15): a
// MAC with the pre-shared key, or a signature (auth_pubkey.go) over the
// IKE_SA_INIT message we sent, the peer's nonce and our MACed ID.
func (s *Session) localAuth(sa *ikeSA) (*AuthPayload, error) {
	msg, nonce, skp := sa.initReq, sa.nr, sa.skpi
	if !sa.initiator {
		msg, nonce, skp = sa.initResp, sa.ni, sa.skpr
	}
	if s.cfg.PubKey == nil {
		return &AuthPayload{Method: AuthSharedKeyMIC, Data: ikecrypto.PSKAuth(sa.prf, s.cfg.PSK, msg, nonce, skp, idBody(s.cfg.LocalID))}, nil
	}
	return signAuth(s.cfg.PubKey, ikecrypto.SignedOctets(sa.prf, msg, nonce, skp, idBody(s.cfg.LocalID)), sa.peerHashes, s.rand)
}

// verifyPeerAuth verifies the peer's AUTH payload (§2.15) before anything
// else of its IKE_AUTH message is looked at: with the pre-shared key, or
// with the peer's public key, which its certificates (checked first,
// cert.go) or the configuration give. The error says why it failed.
func (s *Session) verifyPeerAuth(sa *ikeSA, a authPayloads, now time.Time) error {
	msg, nonce, skp := sa.initResp, sa.ni, sa.skpr
	if !sa.initiator {
		msg, nonce, skp = sa.initReq, sa.nr, sa.skpi
	}
	id := idBody(a.id.Identity)
	if s.cfg.PubKey == nil {
		if a.auth.Method != AuthSharedKeyMIC {
			return fmt.Errorf("the peer used auth method %v; we expect a pre-shared key (check auth on both sides)", a.auth.Method)
		}
		if !ikecrypto.VerifyPSKAuth(sa.prf, a.auth.Data, s.cfg.PSK, msg, nonce, skp, id) {
			return errors.New("the peer's AUTH does not verify; " + authFailedHint)
		}
		return nil
	}
	pub, err := peerPublicKey(s.cfg.PubKey, a.id.Identity, a.certs, now)
	if err != nil {
		return fmt.Errorf("the peer's credentials: %v; %s", err, pubKeyFailedHint)
	}
	if err := verifyAuth(s.cfg.PubKey, pub, a.auth, ikecrypto.SignedOctets(sa.prf, msg, nonce, skp, id)); err != nil {
		return fmt.Errorf("the peer's AUTH: %v; %s", err, pubKeyFailedHint)
	}
	return nil
}

var errAuthFailed = errors.New("ikev2: AUTHENTICATION_FAILED")

// idBody returns the body of an ID payload as AUTH signs it (§2.15).
func idBody(id Identity) []byte {
	p := IDPayload{Identity: id}
	return p.Encode(nil)
}

// sendAuthRequest sends our IKE_AUTH request as initiator.
func (s *Session) sendAuthRequest(sa *ikeSA, now time.Time) {
	spi, err := s.newESPSPI()
	if err != nil {
		s.fail(sa, "cannot choose an SPI", err, now)
		return
	}
	sa.childSPI = spi
	auth, err := s.localAuth(sa)
	if err != nil {
		s.fail(sa, "cannot sign our AUTH", err, now)
		return
	}
	payloads := []Payload{&IDPayload{Identity: s.cfg.LocalID}}
	payloads = append(payloads, certPayloads(s.cfg.PubKey, sa.peerReq)...)
	if s.onlyIKESA(sa) {
		payloads = append(payloads, &NotifyPayload{NotifyType: NotifyInitialContact})
	}
	if cr := certReqPayload(s.cfg.PubKey); cr != nil {
		payloads = append(payloads, cr)
	}
	payloads = append(payloads,
		auth,
		ESPSAPayload(s.cfg.ESPProposals, spi, false),
		TSPayloadFor(s.cfg.LocalTS, false),
		TSPayloadFor(s.cfg.PeerTS, true),
	)
	if s.cfg.Mode != ModeTunnel {
		payloads = append(payloads, &NotifyPayload{NotifyType: NotifyUseTransportMode})
	}
	payloads = append(payloads, &NotifyPayload{NotifyType: NotifyESPTFCPaddingNotSupported})
	s.sendRequest(sa, ExchangeIKEAuth, payloads, (*Session).handleAuthResponse, now)
}

// authPayloads are the payloads of an IKE_AUTH message, sorted.
type authPayloads struct {
	id        *IDPayload
	auth      *AuthPayload
	sa        *SAPayload
	tsi, tsr  *TSPayload
	transport bool
	errNotify *NotifyPayload
	// initialContact: N(INITIAL_CONTACT), the sender has no other IKE SA
	// with us (§2.4).
	initialContact bool
	certs          []*CertPayload
	certReq        peerCertReq
}

func sortAuth(payloads []Payload) authPayloads {
	var a authPayloads
	for _, p := range payloads {
		switch p := p.(type) {
		case *IDPayload:
			if a.id == nil {
				a.id = p
			}
		case *AuthPayload:
			a.auth = p
		case *CertPayload:
			a.certs = append(a.certs, p)
		case *CertReqPayload:
			a.certReq.note(p)
		case *SAPayload:
			a.sa = p
		case *TSPayload:
			if p.Responder {
				a.tsr = p
			} else {
				a.tsi = p
			}
		case *NotifyPayload:
			switch {
			case p.NotifyType == NotifyUseTransportMode:
				a.transport = true
			case p.NotifyType == NotifyInitialContact:
				a.initialContact = true
			case p.NotifyType.IsError() && a.errNotify == nil:
				a.errNotify = p
			}
		}
	}
	return a
}

// handleAuthResponse processes the responder's IKE_AUTH response.
func (s *Session) handleAuthResponse(sa *ikeSA, payloads []Payload, now time.Time) {
	a := sortAuth(payloads)
	if a.auth == nil || a.id == nil || !a.id.Responder {
		what := "no AUTH"
		if a.errNotify != nil {
			what = a.errNotify.NotifyType.String()
		}
		reason := fmt.Sprintf("peer answered IKE_AUTH with %s", what)
		if a.errNotify != nil && a.errNotify.NotifyType == NotifyAuthenticationFailed {
			reason += ": it could not verify us; " + s.failedHint()
		}
		s.fail(sa, reason, errAuthFailed, now)
		return
	}
	if !idMatches(a.id.Identity, s.cfg.PeerID) {
		s.authFailedLocally(sa, fmt.Sprintf("AUTHENTICATION_FAILED: peer identified as %v, expected %v", a.id.Identity, s.cfg.PeerID), now)
		return
	}
	if err := s.verifyPeerAuth(sa, a, now); err != nil {
		s.authFailedLocally(sa, "AUTHENTICATION_FAILED: "+err.Error(), now)
		return
	}
	s.established(sa, false, now)

	// The Child SA (§1.2: it may fail while the IKE SA stands).
	reason := ""
	switch {
	case a.errNotify != nil:
		reason = fmt.Sprintf("peer answered %v for the Child SA", a.errNotify.NotifyType) + childHint(a.errNotify.NotifyType)
	case a.sa == nil || a.tsi == nil || a.tsr == nil:
		reason = "peer created no Child SA"
	}
	var (
		prop            ESPProposal
		outSPI          uint32
		localTS, peerTS []Selector
		err             error
	)
	if reason == "" {
		prop, outSPI, err = AcceptESP(s.cfg.ESPProposals, a.sa, false)
		if err != nil {
			reason = "peer answered with an ESP proposal we did not offer: " + err.Error()
		}
	}
	if reason == "" {
		localTS, peerTS, err = AcceptTS(s.cfg.LocalTS, s.cfg.PeerTS, a.tsi, a.tsr, s.cfg.AllowNarrowing)
		if err != nil {
			reason = "peer answered with traffic selectors we cannot accept: " + err.Error()
		}
	}
	transport := a.transport && s.cfg.Mode != ModeTunnel
	if reason == "" && s.cfg.Mode == ModeTransport && !transport {
		reason = "peer refused transport mode (it answered without USE_TRANSPORT_MODE); set the mode to allow tunnel mode, or configure the peer for transport mode"
	}
	if reason != "" {
		sa.childErr = reason
		// Without its Child SA the tunnel is useless: delete the IKE SA,
		// which deletes any child the peer installed (§1.4.1).
		s.sendRequestOnce(sa, ExchangeInformational, []Payload{&DeletePayload{Protocol: ProtocolIKE}})
		s.fail(sa, "Child SA failed: "+reason, errors.New("ikev2: Child SA failed"), now)
		return
	}
	s.installChild(sa, prop, sa.childSPI, outSPI, transport, localTS, peerTS, sa.ni, sa.nr, nil, true, nil, now)
}

// childHint explains an error notify about a Child SA.
func childHint(t NotifyType) string {
	switch t {
	case NotifyNoProposalChosen:
		return ": no ESP proposal in common; check the esp proposals on both sides"
	case NotifyTSUnacceptable:
		return ": the traffic selectors do not match; check the mode and the local/peer addresses or subnets on both sides"
	}
	return ""
}

// authFailedLocally handles a responder whose identity or AUTH we reject:
// tell it (§2.21.2) and give up the IKE SA.
func (s *Session) authFailedLocally(sa *ikeSA, reason string, now time.Time) {
	s.sendRequestOnce(sa, ExchangeInformational, []Payload{&NotifyPayload{NotifyType: NotifyAuthenticationFailed}})
	s.fail(sa, reason, errAuthFailed, now)
}

// onlyIKESA reports whether sa, whose IKE_AUTH request we are about to
// send, is our only established IKE SA with the peer: then the request
// carries INITIAL_CONTACT (§2.4), as strongSwan sends it, so that a peer
// still holding an IKE SA we lost (we restarted, or gave up on it while it
// did not) drops it at once.
func (s *Session) onlyIKESA(sa *ikeSA) bool {
	for _, o := range [...]*ikeSA{s.sa, s.own, s.old} {
		if o != nil && o != sa && o.state == stateEstablished {
			return false
		}
	}
	return true
}

// receiveAuthRequest answers the initiator's IKE_AUTH request.
func (s *Session) receiveAuthRequest(sa *ikeSA, hdr Header, payloads []Payload, now time.Time) {
	if sa.initiator || sa.state != stateInitDone {
		s.respond(sa, hdr.Exchange, hdr.MessageID, []Payload{&NotifyPayload{NotifyType: NotifyInvalidSyntax}}, now)
		return
	}
	a := sortAuth(payloads)
	refuse := func(reason string) {
		s.respond(sa, hdr.Exchange, hdr.MessageID, []Payload{&NotifyPayload{NotifyType: NotifyAuthenticationFailed}}, now)
		s.dropSA(sa, reason, errAuthFailed, now)
	}
	if a.id == nil || a.id.Responder || a.auth == nil {
		refuse("AUTHENTICATION_FAILED: peer sent IKE_AUTH without IDi or AUTH (EAP is not supported)")
		return
	}
	if !idMatches(a.id.Identity, s.cfg.PeerID) {
		refuse(fmt.Sprintf("AUTHENTICATION_FAILED: peer identified as %v, expected %v", a.id.Identity, s.cfg.PeerID))
		return
	}
	// AUTH first: nothing else of the request is looked at before it
	// verifies.
	if err := s.verifyPeerAuth(sa, a, now); err != nil {
		refuse("AUTHENTICATION_FAILED: " + err.Error())
		return
	}
	sa.peerReq = a.certReq
	auth, err := s.localAuth(sa)
	if err != nil {
		refuse("AUTHENTICATION_FAILED sent: we cannot sign our AUTH for this peer: " + err.Error())
		return
	}
	resp := []Payload{&IDPayload{Responder: true, Identity: s.cfg.LocalID}}
	resp = append(resp, certPayloads(s.cfg.PubKey, sa.peerReq)...)
	resp = append(resp, auth)

	child, up, errNotify, reason := s.acceptChild(sa, a, now)
	if errNotify != 0 {
		sa.childErr = reason
		resp = append(resp, &NotifyPayload{NotifyType: errNotify})
	} else {
		resp = append(resp, child...)
	}
	s.respond(sa, hdr.Exchange, hdr.MessageID, resp, now)
	s.established(sa, a.initialContact, now)
	if up != nil {
		s.commitChild(sa, up)
	}
}
