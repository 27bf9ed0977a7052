package main

import (
	"os"

	"github.com/coreos/go-systemd/v22/daemon"
)

// extraSignals: Windows has no SIGHUP or SIGUSR1; "greipsec reload" and
// "greipsec show" do their work.
var extraSignals []os.Signal

func isReloadSignal(os.Signal) bool { return false }
func isStatsSignal(os.Signal) bool  { return false }

func reloadingState() string { return daemon.SdNotifyReloading }
