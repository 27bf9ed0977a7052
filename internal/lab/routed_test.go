//go:build linux

package lab

import (
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestRoutedLab builds A — R — B with R's link towards B at 1400 bytes:
// A and B reach each other over IPv4 and IPv6 through R, and a packet
// with DF that does not fit draws R's ICMP "fragmentation needed" with
// MTU 1400 (and IPv6 "packet too big"), which ping reports.
func TestRoutedLab(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	ping, err := exec.LookPath("ping")
	if err != nil {
		t.Skip("needs ping (iputils-ping)")
	}
	l, err := NewRouted(RandomPrefix("gl"), 1400)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
		for _, h := range []string{l.A.Name, l.B.Name, l.R.Name} {
			if _, err := os.Stat("/run/netns/" + h); err == nil {
				t.Errorf("namespace %s left behind", h)
			}
		}
	})
	for _, dst := range []netip.Addr{addrB4.Addr(), addrB6.Addr()} {
		if !WaitFor(10*time.Second, func() bool {
			n, _ := l.Ping(&l.A, dst, 1, time.Second)
			return n == 1
		}) {
			t.Fatalf("no reply from %s through R", dst)
		}
	}
	for _, tc := range []struct {
		dst, size, want string
	}{
		{"192.0.2.2", "1472", "Frag needed and DF set (mtu = 1400)"},
		// "Packet too big: mtu=1400" for the reply to the first, then
		// the kernel knows: "local error: message too long, mtu: 1400".
		{"2001:db8:255::2", "1400", "mtu=1400"},
	} {
		var out []byte
		WaitFor(10*time.Second, func() bool {
			cmd := exec.Command(ping, "-n", "-M", "do", "-s", tc.size, "-c", "2", "-i", "0.2", "-W", "1", tc.dst)
			var b strings.Builder
			cmd.Stdout, cmd.Stderr = &b, &b
			if err := l.Start(&l.A, cmd); err != nil {
				t.Fatal(err)
			}
			l.Wait(cmd)
			out = []byte(b.String())
			return strings.Contains(b.String(), tc.want)
		})
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("ping -M do -s %s %s: want %q in\n%s", tc.size, tc.dst, tc.want, out)
		}
	}
}
