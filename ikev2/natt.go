package ikev2

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/binary"
	"net/netip"
	"time"
)

// NAT traversal (RFC 7296 §2.23, RFC 3948): NAT detection in IKE_SA_INIT,
// the move to port 4500, UDP encapsulation of the Child SA and keepalives.

// natHash returns the data of a NAT_DETECTION_*_IP notify,
// SHA-1(SPIi | SPIr | IP address | port) (RFC 7296 §2.23).
func natHash(spii, spir uint64, ap netip.AddrPort) []byte {
	h := sha1.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], spii)
	h.Write(b[:])
	binary.BigEndian.PutUint64(b[:], spir)
	h.Write(b[:])
	h.Write(ap.Addr().Unmap().AsSlice())
	binary.BigEndian.PutUint16(b[:2], ap.Port())
	h.Write(b[:2])
	return h.Sum(nil)
}

// natNotifies returns our NAT_DETECTION_SOURCE_IP and
// NAT_DETECTION_DESTINATION_IP notifies for a message with the given SPIs.
// With ForceEncap the source hash is of port 0, so that the peer sees a NAT
// in front of us and both sides use UDP encapsulation.
func (s *Session) natNotifies(spii, spir uint64, local, peer netip.AddrPort) []Payload {
	src := local
	if s.cfg.ForceEncap {
		src = netip.AddrPortFrom(local.Addr(), 0)
	}
	return []Payload{
		&NotifyPayload{NotifyType: NotifyNATDetectionSourceIP, Data: natHash(spii, spir, src)},
		&NotifyPayload{NotifyType: NotifyNATDetectionDestinationIP, Data: natHash(spii, spir, peer)},
	}
}

// processNATD compares the peer's NAT detection notifies with the
// addresses the message arrived with and records what it finds in sa.
// Without notifies from the peer no NAT is assumed (unless we force one).
func (s *Session) processNATD(sa *ikeSA, hdr Header, payloads []Payload, local, peer netip.AddrPort) {
	var srcSeen, srcMatch, dstSeen, dstMatch bool
	wantSrc := natHash(hdr.SPIi, hdr.SPIr, peer)
	wantDst := natHash(hdr.SPIi, hdr.SPIr, local)
	for _, p := range payloads {
		n, ok := p.(*NotifyPayload)
		if !ok {
			continue
		}
		switch n.NotifyType {
		case NotifyNATDetectionSourceIP:
			srcSeen = true
			srcMatch = srcMatch || subtle.ConstantTimeCompare(n.Data, wantSrc) == 1
		case NotifyNATDetectionDestinationIP:
			dstSeen = true
			dstMatch = dstMatch || subtle.ConstantTimeCompare(n.Data, wantDst) == 1
		}
	}
	sa.natPeer = srcSeen && !srcMatch
	sa.natLocal = (dstSeen && !dstMatch) || s.cfg.ForceEncap
}

// nat reports whether the Child SAs of sa use UDP encapsulation.
func (sa *ikeSA) nat() bool { return sa.natLocal || sa.natPeer }

// tickKeepalive emits a NAT keepalive when one is due, while we are behind
// a NAT (RFC 3948 §4).
func (s *Session) tickKeepalive(sa *ikeSA, now time.Time) {
	if !sa.natLocal {
		return
	}
	if !now.Before(sa.nextKeepalive) {
		l, p := s.natPorts(sa.local, sa.peer)
		s.emit(SendKeepalive{Local: l, Peer: p})
		sa.nextKeepalive = now.Add(s.cfg.NATKeepalive)
	}
}

// followPeer moves sa to the addresses an authenticated message arrived
// with: a new request that passed the message ID check, or the response to
// our request, never a retransmission (the caller sees to that). RFC 7296
// §2.23: the other side's address and port are updated only when it is
// behind a NAT (its mapping may change), and not by a host that is behind a
// NAT itself and started the IKE SA: its peer has a fixed address, and the
// NAT in front of us is what changed. The first IKE_AUTH request of a
// half-open SA moves it in any case (the initiator moves to port 4500 when
// it sees a NAT, §2.23); it carries that SA's own keys, nothing else's.
// When the current IKE SA's peer moves and ESP is in UDP, PeerMoved tells
// the runner.
func (s *Session) followPeer(sa *ikeSA, local, peer netip.AddrPort) {
	if !local.IsValid() || !peer.IsValid() || (local == sa.local && peer == sa.peer) {
		return
	}
	force := sa.state == stateInitDone
	if !force && (!sa.natPeer || (sa.natLocal && sa.initiator)) {
		return
	}
	moved := peer != sa.peer && sa.child != nil && sa.nat() && sa == s.sa
	sa.local, sa.peer = local, peer
	if moved {
		s.emit(PeerMoved{Peer: s.espPeer(sa)})
	}
}
