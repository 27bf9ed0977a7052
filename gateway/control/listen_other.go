//go:build !unix

package control

import "net"

// listenPrivate listens on a Unix socket at path; on this system the
// socket's access is that of the directory it is in.
func listenPrivate(path string) (net.Listener, error) {
	return net.Listen("unix", path)
}

// checkSocketDir has nothing to check on this system.
func checkSocketDir(string) error { return nil }
