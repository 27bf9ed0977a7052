package main

import (
	"flag"
	"fmt"
	"io"
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
