package tun

import (
	"net/netip"
	"testing"
	"unsafe"
)

// TestBSDLayouts checks the structures of link_bsd_types.go against the
// sizes their C declarations have on the 64-bit BSD kernels, which the
// ioctl numbers published in the headers and in golang.org/x/sys/unix
// encode (_IOW puts the size in bits 16-28). Configure cannot run on
// Linux; this is what can be checked here of its macOS, FreeBSD and OpenBSD
// code.
func TestBSDLayouts(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want uintptr
	}{
		{"sockaddr_in", unsafe.Sizeof(sockaddrIn{}), 16},
		{"sockaddr_in6", unsafe.Sizeof(sockaddrIn6{}), 28},
		{"struct ifreq (addr)", unsafe.Sizeof(ifreqAddr{}), 32},
		{"struct ifreq (flags)", unsafe.Sizeof(ifreqFlags{}), 32},
		{"struct ifreq (mtu)", unsafe.Sizeof(ifreqMTU{}), 32},
		{"struct in_aliasreq", unsafe.Sizeof(inAliasReq{}), 64},
		{"struct in6_addrlifetime", unsafe.Sizeof(in6AddrLifetime{}), 24},
		{"struct in6_aliasreq (macOS, OpenBSD)", unsafe.Sizeof(in6AliasReq{}), 128},
		{"struct in6_aliasreq (FreeBSD)", unsafe.Sizeof(in6AliasReqVHID{}), 136},
		{"struct in6_ifreq", unsafe.Sizeof(in6Ifreq{}), 288},
		{"in6_aliasreq.ifra_flags", unsafe.Offsetof(in6AliasReq{}.Flags), 100},
		{"in6_aliasreq.ifra_lifetime", unsafe.Offsetof(in6AliasReq{}.Lifetime), 104},
		{"in6_aliasreq.ifra_vhid (FreeBSD)", unsafe.Offsetof(in6AliasReqVHID{}.VHID), 128},
		{"ifreq.ifr_flags", unsafe.Offsetof(ifreqFlags{}.Flags), 16},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, tc.got, tc.want)
		}
	}
	for _, tc := range []struct {
		name      string
		got, want uint
	}{
		// SIOCAIFADDR and SIOCDIFADDR as golang.org/x/sys/unix defines them
		// for darwin, freebsd and openbsd (zerrors_*_amd64.go).
		{"SIOCAIFADDR", siocAIFADDR, 0x8040691a},
		{"SIOCDIFADDR", siocDIFADDR, 0x80206919},
		// macOS bsd/netinet6/in6_var.h; OpenBSD sys/netinet6/in6_var.h.
		{"SIOCAIFADDR_IN6", siocAIFADDRIn6, 0x8080691a},
		// FreeBSD sys/netinet6/in6_var.h: _IOW('i', 27, struct in6_aliasreq).
		{"SIOCAIFADDR_IN6 (FreeBSD)", siocAIFADDRIn6VHID, 0x8088691b},
		{"SIOCDIFADDR_IN6", siocDIFADDRIn6, 0x81206919},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %#x, want %#x", tc.name, tc.got, tc.want)
		}
	}
}

func TestBSDSockaddrs(t *testing.T) {
	sa := sockaddr4(netip.MustParseAddr("10.255.0.1"))
	if b := (*[16]byte)(unsafe.Pointer(&sa)); *b != [16]byte{16, 2, 0, 0, 10, 255, 0, 1} {
		t.Errorf("sockaddr_in bytes %x", *b)
	}
	sa6 := sockaddr6(netip.MustParseAddr("fd00::1"), 28)
	b := (*[28]byte)(unsafe.Pointer(&sa6))
	if b[0] != 28 || b[1] != 28 || b[8] != 0xfd || b[23] != 1 {
		t.Errorf("sockaddr_in6 bytes %x", *b)
	}
	for _, tc := range []struct {
		addr string
		bits int
		want string
	}{
		{"10.0.0.1", 30, "255.255.255.252"},
		{"10.0.0.1", 0, "0.0.0.0"},
		{"10.0.0.1", 32, "255.255.255.255"},
		{"fd00::1", 64, "ffff:ffff:ffff:ffff::"},
		{"fd00::1", 127, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"},
	} {
		if got := prefixMask(netip.MustParseAddr(tc.addr), tc.bits); got.String() != tc.want {
			t.Errorf("prefixMask(%s, %d) = %s, want %s", tc.addr, tc.bits, got, tc.want)
		}
	}
	if n := ifName("utun12"); string(n[:7]) != "utun12\x00" {
		t.Errorf("ifName = %q", n)
	}
}
