package ikev2

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// A peer that lost its state (it restarted) and is passive cannot start a
// new IKE SA itself; until the other side notices, its tunnel is down.
// RFC 7296 §1.5 gives it two one-way notifications, sent without an IKE SA
// and never answered:
//
//   - INVALID_SPI, when ESP arrives with an SPI it does not know: an
//     INFORMATIONAL request with zero IKE SPIs, sent where the ESP came from;
//   - INVALID_IKE_SPI, when a protected IKE request arrives for an IKE SA
//     it does not know: a response with the request's SPIs, message ID and
//     exchange type.
//
// Anyone can forge them, so the receiver takes them as a hint only (§1.5):
// if it names the outbound SPI of our current Child SA (or answers our
// outstanding request on the current IKE SA), an active session sets up a
// new IKE SA at once, beside the old one (make before break: the old one
// stays until the new one is established, then is deleted). At most one
// such reauthentication per hintInterval, and a forged hint costs no more
// than that.

const (
	// hintSendInterval bounds how often we send one-way notifications.
	hintSendInterval = time.Second
	// hintInterval bounds how often a hint makes us reauthenticate.
	hintInterval = 30 * time.Second
	// hintMinAge is how long an IKE SA must have been established before a
	// hint makes us replace it: while two IKE SAs cross (crossing.go), the
	// peer may briefly have none, and its hints are not news.
	hintMinAge = 10 * time.Second
)

// UnknownSPI tells the session that the dataplane received ESP from the
// peer's address (from: with its UDP port if it was ESP-in-UDP, else port
// 0) with an SPI it has no SA for. If the session has no IKE SA at all, not
// even one being set up, it answers with the one-way INVALID_SPI
// notification of §1.5 (at most once a second), so that a peer still
// sending on an SA we lost (we restarted) sets up a new one now. The runner
// calls it for packets from the configured peer address only.
func (s *Session) UnknownSPI(spi uint32, from netip.AddrPort, now time.Time) {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	if s.closed || from.Addr() != s.cfg.PeerAddr || !s.amnesic() || !s.hintDue(now) {
		return
	}
	// §1.5: to the source port if the ESP was in UDP; else to the peer's
	// IKE port, the NAT-T one if we start IKE there.
	local, peer := netip.AddrPortFrom(s.cfg.LocalAddr, portIKE), netip.AddrPortFrom(from.Addr(), portIKE)
	switch {
	case from.Port() != 0:
		local, peer = netip.AddrPortFrom(s.cfg.LocalAddr, s.cfg.NATTPort), from
	case s.cfg.StartNATT:
		local, peer = netip.AddrPortFrom(s.cfg.LocalAddr, s.cfg.NATTPort), netip.AddrPortFrom(from.Addr(), s.cfg.PeerNATTPort)
	}
	m := Message{
		Header: Header{Exchange: ExchangeInformational, Flags: FlagInitiator},
		Payloads: []Payload{&NotifyPayload{Protocol: ProtocolESP, NotifyType: NotifyInvalidSPI,
			Data: binary.BigEndian.AppendUint32(nil, spi)}},
	}
	s.send(local, peer, m.Encode(nil))
}

// amnesic reports whether the session has no IKE SA with the peer, nor one
// being set up: only then is a message for an SA we do not know a sign
// that we lost it, rather than of an exchange in flight.
func (s *Session) amnesic() bool {
	return s.sa == nil && s.own == nil && s.old == nil && len(s.half) == 0
}

// hintDue reports whether a one-way notification may be sent now, and
// notes that one is.
func (s *Session) hintDue(now time.Time) bool {
	if !s.lastHintSent.IsZero() && now.Sub(s.lastHintSent) < hintSendInterval {
		return false
	}
	s.lastHintSent = now
	return true
}

// unknownIKESPI answers a protected request from the peer for an IKE SA we
// do not have with INVALID_IKE_SPI (§1.5), at most once a second, if we
// have no IKE SA at all (see amnesic).
func (s *Session) unknownIKESPI(hdr Header, local, peer netip.AddrPort, now time.Time) {
	if hdr.IsResponse() || hdr.Exchange == ExchangeIKESAInit || peer.Addr() != s.cfg.PeerAddr || !s.amnesic() || !s.hintDue(now) {
		return
	}
	h := hdr
	h.Flags = FlagResponse
	if !hdr.IsInitiator() {
		h.Flags |= FlagInitiator // we would be the original initiator
	}
	m := Message{Header: h, Payloads: []Payload{&NotifyPayload{NotifyType: NotifyInvalidIKESPI}}}
	s.send(local, peer, m.Encode(nil))
}

// isOneWayInvalidSPI reports whether h is the header of the INVALID_SPI
// notification of §1.5: an INFORMATIONAL request with zero IKE SPIs.
func isOneWayInvalidSPI(h Header) bool {
	return h.Exchange == ExchangeInformational && !h.IsResponse() && h.SPIi == 0 && h.SPIr == 0
}

// receiveInvalidSPI handles an INVALID_SPI notification from the peer's
// address: a hint that the peer lost the Child SA we send on.
func (s *Session) receiveInvalidSPI(msg []byte, peer netip.AddrPort, now time.Time) {
	if peer.Addr() != s.cfg.PeerAddr {
		s.stats.Malformed++
		return
	}
	m, err := ParseMessage(msg)
	if err != nil || len(m.Payloads) != 1 {
		s.stats.Malformed++
		return
	}
	n, ok := m.Payloads[0].(*NotifyPayload)
	if !ok || n.NotifyType != NotifyInvalidSPI {
		s.stats.Malformed++
		return
	}
	spi := n.Data
	if len(n.SPI) == 4 {
		spi = n.SPI
	}
	sa := s.sa
	if len(spi) != 4 || sa == nil || sa.state != stateEstablished || sa.child == nil || sa.child.outSPI != binary.BigEndian.Uint32(spi) {
		s.stats.Malformed++
		return
	}
	s.hinted(now)
}

// hinted acts on a hint that the peer lost its state: an active session
// sets up a new IKE SA beside the current one, unless it did so less than
// hintInterval ago or is already at it.
func (s *Session) hinted(now time.Time) {
	s.stats.Hints++
	if s.cfg.Role != RoleActive || !s.started || s.own != nil || s.old != nil || !s.Established() ||
		now.Sub(s.sa.upAt) < hintMinAge || (!s.lastReauth.IsZero() && now.Sub(s.lastReauth) < hintInterval) {
		return
	}
	s.lastReauth = now
	cur := s.sa
	s.sa = nil
	s.initiate(now)
	if s.sa == nil { // could not start
		s.sa = cur
		return
	}
	s.own, s.sa = s.sa, cur
	s.own.reauth = true
}
