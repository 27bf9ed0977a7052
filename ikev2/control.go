package ikev2

import "time"

// Operator commands, as swanctl --initiate and --rekey give them: the
// runner calls these when asked on its control socket. Close, with a new
// Session made afterwards, is --terminate; RekeyChild is --rekey --child.

// Initiate starts an IKE SA (and its Child SA) now, in either role: a
// passive session initiates once, an active one also starts again after
// failures from then on, as if Start had been called, and its restart
// back-off starts over. With an established IKE SA that has no Child SA
// (deleted by the operator or the peer) it creates the Child SA with
// CREATE_CHILD_SA instead. It does nothing otherwise while the session has
// an IKE SA, being set up or established, or once it is closed; it
// reports whether it started something.
func (s *Session) Initiate(now time.Time) bool {
	if s.closed {
		return false
	}
	if sa := s.sa; sa != nil {
		if sa.state != stateEstablished || sa.retired || sa.child != nil || sa.childRekey != nil || sa.ikeRekey != nil {
			return false
		}
		sa.childHeld = false
		s.startChildExchange(sa, nil, s.espGroup(), now)
		return true
	}
	if s.cfg.Role == RoleActive {
		s.started = true
	}
	s.backoff = 0
	s.restartAt = time.Time{}
	s.initiate(now)
	return true
}

// RekeyIKE rekeys the established IKE SA now (§2.18), as its lifetime
// would. It reports false, doing nothing, when there is no established IKE
// SA to rekey; a rekey already under way is left to finish and counts as
// started.
func (s *Session) RekeyIKE(now time.Time) bool {
	sa := s.sa
	if s.closed || sa == nil || sa.state != stateEstablished || sa.retired {
		return false
	}
	if sa.ikeRekeyAt.IsZero() || now.Before(sa.ikeRekeyAt) {
		sa.ikeRekeyAt = now // Tick starts it; NextTimeout is now
	}
	return true
}

// DeleteChild deletes the Child SA of the established IKE SA with an
// INFORMATIONAL DELETE (§1.4.1), as swanctl --terminate --child does, and
// keeps the IKE SA. It reports whether there was a Child SA to delete.
// Traffic (Acquire) does not make a new Child SA afterwards; Initiate
// does.
func (s *Session) DeleteChild(now time.Time) bool {
	sa := s.sa
	if s.closed || sa == nil || sa.state != stateEstablished || sa.retired || sa.child == nil {
		return false
	}
	sa.childHeld = true
	s.deleteChild(sa, "deleted by the operator", now)
	return true
}
