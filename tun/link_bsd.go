//go:build darwin || freebsd || openbsd

package tun

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/net/route"
	"golang.org/x/sys/unix"
)

// Configure brings the interface called name up with cfg, through the
// kernel's interface ioctls and its routing socket (route(4)), as
// ifconfig(8) and route(8) would, in this order:
//
//  1. the MTU (SIOCSIFMTU), when cfg.MTU is not zero;
//  2. each address in cfg.Addresses: IPv4 with SIOCAIFADDR, IPv6 with
//     SIOCAIFADDR_IN6, without duplicate address detection and with
//     infinite lifetimes. On a point-to-point interface (macOS utun,
//     OpenBSD tun) an IPv4 address needs a destination: the Peer, or
//     else the address itself, as wg-quick does on macOS;
//  3. the interface is set up (IFF_UP);
//  4. the routes the kernel may not have made: on a point-to-point
//     interface, where it routes only the destination, each address's
//     prefix; and a Peer outside its prefix that is not the destination.
//     A route that already exists is left as it is;
//  5. each prefix in cfg.Routes as a route into the interface (RTM_ADD
//     with the interface's link address as gateway, no RTF_GATEWAY).
//
// name must be the interface's real name: on macOS the "utunN" that
// Device.Name reports, not "utun". Everything in cfg is checked first; if
// a step fails, what the earlier ones added is removed again. Undo deletes
// the routes and then the addresses it added, newest first; what is already
// gone is not an error. Undo may be called more than once and from any
// goroutine; later calls return the first call's result.
func Configure(name string, cfg LinkConfig) (undo func() error, err error) {
	if err := cfg.check(name); err != nil {
		return nil, err
	}
	if len(name) >= ifNameSize {
		return nil, fmt.Errorf("tun: interface name %q is longer than %d bytes", name, ifNameSize-1)
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("tun: find interface %s: %w", name, err)
	}
	c := &configured{name: name, index: ifi.Index}
	fail := func(err error) (func() error, error) {
		if uerr := c.undo(); uerr != nil {
			err = errors.Join(err, uerr)
		}
		return nil, err
	}

	s4, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		return nil, fmt.Errorf("tun: open socket for interface ioctls: %w", err)
	}
	defer unix.Close(s4)

	if cfg.MTU != 0 {
		req := ifreqMTU{Name: ifName(name), MTU: int32(cfg.MTU)}
		if err := ioctl(s4, unix.SIOCSIFMTU, unsafe.Pointer(&req)); err != nil {
			return fail(fmt.Errorf("tun: set MTU %d on %s: %w", cfg.MTU, name, err))
		}
	}
	flags := ifreqFlags{Name: ifName(name)}
	if err := ioctl(s4, unix.SIOCGIFFLAGS, unsafe.Pointer(&flags)); err != nil {
		return fail(fmt.Errorf("tun: get flags of %s: %w", name, err))
	}
	pointToPoint := flags.Flags&unix.IFF_POINTOPOINT != 0

	for _, a := range cfg.Addresses {
		if err := addAddress(s4, name, a, pointToPoint); err != nil {
			return fail(fmt.Errorf("tun: add address %s to %s: %w", a, name, err))
		}
		c.addrs = append(c.addrs, a)
	}

	flags.Flags |= unix.IFF_UP
	if err := ioctl(s4, unix.SIOCSIFFLAGS, unsafe.Pointer(&flags)); err != nil {
		return fail(fmt.Errorf("tun: set %s up: %w", name, err))
	}

	// Routes the kernel may not have made: an address's prefix on a
	// point-to-point interface, and a peer outside the prefix where it is
	// not the interface's destination. One that exists is left alone.
	for _, a := range cfg.Addresses {
		var want []netip.Prefix
		if p := a.Prefix.Masked(); pointToPoint && p.Bits() < p.Addr().BitLen() {
			want = append(want, p)
		}
		if a.Peer.IsValid() && !a.Prefix.Contains(a.Peer) && !(pointToPoint && a.Peer.Is4()) {
			want = append(want, netip.PrefixFrom(a.Peer, a.Peer.BitLen()))
		}
		for _, p := range want {
			err := c.route(unix.RTM_ADD, p)
			if errors.Is(err, unix.EEXIST) {
				continue
			}
			if err != nil {
				return fail(fmt.Errorf("tun: add route %s dev %s: %w", p, name, err))
			}
			c.routes = append(c.routes, p)
		}
	}
	for _, p := range cfg.Routes {
		if err := c.route(unix.RTM_ADD, p.Masked()); err != nil {
			return fail(fmt.Errorf("tun: add route %s dev %s: %w", p.Masked(), name, err))
		}
		c.routes = append(c.routes, p.Masked())
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

// addAddress adds a with SIOCAIFADDR or SIOCAIFADDR_IN6.
func addAddress(s4 int, name string, a Address, pointToPoint bool) error {
	ip := a.Prefix.Addr()
	if ip.Is4() {
		req := inAliasReq{
			Name: ifName(name),
			Addr: sockaddr4(ip),
			Mask: sockaddr4(prefixMask(ip, a.Prefix.Bits())),
		}
		// ifra_dstaddr on a point-to-point interface; on a broadcast one
		// the same field is ifra_broadaddr, which the kernel derives
		// from the mask when it is left empty.
		if pointToPoint {
			req.DstAddr = sockaddr4(ip)
			if a.Peer.IsValid() {
				req.DstAddr = sockaddr4(a.Peer)
			}
		}
		return ioctl(s4, siocAIFADDR, unsafe.Pointer(&req))
	}

	s6, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s6)
	req := in6AliasReq{
		Name:       ifName(name),
		Addr:       sockaddr6(ip, unix.AF_INET6),
		PrefixMask: sockaddr6(prefixMask(ip, a.Prefix.Bits()), unix.AF_INET6),
		Flags:      in6IffNoDAD,
		Lifetime:   in6AddrLifetime{Vltime: nd6InfiniteLifetime, Pltime: nd6InfiniteLifetime},
	}
	// No ifra_dstaddr: with one, the kernel insists on a /128 (KAME's
	// in6_update_ifa); a peer outside the prefix gets a route instead.
	return addIPv6(s6, &req)
}

// configured records what Configure added to one interface.
type configured struct {
	name   string
	index  int
	addrs  []Address
	routes []netip.Prefix
}

// IPv6 address flags and lifetimes (netinet6/in6_var.h, netinet6/nd6.h).
const (
	in6IffNoDAD         = 0x0020 // IN6_IFF_NODAD: skip duplicate address detection
	nd6InfiniteLifetime = 0xffffffff
)

// routeSeq numbers this process's routing messages.
var routeSeq atomic.Int32

// route sends one RTM_ADD or RTM_DELETE for p into the interface.
func (c *configured) route(typ int, p netip.Prefix) error {
	var dst, mask route.Addr
	if p.Addr().Is4() {
		dst = &route.Inet4Addr{IP: p.Addr().As4()}
		mask = &route.Inet4Addr{IP: prefixMask(p.Addr(), p.Bits()).As4()}
	} else {
		dst = &route.Inet6Addr{IP: p.Addr().As16()}
		mask = &route.Inet6Addr{IP: prefixMask(p.Addr(), p.Bits()).As16()}
	}
	flags := unix.RTF_UP | unix.RTF_STATIC
	if p.Bits() == p.Addr().BitLen() {
		flags |= unix.RTF_HOST
	}
	msg := route.RouteMessage{
		Version: unix.RTM_VERSION,
		Type:    typ,
		Flags:   flags,
		Seq:     int(routeSeq.Add(1)),
		Addrs: []route.Addr{
			unix.RTAX_DST:     dst,
			unix.RTAX_GATEWAY: &route.LinkAddr{Index: c.index, Name: c.name},
			unix.RTAX_NETMASK: mask,
		},
	}
	b, err := msg.Marshal()
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_ROUTE, unix.SOCK_RAW, unix.AF_UNSPEC)
	if err != nil {
		return fmt.Errorf("open routing socket: %w", err)
	}
	defer unix.Close(fd)
	// The kernel reports the message's failure as the write's error.
	_, err = unix.Write(fd, b)
	return err
}

// undo deletes c's routes and then its addresses, newest first, and returns
// every failure but those that mean the thing (or the interface) is already
// gone.
func (c *configured) undo() error {
	var errs []error
	for i := len(c.routes) - 1; i >= 0; i-- {
		p := c.routes[i]
		if err := c.route(unix.RTM_DELETE, p); err != nil && !gone(err) {
			errs = append(errs, fmt.Errorf("tun: delete route %s dev %s: %w", p, c.name, err))
		}
	}
	if len(c.addrs) > 0 {
		if err := c.deleteAddrs(); err != nil {
			errs = append(errs, err)
		}
	}
	c.routes, c.addrs = nil, nil
	return errors.Join(errs...)
}

func (c *configured) deleteAddrs() error {
	s4, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		return fmt.Errorf("tun: open socket for interface ioctls: %w", err)
	}
	defer unix.Close(s4)
	s6, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
	if err != nil {
		return fmt.Errorf("tun: open socket for interface ioctls: %w", err)
	}
	defer unix.Close(s6)
	var errs []error
	for i := len(c.addrs) - 1; i >= 0; i-- {
		a := c.addrs[i]
		ip := a.Prefix.Addr()
		if ip.Is4() {
			req := ifreqAddr{Name: ifName(c.name), Addr: sockaddr4(ip)}
			err = ioctl(s4, siocDIFADDR, unsafe.Pointer(&req))
		} else {
			req := in6Ifreq{Name: ifName(c.name), Addr: sockaddr6(ip, unix.AF_INET6)}
			err = ioctl(s6, siocDIFADDRIn6, unsafe.Pointer(&req))
		}
		if err != nil && !gone(err) {
			errs = append(errs, fmt.Errorf("tun: delete address %s from %s: %w", a, c.name, err))
		}
	}
	return errors.Join(errs...)
}

// gone reports whether err says that a route, an address or the interface
// does not exist.
func gone(err error) bool {
	return errors.Is(err, unix.ESRCH) || errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENXIO)
}
