//go:build darwin || openbsd

package tun

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctl runs an interface ioctl whose argument is the structure at arg.
// golang.org/x/sys/unix has no exported ioctl for an arbitrary structure,
// so this is the raw system call, as wireguard-go's tun package makes it on
// these systems: Go routes SYS_IOCTL to libc's ioctl on macOS, and on
// OpenBSD, which refuses system calls from outside libc
// (golang.org/issue/63900).
func ioctl(fd int, req uint, arg unsafe.Pointer) error {
	//lint:ignore SA1019 see above: there is no libc wrapper to call instead.
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}
