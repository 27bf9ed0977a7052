//go:build !linux && !darwin && !freebsd && !openbsd && !windows

package tun

import (
	"fmt"
	"runtime"
)

// Configure is not implemented outside Linux: it returns an error asking for
// the interface to be configured by hand (with ifconfig(8) and route(8), or
// netsh on Windows) before traffic is expected on it.
func Configure(name string, cfg LinkConfig) (undo func() error, err error) {
	return nil, fmt.Errorf("tun: configuring interfaces is not supported on %s: configure %s by hand (MTU %d, %d addresses, %d routes)",
		runtime.GOOS, name, cfg.MTU, len(cfg.Addresses), len(cfg.Routes))
}
