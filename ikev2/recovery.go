package ikev2

import "time"

// Recovery after an outage. RFC 7296 §2.1 leaves the retransmission
// schedule to the implementation; the exponential back-off (2 s doubling,
// five tries) and the restart back-off (5 s doubling up to 2 min) are right
// for a peer that is gone, and wrong once it is back: after a long outage
// the next transmission may be a minute or two away. Two signs cut them
// short:
//
//   - traffic is waiting for the tunnel ([Session.Acquire], from the
//     dataplane's count of packets dropped for want of an SA): an active
//     session starts at once, or sends its IKE_SA_INIT or IKE_AUTH request
//     again now rather than at the next, doubled timeout, or, out of
//     retransmissions, gives up and starts afresh now;
//   - the peer is heard from: an authenticated message on any IKE SA, or a
//     well-formed IKE_SA_INIT request from its address. Every outstanding
//     request is sent again now, and a restart waiting for its back-off
//     comes within stirGrace (time for the peer's own attempt, which may
//     make ours unnecessary, to complete first).
//
// A request is brought forward at most once per kickInterval and each time
// counts as a retransmission, so the give-up after RetransmitTries still
// comes; the IKE_SA_INIT request that can be spoofed costs an attacker one
// datagram per second from us at most.

//
// Neither helps an active side that has no traffic of its own while the
// passive peer's hosts wait (an active/passive pair after a long outage:
// 24 s to recover after 200 s, with the doubling schedule). So while an
// IKE SA is being set up, its requests are retransmitted at most
// setupRetransmitLimit apart (as strongSwan's retransmit_limit), and an
// attempt that nobody answered at all is followed by a new one after
// silentRestartDelay, without back-off: the peer is silent, not refusing,
// and a silent peer costs one cached datagram per setupRetransmitLimit and
// one key exchange per attempt (about 30 s). An attempt the peer answered
// with an error keeps the doubling restart back-off.

const (
	kickInterval         = time.Second
	stirGrace            = 2 * time.Second
	setupRetransmitLimit = 6 * time.Second
	silentRestartDelay   = time.Second
)

// Acquire tells an active session that traffic is waiting for the Child SA
// (the dataplane drops it for want of an SA): if the session is waiting to
// start again after a failure, it starts now instead of at the end of its
// back-off; if its IKE_SA_INIT or IKE_AUTH request is waiting for an
// answer, it is sent again now (or, after the last retransmission, the
// attempt is given up and a new one started). A session whose established
// IKE SA has no Child SA (the peer deleted it alone, not the operator
// here: DeleteChild) creates one with
// CREATE_CHILD_SA, in either role (§1.3.1). A passive session otherwise,
// or one with an established IKE SA and its Child SA, ignores it. The
// runner calls it at most every few seconds.
func (s *Session) Acquire(now time.Time) {
	if s.closed {
		return
	}
	if sa := s.sa; sa != nil && sa.state == stateEstablished && !sa.retired && !sa.redundant &&
		sa.child == nil && !sa.childHeld && sa.childRekey == nil && sa.ikeRekey == nil {
		s.startChildExchange(sa, nil, s.espGroup(), now)
		return
	}
	if s.cfg.Role != RoleActive || !s.started {
		return
	}
	if s.sa == nil {
		if !s.restartAt.IsZero() && now.Before(s.restartAt) {
			s.restartAt = now
		}
		return
	}
	if sa := s.sa; sa.state != stateEstablished {
		if r := sa.req; r != nil && r.tries >= s.cfg.RetransmitTries && now.Sub(r.last) >= kickInterval {
			// Out of retransmissions while traffic waits: give up now and
			// start afresh rather than wait out the last, longest timeout.
			s.giveUp(sa, r, now)
			if s.sa == nil && !s.restartAt.IsZero() {
				s.restartAt = time.Time{}
				s.initiate(now)
			}
			return
		}
		s.kick(sa, now)
	}
}

// pathWorks is called when an authenticated message arrived on sa: the
// outstanding requests of the session's IKE SAs go again now, except the
// one this message answers.
func (s *Session) pathWorks(sa *ikeSA, response bool, now time.Time) {
	for _, o := range [...]*ikeSA{s.sa, s.own, s.old} {
		if o != nil && !(o == sa && response) {
			s.kick(o, now)
		}
	}
}

// peerStirs is called when a well-formed IKE_SA_INIT request from the
// peer's address was answered.
func (s *Session) peerStirs(now time.Time) {
	if s.sa == nil && !s.restartAt.IsZero() {
		if t := now.Add(stirGrace); t.Before(s.restartAt) {
			s.restartAt = t
		}
	}
	for _, o := range [...]*ikeSA{s.sa, s.own, s.old} {
		if o != nil {
			s.kick(o, now)
		}
	}
}

// kick sends the outstanding request of sa again now, if it was last sent
// at least kickInterval ago and has retransmissions left.
func (s *Session) kick(sa *ikeSA, now time.Time) {
	r := sa.req
	if r == nil || sa.state == stateDead || now.Sub(r.last) < kickInterval || !now.Before(r.deadline) || r.tries >= s.cfg.RetransmitTries {
		return
	}
	r.tries++
	s.transmit(sa, r, now)
}
