package control

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"
)

// maxSocketPath is the longest path a Unix socket address holds
// (sizeof(sockaddr_un.sun_path) - 1 on Linux).
const maxSocketPath = 107

// Listen creates the control socket at path and listens on it. The
// directory is created if missing (mode 0755, as systemd's
// RuntimeDirectory). The socket is created with mode 0600, owner only,
// from the start (under a umask, so that no other user can connect
// before it is restricted); with a group (a name or a numeric ID), it is
// given to that group with mode 0660. A socket file left by a greipsec
// that is gone is replaced; one that answers is another greipsec running,
// and an error.
func Listen(path, group string) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("control: no socket path")
	}
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("control: socket path %s is %d bytes long; a Unix socket path holds at most %d", path, len(path), maxSocketPath)
	}
	gid := -1
	if group != "" {
		var err error
		if gid, err = lookupGroup(group); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if err := checkSocketDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control: %s exists and is not a socket; remove it or choose another control socket path", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control: %s answers: another greipsec is running; stop it, or give this one its own socket (--control PATH or [control] socket)", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control: removing the stale socket: %w", err)
		}
	}
	l, err := listenPrivate(path)
	if err != nil {
		return nil, fmt.Errorf("control: listen on %s: %w", path, err)
	}
	if gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			l.Close()
			return nil, fmt.Errorf("control: give %s to group %s: %w", path, group, err)
		}
		if err := os.Chmod(path, 0o660); err != nil {
			l.Close()
			return nil, fmt.Errorf("control: %w", err)
		}
	}
	return l, nil
}

// lookupGroup returns the ID of a group given by name or number.
func lookupGroup(group string) (int, error) {
	if id, err := strconv.Atoi(group); err == nil && id >= 0 {
		return id, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return 0, fmt.Errorf("control: group %q: %w", group, err)
	}
	id, err := strconv.Atoi(g.Gid)
	if err != nil {
		return 0, fmt.Errorf("control: group %q has the non-numeric ID %q", group, g.Gid)
	}
	return id, nil
}
