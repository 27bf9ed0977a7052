package ikev2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"time"

	"github.com/greipsec/greipsec/ikev2/ikecrypto"
)

// CREATE_CHILD_SA (RFC 7296 §1.3): rekeying of the Child SA (§1.3.3, §2.8)
// with fresh nonces and, when the ESP proposal has a group, a PFS key
// exchange; and rekeying of the IKE SA (§1.3.2, §2.18).
//
//	Child:  HDR, SK {N(REKEY_SA), SA, Ni, [KEi], TSi, TSr} -->
//	        <-- HDR, SK {SA, Nr, [KEr], TSi, TSr}
//	IKE SA: HDR, SK {SA, Ni, KEi} -->
//	        <-- HDR, SK {SA, Nr, KEr}
//
// The original initiator of the IKE SA rekeys at the configured lifetime,
// the responder a tenth later, so that normally one side does it. When both
// rekey a Child SA at once, the lowest-nonce rule of §2.8.1 picks the one
// to keep; when both rekey the IKE SA at once, the same rule of §2.8.2:
// each answers the other's request, and when its own response arrives the
// new IKE SA created with the lowest of the four nonces is deleted by the
// side that created it, and the initiator of the surviving exchange deletes
// the old one. A Child SA rekey and an IKE SA rekey at once are answered
// with TEMPORARY_FAILURE (§2.25.2) and retried after a random delay.
//
// The same exchange without REKEY_SA creates a Child SA (§1.3.1): we send
// it when the peer deleted our only Child SA and traffic needs one
// (Acquire), and accept it when we have none.

// rekeyRetryMin and rekeyRetrySpread bound the random delay before a
// rekey is tried again after TEMPORARY_FAILURE or a failure.
const (
	rekeyRetryMin    = 2 * time.Second
	rekeyRetrySpread = 8 * time.Second
	// retiredLifetime is how long an IKE SA replaced by rekeying waits for
	// its DELETE.
	retiredLifetime = 30 * time.Second
)

// childRekey is our rekey of a Child SA in progress, or our creation of
// one (old is nil).
type childRekey struct {
	old   *childSA
	inSPI uint32
	ni    []byte
	dh    ikecrypto.DH // nil without PFS
	// peerNew is the Child SA the peer created by rekeying old at the same
	// time (§2.8.1), with the nonces of its exchange.
	peerNew        *childSA
	peerNi, peerNr []byte
}

// ikeRekey is our rekey of the IKE SA in progress.
type ikeRekey struct {
	spi uint64
	ni  []byte
	dh  ikecrypto.DH
	// peerNew is the IKE SA the peer created by rekeying the same IKE SA
	// at the same time (§2.8.2), with the nonces of its exchange.
	peerNew        *ikeSA
	peerNi, peerNr []byte
}

// rekeyTime returns when a Child SA or IKE SA created at t with lifetime
// d (and hard lifetime hard, 0 for the default) is rekeyed by this side:
// the original initiator at d, the responder a tenth later, or halfway to
// a hard lifetime that comes sooner.
func (sa *ikeSA) rekeyTime(t time.Time, d, hard time.Duration) time.Time {
	if !sa.initiator {
		off := d / 10
		if hard > d && (hard-d)/2 < off {
			off = (hard - d) / 2
		}
		d += off
	}
	return t.Add(d)
}

// retryDelay returns a random delay before a rekey is tried again.
func (s *Session) retryDelay() time.Duration {
	b, err := s.randomBytes(2)
	if err != nil {
		return rekeyRetryMin
	}
	return rekeyRetryMin + time.Duration(binary.BigEndian.Uint16(b))*rekeyRetrySpread/0x10000
}

// tickRekey starts the rekeying that is due.
func (s *Session) tickRekey(sa *ikeSA, now time.Time) {
	if sa.childRekey != nil || sa.ikeRekey != nil {
		return
	}
	if c := sa.child; c != nil && !now.Before(c.rekeyAt) {
		s.startChildRekey(sa, now)
		return
	}
	if !sa.ikeRekeyAt.IsZero() && !now.Before(sa.ikeRekeyAt) {
		s.startIKERekey(sa, now)
	}
}

// rekeyTimeout returns when the next rekeying is due.
func (s *Session) rekeyTimeout(sa *ikeSA) time.Time {
	if sa.childRekey != nil || sa.ikeRekey != nil {
		return time.Time{}
	}
	t := sa.ikeRekeyAt
	if c := sa.child; c != nil && (t.IsZero() || c.rekeyAt.Before(t)) {
		t = c.rekeyAt
	}
	return t
}

// espGroup returns the PFS group our preferred ESP proposal asks for.
func (s *Session) espGroup() uint16 { return s.cfg.ESPProposals[0].DH }

// startChildRekey sends a CREATE_CHILD_SA request rekeying sa.child.
func (s *Session) startChildRekey(sa *ikeSA, now time.Time) {
	s.startChildRekeyGroup(sa, s.espGroup(), now)
}

func (s *Session) startChildRekeyGroup(sa *ikeSA, group uint16, now time.Time) {
	s.startChildExchange(sa, sa.child, group, now)
}

// startChildExchange sends a CREATE_CHILD_SA request that rekeys old, or
// creates a new Child SA with our configured selectors when old is nil.
func (s *Session) startChildExchange(sa *ikeSA, old *childSA, group uint16, now time.Time) {
	inSPI, err := s.newESPSPI()
	if err != nil {
		return
	}
	ni, err := s.randomBytes(nonceLen)
	if err != nil {
		return
	}
	r := &childRekey{old: old, inSPI: inSPI, ni: ni}
	var payloads []Payload
	localTS, peerTS, transport := s.cfg.LocalTS, s.cfg.PeerTS, s.cfg.Mode != ModeTunnel
	if old != nil {
		payloads = append(payloads, &NotifyPayload{NotifyType: NotifyRekeySA, Protocol: ProtocolESP, SPI: binary.BigEndian.AppendUint32(nil, old.inSPI)})
		localTS, peerTS, transport = old.localTS, old.peerTS, old.transport
	}
	payloads = append(payloads, ESPSAPayload(s.cfg.ESPProposals, inSPI, true), &NoncePayload{Nonce: ni})
	if group != 0 {
		if r.dh, err = ikecrypto.GenerateDH(group, s.rand); err != nil {
			return
		}
		payloads = append(payloads, &KEPayload{Group: TransformID(group), Data: r.dh.Public()})
	}
	payloads = append(payloads, TSPayloadFor(localTS, false), TSPayloadFor(peerTS, true))
	if transport {
		payloads = append(payloads, &NotifyPayload{NotifyType: NotifyUseTransportMode})
	}
	payloads = append(payloads, &NotifyPayload{NotifyType: NotifyESPTFCPaddingNotSupported})
	sa.childRekey = r
	s.sendRequest(sa, ExchangeCreateChildSA, payloads, (*Session).handleChildRekeyResponse, now)
}

// childPayloads are the payloads of a CREATE_CHILD_SA message, sorted.
type childPayloads struct {
	sa        *SAPayload
	nonce     *NoncePayload
	ke        *KEPayload
	tsi, tsr  *TSPayload
	rekeySPI  []byte // REKEY_SA
	transport bool
	errNotify *NotifyPayload
}

func sortChild(payloads []Payload) childPayloads {
	var c childPayloads
	for _, p := range payloads {
		switch p := p.(type) {
		case *SAPayload:
			c.sa = p
		case *NoncePayload:
			c.nonce = p
		case *KEPayload:
			c.ke = p
		case *TSPayload:
			if p.Responder {
				c.tsr = p
			} else {
				c.tsi = p
			}
		case *NotifyPayload:
			switch {
			case p.NotifyType == NotifyRekeySA:
				c.rekeySPI = p.SPI
			case p.NotifyType == NotifyUseTransportMode:
				c.transport = true
			case p.NotifyType.IsError() && c.errNotify == nil:
				c.errNotify = p
			}
		}
	}
	return c
}

// handleChildRekeyResponse completes our Child SA rekey.
func (s *Session) handleChildRekeyResponse(sa *ikeSA, payloads []Payload, now time.Time) {
	r := sa.childRekey
	sa.childRekey = nil
	if r == nil || sa.state != stateEstablished {
		return
	}
	c := sortChild(payloads)
	retry := func() {
		if r.old != nil && sa.child == r.old {
			r.old.rekeyAt = now.Add(s.retryDelay())
		}
	}
	if r.old == nil && sa.child != nil {
		return // the peer created one meanwhile (it needed one too)
	}
	if n := c.errNotify; n != nil {
		switch n.NotifyType {
		case NotifyInvalidKEPayload:
			if len(n.Data) == 2 {
				g := binary.BigEndian.Uint16(n.Data)
				if g != 0 && s.espProposesGroup(g) && (r.dh == nil || r.dh.Group() != g) && sa.child == r.old {
					s.startChildExchange(sa, r.old, g, now)
					return
				}
			}
		case NotifyChildSANotFound:
			if r.old != nil && sa.child == r.old {
				s.deleteChild(sa, "peer no longer has the Child SA (CHILD_SA_NOT_FOUND)", now)
			}
			return
		}
		retry()
		return
	}
	if c.sa == nil || c.nonce == nil || c.tsi == nil || c.tsr == nil {
		retry()
		return
	}
	prop, outSPI, err := AcceptESP(s.cfg.ESPProposals, c.sa, true)
	if err != nil || !nonceLenOK(sa.prop.PRF, c.nonce.Nonce) {
		retry()
		return
	}
	var gir []byte
	if prop.DH != 0 {
		if r.dh == nil || c.ke == nil || r.dh.Group() != prop.DH || uint16(c.ke.Group) != prop.DH {
			retry()
			return
		}
		gir, err = r.dh.SharedSecret(c.ke.Data)
		ikecrypto.WipeDH(r.dh)
		if err != nil {
			retry()
			return
		}
		defer clear(gir)
	}
	localTS, peerTS, err := AcceptTS(s.cfg.LocalTS, s.cfg.PeerTS, c.tsi, c.tsr, s.cfg.AllowNarrowing)
	if err != nil {
		retry()
		return
	}
	if r.old == nil {
		// A new Child SA (§1.3.1), in the mode the configuration wants.
		transport := c.transport && s.cfg.Mode != ModeTunnel
		if s.cfg.Mode == ModeTransport && !transport {
			return // the peer refused transport mode; the next Acquire tries again
		}
		if nc, up, err := s.newChild(sa, prop, r.inSPI, outSPI, transport, localTS, peerTS, r.ni, c.nonce.Nonce, gir, true, nil, now); err == nil {
			s.commitChildSA(sa, nc, up)
		}
		return
	}
	rekeyed := &ChildSADown{InSPI: r.old.inSPI, OutSPI: r.old.outSPI, Reason: "rekeyed"}
	nc, up, err := s.newChild(sa, prop, r.inSPI, outSPI, r.old.transport && c.transport, localTS, peerTS, r.ni, c.nonce.Nonce, gir, true, rekeyed, now)
	if err != nil {
		retry()
		return
	}

	if r.peerNew != nil {
		// Both sides rekeyed at once (§2.8.1): the SA created with the
		// lowest of the four nonces is redundant, and its creator deletes
		// it; the initiator of the surviving exchange deletes the old SA.
		if bytes.Compare(minNonce(r.ni, c.nonce.Nonce), minNonce(r.peerNi, r.peerNr)) < 0 {
			up.wipe()
			s.sendRequest(sa, ExchangeInformational, []Payload{&DeletePayload{Protocol: ProtocolESP, SPIs: []uint32{nc.inSPI}}}, ignoreResponse, now)
			return
		}
		// Ours survives; the peer deletes its own.
		sa.extra = append(sa.extra, r.peerNew)
	}
	r.old.successor = nc
	s.commitChildSA(sa, nc, up)
	s.retireChild(sa, r.old, now)
}

// minNonce returns the lower of two nonces, compared bytewise (§2.8.1).
func minNonce(a, b []byte) []byte {
	if bytes.Compare(a, b) <= 0 {
		return a
	}
	return b
}

// espProposesGroup reports whether one of our ESP proposals asks for PFS
// group g.
func (s *Session) espProposesGroup(g uint16) bool {
	for _, p := range s.cfg.ESPProposals {
		if p.DH == g {
			return true
		}
	}
	return false
}

// ignoreResponse is the handler of requests whose answer needs no action.
func ignoreResponse(*Session, *ikeSA, []Payload, time.Time) {}

// retireChild deletes a Child SA replaced by rekeying: it sends the DELETE
// and emits ChildSADown when the peer has answered.
func (s *Session) retireChild(sa *ikeSA, old *childSA, now time.Time) {
	if old == nil {
		return
	}
	if !containsChild(sa.extra, old) {
		sa.extra = append(sa.extra, old)
	}
	s.sendRequest(sa, ExchangeInformational, []Payload{&DeletePayload{Protocol: ProtocolESP, SPIs: []uint32{old.inSPI}}},
		func(s *Session, sa *ikeSA, _ []Payload, _ time.Time) {
			if s.takeExtra(sa, old) {
				s.retired(old)
				s.childGone(old, "rekeyed")
			}
		}, now)
}

// takeExtra removes c from the Child SAs on their way out of sa or its
// lineage (an IKE SA rekey may have moved it) and reports whether it was
// there.
func (s *Session) takeExtra(sa *ikeSA, c *childSA) bool {
	for _, o := range s.lineage(sa) {
		if containsChild(o.extra, c) {
			o.extra = removeChild(o.extra, c)
			return true
		}
	}
	return false
}

func containsChild(cs []*childSA, c *childSA) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

func removeChild(cs []*childSA, c *childSA) []*childSA {
	out := cs[:0]
	for _, x := range cs {
		if x != c {
			out = append(out, x)
		}
	}
	return out
}

// receiveCreateChildSA answers a CREATE_CHILD_SA request: a Child SA
// rekey, an IKE SA rekey, or (not supported) an additional Child SA.
func (s *Session) receiveCreateChildSA(sa *ikeSA, hdr Header, payloads []Payload, now time.Time) {
	c := sortChild(payloads)
	answer := func(t NotifyType, data []byte) {
		s.respond(sa, hdr.Exchange, hdr.MessageID, []Payload{&NotifyPayload{NotifyType: t, Data: data}}, now)
	}
	if sa.state != stateEstablished || sa.retired {
		answer(NotifyTemporaryFailure, nil)
		return
	}
	if c.sa != nil && len(c.sa.Proposals) > 0 && c.sa.Proposals[0].Protocol == ProtocolIKE && c.rekeySPI == nil {
		s.receiveIKERekey(sa, hdr, c, now)
		return
	}
	// A new Child SA is accepted only in place of one the IKE SA lost
	// (one Child SA per IKE SA); a rekey must name the one we have.
	var old *childSA
	switch {
	case c.rekeySPI == nil && (sa.child != nil || sa.childRekey != nil):
		answer(NotifyNoAdditionalSAs, nil)
		return
	case c.rekeySPI != nil:
		old = sa.child
		if len(c.rekeySPI) != 4 || old == nil || binary.BigEndian.Uint32(c.rekeySPI) != old.outSPI {
			s.respond(sa, hdr.Exchange, hdr.MessageID, []Payload{&NotifyPayload{NotifyType: NotifyChildSANotFound, Protocol: ProtocolESP, SPI: c.rekeySPI}}, now)
			return
		}
	}
	if sa.ikeRekey != nil {
		answer(NotifyTemporaryFailure, nil)
		return
	}
	prop, chosen, outSPI, err := SelectESP(s.cfg.ESPProposals, c.sa, true)
	if err != nil {
		answer(NotifyNoProposalChosen, nil)
		return
	}
	if c.nonce == nil || !nonceLenOK(sa.prop.PRF, c.nonce.Nonce) {
		answer(NotifyInvalidSyntax, nil) // §2.10
		return
	}
	if prop.DH != 0 && (c.ke == nil || uint16(c.ke.Group) != prop.DH) {
		answer(NotifyInvalidKEPayload, binary.BigEndian.AppendUint16(nil, prop.DH))
		return
	}
	localTS, peerTS, err := NarrowTS(s.cfg.LocalTS, s.cfg.PeerTS, c.tsi, c.tsr, s.cfg.AllowNarrowing)
	if err != nil {
		answer(NotifyTSUnacceptable, nil)
		return
	}
	nr, err := s.randomBytes(nonceLen)
	if err != nil {
		answer(NotifyTemporaryFailure, nil)
		return
	}
	var (
		gir []byte
		ke  *KEPayload
	)
	if prop.DH != 0 {
		dh, err := ikecrypto.GenerateDH(prop.DH, s.rand)
		if err == nil {
			gir, err = dh.SharedSecret(c.ke.Data)
			ke = &KEPayload{Group: TransformID(prop.DH), Data: dh.Public()}
			ikecrypto.WipeDH(dh)
		}
		if err != nil {
			answer(NotifyInvalidSyntax, nil)
			return
		}
		defer clear(gir)
	}
	inSPI, err := s.newESPSPI()
	if err != nil {
		answer(NotifyTemporaryFailure, nil)
		return
	}
	var transport bool
	var rekeyed *ChildSADown
	if old != nil {
		transport = c.transport && old.transport
		rekeyed = &ChildSADown{InSPI: old.inSPI, OutSPI: old.outSPI, Reason: "rekeyed"}
	} else {
		switch s.cfg.Mode {
		case ModeTransport:
			if !c.transport {
				answer(NotifyNoProposalChosen, nil) // as in IKE_AUTH (child.go)
				return
			}
			transport = true
		case ModeTransportOrTunnel:
			transport = c.transport
		}
	}
	nc, up, err := s.newChild(sa, prop, inSPI, outSPI, transport, localTS, peerTS, c.nonce.Nonce, nr, gir, false, rekeyed, now)
	if err != nil {
		answer(NotifyNoProposalChosen, nil)
		return
	}
	chosen.SPI = binary.BigEndian.AppendUint32(nil, inSPI)
	resp := []Payload{&SAPayload{Proposals: []Proposal{chosen}}, &NoncePayload{Nonce: nr}}
	if ke != nil {
		resp = append(resp, ke)
	}
	resp = append(resp, TSPayloadFor(peerTS, false), TSPayloadFor(localTS, true))
	if transport {
		resp = append(resp, &NotifyPayload{NotifyType: NotifyUseTransportMode})
	}
	resp = append(resp, &NotifyPayload{NotifyType: NotifyESPTFCPaddingNotSupported})
	s.respond(sa, hdr.Exchange, hdr.MessageID, resp, now)

	if old == nil {
		s.commitChildSA(sa, nc, up)
		return
	}
	if r := sa.childRekey; r != nil && r.old == old {
		r.peerNew, r.peerNi, r.peerNr = nc, c.nonce.Nonce, nr
	}
	// The old SA stays until the initiator of this exchange deletes it.
	sa.extra = append(sa.extra, old)
	old.successor = nc
	s.commitChildSA(sa, nc, up)
}

// startIKERekey sends a CREATE_CHILD_SA request rekeying the IKE SA.
func (s *Session) startIKERekey(sa *ikeSA, now time.Time) {
	s.startIKERekeyGroup(sa, sa.prop.DH, now)
}

func (s *Session) startIKERekeyGroup(sa *ikeSA, group uint16, now time.Time) {
	spi, err := s.newIKESPI()
	if err != nil {
		return
	}
	ni, err := s.randomBytes(nonceLen)
	if err != nil {
		return
	}
	dh, err := ikecrypto.GenerateDH(group, s.rand)
	if err != nil {
		return
	}
	sa.ikeRekey = &ikeRekey{spi: spi, ni: ni, dh: dh}
	spiBytes := binary.BigEndian.AppendUint64(nil, spi)
	payloads := []Payload{
		IKESAPayload(s.cfg.IKEProposals, spiBytes),
		&NoncePayload{Nonce: ni},
		&KEPayload{Group: TransformID(group), Data: dh.Public()},
	}
	s.sendRequest(sa, ExchangeCreateChildSA, payloads, (*Session).handleIKERekeyResponse, now)
}

// handleIKERekeyResponse completes our IKE SA rekey.
func (s *Session) handleIKERekeyResponse(sa *ikeSA, payloads []Payload, now time.Time) {
	r := sa.ikeRekey
	sa.ikeRekey = nil
	if r == nil || sa.state != stateEstablished {
		return
	}
	c := sortChild(payloads)
	retry := func() {
		if r.peerNew != nil {
			// Ours failed, the peer's rekey of the same IKE SA stands
			// (§2.8.2): its new IKE SA takes over, the peer deletes the old.
			s.switchIKESA(sa, r.peerNew, now)
			return
		}
		sa.ikeRekeyAt = now.Add(s.retryDelay())
	}
	if n := c.errNotify; n != nil {
		if n.NotifyType == NotifyInvalidKEPayload && len(n.Data) == 2 {
			if g := binary.BigEndian.Uint16(n.Data); g != r.dh.Group() && s.proposesGroup(g) && r.peerNew == nil {
				s.startIKERekeyGroup(sa, g, now)
				return
			}
		}
		retry()
		return
	}
	if c.sa == nil || c.nonce == nil || c.ke == nil {
		retry()
		return
	}
	prop, err := AcceptIKE(s.cfg.IKEProposals, c.sa)
	if err != nil || prop.DH != r.dh.Group() || uint16(c.ke.Group) != prop.DH || len(c.sa.Proposals[0].SPI) != ikeSPILen ||
		!nonceLenOK(prop.PRF, c.nonce.Nonce) {
		retry()
		return
	}
	gir, err := r.dh.SharedSecret(c.ke.Data)
	ikecrypto.WipeDH(r.dh)
	if err != nil {
		retry()
		return
	}
	defer clear(gir)
	spir := binary.BigEndian.Uint64(c.sa.Proposals[0].SPI)
	ns, err := s.rekeyedSA(sa, true, r.spi, spir, prop, r.ni, c.nonce.Nonce, gir, now)
	if err != nil {
		retry()
		return
	}
	if r.peerNew != nil {
		s.resolveIKERekeyCollision(sa, ns, r, c.nonce.Nonce, now)
		return
	}
	s.switchIKESA(sa, ns, now)
	// The initiator of the rekey deletes the old IKE SA (§1.3.2).
	s.sendRequest(sa, ExchangeInformational, []Payload{&DeletePayload{Protocol: ProtocolIKE}},
		func(s *Session, old *ikeSA, _ []Payload, now time.Time) { s.dropSA(old, "", nil, now) }, now)
}

// receiveIKERekey answers a request to rekey the IKE SA.
func (s *Session) receiveIKERekey(sa *ikeSA, hdr Header, c childPayloads, now time.Time) {
	answer := func(t NotifyType, data []byte) {
		s.respond(sa, hdr.Exchange, hdr.MessageID, []Payload{&NotifyPayload{NotifyType: t, Data: data}}, now)
	}
	if sa.childRekey != nil || (sa.ikeRekey != nil && sa.ikeRekey.peerNew != nil) {
		answer(NotifyTemporaryFailure, nil) // §2.25.2
		return
	}
	if c.nonce == nil || c.ke == nil {
		answer(NotifyInvalidSyntax, nil)
		return
	}
	prop, chosen, invalidKE, err := s.selectIKEWithKE(c.sa, uint16(c.ke.Group))
	switch {
	case err != nil:
		answer(NotifyNoProposalChosen, nil)
		return
	case invalidKE != 0:
		answer(NotifyInvalidKEPayload, binary.BigEndian.AppendUint16(nil, invalidKE))
		return
	case !nonceLenOK(prop.PRF, c.nonce.Nonce):
		answer(NotifyInvalidSyntax, nil) // §2.10
		return
	}
	// The proposal we answer is the peer's; its SPI is the new SPIi.
	var spii uint64
	for _, p := range c.sa.Proposals {
		if p.Number == chosen.Number && p.Protocol == ProtocolIKE && len(p.SPI) == ikeSPILen {
			spii = binary.BigEndian.Uint64(p.SPI)
			break
		}
	}
	if spii == 0 {
		answer(NotifyInvalidSyntax, nil)
		return
	}
	dh, err := ikecrypto.GenerateDH(prop.DH, s.rand)
	if err != nil {
		answer(NotifyTemporaryFailure, nil)
		return
	}
	gir, err := dh.SharedSecret(c.ke.Data)
	pub := dh.Public()
	ikecrypto.WipeDH(dh)
	if err != nil {
		answer(NotifyInvalidSyntax, nil)
		return
	}
	defer clear(gir)
	spir, err := s.newIKESPI()
	if err != nil {
		answer(NotifyTemporaryFailure, nil)
		return
	}
	nr, err := s.randomBytes(nonceLen)
	if err != nil {
		answer(NotifyTemporaryFailure, nil)
		return
	}
	ns, err := s.rekeyedSA(sa, false, spii, spir, prop, c.nonce.Nonce, nr, gir, now)
	if err != nil {
		answer(NotifyNoProposalChosen, nil)
		return
	}
	chosen.SPI = binary.BigEndian.AppendUint64(nil, spir)
	s.respond(sa, hdr.Exchange, hdr.MessageID, []Payload{
		&SAPayload{Proposals: []Proposal{chosen}},
		&NoncePayload{Nonce: nr},
		&KEPayload{Group: TransformID(prop.DH), Data: pub},
	}, now)
	if r := sa.ikeRekey; r != nil {
		// Both sides rekey at once (§2.8.2): decided when our response
		// arrives (resolveIKERekeyCollision).
		r.peerNew, r.peerNi, r.peerNr = ns, append([]byte(nil), c.nonce.Nonce...), nr
		return
	}
	s.switchIKESA(sa, ns, now)
}

// resolveIKERekeyCollision settles two rekeys of the IKE SA old, ours
// (which created ours) and the peer's (r.peerNew), by the rule of §2.8.2:
// the new IKE SA created with the lowest of the four nonces is redundant
// and its creator deletes it; the initiator of the surviving exchange
// deletes old. Both sides see the same nonces and decide alike. The
// deletions that need no answer from us are sent once, unretransmitted,
// as the peer also gives up such an SA by itself.
func (s *Session) resolveIKERekeyCollision(old, ours *ikeSA, r *ikeRekey, ourNr []byte, now time.Time) {
	s.stats.RekeyCollisions++
	peerNew := r.peerNew
	if bytes.Compare(minNonce(r.ni, ourNr), minNonce(r.peerNi, r.peerNr)) < 0 {
		// Ours is redundant: delete it; the peer's takes over, and the
		// peer deletes old, which waits for that as after any rekey.
		s.sendRequestOnce(ours, ExchangeInformational, []Payload{&DeletePayload{Protocol: ProtocolIKE}})
		ours.state = stateDead
		ours.wipe()
		s.switchIKESA(old, peerNew, now)
		return
	}
	// Ours survives: we delete old; the peer deletes its own, which waits
	// for that DELETE in old's place.
	s.switchIKESA(old, ours, now)
	s.sendRequestOnce(old, ExchangeInformational, []Payload{&DeletePayload{Protocol: ProtocolIKE}})
	s.dropSA(old, "", nil, now)
	peerNew.redundant = true
	s.gate.setSPI(peerNew.localSPI(), s.cfg.PeerAddr, false)
	s.retire(peerNew, now)
}

// selectIKEWithKE chooses an IKE proposal as responder, preferring one
// whose group is keGroup, the group of the peer's KE payload. If only
// another group is acceptable it returns that group in invalidKE, for an
// INVALID_KE_PAYLOAD answer (§1.2, §1.3.2).
func (s *Session) selectIKEWithKE(offered *SAPayload, keGroup uint16) (prop IKEProposal, chosen Proposal, invalidKE uint16, err error) {
	var withKE []IKEProposal
	for _, p := range s.cfg.IKEProposals {
		if p.DH == keGroup {
			withKE = append(withKE, p)
		}
	}
	if len(withKE) > 0 {
		if prop, chosen, err = SelectIKE(withKE, offered); err == nil {
			return prop, chosen, 0, nil
		}
	}
	p2, _, err := SelectIKE(s.cfg.IKEProposals, offered)
	if err != nil {
		return IKEProposal{}, Proposal{}, 0, err
	}
	return IKEProposal{}, Proposal{}, p2.DH, nil
}

// rekeyedSA builds the IKE SA that replaces sa (§2.18): SKEYSEED =
// prf(SK_d (old), g^ir (new) | Ni | Nr) with the old PRF, and the new SA's
// keys from its own SPIs. initiator says whether we initiated the rekey,
// which makes us the new SA's original initiator.
func (s *Session) rekeyedSA(sa *ikeSA, initiator bool, spii, spir uint64, prop IKEProposal, ni, nr, gir []byte, now time.Time) (*ikeSA, error) {
	prf, err := ikecrypto.NewPRF(prop.PRF)
	if err != nil {
		return nil, err
	}
	el, il, err := ikecrypto.KeyLens(prop.Encr, prop.KeyBits, prop.Integ)
	if err != nil {
		return nil, err
	}
	seed := ikecrypto.RekeySKEYSEED(sa.prf, sa.skd, gir, ni, nr)
	keys := ikecrypto.DeriveIKESAKeys(prf, seed, ni, nr, binary.BigEndian.AppendUint64(nil, spii), binary.BigEndian.AppendUint64(nil, spir), el, il)
	clear(seed)
	out, in, err := keys.Ciphers(initiator, prop.Encr, prop.KeyBits, prop.Integ)
	keys.WipeSK()
	if err != nil {
		keys.Wipe()
		return nil, err
	}
	if spii == 0 || spir == 0 {
		keys.Wipe()
		return nil, errors.New("ikev2: zero IKE SPI")
	}
	clear(keys.SKpi)
	clear(keys.SKpr)
	ns := &ikeSA{
		initiator: initiator,
		state:     stateEstablished,
		spii:      spii, spir: spir,
		created: now, upAt: now, lastRecv: now,
		createdSeq: s.stamp(),
		prop:       prop, prf: prf,
		skd: keys.SKd, // SK_pi and SK_pr serve no AUTH on a rekeyed SA
		out: out, in: in,
		local: sa.local, peer: sa.peer,
		natLocal: sa.natLocal, natPeer: sa.natPeer,
		fragment:      sa.fragment,
		nextKeepalive: sa.nextKeepalive,
	}
	ns.upSeq = ns.createdSeq
	ns.ikeRekeyAt = ns.rekeyTime(now, s.cfg.IKELifetime, s.cfg.IKEHardLifetime)
	ns.hardAt = s.hardTime(ns, now, s.cfg.IKELifetime, s.cfg.IKEHardLifetime)
	return ns, nil
}

// switchIKESA makes ns, the IKE SA that rekeyed old, the current one: the
// Child SAs move over and old waits for its DELETE.
func (s *Session) switchIKESA(old, ns *ikeSA, now time.Time) {
	ns.child, ns.extra = old.child, old.extra
	old.child, old.extra = nil, nil
	old.retired = true
	old.retireAt = now.Add(retiredLifetime)
	old.rekeyedTo = ns
	if s.old != nil {
		s.dropSA(s.old, "", nil, now)
	}
	s.old = old
	if s.sa == old {
		s.sa = ns
	}
	s.gate.setSPI(ns.localSPI(), s.cfg.PeerAddr, false)
	s.emit(IKESAUp{SPIi: ns.spii, SPIr: ns.spir, Initiator: ns.initiator, NAT: ns.nat()})
}

// RekeyChild rekeys at once the Child SA whose inbound SPI is inSPI: the
// runner calls it when the dataplane, which counts the bytes, sees the
// Child SA's byte lifetime (Config.ChildBytes) run out. It does nothing
// unless inSPI is the current Child SA of the current IKE SA; a rekey
// already under way is left to finish.
func (s *Session) RekeyChild(inSPI uint32, now time.Time) {
	sa := s.sa
	if s.closed || sa == nil || sa.child == nil || sa.child.inSPI != inSPI {
		return
	}
	if now.Before(sa.child.rekeyAt) {
		sa.child.rekeyAt = now // Tick starts it; NextTimeout is now
	}
}
