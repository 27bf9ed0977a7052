package tun

// The structures that the BSD-derived kernels (macOS, FreeBSD, OpenBSD)
// take in the interface ioctls Configure uses there, laid out as their
// headers declare them, and the ioctl request numbers, which encode each
// structure's size. They are defined for every OS, without a build
// constraint, so that the tests check the layouts against the numbers the
// kernels publish on any machine, Linux CI included.

import (
	"net/netip"
	"unsafe"
)

// ifNameSize is IFNAMSIZ on every BSD.
const ifNameSize = 16

// sockaddrIn is struct sockaddr_in (netinet/in.h), with the BSD length
// byte first.
type sockaddrIn struct {
	Len    uint8
	Family uint8
	Port   [2]byte
	Addr   [4]byte
	Zero   [8]byte
}

// sockaddrIn6 is struct sockaddr_in6 (netinet6/in6.h).
type sockaddrIn6 struct {
	Len      uint8
	Family   uint8
	Port     [2]byte
	Flowinfo uint32
	Addr     [16]byte
	ScopeID  uint32
}

// ifreqAddr is struct ifreq (net/if.h) holding ifru_addr; the union is 16
// bytes on the 64-bit kernels.
type ifreqAddr struct {
	Name [ifNameSize]byte
	Addr sockaddrIn
}

// ifreqFlags is struct ifreq holding ifru_flags (a short).
type ifreqFlags struct {
	Name  [ifNameSize]byte
	Flags int16
	_     [14]byte
}

// ifreqMTU is struct ifreq holding ifru_mtu (an int).
type ifreqMTU struct {
	Name [ifNameSize]byte
	MTU  int32
	_    [12]byte
}

// inAliasReq is struct in_aliasreq (netinet/in_var.h) of macOS and OpenBSD,
// and FreeBSD's struct oifaliasreq, which its SIOCAIFADDR of the same
// number (OSIOCAIFADDR, "9.x compat" in sys/netinet/in.c) still takes.
// DstAddr is ifra_dstaddr on a point-to-point interface and ifra_broadaddr
// otherwise.
type inAliasReq struct {
	Name    [ifNameSize]byte
	Addr    sockaddrIn
	DstAddr sockaddrIn
	Mask    sockaddrIn
}

// in6AddrLifetime is struct in6_addrlifetime (netinet6/in6_var.h); time_t
// is 64 bits on all three.
type in6AddrLifetime struct {
	Expire    int64
	Preferred int64
	Vltime    uint32
	Pltime    uint32
}

// in6AliasReq is struct in6_aliasreq (netinet6/in6_var.h) of macOS and
// OpenBSD.
type in6AliasReq struct {
	Name       [ifNameSize]byte
	Addr       sockaddrIn6
	DstAddr    sockaddrIn6
	PrefixMask sockaddrIn6
	Flags      int32
	Lifetime   in6AddrLifetime
}

// in6AliasReqVHID is FreeBSD's struct in6_aliasreq (since 10.0), which ends
// with the CARP virtual host ID.
type in6AliasReqVHID struct {
	in6AliasReq
	VHID int32
	_    [4]byte
}

// in6Ifreq is struct in6_ifreq (netinet6/in6_var.h) holding ifru_addr. Its
// union is as large as its largest member, struct icmp6_ifstat: 34
// 64-bit counters.
type in6Ifreq struct {
	Name [ifNameSize]byte
	Addr sockaddrIn6
	_    [34*8 - 28]byte
}

// iow is _IOW(group, num, size) of sys/ioccom.h: a request that copies
// size bytes into the kernel.
func iow(group byte, num uint8, size uintptr) uint {
	const iocIn = 0x80000000
	const iocParmMask = 0x1fff
	return iocIn | uint(size&iocParmMask)<<16 | uint(group)<<8 | uint(num)
}

// Interface ioctls: netinet6/in6_var.h and sys/sockio.h.
var (
	// siocAIFADDRIn6 is _IOW('i', 26, struct in6_aliasreq) on macOS and
	// OpenBSD; FreeBSD's is number 27 (see siocAIFADDRIn6VHID).
	siocAIFADDRIn6 = iow('i', 26, unsafe.Sizeof(in6AliasReq{}))
	// siocAIFADDRIn6VHID is FreeBSD's _IOW('i', 27, struct in6_aliasreq).
	siocAIFADDRIn6VHID = iow('i', 27, unsafe.Sizeof(in6AliasReqVHID{}))
	// siocDIFADDRIn6 is _IOW('i', 25, struct in6_ifreq) on all three.
	siocDIFADDRIn6 = iow('i', 25, unsafe.Sizeof(in6Ifreq{}))
	// siocAIFADDR and siocDIFADDR are the IPv4 requests, as x/sys/unix
	// defines them on each BSD.
	siocAIFADDR = iow('i', 26, unsafe.Sizeof(inAliasReq{}))
	siocDIFADDR = iow('i', 25, unsafe.Sizeof(ifreqAddr{}))
)

// Address families of the BSDs: AF_INET is 2 everywhere, AF_INET6 differs.
const afINET = 2

func sockaddr4(a netip.Addr) sockaddrIn {
	return sockaddrIn{Len: uint8(unsafe.Sizeof(sockaddrIn{})), Family: afINET, Addr: a.As4()}
}

func sockaddr6(a netip.Addr, afINET6 uint8) sockaddrIn6 {
	return sockaddrIn6{Len: uint8(unsafe.Sizeof(sockaddrIn6{})), Family: afINET6, Addr: a.As16()}
}

// prefixMask returns the netmask of a prefix of bits bits, as an address of
// the family of a.
func prefixMask(a netip.Addr, bits int) netip.Addr {
	b := make([]byte, a.BitLen()/8)
	for i := range bits {
		b[i/8] |= 0x80 >> (i % 8)
	}
	m, _ := netip.AddrFromSlice(b)
	return m
}

func ifName(name string) (n [ifNameSize]byte) {
	copy(n[:ifNameSize-1], name)
	return n
}
