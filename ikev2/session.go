package ikev2

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/greipsec/greipsec/ikev2/ikecrypto"
)

// Defaults for the zero values of [Config].
const (
	defaultNATKeepalive      = 20 * time.Second
	defaultIKELifetime       = 24 * time.Hour
	defaultChildLifetime     = time.Hour
	defaultRetransmitTimeout = 2 * time.Second
	defaultRetransmitTries   = 5
	defaultFragmentSize      = 1280

	// restartMin and restartMax bound the back-off of an active session
	// that lost its IKE SA before it starts again.
	restartMin = 5 * time.Second
	restartMax = 2 * time.Minute

	// halfOpenLifetime is how long a responder keeps an IKE SA that has
	// answered IKE_SA_INIT but not seen IKE_AUTH.
	halfOpenLifetime = 30 * time.Second

	// nonceLen is the length of the nonces this implementation sends
	// (RFC 7296 §2.10: at least half the PRF key size, at least 16).
	nonceLen = 32
)

// The IKE ports (RFC 7296 §2, RFC 3948 §2.2).
const (
	portIKE   = 500
	portNATT  = 4500
	ikeSPILen = 8
)

// Session is the IKE state for one peer (one tunnel) in both roles: it
// initiates (RoleActive) and answers, and owns at most one current IKE SA
// with one Child SA. It is sans-I/O: datagrams come in through
// [Session.Receive], time through the now arguments, and what to send and
// what happened comes out of [Session.Output].
//
// Not safe for concurrent use: the runner serialises calls.
type Session struct {
	cfg  Config
	rand io.Reader
	gate *Gate     // cfg.Gate, or the session's own
	gp   *gatePeer // the Gate's entry for cfg.PeerAddr

	// sa is the current IKE SA: established, or our own attempt while none
	// is. own is our own attempt while sa is another, established IKE SA:
	// the peer's, set up at the same time (crossing.go). old is an IKE SA
	// on its way out: replaced by rekeying (§2.18), by reauthentication, or
	// the redundant one of a crossing, until its DELETE. half holds the
	// half-open responder SAs, oldest first (halfopen.go).
	sa   *ikeSA
	own  *ikeSA
	old  *ikeSA
	half []*ikeSA

	everUp    bool // an IKE SA was established at least once
	started   bool // Start was called on an active session
	closed    bool
	restartAt time.Time // active role: start again then (zero: no)
	backoff   time.Duration
	// silentRestart: the last attempt got no answer at all; the next
	// restart comes after silentRestartDelay, without back-off.
	silentRestart bool
	keGroup       uint16    // the group of the next IKE_SA_INIT request's KE
	lastNote      time.Time // when an event about unauthenticated input was last emitted
	// lastHintSent and lastReauth rate-limit the one-way notifications of
	// RFC 7296 §1.5 we send and the reauthentications they make us do
	// (hint.go).
	lastHintSent, lastReauth time.Time
	seq                      uint64 // see stamp
	datagrams                []Datagram
	events                   []Event
	stats                    SessionStats
}

// stamp returns the next number of a sequence that orders the creation and
// establishment of the session's IKE SAs.
func (s *Session) stamp() uint64 {
	s.seq++
	return s.seq
}

// SessionStats count what a Session did with what it received, by reason.
// Unauthenticated input is counted, never logged one by one.
type SessionStats struct {
	InitRequests     uint64 // IKE_SA_INIT requests looked at
	InitRetransmits  uint64 // IKE_SA_INIT requests answered again from the cache
	CookiesSent      uint64 // IKE_SA_INIT requests answered with a COOKIE (§2.6)
	InitBlocked      uint64 // dropped: too many half-open IKE SAs
	InitRejected     uint64 // answered with an error notify, without state
	HalfOpenCreated  uint64 // half-open IKE SAs created
	HalfOpenExpired  uint64 // dropped after halfOpenLifetime without IKE_AUTH
	Malformed        uint64 // dropped: not a well-formed message for this session
	UnknownSPI       uint64 // dropped: no IKE SA with these SPIs
	BadIntegrity     uint64 // dropped: the SK or SKF integrity check failed
	OutOfWindow      uint64 // dropped: a message ID neither expected nor the last one
	Retransmits      uint64 // retransmitted requests answered from the cache
	NotAuthenticated uint64 // dropped: not IKE_AUTH on an IKE SA not yet authenticated
	ErrorAnswers     uint64 // unauthenticated error answers to our IKE_SA_INIT
	Crossings        uint64 // IKE SAs set up by both sides at once, resolved
	RekeyCollisions  uint64 // IKE SAs rekeyed by both sides at once, resolved (§2.8.2)
	Hints            uint64 // INVALID_SPI / INVALID_IKE_SPI hints that the peer lost state (§1.5)
}

// Stats returns the session's counters.
func (s *Session) Stats() SessionStats { return s.stats }

// NewSession validates cfg and returns a session for it. The session
// keeps a copy of cfg with the zero durations replaced by their defaults.
// rand is the source of SPIs, nonces and private keys; nil means
// crypto/rand.
func NewSession(cfg *Config, rand io.Reader) (*Session, error) {
	if cfg == nil {
		return nil, errors.New("ikev2: nil config")
	}
	c := *cfg
	if err := checkConfig(&c); err != nil {
		return nil, err
	}
	if rand == nil {
		rand = cryptoRand
	}
	s := &Session{cfg: c, rand: rand, keGroup: c.IKEProposals[0].DH, gate: c.Gate}
	if s.gate == nil {
		g, err := NewGate(GateConfig{Rand: rand})
		if err != nil {
			return nil, err
		}
		s.gate = g
	}
	s.gp = s.gate.register(c.PeerAddr)
	return s, nil
}

var cryptoRand io.Reader = rand.Reader

func checkConfig(c *Config) error {
	name := c.Name
	if name == "" {
		name = "tunnel"
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("ikev2: %s: "+format, append([]any{name}, args...)...)
	}
	if c.Role != RoleActive && c.Role != RolePassive {
		return fail("role %d is neither active nor passive", c.Role)
	}
	if !c.LocalAddr.IsValid() || !c.PeerAddr.IsValid() {
		return fail("local and peer addresses are required")
	}
	c.LocalAddr, c.PeerAddr = c.LocalAddr.Unmap(), c.PeerAddr.Unmap()
	if c.LocalAddr.Is4() != c.PeerAddr.Is4() {
		return fail("local address %v and peer address %v are not of the same family", c.LocalAddr, c.PeerAddr)
	}
	switch {
	case len(c.PSK) == 0 && c.PubKey == nil:
		return fail("a pre-shared key or a private key is required")
	case len(c.PSK) > 0 && c.PubKey != nil:
		return fail("both a pre-shared key and a private key; authenticate with one")
	case c.PubKey != nil:
		pk, err := checkPubKeyAuth(c.PubKey)
		if err != nil {
			return fail("%v", err)
		}
		c.PubKey = pk
	}
	if len(c.IKEProposals) == 0 {
		return fail("no IKE proposals")
	}
	for i, p := range c.IKEProposals {
		if p.Encr == uint16(EncrNull) {
			return fail("IKE proposal %d: ENCR_NULL cannot protect the IKE SA", i+1)
		}
		if _, err := ikecrypto.NewPRF(p.PRF); err != nil {
			return fail("IKE proposal %d: %v", i+1, err)
		}
		if _, _, err := ikecrypto.KeyLens(p.Encr, p.KeyBits, p.Integ); err != nil {
			return fail("IKE proposal %d: %v", i+1, err)
		}
		if !ikecrypto.SupportedGroup(p.DH) {
			return fail("IKE proposal %d: unsupported key exchange group %d", i+1, p.DH)
		}
	}
	if len(c.ESPProposals) == 0 {
		return fail("no ESP proposals")
	}
	for i, p := range c.ESPProposals {
		if !espEncr(p.Encr) {
			return fail("ESP proposal %d: encryption %d is not AES-GCM-16, ChaCha20-Poly1305, AES-CBC or NULL", i+1, p.Encr)
		}
		if _, _, err := ikecrypto.KeyLens(p.Encr, p.KeyBits, p.Integ); err != nil {
			return fail("ESP proposal %d: %v", i+1, err)
		}
		if p.DH != 0 && !ikecrypto.SupportedGroup(p.DH) {
			return fail("ESP proposal %d: unsupported PFS group %d", i+1, p.DH)
		}
	}
	if c.Mode > ModeTunnel {
		return fail("unknown mode %d", c.Mode)
	}
	if len(c.LocalTS) == 0 || len(c.PeerTS) == 0 {
		return fail("local and peer traffic selectors are required")
	}
	for _, ts := range append(append([]Selector(nil), c.LocalTS...), c.PeerTS...) {
		if !ts.Prefix.IsValid() {
			return fail("invalid traffic selector prefix")
		}
	}
	if c.NATKeepalive < 0 || c.IKELifetime < 0 || c.ChildLifetime < 0 || c.DPD < 0 || c.RetransmitTimeout < 0 ||
		c.IKEHardLifetime < 0 || c.ChildHardLifetime < 0 {
		return fail("negative duration")
	}
	if c.RetransmitTries < 0 {
		return fail("negative retransmission count")
	}
	if c.FragmentSize != 0 && c.FragmentSize < 256 {
		return fail("fragment size %d < 256", c.FragmentSize)
	}
	if c.NATTPort == portIKE || c.PeerNATTPort == portIKE {
		return fail("the NAT-T port cannot be %d: IKE without the non-ESP marker uses it", portIKE)
	}
	if c.NATTPort == 0 {
		c.NATTPort = portNATT
	}
	if c.PeerNATTPort == 0 {
		c.PeerNATTPort = portNATT
	}
	if c.NATKeepalive == 0 {
		c.NATKeepalive = defaultNATKeepalive
	}
	if c.IKELifetime == 0 {
		c.IKELifetime = defaultIKELifetime
	}
	if c.ChildLifetime == 0 {
		c.ChildLifetime = defaultChildLifetime
	}
	if c.RetransmitTimeout == 0 {
		c.RetransmitTimeout = defaultRetransmitTimeout
	}
	if c.RetransmitTries == 0 {
		c.RetransmitTries = defaultRetransmitTries
	}
	if c.FragmentSize == 0 {
		c.FragmentSize = defaultFragmentSize
	}
	if c.IKEHardLifetime != 0 && c.IKEHardLifetime <= c.IKELifetime {
		return fail("IKE SA hard lifetime %v is not longer than its lifetime %v", c.IKEHardLifetime, c.IKELifetime)
	}
	if c.ChildHardLifetime != 0 && c.ChildHardLifetime <= c.ChildLifetime {
		return fail("Child SA hard lifetime %v is not longer than its lifetime %v", c.ChildHardLifetime, c.ChildLifetime)
	}
	if len(c.LocalID.Data) == 0 {
		c.LocalID = IdentityAddr(c.LocalAddr)
	}
	if len(c.PeerID.Data) == 0 {
		c.PeerID = IdentityAddr(c.PeerAddr)
	}
	if p := c.PubKey; p != nil && len(p.Certs) > 0 {
		// Our certificate must name our ID (the peer checks it); a DN ID
		// goes on the wire as the certificate's own subject, so that a
		// peer comparing octets agrees.
		if err := certMatchesID(p.Certs[0], c.LocalID); err != nil {
			return fail("our certificate does not name our ID %v: %v", c.LocalID, strings.TrimPrefix(err.Error(), "its "))
		}
		if c.LocalID.IDType == IDDERASN1DN {
			c.LocalID = Identity{IDType: IDDERASN1DN, Data: clone(p.Certs[0].RawSubject)}
		}
	}
	if c.PubKey != nil && c.PubKey.PeerKey == nil && c.PeerID.IDType == IDKeyID {
		return fail("a KEY_ID peer ID cannot be checked against a certificate; use the peer's FQDN, address, e-mail or DN")
	}
	c.PSK = append([]byte(nil), c.PSK...)
	c.IKEProposals = append([]IKEProposal(nil), c.IKEProposals...)
	c.ESPProposals = append([]ESPProposal(nil), c.ESPProposals...)
	c.LocalTS = append([]Selector(nil), c.LocalTS...)
	c.PeerTS = append([]Selector(nil), c.PeerTS...)
	return nil
}

// Start starts the session: an active session initiates the IKE SA now, a
// passive one waits for the peer.
func (s *Session) Start(now time.Time) {
	if s.closed || s.cfg.Role != RoleActive || s.sa != nil {
		return
	}
	s.started = true
	s.initiate(now)
}

// Established reports whether an IKE SA is established.
func (s *Session) Established() bool {
	return s.sa != nil && s.sa.state == stateEstablished
}

// Output returns the datagrams to send and the events that happened since
// the last call, and forgets them.
func (s *Session) Output() ([]Datagram, []Event) {
	d, e := s.datagrams, s.events
	s.datagrams, s.events = nil, nil
	return d, e
}

// Close deletes the IKE SAs: it sends a DELETE for each established one
// (best effort, not retransmitted) and emits ChildSADown and IKESADown. It
// withdraws the session from its Gate and wipes the keys it holds (see
// wipe.go for what Go cannot wipe). The session does nothing afterwards.
func (s *Session) Close(now time.Time) {
	if s.closed {
		return
	}
	s.closed = true
	for _, sa := range []*ikeSA{s.sa, s.own, s.old} {
		if sa != nil && sa.state == stateEstablished {
			s.sendRequestOnce(sa, ExchangeInformational, []Payload{&DeletePayload{Protocol: ProtocolIKE}})
		}
	}
	s.dropSA(s.own, "closed by the local side", nil, now)
	s.dropSA(s.old, "", nil, now)
	s.dropSA(s.sa, "closed by the local side", nil, now)
	for len(s.half) > 0 {
		s.dropSA(s.half[0], "", nil, now)
	}
	s.restartAt = time.Time{}
	s.gate.release(s.gp)
	clear(s.cfg.PSK)
}

// Tick runs the timers due at now: retransmission and give-up, liveness
// checks (DPD), NAT keepalives, rekeying and hard lifetimes, half-open SA
// expiry and the restart of an active session.
func (s *Session) Tick(now time.Time) {
	if s.closed {
		return
	}
	for _, sa := range []*ikeSA{s.sa, s.own, s.old} {
		if sa != nil {
			s.tickSA(sa, now)
		}
	}
	s.tickHalf(now)
	if s.cfg.Role == RoleActive && s.sa == nil && !s.restartAt.IsZero() && !now.Before(s.restartAt) {
		s.restartAt = time.Time{}
		s.initiate(now)
	}
}

// NextTimeout returns when [Session.Tick] must be called next; zero means
// no timer is running.
func (s *Session) NextTimeout() time.Time {
	var t time.Time
	min := func(u time.Time) {
		if !u.IsZero() && (t.IsZero() || u.Before(t)) {
			t = u
		}
	}
	if s.closed {
		return t
	}
	for _, sa := range []*ikeSA{s.sa, s.own, s.old} {
		if sa != nil {
			min(s.saTimeout(sa))
		}
	}
	min(s.halfTimeout())
	if s.sa == nil {
		min(s.restartAt)
	}
	return t
}

// RequireCookies makes the session, as a responder, demand a COOKIE
// (RFC 7296 §2.6) in every IKE_SA_INIT request before it keeps any state
// for it or does any key exchange. Without it, cookies are demanded as the
// number of half-open SAs grows (see [GateConfig]).
func (s *Session) RequireCookies(on bool) { s.gp.forceCookies.Store(on) }

// Receive processes one IKE message (without the non-ESP marker of port
// 4500) that arrived from peer on local. Malformed and unexpected
// messages are dropped or answered as RFC 7296 §2.21 says, and counted
// (see [Session.Stats]); they never cause a panic, and unauthenticated ones
// never change an established IKE SA or our own attempt to set one up.
func (s *Session) Receive(msg []byte, local, peer netip.AddrPort, now time.Time) {
	if s.closed {
		return
	}
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	hdr, err := ParseHeader(msg)
	if err != nil {
		// §2.5: a request of a higher major version gets our version in
		// an INVALID_MAJOR_VERSION answer; nothing is kept.
		var ve *InvalidMajorVersionError
		if errors.As(err, &ve) && ve.Major > 2 && isInitRequest(ve.Header) && peer.Addr() == s.cfg.PeerAddr {
			if r := versionReply(ve.Header); len(r) <= len(msg) { // never an amplifier
				s.stats.InitRejected++
				s.send(local, peer, r)
				return
			}
		}
		s.stats.Malformed++
		return // an unauthenticated message: drop (§2.21)
	}
	if hdr.Exchange == ExchangeIKESAInit && !hdr.IsResponse() {
		s.receiveInitRequest(msg, hdr, local, peer, now)
		return
	}
	sa := s.findSA(hdr)
	if sa == nil {
		if isOneWayInvalidSPI(hdr) {
			s.receiveInvalidSPI(msg, peer, now)
			return
		}
		s.stats.UnknownSPI++
		s.unknownIKESPI(hdr, local, peer, now)
		return
	}
	if hdr.Exchange == ExchangeIKESAInit {
		if sa.initiator && sa.state == stateInitSent && hdr.MessageID == 0 {
			s.receiveInitResponse(sa, msg, hdr, local, peer, now)
		} else {
			s.stats.Malformed++
		}
		return
	}
	s.receiveProtected(sa, msg, hdr, local, peer, now)
}

// findSA returns the IKE SA a message other than an IKE_SA_INIT request
// belongs to, by its SPIs.
func (s *Session) findSA(h Header) *ikeSA {
	match := func(sa *ikeSA) bool {
		if sa == nil || sa.spii != h.SPIi {
			return false
		}
		if h.Exchange == ExchangeIKESAInit && sa.initiator && sa.state == stateInitSent {
			return true // the response to our request brings SPIr
		}
		return sa.spir == h.SPIr
	}
	for _, sa := range [...]*ikeSA{s.sa, s.own, s.old} {
		if match(sa) {
			return sa
		}
	}
	for _, sa := range s.half {
		if match(sa) {
			return sa
		}
	}
	return nil
}

// emit queues an event.
func (s *Session) emit(e Event) { s.events = append(s.events, e) }

// noteInterval is the least time between two events caused by
// unauthenticated input (an IKE_SA_INIT we cannot accept, a half-open SA
// that fails to authenticate): enough to tell an operator what is wrong,
// too few to flood a log.
const noteInterval = 10 * time.Second

// note emits e unless another such event was emitted less than
// noteInterval ago.
func (s *Session) note(e Event, now time.Time) {
	if !s.lastNote.IsZero() && now.Sub(s.lastNote) < noteInterval {
		return
	}
	s.lastNote = now
	s.emit(e)
}

// send queues a datagram.
func (s *Session) send(local, peer netip.AddrPort, b []byte) {
	s.datagrams = append(s.datagrams, Datagram{Local: local, Peer: peer, Data: b})
}

// fail ends sa after an error: it emits ChildSADown for its Child SAs and
// IKESADown with reason and err. An active session starts again after a
// back-off (see dropSA).
func (s *Session) fail(sa *ikeSA, reason string, err error, now time.Time) {
	s.dropSA(sa, reason, err, now)
}

// scheduleRestart sets the restart timer of an active session that has no
// IKE SA left: 5 s, doubling up to 2 min while attempts keep failing.
// Traffic waiting for the tunnel and signs of life from the peer cut it
// short (recovery.go).
func (s *Session) scheduleRestart(now time.Time) {
	if s.cfg.Role != RoleActive || !s.started || s.closed || s.sa != nil {
		return
	}
	if s.silentRestart {
		// The peer never answered (recovery.go): no back-off.
		s.silentRestart = false
		s.backoff = 0
		s.restartAt = now.Add(silentRestartDelay)
		return
	}
	if s.backoff == 0 {
		s.backoff = restartMin
	} else if s.backoff *= 2; s.backoff > restartMax {
		s.backoff = restartMax
	}
	s.restartAt = now.Add(s.backoff)
}

// dropSA removes sa from the session, wherever it is, and wipes its keys.
// It emits ChildSADown for the Child SAs the runner was told about, and,
// for the current IKE SA, IKESADown. An IKE SA that was not the current
// one (our attempt beside the current SA, a retired or half-open one) goes
// without IKESADown; a half-open one that failed to authenticate gets a
// rate-limited one. When the current SA goes, our own attempt, if any,
// takes its place; an active session left without an IKE SA starts again
// after a back-off.
func (s *Session) dropSA(sa *ikeSA, reason string, err error, now time.Time) {
	if sa == nil || sa.state == stateDead {
		return
	}
	wasHalf := s.removeHalf(sa)
	current := sa == s.sa && !sa.retired
	for _, c := range sa.extra {
		s.childGone(c, reason)
	}
	sa.extra = nil
	if c := sa.child; c != nil {
		s.childGone(c, reason)
		sa.child = nil
	}
	if sa.childErr != "" && err == nil {
		reason += " (the Child SA had failed: " + sa.childErr + ")"
	}
	sa.state = stateDead
	sa.req = nil
	sa.queue = nil
	switch {
	case current:
		s.emit(IKESADown{Reason: reason, Err: err})
	case wasHalf && reason != "":
		s.note(IKESADown{Reason: "half-open IKE SA: " + reason, Err: err}, now)
	}
	switch sa {
	case s.sa:
		s.sa = nil
		switch {
		case s.own != nil:
			s.sa, s.own = s.own, nil
		case s.old != nil && s.old.redundant && !s.old.initiator && s.old.state == stateEstablished:
			s.promote(s.old, now)
		}
	case s.own:
		s.own = nil
	case s.old:
		s.old = nil
	}
	s.forget(sa)
	s.scheduleRestart(now)
}

// childGone emits ChildSADown for c if the runner was told it is up.
func (s *Session) childGone(c *childSA, reason string) {
	if c.announced {
		s.emit(ChildSADown{InSPI: c.inSPI, OutSPI: c.outSPI, Reason: reason})
	}
	c.wipe()
}

// forget withdraws the SPI of a dead IKE SA from the Gate and wipes its
// keys.
func (s *Session) forget(sa *ikeSA) {
	if spi := sa.localSPI(); spi != 0 {
		s.gate.removeSPI(spi)
	}
	sa.wipe()
}

// randomBytes returns n bytes from the session's random source.
func (s *Session) randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return nil, fmt.Errorf("ikev2: random source: %w", err)
	}
	return b, nil
}
