package ikev2

import (
	"time"
)

// INFORMATIONAL (RFC 7296 §1.4): liveness checks (DPD, §2.4), DELETE of
// Child SAs and of the IKE SA in both directions (§1.4.1), and answering
// whatever else the peer sends.
//
//	HDR, SK {[N+], [D+], [CP]} -->
//	<-- HDR, SK {[N+], [D+], [CP]}

// receiveInformational answers an INFORMATIONAL request.
func (s *Session) receiveInformational(sa *ikeSA, hdr Header, payloads []Payload, now time.Time) {
	var resp []Payload
	deleteIKE, authFailed, childGone := false, false, false
	for _, p := range payloads {
		switch p := p.(type) {
		case *DeletePayload:
			switch p.Protocol {
			case ProtocolIKE:
				deleteIKE = true
			case ProtocolESP:
				// The SPIs are the peer's inbound ones, our outbound
				// (§3.11); answer with our inbound SPI of the pair.
				var ours []uint32
				for _, spi := range p.SPIs {
					if c := sa.child; c != nil && spi == c.outSPI {
						ours = append(ours, c.inSPI)
						childGone = true
						continue
					}
					// Replaced by a rekey (or the redundant SA of a
					// collision, §2.8.1): the peer removes it. After an
					// IKE SA rekey it may sit on the new IKE SA; it is
					// looked for only there (L1: no IKE SA reaches the
					// Child SAs of another).
					if c := s.findExtra(sa, spi); c != nil && s.takeExtra(sa, c) {
						ours = append(ours, c.inSPI)
						s.retired(c)
						s.childGone(c, "rekeyed")
					}
				}
				if len(ours) > 0 {
					resp = append(resp, &DeletePayload{Protocol: ProtocolESP, SPIs: ours})
				}
			}
		case *NotifyPayload:
			if p.NotifyType == NotifyAuthenticationFailed {
				authFailed = true
			}
		}
	}
	switch {
	case deleteIKE:
		s.respond(sa, hdr.Exchange, hdr.MessageID, nil, now)
		s.fail(sa, "peer deleted the IKE SA", nil, now)
	case authFailed:
		s.respond(sa, hdr.Exchange, hdr.MessageID, nil, now)
		s.fail(sa, "peer sent AUTHENTICATION_FAILED: it could not verify our AUTH; "+s.failedHint(), errAuthFailed, now)
	default:
		s.respond(sa, hdr.Exchange, hdr.MessageID, resp, now)
		if childGone {
			// The IKE SA stays: when traffic needs a Child SA again
			// (Acquire), CREATE_CHILD_SA makes one (§1.3.1).
			c := sa.child
			sa.child = nil
			s.childGone(c, "peer deleted the Child SA")
		}
	}
}

// lineage returns sa and the IKE SAs its Child SAs may have moved between
// by rekeying (§2.18): the one that rekeyed it, and the one it rekeyed.
func (s *Session) lineage(sa *ikeSA) []*ikeSA {
	l := []*ikeSA{sa}
	if n := sa.rekeyedTo; n != nil && n.state != stateDead {
		l = append(l, n)
	}
	for _, o := range [...]*ikeSA{s.sa, s.old} {
		if o != nil && o != sa && o.rekeyedTo == sa {
			l = append(l, o)
		}
	}
	return l
}

// findExtra returns the Child SA on its way out, of sa or its lineage,
// whose outbound SPI is spi.
func (s *Session) findExtra(sa *ikeSA, spi uint32) *childSA {
	for _, o := range s.lineage(sa) {
		for _, c := range o.extra {
			if c.outSPI == spi {
				return c
			}
		}
	}
	return nil
}

// deleteChild deletes the Child SA of sa (§1.4.1): it emits ChildSADown
// now and sends the DELETE, whose answer needs no action.
func (s *Session) deleteChild(sa *ikeSA, reason string, now time.Time) {
	c := sa.child
	if c == nil {
		return
	}
	sa.child = nil
	s.childGone(c, reason)
	s.sendRequest(sa, ExchangeInformational, []Payload{&DeletePayload{Protocol: ProtocolESP, SPIs: []uint32{c.inSPI}}},
		func(*Session, *ikeSA, []Payload, time.Time) {}, now)
}

// tickEstablished runs the timers of an established IKE SA: liveness
// check, NAT keepalive and rekeying.
func (s *Session) tickEstablished(sa *ikeSA, now time.Time) {
	if t := s.dpdAt(sa); !t.IsZero() && !now.Before(t) {
		s.sendRequest(sa, ExchangeInformational, nil, func(*Session, *ikeSA, []Payload, time.Time) {}, now)
	}
	s.tickKeepalive(sa, now)
	if sa.state == stateEstablished {
		s.tickRekey(sa, now)
	}
}

// PeerAlive tells the session that the peer proved itself alive by other
// means than IKE: ESP authenticated with the current Child SA's keys arrived
// at now. Like an IKE message it postpones the next liveness check, so a
// tunnel that carries traffic both ways is not probed (RFC 7296 §2.4: a
// check is needed only when nothing has been received; Cisco IOS calls
// this "on-demand"). A request of ours that already had to be
// retransmitted is sent again now (recovery.go): the path works again, and
// a peer that answers ESP is not given up on for want of an IKE answer
// lost while it did not.
func (s *Session) PeerAlive(now time.Time) {
	sa := s.sa
	if sa == nil || sa.state != stateEstablished {
		return
	}
	if now.After(sa.lastRecv) {
		sa.lastRecv = now
	}
	if r := sa.req; r != nil && r.tries > 0 {
		r.tries = min(r.tries, s.cfg.RetransmitTries-1)
		s.kick(sa, now)
	}
}

// dpdAt returns when the next liveness check is due: DPD after the last
// authenticated message, while no request is outstanding (its
// retransmissions are the check).
func (s *Session) dpdAt(sa *ikeSA) time.Time {
	if s.cfg.DPD <= 0 || sa.req != nil || len(sa.queue) > 0 {
		return time.Time{}
	}
	return sa.lastRecv.Add(s.cfg.DPD)
}

// establishedTimeout returns the next timer of an established IKE SA.
func (s *Session) establishedTimeout(sa *ikeSA) time.Time {
	var t time.Time
	min := func(u time.Time) {
		if !u.IsZero() && (t.IsZero() || u.Before(t)) {
			t = u
		}
	}
	min(s.dpdAt(sa))
	if sa.natLocal {
		min(sa.nextKeepalive)
	}
	min(s.rekeyTimeout(sa))
	return t
}
