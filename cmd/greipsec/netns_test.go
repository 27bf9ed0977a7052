//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/greipsec/greipsec/examples"
	"github.com/greipsec/greipsec/internal/lab"
)

// The tests in this file run real "greipsec up" processes in two network
// namespaces with the example configs. They need root; CI runs as root.

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// greipsecBinary builds the command once per test run; with
// GREIPSEC_TEST_RACE set, with the race detector.
func greipsecBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "greipsec-test")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "greipsec")
		args := []string{"build", "-o", buildPath}
		if os.Getenv("GREIPSEC_TEST_RACE") != "" { // the processes run with the race detector
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildPath != "" {
		os.RemoveAll(filepath.Dir(buildPath))
	}
	os.Exit(code)
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and TUN devices (CI runs as root)")
	}
}

// needIperf3 returns the path of iperf3, installing Debian's package if it
// is missing.
func needIperf3(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("iperf3"); err == nil {
		return p
	}
	t.Log("iperf3 not found: installing it with apt-get")
	cmd := exec.Command("sh", "-c", "apt-get -o DPkg::Lock::Timeout=300 update -qq && apt-get -o DPkg::Lock::Timeout=300 install -y -qq iperf3")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("installing iperf3: %v\n%s", err, out)
	}
	p, err := exec.LookPath("iperf3")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// gateways starts "greipsec up" in both hosts of a new lab with the example
// configs, edited by edit, and waits for the tunnel interfaces.
func gateways(t *testing.T, fileA, fileB string, edit func(string) string) (*lab.Lab, []*exec.Cmd, []string) {
	t.Helper()
	l, err := lab.New(lab.RandomPrefix("gt"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	gws := startExamples(t, l, fileA, fileB, edit)
	return l, []*exec.Cmd{gws[0].cmd, gws[1].cmd}, []string{gws[0].log, gws[1].log}
}

// exampleGateway is one "greipsec up" started by startExamples.
type exampleGateway struct {
	cmd    *exec.Cmd
	text   string // its configuration
	socket string // its control socket
	log    string // its log file
}

// startExamples starts "greipsec up" in l's hosts A and B with the example
// configs fileA and fileB, edited by edit, stops them when the test ends
// (printing their logs if it failed), and waits for the tunnel interfaces.
func startExamples(t *testing.T, l *lab.Lab, fileA, fileB string, edit func(string) string) [2]exampleGateway {
	t.Helper()
	exe := greipsecBinary(t)
	dir := t.TempDir()
	var gws [2]exampleGateway
	for i, side := range []struct {
		host *lab.Host
		file string
	}{{&l.A, fileA}, {&l.B, fileB}} {
		cfg, err := examples.FS.ReadFile(side.file)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, side.file)
		g := exampleGateway{text: edit(string(cfg)), socket: path + ".sock", log: path + ".log"}
		if err := os.WriteFile(path, []byte(g.text), 0o600); err != nil {
			t.Fatal(err)
		}
		log, err := os.Create(g.log)
		if err != nil {
			t.Fatal(err)
		}
		g.cmd = exec.Command(exe, "up", "--allow-example-psk", "-c", path, "--control", g.socket)
		g.cmd.Stdout, g.cmd.Stderr = log, log
		if err := l.Start(side.host, g.cmd); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			l.Stop(g.cmd)
			log.Close()
			if t.Failed() {
				out, _ := os.ReadFile(g.log)
				t.Logf("greipsec log of %s:\n%s", side.host.Name, out)
			}
		})
		gws[i] = g
	}
	for _, h := range []*lab.Host{&l.A, &l.B} {
		if err := l.WaitLink(h, "gre0", 10*time.Second); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
	}
	return gws
}

var (
	modeLine   = regexp.MustCompile(`(?m)^mode\s*=\s*"[a-z-]+"`)
	ikeSection = regexp.MustCompile(`(?m)^\[tunnel\.ike\]`)
	localB     = regexp.MustCompile(`(?m)^local\s*=\s*"192\.0\.2\.2"`)
)

// setTransport returns an edit of a config file that sets its transport.
func setTransport(transport string) func(string) string {
	return func(cfg string) string {
		return transportLine.ReplaceAllLiteralString(cfg, fmt.Sprintf("transport = %q", transport))
	}
}

// TestNetnsManual runs the example site-to-site tunnel with manual keys
// (manual-a.toml, manual-b.toml) between two greipsec processes, for raw
// ESP and ESP-in-UDP: ping both ways over the IPv4 and IPv6 inner addresses,
// an iperf3 TCP transfer, and a clean shutdown.
func TestNetnsManual(t *testing.T) {
	testNetns(t, "manual-a.toml", "manual-b.toml", map[string]func(string) string{
		"esp": setTransport("esp"), "udp": setTransport("udp")})
}

// TestNetnsIKE does the same with the IKEv2 examples (site-a.toml,
// site-b.toml): both gateways active, PSK, for each mode and transport.
func TestNetnsIKE(t *testing.T) {
	setMode := func(mode, transport string) func(string) string {
		return func(cfg string) string {
			cfg = setTransport(transport)(cfg)
			return modeLine.ReplaceAllLiteralString(cfg, fmt.Sprintf("mode = %q", mode))
		}
	}
	testNetns(t, "site-a.toml", "site-b.toml", map[string]func(string) string{
		"gre-transport/esp": setMode("gre-transport", "esp"),
		"gre-transport/udp": setMode("gre-transport", "udp"),
		"gre-tunnel/esp":    setMode("gre-tunnel", "esp"),
		"route/udp":         setMode("route", "udp"),
		// A asks for transport mode but accepts tunnel mode; B, like Cisco
		// IOS's default "mode tunnel", only does tunnel mode.
		"gre-transport-fallback/esp": func(cfg string) string {
			if localB.MatchString(cfg) {
				return setMode("gre-tunnel", "esp")(cfg)
			}
			return ikeSection.ReplaceAllLiteralString(setMode("gre-transport", "esp")(cfg), "[tunnel.ike]\ntunnel-fallback = true")
		},
		// A byte lifetime far below what iperf3 moves: the Child SA is
		// rekeyed (with PFS) again and again while traffic flows.
		"gre-transport/udp/lifetime-bytes": func(cfg string) string {
			return ikeSection.ReplaceAllLiteralString(setMode("gre-transport", "udp")(cfg), "[tunnel.ike]\nlifetime-bytes = \"20M\"")
		},
	})
}

func testNetns(t *testing.T, fileA, fileB string, variants map[string]func(string) string) {
	needRoot(t)
	iperf3 := needIperf3(t)
	for name, edit := range variants {
		t.Run(name, func(t *testing.T) {
			l, cmds, logs := gateways(t, fileA, fileB, edit)
			// With IKE the first packets wait for the Child SA.
			if !lab.WaitFor(20*time.Second, func() bool {
				n, _ := l.Ping(&l.A, netip.MustParseAddr("10.255.0.2"), 1, time.Second)
				return n == 1
			}) {
				t.Fatal("no ping reply through the tunnel within 20 s")
			}
			for _, p := range []struct {
				from *lab.Host
				dst  string
			}{{&l.A, "10.255.0.2"}, {&l.B, "10.255.0.1"}, {&l.A, "fd00:255::2"}, {&l.B, "fd00:255::1"}} {
				n, err := l.Ping(p.from, netip.MustParseAddr(p.dst), 5, 2*time.Second)
				if err != nil || n < 4 {
					t.Errorf("ping %s from %s: %d/5 replies, err %v", p.dst, p.from.Name, n, err)
				}
			}

			for _, dst := range []string{"10.255.0.2", "fd00:255::2"} {
				bps := iperf(t, l, iperf3, dst)
				t.Logf("iperf3 TCP %s -> %s over %s: %.2f Gbit/s", l.A.Name, dst, name, bps/1e9)
			}

			if strings.Contains(name, "lifetime-bytes") {
				log, _ := os.ReadFile(logs[0])
				if n := strings.Count(string(log), `msg="Child SA installed"`); n < 3 {
					t.Errorf("%d Child SAs installed while iperf3 moved at least 100 MB with lifetime-bytes 20M; want rekeys", n)
				} else {
					t.Logf("%d Child SAs installed (rekeyed by byte lifetime)", n)
				}
			}

			// SIGTERM: both exit 0 and remove their interface.
			for i, cmd := range cmds {
				if err := l.Stop(cmd); err != nil {
					t.Errorf("greipsec %d did not exit cleanly: %v", i, err)
				}
			}
			for _, h := range []*lab.Host{&l.A, &l.B} {
				if err := l.Do(h, func() error {
					if _, err := os.Stat("/sys/class/net/gre0"); err == nil {
						return fmt.Errorf("gre0 still exists")
					}
					return nil
				}); err != nil {
					t.Errorf("%s: %v", h.Name, err)
				}
			}
		})
	}
}

// iperf runs an iperf3 TCP transfer from A to dst (an address of B) and
// returns the bits per second the receiver saw.
func iperf(t *testing.T, l *lab.Lab, iperf3, dst string) float64 {
	t.Helper()
	server := exec.Command(iperf3, "-s", "-1", "-B", dst)
	if err := l.Start(&l.B, server); err != nil {
		t.Fatal(err)
	}
	defer l.Stop(server)
	var out strings.Builder
	var err error
	for try := 0; try < 20; try++ { // the server needs a moment to listen
		out.Reset()
		client := exec.Command(iperf3, "-c", dst, "-t", "3", "-J", "--connect-timeout", "3000")
		client.Stdout = &out
		if err = l.Start(&l.A, client); err != nil {
			t.Fatal(err)
		}
		timer := time.AfterFunc(30*time.Second, func() { l.Stop(client) })
		err = l.Wait(client)
		timer.Stop()
		if err == nil && !strings.Contains(out.String(), `"error"`) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var res struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
				Bytes         int64   `json:"bytes"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if jerr := json.Unmarshal([]byte(out.String()), &res); jerr != nil || err != nil || res.Error != "" {
		t.Fatalf("iperf3 to %s: %v %v %s\n%s", dst, err, jerr, res.Error, out.String())
	}
	if res.End.SumReceived.Bytes == 0 {
		t.Fatalf("iperf3 to %s moved no data", dst)
	}
	return res.End.SumReceived.BitsPerSecond
}

// twoTunnels is the config of one gateway with two tunnels to the same
// peer: sec0 over the IPv4 outer addresses (GRE transport mode, raw ESP) and
// sec1 over the IPv6 ones (GRE tunnel mode, ESP-in-UDP), both keyed by IKEv2.
const twoTunnels = `
[[tunnel]]
name      = "sec0"
mode      = "gre-transport"
transport = "esp"
local     = "192.0.2.%[1]d"
peer      = "192.0.2.%[2]d"
addresses = ["10.255.0.%[1]d/30"]
[tunnel.ike]
psk = "two-tunnels-test"

[[tunnel]]
name      = "sec1"
mode      = "gre-tunnel"
transport = "udp"
local     = "2001:db8:255::%[1]d"
peer      = "2001:db8:255::%[2]d"
addresses = ["10.255.1.%[1]d/30", "fd00:256::%[1]d/64"]
[tunnel.ike]
psk = "two-tunnels-test"
`

// TestNetnsTwoTunnels runs two tunnels in one greipsec process on each
// side, one of them over IPv6, and pings through both.
func TestNetnsTwoTunnels(t *testing.T) {
	needRoot(t)
	exe := greipsecBinary(t)
	l, err := lab.New(lab.RandomPrefix("gt"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	dir := t.TempDir()
	for i, h := range []*lab.Host{&l.A, &l.B} {
		path := filepath.Join(dir, h.Name+".toml")
		if err := os.WriteFile(path, []byte(fmt.Sprintf(twoTunnels, i+1, 2-i)), 0o600); err != nil {
			t.Fatal(err)
		}
		log, err := os.Create(path + ".log")
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(exe, "up", "--allow-example-psk", "-c", path, "--control", path+".sock")
		cmd.Stdout, cmd.Stderr = log, log
		if err := l.Start(h, cmd); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			l.Stop(cmd)
			log.Close()
			if t.Failed() {
				out, _ := os.ReadFile(path + ".log")
				t.Logf("greipsec log of %s:\n%s", h.Name, out)
			}
		})
	}
	for _, pair := range [][2]string{{"10.255.0.2", "10.255.0.1"}, {"10.255.1.2", "10.255.1.1"}, {"fd00:256::2", "fd00:256::1"}} {
		b, a := netip.MustParseAddr(pair[0]), netip.MustParseAddr(pair[1])
		if !lab.WaitFor(20*time.Second, func() bool {
			n, _ := l.Ping(&l.A, b, 1, time.Second)
			return n == 1
		}) {
			t.Fatalf("no ping reply from %s within 20 s", b)
		}
		if n, err := l.Ping(&l.B, a, 3, 2*time.Second); err != nil || n < 2 {
			t.Errorf("ping %s from B: %d/3 replies, %v", a, n, err)
		}
	}
}
