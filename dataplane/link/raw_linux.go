package link

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
)

// rawBatchSize is what rawBind.BatchSize reports.
const rawBatchSize = conn.IdealBatchSize

// rawSocket is one raw ESP socket of one address family. It is safe for
// concurrent use.
//
// The socket is used in blocking mode and is never registered with Go's
// network poller. A socket in the poller's epoll set has a waiter on its
// wait queue at all times, so the kernel runs an epoll callback, with its
// locks and interrupts off, for every packet that arrives (sk_data_ready)
// and for every sent packet it frees (sk_write_space, which on a veth runs
// for each packet as the peer receives it): a third of the tunnel's
// kernel time at full speed. Out of the poller, the receiving thread is
// woken only when it sleeps in recvmmsg, and while it works on a batch the
// next one queues up without any wake-up; a blocking recvmmsg then takes
// all of it at once.
//
// Closing: close sets closed and shuts the socket down, which wakes a
// receiver blocked in recvmmsg and fails a sender blocked on a full send
// buffer; it then waits for every call in progress (each holds mu for
// reading) before it closes the file descriptor, so that no call can reach
// a descriptor number the process has reused.
type rawSocket struct {
	fd     int
	is6    bool
	mu     sync.RWMutex // held for reading around every use of fd
	closed atomic.Bool

	// lastBatch is the number of packets the last recvmmsg returned.
	lastBatch atomic.Int32

	recvPool sync.Pool // *recvBatch
	sendPool sync.Pool // *sendBatch

	// onICMP is the Bind's handler of ICMP errors (rawBind.onICMP).
	onICMP *atomic.Pointer[func(*ICMPError)]
}

// coalesceDelay and coalesceMinBatch are the receiver's interrupt
// coalescing. When a recvmmsg returned at least coalesceMinBatch packets,
// the socket is busy, and the next recvmmsg waits coalesceDelay first. A
// receiver that is not asleep on the socket costs the sender nothing per
// packet, while waking a sleeping one costs it a wake-up (and on a veth
// the sender's system call delivers the packet to the receiver): on a
// 2-core host, 64 raw 1400-byte packets per sendmmsg through a veth went
// from ~3 to ~40 packets per recvmmsg and from 2.3 to 2.9 Gbit/s. The
// delay is paid only under load, where queues already hold milliseconds;
// an idle socket is read as soon as a packet arrives.
const (
	coalesceDelay    = 50 * time.Microsecond
	coalesceMinBatch = 8
)

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
}

// sendBatch is the state of one sendmmsg call, pooled like recvBatch.
type sendBatch struct {
	hdrs [rawBatchSize]unix.Mmsghdr
	iovs [rawBatchSize]unix.Iovec
	name unix.RawSockaddrInet6 // the destination, for every message

	// The scope of the last zoned IPv6 destination, so that a link-local
	// peer does not cost an interface lookup per call.
	zone    string
	zoneIdx uint32
}

func openRawSocket(is6 bool, local netip.Addr) (*rawSocket, error) {
	fd, err := socketRaw(is6, local)
	if err != nil {
		return nil, fmt.Errorf("link: raw ESP: %w", err)
	}
	s := &rawSocket{fd: fd, is6: is6}
	s.recvPool.New = func() any { return new(recvBatch) }
	s.sendPool.New = func() any { return new(sendBatch) }
	return s, nil
}

// socketRaw opens a blocking raw socket for protocol 50 of one family,
// bound to local unless it is the zero Addr, with large buffers and
// IP_RECVERR: ICMP errors for our packets go to the error queue (ip(7),
// ipv6(7)), where receive reads them: "fragmentation needed" and "packet
// too big" are how the path MTU is learned.
func socketRaw(is6 bool, local netip.Addr) (int, error) {
	family := unix.AF_INET
	if is6 {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, protocolESP)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	fail := func(op string, err error) (int, error) {
		unix.Close(fd)
		return -1, os.NewSyscallError(op, err)
	}
	if local.IsValid() {
		var sa unix.Sockaddr
		if is6 {
			sa6 := &unix.SockaddrInet6{Addr: local.As16()}
			if z := local.Zone(); z != "" {
				sa6.ZoneId = zoneIndex(z)
				if sa6.ZoneId == 0 {
					unix.Close(fd)
					return -1, fmt.Errorf("no interface %q (the zone of %v)", z, local)
				}
			}
			sa = sa6
		} else {
			sa = &unix.SockaddrInet4{Addr: local.As4()}
		}
		if err := unix.Bind(fd, sa); err != nil {
			unix.Close(fd)
			return -1, &net.OpError{Op: "listen", Net: "ip:50", Addr: &net.IPAddr{IP: local.AsSlice(), Zone: local.Zone()}, Err: os.NewSyscallError("bind", err)}
		}
	}
	// Best effort: a smaller buffer only means drops under bursts. Root
	// may go beyond net.core.rmem_max/wmem_max.
	for _, o := range [][2]int{{unix.SO_RCVBUF, unix.SO_RCVBUFFORCE}, {unix.SO_SNDBUF, unix.SO_SNDBUFFORCE}} {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[0], socketBufferSize)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[1], socketBufferSize)
	}
	if is6 {
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1)
	} else {
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVERR, 1)
	}
	if err != nil {
		return fail("setsockopt IP_RECVERR", err)
	}
	return fd, nil
}

// zoneIndex returns the interface index an IPv6 zone names ("eth0" or
// "2"), or 0 if there is no such interface.
func zoneIndex(zone string) uint32 {
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n)
	}
	return 0
}

// acquire starts a use of fd; it reports false once the socket is closed.
// Every true is paired with a release.
func (s *rawSocket) acquire() bool {
	s.mu.RLock()
	if s.closed.Load() {
		s.mu.RUnlock()
		return false
	}
	return true
}

func (s *rawSocket) release() { s.mu.RUnlock() }

// control calls fn with the file descriptor, unless the socket is closed.
func (s *rawSocket) control(fn func(fd int) error) error {
	if !s.acquire() {
		return net.ErrClosed
	}
	defer s.release()
	return fn(s.fd)
}

// close closes the socket; on a nil socket it does nothing. A second close
// returns net.ErrClosed.
func (s *rawSocket) close() error {
	if s == nil {
		return nil
	}
	if s.closed.Swap(true) {
		return net.ErrClosed
	}
	// Wake the calls in progress (see rawSocket), then wait for them.
	// shutdown reports ENOTCONN on an unconnected socket but still marks
	// it shut down and wakes its waiters.
	_ = unix.Shutdown(s.fd, unix.SHUT_RDWR)
	s.mu.Lock()
	defer s.mu.Unlock()
	err := unix.Close(s.fd)
	s.fd = -1
	if err != nil {
		return os.NewSyscallError("close", err)
	}
	return nil
}

// setMark sets SO_MARK; on a nil socket it does nothing.
func (s *rawSocket) setMark(mark uint32) error {
	if s == nil {
		return nil
	}
	return s.control(func(fd int) error {
		return os.NewSyscallError("setsockopt SO_MARK", unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(mark)))
	})
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
	return s.control(func(fd int) error {
		return os.NewSyscallError("setsockopt MTU_DISCOVER", unix.SetsockoptInt(fd, level, opt, v))
	})
}

// maxErrorsPerDrain bounds the error queue entries read in one go, so a
// flood of ICMP errors cannot hold a receiver: the kernel bounds the queue
// by the socket's receive buffer, and the rest waits for the next wake-up.
const maxErrorsPerDrain = 64

// drainErrors reads the error queue of fd (held by the caller) and hands
// each ICMP error to the Bind's handler. It returns the number of entries
// read. It is the rare path (an ICMP error arrived) and may allocate.
func (s *rawSocket) drainErrors(fd int) int {
	var data [8]byte // the ESP header: SPI and sequence number
	var oob [256]byte
	var fn func(*ICMPError)
	if p := s.onICMP; p != nil {
		if f := p.Load(); f != nil {
			fn = *f
		}
	}
	n := 0
	for n < maxErrorsPerDrain {
		dn, oobn, _, from, err := unix.Recvmsg(fd, data[:], oob[:], unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if err != nil {
			break
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
	n, err := s.recvmmsg(r, vlen)
	// Let go of the caller's buffers before r goes back to the pool.
	for i := range 2 * vlen {
		r.iovs[i].Base = nil
	}
	if err != nil {
		return 0, err
	}

	var lastKey endpointKey
	var lastEP *Endpoint
	for i := range n {
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
	return n, nil
}

// recvmmsg fills r's first vlen messages with one blocking recvmmsg
// (MSG_WAITFORONE: it waits for the first packet only) and returns how
// many it filled.
func (s *rawSocket) recvmmsg(r *recvBatch, vlen int) (int, error) {
	if !s.acquire() {
		return 0, net.ErrClosed
	}
	defer s.release()
	if s.lastBatch.Load() >= coalesceMinBatch {
		// Under load: let packets queue up for a moment, and
		// take them in one call (see coalesceDelay).
		_ = unix.Nanosleep(&unix.Timespec{Nsec: coalesceDelay.Nanoseconds()}, nil)
	}
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(s.fd),
			uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(vlen), unix.MSG_WAITFORONE, 0, 0)
		if s.closed.Load() {
			// Woken by close's shutdown, which makes recvmmsg
			// return at once: what it returned is not for us.
			return 0, net.ErrClosed
		}
		switch errno {
		case 0:
			s.lastBatch.Store(int32(n))
			return int(n), nil
		case unix.EINTR, unix.EAGAIN:
			continue
		}
		// An ICMP error for a packet we sent sets the socket's error
		// (which recvmmsg returns once) and queues the details
		// (IP_RECVERR): read them, and read again.
		if s.drainErrors(s.fd) > 0 {
			continue
		}
		return 0, os.NewSyscallError("recvmmsg", errno)
	}
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
// socket's, in as few sendmmsg calls as the kernel allows. It blocks while
// the socket's send buffer is full.
func (s *rawSocket) send(bufs [][]byte, dst netip.Addr) error {
	if !s.acquire() {
		return net.ErrClosed
	}
	defer s.release()
	b := s.sendPool.Get().(*sendBatch)
	defer s.sendPool.Put(b)
	namelen := uint32(unix.SizeofSockaddrInet4)
	if s.is6 {
		namelen = unix.SizeofSockaddrInet6
		b.name = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.As16()}
		if z := dst.Zone(); z != "" {
			if z != b.zone {
				b.zone, b.zoneIdx = z, zoneIndex(z)
			}
			b.name.Scope_id = b.zoneIdx
		}
	} else {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&b.name))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.As4()}
	}
	var err error
	used := 0
	for len(bufs) > 0 && err == nil {
		vlen := min(len(bufs), len(b.hdrs))
		used = max(used, vlen)
		for i := range vlen {
			setIovec(&b.iovs[i], bufs[i])
			b.hdrs[i] = unix.Mmsghdr{Hdr: unix.Msghdr{
				Name:    (*byte)(unsafe.Pointer(&b.name)),
				Namelen: namelen,
				Iov:     &b.iovs[i],
			}}
			b.hdrs[i].Hdr.SetIovlen(1)
		}
		bufs = bufs[vlen:]
		for start := 0; start < vlen; {
			n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd),
				uintptr(unsafe.Pointer(&b.hdrs[start])), uintptr(vlen-start), unix.MSG_NOSIGNAL, 0, 0)
			if errno == unix.EINTR {
				continue
			}
			if s.closed.Load() {
				err = net.ErrClosed
				break
			}
			if errno != 0 {
				err = os.NewSyscallError("sendmmsg", errno)
				break
			}
			if n == 0 {
				err = io.ErrShortWrite
				break
			}
			start += int(n)
		}
	}
	// Let go of the caller's buffers before b goes back to the pool.
	for i := range used {
		b.iovs[i].Base = nil
	}
	return err
}
