//go:build !linux

package dataplane

import (
	"errors"
	"net/netip"
)

// kernelPathMTU answers nothing off Linux: the configured path MTU is all
// the dataplane uses there.
type kernelPathMTU struct{}

// KernelPathMTU returns an error off Linux.
func KernelPathMTU(netip.AddrPort) (int, error) {
	return 0, errors.New("dataplane: the kernel's path MTU is only read on Linux")
}

func (k *kernelPathMTU) query(peer netip.AddrPort) (int, error) { return KernelPathMTU(peer) }
func (k *kernelPathMTU) close()                                 {}
