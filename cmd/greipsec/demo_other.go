//go:build !linux

package main

import (
	"errors"
	"io"
)

// cmdDemo needs Linux network namespaces.
func cmdDemo(args []string, stdout, stderr io.Writer) error {
	return errors.New("demo: needs Linux (network namespaces); on this system run two gateways with `greipsec up` instead")
}
