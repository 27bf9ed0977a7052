package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/gateway/config"
)

var checkCommand = &command{
	name:  "check",
	args:  "[-c FILE]",
	short: "check a configuration; print each tunnel's MTU and MSS",
	long: `Check the configuration file as "up" would, without starting anything, and
print each tunnel's mode, transport, addresses, MTU, overhead and TCP MSS,
and the control socket and metrics address. Every mistake is reported with
the file, line and key.`,
	setup: func(fs *flag.FlagSet) runFunc {
		path := fs.String("c", defaultConfig, "configuration `file`")
		return func(args []string, stdout, _ io.Writer) error {
			if err := noArgs("check", args); err != nil {
				return err
			}
			return check(*path, stdout)
		}
	},
}

// check loads a config file and prints what each tunnel will use.
func check(path string, stdout io.Writer) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TUNNEL\tMODE\tTRANSPORT\tKEYS\tLOCAL\tPEER\tPATH MTU\tOVERHEAD\tMTU\tMSS4\tMSS6")
	for _, t := range cfg.Tunnels {
		dc := t.Dataplane
		mtu, err := dataplane.ResolveMTU(&dc)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		keys := "manual"
		if t.IKE != nil {
			keys = "ike"
		}
		o := dataplane.OverheadOf(&dc)
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", dc.Name, dc.Mode, dc.Transport, keys, dc.Local, dc.Peer,
			o.PathMTU, o.PathMTU-mtu, mtu, mtu-40, mtu-60)
	}
	w.Flush()
	printCheckPathMTU(stdout, cfg)
	printAuth(stdout, cfg)
	printRouting(stdout, cfg)
	printPrivileges(stdout, cfg)
	group := "owner only (0600)"
	if cfg.Control.Group != "" {
		group = fmt.Sprintf("group %s (0660)", cfg.Control.Group)
	}
	fmt.Fprintf(stdout, "control socket %s, %s\n", cfg.Control.Socket, group)
	if cfg.Metrics.Address != "" {
		fmt.Fprintf(stdout, "metrics on http://%s/metrics\n", cfg.Metrics.Address)
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return nil
}

// printRouting says, for each tunnel with a TUN interface, what is routed
// into it and what takes it down: its routes, or that a routing daemon must
// route into it; whether IPv6 is off on it (no IPv6 address or route); and
// link-follows-ike and GRE keepalives.
func printRouting(w io.Writer, cfg *config.Config) {
	for _, t := range cfg.Tunnels {
		if t.Inner != config.InnerTUN {
			continue
		}
		var notes []string
		if len(t.Link.Routes) == 0 {
			notes = append(notes, "no routes (a routing daemon such as BGP, or you, routes into it)")
		} else {
			rs := make([]string, len(t.Link.Routes))
			for i, r := range t.Link.Routes {
				rs[i] = r.String()
			}
			notes = append(notes, "routes "+strings.Join(rs, ", "))
		}
		v6 := false
		for _, a := range t.Link.Addresses {
			v6 = v6 || a.Prefix.Addr().Is6()
		}
		for _, r := range t.Link.Routes {
			v6 = v6 || r.Addr().Is6()
		}
		if !v6 {
			notes = append(notes, "IPv4 only (IPv6 off on the interface)")
		}
		if t.LinkFollowsIKE {
			notes = append(notes, "no carrier without an IKE SA")
		}
		if t.Keepalive != 0 {
			notes = append(notes, fmt.Sprintf("GRE keepalives every %v, down after %d unanswered", t.Keepalive, t.KeepaliveRetries))
		}
		fmt.Fprintf(w, "%s: interface %s: %s\n", t.Dataplane.Name, t.Dataplane.Interface, strings.Join(notes, "; "))
	}
}
