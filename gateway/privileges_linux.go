package gateway

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// currentPrivileges reads the effective capabilities of this thread (all
// of the process's threads share them) and what the system allows anyone.
func currentPrivileges() privileges {
	var p privileges
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err == nil {
		has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
		p.rawSockets, p.netAdmin, p.lowPorts = has(unix.CAP_NET_RAW), has(unix.CAP_NET_ADMIN), has(unix.CAP_NET_BIND_SERVICE)
	}
	p.lowestFree = 1024
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n >= 0 {
			p.lowestFree = n
		}
	}
	p.tunDevice = unix.Access("/dev/net/tun", unix.R_OK|unix.W_OK) == nil
	return p
}
