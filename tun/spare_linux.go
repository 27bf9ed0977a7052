package tun

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// A process that drops its privileges ("up --user") keeps CAP_NET_ADMIN,
// which TUNSETIFF needs, but may lose the right to open /dev/net/tun: the
// file is 0666 on most distributions, 0600 in some containers, and
// opening it is checked against the file's mode, not a capability (only
// CAP_DAC_OVERRIDE, far broader, would get past it). ReserveSpares opens
// a few clone-device descriptors beforehand; Create uses one when opening
// the device is refused, so that a reload can still create TUN devices.

var spares struct {
	mu  sync.Mutex
	fds []int
}

// ReserveSpares opens n descriptors of /dev/net/tun for Create to use
// once opening it is refused (after a privilege drop). Each is used for
// one TUN device; they are not replenished.
func ReserveSpares(n int) error {
	spares.mu.Lock()
	defer spares.mu.Unlock()
	for range n {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("tun: open /dev/net/tun: %w", err)
		}
		spares.fds = append(spares.fds, fd)
	}
	return nil
}

// SpareCount returns the number of reserved descriptors left.
func SpareCount() int {
	spares.mu.Lock()
	defer spares.mu.Unlock()
	return len(spares.fds)
}

// createFromSpare creates the TUN device name on a reserved descriptor,
// as wireguard-go's CreateTUN does on a new one; ok is false if none is
// left.
func createFromSpare(name string, mtu int) (dev Device, ok bool, err error) {
	spares.mu.Lock()
	if len(spares.fds) == 0 {
		spares.mu.Unlock()
		return nil, false, nil
	}
	fd := spares.fds[len(spares.fds)-1]
	spares.fds = spares.fds[:len(spares.fds)-1]
	spares.mu.Unlock()
	ifr, err := unix.NewIfreq(name)
	if err == nil {
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
		err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	}
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		unix.Close(fd)
		return nil, true, err
	}
	dev, err = wgtun.CreateTUNFromFile(os.NewFile(uintptr(fd), "/dev/net/tun"), mtu)
	return dev, true, err
}

func isPermission(err error) bool {
	return errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)
}
