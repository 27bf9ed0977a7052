package ikev2

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/greipsec/greipsec/ikev2/ikecrypto"
)

// Child SAs (RFC 7296 §1.3, §2.17): the ESP SA pair negotiated in IKE_AUTH
// or CREATE_CHILD_SA, its keys, and the events that hand it to the runner.

// childSA is an established Child SA.
type childSA struct {
	inSPI, outSPI   uint32
	prop            ESPProposal
	transport       bool
	localTS, peerTS []Selector
	upAt            time.Time
	rekeyAt         time.Time // when we rekey it
	hardAt          time.Time // when it is deleted, rekeyed or not (lifetime.go)
	// announced says the runner was told (ChildSAUp); pending is that
	// event while it was not, with the keys.
	announced bool
	pending   *ChildSAUp
	// successor is the Child SA that replaced this one by a rekey: when
	// this one's DELETE exchange is done, the runner may send with it
	// (ChildSAOutbound).
	successor *childSA
}

// retired is called when the DELETE exchange of c, replaced by a rekey, is
// done: the peer has c's successor, which the runner may now send with.
func (s *Session) retired(c *childSA) {
	if n := c.successor; n != nil && n.announced {
		s.emit(ChildSAOutbound{InSPI: n.inSPI, OutSPI: n.outSPI})
	}
	c.successor = nil
}

// minESPSPI is the smallest SPI we choose: 1-255 are reserved by IANA
// (RFC 4303 §2.1).
const minESPSPI = 256

// newESPSPI returns a random inbound ESP SPI that none of our Child SAs
// uses, and that the dataplane does not use either (Config.SPIInUse).
func (s *Session) newESPSPI() (uint32, error) {
	for {
		b, err := s.randomBytes(4)
		if err != nil {
			return 0, err
		}
		spi := binary.BigEndian.Uint32(b)
		if spi >= minESPSPI && !s.inSPIUsed(spi) && (s.cfg.SPIInUse == nil || !s.cfg.SPIInUse(spi)) {
			return spi, nil
		}
	}
}

// inSPIUsed reports whether one of the session's Child SAs, or an exchange
// in progress, has inbound SPI spi.
func (s *Session) inSPIUsed(spi uint32) bool {
	for _, sa := range [...]*ikeSA{s.sa, s.own, s.old} {
		if sa == nil {
			continue
		}
		if sa.childSPI == spi || (sa.childRekey != nil && sa.childRekey.inSPI == spi) {
			return true
		}
		if sa.findChild(spi) != nil {
			return true
		}
	}
	return false
}

// findChild returns the Child SA of sa, current or on its way out, whose
// inbound SPI is spi.
func (sa *ikeSA) findChild(spi uint32) *childSA {
	if c := sa.child; c != nil && c.inSPI == spi {
		return c
	}
	for _, c := range sa.extra {
		if c.inSPI == spi {
			return c
		}
	}
	return nil
}

// childKeys derives the KEYMAT of a Child SA (§2.17) and returns our
// inbound and outbound keys. initiator says whether we initiated the
// exchange that created the SA: the first half protects the traffic from
// that exchange's initiator. Each half is the encryption key followed by
// the integrity key (§2.17: "the encryption key (if any) MUST be taken
// from the first bits and the integrity key (if any) MUST be taken from
// the remaining bits").
func childKeys(sa *ikeSA, prop ESPProposal, gir, ni, nr []byte, initiator bool) (in, out childKey, err error) {
	el, il, err := ikecrypto.KeyLens(prop.Encr, prop.KeyBits, prop.Integ)
	if err != nil {
		return childKey{}, childKey{}, err
	}
	i2r, r2i := ikecrypto.ChildKeys(sa.prf, sa.skd, gir, ni, nr, el+il)
	split := func(k []byte) childKey {
		c := childKey{enc: k[:el:el]}
		if il > 0 {
			c.auth = k[el:]
		}
		return c
	}
	if initiator {
		return split(r2i), split(i2r), nil
	}
	return split(i2r), split(r2i), nil
}

// childKey is the key material of one direction of a Child SA.
type childKey struct{ enc, auth []byte }

// newChild builds an established Child SA and its ChildSAUp event.
func (s *Session) newChild(sa *ikeSA, prop ESPProposal, inSPI, outSPI uint32, transport bool, localTS, peerTS []Selector,
	ni, nr, gir []byte, initiator bool, rekeyed *ChildSADown, now time.Time) (*childSA, *ChildSAUp, error) {
	in, out, err := childKeys(sa, prop, gir, ni, nr, initiator)
	if err != nil {
		return nil, nil, err
	}
	c := &childSA{inSPI: inSPI, outSPI: outSPI, prop: prop, transport: transport, localTS: localTS, peerTS: peerTS, upAt: now,
		rekeyAt: sa.rekeyTime(now, s.cfg.ChildLifetime, s.cfg.ChildHardLifetime)}
	c.hardAt = s.hardTime(sa, now, s.cfg.ChildLifetime, s.cfg.ChildHardLifetime)
	up := &ChildSAUp{
		InSPI: inSPI, OutSPI: outSPI,
		Encr: prop.Encr, KeyBits: prop.KeyBits, Integ: prop.Integ,
		InKey: in.enc, OutKey: out.enc,
		InAuthKey: in.auth, OutAuthKey: out.auth,
		ESN:       prop.ESN,
		Transport: transport,
		Encap:     sa.nat(),
		Peer:      s.espPeer(sa),
		LocalTS:   localTS,
		PeerTS:    peerTS,
		Lifetime:  s.cfg.ChildLifetime,
		Hard:      c.hardAt.Sub(now),
		Rekeyed:   rekeyed,
	}
	return c, up, nil
}

// espPeer returns where ESP goes: with UDP encapsulation the peer's IKE
// address and port, moved from 500 to its NAT-T port (where it uses IKE
// after the NAT), else its address alone.
func (s *Session) espPeer(sa *ikeSA) netip.AddrPort {
	if sa.nat() {
		_, p := s.natPorts(sa.local, sa.peer)
		return p
	}
	return netip.AddrPortFrom(sa.peer.Addr(), 0)
}

// installChild builds the Child SA and commits it (initiator side).
func (s *Session) installChild(sa *ikeSA, prop ESPProposal, inSPI, outSPI uint32, transport bool, localTS, peerTS []Selector,
	ni, nr, gir []byte, initiator bool, rekeyed *ChildSADown, now time.Time) {
	c, up, err := s.newChild(sa, prop, inSPI, outSPI, transport, localTS, peerTS, ni, nr, gir, initiator, rekeyed, now)
	if err != nil {
		s.fail(sa, "cannot derive the Child SA keys", err, now)
		return
	}
	up.LocalTS, up.PeerTS = localTS, peerTS
	s.commitChildSA(sa, c, up)
}

// commitChildSA makes c the Child SA of sa and emits its ChildSAUp, unless
// sa is the redundant IKE SA of a crossing (crossing.go): then the runner
// hears of c only if sa is promoted.
func (s *Session) commitChildSA(sa *ikeSA, c *childSA, up *ChildSAUp) {
	sa.child = c
	sa.childErr = ""
	c.pending = up
	if !sa.redundant {
		s.announce(c)
	}
}

// announce emits c's ChildSAUp. The event carries the keys; the session
// keeps no copy of them (the runner clears them once installed).
func (s *Session) announce(c *childSA) {
	up := c.pending
	c.pending, c.announced = nil, true
	s.emit(*up)
}

// pendingChild is a Child SA the responder accepted, to be committed after
// its response is sent.
type pendingChild struct {
	c  *childSA
	up *ChildSAUp
}

// commitChild commits a Child SA accepted by acceptChild.
func (s *Session) commitChild(sa *ikeSA, p *pendingChild) { s.commitChildSA(sa, p.c, p.up) }

// acceptChild chooses the Child SA of an IKE_AUTH request as responder. It
// returns the payloads of the response that create it, or an error notify
// and a reason for logs.
func (s *Session) acceptChild(sa *ikeSA, a authPayloads, now time.Time) ([]Payload, *pendingChild, NotifyType, string) {
	if a.sa == nil {
		return nil, nil, 0, ""
	}
	prop, chosen, outSPI, err := SelectESP(s.cfg.ESPProposals, a.sa, false)
	if err != nil {
		return nil, nil, NotifyNoProposalChosen, "NO_PROPOSAL_CHOSEN sent for the Child SA: " + err.Error()
	}
	localTS, peerTS, err := NarrowTS(s.cfg.LocalTS, s.cfg.PeerTS, a.tsi, a.tsr, s.cfg.AllowNarrowing)
	if err != nil {
		return nil, nil, NotifyTSUnacceptable, "TS_UNACCEPTABLE sent for the Child SA: " + err.Error()
	}
	var transport bool
	switch s.cfg.Mode {
	case ModeTransport:
		if !a.transport {
			return nil, nil, NotifyNoProposalChosen, "NO_PROPOSAL_CHOSEN sent for the Child SA: peer asked for tunnel mode, our mode insists on transport"
		}
		transport = true
	case ModeTransportOrTunnel:
		transport = a.transport
	}
	inSPI, err := s.newESPSPI()
	if err != nil {
		return nil, nil, NotifyTemporaryFailure, err.Error()
	}
	c, up, err := s.newChild(sa, prop, inSPI, outSPI, transport, localTS, peerTS, sa.ni, sa.nr, nil, false, nil, now)
	if err != nil {
		return nil, nil, NotifyNoProposalChosen, fmt.Sprintf("cannot derive the Child SA keys: %v", err)
	}
	chosen.SPI = binary.BigEndian.AppendUint32(nil, inSPI)
	payloads := []Payload{
		&SAPayload{Proposals: []Proposal{chosen}},
		TSPayloadFor(peerTS, false),
		TSPayloadFor(localTS, true),
	}
	if transport {
		payloads = append(payloads, &NotifyPayload{NotifyType: NotifyUseTransportMode})
	}
	payloads = append(payloads, &NotifyPayload{NotifyType: NotifyESPTFCPaddingNotSupported})
	return payloads, &pendingChild{c, up}, 0, ""
}
