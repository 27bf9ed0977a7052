package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Dialer opens connections: a *netstack.Stack to reach the far site, or a
// *net.Dialer for the local host.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// PacketListener opens UDP sockets: a *netstack.Stack, on the far site.
type PacketListener interface {
	ListenPacket(network, address string) (net.PacketConn, error)
}

// Resolver resolves host names: a *netstack.Stack (the far site's DNS
// servers) or a *net.Resolver (the local host's).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Defaults for Limits.
const (
	DefaultMaxConns         = 256
	DefaultTCPIdleTimeout   = 10 * time.Minute
	DefaultUDPIdleTimeout   = time.Minute
	DefaultDialTimeout      = 30 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
)

// Limits bound what one listener of a proxy or forward may hold. The zero
// value means the defaults.
type Limits struct {
	// MaxConns is how many connections (TCP) or flows (UDP) are open at
	// once; connections beyond it are closed as they are accepted, and
	// datagrams that would start a flow beyond it are dropped.
	MaxConns int
	// IdleTimeout closes a connection or flow that has carried nothing,
	// in either direction, for this long.
	IdleTimeout time.Duration
	// DialTimeout bounds the connection to the target.
	DialTimeout time.Duration
	// HandshakeTimeout bounds a SOCKS5 negotiation or an HTTP request's
	// header.
	HandshakeTimeout time.Duration
}

func (l Limits) maxConns() int { return orDefault(l.MaxConns, DefaultMaxConns) }
func (l Limits) dialTimeout() time.Duration {
	return orDefault(l.DialTimeout, DefaultDialTimeout)
}
func (l Limits) handshakeTimeout() time.Duration {
	return orDefault(l.HandshakeTimeout, DefaultHandshakeTimeout)
}

func orDefault[T int | time.Duration](v, d T) T {
	if v <= 0 {
		return d
	}
	return v
}

// Stats counts what one proxy or forward did. It is safe for concurrent use.
type Stats struct {
	Accepted atomic.Uint64 // connections accepted, or UDP flows started
	Rejected atomic.Uint64 // connections closed or flows refused at MaxConns
	Active   atomic.Int64  // connections or flows open now
	Failed   atomic.Uint64 // handshakes, authentications or dials that failed
	Dropped  atomic.Uint64 // datagrams dropped: malformed, from a stranger, over the flow limit
}

// bufferSize is the size of the buffers that copy a connection's data, one
// per direction.
const bufferSize = 32 << 10

var buffers = sync.Pool{New: func() any { return new([bufferSize]byte) }}

// limitListener accepts at most max connections at once from a listener:
// one beyond that is closed at once and counted as rejected. It remembers
// the connections it accepted, so that closeAll can end them, whatever has
// become of them (hijacked by net/http, in a relay).
type limitListener struct {
	net.Listener
	sem   chan struct{}
	stats *Stats

	mu     sync.Mutex
	conns  map[*limitedConn]struct{}
	closed bool
}

func newLimitListener(l net.Listener, max int, stats *Stats) *limitListener {
	return &limitListener{Listener: l, sem: make(chan struct{}, max), stats: stats, conns: make(map[*limitedConn]struct{})}
}

// Accept waits for a connection within the limit. Temporary errors (out of
// file descriptors) are retried with a growing pause, as net/http does.
func (l *limitListener) Accept() (net.Conn, error) {
	var pause time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOBUFS) {
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				time.Sleep(pause)
				continue
			}
			return nil, err
		}
		pause = 0
		select {
		case l.sem <- struct{}{}:
		default:
			l.stats.Rejected.Add(1)
			c.Close()
			continue
		}
		lc := &limitedConn{Conn: c, l: l}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			c.Close()
			<-l.sem
			return nil, net.ErrClosed
		}
		l.conns[lc] = struct{}{}
		l.mu.Unlock()
		l.stats.Accepted.Add(1)
		l.stats.Active.Add(1)
		return lc, nil
	}
}

// closeAll closes the listener and every connection it accepted.
func (l *limitListener) closeAll() {
	l.mu.Lock()
	l.closed = true
	conns := make([]*limitedConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	l.Listener.Close()
	for _, c := range conns {
		c.Close()
	}
}

// limitedConn gives its slot back when closed.
type limitedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		c.l.stats.Active.Add(-1)
		<-c.l.sem
	})
	return err
}

// CloseWrite half-closes the connection where the underlying one can.
func (c *limitedConn) CloseWrite() error { return closeWrite(c.Conn) }

func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// serveConns accepts connections from l within limits and runs handle for
// each in its own goroutine, which closes the connection when handle
// returns. When ctx ends, or Accept fails, it closes l and every
// connection, waits for the handlers, and returns: nil for ctx, else the
// Accept error.
func serveConns(ctx context.Context, l net.Listener, limits Limits, stats *Stats, handle func(context.Context, net.Conn)) error {
	ll := newLimitListener(l, limits.maxConns(), stats)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, ll.closeAll)
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ll.Accept()
		if err != nil {
			ll.closeAll()
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			handle(ctx, c)
		}()
	}
}

// relay copies between a and b, both ways, until both directions have
// ended, or neither has carried data for idle. A direction ends at EOF,
// which half-closes the other connection's writing side, so that
// request/response protocols that half-close work; it ends on an error,
// which closes both connections. Both are closed when relay returns.
func relay(a, b net.Conn, idle time.Duration) {
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	closeBoth := func() {
		a.Close()
		b.Close()
	}
	var timer *time.Timer
	timer = time.AfterFunc(idle, func() {
		if since := time.Duration(time.Now().UnixNano() - last.Load()); since < idle {
			timer.Reset(idle - since)
			return
		}
		closeBoth()
	})
	defer timer.Stop()

	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		defer func() { done <- struct{}{} }()
		buf := buffers.Get().(*[bufferSize]byte)
		defer buffers.Put(buf)
		for {
			n, err := src.Read(buf[:])
			if n > 0 {
				last.Store(time.Now().UnixNano())
				if _, werr := dst.Write(buf[:n]); werr != nil {
					closeBoth()
					return
				}
			}
			if err == io.EOF {
				if closeWrite(dst) != nil {
					closeBoth()
				}
				return
			}
			if err != nil {
				closeBoth()
				return
			}
		}
	}
	go pipe(a, b)
	pipe(b, a)
	<-done
	<-done
	closeBoth()
}

// dialAddrs dials each address in turn with d, sharing the time left in
// ctx, and returns the first connection or the first error.
func dialAddrs(ctx context.Context, d Dialer, network string, addrs []netip.Addr, port uint16) (net.Conn, error) {
	var first error
	for i, ip := range addrs {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if deadline, ok := ctx.Deadline(); ok && len(addrs)-i > 1 {
			actx, cancel = context.WithTimeout(ctx, max(time.Until(deadline)/time.Duration(len(addrs)-i), 2*time.Second))
		}
		c, err := d.DialContext(actx, network, netip.AddrPortFrom(ip, port).String())
		cancel()
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if first == nil {
		first = errors.New("proxy: no addresses to dial")
	}
	return nil, first
}

// errNamesRefused is a host name given to a proxy that has no Resolver.
var errNamesRefused = errors.New("proxy: host names are not resolved (no DNS servers configured for the tunnel)")

// resolveDial connects to host:port: an IP address directly, a name through
// r (when r is nil, names are refused with errNamesRefused).
func resolveDial(ctx context.Context, d Dialer, r Resolver, network, host string, port uint16) (net.Conn, error) {
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip.Unmap()}
	} else if r == nil {
		return nil, errNamesRefused
	} else if addrs, err = r.LookupNetIP(ctx, "ip", host); err != nil {
		return nil, err
	}
	return dialAddrs(ctx, d, network, addrs, port)
}

// splitHostPort splits "host:port" with a numeric port.
func splitHostPort(hostport string) (string, uint16, error) {
	host, ps, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("proxy: port %q is not a number from 0 to 65535", ps)
	}
	return host, uint16(port), nil
}

// addrPortOf returns the address and port of a *net.TCPAddr or
// *net.UDPAddr, IPv4 unmapped; or the zero AddrPort.
func addrPortOf(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func orLogger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
