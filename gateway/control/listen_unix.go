//go:build unix

package control

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// umaskMu serialises the umask changes of listenPrivate.
var umaskMu sync.Mutex

// listenPrivate listens on a Unix socket at path whose file is created
// with mode 0600: the umask is 0177 while it is created. The umask is the
// process's: a file another goroutine creates meanwhile gets at most mode
// 0600 too, which is never less safe.
func listenPrivate(path string) (net.Listener, error) {
	umaskMu.Lock()
	defer umaskMu.Unlock()
	old := unix.Umask(0o177)
	defer unix.Umask(old)
	return net.Listen("unix", path)
}

// checkSocketDir refuses a socket directory inside a directory every user
// may write to (such as /tmp, where an unprivileged greipsec keeps its
// socket by default) unless it is this user's and only this user's: another
// user could have made it first, to put a socket of their own where the
// greipsec commands connect.
func checkSocketDir(dir string) error {
	var parent unix.Stat_t
	if err := unix.Stat(filepath.Dir(dir), &parent); err != nil || parent.Mode&0o002 == 0 {
		return nil // not a shared directory, or nothing to check
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return fmt.Errorf("control: %w", err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("control: %s is not a directory; remove it, or set [control] socket or --control", dir)
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("control: %s belongs to uid %d, not to this user (%d), in a directory everyone may write to: another user may have made it; remove it, or set [control] socket or --control", dir, st.Uid, os.Geteuid())
	case st.Mode&0o022 != 0:
		return fmt.Errorf("control: %s may be written by others (mode %#o); chmod go-w it, or set [control] socket or --control", dir, st.Mode&0o777)
	}
	return nil
}
