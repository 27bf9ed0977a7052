package netstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// listenBacklog is the accept queue of a Listener, as Linux's default
// net.core.somaxconn.
const listenBacklog = 4096

// minDialAttempt is the least time DialContext gives one address when it
// splits its deadline between several, as the net package does.
const minDialAttempt = 2 * time.Second

// DialContext connects to address on the far side through the stack, as
// net.Dialer.DialContext does. Network is "tcp", "tcp4", "tcp6", "udp",
// "udp4" or "udp6"; address is "host:port" with a numeric port. A host name
// is resolved with LookupNetIP and its addresses are tried in turn, sharing
// ctx's deadline.
//
// TCP connections are *gonet.TCPConn, with CloseRead and CloseWrite; UDP
// connections are net.PacketConns too. Errors are *net.OpError wrapping a
// syscall.Errno where one fits: ECONNREFUSED, ENETUNREACH (no route),
// EHOSTUNREACH, ETIMEDOUT, so that callers can tell failures apart with
// errors.Is.
func (s *Stack) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	transport, family, err := parseNetwork(network)
	if err != nil {
		return nil, err
	}
	host, port, err := splitHostPort(address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	if host == "" {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("netstack: missing host in address " + strconv.Quote(address))}
	}
	ips, err := s.LookupNetIP(ctx, "ip"+family, host)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	var first error
	for i, ip := range ips {
		dctx, cancel := partialDeadline(ctx, len(ips)-i)
		c, err := s.dial(dctx, transport, netip.AddrPortFrom(ip, port))
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
	return nil, first
}

// partialDeadline returns a context for one of n remaining attempts: an
// equal share of ctx's remaining time, but at least minDialAttempt.
func partialDeadline(ctx context.Context, n int) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok || n <= 1 {
		return context.WithCancel(ctx)
	}
	remaining := time.Until(deadline)
	share := max(remaining/time.Duration(n), min(remaining, minDialAttempt))
	return context.WithTimeout(ctx, share)
}

// dial connects one TCP or UDP endpoint to dst.
func (s *Stack) dial(ctx context.Context, transport string, dst netip.AddrPort) (net.Conn, error) {
	full, proto := fullAddress(dst)
	var addr net.Addr = net.TCPAddrFromAddrPort(dst)
	tp := tcp.ProtocolNumber
	if transport == "udp" {
		addr, tp = net.UDPAddrFromAddrPort(dst), udp.ProtocolNumber
	}
	opErr := func(terr tcpip.Error) error {
		return &net.OpError{Op: "dial", Net: transport, Addr: addr, Err: translate(terr)}
	}

	var wq waiter.Queue
	ep, terr := s.stack.NewEndpoint(tp, proto, &wq)
	if terr != nil {
		return nil, opErr(terr)
	}
	entry, notify := waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	terr = ep.Connect(full)
	if _, ok := terr.(*tcpip.ErrHostUnreachable); ok {
		// Connect finds the route before it sends anything: this is "no
		// route", which gVisor reports as host unreachable
		// (gvisor.dev/issues/8105) where the host's stack says
		// ENETUNREACH.
		terr = &tcpip.ErrNetworkUnreachable{}
	}
	if _, ok := terr.(*tcpip.ErrConnectStarted); ok {
		select {
		case <-ctx.Done():
			ep.Close()
			return nil, &net.OpError{Op: "dial", Net: transport, Addr: addr, Err: mapContextError(ctx.Err())}
		case <-notify:
		}
		terr = ep.LastError()
	}
	if terr != nil {
		ep.Close()
		return nil, opErr(terr)
	}
	if transport == "udp" {
		return &UDPConn{UDPConn: gonet.NewUDPConn(&wq, ep)}, nil
	}
	return gonet.NewTCPConn(&wq, ep), nil
}

// Listen listens for TCP connections from the far side on the stack, as
// net.Listen does. Network is "tcp", "tcp4" or "tcp6"; address is
// "host:port" where host is empty (every address of the stack; "tcp" is
// dual-stack) or one of the stack's addresses, and port 0 picks a free one.
// Close unblocks Accept.
func (s *Stack) Listen(network, address string) (net.Listener, error) {
	transport, family, err := parseNetwork(network)
	if err != nil {
		return nil, err
	}
	if transport != "tcp" {
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	full, proto, err := s.localAddress(family, address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	var wq waiter.Queue
	ep, terr := s.stack.NewEndpoint(tcp.ProtocolNumber, proto, &wq)
	if terr == nil {
		// As the net package does: a port whose connections linger in
		// TIME-WAIT can be listened on again at once.
		ep.SocketOptions().SetReuseAddress(true)
		if terr = ep.Bind(full); terr == nil {
			terr = ep.Listen(listenBacklog)
		}
		if terr != nil {
			ep.Close()
		}
	}
	if terr != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: net.TCPAddrFromAddrPort(addrPortOf(full)), Err: translate(terr)}
	}
	return listener{gonet.NewTCPListener(s.stack, &wq, ep)}, nil
}

// ListenPacket opens a UDP socket on the stack, as net.ListenPacket does.
// Network is "udp", "udp4" or "udp6"; address is as for Listen. The result
// is a *UDPConn.
func (s *Stack) ListenPacket(network, address string) (net.PacketConn, error) {
	transport, family, err := parseNetwork(network)
	if err != nil {
		return nil, err
	}
	if transport != "udp" {
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	full, proto, err := s.localAddress(family, address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	var wq waiter.Queue
	ep, terr := s.stack.NewEndpoint(udp.ProtocolNumber, proto, &wq)
	if terr == nil {
		if terr = ep.Bind(full); terr != nil {
			ep.Close()
		}
	}
	if terr != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: net.UDPAddrFromAddrPort(addrPortOf(full)), Err: translate(terr)}
	}
	return &UDPConn{UDPConn: gonet.NewUDPConn(&wq, ep)}, nil
}

// localAddress parses the address of Listen or ListenPacket. An empty host
// binds to every address: of the given family, or dual-stack (IPv6 with
// IPv4-mapped addresses) for none.
func (s *Stack) localAddress(family, address string) (tcpip.FullAddress, tcpip.NetworkProtocolNumber, error) {
	host, port, err := splitHostPort(address)
	if err != nil {
		return tcpip.FullAddress{}, 0, err
	}
	if host == "" {
		full := tcpip.FullAddress{Port: port}
		if family == "4" || (family == "" && !s.has6) {
			return full, ipv4.ProtocolNumber, nil
		}
		return full, ipv6.ProtocolNumber, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return tcpip.FullAddress{}, 0, fmt.Errorf("netstack: listen address %q is not an IP address", host)
	}
	ip = ip.Unmap()
	if (family == "4" && !ip.Is4()) || (family == "6" && !ip.Is6()) {
		return tcpip.FullAddress{}, 0, &net.AddrError{Err: "address of the wrong family", Addr: host}
	}
	full, proto := fullAddress(netip.AddrPortFrom(ip, port))
	return full, proto, nil
}

// parseNetwork splits "tcp6" into "tcp" and "6".
func parseNetwork(network string) (transport, family string, err error) {
	switch network {
	case "tcp", "udp":
		return network, "", nil
	case "tcp4", "udp4", "tcp6", "udp6":
		return network[:3], network[3:], nil
	}
	return "", "", &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError(network)}
}

// splitHostPort splits "host:port", with a numeric port.
func splitHostPort(address string) (string, uint16, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return "", 0, &net.AddrError{Err: "invalid port (expected a number from 0 to 65535)", Addr: address}
	}
	return host, uint16(port), nil
}

func fullAddress(ap netip.AddrPort) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	a := ap.Addr().Unmap()
	return tcpip.FullAddress{Addr: tcpipAddr(a), Port: ap.Port()}, protocolOf(a)
}

// translate turns a gVisor error into the syscall.Errno the host's stack
// would give, where there is one.
func translate(err tcpip.Error) error {
	switch err.(type) {
	case *tcpip.ErrConnectionRefused:
		return syscall.ECONNREFUSED
	case *tcpip.ErrNetworkUnreachable, *tcpip.ErrNoNet:
		return syscall.ENETUNREACH
	case *tcpip.ErrHostUnreachable, *tcpip.ErrHostDown:
		return syscall.EHOSTUNREACH
	case *tcpip.ErrTimeout:
		return syscall.ETIMEDOUT
	case *tcpip.ErrConnectionReset:
		return syscall.ECONNRESET
	case *tcpip.ErrConnectionAborted, *tcpip.ErrAborted:
		return syscall.ECONNABORTED
	case *tcpip.ErrPortInUse:
		return syscall.EADDRINUSE
	case *tcpip.ErrBadLocalAddress:
		return syscall.EADDRNOTAVAIL
	case *tcpip.ErrMessageTooLong:
		return syscall.EMSGSIZE
	}
	return errors.New("netstack: " + err.String())
}

func addrPortOf(f tcpip.FullAddress) netip.AddrPort {
	a, _ := netip.AddrFromSlice(f.Addr.AsSlice())
	return netip.AddrPortFrom(a, f.Port)
}

// mapContextError turns a context's error into what net.Dialer returns:
// a timeout for an expired deadline.
func mapContextError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return syscall.ETIMEDOUT
	}
	return err
}

// listener makes Close unblock Accept, which gonet's Close alone does not.
type listener struct{ *gonet.TCPListener }

func (l listener) Close() error {
	l.Shutdown()
	return l.TCPListener.Close()
}

// UDPConn is a UDP socket on the stack. It is a *gonet.UDPConn that takes
// any net.Addr that names a UDP address in WriteTo (gonet's panics on a
// type other than *net.UDPAddr) and reports IPv4 peers of dual-stack
// sockets as IPv4 addresses. It is a net.Conn when dialed and a
// net.PacketConn always.
type UDPConn struct {
	*gonet.UDPConn
}

// ReadFrom reads one datagram, as net.PacketConn.
func (c *UDPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.UDPConn.ReadFrom(b)
	if ua, ok := addr.(*net.UDPAddr); ok {
		if ip4 := ua.IP.To4(); ip4 != nil {
			ua.IP = ip4
		}
	}
	return n, addr, err
}

// WriteTo sends b to addr, which must be a *net.UDPAddr or a
// netip.AddrPort-like address that net.ResolveUDPAddr would accept
// unchanged ("1.2.3.4:5").
func (c *UDPConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ap, err := udpAddrPort(addr)
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: err}
	}
	return c.UDPConn.WriteTo(b, net.UDPAddrFromAddrPort(ap))
}

// WriteToUDPAddrPort sends b to ap.
func (c *UDPConn) WriteToUDPAddrPort(b []byte, ap netip.AddrPort) (int, error) {
	return c.UDPConn.WriteTo(b, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())))
}

func udpAddrPort(addr net.Addr) (netip.AddrPort, error) {
	switch a := addr.(type) {
	case *net.UDPAddr:
		if a != nil {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && a.Port >= 0 && a.Port <= 0xffff {
				return netip.AddrPortFrom(ip.Unmap(), uint16(a.Port)), nil
			}
		}
	case nil:
	default:
		if ap, err := netip.ParseAddrPort(a.String()); err == nil && a.Network() == "udp" {
			return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
		}
	}
	return netip.AddrPort{}, syscall.EINVAL
}
