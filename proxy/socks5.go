package proxy

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// UDP relay bounds, per association.
const (
	// maxUDPPeers is how many far-side addresses one association
	// remembers having sent to; replies are relayed from those only.
	maxUDPPeers = 1024
	// maxUDPNames is how many resolved destination names one association
	// caches, for udpNameTTL.
	maxUDPNames = 64
	udpNameTTL  = time.Minute
	// maxDatagram is the largest UDP datagram relayed, header included.
	maxDatagram = 1<<16 - 1
)

// SOCKS5 is a SOCKS version 5 server (RFC 1928) whose connections and UDP
// datagrams go out through Dialer and PacketListener (a tunnel's netstack).
// It supports CONNECT and UDP ASSOCIATE; BIND is refused. The zero value is
// not usable: Dialer must be set.
//
// Reply codes follow the failure: a refused connection 5 (connection
// refused), no route 3 (network unreachable), an unreachable host or an
// unknown name 4 (host unreachable), a timeout 6 (TTL expired, as Dante
// maps ETIMEDOUT), a host name when Resolver is nil 8 (address type not
// supported), and anything else 1 (general failure).
type SOCKS5 struct {
	// Dialer connects CONNECT requests to their destination.
	Dialer Dialer
	// PacketListener opens the far-side socket of a UDP association; nil
	// refuses UDP ASSOCIATE (reply 7, command not supported).
	PacketListener PacketListener
	// Resolver resolves the host names of requests and datagrams; nil
	// refuses them.
	Resolver Resolver
	// Users, when not empty, requires RFC 1929 username/password
	// authentication with one of its user → password pairs.
	Users  map[string]string
	Limits Limits
	Logger *slog.Logger

	stats Stats
}

// Stats returns the server's counters.
func (s *SOCKS5) Stats() *Stats { return &s.stats }

// Serve serves SOCKS5 clients that connect to l until ctx ends or l fails.
// It then closes l and every connection and association, and returns nil
// for ctx or the error of l.Accept.
func (s *SOCKS5) Serve(ctx context.Context, l net.Listener) error {
	return serveConns(ctx, l, s.Limits, &s.stats, s.handle)
}

// handle runs one client's negotiation, then its CONNECT relay or UDP
// association.
func (s *SOCKS5) handle(ctx context.Context, c net.Conn) {
	log := orLogger(s.Logger)
	c.SetDeadline(time.Now().Add(s.Limits.handshakeTimeout()))
	cmd, dst, err := s.negotiate(c)
	if err != nil {
		s.stats.Failed.Add(1)
		log.Debug("SOCKS5 negotiation failed", "client", c.RemoteAddr(), "err", err)
		return
	}
	switch cmd {
	case cmdConnect:
		s.connect(ctx, c, dst)
	case cmdUDPAssociate:
		s.associate(ctx, c, dst)
	default:
		s.stats.Failed.Add(1)
		s.reply(c, repCommandNotSupported, netip.AddrPort{})
	}
}

// negotiate reads the greeting, authenticates, and reads the request. For
// a request that cannot be served it sends the reply itself and returns an
// error.
func (s *SOCKS5) negotiate(c net.Conn) (cmd byte, dst socksAddr, err error) {
	methods, err := readGreeting(c)
	if err != nil {
		return 0, dst, err
	}
	want := byte(methodNone)
	if len(s.Users) > 0 {
		want = methodUserPass
	}
	method := byte(methodNoAcceptable)
	for _, m := range methods {
		if m == want {
			method = want
		}
	}
	if _, err := c.Write([]byte{socksVersion, method}); err != nil {
		return 0, dst, err
	}
	if method == methodNoAcceptable {
		return 0, dst, errors.New("proxy: SOCKS5 client offers no acceptable authentication method")
	}
	if method == methodUserPass {
		user, password, err := readUserPass(c)
		if err != nil {
			return 0, dst, err
		}
		status := byte(userPassFailure)
		if want, ok := s.Users[user]; ok && subtle.ConstantTimeCompare([]byte(want), []byte(password)) == 1 {
			status = userPassSuccess
		}
		// RFC 1929 §2: a failure status closes the connection.
		if _, err := c.Write([]byte{userPassVersion, status}); err != nil || status != userPassSuccess {
			return 0, dst, errors.New("proxy: SOCKS5 authentication failed for user " + user)
		}
	}
	cmd, dst, err = readRequest(c)
	if errors.Is(err, errAddressType) {
		s.reply(c, repAddressNotSupported, netip.AddrPort{})
	}
	return cmd, dst, err
}

func (s *SOCKS5) reply(c net.Conn, rep byte, bound netip.AddrPort) error {
	_, err := c.Write(appendReply(make([]byte, 0, 22), rep, bound))
	return err
}

// connect serves CONNECT (RFC 1928 §4): it connects to dst, replies with
// the address the connection has on the far side, and relays.
func (s *SOCKS5) connect(ctx context.Context, c net.Conn, dst socksAddr) {
	dctx, cancel := context.WithTimeout(ctx, s.Limits.dialTimeout())
	host := dst.Name
	if host == "" {
		host = dst.IP.String()
	}
	far, err := resolveDial(dctx, s.Dialer, s.Resolver, "tcp", host, dst.Port)
	cancel()
	if err != nil {
		s.stats.Failed.Add(1)
		orLogger(s.Logger).Debug("SOCKS5 connect failed", "client", c.RemoteAddr(), "dst", dst, "err", err)
		s.reply(c, replyCode(err), netip.AddrPort{})
		return
	}
	if err := s.reply(c, repSucceeded, addrPortOf(far.LocalAddr())); err != nil {
		far.Close()
		return
	}
	c.SetDeadline(time.Time{})
	relay(c, far, orDefault(s.Limits.IdleTimeout, DefaultTCPIdleTimeout))
}

// replyCode returns the reply for a failed connection to the destination.
func replyCode(err error) byte {
	var de *net.DNSError
	var ne net.Error
	switch {
	case errors.Is(err, errNamesRefused):
		return repAddressNotSupported
	case errors.Is(err, syscall.ECONNREFUSED):
		return repConnectionRefused
	case errors.Is(err, syscall.ENETUNREACH):
		return repNetworkUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH), errors.As(err, &de) && de.IsNotFound:
		return repHostUnreachable
	case errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return repTTLExpired
	}
	return repGeneralFailure
}

// associate serves UDP ASSOCIATE (RFC 1928 §7). It opens a relay socket on
// the local address the client connected to, and a socket on the far side,
// replies with the relay's address, and relays until the control
// connection c closes (or carries data, or the association is idle).
//
// Only datagrams from the client's address are relayed: from the IP address
// of c's peer, and from the port and address of the request when they are
// not zero; the first datagram fixes the port when it is. Replies are
// relayed from the far-side addresses the client has sent to, no others.
func (s *SOCKS5) associate(ctx context.Context, c net.Conn, req socksAddr) {
	if s.PacketListener == nil {
		s.stats.Failed.Add(1)
		s.reply(c, repCommandNotSupported, netip.AddrPort{})
		return
	}
	clientIP := addrPortOf(c.RemoteAddr()).Addr()
	localIP := addrPortOf(c.LocalAddr()).Addr()
	if req.Name != "" || (req.IP.IsValid() && !req.IP.IsUnspecified() && req.IP != clientIP) {
		// The client may only name its own address (RFC 1928 §7), and
		// the relay accepts datagrams from the control connection's
		// peer alone.
		s.stats.Failed.Add(1)
		s.reply(c, repNotAllowed, netip.AddrPort{})
		return
	}
	local, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(localIP, 0)))
	if err != nil {
		s.stats.Failed.Add(1)
		s.reply(c, repGeneralFailure, netip.AddrPort{})
		return
	}
	far, err := s.PacketListener.ListenPacket("udp", ":0")
	if err != nil {
		local.Close()
		s.stats.Failed.Add(1)
		s.reply(c, repGeneralFailure, netip.AddrPort{})
		return
	}
	a := &association{
		s:        s,
		local:    local,
		far:      far,
		clientIP: clientIP,
		peers:    make(map[netip.AddrPort]struct{}),
		names:    make(map[string]resolved),
	}
	if req.Port != 0 {
		a.client.Store(ptrTo(netip.AddrPortFrom(clientIP, req.Port)))
	}
	defer a.close()
	if err := s.reply(c, repSucceeded, local.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		return
	}
	c.SetDeadline(time.Time{})

	a.touch()
	idle := orDefault(s.Limits.IdleTimeout, DefaultUDPIdleTimeout)
	var timer *time.Timer
	timer = time.AfterFunc(idle, func() {
		if since := time.Duration(time.Now().UnixNano() - a.last.Load()); since < idle {
			timer.Reset(idle - since)
			return
		}
		c.Close()
	})
	defer timer.Stop()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		a.fromClient(ctx)
		c.Close()
	}()
	go func() {
		defer wg.Done()
		a.fromFar()
		c.Close()
	}()
	// The control connection carries nothing more (§6); it ends the
	// association when it closes, or if it carries anything at all.
	var b [1]byte
	c.Read(b[:])
	a.close()
	wg.Wait()
}

func ptrTo[T any](v T) *T { return &v }

// association is one UDP ASSOCIATE.
type association struct {
	s        *SOCKS5
	local    *net.UDPConn   // the relay socket the client sends to
	far      net.PacketConn // the socket on the far side
	clientIP netip.Addr
	client   atomic.Pointer[netip.AddrPort] // the client's UDP address, once known
	last     atomic.Int64                   // time of the last datagram, Unix ns

	mu    sync.Mutex // guards peers
	peers map[netip.AddrPort]struct{}

	names map[string]resolved // only fromClient uses it

	closeOnce sync.Once
}

type resolved struct {
	ip      netip.Addr
	expires time.Time
}

func (a *association) touch() { a.last.Store(time.Now().UnixNano()) }

func (a *association) close() {
	a.closeOnce.Do(func() {
		a.local.Close()
		a.far.Close()
	})
}

// fromClient relays datagrams from the client to the far side.
func (a *association) fromClient(ctx context.Context) {
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := a.local.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if from.Addr() != a.clientIP {
			a.s.stats.Dropped.Add(1)
			continue
		}
		if client := a.client.Load(); client == nil {
			a.client.Store(&from)
		} else if *client != from {
			a.s.stats.Dropped.Add(1)
			continue
		}
		dst, data, err := parseUDPHeader(buf[:n])
		if err != nil {
			a.s.stats.Dropped.Add(1)
			continue
		}
		ip := dst.IP
		if dst.Name != "" {
			if ip, err = a.resolve(ctx, dst.Name); err != nil {
				a.s.stats.Dropped.Add(1)
				continue
			}
		}
		to := netip.AddrPortFrom(ip, dst.Port)
		a.remember(to)
		a.touch()
		if _, err := a.far.WriteTo(data, net.UDPAddrFromAddrPort(to)); err != nil {
			a.s.stats.Dropped.Add(1)
		}
	}
}

// fromFar relays datagrams from the far side to the client, each behind a
// header that names its source.
func (a *association) fromFar() {
	buf := make([]byte, maxDatagram)
	const room = 3 + 1 + 16 + 2 // the longest header, IPv6
	for {
		n, from, err := a.far.ReadFrom(buf[room:])
		if err != nil {
			return
		}
		src := addrPortOf(from)
		client := a.client.Load()
		if client == nil || !a.known(src) {
			a.s.stats.Dropped.Add(1)
			continue
		}
		a.touch()
		h := appendUDPHeader(buf[:0:room], src)
		start := room - len(h)
		copy(buf[start:], h)
		if _, err := a.local.WriteToUDPAddrPort(buf[start:room+n], *client); err != nil {
			a.s.stats.Dropped.Add(1)
		}
	}
}

// remember records that the client sent to p. The set is bounded: when full,
// an arbitrary address is forgotten.
func (a *association) remember(p netip.AddrPort) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.peers[p]; ok {
		return
	}
	if len(a.peers) >= maxUDPPeers {
		for old := range a.peers {
			delete(a.peers, old)
			break
		}
	}
	a.peers[p] = struct{}{}
}

func (a *association) known(p netip.AddrPort) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.peers[p]
	return ok
}

// resolve returns the first address of name, from a small cache or the
// Resolver.
func (a *association) resolve(ctx context.Context, name string) (netip.Addr, error) {
	now := time.Now()
	if r, ok := a.names[name]; ok && now.Before(r.expires) {
		return r.ip, nil
	}
	if a.s.Resolver == nil {
		return netip.Addr{}, errNamesRefused
	}
	ctx, cancel := context.WithTimeout(ctx, a.s.Limits.dialTimeout())
	defer cancel()
	addrs, err := a.s.Resolver.LookupNetIP(ctx, "ip", name)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(a.names) >= maxUDPNames {
		for old := range a.names {
			delete(a.names, old)
			break
		}
	}
	a.names[name] = resolved{ip: addrs[0], expires: now.Add(udpNameTTL)}
	return addrs[0], nil
}
