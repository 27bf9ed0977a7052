package tun

import "unsafe"

// addIPv6 adds an IPv6 address with FreeBSD's SIOCAIFADDR_IN6, whose
// in6_aliasreq ends with a CARP virtual host ID (0: none).
func addIPv6(s6 int, req *in6AliasReq) error {
	r := in6AliasReqVHID{in6AliasReq: *req}
	return ioctl(s6, siocAIFADDRIn6VHID, unsafe.Pointer(&r))
}
