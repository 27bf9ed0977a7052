//go:build darwin || openbsd

package tun

import "unsafe"

// addIPv6 adds an IPv6 address with SIOCAIFADDR_IN6.
func addIPv6(s6 int, req *in6AliasReq) error {
	return ioctl(s6, siocAIFADDRIn6, unsafe.Pointer(req))
}
