package ikev2

import (
	"bytes"
	"time"
)

// More than one IKE SA with the peer. RFC 7296 has no tie-break for two
// IKE_SA_INIT requests that cross: each side answers the other's and goes
// on with its own, so both IKE SAs reach IKE_AUTH. Aborting our own attempt
// when the peer's request arrives (as this package once did, by comparing
// nonces) let one spoofed, unauthenticated IKE_SA_INIT stop it. Here only
// authenticated IKE SAs decide anything, when the second one is
// established, as strongSwan checks for duplicates after IKE_AUTH:
//
//   - The peer's new IKE SA came with INITIAL_CONTACT and our IKE SA was
//     established before the peer's IKE_SA_INIT arrived: the peer restarted
//     and knows nothing of ours (§2.4). Ours goes at once, without DELETE.
//   - Both IKE SAs were set up by the peer: it reauthenticates, or it
//     restarted without INITIAL_CONTACT. The new one replaces the old one,
//     which waits quietly for the peer's DELETE (make before break).
//   - One was set up by each side: a crossing. Both sides see the same two
//     IKE SAs with the same nonces, so they pick the same one to keep with
//     the rule RFC 7296 §2.8.1 and §2.8.2 give for the crossed rekeys of a
//     Child SA and an IKE SA: the IKE SA whose lower nonce is the lowest is
//     redundant, and the side that initiated it deletes it. The other side
//     keeps it, retired, until that DELETE (or retiredLifetime). Its Child
//     SA is announced to the runner only if it was established first, and
//     then goes when the redundant IKE SA goes, after the kept one's Child
//     SA has replaced it.
//
// If the peer deletes the IKE SA we kept while the redundant one, set up
// by the peer and not yet announced, is still up, the redundant one is
// promoted rather than leaving the tunnel down: a peer that reauthenticates
// without INITIAL_CONTACT looks like a crossing to us.

// established marks sa established after IKE_AUTH, applies the rules above
// and emits IKESAUp. initialContact says that the peer's IKE_AUTH request
// carried INITIAL_CONTACT.
func (s *Session) established(sa *ikeSA, initialContact bool, now time.Time) {
	s.removeHalf(sa) // a half-open SA that authenticated leaves the table
	sa.state = stateEstablished
	sa.lastRecv = now
	sa.upAt = now
	sa.upSeq = s.stamp()
	sa.ikeRekeyAt = sa.rekeyTime(now, s.cfg.IKELifetime, s.cfg.IKEHardLifetime)
	sa.hardAt = s.hardTime(sa, now, s.cfg.IKELifetime, s.cfg.IKEHardLifetime)
	sa.initReq, sa.initResp = nil, nil
	// SK_pi and SK_pr only serve AUTH (§2.15).
	clear(sa.skpi)
	clear(sa.skpr)
	sa.skpi, sa.skpr = nil, nil
	s.gate.setSPI(sa.localSPI(), s.cfg.PeerAddr, false)
	if sa.natLocal {
		sa.nextKeepalive = now.Add(s.cfg.NATKeepalive)
	}
	s.everUp = true
	s.backoff = 0
	s.restartAt = time.Time{}

	cur := s.sa
	switch {
	case cur == nil || cur == sa:
		s.sa = sa
	case sa == s.own && sa.reauth:
		// Our new IKE SA replaces the current one, which the peer may have
		// lost (hint.go): make before break.
		s.own = nil
		s.sa = sa
		s.retire(cur, now)
		s.sendRequestOnce(cur, ExchangeInformational, []Payload{&DeletePayload{Protocol: ProtocolIKE}})
	case sa == s.own:
		// Our attempt completed beside the peer's IKE SA.
		s.own = nil
		s.resolveCrossing(cur, sa, now)
	case cur.state != stateEstablished:
		// The peer's IKE SA completed while our own attempt is under way:
		// ours goes on (an unauthenticated message must never stop it).
		s.own, s.sa = cur, sa
	default:
		s.replaceSA(cur, sa, initialContact, now)
	}
	if !sa.redundant {
		s.emit(IKESAUp{SPIi: sa.spii, SPIr: sa.spir, Initiator: sa.initiator, NAT: sa.nat()})
	}
}

// replaceSA decides between the current, established IKE SA cur and nw,
// the peer's IKE SA that has just authenticated.
func (s *Session) replaceSA(cur, nw *ikeSA, initialContact bool, now time.Time) {
	if initialContact && cur.upSeq < nw.createdSeq {
		// The peer restarted (§2.4, INITIAL_CONTACT): it has none of our
		// IKE SAs, whatever they are waiting for.
		const why = "the peer restarted (INITIAL_CONTACT): replaced by its new IKE SA"
		s.sa = nw
		for _, old := range [...]*ikeSA{cur, s.old} {
			if old != nil && old.upSeq < nw.createdSeq {
				old.retired = true
				s.dropSA(old, why, nil, now)
			}
		}
		return
	}
	if !cur.initiator && !nw.initiator {
		// The peer reauthenticates (§2.4), or restarted without
		// INITIAL_CONTACT: its new IKE SA replaces ours. The old Child SAs
		// go now; the old IKE SA waits quietly for a DELETE the peer may
		// still send.
		const why = "replaced by a new IKE SA from the peer (it restarted or reauthenticated)"
		for _, c := range append(cur.extra, cur.child) {
			if c != nil {
				s.childGone(c, why)
			}
		}
		cur.child, cur.extra = nil, nil
		s.sa = nw
		s.retire(cur, now)
		return
	}
	s.resolveCrossing(cur, nw, now)
}

// resolveCrossing keeps one of two IKE SAs set up at once, one by each
// side, and retires the other (see the top of this file).
func (s *Session) resolveCrossing(cur, nw *ikeSA, now time.Time) {
	s.stats.Crossings++
	keep, drop := cur, nw
	if bytes.Compare(minNonce(cur.ni, cur.nr), minNonce(nw.ni, nw.nr)) < 0 {
		keep, drop = nw, cur
	}
	s.sa = keep
	drop.redundant = true
	s.retire(drop, now)
	if drop.initiator {
		s.sendRequest(drop, ExchangeInformational, []Payload{&DeletePayload{Protocol: ProtocolIKE}},
			func(s *Session, sa *ikeSA, _ []Payload, now time.Time) {
				s.dropSA(sa, "redundant IKE SA (both sides set one up at once)", nil, now)
			}, now)
	}
}

// retire makes sa the IKE SA on its way out (s.old): it takes no new
// exchanges and is dropped at retiredLifetime if no DELETE comes first. An
// IKE SA already there goes now.
func (s *Session) retire(sa *ikeSA, now time.Time) {
	if s.old != nil && s.old != sa {
		s.dropSA(s.old, "", nil, now)
	}
	sa.retired, sa.retireAt = true, now.Add(retiredLifetime)
	sa.req, sa.queue = nil, nil
	sa.childRekey, sa.ikeRekey = nil, nil
	s.old = sa
}

// promote makes the redundant IKE SA old, set up by the peer, the current
// one again, after the peer deleted the one we kept; its Child SA, which
// the runner was not told about, is announced now.
func (s *Session) promote(old *ikeSA, now time.Time) {
	c := old.child
	if c == nil || c.announced || c.pending == nil {
		return
	}
	s.old = nil
	s.sa = old
	old.retired, old.redundant, old.retireAt = false, false, time.Time{}
	old.lastRecv = now
	s.announce(c)
	s.emit(IKESAUp{SPIi: old.spii, SPIr: old.spir, Initiator: old.initiator, NAT: old.nat()})
}
