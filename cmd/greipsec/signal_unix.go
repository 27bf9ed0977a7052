//go:build !windows

package main

import (
	"os"
	"syscall"
)

// statsSignals make "greipsec up" log its counters.
var statsSignals = []os.Signal{syscall.SIGUSR1}
