package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/greipsec/greipsec/gateway"
)

// innerText names a tunnel's inner side: its interface, or its netstack
// and addresses.
func innerText(t *gateway.TunnelStatus) string {
	if t.Netstack != nil {
		return "netstack " + strings.Join(t.Netstack.Addresses, " ")
	}
	return "interface " + t.Interface
}

// printNetstack prints a netstack tunnel's name servers, edge drops and
// listeners with their counters; nothing for a TUN tunnel.
func printNetstack(w io.Writer, ns *gateway.NetstackStatus) {
	if ns == nil {
		return
	}
	dns := "none"
	if len(ns.DNS) > 0 {
		dns = strings.Join(ns.DNS, " ")
	}
	fmt.Fprintf(w, "  netstack: dns %s; drops: queue_full %d, too_big %d, bad_inbound %d\n", dns, ns.QueueDrops, ns.TooBig, ns.BadInbound)
	for _, l := range ns.Listeners {
		var what string
		switch l.Kind {
		case "forward":
			where := "on this host"
			if l.Direction == "far-to-local" {
				where = "in the tunnel"
			}
			what = fmt.Sprintf("forward %s %s %s -> %s (%s)", l.Proto, l.Direction, l.Listen, l.Target, where)
		default:
			auth := "no authentication"
			if l.Auth {
				auth = "users"
			}
			what = fmt.Sprintf("%s %s, resolve %s, %s", l.Kind, l.Listen, l.Resolve, auth)
		}
		fmt.Fprintf(w, "    %s: accepted %d, active %d, rejected %d, failed %d, dropped %d\n",
			what, l.Accepted, l.Active, l.Rejected, l.Failed, l.Dropped)
	}
}
