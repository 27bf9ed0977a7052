//go:build !linux

package tun

import (
	"fmt"
	"runtime"
)

// SetCarrier is only implemented on Linux (TUNSETCARRIER); elsewhere it
// returns an error.
func SetCarrier(dev Device, up bool) error {
	return fmt.Errorf("tun: setting the carrier of %s is not supported on %s", deviceName(dev), runtime.GOOS)
}

func deviceName(dev Device) string {
	if name, err := dev.Name(); err == nil {
		return name
	}
	return "the TUN device"
}
