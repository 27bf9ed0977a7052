// Package tun is the inner side of the gateway: the device that inner
// packets are read from and written to.
//
// A Device is wireguard-go's tun.Device. Create opens a real TUN device and
// Configure gives it its MTU, addresses and routes: over rtnetlink on Linux,
// with interface ioctls and the routing socket on macOS, FreeBSD and
// OpenBSD, through the IP Helper API (wireguard-windows' winipcfg) on
// Windows. Memory is an in-memory Device for tests and the in-process
// benchmark; package netstack is a Device that is a user-space TCP/IP
// stack, for hosts where no TUN device may be created.
package tun

import (
	"fmt"

	wgtun "golang.zx2c4.com/wireguard/tun"
)

// Device is wireguard-go's tun.Device: batched Read and Write of inner
// packets, each placed at an offset into its buffer so that headers can be
// prepended without copying.
type Device = wgtun.Device

// Create opens a real TUN device named name with the given MTU, using
// wireguard-go's tun.CreateTUN. On Linux the device is opened with a virtio
// net header, and TCP (and, where the kernel has them, UDP) segmentation and
// coalescing offloads stay on as wireguard-go configures them: Read may then
// return up to BatchSize packets split from one large segment, and Write
// coalesces what it can. Read and Write on such a device need an offset of at
// least 10 bytes. On Darwin, name must be "utun" (the kernel picks the
// number) or "utunN"; on Windows a Wintun adapter of that name is created,
// which needs wintun.dll beside the executable and administrator rights.
// Configure takes the name the Device reports (Device.Name), which on
// Darwin is the "utunN" actually created.
//
// Create does not configure addresses or routes and does not bring the
// interface up; see Configure. Closing the Device removes the interface.
func Create(name string, mtu int) (Device, error) {
	dev, err := wgtun.CreateTUN(name, mtu)
	if err != nil && isPermission(err) {
		// After a privilege drop, /dev/net/tun (0600 in some
		// containers) may no longer open: use one opened before.
		if d, ok, serr := createFromSpare(name, mtu); ok {
			dev, err = d, serr
		}
	}
	if err != nil {
		return nil, fmt.Errorf("tun: create %s: %w", name, err)
	}
	return dev, nil
}
