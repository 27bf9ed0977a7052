package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// socketBuffer is the send and receive buffer asked for, as greipsec's
// raw ESP socket does (dataplane/link), so that the ceiling and the
// tunnel queue alike.
const socketBuffer = 7 << 20

// socket opens the socket of c: raw IP protocol 50 or UDP, of dst's family.
func socket(c config) (int, error) {
	family := unix.AF_INET
	if c.dst.Is6() {
		family = unix.AF_INET6
	}
	typ, proto := unix.SOCK_RAW, unix.IPPROTO_ESP
	if c.proto == "udp" {
		typ, proto = unix.SOCK_DGRAM, 0
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return -1, os.NewSyscallError("rawceil: socket", err)
	}
	// Root may go beyond net.core.[rw]mem_max; otherwise the plain
	// option, capped by the kernel.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBuffer) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, socketBuffer)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, socketBuffer) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, socketBuffer)
	}
	return fd, nil
}

// sockPort is the sockaddr port of c: the UDP port, 0 for a raw socket
// (raw(7): an IPv6 raw socket refuses any other than 0 or its protocol).
func (c config) sockPort() int {
	if c.proto == "udp" {
		return c.port
	}
	return 0
}

// send sends packets of c.size bytes to c.dst for c.dur, in sendmmsg
// batches of batchSize, blocking when the socket buffer is full.
func send(c config) (result, error) {
	fd, err := socket(c)
	if err != nil {
		return result{}, err
	}
	defer unix.Close(fd)

	buf := make([]byte, c.size)
	// Something like ESP: SPI 0x100, sequence number 1 (RFC 4303 §2).
	if len(buf) >= 8 {
		binary.BigEndian.PutUint32(buf[0:4], 0x100)
		binary.BigEndian.PutUint32(buf[4:8], 1)
	}
	var name unsafe.Pointer
	var namelen uint32
	var sa4 unix.RawSockaddrInet4
	var sa6 unix.RawSockaddrInet6
	if c.dst.Is4() {
		sa4.Family = unix.AF_INET
		sa4.Addr = c.dst.As4()
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], uint16(c.sockPort()))
		name, namelen = unsafe.Pointer(&sa4), unix.SizeofSockaddrInet4
	} else {
		sa6.Family = unix.AF_INET6
		sa6.Addr = c.dst.As16()
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa6.Port))[:], uint16(c.sockPort()))
		name, namelen = unsafe.Pointer(&sa6), unix.SizeofSockaddrInet6
	}
	var iov unix.Iovec
	iov.Base = &buf[0]
	iov.SetLen(len(buf))
	var hdrs [batchSize]unix.Mmsghdr
	for i := range hdrs {
		hdrs[i].Hdr.Name = (*byte)(name)
		hdrs[i].Hdr.Namelen = namelen
		hdrs[i].Hdr.Iov = &iov
		hdrs[i].Hdr.SetIovlen(1)
	}

	return blast(c, fd, &hdrs)
}

// blast calls sendmmsg with hdrs on fd for c.dur and counts what the
// kernel accepted.
func blast(c config, fd int, hdrs *[batchSize]unix.Mmsghdr) (result, error) {
	var r result
	start := time.Now()
	end := start.Add(c.dur)
	now := start
	for now.Before(end) {
		n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd),
			uintptr(unsafe.Pointer(&hdrs[0])), batchSize, 0, 0, 0)
		switch errno {
		case 0:
			r.Packets += uint64(n)
		case unix.EINTR, unix.ENOBUFS, unix.EAGAIN, unix.ECONNREFUSED:
			// Interrupted; a full device queue; an ICMP error for an
			// earlier packet (the receiver was not bound yet). None ends
			// the run.
		default:
			return result{}, os.NewSyscallError("rawceil: sendmmsg", errno)
		}
		now = time.Now()
	}
	r.Bytes = r.Packets * uint64(c.size)
	r.Seconds = now.Sub(start).Seconds()
	return r, nil
}

// recv binds to c.dst and counts what arrives (see the package comment),
// calling ready once the socket is bound.
func recv(c config, ready func()) (result, error) {
	fd, err := socket(c)
	if err != nil {
		return result{}, err
	}
	defer unix.Close(fd)
	var sa unix.Sockaddr
	if c.dst.Is4() {
		sa = &unix.SockaddrInet4{Port: c.sockPort(), Addr: c.dst.As4()}
	} else {
		sa = &unix.SockaddrInet6{Port: c.sockPort(), Addr: c.dst.As16()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return result{}, os.NewSyscallError(fmt.Sprintf("rawceil: bind %v", c.dst), err)
	}
	timeout := func(d time.Duration) error {
		tv := unix.NsecToTimeval(d.Nanoseconds())
		return os.NewSyscallError("rawceil: setsockopt SO_RCVTIMEO", unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv))
	}
	if err := timeout(c.wait); err != nil {
		return result{}, err
	}

	// An IPv4 raw socket returns the IP header (at most 60 bytes) too.
	ipHeader := c.proto == "esp" && c.dst.Is4()
	slot := c.size + 64
	bufs := make([]byte, batchSize*slot)
	var iovs [batchSize]unix.Iovec
	var hdrs [batchSize]unix.Mmsghdr
	for i := range hdrs {
		iovs[i].Base = &bufs[i*slot]
		iovs[i].SetLen(slot)
		hdrs[i].Hdr.Iov = &iovs[i]
		hdrs[i].Hdr.SetIovlen(1)
	}
	ready()

	var r result
	var first, last time.Time
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd),
			uintptr(unsafe.Pointer(&hdrs[0])), batchSize, unix.MSG_WAITFORONE, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno == unix.EAGAIN {
			if r.Packets == 0 {
				return result{}, fmt.Errorf("rawceil: no packet to %v within %v", c.dst, c.wait)
			}
			break // -idle without a packet: the stream has ended
		}
		if errno != 0 {
			return result{}, os.NewSyscallError("rawceil: recvmmsg", errno)
		}
		now := time.Now()
		if r.Packets == 0 {
			first = now
			if err := timeout(c.idle); err != nil {
				return result{}, err
			}
		}
		last = now
		for i := range int(n) {
			l := int(hdrs[i].Len)
			if ipHeader && l > 0 {
				l -= int(bufs[i*slot]&0x0f) * 4
			}
			r.Bytes += uint64(max(l, 0))
		}
		r.Packets += uint64(n)
		if now.Sub(first) >= c.dur {
			break
		}
	}
	r.Seconds = last.Sub(first).Seconds()
	return r, nil
}

// sendPacket is send for -tx packet: whole IPv4 packets through an
// AF_PACKET socket on c.dev to c.mac, bypassing the qdisc.
func sendPacket(c config) (result, error) {
	ifi, err := net.InterfaceByName(c.dev)
	if err != nil {
		return result{}, fmt.Errorf("rawceil: -dev: %w", err)
	}
	src, err := ipv4Of(ifi)
	if err != nil {
		return result{}, err
	}
	proto := htons(unix.ETH_P_IP)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return result{}, os.NewSyscallError("rawceil: socket AF_PACKET", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		return result{}, os.NewSyscallError("rawceil: setsockopt PACKET_QDISC_BYPASS", err)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, socketBuffer) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, socketBuffer)
	}
	sll := unix.RawSockaddrLinklayer{Family: unix.AF_PACKET, Protocol: proto, Ifindex: int32(ifi.Index), Halen: 6}
	copy(sll.Addr[:], c.mac)

	// The IPv4 header, then something like ESP: SPI 0x100, sequence
	// number 1.
	pkt := make([]byte, 20+c.size)
	ipv4Header(pkt, src, c.dst.As4(), unix.IPPROTO_ESP, len(pkt))
	if c.size >= 8 {
		binary.BigEndian.PutUint32(pkt[20:], 0x100)
		binary.BigEndian.PutUint32(pkt[24:], 1)
	}
	var iov unix.Iovec
	iov.Base = &pkt[0]
	iov.SetLen(len(pkt))
	var hdrs [batchSize]unix.Mmsghdr
	for i := range hdrs {
		hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&sll))
		hdrs[i].Hdr.Namelen = unix.SizeofSockaddrLinklayer
		hdrs[i].Hdr.Iov = &iov
		hdrs[i].Hdr.SetIovlen(1)
	}
	return blast(c, fd, &hdrs)
}

// ipv4Of returns the first IPv4 address of ifi.
func ipv4Of(ifi *net.Interface) ([4]byte, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return [4]byte{}, fmt.Errorf("rawceil: addresses of %s: %w", ifi.Name, err)
	}
	for _, a := range addrs {
		if p, ok := a.(*net.IPNet); ok {
			if v4 := p.IP.To4(); v4 != nil {
				return [4]byte(v4), nil
			}
		}
	}
	return [4]byte{}, fmt.Errorf("rawceil: %s has no IPv4 address", ifi.Name)
}
