package config

import (
	"fmt"
	"os"
	"path/filepath"
)

// ControlSocket returns the control socket's path when neither [control]
// nor the command line sets one, for the user this process runs as, so
// that greipsec up and the commands that talk to it agree on it without
// root: DefaultControlSocket for root; for any other user
// $XDG_RUNTIME_DIR/greipsec/greipsec.sock (the user's own runtime
// directory, as systemd-logind and rootless container tools provide), or
// without XDG_RUNTIME_DIR greipsec-UID/greipsec.sock in the temporary
// directory (package control refuses that directory unless it is the
// user's own).
func ControlSocket() string {
	uid := os.Geteuid()
	if uid <= 0 { // root, or a system without user IDs
		return DefaultControlSocket
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(d) {
		if p := filepath.Join(d, "greipsec", "greipsec.sock"); len(p) <= maxSocketPath {
			return p
		}
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("greipsec-%d", uid), "greipsec.sock")
}
