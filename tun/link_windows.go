package tun

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"golang.org/x/sys/windows"
	"golang.zx2c4.com/wireguard/windows/tunnel/winipcfg"
)

// Configure brings the Wintun adapter called name up with cfg, through the
// IP Helper API (wireguard-windows' winipcfg, as the WireGuard client
// does), in this order:
//
//  1. the MTU of the IPv4 and, when cfg has IPv6 addresses or routes, IPv6
//     interface, when cfg.MTU is not zero; IPv6 also without duplicate
//     address detection and router discovery;
//  2. each address in cfg.Addresses with its on-link prefix. Windows has
//     no point-to-point addresses: a Peer outside the prefix gets a host
//     route into the adapter;
//  3. each prefix in cfg.Routes as an on-link route into the adapter: no
//     next hop, metric 0.
//
// Wintun adapters are up once created. Everything in cfg is checked first;
// if a step fails, what the earlier ones added is removed again. Undo deletes
// the routes and then the addresses it added, newest first; what is already
// gone is not an error. Undo may be called more than once and from any
// goroutine; later calls return the first call's result.
func Configure(name string, cfg LinkConfig) (undo func() error, err error) {
	if err := cfg.check(name); err != nil {
		return nil, err
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("tun: find interface %s: %w", name, err)
	}
	luid, err := winipcfg.LUIDFromIndex(uint32(ifi.Index))
	if err != nil {
		return nil, fmt.Errorf("tun: find interface %s: %w", name, err)
	}
	c := &configured{name: name, luid: luid}
	fail := func(err error) (func() error, error) {
		if uerr := c.undo(); uerr != nil {
			err = errors.Join(err, uerr)
		}
		return nil, err
	}

	has6 := false
	for _, a := range cfg.Addresses {
		has6 = has6 || a.Prefix.Addr().Is6()
	}
	for _, p := range cfg.Routes {
		has6 = has6 || p.Addr().Is6()
	}
	if cfg.MTU != 0 {
		families := []winipcfg.AddressFamily{windows.AF_INET}
		if has6 {
			families = append(families, windows.AF_INET6)
		}
		for _, family := range families {
			if err := setMTU(luid, family, cfg.MTU); err != nil {
				return fail(fmt.Errorf("tun: set MTU %d on %s: %w", cfg.MTU, name, err))
			}
		}
	}

	for _, a := range cfg.Addresses {
		if err := luid.AddIPAddress(a.Prefix); err != nil {
			return fail(fmt.Errorf("tun: add address %s to %s: %w", a, name, err))
		}
		c.addrs = append(c.addrs, a.Prefix)
	}
	var routes []netip.Prefix
	for _, a := range cfg.Addresses {
		if a.Peer.IsValid() && !a.Prefix.Contains(a.Peer) {
			routes = append(routes, netip.PrefixFrom(a.Peer, a.Peer.BitLen()))
		}
	}
	for _, p := range append(routes, cfg.Routes...) {
		p = p.Masked()
		if err := luid.AddRoute(p, onLink(p), 0); err != nil {
			return fail(fmt.Errorf("tun: add route %s dev %s: %w", p, name, err))
		}
		c.routes = append(c.routes, p)
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

// setMTU sets the MTU of one family's IP interface.
func setMTU(luid winipcfg.LUID, family winipcfg.AddressFamily, mtu int) error {
	row, err := luid.IPInterface(family)
	if err != nil {
		return err
	}
	row.NLMTU = uint32(mtu)
	if family == windows.AF_INET6 {
		row.DadTransmits = 0
		row.RouterDiscoveryBehavior = winipcfg.RouterDiscoveryDisabled
	}
	// SetIpInterfaceEntry refuses an IPv4 row whose SitePrefixLength is
	// not 0, as wireguard-windows notes where it sets the MTU.
	if family == windows.AF_INET {
		row.SitePrefixLength = 0
	}
	return row.Set()
}

// onLink is the next hop of a route into the adapter itself: the
// unspecified address of p's family.
func onLink(p netip.Prefix) netip.Addr {
	if p.Addr().Is4() {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// configured records what Configure added to one adapter.
type configured struct {
	name   string
	luid   winipcfg.LUID
	addrs  []netip.Prefix
	routes []netip.Prefix
}

// undo deletes c's routes and then its addresses, newest first, and returns
// every failure but those that mean the thing is already gone.
func (c *configured) undo() error {
	var errs []error
	for i := len(c.routes) - 1; i >= 0; i-- {
		p := c.routes[i]
		if err := c.luid.DeleteRoute(p, onLink(p)); err != nil && !gone(err) {
			errs = append(errs, fmt.Errorf("tun: delete route %s dev %s: %w", p, c.name, err))
		}
	}
	for i := len(c.addrs) - 1; i >= 0; i-- {
		a := c.addrs[i]
		if err := c.luid.DeleteIPAddress(a); err != nil && !gone(err) {
			errs = append(errs, fmt.Errorf("tun: delete address %s from %s: %w", a, c.name, err))
		}
	}
	c.routes, c.addrs = nil, nil
	return errors.Join(errs...)
}

// gone reports whether err says that a route, an address or the adapter
// does not exist.
func gone(err error) bool {
	return errors.Is(err, windows.ERROR_NOT_FOUND) || errors.Is(err, windows.ERROR_FILE_NOT_FOUND)
}
