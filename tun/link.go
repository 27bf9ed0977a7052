package tun

import "net/netip"

// Address is one address on the inner interface. When Peer is valid the
// address is point-to-point, as in OpenBSD's hostname.gre0
// ("inet 10.255.0.1 255.255.255.252 10.255.0.2").
type Address struct {
	Prefix netip.Prefix // local address and prefix length
	Peer   netip.Addr   // optional point-to-point peer address
}

// LinkConfig is what greipsec sets on the inner interface it creates.
type LinkConfig struct {
	MTU       int
	Addresses []Address
	Routes    []netip.Prefix // routed into the interface, no gateway
}

// String returns the address as `ip addr` would be given it:
// "10.255.0.1/30", or "10.255.0.1/30 peer 10.255.0.2" when point-to-point.
func (a Address) String() string {
	if a.Peer.IsValid() {
		return a.Prefix.String() + " peer " + a.Peer.String()
	}
	return a.Prefix.String()
}
