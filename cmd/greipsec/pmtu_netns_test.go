//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/gateway"
	"github.com/greipsec/greipsec/gateway/config"
	"github.com/greipsec/greipsec/internal/lab"
)

// The path MTU tests run the manual-key example tunnel between A and B
// through a router R whose link towards B is smaller than the gateways'
// own links (lab.NewRouted), as the user did (issue 11).

// routedGateways starts "greipsec up" with the manual examples, edited by
// edit, in A and B of a routed lab whose R — B link has MTU mtuB, and
// returns the lab, the control socket of A and the config text of A.
func routedGateways(t *testing.T, mtuB int, edit func(string) string) (*lab.Lab, string, string) {
	t.Helper()
	l, err := lab.NewRouted(lab.RandomPrefix("gp"), mtuB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	gws := startExamples(t, l, "manual-a.toml", "manual-b.toml", edit)
	return l, gws[0].socket, gws[0].text
}

// runIn runs a command in h's namespace and returns its output; it is
// stopped after 30 s.
func runIn(t *testing.T, l *lab.Lab, h *lab.Host, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := l.Start(h, cmd); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(30*time.Second, func() { l.Stop(cmd) })
	defer timer.Stop()
	l.Wait(cmd)
	return out.String()
}

var nstatLine = regexp.MustCompile(`(?m)^(Ip6?FragCreates)\s+(\d+)`)

// fragCreates returns the outer fragments h's kernel made (IPv4 and IPv6),
// as nstat reports them.
func fragCreates(t *testing.T, l *lab.Lab, h *lab.Host) uint64 {
	t.Helper()
	hist := filepath.Join(t.TempDir(), "nstat")
	out := runIn(t, l, h, []string{"NSTAT_HISTORY=" + hist}, "nstat", "-asz", "IpFragCreates", "Ip6FragCreates")
	var n uint64
	m := nstatLine.FindAllStringSubmatch(out, -1)
	if len(m) != 2 {
		t.Fatalf("nstat in %s: %q", h.Name, out)
	}
	for _, f := range m {
		v, _ := strconv.ParseUint(f[2], 10, 64)
		n += v
	}
	return n
}

// tunnelStatus asks the gateway on sock for its tunnel gre0.
func tunnelStatus(t *testing.T, sock string) gateway.TunnelStatus {
	t.Helper()
	out, err := exec.Command(greipsecBinary(t), "show", "gre0", "--json", "--control", sock).Output()
	if err != nil {
		t.Fatalf("greipsec show: %v", err)
	}
	var st gateway.TunnelStatus
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("greipsec show --json: %v\n%s", err, out)
	}
	return st
}

// innerMTU is the inner MTU of the tunnel of cfg on an outer path of
// pathMTU bytes: pathMTU minus the tunnel's overhead.
func innerMTU(t *testing.T, cfg string, pathMTU int) int {
	t.Helper()
	c, err := config.Parse("a.toml", []byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	dc := c.Tunnels[0].Dataplane
	dc.PathMTU = pathMTU
	return dataplane.OverheadOf(&dc).MTU()
}

// pingUntil runs ping in A with args until its output contains want (at
// most 20 s) and returns the last output.
func pingUntil(t *testing.T, l *lab.Lab, want string, args ...string) (string, bool) {
	t.Helper()
	ping, err := exec.LookPath("ping")
	if err != nil {
		t.Skip("needs ping (Debian iputils-ping)")
	}
	var out string
	ok := lab.WaitFor(20*time.Second, func() bool {
		out = runIn(t, l, &l.A, nil, ping, append([]string{"-n", "-c", "3", "-i", "0.2", "-W", "1"}, args...)...)
		return strings.Contains(out, want)
	})
	return out, ok
}

var (
	localLine = regexp.MustCompile(`(?m)^local\s*=\s*"192\.0\.2\.([12])"`)
	peerLine  = regexp.MustCompile(`(?m)^peer\s*=\s*"192\.0\.2\.([12])"`)
)

// TestNetnsPathMTU is issue 11's test: through R with a 1400-byte link
// (1280 with IPv6 outer addresses), for raw ESP and ESP-in-UDP, a DF ping
// that does not fit is answered with "fragmentation needed" carrying 1400
// minus the tunnel's overhead, a 1400-byte ping without DF arrives
// (fragmented before encryption), an IPv6 inner ping of 1400 bytes gets
// "packet too big", and iperf3 TCP leaves no outer fragment on A or B.
// With R dropping its ICMP errors, traffic flows at the configured
// path-mtu. A run without the bottleneck gives the throughput to compare.
func TestNetnsPathMTU(t *testing.T) {
	needRoot(t)
	iperf3 := needIperf3(t)
	ipv6Outer := func(cfg string) string {
		cfg = localLine.ReplaceAllString(cfg, `local = "2001:db8:255::$1"`)
		return peerLine.ReplaceAllString(cfg, `peer = "2001:db8:255::$1"`)
	}
	for _, tc := range []struct {
		name      string
		transport string
		mtuB      int
		outer6    bool
		filtered  bool // R drops its ICMP errors; path-mtu = mtuB
	}{
		{"esp", "esp", 1400, false, false},
		{"udp", "udp", 1400, false, false},
		{"esp/ipv6-outer", "esp", 1280, true, false},
		{"esp/icmp-filtered", "esp", 1400, false, true},
		{"esp/no-bottleneck", "esp", 0, false, false},
		{"udp/no-bottleneck", "udp", 0, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edit := func(cfg string) string {
				cfg = setTransport(tc.transport)(cfg)
				if tc.outer6 {
					cfg = ipv6Outer(cfg)
				}
				if tc.filtered {
					cfg = transportLine.ReplaceAllLiteralString(cfg, fmt.Sprintf("transport = %q\npath-mtu = %d", tc.transport, tc.mtuB))
				}
				return cfg
			}
			l, sockA, cfgA := routedGateways(t, tc.mtuB, edit)
			if tc.filtered {
				rules := "table inet pmtu {\n chain out {\n  type filter hook output priority 0;\n" +
					"  icmp type destination-unreachable drop\n  icmpv6 type packet-too-big drop\n }\n}\n"
				cmd := exec.Command("nft", "-f", "-")
				cmd.Stdin = strings.NewReader(rules)
				if err := l.Do(l.R, func() error {
					out, err := cmd.CombinedOutput()
					if err != nil {
						return fmt.Errorf("nft: %v: %s", err, out)
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			if _, ok := pingUntil(t, l, "3 received", "10.255.0.2"); !ok {
				t.Fatal("no ping through the tunnel within 20 s")
			}
			mtuB := tc.mtuB
			if mtuB == 0 {
				mtuB = 1500
			}
			want := innerMTU(t, cfgA, mtuB)
			bottleneck := tc.mtuB != 0 && !tc.filtered
			// No DF, 1400 bytes: fragmented before encryption (after
			// the first, whose outer packet draws R's ICMP) and
			// answered: B's kernel got the whole packet back.
			if out, ok := pingUntil(t, l, "3 received", "-M", "dont", "-s", "1372", "10.255.0.2"); !ok {
				t.Errorf("ping -M dont -s 1372: want 3 replies in\n%s", out)
			} else {
				t.Logf("ping -M dont -s 1372 10.255.0.2:\n%s", out)
			}
			if st := tunnelStatus(t, sockA); bottleneck && st.PathMTU.FragmentedBefore == 0 {
				t.Errorf("A fragmented nothing before encryption: %+v", *st.PathMTU)
			}
			if bottleneck {
				// DF: answered with the inner MTU.
				msg := fmt.Sprintf("Frag needed and DF set (mtu = %d)", want)
				out, ok := pingUntil(t, l, msg, "-M", "do", "-s", "1372", "10.255.0.2")
				if !ok {
					t.Errorf("ping -M do -s 1372: want %q in\n%s", msg, out)
				}
				t.Logf("ping -M do -s 1372 10.255.0.2:\n%s", out)
				// IPv6 inner, 1400 bytes: packet too big.
				msg6 := fmt.Sprintf("Packet too big: mtu=%d", max(want, 1280))
				out, ok = pingUntil(t, l, msg6, "-s", "1352", "fd00:255::2")
				if !ok {
					t.Errorf("ping -s 1352 fd00:255::2: want %q in\n%s", msg6, out)
				}
				t.Logf("ping -s 1352 fd00:255::2:\n%s", out)
			}
			if st := tunnelStatus(t, sockA); st.PathMTU.Current != mtuB {
				t.Errorf("A's path MTU %d, want %d", st.PathMTU.Current, mtuB)
			}

			fa, fb := fragCreates(t, l, &l.A), fragCreates(t, l, &l.B)
			bps := iperf(t, l, iperf3, "10.255.0.2")
			da, db := fragCreates(t, l, &l.A)-fa, fragCreates(t, l, &l.B)-fb
			t.Logf("%s, R–B MTU %d: iperf3 TCP %.0f Mbit/s, outer fragments A %d, B %d; A: %+v", tc.name, mtuB, bps/1e6, da, db, *tunnelStatus(t, sockA).PathMTU)
			if da != 0 || db != 0 {
				t.Errorf("outer fragments during iperf3: A %d, B %d; want 0", da, db)
			}
		})
	}
}

// TestNetnsPathMTUExpiry: the learned path MTU ages out with the kernel's
// (net.ipv4.route.mtu_expires, 600 s by default, here 3 s in A), the
// tunnel goes back to the configured path MTU, and the next large packet
// probes the path again and learns it again.
func TestNetnsPathMTUExpiry(t *testing.T) {
	needRoot(t)
	l, sockA, cfgA := routedGateways(t, 1400, setTransport("esp"))
	if err := l.Do(&l.A, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/route/mtu_expires", []byte("3"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	if _, ok := pingUntil(t, l, "3 received", "10.255.0.2"); !ok {
		t.Fatal("no ping through the tunnel within 20 s")
	}
	msg := fmt.Sprintf("Frag needed and DF set (mtu = %d)", innerMTU(t, cfgA, 1400))
	for round := 1; round <= 2; round++ {
		if out, ok := pingUntil(t, l, msg, "-M", "do", "-s", "1372", "10.255.0.2"); !ok {
			t.Fatalf("round %d: ping -M do -s 1372: want %q in\n%s", round, msg, out)
		}
		if p := tunnelStatus(t, sockA).PathMTU; p.Current != 1400 || p.LearnedSeconds == nil {
			t.Fatalf("round %d: %+v, want 1400 learned", round, *p)
		}
		var p *gateway.PathMTUStatus
		if !lab.WaitFor(20*time.Second, func() bool {
			p = tunnelStatus(t, sockA).PathMTU
			return p.Current == 1500
		}) {
			t.Fatalf("round %d: the learned path MTU did not expire: %+v", round, *p)
		}
		if p.LearnedSeconds != nil || p.InnerMTU != innerMTU(t, cfgA, 1500) {
			t.Errorf("round %d: after expiry %+v", round, *p)
		}
	}
	if p := tunnelStatus(t, sockA).PathMTU; p.Changes < 4 {
		t.Errorf("%d changes of the path MTU, want at least 4 (down, up, down, up)", p.Changes)
	}
}
