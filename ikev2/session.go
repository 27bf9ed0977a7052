package ikev2

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/netip"
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
// initiates (RoleActive) and answers, and owns at most one established IKE
// SA with one Child SA. It is sans-I/O: datagrams come in through
// [Session.Receive], time through the now arguments, and what to send and
// what happened comes out of [Session.Output].
//
// Not safe for concurrent use: the runner serialises calls.
type Session struct {
	cfg  Config
	rand io.Reader

	// sa is the current IKE SA: being set up or established. half is a
	// responder IKE SA being set up while sa is established (the peer
	// restarted); it replaces sa once it authenticates.
	sa   *ikeSA
	half *ikeSA
	// old is an IKE SA replaced by rekeying (§2.18), until its DELETE.
	old *ikeSA

	everUp    bool // an IKE SA was established at least once
	started   bool // Start was called on an active session
	closed    bool
	restartAt time.Time // active role: start again then (zero: no)
	backoff   time.Duration
	cookies   cookieState
	keGroup   uint16 // the group of the next IKE_SA_INIT request's KE
	datagrams []Datagram
	events    []Event
}

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
	s := &Session{cfg: c, rand: rand, keGroup: c.IKEProposals[0].DH}
	if err := s.cookies.init(rand); err != nil {
		return nil, err
	}
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
	if len(c.PSK) == 0 {
		return fail("a pre-shared key is required")
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
	if c.NATKeepalive < 0 || c.IKELifetime < 0 || c.ChildLifetime < 0 || c.DPD < 0 || c.RetransmitTimeout < 0 {
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
	if len(c.LocalID.Data) == 0 {
		c.LocalID = IdentityAddr(c.LocalAddr)
	}
	if len(c.PeerID.Data) == 0 {
		c.PeerID = IdentityAddr(c.PeerAddr)
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

// Close deletes the IKE SA: it sends a DELETE for it (best effort, not
// retransmitted) and emits ChildSADown and IKESADown. The session does
// nothing afterwards.
func (s *Session) Close(now time.Time) {
	if s.closed {
		return
	}
	s.closed = true
	if sa := s.sa; sa != nil && sa.state == stateEstablished {
		s.sendRequestOnce(sa, ExchangeInformational, []Payload{&DeletePayload{Protocol: ProtocolIKE}})
	}
	s.dropSA(s.sa, "closed by the local side", nil, now)
	s.dropSA(s.half, "closed by the local side", nil, now)
	s.dropSA(s.old, "", nil, now)
	s.restartAt = time.Time{}
}

// Tick runs the timers due at now: retransmission and give-up, liveness
// checks (DPD), NAT keepalives, half-open SA expiry and the restart of an
// active session.
func (s *Session) Tick(now time.Time) {
	if s.closed {
		return
	}
	for _, sa := range []*ikeSA{s.sa, s.half, s.old} {
		if sa != nil {
			s.tickSA(sa, now)
		}
	}
	if s.cfg.Role == RoleActive && s.sa == nil && !s.restartAt.IsZero() && !now.Before(s.restartAt) {
		s.restartAt = time.Time{}
		s.initiate(now)
	}
}

// Acquire tells an active session that traffic is waiting for the Child SA
// (the dataplane drops it for want of an SA): if the session is waiting to
// start again after a failure, it starts now instead of at the end of its
// back-off. A passive session, or one with an IKE SA, ignores it.
func (s *Session) Acquire(now time.Time) {
	if s.closed || s.cfg.Role != RoleActive || s.sa != nil || s.restartAt.IsZero() {
		return
	}
	if now.Before(s.restartAt) {
		s.restartAt = now
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
	for _, sa := range []*ikeSA{s.sa, s.half, s.old} {
		if sa != nil {
			min(s.saTimeout(sa))
		}
	}
	if s.sa == nil {
		min(s.restartAt)
	}
	return t
}

// RequireCookies makes the session, as a responder, demand a COOKIE
// (RFC 7296 §2.6) before it keeps any state for an IKE_SA_INIT request.
// A runner turns it on when it sees many half-open SAs.
func (s *Session) RequireCookies(on bool) { s.cookies.required = on }

// Receive processes one IKE message (without the non-ESP marker of port
// 4500) that arrived from peer on local. Malformed and unexpected
// messages are dropped or answered as RFC 7296 §2.21 says; they never
// cause a panic.
func (s *Session) Receive(msg []byte, local, peer netip.AddrPort, now time.Time) {
	if s.closed {
		return
	}
	hdr, err := ParseHeader(msg)
	if err != nil {
		return // an unauthenticated message: drop (§2.21)
	}
	if hdr.Exchange == ExchangeIKESAInit && !hdr.IsResponse() {
		s.receiveInitRequest(msg, hdr, local, peer, now)
		return
	}
	sa := s.findSA(hdr)
	if sa == nil {
		return
	}
	if hdr.Exchange == ExchangeIKESAInit {
		if sa.initiator && sa.state == stateInitSent && hdr.MessageID == 0 {
			s.receiveInitResponse(sa, msg, hdr, local, peer, now)
		}
		return
	}
	s.receiveProtected(sa, msg, hdr, local, peer, now)
}

// findSA returns the IKE SA a message other than an IKE_SA_INIT request
// belongs to, by its SPIs.
func (s *Session) findSA(h Header) *ikeSA {
	for _, sa := range []*ikeSA{s.sa, s.half, s.old} {
		if sa == nil || sa.spii != h.SPIi {
			continue
		}
		if h.Exchange == ExchangeIKESAInit && sa.state == stateInitSent {
			return sa
		}
		if sa.spir == h.SPIr {
			return sa
		}
	}
	return nil
}

// emit queues an event.
func (s *Session) emit(e Event) { s.events = append(s.events, e) }

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
func (s *Session) scheduleRestart(now time.Time) {
	if s.cfg.Role != RoleActive || !s.started || s.closed || s.sa != nil {
		return
	}
	if s.backoff == 0 {
		s.backoff = restartMin
	} else if s.backoff *= 2; s.backoff > restartMax {
		s.backoff = restartMax
	}
	s.restartAt = now.Add(s.backoff)
}

// dropSA removes sa from the session, emitting the down events, and
// schedules the restart of an active session left without an IKE SA.
func (s *Session) dropSA(sa *ikeSA, reason string, err error, now time.Time) {
	if sa == nil || sa.state == stateDead {
		return
	}
	if sa.retired {
		// Rekeyed: its Child SAs moved to the new IKE SA; it goes quietly.
		sa.state = stateDead
		if s.old == sa {
			s.old = nil
		}
		return
	}
	for _, c := range sa.extra {
		s.emit(ChildSADown{InSPI: c.inSPI, OutSPI: c.outSPI, Reason: reason})
	}
	sa.extra = nil
	if sa.child != nil {
		s.emit(ChildSADown{InSPI: sa.child.inSPI, OutSPI: sa.child.outSPI, Reason: reason})
		sa.child = nil
	}
	if sa.childErr != "" && err == nil {
		reason += " (the Child SA had failed: " + sa.childErr + ")"
	}
	sa.state = stateDead
	sa.req = nil
	sa.queue = nil
	s.emit(IKESADown{Reason: reason, Err: err})
	if s.sa == sa {
		s.sa = nil
		if s.half != nil {
			s.sa, s.half = s.half, nil
		}
	}
	if s.half == sa {
		s.half = nil
	}
	s.scheduleRestart(now)
}

// randomBytes returns n bytes from the session's random source.
func (s *Session) randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return nil, fmt.Errorf("ikev2: random source: %w", err)
	}
	return b, nil
}
