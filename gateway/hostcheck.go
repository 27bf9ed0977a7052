package gateway

import (
	"fmt"
	"net/netip"

	"github.com/greipsec/greipsec/gateway/config"
)

// What the host can tell about a configuration before anything starts
// (greipsec check, and up, which logs it): a route of a tunnel that
// already exists on the host, which up would fail to add. A route that
// contains the tunnel's own peer (its ESP would loop into the tunnel) is
// a mistake of the configuration itself (package config).

// HostProblem is one thing about this host that makes a configuration
// fail or misbehave.
type HostProblem struct {
	Err error
	// Fatal: "up" refuses to start. No check is fatal today; reading the
	// routes failing is not either.
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
		}
	}
	return probs
}
