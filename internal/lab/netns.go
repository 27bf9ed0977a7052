//go:build linux

package lab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// stopTimeout is how long Close and Stop wait after SIGTERM before they
// send SIGKILL. Tests shorten it.
var stopTimeout = 5 * time.Second

// RandomPrefix returns base followed by 4 random hex digits, a prefix for
// New that is unique enough for one run: RandomPrefix("gq") is like "gq3f9a".
func RandomPrefix(base string) string {
	var b [2]byte
	rand.Read(b[:])
	return base + hex.EncodeToString(b[:])
}

// newNamedNS creates a network namespace and bind-mounts it at
// NetnsDir/name, as `ip netns add` does, without entering it: the calling
// thread's namespace is unchanged. It fails if NetnsDir/name exists.
func newNamedNS(name string) (netns.NsHandle, error) {
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		return netns.None(), err
	}
	path := filepath.Join(NetnsDir, name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return netns.None(), fmt.Errorf("%s already exists", path)
		}
		return netns.None(), err
	}
	f.Close()
	var ns netns.NsHandle
	err = onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		self := "/proc/self/task/" + strconv.Itoa(unix.Gettid()) + "/ns/net"
		if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mount at %s: %w", path, err)
		}
		var err error
		ns, err = netns.Get()
		if err != nil {
			unix.Unmount(path, unix.MNT_DETACH)
		}
		return err
	})
	if err != nil {
		os.Remove(path)
		return netns.None(), err
	}
	return ns, nil
}

// onThread runs f on a fresh goroutine locked to its OS thread and returns
// f's result. Whatever f does to the thread's network namespace is undone
// afterwards; if that fails, the thread is left locked, so that the Go
// runtime destroys it instead of running other goroutines on it.
func onThread(f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		result := errors.New("lab: function exited with runtime.Goexit")
		restored := false
		defer func() {
			if restored {
				runtime.UnlockOSThread()
			}
			done <- result
		}()
		orig, err := netns.Get()
		if err != nil {
			restored = true
			result = fmt.Errorf("lab: current network namespace: %w", err)
			return
		}
		defer orig.Close()
		defer func() {
			if err := netns.Set(orig); err != nil {
				result = errors.Join(result, fmt.Errorf("lab: restore network namespace: %w", err))
				return
			}
			restored = true
		}()
		result = f()
	}()
	return <-done
}

// Do runs f on an OS thread inside h's network namespace and returns f's
// result. Sockets f opens belong to h's namespace and stay usable from any
// goroutine after Do returns. f must not start goroutines that expect to
// be in h's namespace, and must not call runtime.Goexit (t.FailNow).
func (l *Lab) Do(h *Host, f func() error) error {
	if !h.ns.IsOpen() {
		return fmt.Errorf("lab: host %q is closed", h.Name)
	}
	return onThread(func() error {
		if err := netns.Set(h.ns); err != nil {
			return fmt.Errorf("lab: enter network namespace %s: %w", h.Name, err)
		}
		return f()
	})
}

// proc is a process started by Lab.Start. The lab waits for it.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once Wait has returned
	err  error         // the result of cmd.Wait, valid once done is closed
	pgid int           // its process group (Start makes one per process)
}

// signalGroup sends sig to p's process group: p and its children.
func (p *proc) signalGroup(sig syscall.Signal) {
	if p.pgid > 0 {
		syscall.Kill(-p.pgid, sig) // an error only means they have exited
	}
}

// stopAll ends the processes with SIGTERM, then, those still running after
// stopTimeout, with SIGKILL, and waits for all of them to exit.
func stopAll(procs []*proc) {
	for _, p := range procs {
		select {
		case <-p.done:
		default:
			p.signalGroup(syscall.SIGTERM)
		}
	}
	// Whatever is left of a group once its leader is gone (a traced
	// child that strace left running when it was stopped) is killed.
	defer func() {
		for _, p := range procs {
			p.signalGroup(syscall.SIGKILL)
		}
	}()
	timeout := time.NewTimer(stopTimeout)
	defer timeout.Stop()
	killed := false
	for _, p := range procs {
		select {
		case <-p.done:
			continue
		case <-timeout.C:
		}
		if !killed {
			killed = true
			for _, q := range procs {
				q.signalGroup(syscall.SIGKILL) // an error only means it has exited
			}
		}
		<-p.done
	}
}

// Start starts cmd inside h's network namespace: cmd.Start is called on a
// thread in that namespace, and the child inherits it. The lab waits for
// the process: the caller must not call cmd.Wait, and uses Wait, Stop or
// Exited instead, which panic for a command not started by Start. Close
// stops the process if it is still running.
func (l *Lab) Start(h *Host, cmd *exec.Cmd) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("lab: Start after Close")
	}
	// Its own process group, so that Stop and Close end what it started
	// too: "strace greipsec up" as nobody left greipsec running when only
	// strace was signalled (strace detaches from its tracees on SIGTERM
	// and dies alone on SIGKILL).
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := l.Do(h, cmd.Start); err != nil {
		return err
	}
	p := &proc{cmd: cmd, done: make(chan struct{}), pgid: cmd.Process.Pid}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	l.procs = append(l.procs, p)
	return nil
}

func (l *Lab) proc(cmd *exec.Cmd) *proc {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.procs {
		if p.cmd == cmd {
			return p
		}
	}
	panic("lab: command was not started with Lab.Start")
}

// Wait waits for cmd, started with Start, to exit and returns what
// cmd.Wait returned. It may be called any number of times.
func (l *Lab) Wait(cmd *exec.Cmd) error {
	p := l.proc(cmd)
	<-p.done
	return p.err
}

// Exited reports whether cmd, started with Start, has exited.
func (l *Lab) Exited(cmd *exec.Cmd) bool {
	select {
	case <-l.proc(cmd).done:
		return true
	default:
		return false
	}
}

// Stop ends cmd, started with Start, if it is still running: SIGTERM, then
// SIGKILL after 5 s. It returns what cmd.Wait returned; a process ended by
// Stop's signal reports that as an *exec.ExitError.
func (l *Lab) Stop(cmd *exec.Cmd) error {
	p := l.proc(cmd)
	stopAll([]*proc{p})
	return p.err
}

// WaitFor calls cond every 20 ms until it returns true, and reports
// whether it did within timeout. cond is called at least once.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitLink waits until a link named name exists in h's namespace, is
// administratively up, and has at least one address other than an IPv6
// link-local one: for example the TUN device of a tunnel that is starting.
func (l *Lab) WaitLink(h *Host, name string, timeout time.Duration) error {
	var last error
	ok := WaitFor(timeout, func() bool {
		link, err := h.nl.LinkByName(name)
		if err != nil {
			last = err
			return false
		}
		if link.Attrs().Flags&net.FlagUp == 0 {
			last = fmt.Errorf("%s is down", name)
			return false
		}
		addrs, err := h.nl.AddrList(link, netlink.FAMILY_ALL)
		if err != nil {
			last = err
			return false
		}
		for _, a := range addrs {
			if !a.IP.IsLinkLocalUnicast() {
				return true
			}
		}
		last = fmt.Errorf("%s has no address", name)
		return false
	})
	if !ok {
		return fmt.Errorf("lab: %s: link %s not ready within %v: %v", h.Name, name, timeout, last)
	}
	return nil
}

// killNamespace ends every process whose network namespace is the one
// bind-mounted at path (SIGTERM, then SIGKILL after stopTimeout), except
// the calling process.
func killNamespace(path string) error {
	var want unix.Stat_t
	if err := unix.Stat(path, &want); err != nil {
		return err
	}
	find := func() []int {
		var pids []int
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			var st unix.Stat_t
			if unix.Stat("/proc/"+e.Name()+"/ns/net", &st) == nil && st.Dev == want.Dev && st.Ino == want.Ino {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	for _, pid := range find() {
		unix.Kill(pid, unix.SIGTERM)
	}
	if WaitFor(stopTimeout, func() bool { return len(find()) == 0 }) {
		return nil
	}
	for _, pid := range find() {
		unix.Kill(pid, unix.SIGKILL)
	}
	if !WaitFor(stopTimeout, func() bool { return len(find()) == 0 }) {
		return fmt.Errorf("processes %v still running", find())
	}
	return nil
}
