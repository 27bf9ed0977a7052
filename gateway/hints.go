package gateway

import (
	"errors"
	"os"
	"strings"
	"syscall"
)

// Start-up errors name what failed; withHint adds what to do about it, for
// the failures an operator meets: missing privileges (an unprivileged user,
// a container without the capability or the device), an address that is
// not on this host, a port another program holds.

// hinted is an error with advice appended to its text.
type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() + ": " + h.hint }
func (h *hinted) Unwrap() error { return h.err }

// withHint returns err with advice for its cause, or err itself when there
// is none to give.
func withHint(err error) error {
	if err == nil {
		return nil
	}
	if hint := hintFor(err); hint != "" {
		return &hinted{err: err, hint: hint}
	}
	return err
}

func hintFor(err error) string {
	msg := err.Error()
	tunDev := strings.Contains(msg, "TUN device") || strings.Contains(msg, "/dev/net/tun")
	switch {
	case tunDev && strings.Contains(msg, "does not exist"), tunDev && errors.Is(err, os.ErrNotExist):
		return "there is no /dev/net/tun: load the tun module (modprobe tun), or give the container --device /dev/net/tun"
	case tunDev && errors.Is(err, os.ErrPermission):
		return "run as root, or give the container --cap-add NET_ADMIN --device /dev/net/tun"
	case tunDev && errors.Is(err, syscall.EBUSY):
		return "an interface of that name exists already: remove it, or set another interface name"
	case errors.Is(err, os.ErrPermission) && strings.Contains(msg, "esp socket"):
		return `raw ESP (transport = "esp") needs CAP_NET_RAW: run as root, give the container --cap-add NET_RAW, or use transport = "udp"`
	case errors.Is(err, os.ErrPermission) && strings.Contains(msg, ":500"):
		return "UDP port 500 needs CAP_NET_BIND_SERVICE: run as root, give the container --cap-add NET_BIND_SERVICE, or set port-500 = false in [tunnel.ike] to start IKE on udp-port (the peer must start there too)"
	case errors.Is(err, os.ErrPermission):
		return "run as root, or give the process CAP_NET_ADMIN (containers: --cap-add NET_ADMIN)"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "the local address is not on an interface of this host: check local in the configuration"
	case errors.Is(err, syscall.EADDRINUSE):
		return "another program holds the port: another IKE daemon (strongSwan, iked, libreswan) or a second greipsec?"
	case errors.Is(err, syscall.EEXIST):
		return "an address or route of the tunnel exists already on this host: remove it, or change addresses or routes"
	}
	return ""
}
