package main

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/cap"
)

// The privilege drop of "up --user" (review L6). Once the sockets and TUN
// devices exist, the process (every thread: libcap's cap package changes
// the credentials of all of them, as POSIX wants and the Go runtime alone
// does only for setuid) runs as the given user and group, no
// supplementary groups, with only the capabilities a running gateway
// still needs, in its permitted and effective sets:
//
//   - CAP_NET_ADMIN: a reload creates and configures TUN devices
//     (addresses, routes, MTU), and the shutdown removes them;
//   - CAP_NET_RAW: a reload opens raw ESP sockets for new tunnels;
//   - CAP_NET_BIND_SERVICE: a reload opens UDP port 500 for a new local
//     address.
//
// Every other capability leaves the bounding set too, and
// PR_SET_NO_NEW_PRIVS is set: nothing the process could exec gains any.
// The ambient set stays empty: greipsec execs nothing. Opening
// /dev/net/tun is checked against its file mode, not a capability (0666 on
// most distributions, 0600 in some containers): up opens tunSpares
// descriptors of it before the drop, one per TUN device a reload may
// create (tun.ReserveSpares), rather than keep CAP_DAC_OVERRIDE. What the
// user must be able to reach afterwards: the configuration file and psk-files (for
// reload) and the directory of the state file (manual SAs: it is replaced
// by rename); the control socket keeps listening on the socket opened
// before the drop.

// keptCaps are the capabilities kept after the drop.
var keptCaps = []cap.Value{cap.NET_ADMIN, cap.NET_RAW, cap.NET_BIND_SERVICE}

// dropPrivileges makes the process run as uid and gid with keptCaps.
func dropPrivileges(uid, gid int) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("--user: only root can change to another user (running as uid %d)", os.Geteuid())
	}
	// The bounding set first, while CAP_SETPCAP is there.
	var drop []cap.Value
	for v := cap.Value(0); v < cap.MaxBits(); v++ {
		if !keeps(v) {
			drop = append(drop, v)
		}
	}
	if err := cap.DropBound(drop...); err != nil {
		return fmt.Errorf("--user: dropping capabilities from the bounding set: %w", err)
	}
	// Only what is kept and what changing user needs.
	interim := cap.NewSet()
	for _, f := range []cap.Flag{cap.Permitted, cap.Effective} {
		if err := interim.SetFlag(f, true, append(keptCaps, cap.SETUID, cap.SETGID)...); err != nil {
			return err
		}
	}
	if err := interim.SetProc(); err != nil {
		return fmt.Errorf("--user: %w", err)
	}
	if err := cap.SetGroups(gid); err != nil {
		return fmt.Errorf("--user: setting group %d: %w", gid, err)
	}
	if err := cap.SetUID(uid); err != nil { // keeps the permitted set
		return fmt.Errorf("--user: setting user %d: %w", uid, err)
	}
	final := cap.NewSet()
	for _, f := range []cap.Flag{cap.Permitted, cap.Effective} {
		if err := final.SetFlag(f, true, keptCaps...); err != nil {
			return err
		}
	}
	if err := final.SetProc(); err != nil {
		return fmt.Errorf("--user: %w", err)
	}
	if _, err := cap.Prctlw(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("--user: PR_SET_NO_NEW_PRIVS: %w", err)
	}
	if os.Getuid() != uid || os.Geteuid() != uid || os.Getgid() != gid {
		return fmt.Errorf("--user: still uid %d/%d gid %d after the change", os.Getuid(), os.Geteuid(), os.Getgid())
	}
	return nil
}

func keeps(v cap.Value) bool {
	for _, k := range keptCaps {
		if k == v {
			return true
		}
	}
	return false
}

// keptCapNames names keptCaps, for the log.
func keptCapNames() string { return "cap_net_admin,cap_net_raw,cap_net_bind_service" }

// userAccess checks what the user uid/gid must reach after the drop:
// the state file's directory, writable, if manual SAs keep their
// sequence numbers there (an error: the first reservation after the drop
// would fail and stop the SA), and the configuration file, readable (a
// warning: only reload needs it).
func userAccess(uid, gid int, path, stateFile string, manual bool) (errs []error, warns []string) {
	may := func(name string, bit uint32) bool { // bit: 4 read, 2 write (of rwx)
		var st unix.Stat_t
		if unix.Stat(name, &st) != nil {
			return false
		}
		switch {
		case int(st.Uid) == uid:
			return st.Mode&(bit<<6) != 0
		case int(st.Gid) == gid:
			return st.Mode&(bit<<3) != 0
		}
		return st.Mode&bit != 0
	}
	if manual {
		dir := filepath.Dir(stateFile)
		if !may(dir, 2) || !may(dir, 1) {
			errs = append(errs, fmt.Errorf("--user: the state file's directory %s must be writable by uid %d after the privilege drop (the file is replaced by rename): chown it to that user, or use --state-file in a directory it owns", dir, uid))
		}
	}
	if !may(path, 4) {
		warns = append(warns, fmt.Sprintf("%s is not readable by uid %d: reload will fail after the privilege drop; chown it to that user (mode 0600)", path, uid))
	}
	return errs, warns
}
