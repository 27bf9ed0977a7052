package dataplane

import (
	"errors"
	"net"
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"
)

// kernelPathMTU asks the kernel for its path MTU towards a destination: it
// connects a UDP socket of the destination's family to it (which sends
// nothing, but looks up the route and the path MTU learned for it from
// ICMP) and reads IP_MTU or IPV6_MTU (ip(7), ipv6(7)). One socket per
// family serves every peer. It is safe for concurrent use; the zero value
// is ready, and a nil one answers nothing.
type kernelPathMTU struct {
	mu       sync.Mutex
	fd4, fd6 int // the descriptor + 1; 0: not open yet
}

// KernelPathMTU returns the kernel's path MTU towards peer, for
// Options.PathMTU: the MTU of the route, lowered by what ICMP taught the
// kernel until it expires.
func KernelPathMTU(peer netip.AddrPort) (int, error) {
	var k kernelPathMTU
	defer k.close()
	return k.query(peer)
}

func (k *kernelPathMTU) query(peer netip.AddrPort) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	addr := peer.Addr().Unmap()
	port := int(peer.Port())
	if port == 0 {
		port = DefaultUDPPort // the route, not the port, is what is asked
	}
	if !addr.IsValid() {
		return 0, errors.New("dataplane: path MTU: no peer address")
	}
	fd, family, level, opt := &k.fd4, unix.AF_INET, unix.IPPROTO_IP, unix.IP_MTU
	var sa unix.Sockaddr
	if addr.Is4() {
		sa = &unix.SockaddrInet4{Addr: addr.As4(), Port: port}
	} else {
		fd, family, level, opt = &k.fd6, unix.AF_INET6, unix.IPPROTO_IPV6, unix.IPV6_MTU
		sa6 := &unix.SockaddrInet6{Addr: addr.As16(), Port: port}
		if z := addr.Zone(); z != "" {
			ifi, err := net.InterfaceByName(z)
			if err != nil {
				return 0, err
			}
			sa6.ZoneId = uint32(ifi.Index)
		}
		sa = sa6
	}
	if *fd == 0 {
		s, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
		if err != nil {
			return 0, err
		}
		*fd = s + 1
	}
	if err := unix.Connect(*fd-1, sa); err != nil {
		return 0, err
	}
	return unix.GetsockoptInt(*fd-1, level, opt)
}

func (k *kernelPathMTU) close() {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, fd := range []*int{&k.fd4, &k.fd6} {
		if *fd != 0 {
			unix.Close(*fd - 1)
			*fd = 0
		}
	}
}
