package main

import (
	"flag"
	"io"
	"strings"
	"time"
)

var demoCommand = &command{
	name:  "demo",
	args:  "[flags]",
	short: "as root: two gateways in two network namespaces, with traffic",
	long: `As root on Linux: run two greipsec gateways in two network namespaces joined
by a veth link, with the built-in example configurations (IKEv2 with a
pre-shared key), show ping and TCP throughput through the tunnel, and remove
everything again.`,
	setup: func(fs *flag.FlagSet) runFunc {
		transports := fs.String("transport", "esp,udp", "outer `transports` to show: esp, udp or esp,udp")
		duration := fs.Duration("t", 5*time.Second, "`duration` of the TCP transfer")
		return func(args []string, stdout, stderr io.Writer) error {
			if err := noArgs("demo", args); err != nil {
				return err
			}
			var list []string
			for _, t := range strings.Split(*transports, ",") {
				if t != "esp" && t != "udp" {
					return usagef("demo", "--transport: unknown transport %q (expected esp, udp or esp,udp)", t)
				}
				list = append(list, t)
			}
			return runDemo(list, *duration, stdout, stderr)
		}
	},
}
