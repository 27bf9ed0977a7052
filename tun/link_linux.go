package tun

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Configure brings the interface called name up with cfg, over rtnetlink in
// the calling thread's network namespace, in this order:
//
//  1. the MTU, when cfg.MTU is not zero;
//  2. each address in cfg.Addresses. An address with a valid Peer is
//     point-to-point, as `ip addr add 10.255.0.1 peer 10.255.0.2/30` makes
//     it: IFA_LOCAL is the local address, IFA_ADDRESS the peer, and the
//     prefix length is that of Prefix, so the kernel routes the peer's
//     prefix into the interface. IPv6 addresses are added with IFA_F_NODAD
//     so that they can be used at once. No IPv4 broadcast address is set;
//  3. when cfg has no IPv6 address and no IPv6 route, IPv6 is switched off
//     on the interface (no link-local address: addr_gen_mode none; and
//     net.ipv6.conf.NAME.disable_ipv6 = 1), so that the host sends no router
//     solicitations, MLD reports or other IPv6 into a tunnel that carries
//     none; and net.ipv{4,6}.conf.NAME.ignore_routes_with_linkdown is set, so
//     that routes through the interface are not used while SetCarrier has
//     its carrier off;
//  4. the link is set up;
//  5. each prefix in cfg.Routes as a route into the interface: main table,
//     scope link, no gateway, no preferred source. Host bits of the prefix
//     are ignored.
//
// Everything in cfg is checked before the interface is touched. If a step
// fails, what the earlier steps added is removed again and the error names
// the step, as in "tun: add address 10.255.0.1/30 to gre0: file exists".
//
// On success Configure returns undo, which deletes the routes and then the
// addresses it added, in reverse order. Undo does not set the link down or
// restore the MTU; the interface itself goes away when its Device is closed.
// Routes or addresses that are already gone (or whose interface is) are not
// an error. Undo may be called more than once and from any goroutine; later
// calls return the first call's result. It acts on the network namespace of
// the thread that calls it.
func Configure(name string, cfg LinkConfig) (undo func() error, err error) {
	addrs, routes, err := checkConfig(name, cfg)
	if err != nil {
		return nil, err
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("tun: find interface %s: %w", name, err)
	}
	c := &configured{name: name, index: link.Attrs().Index}
	fail := func(err error) (func() error, error) {
		if uerr := c.undo(); uerr != nil {
			err = errors.Join(err, uerr)
		}
		return nil, err
	}

	if cfg.MTU != 0 {
		if err := netlink.LinkSetMTU(link, cfg.MTU); err != nil {
			return fail(fmt.Errorf("tun: set MTU %d on %s: %w", cfg.MTU, name, err))
		}
	}
	if !cfg.hasIPv6() {
		if err := disableIPv6(link); err != nil {
			return fail(fmt.Errorf("tun: switch IPv6 off on %s: %w", name, err))
		}
	}
	if err := ignoreLinkdownRoutes(name); err != nil {
		return fail(fmt.Errorf("tun: %s: %w", name, err))
	}
	for i, a := range cfg.Addresses {
		if err := netlink.AddrAdd(link, addrs[i]); err != nil {
			return fail(fmt.Errorf("tun: add address %s to %s: %w", a, name, err))
		}
		c.addrs = append(c.addrs, a)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fail(fmt.Errorf("tun: set %s up: %w", name, err))
	}
	for i, p := range cfg.Routes {
		routes[i].LinkIndex = c.index
		if err := netlink.RouteAdd(routes[i]); err != nil {
			return fail(fmt.Errorf("tun: add route %s dev %s: %w", p.Masked(), name, err))
		}
		c.routes = append(c.routes, routes[i])
	}

	var (
		once    sync.Once
		undoErr error
	)
	return func() error {
		once.Do(func() { undoErr = c.undo() })
		return undoErr
	}, nil
}

// configured records what Configure added to one interface.
type configured struct {
	name   string
	index  int
	addrs  []Address
	routes []*netlink.Route
}

// undo deletes c's routes and then its addresses, newest first, and returns
// every failure but those that mean the thing is already gone.
func (c *configured) undo() error {
	var errs []error
	for i := len(c.routes) - 1; i >= 0; i-- {
		r := c.routes[i]
		if err := netlink.RouteDel(r); err != nil && !isGone(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("tun: delete route %s dev %s: %w", r.Dst, c.name, err))
		}
	}
	for i := len(c.addrs) - 1; i >= 0; i-- {
		a := c.addrs[i]
		// A fresh netlink.Addr: AddrAdd fills in fields of the one it is given.
		na := netlinkAddr(a)
		na.LinkIndex = c.index
		if err := netlink.AddrDel(nil, na); err != nil && !isGone(err, unix.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("tun: delete address %s from %s: %w", a, c.name, err))
		}
	}
	c.routes, c.addrs = nil, nil
	return errors.Join(errs...)
}

// isGone reports whether err says that the object to delete, or its
// interface, no longer exists.
func isGone(err error, notFound unix.Errno) bool {
	return errors.Is(err, notFound) || errors.Is(err, unix.ENODEV)
}

// checkConfig checks cfg and returns the netlink addresses and routes it
// asks for. It does not touch the interface.
func checkConfig(name string, cfg LinkConfig) ([]*netlink.Addr, []*netlink.Route, error) {
	if err := cfg.check(name); err != nil {
		return nil, nil, err
	}
	addrs := make([]*netlink.Addr, len(cfg.Addresses))
	for i, a := range cfg.Addresses {
		addrs[i] = netlinkAddr(a)
	}
	routes := make([]*netlink.Route, len(cfg.Routes))
	for i, p := range cfg.Routes {
		routes[i] = &netlink.Route{
			Dst:   ipNet(p.Masked()),
			Scope: netlink.SCOPE_LINK,
		}
	}
	return addrs, routes, nil
}

// netlinkAddr returns the netlink form of a: local address and prefix
// length, the peer as IFA_ADDRESS when there is one, no broadcast, and no
// duplicate address detection for IPv6.
func netlinkAddr(a Address) *netlink.Addr {
	na := &netlink.Addr{IPNet: ipNet(a.Prefix)}
	if a.Peer.IsValid() {
		// netlink takes the prefix length from Peer when it is set.
		na.Peer = ipNet(netip.PrefixFrom(a.Peer, a.Prefix.Bits()))
	}
	if a.Prefix.Addr().Is4() {
		// Zero stops netlink from deriving a broadcast address; nothing
		// is broadcast on a tunnel.
		na.Broadcast = net.IPv4zero
	} else {
		na.Flags = unix.IFA_F_NODAD
	}
	return na
}

// ipNet converts p, keeping its host bits.
func ipNet(p netip.Prefix) *net.IPNet {
	a := p.Addr()
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(p.Bits(), a.BitLen())}
}

// disableIPv6 switches IPv6 off on link before it is up: no address is
// generated for it (IN6_ADDR_GEN_MODE_NONE, so no fe80:: address and no
// router solicitation from one), and disable_ipv6 stops everything else
// (MLD reports, neighbour discovery). A kernel without IPv6 has nothing to
// switch off.
func disableIPv6(link netlink.Link) error {
	const in6AddrGenModeNone = 1 // IN6_ADDR_GEN_MODE_NONE, linux/if_link.h
	if err := netlink.LinkSetIP6AddrGenMode(link, in6AddrGenModeNone); err != nil &&
		!errors.Is(err, unix.EAFNOSUPPORT) && !errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("addr_gen_mode none: %w", err)
	}
	return writeSysctl("net/ipv6/conf/"+link.Attrs().Name+"/disable_ipv6", "1")
}

// ignoreLinkdownRoutes makes the kernel skip routes through the interface
// called name while it has no carrier (SetCarrier), for both families, so
// that a static route of another tunnel (or BGP's next best path) takes
// over while this one is down.
func ignoreLinkdownRoutes(name string) error {
	for _, fam := range []string{"ipv4", "ipv6"} {
		if err := writeSysctl("net/"+fam+"/conf/"+name+"/ignore_routes_with_linkdown", "1"); err != nil {
			return err
		}
	}
	return nil
}

// writeSysctl writes value to /proc/sys/key, in the network namespace of
// the calling thread. A key that does not exist (a kernel without IPv6) is
// no error.
func writeSysctl(key, value string) error {
	err := os.WriteFile("/proc/sys/"+key, []byte(value), 0)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(key, "/", "."), value, err)
	}
	return nil
}

// SetCarrier turns the carrier of the TUN device dev on or off
// (TUNSETCARRIER, Linux 5.0). Without carrier the interface is
// operationally down: routing daemons such as BIRD and FRR take it as down
// and withdraw what they route through it, and the kernel ignores routes
// through it (Configure sets ignore_routes_with_linkdown). The addresses and
// routes stay, so turning the carrier on again restores everything. A
// device without a file (Memory, netstack) is an error.
func SetCarrier(dev Device, up bool) error {
	f := dev.File()
	if f == nil {
		return errors.New("tun: the device has no carrier to set")
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("tun: set carrier: %w", err)
	}
	v := 0
	if up {
		v = 1
	}
	var ioErr error
	if err := rc.Control(func(fd uintptr) {
		ioErr = unix.IoctlSetPointerInt(int(fd), unix.TUNSETCARRIER, v)
	}); err != nil {
		return fmt.Errorf("tun: set carrier: %w", err)
	}
	if ioErr != nil {
		return fmt.Errorf("tun: set carrier: %w", ioErr)
	}
	return nil
}
