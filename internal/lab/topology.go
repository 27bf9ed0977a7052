//go:build linux

package lab

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// This file grows a Lab beyond its two hosts, for scenarios such as a site
// gateway with tunnels to two peer gateways:
//
//	l, _ := lab.New(prefix)            // A and B, joined by <prefix>a0/<prefix>b0
//	c, _ := l.AddHost("c")             // namespace <prefix>c
//	ac, cc, _ := l.Connect(&l.A, c,    // veth <prefix>a1/<prefix>c0
//		[]netip.Prefix{netip.MustParsePrefix("198.51.100.1/24")},
//		[]netip.Prefix{netip.MustParsePrefix("198.51.100.2/24")})
//	l.AddLAN(c, "lan", netip.MustParsePrefix("10.2.0.1/24"))    // <prefix>clan
//
// Close removes the extra hosts with everything in them.

// AddHost creates one more host, the network namespace <prefix><name>, with
// its loopback interface up and no other link; Connect joins it to others.
// name is one letter other than "a" and "b" (the link names must stay
// within IFNAMSIZ), and not a host the lab has already.
func (l *Lab) AddHost(name string) (*Host, error) {
	if len(name) != 1 || name[0] < 'c' || name[0] > 'z' {
		return nil, fmt.Errorf("lab: host name %q must be one letter from c to z", name)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("lab: AddHost after Close")
	}
	for _, h := range l.extra {
		if h.Name == l.Prefix+name {
			return nil, fmt.Errorf("lab: host %s exists", h.Name)
		}
	}
	h := &Host{Name: l.Prefix + name, ns: netns.None()}
	if err := h.create(); err != nil {
		h.destroy()
		return nil, err
	}
	l.extra = append(l.extra, h)
	if err := h.linkUp("lo"); err != nil {
		return nil, err
	}
	return h, nil
}

// Connect joins hosts a and b of the lab with a new veth pair and returns
// the names of its two ends: <prefix><letter><n>, where letter is the
// host's last letter and n counts that host's links (A and B have 0
// already). It adds addrA to a's end and addrB to b's (IPv6 without
// duplicate address detection), brings both up and waits for their
// carrier.
func (l *Lab) Connect(a, b *Host, addrA, addrB []netip.Prefix) (linkA, linkB string, err error) {
	if a == b || a.nl == nil || b.nl == nil {
		return "", "", fmt.Errorf("lab: connect %s and %s: two open hosts of the lab are needed", a.Name, b.Name)
	}
	l.mu.Lock()
	linkA, linkB = a.nextLinkName(), b.nextLinkName()
	l.mu.Unlock()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: linkA},
		PeerName:      linkB,
		PeerNamespace: netlink.NsFd(b.ns),
	}
	if err := a.nl.LinkAdd(veth); err != nil {
		return "", "", fmt.Errorf("lab: create veth pair %s/%s: %w", linkA, linkB, err)
	}
	for _, end := range []struct {
		h     *Host
		link  string
		addrs []netip.Prefix
	}{{a, linkA, addrA}, {b, linkB, addrB}} {
		if err := end.h.addAddrs(end.link, end.addrs); err != nil {
			return "", "", err
		}
		if err := end.h.linkUp(end.link); err != nil {
			return "", "", err
		}
	}
	for _, end := range []struct {
		h    *Host
		link string
	}{{a, linkA}, {b, linkB}} {
		h := *end.h
		h.Link = end.link
		if err := h.waitOperUp(5 * time.Second); err != nil {
			return "", "", err
		}
	}
	return linkA, linkB, nil
}

// AddLAN creates in h a LAN without hosts on it, behind a gateway: a veth
// pair <prefix><letter><name> (with addrs) and <prefix><letter><name>p,
// both ends in h and up (a veth pair rather than a dummy interface: kernels
// built without the dummy module have veth). It returns the name of the
// end with the addresses; the names must fit in 15 characters.
func (l *Lab) AddLAN(h *Host, name string, addrs ...netip.Prefix) (string, error) {
	if h.nl == nil {
		return "", fmt.Errorf("lab: host %q is closed", h.Name)
	}
	ifname := h.Name + name
	if len(ifname)+1 > unix.IFNAMSIZ-1 {
		return "", fmt.Errorf("lab: interface name %qp is longer than %d characters", ifname, unix.IFNAMSIZ-1)
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: ifname}, PeerName: ifname + "p"}
	if err := h.nl.LinkAdd(veth); err != nil {
		return "", fmt.Errorf("lab: %s: add LAN %s: %w", h.Name, ifname, err)
	}
	if err := h.addAddrs(ifname, addrs); err != nil {
		return "", err
	}
	if err := h.linkUp(ifname + "p"); err != nil {
		return "", err
	}
	return ifname, h.linkUp(ifname)
}

// nextLinkName returns the name of h's next veth end. l.mu is held.
func (h *Host) nextLinkName() string {
	if h.links == 0 && h.Link != "" {
		h.links = 1 // A and B have their <prefix>a0, <prefix>b0
	}
	n := h.links
	h.links++
	return fmt.Sprintf("%s%d", h.Name, n)
}

// addAddrs adds addrs to the link called name in h.
func (h *Host) addAddrs(name string, addrs []netip.Prefix) error {
	link, err := h.nl.LinkByName(name)
	if err != nil {
		return fmt.Errorf("lab: %s: %w", h.Name, err)
	}
	for _, p := range addrs {
		addr := &netlink.Addr{IPNet: prefixIPNet(p)}
		if p.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := h.nl.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("lab: %s: add %s to %s: %w", h.Name, p, name, err)
		}
	}
	return nil
}

// linkUp sets the link called name in h up.
func (h *Host) linkUp(name string) error {
	link, err := h.nl.LinkByName(name)
	if err != nil {
		return fmt.Errorf("lab: %s: %w", h.Name, err)
	}
	if err := h.nl.LinkSetUp(link); err != nil {
		return fmt.Errorf("lab: %s: set %s up: %w", h.Name, name, err)
	}
	return nil
}

// routeAdd adds a route to dst via gw in the calling thread's namespace.
func routeAdd(dst, gw string) error {
	p := netip.MustParsePrefix(dst)
	return netlink.RouteAdd(&netlink.Route{Dst: prefixIPNet(p), Gw: netip.MustParseAddr(gw).AsSlice()})
}
