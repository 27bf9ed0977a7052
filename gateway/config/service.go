package config

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
)

// The top-level tables that configure the running daemon rather than a
// tunnel: [control], its control socket, and [metrics], its Prometheus
// endpoint. Both are optional.
//
//	[control]
//	socket = "/run/greipsec/greipsec.sock"  # the default
//	group  = "greipsec"                     # may use it too (mode 0660); default: root only (0600)
//
//	[metrics]
//	address = "127.0.0.1:9712"              # default: no metrics endpoint

// DefaultControlSocket is the control socket's path when [control] does
// not set one.
const DefaultControlSocket = "/run/greipsec/greipsec.sock"

// maxSocketPath is the longest path a Unix socket address holds.
const maxSocketPath = 107

// Control is the [control] table.
type Control struct {
	// Socket is the path of the control socket; ControlSocket() when not
	// set (DefaultControlSocket for root).
	Socket string
	// Group, if set, is the group (a name or a numeric ID) whose members may
	// use the socket too: it gets mode 0660 instead of 0600. Whether the
	// group exists is checked when the socket is made.
	Group string
}

// Metrics is the [metrics] table.
type Metrics struct {
	// Address is the host:port where /metrics, /healthz and /readyz are
	// served over HTTP; "" means not at all.
	Address string
}

// readControl reads the optional [control] table.
func (p *parser) readControl(top *table) Control {
	c := Control{Socket: ControlSocket()}
	t, ok := top.sub("control")
	if !ok {
		return c
	}
	if s, ok := t.str("socket"); ok {
		switch {
		case !filepath.IsAbs(s):
			t.errorf("socket", "%q is not an absolute path (expected e.g. %q)", s, DefaultControlSocket)
		case len(s) > maxSocketPath:
			t.errorf("socket", "is %d bytes long; a Unix socket path holds at most %d", len(s), maxSocketPath)
		case strings.ContainsRune(s, 0):
			t.errorf("socket", "must not contain a NUL byte")
		default:
			c.Socket = filepath.Clean(s)
		}
	}
	if s, ok := t.str("group"); ok {
		if !validGroup(s) {
			t.errorf("group", "%q is not a group name or ID (expected e.g. \"greipsec\" or \"998\")", s)
		} else {
			c.Group = s
		}
	}
	t.finish()
	return c
}

// validGroup reports whether s looks like a group name (POSIX portable
// characters, not starting with '-') or a numeric group ID.
func validGroup(s string) bool {
	if s == "" || len(s) > 32 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// readMetrics reads the optional [metrics] table.
func (p *parser) readMetrics(top *table) Metrics {
	var m Metrics
	t, ok := top.sub("metrics")
	if !ok {
		return m
	}
	if s, ok := t.str("address"); ok {
		if err := checkHostPort(s); err != "" {
			t.errorf("address", "%q: %s (expected host:port, e.g. \"127.0.0.1:9712\", \"[::1]:9712\" or \":9712\" for every address)", s, err)
		} else {
			m.Address = s
		}
	}
	t.finish()
	return m
}

// checkHostPort returns what is wrong with a listen address, or "".
func checkHostPort(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return strings.TrimPrefix(err.Error(), "address "+s+": ")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "the port must be a number from 1 to 65535"
	}
	if strings.ContainsAny(host, " /\t") {
		return "the host is not an address or a name"
	}
	return ""
}
