package gateway

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// hostRoutes returns the unicast routes of the main table, both families.
func hostRoutes() ([]hostRoute, error) {
	list, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, err
	}
	names := make(map[int]string)
	var routes []hostRoute
	for _, r := range list {
		if r.Type != unix.RTN_UNICAST {
			continue
		}
		var dst netip.Prefix
		if r.Dst == nil {
			dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
			if r.Family == unix.AF_INET6 {
				dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
			}
		} else {
			a, ok := netip.AddrFromSlice(r.Dst.IP)
			if !ok {
				continue
			}
			ones, _ := r.Dst.Mask.Size()
			dst = netip.PrefixFrom(a.Unmap(), ones)
		}
		name, ok := names[r.LinkIndex]
		if !ok {
			if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
				name = l.Attrs().Name
			}
			names[r.LinkIndex] = name
		}
		desc := "dev " + name
		if r.Gw != nil {
			desc = fmt.Sprintf("via %s dev %s", r.Gw, name)
		}
		routes = append(routes, hostRoute{dst: dst, dev: name, desc: desc})
	}
	return routes, nil
}
