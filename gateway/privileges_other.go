//go:build !linux

package gateway

import "os"

// currentPrivileges: outside Linux, raw sockets, TUN devices and ports
// below 1024 are root's (Windows: an administrator's, which Geteuid does
// not tell; assume the process may).
func currentPrivileges() privileges {
	root := os.Geteuid() <= 0
	return privileges{rawSockets: root, netAdmin: root, lowPorts: root, lowestFree: 1024, tunDevice: true}
}
