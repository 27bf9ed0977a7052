package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/greipsec/greipsec/internal/benchrun"
)

var benchCommand = &command{
	name:  "bench",
	args:  "[flags]",
	short: "measure this host: two gateways against each other, per algorithm, size and transport",
	long: `Measure what greipsec does on this host: run two gateways against each other
and send UDP through the tunnel between them, for every ESP algorithm, a
sweep of inner packet sizes and both outer transports (raw ESP and
ESP-in-UDP), in both directions. Prints a table of Gbit/s, packets/s and the
CPU the gateways used, with this CPU's single-core ESP seal rate for the same
algorithm and size: how close the tunnel comes to the crypto limit.

As root on Linux (--mode netns, the default there) the two gateways are
"greipsec up" processes with manual keys in two network namespaces joined by
a veth link; each pair also carries one TCP stream per direction, with ping
round-trip times over the bare link, through the idle tunnel and under the
stream; everything is removed afterwards. Otherwise (--mode memory) they
are two dataplanes in this process over an in-memory link and in-memory TUN
devices: no privilege and no system calls on the path.

Progress goes to standard error; the table (or JSON) to standard output.`,
	setup: func(fs *flag.FlagSet) runFunc {
		mode := fs.String("mode", "auto", "`mode`: netns (root), memory, or auto (netns when root on Linux)")
		duration := fs.Duration("duration", 0, "measured `time` per direction and case (default 2s, 500ms with --quick)")
		quick := fs.Bool("quick", false, "a short sweep: one algorithm of each family, 64 and 1400 bytes")
		algs := fs.String("alg", "", "comma-separated ESP `algorithms`, as in esp-proposals (default: all)")
		sizes := fs.String("size", "", fmt.Sprintf("comma-separated inner packet `sizes` in bytes, %d to %d (default 64,512,1400)", benchrun.MinSize, benchrun.MaxSize))
		transports := fs.String("transport", "esp,udp", "outer `transports`: esp, udp or esp,udp")
		asJSON := fs.Bool("json", false, "print the report as JSON")
		svg := fs.String("svg", "", "also draw the sweep as an SVG chart into `file`")
		return func(args []string, stdout, stderr io.Writer) error {
			if err := noArgs("bench", args); err != nil {
				return err
			}
			o := benchrun.Options{Duration: *duration, Quick: *quick, Progress: stderr}
			var err error
			if o.Mode, err = benchrun.ParseMode(*mode); err != nil {
				return usagef("bench", "--mode: %v", trimPkg(err))
			}
			if *duration != 0 && (*duration < 50*time.Millisecond || *duration > time.Hour) {
				return usagef("bench", "--duration %v: expected 50ms to 1h", *duration)
			}
			if *algs != "" {
				if o.Transforms, err = benchrun.ParseTransforms(*algs); err != nil {
					return usagef("bench", "--alg: %v", trimPkg(err))
				}
			}
			if *sizes != "" {
				if o.Sizes, err = benchrun.ParseSizes(*sizes); err != nil {
					return usagef("bench", "--size: %v", trimPkg(err))
				}
			}
			if o.Transports, err = benchrun.ParseTransports(*transports); err != nil {
				return usagef("bench", "--transport: %v", trimPkg(err))
			}
			var svgFile *os.File
			if *svg != "" { // fail before the run, not after it
				if svgFile, err = os.Create(*svg); err != nil {
					return fmt.Errorf("bench: --svg: %w", err)
				}
				defer svgFile.Close()
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rep, err := benchrun.Run(ctx, o)
			if rep != nil && len(rep.Rows) > 0 || err == nil {
				if *asJSON {
					rep.WriteJSON(stdout)
				} else {
					rep.WriteTable(stdout)
				}
				if svgFile != nil {
					if serr := rep.WriteSVG(svgFile); serr != nil && err == nil {
						err = serr
					} else if serr == nil {
						fmt.Fprintf(stderr, "chart written to %s\n", *svg)
					}
				}
			}
			if err != nil {
				return fmt.Errorf("bench: %s", trimPkg(err))
			}
			return nil
		}
	},
}

// trimPkg drops the "benchrun: " prefix of a flag's parse error, which the
// usage error names by its flag instead.
func trimPkg(err error) string {
	return strings.TrimPrefix(err.Error(), "benchrun: ")
}
