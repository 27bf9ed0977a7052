package link

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
)

// rawBatchSize is what rawBind.BatchSize reports.
const rawBatchSize = conn.IdealBatchSize

// rawSocket is one raw ESP socket of one address family. It is safe for
// concurrent use.
//
// Sending goes through x/net's ipv4/ipv6 PacketConn.WriteBatch (sendmmsg).
// Receiving calls recvmmsg itself: x/net's ReadBatch allocates a net.IPAddr
// and its net.IP for every message it returns, which this path must not do.
type rawSocket struct {
	conn *net.IPConn
	rc   syscall.RawConn
	is6  bool
	pc4  *ipv4.PacketConn // set when !is6
	pc6  *ipv6.PacketConn // set when is6

	recvPool sync.Pool // *recvBatch
	sendPool sync.Pool // *sendBatch

	// onICMP is the Bind's handler of ICMP errors (rawBind.onICMP).
	onICMP *atomic.Pointer[func(*ICMPError)]
}

// recvBatch is the state of one recvmmsg call, pooled so that receiving
// allocates nothing in steady state.
type recvBatch struct {
	hdrs  [rawBatchSize]unix.Mmsghdr
	iovs  [2 * rawBatchSize]unix.Iovec
	names [rawBatchSize]unix.RawSockaddrInet6 // large enough for IPv4 too
	// ip4 receives the fixed part of each IPv4 header, so that the ESP
	// packet lands at the start of the caller's buffer unless the header
	// has options (see receive).
	ip4 [rawBatchSize][ipv4HeaderLen]byte

	vlen   int
	n      int
	errno  syscall.Errno
	readFn func(fd uintptr) bool // r.read, bound once
}

// read is the body of the RawConn.Read call: one non-blocking recvmmsg.
func (r *recvBatch) read(fd uintptr) bool {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd,
			uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(r.vlen), 0, 0, 0)
		switch errno {
		case 0:
			r.n, r.errno = int(n), 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // wait until readable
		default:
			r.n, r.errno = 0, errno
			return true
		}
	}
}

// sendBatch is the state of one WriteBatch call, pooled like recvBatch.
type sendBatch struct {
	msgs []ipv6.Message // ipv4.Message is the same type
	ip   [16]byte
	addr net.IPAddr
}

func openRawSocket(is6 bool, local netip.Addr) (*rawSocket, error) {
	c, err := listenRaw(is6, local)
	if err != nil {
		return nil, err
	}
	rc, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	// Root may go beyond net.core.rmem_max/wmem_max; best effort.
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBufferSize)
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, socketBufferSize)
	})
	// ICMP errors for our packets go to the error queue (ip(7) IP_RECVERR,
	// ipv6(7) IPV6_RECVERR), where receive reads them: "fragmentation
	// needed" and "packet too big" are how the path MTU is learned.
	var operr error
	err = rc.Control(func(fd uintptr) {
		if is6 {
			operr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1)
		} else {
			operr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVERR, 1)
		}
	})
	if err == nil && operr != nil {
		err = os.NewSyscallError("setsockopt IP_RECVERR", operr)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("link: raw ESP: %w", err)
	}
	s := &rawSocket{conn: c, rc: rc, is6: is6}
	if is6 {
		s.pc6 = ipv6.NewPacketConn(c)
	} else {
		s.pc4 = ipv4.NewPacketConn(c)
	}
	s.recvPool.New = func() any {
		r := new(recvBatch)
		r.readFn = r.read
		return r
	}
	s.sendPool.New = func() any {
		b := &sendBatch{msgs: make([]ipv6.Message, rawBatchSize)}
		for i := range b.msgs {
			b.msgs[i].Buffers = make(net.Buffers, 1)
		}
		return b
	}
	return s, nil
}

// close closes the socket; on a nil socket it does nothing.
func (s *rawSocket) close() error {
	if s == nil {
		return nil
	}
	return s.conn.Close()
}

// setMark sets SO_MARK; on a nil socket it does nothing.
func (s *rawSocket) setMark(mark uint32) error {
	if s == nil {
		return nil
	}
	var operr error
	err := s.rc.Control(func(fd uintptr) {
		operr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
	})
	if err == nil && operr != nil {
		err = os.NewSyscallError("setsockopt SO_MARK", operr)
	}
	return err
}

// setDontFragment sets the socket's path MTU discovery mode. With df, an
// IPv4 socket uses IP_PMTUDISC_PROBE: DF set, never fragmented locally,
// whatever the kernel's path MTU cache says, so the sender alone sizes its
// packets and a packet that reaches the path's bottleneck draws the ICMP
// error the path MTU is learned from. An IPv6 socket uses
// IPV6_PMTUDISC_WANT: whole packets within the learned path MTU, and
// local fragmentation beyond it, which the sender asks for only for inner
// IPv6 packets of up to 1280 bytes that the path cannot carry whole once
// encapsulated (RFC 8200 §5 promises inner senders 1280; an IPv6 path of
// 1280 leaves less). Without df: IP_PMTUDISC_DONT and IPV6_PMTUDISC_DONT,
// the kernel fragments (DF clear). On a nil socket it does nothing.
func (s *rawSocket) setDontFragment(df bool) error {
	if s == nil {
		return nil
	}
	level, opt, v := unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DONT
	if df {
		v = unix.IP_PMTUDISC_PROBE
	}
	if s.is6 {
		level, opt, v = unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DONT
		if df {
			v = unix.IPV6_PMTUDISC_WANT
		}
	}
	var operr error
	err := s.rc.Control(func(fd uintptr) { operr = unix.SetsockoptInt(int(fd), level, opt, v) })
	if err == nil && operr != nil {
		err = os.NewSyscallError("setsockopt MTU_DISCOVER", operr)
	}
	return err
}

// maxErrorsPerDrain bounds the error queue entries read in one go, so a
// flood of ICMP errors cannot hold a receiver: the kernel bounds the queue
// by the socket's receive buffer, and the rest waits for the next wake-up.
const maxErrorsPerDrain = 64

// drainErrors reads the socket's error queue and hands each ICMP error to
// the Bind's handler. It returns the number of entries read. It is the
// rare path (an ICMP error arrived) and may allocate.
func (s *rawSocket) drainErrors() int {
	var data [8]byte // the ESP header: SPI and sequence number
	var oob [256]byte
	n := 0
	var fn func(*ICMPError)
	if p := s.onICMP; p != nil {
		if f := p.Load(); f != nil {
			fn = *f
		}
	}
	_ = s.rc.Control(func(fd uintptr) {
		for n < maxErrorsPerDrain {
			dn, oobn, _, from, err := unix.Recvmsg(int(fd), data[:], oob[:], unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
			if err != nil {
				return
			}
			n++
			var dst netip.Addr
			switch sa := from.(type) {
			case *unix.SockaddrInet4:
				dst = netip.AddrFrom4(sa.Addr)
			case *unix.SockaddrInet6:
				dst = netip.AddrFrom16(sa.Addr).Unmap()
			}
			if e, ok := parseICMPError(data[:dn], oob[:oobn], dst); ok && fn != nil {
				fn(&e)
			}
		}
	})
	return n
}

// setIovec points iov at b.
func setIovec(iov *unix.Iovec, b []byte) {
	if len(b) == 0 {
		iov.Base = nil
	} else {
		iov.Base = &b[0]
	}
	iov.SetLen(len(b))
}

// receive reads up to len(packets) packets with one recvmmsg, blocking until
// there is at least one. A packet that is dropped (truncated, or with a bad
// IPv4 header) gets size 0 and a nil endpoint.
func (s *rawSocket) receive(cache *endpointCache, packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
	r := s.recvPool.Get().(*recvBatch)
	defer s.recvPool.Put(r)
	vlen := min(len(packets), len(r.hdrs))
	if vlen == 0 {
		return 0, nil
	}
	for i := range vlen {
		h := &r.hdrs[i]
		h.Len = 0
		h.Hdr = unix.Msghdr{
			Name:    (*byte)(unsafe.Pointer(&r.names[i])),
			Namelen: unix.SizeofSockaddrInet6,
		}
		if s.is6 {
			// IPv6 raw sockets deliver no IPv6 header (RFC 3542 §3).
			iov := &r.iovs[2*i]
			setIovec(iov, packets[i])
			h.Hdr.Iov = iov
			h.Hdr.SetIovlen(1)
		} else {
			// IPv4 raw sockets deliver the IPv4 header: scatter its
			// fixed part into r.ip4[i] and the rest into the buffer.
			iov := r.iovs[2*i : 2*i+2]
			iov[0].Base = &r.ip4[i][0]
			iov[0].SetLen(ipv4HeaderLen)
			setIovec(&iov[1], packets[i])
			h.Hdr.Iov = &iov[0]
			h.Hdr.SetIovlen(2)
		}
	}
	r.vlen = vlen
	err := s.rc.Read(r.readFn)
	// An ICMP error for a packet we sent sets the socket's error (which
	// recvmmsg returns once) and queues the details (IP_RECVERR): read
	// them, and read again.
	for err == nil && r.errno != 0 && s.drainErrors() > 0 {
		err = s.rc.Read(r.readFn)
	}
	// Let go of the caller's buffers before r goes back to the pool.
	for i := range 2 * vlen {
		r.iovs[i].Base = nil
	}
	if err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, os.NewSyscallError("recvmmsg", r.errno)
	}

	var lastKey endpointKey
	var lastEP *Endpoint
	for i := range r.n {
		h := &r.hdrs[i]
		sizes[i], eps[i] = 0, nil
		if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
			continue
		}
		size := int(h.Len)
		if !s.is6 {
			hlen, ok := checkIPv4Header(r.ip4[i][:], size)
			if !ok {
				continue
			}
			// Options, if any, were read into the start of the
			// buffer: move the ESP packet down over them.
			if opt := hlen - ipv4HeaderLen; opt > 0 {
				copy(packets[i], packets[i][opt:size-ipv4HeaderLen])
			}
			size -= hlen
		}
		k, ok := sourceKey(&r.names[i], h.Hdr.Namelen)
		if !ok {
			continue
		}
		if lastEP == nil || k != lastKey {
			lastKey, lastEP = k, cache.get(k)
		}
		sizes[i], eps[i] = size, lastEP
	}
	return r.n, nil
}

// sourceKey reads the source address recvmmsg stored in sa.
func sourceKey(sa *unix.RawSockaddrInet6, namelen uint32) (endpointKey, bool) {
	switch sa.Family {
	case unix.AF_INET:
		if namelen < unix.SizeofSockaddrInet4 {
			return endpointKey{}, false
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return endpointKey{addr: netip.AddrFrom4(sa4.Addr)}, true
	case unix.AF_INET6:
		if namelen < unix.SizeofSockaddrInet6 {
			return endpointKey{}, false
		}
		return endpointKey{addr: netip.AddrFrom16(sa.Addr).Unmap(), scope: sa.Scope_id}, true
	}
	return endpointKey{}, false
}

// send writes each buffer as one datagram to dst, whose family is the
// socket's, in as few sendmmsg calls as the kernel allows.
func (s *rawSocket) send(bufs [][]byte, dst netip.Addr) error {
	b := s.sendPool.Get().(*sendBatch)
	defer s.sendPool.Put(b)
	if s.is6 {
		a := dst.As16()
		b.addr.IP = b.ip[:16]
		copy(b.addr.IP, a[:])
		b.addr.Zone = dst.Zone()
	} else {
		a := dst.As4()
		b.addr.IP = b.ip[:4]
		copy(b.addr.IP, a[:])
		b.addr.Zone = ""
	}
	var err error
	used := 0
	for len(bufs) > 0 && err == nil {
		msgs := b.msgs[:min(len(bufs), len(b.msgs))]
		used = max(used, len(msgs))
		for i := range msgs {
			msgs[i].Buffers[0] = bufs[i]
			msgs[i].Addr = &b.addr
		}
		bufs = bufs[len(msgs):]
		for start := 0; start < len(msgs); {
			var n int
			if s.is6 {
				n, err = s.pc6.WriteBatch(msgs[start:], 0)
			} else {
				n, err = s.pc4.WriteBatch(msgs[start:], 0)
			}
			if err != nil {
				break
			}
			if n == 0 {
				err = io.ErrShortWrite
				break
			}
			start += n
		}
	}
	for i := range used {
		b.msgs[i] = ipv6.Message{Buffers: b.msgs[i].Buffers}
		b.msgs[i].Buffers[0] = nil
	}
	return err
}
