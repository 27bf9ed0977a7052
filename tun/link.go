package tun

import (
	"fmt"
	"net/netip"
)

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

// check checks cfg for the interface called name, on every OS, before
// Configure touches anything.
func (cfg LinkConfig) check(name string) error {
	if cfg.MTU < 0 {
		return fmt.Errorf("tun: MTU %d for %s is negative", cfg.MTU, name)
	}
	for i, a := range cfg.Addresses {
		if !a.Prefix.IsValid() {
			return fmt.Errorf("tun: address %d for %s is not a valid prefix", i, name)
		}
		if a.Prefix.Addr().Is4In6() {
			return fmt.Errorf("tun: address %s for %s is IPv4-mapped IPv6; write it as IPv4", a, name)
		}
		if a.Prefix.Addr().Zone() != "" {
			return fmt.Errorf("tun: address %s for %s has a zone", a, name)
		}
		if a.Peer.IsValid() && (a.Peer.Is4() != a.Prefix.Addr().Is4() || a.Peer.Is4In6() || a.Peer.Zone() != "") {
			return fmt.Errorf("tun: address %s for %s: peer is not an address of the same family", a, name)
		}
	}
	for i, p := range cfg.Routes {
		if !p.IsValid() {
			return fmt.Errorf("tun: route %d for %s is not a valid prefix", i, name)
		}
		if p.Addr().Is4In6() || p.Addr().Zone() != "" {
			return fmt.Errorf("tun: route %s for %s is IPv4-mapped or has a zone", p, name)
		}
	}
	return nil
}

// hasIPv6 reports whether cfg gives the interface an IPv6 address or routes
// IPv6 into it: if not, the interface needs no IPv6 at all.
func (cfg LinkConfig) hasIPv6() bool {
	for _, a := range cfg.Addresses {
		if a.Prefix.Addr().Is6() {
			return true
		}
	}
	for _, p := range cfg.Routes {
		if p.Addr().Is6() {
			return true
		}
	}
	return false
}
