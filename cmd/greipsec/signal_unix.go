//go:build !windows

package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// extraSignals are what "greipsec up" handles besides SIGINT and SIGTERM:
// SIGHUP reloads the configuration, SIGUSR1 logs the counters.
var extraSignals = []os.Signal{syscall.SIGHUP, syscall.SIGUSR1}

func isReloadSignal(s os.Signal) bool { return s == syscall.SIGHUP }
func isStatsSignal(s os.Signal) bool  { return s == syscall.SIGUSR1 }

// reloadingState is the sd_notify state for a reload: RELOADING=1 with the
// CLOCK_MONOTONIC time systemd 253 and later want with it.
func reloadingState() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return daemon.SdNotifyReloading
	}
	return fmt.Sprintf("%s\nMONOTONIC_USEC=%d", daemon.SdNotifyReloading, ts.Nano()/1000)
}
