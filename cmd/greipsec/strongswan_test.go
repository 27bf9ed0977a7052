//go:build linux

package main

import (
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/greipsec/greipsec/gateway"
	"github.com/greipsec/greipsec/internal/lab"
)

// The tests in this file run greipsec against strongSwan: Debian's charon
// with its userspace ESP (kernel-libipsec), in the other network namespace.
// They need root and install strongSwan's packages when missing.

var roleLine = regexp.MustCompile(`(?m)^role\s*=\s*"[a-z]+"`)

// interop starts charon in B with conf and greipsec in A with the example
// config file, its role set to role.
func interop(t *testing.T, file, role string, conf lab.StrongSwanConfig) (*lab.Lab, *lab.StrongSwan, *gwProc) {
	t.Helper()
	return interopEdited(t, file, role, conf, nil)
}

// interopEdited is interop with greipsec's config file edited by edit
// (which may be nil) after the role is set.
func interopEdited(t *testing.T, file, role string, conf lab.StrongSwanConfig, edit func(string) string) (*lab.Lab, *lab.StrongSwan, *gwProc) {
	t.Helper()
	needRoot(t)
	if err := lab.NeedStrongSwan(); err != nil {
		t.Fatal(err)
	}
	exe := greipsecBinary(t)
	l, err := lab.New(lab.RandomPrefix("gs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ss, err := l.StartStrongSwan(&l.B, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ss.Stop()
		if t.Failed() {
			t.Logf("charon log:\n%s", ss.Log())
		}
		os.RemoveAll(ss.Dir)
	})

	cfg, err := os.ReadFile(filepath.Join("..", "..", "examples", file))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), filepath.Base(file))
	text := roleLine.ReplaceAllLiteralString(string(cfg), `role = "`+role+`"`)
	if edit != nil {
		text = edit(text)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(path + ".log")
	if err != nil {
		t.Fatal(err)
	}
	g := &gwProc{config: path, socket: path + ".sock", log: path + ".log"}
	cmd := exec.Command(exe, "up", "--allow-example-psk", "-v", "-c", path, "--control", g.socket)
	g.cmd = cmd
	cmd.Stdout, cmd.Stderr = log, log
	if err := l.Start(&l.A, cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Stop(cmd)
		log.Close()
		if t.Failed() {
			out, _ := os.ReadFile(path + ".log")
			t.Logf("greipsec log:\n%s", out)
		}
	})
	return l, ss, g
}

// TestStrongSwanRoute: route mode (0/0-style tunnel-mode Child SA, here
// 10.1.0.0/24 <-> 10.2.0.0/24) with aes256-sha384-ecp384 / aes256gcm16-ecp384,
// greipsec as initiator and as responder; ping and iperf3 from greipsec's
// LAN address to one behind strongSwan.
func TestStrongSwanRoute(t *testing.T) {
	for _, tc := range []struct {
		name            string
		role            string
		charonInitiates bool
	}{
		{"greipsec-initiates", "active", false},
		{"strongswan-initiates", "passive", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, ss, g := interop(t, "strongswan/greipsec.toml", tc.role, lab.StrongSwanConfig{
				LocalAddr: netip.MustParseAddr("192.0.2.2"), PeerAddr: netip.MustParseAddr("192.0.2.1"),
				PSK:          "greipsec-interop-psk",
				IKEProposals: "aes256-sha384-ecp384", ESPProposals: "aes256gcm16-ecp384",
				LocalTS: []string{"10.2.0.0/24"}, PeerTS: []string{"10.1.0.0/24"},
				Initiate:     tc.charonInitiates,
				ExtraLANAddr: netip.MustParsePrefix("10.2.0.1/24"),
			})
			bps := lanTraffic(t, l, ss)
			t.Logf("iperf3 TCP greipsec -> strongSwan (route mode): %.2f Gbit/s", bps/1e9)

			sas, err := ss.ListSAs()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("swanctl --list-sas:\n%s", sas)
			for _, want := range []string{"ESTABLISHED", "AES_CBC-256/HMAC_SHA2_384_192/PRF_HMAC_SHA2_384/ECP_384",
				"INSTALLED, TUNNEL-in-UDP, ESP:AES_GCM_16-256", "10.2.0.0/24", "10.1.0.0/24"} {
				if !strings.Contains(sas, want) {
					t.Errorf("swanctl --list-sas lacks %q", want)
				}
			}
			in, out, err := ss.ChildBytes()
			if err != nil || in < 1e6 || out == 0 {
				t.Errorf("strongSwan Child SA bytes in %d, out %d (err %v); want > 1 MB in (iperf3) and > 0 out", in, out, err)
			}
			compareWithSwanctl(t, g, sas)
		})
	}
}

// TestStrongSwanGRETunnel: GRE over ESP tunnel mode with protocol-47
// selectors between the gateway addresses, as Cisco IOS negotiates it.
// charon installs the Child SA; it has no GRE (nor does this kernel), so it
// cannot answer inside the tunnel: the test checks that its inbound byte
// counter rises as greipsec sends GRE.
func TestStrongSwanGRETunnel(t *testing.T) {
	t.Run("greipsec-initiates", func(t *testing.T) { testStrongSwanGRETunnel(t, "active", false) })
	t.Run("strongswan-initiates", func(t *testing.T) { testStrongSwanGRETunnel(t, "passive", true) })
}

func testStrongSwanGRETunnel(t *testing.T, role string, charonInitiates bool) {
	l, ss, g := interop(t, "strongswan/greipsec-gre-tunnel.toml", role, lab.StrongSwanConfig{
		LocalAddr: netip.MustParseAddr("192.0.2.2"), PeerAddr: netip.MustParseAddr("192.0.2.1"),
		PSK:          "greipsec-interop-psk",
		IKEProposals: "aes256-sha384-ecp384", ESPProposals: "aes256gcm16-ecp384",
		LocalTS: []string{"192.0.2.2/32[gre]"}, PeerTS: []string{"192.0.2.1/32[gre]"},
		AllowPeerTS: true,
		Initiate:    charonInitiates,
	})
	if err := l.WaitLink(&l.A, "gre0", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	sas, err := ss.WaitInstalled(30 * time.Second)
	if err != nil {
		t.Fatalf("Child SA not installed in strongSwan: %v\n%s", err, sas)
	}
	before, _, err := ss.ChildBytes()
	if err != nil {
		t.Fatal(err)
	}
	// Packets into gre0 go out as GRE in ESP tunnel mode; no answers come.
	l.Ping(&l.A, netip.MustParseAddr("10.255.0.2"), 10, 200*time.Millisecond)
	after, _, err := ss.ChildBytes()
	if err != nil {
		t.Fatal(err)
	}
	sas, _ = ss.ListSAs()
	t.Logf("swanctl --list-sas:\n%s", sas)
	// Each ping is at least an IPv4 header and an ICMP header, behind the
	// inner IP header and the GRE header that strongSwan counts as payload.
	if after-before < 10*(20+4+20+8) {
		t.Errorf("strongSwan's inbound bytes rose by %d, want at least 10 GRE-encapsulated pings", after-before)
	}
	for _, want := range []string{"INSTALLED, TUNNEL-in-UDP", "192.0.2.2/32[gre]", "192.0.2.1/32[gre]"} {
		if !strings.Contains(sas, want) {
			t.Errorf("swanctl --list-sas lacks %q", want)
		}
	}
	compareWithSwanctl(t, g, sas)
}

// swanSPIs finds the IKE SPIs and the Child SA's SPIs in swanctl
// --list-sas output.
var (
	swanIKESPIs   = regexp.MustCompile(`ESTABLISHED, IKEv2, ([0-9a-f]{16})_i\*? ([0-9a-f]{16})_r`)
	swanChildSPIs = regexp.MustCompile(`(?m)^\s+in\s+([0-9a-f]{8}),[\s\S]*?^\s+out\s+([0-9a-f]{8}),`)
)

// compareWithSwanctl prints greipsec show next to swanctl --list-sas for
// the same tunnel and checks that they agree: the same IKE SPIs, the Child
// SA's SPIs crossed, the same algorithms and selectors the other way round.
func compareWithSwanctl(t *testing.T, g *gwProc, sas string) {
	t.Helper()
	text, err := g.ctl(t, "show")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("greipsec show:\n%s", text)
	var st gateway.Status
	out, err := g.ctl(t, "show", "--json")
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || len(st.Tunnels) != 1 {
		t.Fatalf("show --json: %v\n%s", err, out)
	}
	ts := st.Tunnels[0]
	if !childUp(&ts) {
		t.Fatalf("greipsec shows no installed Child SA: %+v", ts.IKE)
	}
	ike := swanIKESPIs.FindStringSubmatch(sas)
	child := swanChildSPIs.FindStringSubmatch(sas)
	if ike == nil || child == nil {
		t.Fatalf("no SPIs in swanctl --list-sas:\n%s", sas)
	}
	if ike[1] != ts.IKE.SPIi || ike[2] != ts.IKE.SPIr {
		t.Errorf("IKE SPIs: swanctl %s_i %s_r, greipsec %s_i %s_r", ike[1], ike[2], ts.IKE.SPIi, ts.IKE.SPIr)
	}
	c := ts.ChildSAs[0]
	if child[1] != c.OutSPI || child[2] != c.InSPI {
		t.Errorf("Child SA SPIs: swanctl in %s out %s, greipsec in %s out %s", child[1], child[2], c.InSPI, c.OutSPI)
	}
	if !strings.Contains(sas, ts.IKE.Algorithms) || !strings.Contains(sas, "ESP:"+c.Algorithms) {
		t.Errorf("algorithms: greipsec %s and ESP:%s, not in swanctl's", ts.IKE.Algorithms, c.Algorithms)
	}
	for _, ts := range c.LocalTS {
		if !regexp.MustCompile(`remote\s+` + regexp.QuoteMeta(ts)).MatchString(sas) {
			t.Errorf("greipsec's local selector %s is not swanctl's remote one", ts)
		}
	}
}

// lanTraffic waits for sec0 in A, for a ping to 10.2.0.1 on strongSwan's
// LAN through it (printing swanctl --list-sas if none comes within 30 s),
// checks 5 more pings and returns what iperf3 TCP measured from A to there.
func lanTraffic(t *testing.T, l *lab.Lab, ss *lab.StrongSwan) (bps float64) {
	t.Helper()
	if err := l.WaitLink(&l.A, "sec0", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	lan := netip.MustParseAddr("10.2.0.1")
	if !lab.WaitFor(30*time.Second, func() bool {
		n, _ := l.Ping(&l.A, lan, 1, time.Second)
		return n == 1
	}) {
		sas, _ := ss.ListSAs()
		t.Fatalf("no ping reply from %s behind strongSwan within 30 s; swanctl --list-sas:\n%s", lan, sas)
	}
	if n, err := l.Ping(&l.A, lan, 5, 2*time.Second); err != nil || n < 4 {
		t.Errorf("ping %s: %d/5 replies, err %v", lan, n, err)
	}
	return iperf(t, l, needIperf3(t), lan.String())
}
