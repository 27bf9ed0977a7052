package gateway

import (
	"fmt"
	"net"
	"strconv"

	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/gateway/config"
)

// What a configuration needs of the system, and whether this process has
// it, without touching anything: for `greipsec check`, which tells an
// operator before `up` what a container or a user lacks. It reads the
// process's capabilities (Linux: capget) rather than opening a raw socket
// or a TUN device.

// privileges are what this process may do, as far as a configuration
// needs to know.
type privileges struct {
	rawSockets bool // CAP_NET_RAW: raw ESP
	netAdmin   bool // CAP_NET_ADMIN: create and configure TUN devices
	lowPorts   bool // CAP_NET_BIND_SERVICE, or the system lets anyone bind them
	lowestFree int  // the lowest port anyone may bind (net.ipv4.ip_unprivileged_port_start)
	tunDevice  bool // /dev/net/tun (or the system's TUN driver) is usable
}

// MissingPrivileges returns, for each tunnel of cfg, what `greipsec up`
// would need and this process lacks, one error each, saying what to do:
//
//	tunnel "gre0": transport = "esp" (raw ESP) needs CAP_NET_RAW, which this process does not have: run as root, give the container --cap-add NET_RAW, or use transport = "udp"
//
// It returns nil when the process has everything. A tunnel with inner =
// "netstack", transport = "udp", port-500 = false and ports from 1024
// needs nothing.
func MissingPrivileges(cfg *config.Config) []error {
	return missingPrivileges(cfg, currentPrivileges())
}

func missingPrivileges(cfg *config.Config, p privileges) []error {
	var errs []error
	miss := func(t *config.Tunnel, format string, args ...any) {
		errs = append(errs, fmt.Errorf("tunnel %q: "+format, append([]any{t.Dataplane.Name}, args...)...))
	}
	lowPort := func(port int) bool { return port > 0 && port < p.lowestFree && !p.lowPorts }
	for i := range cfg.Tunnels {
		t := &cfg.Tunnels[i]
		dc := &t.Dataplane
		if dc.Transport == dataplane.TransportESP && !p.rawSockets {
			miss(t, `transport = "esp" (raw ESP) needs CAP_NET_RAW, which this process does not have: run as root, give the container --cap-add NET_RAW, or use transport = "udp"`)
		}
		if t.Inner == config.InnerTUN {
			if !p.netAdmin {
				miss(t, `inner = "tun" needs CAP_NET_ADMIN to create and configure the TUN device %s, which this process does not have: run as root, give the container --cap-add NET_ADMIN --device /dev/net/tun, or use inner = "netstack"`, dc.Interface)
			} else if !p.tunDevice {
				miss(t, `inner = "tun" needs /dev/net/tun, which this process cannot open: load the tun module (modprobe tun), give the container --device /dev/net/tun, or use inner = "netstack"`)
			}
		}
		if t.IKE != nil && !t.IKE.StartNATT && lowPort(500) {
			miss(t, `IKE on UDP port 500 needs CAP_NET_BIND_SERVICE, which this process does not have: run as root, give the container --cap-add NET_BIND_SERVICE, or set port-500 = false in [tunnel.ike] (the peer must start IKE on udp-port too)`)
		}
		if dc.Transport == dataplane.TransportUDP || t.IKE != nil {
			if port := int(dc.UDPPort); lowPort(port) {
				miss(t, `udp-port %d is below %d and needs CAP_NET_BIND_SERVICE, which this process does not have: choose a port from %d, e.g. 14500`, port, p.lowestFree, p.lowestFree)
			}
		}
		if ns := t.Netstack; ns != nil {
			for _, l := range hostListens(ns) {
				if port := listenPort(l.addr); lowPort(port) {
					miss(t, `%s listens on %s, a port below %d, which needs CAP_NET_BIND_SERVICE, which this process does not have: choose a port from %d`, l.what, l.addr, p.lowestFree, p.lowestFree)
				}
			}
		}
	}
	return errs
}

type hostListen struct{ what, addr string }

// hostListens returns the listeners of a netstack tunnel on this host.
func hostListens(ns *config.Netstack) []hostListen {
	var l []hostListen
	if ns.SOCKS5 != nil {
		l = append(l, hostListen{"socks5", ns.SOCKS5.Listen})
	}
	if ns.HTTP != nil {
		l = append(l, hostListen{"http-proxy", ns.HTTP.Listen})
	}
	for i, f := range ns.Forwards {
		if f.Direction == config.LocalToFar {
			l = append(l, hostListen{fmt.Sprintf("forward[%d]", i), f.Listen})
		}
	}
	return l
}

func listenPort(addr string) int {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(port)
	return n
}
