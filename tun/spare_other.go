//go:build !linux

package tun

// ReserveSpares does nothing outside Linux.
func ReserveSpares(n int) error { return nil }

// SpareCount returns 0 outside Linux.
func SpareCount() int { return 0 }

func createFromSpare(name string, mtu int) (Device, bool, error) { return nil, false, nil }

func isPermission(err error) bool { return false }
