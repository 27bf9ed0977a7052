//go:build linux

package lab

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

/* A routed lab: three hosts, A — R — B.
 *
 *	namespace <prefix>a          namespace <prefix>r                    namespace <prefix>b
 *	  <prefix>a0 ---veth--- <prefix>r0    <prefix>r1 ---veth (MTU mtuB)--- <prefix>b0
 *	  192.0.2.1/24          192.0.2.254/32   192.0.2.253/32                 192.0.2.2/24
 *	  2001:db8:255::1/64    2001:db8:255::fe/128 ::fd/128                   2001:db8:255::2/64
 *
 * A and B have the addresses and prefixes of the two-host lab, so the
 * example configurations work unchanged: each believes the other on-link.
 * R forwards between them and answers ARP and neighbour solicitations for
 * the far host (proxy ARP, proxy NDP), like a transparent router, and
 * sends ICMP errors from its own addresses: "fragmentation needed" and
 * "packet too big" for packets that do not fit the link towards B.
 */

// Addresses of R in a routed lab.
var (
	addrRA4 = netip.MustParsePrefix("192.0.2.254/32")
	addrRB4 = netip.MustParsePrefix("192.0.2.253/32")
	addrRA6 = netip.MustParsePrefix("2001:db8:255::fe/128")
	addrRB6 = netip.MustParsePrefix("2001:db8:255::fd/128")
)

// NewRouted creates a lab of three hosts, A — R — B (see above), with R's
// link towards B and B's link at MTU mtuB (0: the veth default, 1500). The
// lab's R field is set; Close removes all three namespaces. On any error
// everything created so far is removed again.
func NewRouted(prefix string, mtuB int) (*Lab, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	l := twoHosts(prefix)
	l.R = &Host{Name: prefix + "r", Link: prefix + "r0", Addr4: addrRA4, Addr6: addrRA6, ns: netns.None()}
	l.RLinkB = prefix + "r1"
	if err := l.setupRouted(mtuB); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Lab) setupRouted(mtuB int) error {
	for _, h := range []*Host{&l.A, l.R, &l.B} {
		if err := h.create(); err != nil {
			return err
		}
	}
	// a0 (in A) — r0 (in R), r1 (in R) — b0 (in B).
	if err := l.A.nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: l.A.Link},
		PeerName: l.R.Link, PeerNamespace: netlink.NsFd(l.R.ns)}); err != nil {
		return fmt.Errorf("lab: create veth pair %s/%s: %w", l.A.Link, l.R.Link, err)
	}
	if err := l.R.nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: l.RLinkB, MTU: mtuB},
		PeerName: l.B.Link, PeerNamespace: netlink.NsFd(l.B.ns)}); err != nil {
		return fmt.Errorf("lab: create veth pair %s/%s: %w", l.RLinkB, l.B.Link, err)
	}
	if mtuB != 0 {
		b0, err := l.B.nl.LinkByName(l.B.Link)
		if err == nil {
			err = l.B.nl.LinkSetMTU(b0, mtuB)
		}
		if err != nil {
			return fmt.Errorf("lab: %s: set MTU of %s: %w", l.B.Name, l.B.Link, err)
		}
	}
	for _, h := range []*Host{&l.A, &l.B} {
		if err := h.configure(); err != nil {
			return err
		}
	}
	if err := l.configureRouter(); err != nil {
		return err
	}
	for _, h := range []*Host{&l.A, &l.B, l.R} {
		if err := h.waitOperUp(5 * time.Second); err != nil {
			return err
		}
	}
	if err := l.R.waitLinkOperUp(l.RLinkB, 5*time.Second); err != nil {
		return err
	}
	return nil
}

// configureRouter gives R its addresses and routes, turns on forwarding
// and proxy ARP/NDP, and brings its links up.
func (l *Lab) configureRouter() error {
	r := l.R
	lo, err := r.nl.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("lab: %s: %w", r.Name, err)
	}
	if err := r.nl.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lab: %s: set lo up: %w", r.Name, err)
	}
	for _, side := range []struct {
		link         string
		addrs        []netip.Prefix
		far4, far6   netip.Addr // the host on the other side
		near4, near6 netip.Addr // the host on this link
	}{
		{r.Link, []netip.Prefix{addrRA4, addrRA6}, addrB4.Addr(), addrB6.Addr(), addrA4.Addr(), addrA6.Addr()},
		{l.RLinkB, []netip.Prefix{addrRB4, addrRB6}, addrA4.Addr(), addrA6.Addr(), addrB4.Addr(), addrB6.Addr()},
	} {
		if err := r.addAddrs(side.link, side.addrs); err != nil {
			return err
		}
		if err := r.linkUp(side.link); err != nil {
			return err
		}
		link, err := r.nl.LinkByName(side.link)
		if err != nil {
			return fmt.Errorf("lab: %s: %w", r.Name, err)
		}
		for _, near := range []netip.Addr{side.near4, side.near6} {
			bits := 32
			if near.Is6() {
				bits = 128
			}
			route := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: prefixIPNet(netip.PrefixFrom(near, bits)), Scope: netlink.SCOPE_LINK}
			if err := r.nl.RouteAdd(route); err != nil {
				return fmt.Errorf("lab: %s: route to %s via %s: %w", r.Name, near, side.link, err)
			}
		}
		// Answer neighbour solicitations for the far host on this link.
		if err := r.nl.NeighAdd(&netlink.Neigh{LinkIndex: link.Attrs().Index, Family: unix.AF_INET6,
			Flags: netlink.NTF_PROXY, IP: net.IP(side.far6.AsSlice())}); err != nil {
			return fmt.Errorf("lab: %s: proxy NDP for %s on %s: %w", r.Name, side.far6, side.link, err)
		}
	}
	return l.Do(r, func() error {
		for _, s := range []struct{ path, v string }{
			{"ipv4/ip_forward", "1"},
			{"ipv4/conf/all/proxy_arp", "1"},
			{"ipv4/conf/" + r.Link + "/proxy_arp", "1"},
			{"ipv4/conf/" + l.RLinkB + "/proxy_arp", "1"},
			{"ipv6/conf/all/forwarding", "1"},
			{"ipv6/conf/all/proxy_ndp", "1"},
			// Answer proxied solicitations at once, not after up to 0.8 s.
			{"ipv4/neigh/" + r.Link + "/proxy_delay", "0"},
			{"ipv4/neigh/" + l.RLinkB + "/proxy_delay", "0"},
			{"ipv6/neigh/" + r.Link + "/proxy_delay", "0"},
			{"ipv6/neigh/" + l.RLinkB + "/proxy_delay", "0"},
		} {
			if err := os.WriteFile(filepath.Join("/proc/sys/net", s.path), []byte(s.v), 0o644); err != nil {
				return fmt.Errorf("lab: %s: sysctl %s: %w", r.Name, s.path, err)
			}
		}
		return nil
	})
}

// waitLinkOperUp waits until the operational state of h's link name is up.
func (h *Host) waitLinkOperUp(name string, timeout time.Duration) error {
	var state netlink.LinkOperState
	if WaitFor(timeout, func() bool {
		link, err := h.nl.LinkByName(name)
		if err == nil {
			state = link.Attrs().OperState
		}
		return state == netlink.OperUp
	}) {
		return nil
	}
	return fmt.Errorf("lab: %s: %s not up within %v (operational state %s)", h.Name, name, timeout, state)
}
