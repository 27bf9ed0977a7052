package gateway

import (
	"fmt"
	"net/netip"

	"github.com/greipsec/greipsec/gateway/config"
)

// What the host can tell about a configuration before anything starts
// (greipsec check; up refuses the fatal ones): a route of a tunnel that
// already exists on the host, and a route that covers the tunnel's own
// outer peer address, with no more specific route to the peer, which
// would send the tunnel's own ESP into the tunnel.

// HostProblem is one thing about this host that makes a configuration
// fail or misbehave.
type HostProblem struct {
	Err error
	// Fatal: "up" refuses to start (the tunnel would loop into itself).
	Fatal bool
}

// hostRoute is a route of the host's main table, as far as CheckHost
// needs it.
type hostRoute struct {
	dst  netip.Prefix
	dev  string // the interface
	desc string // e.g. "via 192.0.2.254 dev eth0"
}

// CheckHost checks the routes of the tunnels of cfg with inner = "tun"
// against the host's main routing table (Linux; elsewhere it finds
// nothing). Routes through a tunnel's own interface are its own (a
// running greipsec) and are ignored. Policy routing (ip rule) is not
// looked at.
func CheckHost(cfg *config.Config) []HostProblem {
	need := false
	for _, t := range cfg.Tunnels {
		need = need || t.Inner == config.InnerTUN && len(t.Link.Routes) > 0
	}
	if !need {
		return nil // no netlink socket for a netstack-only gateway
	}
	routes, err := hostRoutes()
	if err != nil {
		return []HostProblem{{Err: fmt.Errorf("gateway: reading the host's routes: %w", err)}}
	}
	return checkRoutes(cfg, routes)
}

func checkRoutes(cfg *config.Config, routes []hostRoute) []HostProblem {
	var probs []HostProblem
	for _, t := range cfg.Tunnels {
		if t.Inner != config.InnerTUN {
			continue // a netstack's routes are in the netstack
		}
		dp := t.Dataplane
		others := routes[:0:0]
		for _, r := range routes {
			if r.dev != dp.Interface {
				others = append(others, r)
			}
		}
		// The longest existing prefix to the peer.
		best := -1
		for _, r := range others {
			if r.dst.Contains(dp.Peer) && r.dst.Bits() > best {
				best = r.dst.Bits()
			}
		}
		for i, p := range t.Link.Routes {
			e := &config.Error{File: cfg.Path, Tunnel: fmt.Sprintf("tunnel %q", dp.Name), Key: fmt.Sprintf("routes[%d]", i)}
			if i < len(t.RouteLines) {
				e.Line = t.RouteLines[i]
			}
			for _, r := range others {
				if r.dst == p {
					e := *e
					e.Msg = fmt.Sprintf("%s already exists on this host (%s): up would fail to add it; remove it, or route narrower prefixes into the tunnel", p, r.desc)
					probs = append(probs, HostProblem{Err: &e})
					break
				}
			}
			if p.Contains(dp.Peer) && p.Bits() >= best {
				e := *e
				e.Msg = fmt.Sprintf("%s covers the tunnel's peer %s, and this host has no more specific route to it: the tunnel's own packets would be routed into the tunnel; add a route to the peer first (ip route add %s via GATEWAY), or leave it out of routes", p, dp.Peer, netip.PrefixFrom(dp.Peer, dp.Peer.BitLen()))
				probs = append(probs, HostProblem{Err: &e, Fatal: true})
			}
		}
	}
	return probs
}
