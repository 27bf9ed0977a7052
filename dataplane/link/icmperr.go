package link

import (
	"encoding/binary"
	"net/netip"
)

// ICMPError is an ICMP error that arrived for an ESP packet a Bind sent, as
// the kernel queued it on the socket's error queue (Linux IP_RECVERR and
// IPV6_RECVERR, ip(7) and ipv6(7)). The kernel has already matched the
// quoted header to the socket; the dataplane matches Dst and SPI to a
// tunnel before it believes it.
type ICMPError struct {
	Dst        netip.Addr // the destination of the packet the error is about (the quoted header's)
	From       netip.Addr // who sent the error (SO_EE_OFFENDER); invalid if the kernel gave none
	Is6        bool       // ICMPv6 (SO_EE_ORIGIN_ICMP6), else ICMPv4
	Type, Code uint8      // the ICMP type and code
	MTU        int        // ee_info: the next-hop MTU of "fragmentation needed" (RFC 1191 §4) or "packet too big" (RFC 4443 §3.2)
	SPI        uint32     // the SPI of the quoted ESP packet (RFC 4303 §2.1), when HasSPI
	HasSPI     bool
}

// TooBig reports whether e is ICMPv4 "fragmentation needed and DF set"
// (type 3 code 4, RFC 792, RFC 1191) or ICMPv6 "packet too big" (type 2,
// RFC 4443 §3.2).
func (e *ICMPError) TooBig() bool {
	if e.Is6 {
		return e.Type == 2
	}
	return e.Type == 3 && e.Code == 4
}

// ICMPErrorReporter is implemented by Binds that read their sockets' error
// queues: fn is called for each ICMP error that arrives for a packet they
// sent, from the goroutine of a ReceiveFunc. fn must not retain e.
type ICMPErrorReporter interface {
	SetICMPErrorHandler(fn func(e *ICMPError))
}

// DontFragmentSetter is implemented by Binds whose outer packets' DF bit
// (IPv4) or local fragmentation (IPv6) greipsec chooses.
type DontFragmentSetter interface {
	// SetDontFragment(true) sends outer packets with DF set: IPv4 never
	// fragmented by this host (IP_PMTUDISC_PROBE), the sender keeps its
	// packets within the path MTU itself; IPv6 fragmented locally only
	// beyond the learned path MTU (IPV6_PMTUDISC_WANT). The default.
	// SetDontFragment(false) lets the kernel fragment outer packets
	// (IP_PMTUDISC_DONT).
	SetDontFragment(df bool) error
}

// Layout of struct sock_extended_err (linux/errqueue.h), host byte order.
const (
	sizeofSockExtendedErr = 16
	eeOriginICMP          = 2
	eeOriginICMP6         = 3
)

// Control message levels and types of the error queue (linux/in.h,
// linux/in6.h); the same numbers on every Linux architecture.
const (
	solIP          = 0
	solIPv6        = 41
	cmsgIPRecvErr  = 11 // IP_RECVERR
	cmsgIPv6RecErr = 25 // IPV6_RECVERR
)

// parseICMPError reads one message of the error queue: data is what
// recvmsg(MSG_ERRQUEUE) returned (the quoted packet from the ESP header on:
// the kernel removes the quoted IP header of a raw socket's packet), oob
// its control messages and dst the address it put in msg_name (the quoted
// packet's destination). It reports false for anything that is not an ICMP
// or ICMPv6 error: local errors, malformed control messages.
func parseICMPError(data, oob []byte, dst netip.Addr) (ICMPError, bool) {
	for len(oob) >= cmsgHeaderLen {
		l := int(cmsgLen(oob))
		if l < cmsgHeaderLen || l > len(oob) {
			return ICMPError{}, false
		}
		level := int32(binary.NativeEndian.Uint32(oob[cmsgLenSize:]))
		typ := int32(binary.NativeEndian.Uint32(oob[cmsgLenSize+4:]))
		body := oob[cmsgHeaderLen:l]
		next := cmsgAlign(l)
		if next > len(oob) {
			next = len(oob)
		}
		oob = oob[next:]
		if !(level == solIP && typ == cmsgIPRecvErr) && !(level == solIPv6 && typ == cmsgIPv6RecErr) {
			continue
		}
		if len(body) < sizeofSockExtendedErr {
			return ICMPError{}, false
		}
		var e ICMPError
		switch body[4] { // ee_origin
		case eeOriginICMP:
		case eeOriginICMP6:
			e.Is6 = true
		default:
			return ICMPError{}, false
		}
		e.Type, e.Code = body[5], body[6]
		info := binary.NativeEndian.Uint32(body[8:])
		if info > 0xffff {
			info = 0 // no MTU is that large; not one we believe
		}
		e.MTU = int(info)
		e.From = offender(body[sizeofSockExtendedErr:])
		e.Dst = dst.Unmap()
		if len(data) >= 4 {
			e.SPI, e.HasSPI = binary.BigEndian.Uint32(data), true
		}
		return e, true
	}
	return ICMPError{}, false
}

// offender reads the sockaddr_in or sockaddr_in6 that follows struct
// sock_extended_err (SO_EE_OFFENDER).
func offender(b []byte) netip.Addr {
	if len(b) < 2 {
		return netip.Addr{}
	}
	switch binary.NativeEndian.Uint16(b) {
	case afInet:
		if len(b) >= 8 {
			return netip.AddrFrom4([4]byte(b[4:8]))
		}
	case afInet6:
		if len(b) >= 24 {
			return netip.AddrFrom16([16]byte(b[8:24])).Unmap()
		}
	}
	return netip.Addr{}
}

// struct cmsghdr on Linux: a size_t length, then int level and type,
// aligned to size_t. Only 64-bit and 32-bit layouts exist.
const (
	afInet  = 2
	afInet6 = 10
)

var (
	cmsgLenSize   = sizeofPtr
	cmsgHeaderLen = cmsgAlign(sizeofPtr + 8)
)

func cmsgLen(b []byte) uint64 {
	if cmsgLenSize == 8 {
		return binary.NativeEndian.Uint64(b)
	}
	return uint64(binary.NativeEndian.Uint32(b))
}

func cmsgAlign(n int) int { return (n + sizeofPtr - 1) &^ (sizeofPtr - 1) }
