package main

import (
	"fmt"
	"io"

	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/gateway/config"
)

// printCheckPathMTU explains, after the MTU table, where each tunnel's MTU and
// MSS come from at run time: the configured path-mtu bounds everything
// (and is all there is when the path filters ICMP), path MTU discovery
// lowers them when a router on the path says "too big".
func printCheckPathMTU(w io.Writer, cfg *config.Config) {
	for _, t := range cfg.Tunnels {
		dc := t.Dataplane
		floor := 552 // the kernel's net.ipv4.route.min_pmtu
		if dc.Local.Is6() {
			floor = 1280 // RFC 8200 §5
		}
		frag := "fragmented before encryption"
		if dc.Fragmentation == dataplane.FragmentAfterEncryption {
			frag = "sent whole, and the kernel fragments the outer packet (after-encryption)"
		}
		if dc.NoPathMTUDiscovery {
			fmt.Fprintf(w, "tunnel %s: path MTU discovery off: the path MTU is path-mtu = %d, the MTU and MSS above stay; "+
				"IPv4 packets without DF that do not fit are %s\n", dc.Name, dc.PathMTU, frag)
			continue
		}
		fmt.Fprintf(w, "tunnel %s: path MTU discovery on: outer packets leave with DF, and ICMP \"too big\" from the path lowers "+
			"the path MTU (at least %d, at most path-mtu = %d) and with it the MTU and MSS above, for 10 minutes at a time; "+
			"larger inner packets are answered with ICMP, IPv4 without DF is %s. Where the path filters ICMP, "+
			"set path-mtu to the real path's MTU.\n", dc.Name, floor, dc.PathMTU, frag)
	}
}
