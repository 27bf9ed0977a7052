//go:build unix

package control

import (
	"net"
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
