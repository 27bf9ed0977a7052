package main

import (
	"fmt"
	"io"
	"os"

	"github.com/greipsec/greipsec/gateway"
	"github.com/greipsec/greipsec/gateway/config"
)

// printPrivileges prints what "up" would need that this process lacks
// (gateway.MissingPrivileges), one line each. A configuration may be
// checked by a user who will not run it, so this is a note, not an error.
func printPrivileges(w io.Writer, cfg *config.Config) {
	missing := gateway.MissingPrivileges(cfg)
	if len(missing) == 0 {
		return
	}
	fmt.Fprintf(w, "up as this user (uid %d) would fail:\n", os.Geteuid())
	for _, err := range missing {
		fmt.Fprintf(w, "  %v\n", err)
	}
}
