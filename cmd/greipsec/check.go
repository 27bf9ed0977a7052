package main

import (
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/greipsec/greipsec/gateway/config"
	"github.com/greipsec/greipsec/dataplane"
)

// cmdCheck loads a config file and prints what each tunnel will use.
func cmdCheck(args []string, stdout io.Writer) error {
	path, err := configPath(flag.NewFlagSet("check", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TUNNEL\tMODE\tTRANSPORT\tLOCAL\tPEER\tPATH MTU\tOVERHEAD\tMTU\tMSS4\tMSS6")
	for _, t := range cfg.Tunnels {
		dc := t.Dataplane
		mtu, err := dataplane.ResolveMTU(&dc)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		o := dataplane.OverheadOf(&dc)
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", dc.Name, dc.Mode, dc.Transport, dc.Local, dc.Peer,
			o.PathMTU, o.PathMTU-mtu, mtu, mtu-40, mtu-60)
	}
	w.Flush()
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return nil
}
