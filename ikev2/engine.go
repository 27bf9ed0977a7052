package ikev2

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/greipsec/greipsec/ikev2/ikecrypto"
)

// The exchange engine (RFC 7296 §2.1-§2.3): message IDs with a window of
// one, our outstanding request and its retransmission with exponential
// back-off, the cached last response that answers a retransmitted request,
// and the protection of messages in SK (§3.14) or SKF (RFC 7383) payloads.
// The exchanges (ike_sa_init.go, ike_auth.go, informational.go) build
// payloads and process decoded ones; they never see bytes on the wire.

// saState is where an IKE SA is in its life.
type saState uint8

const (
	stateInitSent    saState = iota // initiator: IKE_SA_INIT request sent
	stateAuthSent                   // initiator: IKE_AUTH request sent
	stateInitDone                   // responder: IKE_SA_INIT answered, waiting for IKE_AUTH (half-open)
	stateEstablished                // IKE_AUTH done
	stateDead                       // gone; kept only by stale references
)

// responseHandler processes the decrypted payloads of the response to one
// of our requests.
type responseHandler func(s *Session, sa *ikeSA, payloads []Payload, now time.Time)

// request is our outstanding request.
type request struct {
	exchange  ExchangeType
	id        uint32
	datagrams [][]byte
	handle    responseHandler
	sent      time.Time // first transmission
	last      time.Time // last transmission
	deadline  time.Time
	timeout   time.Duration
	tries     int // retransmissions so far
}

// queued is a request waiting for the outstanding one to finish.
type queued struct {
	exchange ExchangeType
	payloads []Payload
	handle   responseHandler
}

// ikeSA is one IKE SA, from its IKE_SA_INIT to its end.
type ikeSA struct {
	initiator  bool
	state      saState
	spii, spir uint64
	created    time.Time
	upAt       time.Time // when IKE_AUTH completed

	// The negotiated IKE SA and its keys (§2.14).
	prop       IKEProposal
	prf        ikecrypto.PRF
	skd        []byte
	skpi, skpr []byte
	out, in    ikecrypto.SKCipher

	// IKE_SA_INIT state: our DH key, the nonces and the exact bytes of the
	// two messages, which AUTH signs (§2.15). initErr is the last error
	// notify answered to our request, reported if no valid answer comes
	// (N2); initResends counts the requests rebuilt for a COOKIE or
	// INVALID_KE_PAYLOAD answer.
	dh                ikecrypto.DH
	ni, nr            []byte
	initReq, initResp []byte
	cookie            []byte
	initErr           string
	initResends       int

	// Addresses: where we send from and to; they follow a peer behind a
	// NAT as authenticated messages arrive (followPeer, natt.go). initFrom
	// is where a responder's IKE_SA_INIT request came from (halfopen.go);
	// replyLocal and replyPeer are where the request being answered came
	// from and to, where its response goes (§2.11).
	local, peer           netip.AddrPort
	initFrom              netip.AddrPort
	replyLocal, replyPeer netip.AddrPort
	// NAT (§2.23): natLocal is set when we are behind a NAT (or fake it),
	// natPeer when the peer is (or fakes it).
	natLocal, natPeer bool
	fragment          bool // both sides sent IKEV2_FRAGMENTATION_SUPPORTED
	// peerHashes are the hashes of the peer's SIGNATURE_HASH_ALGORITHMS
	// (RFC 7427 §4), nil if it sent none; peerReq is what its CERTREQ
	// payloads asked for (cert.go).
	peerHashes    []HashAlgorithm
	peerReq       peerCertReq
	nextKeepalive time.Time

	// The exchange engine.
	nextID     uint32 // the ID of our next request
	req        *request
	queue      []queued
	peerNextID uint32   // the ID the peer's next request must carry
	lastResp   [][]byte // the response to the peer's request peerNextID-1
	haveResp   bool
	reasmReq   Reassembler // fragments of the peer's request
	reasmResp  Reassembler // fragments of the response to ours
	lastRecv   time.Time   // when an authenticated message last arrived

	// The Child SA: negotiating it (IKE_AUTH) and the established one.
	childSPI uint32 // our inbound SPI offered in IKE_AUTH
	child    *childSA
	childErr string // why the Child SA of IKE_AUTH failed, for logs
	// extra holds Child SAs on their way out: replaced by a rekey, waiting
	// for the DELETE exchange.
	extra []*childSA
	// childHeld: the operator deleted the Child SA (DeleteChild); traffic
	// does not bring it back, Initiate does.
	childHeld bool

	// Rekeying (rekey.go).
	childRekey *childRekey
	ikeRekey   *ikeRekey
	ikeRekeyAt time.Time
	retired    bool      // replaced by a rekeyed IKE SA, waiting for DELETE
	retireAt   time.Time // dropped then if the DELETE does not come
	rekeyedTo  *ikeSA    // the IKE SA that rekeyed this one (§2.18)
	// redundant marks the IKE SA that loses when both sides set one up at
	// once (crossing.go); it waits for its initiator's DELETE. reauth marks
	// our attempt to replace the current IKE SA (hint.go).
	redundant bool
	reauth    bool
	// createdSeq and upSeq order the IKE SA's creation and establishment
	// among the session's events (Session.stamp), where times may be
	// equal.
	createdSeq, upSeq uint64
	hardAt            time.Time // the hard lifetime ends (lifetime.go)
}

// localSPI returns our SPI of the IKE SA: the one we chose.
func (sa *ikeSA) localSPI() uint64 {
	if sa.initiator {
		return sa.spii
	}
	return sa.spir
}

// natPorts returns local and peer moved from port 500 to the NAT-T ports,
// where IKE goes once a NAT is seen (RFC 7296 §2.23); any other port, one
// IKE started on or one a NAT chose, stays.
func (s *Session) natPorts(local, peer netip.AddrPort) (netip.AddrPort, netip.AddrPort) {
	if local.Port() == portIKE {
		local = netip.AddrPortFrom(local.Addr(), s.cfg.NATTPort)
	}
	if peer.Port() == portIKE {
		peer = netip.AddrPortFrom(peer.Addr(), s.cfg.PeerNATTPort)
	}
	return local, peer
}

// header returns the IKE header of a message of ours on sa.
func (sa *ikeSA) header(exchange ExchangeType, id uint32, response bool) Header {
	h := Header{SPIi: sa.spii, SPIr: sa.spir, Exchange: exchange, MessageID: id}
	if sa.initiator {
		h.Flags |= FlagInitiator
	}
	if response {
		h.Flags |= FlagResponse
	}
	return h
}

// sendRequest sends a request on sa, or queues it behind the outstanding
// one (window size 1, §2.3). handle processes the response.
func (s *Session) sendRequest(sa *ikeSA, exchange ExchangeType, payloads []Payload, handle responseHandler, now time.Time) {
	if sa.req != nil {
		sa.queue = append(sa.queue, queued{exchange, payloads, handle})
		return
	}
	id := sa.nextID
	dgs, err := s.protect(sa, sa.header(exchange, id, false), payloads)
	if err != nil {
		s.fail(sa, "cannot protect a request", err, now)
		return
	}
	sa.nextID++
	sa.req = &request{exchange: exchange, id: id, datagrams: dgs, handle: handle}
	s.transmit(sa, sa.req, now)
}

// sendRequestOnce sends a request on sa without waiting for its response
// or retransmitting it, as on Close. It consumes a message ID.
func (s *Session) sendRequestOnce(sa *ikeSA, exchange ExchangeType, payloads []Payload) {
	dgs, err := s.protect(sa, sa.header(exchange, sa.nextID, false), payloads)
	if err != nil {
		return
	}
	sa.nextID++
	for _, d := range dgs {
		s.send(sa.local, sa.peer, d)
	}
}

// transmit (re)sends r and sets its retransmission timer.
func (s *Session) transmit(sa *ikeSA, r *request, now time.Time) {
	if r.tries == 0 && r.sent.IsZero() {
		r.timeout = s.cfg.RetransmitTimeout
		r.sent = now
	}
	for _, d := range r.datagrams {
		s.send(sa.local, sa.peer, d)
	}
	r.last = now
	r.deadline = now.Add(r.timeout)
}

// startQueued sends the next queued request of sa, if any.
func (s *Session) startQueued(sa *ikeSA, now time.Time) {
	if sa.req != nil || len(sa.queue) == 0 || sa.state == stateDead {
		return
	}
	q := sa.queue[0]
	sa.queue = sa.queue[1:]
	s.sendRequest(sa, q.exchange, q.payloads, q.handle, now)
}

// respond sends the response to the peer's request with ID id and caches
// it for retransmitted copies of the request (§2.1).
func (s *Session) respond(sa *ikeSA, exchange ExchangeType, id uint32, payloads []Payload, now time.Time) {
	dgs, err := s.protect(sa, sa.header(exchange, id, true), payloads)
	if err != nil {
		s.fail(sa, "cannot protect a response", err, now)
		return
	}
	sa.lastResp, sa.haveResp = dgs, true
	local, peer := sa.local, sa.peer
	if sa.replyPeer.IsValid() && sa.replyLocal.IsValid() {
		local, peer = sa.replyLocal, sa.replyPeer
	}
	for _, d := range dgs {
		s.send(local, peer, d)
	}
}

// protect encodes a message: IKE_SA_INIT in the clear, every other
// exchange in an SK payload, or in SKF fragments (RFC 7383) when both sides
// support fragmentation and the message would exceed the fragment size.
func (s *Session) protect(sa *ikeSA, h Header, payloads []Payload) ([][]byte, error) {
	if h.Exchange == ExchangeIKESAInit {
		m := Message{Header: h, Payloads: payloads}
		return [][]byte{m.Encode(nil)}, nil
	}
	if sa.out == nil {
		return nil, errors.New("ikev2: no keys to protect the message")
	}
	inner := EncodePayloadChain(nil, payloads)
	first := PayloadNone
	if len(payloads) > 0 {
		first = payloads[0].Type()
	}
	whole := HeaderLen + GenericHeaderLen + sa.out.SealedLen(len(inner))
	if sa.fragment && s.cfg.Fragmentation && whole > s.cfg.FragmentSize && h.Exchange != ExchangeIKESAInit {
		return Fragment(h, first, inner, sa.out, s.cfg.FragmentSize)
	}
	m := Message{Header: h, Payloads: []Payload{&EncryptedPayload{NextPayload: first}}}
	b, l := m.EncodeForSeal(nil, sa.out.SealedLen(len(inner)))
	copy(b[l.Data+sa.out.IVLen():], inner)
	if err := sa.out.Seal(b[l.Start:l.End], l.Data-l.Start, len(inner)); err != nil {
		return nil, err
	}
	return [][]byte{b}, nil
}

// receiveProtected handles a message of any exchange but IKE_SA_INIT: it
// sorts out message IDs, decrypts, reassembles, checks the payloads and
// hands them to the exchange's handler.
func (s *Session) receiveProtected(sa *ikeSA, msg []byte, hdr Header, local, peer netip.AddrPort, now time.Time) {
	if sa.out == nil || sa.state == stateDead {
		s.stats.UnknownSPI++
		return
	}
	// The initiator flag must name the other side (§3.1).
	if hdr.IsInitiator() == sa.initiator {
		s.stats.Malformed++
		return
	}
	// Until IKE_AUTH has authenticated the peer, an IKE SA carries IKE_AUTH
	// and nothing else (§1.2): whoever answered or sent an IKE_SA_INIT from
	// the peer's address has its keys, and must not run INFORMATIONAL or
	// CREATE_CHILD_SA on it.
	if sa.state != stateEstablished && hdr.Exchange != ExchangeIKEAuth {
		s.stats.NotAuthenticated++
		return
	}
	response := hdr.IsResponse()
	retransmit := false
	if response {
		if sa.req == nil || hdr.MessageID != sa.req.id || hdr.Exchange != sa.req.exchange {
			s.stats.OutOfWindow++
			return
		}
	} else {
		switch {
		case hdr.MessageID == sa.peerNextID:
		case hdr.MessageID+1 == sa.peerNextID && sa.haveResp:
			// A retransmitted request: answer it from the cache once its
			// integrity is checked (§2.1).
			retransmit = true
		default:
			s.stats.OutOfWindow++
			return // an old or future request: ignore (§2.3)
		}
	}

	buf := append([]byte(nil), msg...) // decrypted in place; msg is the caller's
	m, err := ParseMessage(buf)
	if err != nil || len(m.Payloads) != 1 {
		s.stats.Malformed++
		return // before authentication, drop what does not parse (§2.21)
	}
	if n, ok := m.Payloads[0].(*NotifyPayload); ok && response && n.NotifyType == NotifyInvalidIKESPI && sa == s.sa && sa.state == stateEstablished {
		// The peer does not know this IKE SA (§1.5): a hint, not proof.
		s.hinted(now)
		return
	}
	var first PayloadType
	var plain []byte
	switch sk := m.Payloads[0].(type) {
	case *EncryptedPayload:
		p, err := sa.in.Open(buf, len(buf)-len(sk.Data))
		if err != nil {
			s.stats.BadIntegrity++
			return
		}
		first, plain = sk.NextPayload, p
	case *EncryptedFragmentPayload:
		if retransmit {
			// A fragment of a retransmitted request: answer the first
			// one, once it is authenticated (RFC 7383 §2.6.1).
			if _, err := sa.in.Open(buf, len(buf)-len(sk.Data)); err != nil {
				s.stats.BadIntegrity++
				return
			}
			if sk.FragmentNumber != 1 {
				sa.lastRecv = now
				return
			}
			break
		}
		r := &sa.reasmReq
		if response {
			r = &sa.reasmResp
		}
		done, f, p, err := r.Add(buf, hdr, sk, sa.in)
		if err != nil {
			s.stats.BadIntegrity++
			return
		}
		if !done {
			return
		}
		first, plain = f, p
	default:
		s.stats.Malformed++
		return
	}

	// Authenticated: the peer is alive, the path to it works.
	sa.lastRecv = now
	s.pathWorks(sa, response, now)
	if retransmit {
		// Answered where this copy came from (§2.11); a retransmission,
		// which anyone who saw the original can replay, moves nothing
		// (§2.23).
		s.stats.Retransmits++
		s.resendResponse(sa, local, peer)
		return
	}
	// A new request that passed the message ID check, or the response to
	// ours: a peer behind a NAT may have a new mapping.
	s.followPeer(sa, local, peer)
	if !response {
		sa.replyLocal, sa.replyPeer = local, peer
	}

	payloads, err := ParsePayloadChain(first, plain)
	if err == nil {
		err = CheckPayloads(hdr.Exchange, response, true, payloads)
	}
	if err != nil {
		if response {
			s.requestDone(sa)
			s.fail(sa, fmt.Sprintf("malformed %v response from the peer", hdr.Exchange), err, now)
			return
		}
		var uc *UnsupportedCriticalError
		n := &NotifyPayload{NotifyType: NotifyInvalidSyntax}
		if errors.As(err, &uc) {
			n = uc.Notify()
		}
		sa.peerNextID++
		s.respond(sa, hdr.Exchange, hdr.MessageID, []Payload{n}, now)
		if n.NotifyType == NotifyInvalidSyntax && sa.state != stateEstablished {
			s.fail(sa, "malformed request from the peer", err, now)
		}
		return
	}

	if response {
		r := sa.req
		s.requestDone(sa)
		r.handle(s, sa, payloads, now)
		s.startQueued(sa, now)
		return
	}
	sa.peerNextID++
	switch hdr.Exchange {
	case ExchangeIKEAuth:
		s.receiveAuthRequest(sa, hdr, payloads, now)
	case ExchangeInformational:
		s.receiveInformational(sa, hdr, payloads, now)
	case ExchangeCreateChildSA:
		s.receiveCreateChildSA(sa, hdr, payloads, now)
	default:
		s.respond(sa, hdr.Exchange, hdr.MessageID, nil, now)
	}
}

// resendResponse answers a retransmitted request with the cached response.
func (s *Session) resendResponse(sa *ikeSA, local, peer netip.AddrPort) {
	for _, d := range sa.lastResp {
		s.send(local, peer, d)
	}
}

// requestDone forgets the outstanding request once its response arrived.
func (s *Session) requestDone(sa *ikeSA) {
	sa.req = nil
	sa.reasmResp.Reset()
}

// tickSA runs the timers of one IKE SA.
func (s *Session) tickSA(sa *ikeSA, now time.Time) {
	if r := sa.req; r != nil && !now.Before(r.deadline) {
		if r.tries >= s.cfg.RetransmitTries {
			s.giveUp(sa, r, now)
			return
		}
		r.tries++
		r.timeout *= 2
		if sa.state != stateEstablished && r.timeout > setupRetransmitLimit {
			r.timeout = setupRetransmitLimit // recovery.go
		}
		s.transmit(sa, r, now)
	}
	if sa.state != stateEstablished {
		return
	}
	if sa.retired {
		if !now.Before(sa.retireAt) {
			s.dropSA(sa, "", nil, now)
		}
		return
	}
	if s.tickHard(sa, now) {
		return
	}
	s.tickEstablished(sa, now)
}

// giveUp ends sa when the peer did not answer request r (§2.4). If an
// unauthenticated error answer to our IKE_SA_INIT came meanwhile (N2), that
// is what is reported.
func (s *Session) giveUp(sa *ikeSA, r *request, now time.Time) {
	what := r.exchange.String()
	if r.exchange == ExchangeInformational && sa.state == stateEstablished {
		what = "liveness check (INFORMATIONAL)"
	}
	if sa.initErr != "" && r.exchange == ExchangeIKESAInit {
		s.fail(sa, sa.initErr, fmt.Errorf("ikev2: IKE_SA_INIT failed: %s", sa.initErr), now)
		return
	}
	if sa.state != stateEstablished {
		// Nobody answered a new IKE SA: most likely the path is down.
		// Try again at once (recovery.go) rather than after a back-off
		// that would keep the tunnel down long after the path is back.
		s.silentRestart = true
	}
	s.fail(sa, fmt.Sprintf("peer did not answer %s after %d retransmissions over %v", what, r.tries, now.Sub(r.sent).Round(time.Millisecond)),
		errors.New("ikev2: peer not responding"), now)
}

// saTimeout returns the next timer of sa.
func (s *Session) saTimeout(sa *ikeSA) time.Time {
	var t time.Time
	min := func(u time.Time) {
		if !u.IsZero() && (t.IsZero() || u.Before(t)) {
			t = u
		}
	}
	if sa.req != nil {
		min(sa.req.deadline)
	}
	if sa.state == stateEstablished {
		if sa.retired {
			min(sa.retireAt)
		} else {
			min(s.establishedTimeout(sa))
			min(s.hardTimeout(sa))
		}
	}
	return t
}
