package link

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"golang.zx2c4.com/wireguard/conn"
)

// Endpoint is the peer address of a Bind in this package. For raw ESP it is
// an IP address alone (the port is always 0); the in-memory link also gives
// it the port of its peer. An Endpoint is immutable once made and safe to
// share between goroutines; it implements conn.Endpoint.
//
// IPv4-mapped IPv6 addresses are stored unmapped, so an Endpoint made from
// ::ffff:192.0.2.1 is the IPv4 endpoint 192.0.2.1.
type Endpoint struct {
	dst netip.AddrPort
}

var _ conn.Endpoint = (*Endpoint)(nil)

// NewEndpoint returns the raw-IP endpoint for addr, with port 0.
func NewEndpoint(addr netip.Addr) *Endpoint {
	return &Endpoint{dst: netip.AddrPortFrom(addr.Unmap(), 0)}
}

// AddrPort returns the endpoint's address and port (0 for raw ESP).
func (e *Endpoint) AddrPort() netip.AddrPort { return e.dst }

// ClearSrc does nothing: the source address is left to the kernel's routing.
func (e *Endpoint) ClearSrc() {}

// SrcToString returns "": no source address is pinned.
func (e *Endpoint) SrcToString() string { return "" }

// SrcIP returns the zero Addr: no source address is pinned.
func (e *Endpoint) SrcIP() netip.Addr { return netip.Addr{} }

// DstIP returns the endpoint's IP address.
func (e *Endpoint) DstIP() netip.Addr { return e.dst.Addr() }

// DstToString returns the address, followed by ":port" in the
// net.JoinHostPort form when the port is not 0.
func (e *Endpoint) DstToString() string {
	if e.dst.Port() == 0 {
		return e.dst.Addr().String()
	}
	return e.dst.String()
}

// DstToBytes returns the address and port in netip.AddrPort's binary form.
func (e *Endpoint) DstToBytes() []byte {
	b, _ := e.dst.MarshalBinary()
	return b
}

// parseAddrPort parses "addr", "addr:port" or "[addr]:port". A bare address
// gets port 0.
func parseAddrPort(s string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a.Unmap(), 0), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("link: invalid endpoint %q: want an IP address, optionally with a port", s)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// maxCachedEndpoints bounds endpointCache. A receiver sees packets from a
// handful of peers; anything beyond that is noise or spoofing, and only
// costs an allocation per new source once the cache has been emptied.
const maxCachedEndpoints = 1024

// endpointKey identifies a packet's source. addr carries no zone when scope
// is set; where the platform reports zones by name instead of by index,
// scope is 0 and addr carries the zone.
type endpointKey struct {
	addr  netip.Addr
	scope uint32 // IPv6 scope (interface index), 0 if none
}

// endpointCache hands out one shared *Endpoint per source address, so that
// receiving does not allocate per packet. It is safe for concurrent use; the
// zero value is ready to use.
type endpointCache struct {
	mu sync.Mutex
	m  map[endpointKey]*Endpoint
}

// get returns the endpoint for k, making and caching it if needed. When the
// cache is full it is emptied first; endpoints handed out before stay valid.
func (c *endpointCache) get(k endpointKey) *Endpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ep, ok := c.m[k]; ok {
		return ep
	}
	if c.m == nil {
		c.m = make(map[endpointKey]*Endpoint)
	} else if len(c.m) >= maxCachedEndpoints {
		clear(c.m)
	}
	addr := k.addr
	if k.scope != 0 {
		addr = addr.WithZone(zoneName(k.scope))
	}
	ep := NewEndpoint(addr)
	c.m[k] = ep
	return ep
}

// zoneName returns the name of the interface with the given index, as the
// net package names IPv6 zones, or the index in decimal if there is none.
func zoneName(index uint32) string {
	if ifi, err := net.InterfaceByIndex(int(index)); err == nil {
		return ifi.Name
	}
	return strconv.FormatUint(uint64(index), 10)
}
