package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.zx2c4.com/wireguard/conn"
)

// protocolESP is ESP's IP protocol number (RFC 4303 §2, IANA "Assigned
// Internet Protocol Numbers").
const protocolESP = 50

// socketBufferSize is the kernel buffer asked for on each raw socket, in each
// direction, as wireguard-go does for its UDP sockets. The kernel may grant
// less (net.core.rmem_max and wmem_max) unless the process may force it.
const socketBufferSize = 7 << 20

// rawBind is the conn.Bind returned by NewRawESP. It is safe for concurrent
// use.
type rawBind struct {
	local netip.Addr // unmapped; the zero Addr means every local address

	mu      sync.Mutex // guards the fields below
	ipv4    *rawSocket
	ipv6    *rawSocket
	mark    uint32
	markSet bool
	df      bool // SetDontFragment; true until told otherwise

	// onICMP receives the ICMP errors read from the error queues.
	onICMP atomic.Pointer[func(*ICMPError)]

	endpoints endpointCache
}

var (
	_ conn.Bind          = (*rawBind)(nil)
	_ ICMPErrorReporter  = (*rawBind)(nil)
	_ DontFragmentSetter = (*rawBind)(nil)
)

// NewRawESP returns a Bind that sends and receives raw ESP (IP protocol 50)
// on the given local address (IPv4 or IPv6). Needs CAP_NET_RAW.
//
// Open makes one raw socket bound to local: an IPv4 socket for an IPv4 or
// IPv4-mapped address, an IPv6 socket otherwise. With the zero Addr it opens
// an IPv4 and an IPv6 socket on every local address, each family only where
// the host supports it. Send picks the socket of the destination's family.
//
// Received packets are the ESP header and what follows, with any IPv4 header
// removed; their endpoints are *Endpoint. On Linux the Bind reads and writes
// batches of conn.IdealBatchSize packets (recvmmsg, sendmmsg) and allocates
// nothing per packet; elsewhere it moves one packet per call. Where the
// kernel itself implements ESP (the BSDs and macOS with IPsec compiled in),
// it may consume inbound ESP before a raw socket sees it.
func NewRawESP(local netip.Addr) conn.Bind {
	return &rawBind{local: local.Unmap(), df: true}
}

// SetICMPErrorHandler sets the function that receives the ICMP errors
// that arrive for packets the Bind sent (Linux; elsewhere it is never
// called). Outer packets go out with DF set and are never fragmented by
// this host unless SetDontFragment(false) is called.
func (b *rawBind) SetICMPErrorHandler(fn func(e *ICMPError)) { b.onICMP.Store(&fn) }

// SetDontFragment chooses DF for the open sockets and those opened later.
func (b *rawBind) SetDontFragment(df bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.df = df
	if err := b.ipv4.setDontFragment(df); err != nil {
		return err
	}
	return b.ipv6.setDontFragment(df)
}

// Open opens the raw sockets. The port is meaningless for raw IP: it is
// ignored and 0 is returned.
func (b *rawBind) Open(uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ipv4 != nil || b.ipv6 != nil {
		return nil, 0, conn.ErrBindAlreadyOpen
	}
	all := !b.local.IsValid()
	var v4, v6 *rawSocket
	var err error
	if all || b.local.Is4() {
		v4, err = openRawSocket(false, b.local)
		if err != nil && (!all || !errors.Is(err, syscall.EAFNOSUPPORT)) {
			return nil, 0, err
		}
	}
	if all || b.local.Is6() {
		v6, err = openRawSocket(true, b.local)
		if err != nil && (!all || !errors.Is(err, syscall.EAFNOSUPPORT)) {
			if v4 != nil {
				v4.close()
			}
			return nil, 0, err
		}
	}
	if v4 == nil && v6 == nil {
		return nil, 0, fmt.Errorf("link: raw ESP: no IPv4 or IPv6 socket: %w", syscall.EAFNOSUPPORT)
	}
	if err := v4.setDontFragment(b.df); err != nil {
		v4.close()
		v6.close()
		return nil, 0, err
	}
	if err := v6.setDontFragment(b.df); err != nil {
		v4.close()
		v6.close()
		return nil, 0, err
	}
	if b.markSet {
		err := v4.setMark(b.mark)
		if err == nil {
			err = v6.setMark(b.mark)
		}
		if err != nil {
			v4.close()
			v6.close()
			return nil, 0, err
		}
	}
	var fns []conn.ReceiveFunc
	if v4 != nil {
		v4.onICMP = &b.onICMP
		fns = append(fns, b.makeReceiveIPv4(v4))
	}
	if v6 != nil {
		v6.onICMP = &b.onICMP
		fns = append(fns, b.makeReceiveIPv6(v6))
	}
	b.ipv4, b.ipv6 = v4, v6
	return fns, 0, nil
}

// The two constructors differ only in name, which conn.ReceiveFunc's
// PrettyName turns into "v4" and "v6" for wireguard-go's logs.

func (b *rawBind) makeReceiveIPv4(s *rawSocket) conn.ReceiveFunc {
	return func(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		return s.receive(&b.endpoints, packets, sizes, eps)
	}
}

func (b *rawBind) makeReceiveIPv6(s *rawSocket) conn.ReceiveFunc {
	return func(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		return s.receive(&b.endpoints, packets, sizes, eps)
	}
}

// Close closes the sockets. ReceiveFuncs returned by Open then return an
// error matching net.ErrClosed. The Bind may be opened again.
func (b *rawBind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	err1 := b.ipv4.close()
	err2 := b.ipv6.close()
	b.ipv4, b.ipv6 = nil, nil
	if err1 != nil {
		return err1
	}
	return err2
}

// SetMark sets the socket mark (SO_MARK) of the open sockets and of those
// opened later, on Linux. Elsewhere it does nothing.
func (b *rawBind) SetMark(mark uint32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mark, b.markSet = mark, true
	if err := b.ipv4.setMark(mark); err != nil {
		return err
	}
	return b.ipv6.setMark(mark)
}

// Send sends each buffer in bufs as one ESP packet to ep, which must be an
// *Endpoint; the kernel adds the IP header. bufs may be longer than
// BatchSize; the packets then go in several system calls.
func (b *rawBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	e, ok := ep.(*Endpoint)
	if !ok {
		return conn.ErrWrongEndpointType
	}
	dst := e.dst.Addr()
	if !dst.IsValid() {
		return errors.New("link: raw ESP: endpoint has no address")
	}
	b.mu.Lock()
	s := b.ipv4
	if dst.Is6() {
		s = b.ipv6
	}
	closed := b.ipv4 == nil && b.ipv6 == nil
	b.mu.Unlock()
	if s == nil {
		if closed {
			return net.ErrClosed
		}
		return fmt.Errorf("link: raw ESP bound to %v cannot send to %v: %w", b.local, dst, syscall.EAFNOSUPPORT)
	}
	if len(bufs) == 0 {
		return nil
	}
	return s.send(bufs, dst)
}

// ParseEndpoint parses "addr" or "addr:port" ("[addr]:port" for IPv6). The
// port, meaningless for raw IP, is dropped.
func (b *rawBind) ParseEndpoint(s string) (conn.Endpoint, error) {
	ap, err := parseAddrPort(s)
	if err != nil {
		return nil, err
	}
	return NewEndpoint(ap.Addr()), nil
}

// BatchSize returns conn.IdealBatchSize on Linux and 1 elsewhere.
func (b *rawBind) BatchSize() int { return rawBatchSize }

// IPv4 header (RFC 791 §3.1), as far as the receive path needs it.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	|                    Destination Address                        |
//	|                    Options                    |    Padding    |
const (
	ipv4HeaderLen    = 20 // without options
	ipv4VersionIHL   = 0
	ipv4TotalLen     = 2
	ipv4FlagsFragOff = 6
	ipv4Protocol     = 9

	ipv4FlagMF      = 0x2000 // more fragments
	ipv4FragOffMask = 0x1fff
)

// checkIPv4Header checks the fixed IPv4 header h (at least ipv4HeaderLen
// bytes) of a datagram of n bytes, as a raw socket delivered it, and returns
// the header's length with options. It reports false for anything that is
// not one whole ESP packet: a malformed header, a total length other than n
// (which also catches truncation), another protocol, or a fragment. The
// kernel reassembles fragments before it delivers to raw sockets (Linux:
// ip_local_deliver), so a fragment here means something is wrong. The
// checksum was verified by the kernel.
func checkIPv4Header(h []byte, n int) (hlen int, ok bool) {
	if len(h) < ipv4HeaderLen || n < ipv4HeaderLen || h[ipv4VersionIHL]>>4 != 4 {
		return 0, false
	}
	hlen = int(h[ipv4VersionIHL]&0x0f) << 2
	if hlen < ipv4HeaderLen || hlen > n || h[ipv4Protocol] != protocolESP {
		return 0, false
	}
	var totalLen, fragOff int
	switch runtime.GOOS {
	case "darwin", "ios", "dragonfly", "netbsd":
		// These kernels hand raw sockets the length and offset in host
		// byte order, with the header length taken off the total.
		// FreeBSD did the same before 11.0; newer releases, which are all
		// that are supported, use network byte order like the rest.
		totalLen = int(binary.NativeEndian.Uint16(h[ipv4TotalLen:])) + hlen
		fragOff = int(binary.NativeEndian.Uint16(h[ipv4FlagsFragOff:]))
	default:
		totalLen = int(binary.BigEndian.Uint16(h[ipv4TotalLen:]))
		fragOff = int(binary.BigEndian.Uint16(h[ipv4FlagsFragOff:]))
	}
	if totalLen != n || fragOff&(ipv4FlagMF|ipv4FragOffMask) != 0 {
		return 0, false
	}
	return hlen, true
}
