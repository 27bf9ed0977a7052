package main

import (
	"fmt"
	"io"

	"github.com/greipsec/greipsec/gateway/config"
)

// printAuth prints how each tunnel keyed by IKE authenticates, and so that
// its key and certificate files loaded (config.Load read and checked them).
func printAuth(w io.Writer, cfg *config.Config) {
	for _, t := range cfg.Tunnels {
		if t.IKE != nil {
			fmt.Fprintf(w, "%s: auth %s\n", t.Dataplane.Name, config.DescribeAuth(t.IKE))
		}
	}
}
