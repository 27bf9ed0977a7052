package ikev2

import (
	"errors"
	"time"
)

// Hard lifetimes (RFC 7296 §2.8; RFC 4301 §4.4.2.1): a Child SA or IKE SA
// is rekeyed at its lifetime, and if rekeying keeps failing (the peer
// answers TEMPORARY_FAILURE or NO_PROPOSAL_CHOSEN, or does not answer),
// its keys must not stay in use for ever. At the hard lifetime the SA is
// deleted: ChildSADown tells the runner to remove the keys from the
// dataplane, a DELETE tells the peer (best effort), and since the tunnel's
// IKE SA without its Child SA carries nothing, the IKE SA goes with it; an
// active session then starts again. The default hard lifetime is 1.1 times
// the time this side rekeys at, as strongSwan's life_time defaults to 1.1
// times rekey_time; the dataplane enforces the byte and packet limits
// itself (esp.Config.HardBytes).

var errHardLifetime = errors.New("ikev2: hard lifetime reached")

// hardTime returns when an SA established at now on sa (or sa itself),
// with lifetime soft and configured hard lifetime hard (0: default), must
// be gone.
func (s *Session) hardTime(sa *ikeSA, now time.Time, soft, hard time.Duration) time.Time {
	if hard == 0 {
		r := sa.rekeyTime(now, soft, 0).Sub(now)
		hard = r + r/10
	}
	return now.Add(hard)
}

// tickHard deletes what reached its hard lifetime on the established IKE
// SA sa. It reports whether sa itself is gone.
func (s *Session) tickHard(sa *ikeSA, now time.Time) bool {
	due := func(t time.Time) bool { return !t.IsZero() && !now.Before(t) }
	if due(sa.hardAt) {
		s.sendRequestOnce(sa, ExchangeInformational, []Payload{&DeletePayload{Protocol: ProtocolIKE}})
		s.fail(sa, "IKE SA hard lifetime reached: it could not be rekeyed in time", errHardLifetime, now)
		return true
	}
	for _, c := range append([]*childSA(nil), sa.extra...) {
		if due(c.hardAt) {
			sa.extra = removeChild(sa.extra, c)
			s.childGone(c, "hard lifetime reached")
		}
	}
	if c := sa.child; c != nil && due(c.hardAt) {
		const why = "Child SA hard lifetime reached: it could not be rekeyed in time"
		sa.child = nil
		s.childGone(c, why)
		// Deleting the IKE SA deletes its Child SAs at the peer (§1.4.1).
		s.sendRequestOnce(sa, ExchangeInformational, []Payload{
			&DeletePayload{Protocol: ProtocolESP, SPIs: []uint32{c.inSPI}},
			&DeletePayload{Protocol: ProtocolIKE},
		})
		s.fail(sa, why, errHardLifetime, now)
		return true
	}
	return false
}

// hardTimeout returns the next hard lifetime on the established IKE SA sa.
func (s *Session) hardTimeout(sa *ikeSA) time.Time {
	t := sa.hardAt
	min := func(u time.Time) {
		if !u.IsZero() && (t.IsZero() || u.Before(t)) {
			t = u
		}
	}
	if c := sa.child; c != nil {
		min(c.hardAt)
	}
	for _, c := range sa.extra {
		min(c.hardAt)
	}
	return t
}
