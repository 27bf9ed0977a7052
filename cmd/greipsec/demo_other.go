//go:build !linux

package main

import (
	"errors"
	"io"
	"time"
)

// runDemo needs Linux network namespaces.
func runDemo([]string, time.Duration, io.Writer, io.Writer) error {
	return errors.New("demo: needs Linux (network namespaces); on this system run two gateways with `greipsec up` instead")
}
