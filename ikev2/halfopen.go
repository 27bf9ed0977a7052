package ikev2

import (
	"net/netip"
	"time"
)

// Half-open responder IKE SAs (RFC 7296 §2.6, RFC 8019 §4): an IKE SA we
// answered IKE_SA_INIT for and that has not authenticated yet is no more
// than a claim by whoever can send from the peer's address. Such SAs live
// in a small table of their own, keyed by the initiator's SPI and the
// address and port the request came from, and never touch the current IKE
// SA or our own attempt: only an IKE_AUTH that authenticates takes one out
// of the table (established, in ike_auth.go). The table holds at most
// GateConfig.BlockThresholdPeer entries; an entry expires after
// halfOpenLifetime. The counts are published to the Gate, which asks for
// cookies and blocks new requests as they grow.

// findHalf returns the half-open SA that the IKE_SA_INIT request with SPIi
// spii from peer created, or nil.
func (s *Session) findHalf(spii uint64, peer netip.AddrPort) *ikeSA {
	for _, sa := range s.half {
		if sa.spii == spii && sa.initFrom == peer {
			return sa
		}
	}
	return nil
}

// halfFull reports whether the table has no room for another entry.
func (s *Session) halfFull() bool {
	return len(s.half) >= s.gate.cfg.BlockThresholdPeer
}

// addHalf puts a new half-open SA in the table and publishes it.
func (s *Session) addHalf(sa *ikeSA) {
	s.half = append(s.half, sa)
	s.gate.addHalfOpen(s.gp, 1)
	s.gate.setSPI(sa.localSPI(), s.cfg.PeerAddr, true)
	s.stats.HalfOpenCreated++
}

// removeHalf takes sa out of the table, if it is there, and reports whether
// it was. Its SPI stays published (the caller forgets or promotes it).
func (s *Session) removeHalf(sa *ikeSA) bool {
	for i, h := range s.half {
		if h == sa {
			copy(s.half[i:], s.half[i+1:])
			s.half[len(s.half)-1] = nil
			s.half = s.half[:len(s.half)-1]
			s.gate.addHalfOpen(s.gp, -1)
			return true
		}
	}
	return false
}

// tickHalf drops the half-open SAs older than halfOpenLifetime. They are
// not worth an event: a flood of spoofed requests leaves thousands.
func (s *Session) tickHalf(now time.Time) {
	for len(s.half) > 0 && !now.Before(s.half[0].created.Add(halfOpenLifetime)) {
		sa := s.half[0]
		s.removeHalf(sa)
		s.stats.HalfOpenExpired++
		sa.state = stateDead
		s.forget(sa)
	}
}

// halfTimeout returns when the oldest half-open SA expires.
func (s *Session) halfTimeout() time.Time {
	if len(s.half) == 0 {
		return time.Time{}
	}
	return s.half[0].created.Add(halfOpenLifetime)
}
