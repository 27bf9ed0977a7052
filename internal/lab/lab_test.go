//go:build linux

package lab

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The test binary doubles as the helper process that Start runs: with
// LAB_HELPER set, it does what the variable says instead of running tests.
func TestMain(m *testing.M) {
	switch os.Getenv("LAB_HELPER") {
	case "":
		stopTimeout = time.Second // keep the tests that wait for SIGKILL quick
		os.Exit(m.Run())
	case "interfaces": // print the names of the interfaces it sees
		ifs, err := net.Interfaces()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, i := range ifs {
			fmt.Println(i.Name)
		}
		os.Exit(0)
	case "sleep": // run until killed, ignoring SIGTERM if asked to
		if os.Getenv("LAB_HELPER_IGNORE_TERM") != "" {
			signal.Ignore(syscall.SIGTERM)
		}
		fmt.Println("ready")
		time.Sleep(time.Hour)
		os.Exit(3)
	}
	os.Exit(2)
}

func helper(what string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), append([]string{"LAB_HELPER=" + what}, env...)...)
	return cmd
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("lab tests create network namespaces and need root: run `go test` as root")
	}
}

// newLab creates a lab with a fresh prefix, closed when the test ends.
func newLab(t *testing.T) *Lab {
	t.Helper()
	needRoot(t)
	l, err := New(RandomPrefix("gqt"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
		Cleanup(l.Prefix)
	})
	return l
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// rootLinks returns the names of the links in the test's own namespace
// that start with prefix.
func rootLinks(t *testing.T, prefix string) []string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, prefix) {
			names = append(names, l.Attrs().Name)
		}
	}
	return names
}

func linkNames(t *testing.T, h *netlink.Handle) []string {
	t.Helper()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	return names
}

func TestPrefixRejected(t *testing.T) {
	for _, p := range []string{"", "abcdefghijklmn", "gq/x", "gq x", "gq.1"} {
		if l, err := New(p); err == nil {
			l.Close()
			t.Errorf("New(%q) succeeded, want an error", p)
		} else if exists(filepath.Join(NetnsDir, p+"a")) && p != "" {
			t.Errorf("New(%q) failed but created %s", p, p+"a")
		}
	}
	if err := checkPrefix("gq-_9Z1234567"); err != nil { // 13 characters
		t.Errorf("checkPrefix of a valid 13-character prefix: %v", err)
	}
}

func TestNewClose(t *testing.T) {
	needRoot(t)
	before := rootLinks(t, "")
	l, err := New(RandomPrefix("gqt"))
	if err != nil {
		t.Fatal(err)
	}
	defer Cleanup(l.Prefix)

	// Keep our own handles on the namespaces, to look inside them after
	// Close has removed their names.
	var handles []*netlink.Handle
	for _, h := range []*Host{&l.A, &l.B} {
		path := filepath.Join(NetnsDir, h.Name)
		if !exists(path) {
			t.Fatalf("%s does not exist", path)
		}
		ns, err := netns.GetFromPath(path)
		if err != nil {
			t.Fatal(err)
		}
		defer ns.Close()
		nh, err := netlink.NewHandleAt(ns)
		if err != nil {
			t.Fatal(err)
		}
		defer nh.Close()
		handles = append(handles, nh)

		link, err := nh.LinkByName(h.Link)
		if err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if link.Type() != "veth" || link.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("%s: %s is %s with flags %v, want an up veth", h.Name, h.Link, link.Type(), link.Attrs().Flags)
		}
		lo, err := nh.LinkByName("lo")
		if err != nil || lo.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("%s: lo is not up (%v)", h.Name, err)
		}
		addrs, err := nh.AddrList(link, netlink.FAMILY_ALL)
		if err != nil {
			t.Fatal(err)
		}
		var got []netip.Prefix
		for _, a := range addrs {
			ip, _ := netip.AddrFromSlice(a.IP)
			ones, _ := a.Mask.Size()
			p := netip.PrefixFrom(ip.Unmap(), ones)
			if p == h.Addr6 && a.Flags&unix.IFA_F_NODAD == 0 {
				t.Errorf("%s: %s without NODAD", h.Name, p)
			}
			got = append(got, p)
		}
		for _, want := range []netip.Prefix{h.Addr4, h.Addr6} {
			if !slices.Contains(got, want) {
				t.Errorf("%s: %s has %v, want %v among them", h.Name, h.Link, got, want)
			}
		}
	}
	if got := rootLinks(t, l.Prefix); len(got) != 0 {
		t.Errorf("New created links in the caller's namespace: %v", got)
	}

	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, h := range []*Host{&l.A, &l.B} {
		if path := filepath.Join(NetnsDir, h.Name); exists(path) {
			t.Errorf("%s still exists after Close", path)
		}
	}
	for i, nh := range handles {
		if names := linkNames(t, nh); !slices.Equal(names, []string{"lo"}) {
			t.Errorf("namespace %d has links %v after Close, want only lo", i, names)
		}
	}
	if got := rootLinks(t, ""); !slices.Equal(got, before) {
		t.Errorf("links in the caller's namespace changed from %v to %v", before, got)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := l.Do(&l.A, func() error { return nil }); err == nil {
		t.Error("Do after Close succeeded")
	}
}

// TestNewFailure makes New fail half-way, because the second namespace's
// name is taken, and checks that New removes the first one and leaves the
// one it did not create alone.
func TestNewFailure(t *testing.T) {
	needRoot(t)
	prefix := RandomPrefix("gqt")
	taken, err := newNamedNS(prefix + "b")
	if err != nil {
		t.Fatal(err)
	}
	taken.Close()
	t.Cleanup(func() { Cleanup(prefix) })

	l, err := New(prefix)
	if err == nil {
		l.Close()
		t.Fatal("New succeeded although its namespace name was taken")
	}
	if !strings.Contains(err.Error(), "already exists") {
		t.Errorf("New: %v, want an 'already exists' error", err)
	}
	if exists(filepath.Join(NetnsDir, prefix+"a")) {
		t.Errorf("failed New left %sa behind", prefix)
	}
	if !exists(filepath.Join(NetnsDir, prefix+"b")) {
		t.Errorf("failed New removed %sb, which it did not create", prefix)
	}
	if got := rootLinks(t, prefix); len(got) != 0 {
		t.Errorf("failed New left links %v", got)
	}
}

// TestCleanup leaves a namespace with a process in it, as a killed demo
// would, and checks that Cleanup ends the process and removes the namespace.
func TestCleanup(t *testing.T) {
	needRoot(t)
	prefix := RandomPrefix("gqt")
	ns, err := newNamedNS(prefix + "a")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	cmd := helper("sleep", "LAB_HELPER_IGNORE_TERM=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	err = onThread(func() error {
		if err := netns.Set(ns); err != nil {
			return err
		}
		return cmd.Start()
	})
	if err != nil {
		Cleanup(prefix)
		t.Fatal(err)
	}
	var ready [6]byte
	out.Read(ready[:]) // wait until it has ignored SIGTERM
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	if err := Cleanup(prefix); err != nil {
		t.Errorf("Cleanup: %v", err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("helper ended with %v, want SIGKILL (it ignores SIGTERM)", err)
		}
	case <-time.After(2 * time.Second):
		cmd.Process.Kill()
		t.Error("Cleanup left the process in the namespace running")
	}
	if exists(filepath.Join(NetnsDir, prefix+"a")) {
		t.Errorf("Cleanup left %sa behind", prefix)
	}
}

func TestPing(t *testing.T) {
	l := newLab(t)
	for _, tc := range []struct {
		from *Host
		dst  netip.Addr
	}{
		{&l.A, l.B.Addr4.Addr()},
		{&l.B, l.A.Addr4.Addr()},
		{&l.A, l.B.Addr6.Addr()},
		{&l.B, l.A.Addr6.Addr()},
	} {
		rtts, err := l.PingRTTs(tc.from, tc.dst, 3, 2*time.Second)
		if err != nil {
			t.Errorf("ping %s from %s: %v", tc.dst, tc.from.Name, err)
			continue
		}
		if len(rtts) != 3 {
			t.Errorf("ping %s from %s: %d of 3 replies", tc.dst, tc.from.Name, len(rtts))
		}
		for _, rtt := range rtts {
			if rtt <= 0 || rtt > 2*time.Second {
				t.Errorf("ping %s from %s: RTT %v", tc.dst, tc.from.Name, rtt)
			}
		}
	}
	// Nobody has these on-link addresses: no reply, and no error.
	for _, dst := range []string{"192.0.2.3", "2001:db8:255::3"} {
		n, err := l.Ping(&l.A, netip.MustParseAddr(dst), 1, 300*time.Millisecond)
		if err != nil || n != 0 {
			t.Errorf("ping %s (absent) = %d, %v; want 0, nil", dst, n, err)
		}
	}
	// No route at all: an error.
	if _, err := l.Ping(&l.A, netip.MustParseAddr("198.51.100.1"), 1, time.Second); err == nil {
		t.Error("ping without a route succeeded")
	}
}

// TestPinger: echo requests every 10 ms on the veth link, IPv4 and IPv6,
// all answered; to an absent address, all lost.
func TestPinger(t *testing.T) {
	l := newLab(t)
	for _, tc := range []struct {
		dst  netip.Addr
		lost bool
	}{{l.B.Addr4.Addr(), false}, {l.B.Addr6.Addr(), false}, {netip.MustParseAddr("192.0.2.3"), true}} {
		p, err := l.StartPinger(&l.A, tc.dst, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		time.Sleep(500 * time.Millisecond)
		sent, received, err := p.Stop()
		// A loaded machine delays the pinger's ticks, never adds any: the
		// upper bound is exact, the lower one only says that it runs.
		most := int(time.Since(start)/(10*time.Millisecond)) + 2
		switch {
		case err != nil:
			t.Errorf("ping %s: %v", tc.dst, err)
		case sent < 10 || sent > most:
			t.Errorf("ping %s: %d sent in %v at a 10 ms interval (expected 10 to %d)", tc.dst, sent, time.Since(start).Round(time.Millisecond), most)
		case tc.lost && received != 0, !tc.lost && received != sent:
			t.Errorf("ping %s: %d of %d answered", tc.dst, received, sent)
		}
	}
}

func TestTCPThroughput(t *testing.T) {
	l := newLab(t)
	for _, tc := range []struct {
		from, to *Host
		dst      netip.Addr
	}{
		{&l.A, &l.B, l.B.Addr4.Addr()},
		{&l.B, &l.A, l.A.Addr6.Addr()},
	} {
		bps, err := l.TCPThroughput(tc.from, tc.to, tc.dst, 300*time.Millisecond)
		if err != nil {
			t.Errorf("%s → %s: %v", tc.from.Name, tc.dst, err)
			continue
		}
		t.Logf("%s → %s: %.2f Gbit/s", tc.from.Name, tc.dst, bps/1e9)
		if bps <= 0 {
			t.Errorf("%s → %s: %v bit/s", tc.from.Name, tc.dst, bps)
		}
	}
	// A's own address is not in B: B cannot listen on it.
	if _, err := l.TCPThroughput(&l.A, &l.B, l.A.Addr4.Addr(), 100*time.Millisecond); err == nil {
		t.Error("throughput with the receiver on a foreign address succeeded")
	}
}

func TestStart(t *testing.T) {
	l := newLab(t)

	// The child sees B's interfaces, not A's or the caller's.
	cmd := helper("interfaces")
	var out strings.Builder
	cmd.Stdout = &out
	if err := l.Start(&l.B, cmd); err != nil {
		t.Fatal(err)
	}
	if err := l.Wait(cmd); err != nil {
		t.Fatalf("helper: %v", err)
	}
	if !l.Exited(cmd) {
		t.Error("Exited is false after Wait")
	}
	got := strings.Fields(out.String())
	slices.Sort(got)
	if want := []string{l.B.Link, "lo"}; !slices.Equal(got, want) {
		t.Errorf("process started in B sees interfaces %v, want %v", got, want)
	}

	// The starting goroutine's namespace was restored: the test still
	// sees its own links and none of the lab's.
	if got := rootLinks(t, l.Prefix); len(got) != 0 {
		t.Errorf("caller's namespace has lab links %v after Start", got)
	}

	// Stop ends a running process with SIGTERM.
	sleeper := helper("sleep")
	if err := l.Start(&l.A, sleeper); err != nil {
		t.Fatal(err)
	}
	if l.Exited(sleeper) {
		t.Error("sleeper exited at once")
	}
	err := l.Stop(sleeper)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Errorf("Stop: %v, want termination by SIGTERM", err)
	}

	// Start of a missing program fails and leaves the lab usable.
	if err := l.Start(&l.A, exec.Command("/nonexistent/greipsec")); err == nil {
		t.Error("Start of a missing program succeeded")
	}
	if n, err := l.Ping(&l.A, l.B.Addr4.Addr(), 1, 2*time.Second); n != 1 || err != nil {
		t.Errorf("ping after failed Start: %d, %v", n, err)
	}
}

// TestCloseStopsProcesses checks that Close ends what Start started, also
// processes that ignore SIGTERM (all within one stopTimeout), and that
// Start fails after Close.
func TestCloseStopsProcesses(t *testing.T) {
	needRoot(t)
	l, err := New(RandomPrefix("gqt"))
	if err != nil {
		t.Fatal(err)
	}
	defer Cleanup(l.Prefix)
	polite := helper("sleep")
	stubborn := []*exec.Cmd{helper("sleep", "LAB_HELPER_IGNORE_TERM=1"), helper("sleep", "LAB_HELPER_IGNORE_TERM=1")}
	for i, c := range append([]*exec.Cmd{polite}, stubborn...) {
		var out io.ReadCloser
		if i > 0 {
			if out, err = c.StdoutPipe(); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Start(&l.B, c); err != nil {
			t.Fatal(err)
		}
		if out != nil {
			var ready [6]byte
			out.Read(ready[:]) // SIGTERM is ignored from now on
		}
	}
	start := time.Now()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if took := time.Since(start); took < stopTimeout || took > stopTimeout+time.Second {
		t.Errorf("Close took %v, want about %v (SIGKILL after SIGTERM was ignored, in parallel)", took, stopTimeout)
	}
	if sig := polite.ProcessState.Sys().(syscall.WaitStatus).Signal(); sig != syscall.SIGTERM {
		t.Errorf("polite helper ended by %v, want SIGTERM", sig)
	}
	for _, c := range stubborn {
		if !l.Exited(c) {
			t.Fatal("stubborn helper still running after Close")
		}
		if sig := c.ProcessState.Sys().(syscall.WaitStatus).Signal(); sig != syscall.SIGKILL {
			t.Errorf("stubborn helper ended by %v, want SIGKILL", sig)
		}
	}
	if exists(filepath.Join(NetnsDir, l.B.Name)) {
		t.Errorf("%s still exists", l.B.Name)
	}
	if err := l.Start(&l.A, helper("sleep")); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestWaitLink(t *testing.T) {
	l := newLab(t)
	if err := l.WaitLink(&l.A, l.A.Link, time.Second); err != nil {
		t.Error(err)
	}
	if err := l.WaitLink(&l.A, l.B.Link, 100*time.Millisecond); err == nil {
		t.Errorf("WaitLink found B's link %s in A", l.B.Link)
	}
	if !WaitFor(0, func() bool { return true }) || WaitFor(50*time.Millisecond, func() bool { return false }) {
		t.Error("WaitFor reports the wrong result")
	}
}
