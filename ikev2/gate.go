package ikev2

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// The Gate is the pre-authentication defence of IKE (RFC 7296 §2.6, §2.21,
// RFC 8019): it sorts the datagrams that arrive on the IKE ports before any
// Session sees them, the way strongSwan's receiver does before it checks an
// IKE SA out (cookie_threshold, block_threshold, init_limit_half_open) and
// wireguard-go does with its handshake queue:
//
//   - a message of an IKE SA we have (its SPI is ours and the peer's
//     address matches) goes to the session's priority queue, which a flood
//     of IKE_SA_INIT requests cannot fill: liveness checks, rekeys and
//     DELETEs of live tunnels are never dropped behind one;
//   - an IKE_SA_INIT request, or a message of a half-open IKE SA, goes to
//     the session's init queue, unless the half-open SAs of that peer (or
//     of all peers) are past the cookie threshold and it carries no valid
//     COOKIE, when the Gate answers it with one at once, statelessly; past
//     the block threshold new requests are dropped;
//   - an IKE_SA_INIT request with a major version above 2 is answered with
//     INVALID_MAJOR_VERSION (§2.5), statelessly;
//   - everything else is dropped and counted.
//
// The Gate keeps no state per message: it reads the half-open counts and
// SPIs that the sessions publish, and a cookie secret that changes every
// two minutes. Sessions repeat its checks (a session works without a
// Gate), so the Gate is an early filter, not the only one.
//
// A Gate is safe for concurrent use: receive goroutines call Admit while
// session goroutines update it.

// Verdict is what the runner does with a datagram the Gate looked at.
type Verdict uint8

const (
	// VerdictDrop: drop it; the Gate counted why.
	VerdictDrop Verdict = iota
	// VerdictEstablished: a message of an IKE SA we set up or have:
	// queue it for the session on the priority queue.
	VerdictEstablished
	// VerdictInit: an IKE_SA_INIT request to process, or a message of a
	// half-open IKE SA: queue it for the session on the init queue, which
	// may be dropped from when full (then call [Gate.QueueFull]).
	VerdictInit
	// VerdictReply: answer with the returned datagram (COOKIE or
	// INVALID_MAJOR_VERSION), from the local address and port the request
	// arrived on, to the address and port it came from; keep nothing.
	VerdictReply
)

func (v Verdict) String() string {
	switch v {
	case VerdictDrop:
		return "drop"
	case VerdictEstablished:
		return "established"
	case VerdictInit:
		return "init"
	case VerdictReply:
		return "reply"
	}
	return "verdict(?)"
}

// Defaults of [GateConfig], after strongSwan's charon settings.
const (
	DefaultCookieThreshold     = 10   // charon.cookie_threshold
	DefaultCookieThresholdPeer = 3    // charon.cookie_threshold_ip
	DefaultBlockThresholdPeer  = 8    // charon.block_threshold is 5; one peer's table here
	DefaultHalfOpenLimit       = 1000 // charon.init_limit_half_open is 0 (off)
	DefaultOverloadHold        = 10 * time.Second
	DefaultMaxInitLen          = 8192 // RFC 7296 §2: 3000 octets SHOULD be accepted
)

// GateConfig holds the thresholds of a [Gate]; zero fields take the
// defaults above.
type GateConfig struct {
	// CookieThreshold is the number of half-open IKE SAs, over all peers,
	// from which every new IKE_SA_INIT request must carry a COOKIE.
	CookieThreshold int
	// CookieThresholdPeer is the same for the half-open SAs of one peer
	// address.
	CookieThresholdPeer int
	// BlockThresholdPeer is the number of half-open SAs of one peer address
	// from which its new IKE_SA_INIT requests are dropped, valid COOKIE or
	// not. It is also the size of a Session's half-open table.
	BlockThresholdPeer int
	// HalfOpenLimit is the number of half-open SAs over all peers from which
	// new IKE_SA_INIT requests are dropped.
	HalfOpenLimit int
	// OverloadHold is how long a peer must send cookies after its init queue
	// overflowed ([Gate.QueueFull]).
	OverloadHold time.Duration
	// MaxInitLen is the largest IKE_SA_INIT request accepted (IKE_SA_INIT
	// is never fragmented, RFC 7383 §2.5.3): it bounds what a flood of
	// them holds in a queue.
	MaxInitLen int
	// Rand is the source of the cookie secrets; nil means crypto/rand.
	Rand io.Reader
}

// Gate sorts IKE datagrams before they reach a Session; see the top of
// gate.go. Create it with [NewGate] and give it to the sessions in
// [Config.Gate].
type Gate struct {
	cfg     GateConfig
	cookies cookieJar

	halfOpen atomic.Int64 // half-open IKE SAs of all sessions

	mu    sync.RWMutex
	peers map[netip.Addr]*gatePeer
	spis  map[uint64]gateSPI

	c gateCounters
}

// gatePeer is what the Gate knows of one peer address. Its fields are
// atomics: the session writes them, Admit reads them.
type gatePeer struct {
	addr          netip.Addr
	halfOpen      atomic.Int64
	overloadUntil atomic.Int64 // unix nanoseconds; cookies required before
	forceCookies  atomic.Bool  // Session.RequireCookies
	sessions      int          // registered sessions; guarded by Gate.mu
}

// gateSPI is an IKE SPI of ours: the local SPI of an IKE SA, with the
// address of its peer.
type gateSPI struct {
	peer     netip.Addr
	halfOpen bool
}

// gateCounters count the verdicts of Admit by reason.
type gateCounters struct {
	established, init                   atomic.Uint64
	cookiesSent, versionRejected        atomic.Uint64
	malformed, unknownPeer, unknownSPI  atomic.Uint64
	blocked                             atomic.Uint64
	queueFullEstablished, queueFullInit atomic.Uint64
}

// GateStats are the Gate's counters: what Admit decided, by reason.
type GateStats struct {
	Established     uint64 // to the priority queue
	Init            uint64 // to the init queue
	CookiesSent     uint64 // IKE_SA_INIT requests answered with a COOKIE
	VersionRejected uint64 // answered with INVALID_MAJOR_VERSION
	Malformed       uint64 // dropped: not an IKE message we can read, or an oversized IKE_SA_INIT
	UnknownPeer     uint64 // dropped: from an address no session has as peer
	UnknownSPI      uint64 // dropped: for an IKE SA we do not have
	Blocked         uint64 // dropped: the peer or all peers have too many half-open SAs
	// Dropped by the runner because a session's queue was full.
	QueueFullEstablished, QueueFullInit uint64
}

// NewGate returns a Gate with the thresholds of cfg.
func NewGate(cfg GateConfig) (*Gate, error) {
	if cfg.CookieThreshold < 0 || cfg.CookieThresholdPeer < 0 || cfg.BlockThresholdPeer < 0 || cfg.HalfOpenLimit < 0 || cfg.OverloadHold < 0 || cfg.MaxInitLen < 0 {
		return nil, errors.New("ikev2: gate: negative threshold")
	}
	if cfg.CookieThreshold == 0 {
		cfg.CookieThreshold = DefaultCookieThreshold
	}
	if cfg.CookieThresholdPeer == 0 {
		cfg.CookieThresholdPeer = DefaultCookieThresholdPeer
	}
	if cfg.BlockThresholdPeer == 0 {
		cfg.BlockThresholdPeer = DefaultBlockThresholdPeer
	}
	if cfg.HalfOpenLimit == 0 {
		cfg.HalfOpenLimit = DefaultHalfOpenLimit
	}
	if cfg.OverloadHold == 0 {
		cfg.OverloadHold = DefaultOverloadHold
	}
	if cfg.MaxInitLen == 0 {
		cfg.MaxInitLen = DefaultMaxInitLen
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	g := &Gate{cfg: cfg, peers: make(map[netip.Addr]*gatePeer), spis: make(map[uint64]gateSPI)}
	if err := g.cookies.init(cfg.Rand); err != nil {
		return nil, err
	}
	return g, nil
}

// Admit looks at one datagram that arrived from peer on local (msg without
// the non-ESP marker of port 4500) and says what to do with it; with
// VerdictReply, reply is the datagram to answer with. Admit does no key
// exchange and keeps nothing of msg; it is cheap enough to run on the
// socket's receive goroutine for every datagram.
func (g *Gate) Admit(msg []byte, local, peer netip.AddrPort, now time.Time) (verdict Verdict, reply []byte) {
	addr := peer.Addr().Unmap()
	hdr, err := ParseHeader(msg)
	if err != nil {
		var ve *InvalidMajorVersionError
		if errors.As(err, &ve) && ve.Major > 2 && isInitRequest(ve.Header) && g.peer(addr) != nil {
			if r := versionReply(ve.Header); len(r) <= len(msg) {
				g.c.versionRejected.Add(1)
				return VerdictReply, r
			}
		}
		g.c.malformed.Add(1)
		return VerdictDrop, nil
	}
	if isInitRequest(hdr) {
		p := g.peer(addr)
		if p == nil {
			g.c.unknownPeer.Add(1)
			return VerdictDrop, nil
		}
		if !hdr.IsInitiator() || hdr.SPIi == 0 || len(msg) > g.cfg.MaxInitLen {
			g.c.malformed.Add(1)
			return VerdictDrop, nil
		}
		switch g.initPolicy(p, now) {
		case initBlock:
			g.c.blocked.Add(1)
			return VerdictDrop, nil
		case initCookie:
			cookie, nonce, ok := scanInit(msg)
			if !ok {
				g.c.malformed.Add(1)
				return VerdictDrop, nil
			}
			if !g.cookies.valid(cookie, nonce, addr, hdr.SPIi, now) {
				g.c.cookiesSent.Add(1)
				return VerdictReply, cookieReply(hdr, g.cookies.make(nonce, addr, hdr.SPIi, now))
			}
		}
		g.c.init.Add(1)
		return VerdictInit, nil
	}
	if isOneWayInvalidSPI(hdr) {
		// INVALID_SPI outside of an IKE SA (§1.5): as unauthenticated as
		// an IKE_SA_INIT request, and as cheap to answer (never answered).
		if g.peer(addr) == nil {
			g.c.unknownPeer.Add(1)
			return VerdictDrop, nil
		}
		g.c.init.Add(1)
		return VerdictInit, nil
	}
	// A message of an IKE SA: our SPI is SPIr when the sender is the
	// original initiator, else SPIi (§3.1).
	spi := hdr.SPIi
	if hdr.IsInitiator() {
		spi = hdr.SPIr
	}
	g.mu.RLock()
	e, ok := g.spis[spi]
	known := g.peers[addr] != nil
	g.mu.RUnlock()
	switch {
	case !known:
		g.c.unknownPeer.Add(1)
		return VerdictDrop, nil
	case !ok || spi == 0 || e.peer != addr:
		g.c.unknownSPI.Add(1)
		return VerdictDrop, nil
	case e.halfOpen:
		g.c.init.Add(1)
		return VerdictInit, nil
	}
	g.c.established.Add(1)
	return VerdictEstablished, nil
}

// QueueFull tells the Gate that the runner dropped a datagram it admitted
// with v, from peer, because the session's queue was full. It counts it;
// for the init queue, it also makes that peer send cookies for a while, so
// that a flood costs the session no key exchanges.
func (g *Gate) QueueFull(v Verdict, peer netip.Addr, now time.Time) {
	switch v {
	case VerdictEstablished:
		g.c.queueFullEstablished.Add(1)
	case VerdictInit:
		g.c.queueFullInit.Add(1)
		if p := g.peer(peer.Unmap()); p != nil {
			p.overloadUntil.Store(now.Add(g.cfg.OverloadHold).UnixNano())
		}
	}
}

// Stats returns the Gate's counters.
func (g *Gate) Stats() GateStats {
	return GateStats{
		Established:          g.c.established.Load(),
		Init:                 g.c.init.Load(),
		CookiesSent:          g.c.cookiesSent.Load(),
		VersionRejected:      g.c.versionRejected.Load(),
		Malformed:            g.c.malformed.Load(),
		UnknownPeer:          g.c.unknownPeer.Load(),
		UnknownSPI:           g.c.unknownSPI.Load(),
		Blocked:              g.c.blocked.Load(),
		QueueFullEstablished: g.c.queueFullEstablished.Load(),
		QueueFullInit:        g.c.queueFullInit.Load(),
	}
}

// HalfOpen returns the number of half-open IKE SAs of all sessions.
func (g *Gate) HalfOpen() int { return int(g.halfOpen.Load()) }

// initDecision is what happens to a new IKE_SA_INIT request.
type initDecision uint8

const (
	initAccept initDecision = iota
	initCookie              // only with a valid COOKIE
	initBlock               // not at all
)

// initPolicy decides for a new IKE_SA_INIT request from p.
func (g *Gate) initPolicy(p *gatePeer, now time.Time) initDecision {
	peerHalf, allHalf := p.halfOpen.Load(), g.halfOpen.Load()
	switch {
	case peerHalf >= int64(g.cfg.BlockThresholdPeer) || allHalf >= int64(g.cfg.HalfOpenLimit):
		return initBlock
	case peerHalf >= int64(g.cfg.CookieThresholdPeer) || allHalf >= int64(g.cfg.CookieThreshold) ||
		p.forceCookies.Load() || now.UnixNano() < p.overloadUntil.Load():
		return initCookie
	}
	return initAccept
}

// peer returns the registered peer with address addr, or nil.
func (g *Gate) peer(addr netip.Addr) *gatePeer {
	g.mu.RLock()
	p := g.peers[addr]
	g.mu.RUnlock()
	return p
}

// register adds a session's peer address.
func (g *Gate) register(addr netip.Addr) *gatePeer {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.peers[addr]
	if p == nil {
		p = &gatePeer{addr: addr}
		g.peers[addr] = p
	}
	p.sessions++
	return p
}

// release removes a session's peer address once no session has it.
func (g *Gate) release(p *gatePeer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if p.sessions--; p.sessions <= 0 && g.peers[p.addr] == p {
		delete(g.peers, p.addr)
	}
}

// spiInUse reports whether spi is the local SPI of an IKE SA of any session.
func (g *Gate) spiInUse(spi uint64) bool {
	g.mu.RLock()
	_, ok := g.spis[spi]
	g.mu.RUnlock()
	return ok
}

// setSPI publishes (or updates) the local SPI of an IKE SA with peer addr.
func (g *Gate) setSPI(spi uint64, addr netip.Addr, halfOpen bool) {
	g.mu.Lock()
	g.spis[spi] = gateSPI{peer: addr, halfOpen: halfOpen}
	g.mu.Unlock()
}

// removeSPI withdraws a local SPI.
func (g *Gate) removeSPI(spi uint64) {
	g.mu.Lock()
	delete(g.spis, spi)
	g.mu.Unlock()
}

// addHalfOpen adds n (±1) to the half-open counts of p and of the Gate.
func (g *Gate) addHalfOpen(p *gatePeer, n int64) {
	p.halfOpen.Add(n)
	g.halfOpen.Add(n)
}

// isInitRequest reports whether h is the header of an IKE_SA_INIT request
// starting an IKE SA (§1.2: message ID 0, no responder SPI).
func isInitRequest(h Header) bool {
	return h.Exchange == ExchangeIKESAInit && !h.IsResponse() && h.SPIr == 0 && h.MessageID == 0
}

// versionReply is the answer to a request of a major version we do not
// speak: INVALID_MAJOR_VERSION in a message of version 2.0, the highest we
// support (§2.5, §3.10.1).
func versionReply(h Header) []byte {
	m := Message{
		Header:   Header{SPIi: h.SPIi, SPIr: h.SPIr, Exchange: h.Exchange, Flags: FlagResponse, MessageID: h.MessageID},
		Payloads: []Payload{&NotifyPayload{NotifyType: NotifyInvalidMajorVersion}},
	}
	return m.Encode(nil)
}

// cookieReply is the stateless answer to an IKE_SA_INIT request that must
// carry a cookie (§2.6): N(COOKIE) alone.
func cookieReply(h Header, cookie []byte) []byte {
	m := Message{
		Header:   Header{SPIi: h.SPIi, Exchange: ExchangeIKESAInit, Flags: FlagResponse},
		Payloads: []Payload{&NotifyPayload{NotifyType: NotifyCookie, Data: cookie}},
	}
	return m.Encode(nil)
}

// scanInit finds, without decoding the payloads, what the cookie check of
// an IKE_SA_INIT request needs (§2.6): the data of the COOKIE notify if it
// is the first payload, and the nonce. msg has passed ParseHeader. ok is
// false if the payload chain is malformed or the request lacks its one SA,
// one KE and one Nonce payload (of a valid length): such a request is
// dropped, not answered, so that no answer is larger than its request.
func scanInit(msg []byte) (cookie, nonce []byte, ok bool) {
	next := PayloadType(msg[hdrNextPayload])
	b := msg[HeaderLen:]
	var nSA, nKE int
	for first := true; next != PayloadNone; first = false {
		if len(b) < GenericHeaderLen {
			return nil, nil, false
		}
		l := int(binary.BigEndian.Uint16(b[genLength:]))
		if l < GenericHeaderLen || l > len(b) {
			return nil, nil, false
		}
		body := b[GenericHeaderLen:l]
		switch next {
		case PayloadNotify:
			// Protocol ID, SPI Size, Notify Message Type, SPI, data (§3.10).
			if first && len(body) >= 4 && NotifyType(binary.BigEndian.Uint16(body[2:])) == NotifyCookie && 4+int(body[1]) <= len(body) {
				cookie = body[4+int(body[1]):]
			}
		case PayloadSA:
			nSA++
		case PayloadKE:
			nKE++
		case PayloadNonce:
			if nonce != nil || len(body) < MinNonceLen || len(body) > MaxNonceLen {
				return nil, nil, false
			}
			nonce = body
		}
		next = PayloadType(b[genNextPayload])
		b = b[l:]
	}
	return cookie, nonce, nonce != nil && nSA == 1 && nKE == 1 && len(b) == 0
}
