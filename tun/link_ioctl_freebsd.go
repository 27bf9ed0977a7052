package tun

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctl runs an interface ioctl whose argument is the structure at arg.
func ioctl(fd int, req uint, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}
