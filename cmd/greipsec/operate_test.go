//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/greipsec/greipsec/examples"
	"github.com/greipsec/greipsec/gateway"
	"github.com/greipsec/greipsec/internal/lab"
)

// The tests in this file operate running "greipsec up" processes in two
// network namespaces the way an operator does: greipsec show, initiate,
// terminate, rekey and reload over the control socket, SIGHUP, the
// metrics endpoint. They need root.

// gwProc is one "greipsec up" started by startUp.
type gwProc struct {
	cmd    *exec.Cmd
	config string // the configuration file, which reload re-reads
	socket string // the control socket
	log    string // its log file
}

// startUp writes cfg to a file and runs "greipsec up" with it in h, with
// its own control socket and extra arguments.
func startUp(t *testing.T, l *lab.Lab, h *lab.Host, cfg string, extra ...string) *gwProc {
	t.Helper()
	exe := greipsecBinary(t)
	dir := t.TempDir()
	g := &gwProc{config: filepath.Join(dir, "greipsec.toml"), socket: filepath.Join(dir, "ctl.sock"), log: filepath.Join(dir, "log")}
	if err := os.WriteFile(g.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(g.log)
	if err != nil {
		t.Fatal(err)
	}
	g.cmd = exec.Command(exe, append([]string{"up", "--allow-example-psk", "-c", g.config, "--control", g.socket}, extra...)...)
	startAndWait(t, l, h, g.cmd, log, g.log, g.socket, "", 10*time.Second)
	return g
}

// startAndWait starts cmd, a "greipsec up" writing to log (the file at
// logPath), in h, stops it when the test ends (printing its log if the
// test failed) and waits until it has made its control socket. who says
// how it runs, for the messages ("" or " as nobody").
func startAndWait(t *testing.T, l *lab.Lab, h *lab.Host, cmd *exec.Cmd, log *os.File, logPath, socket, who string, timeout time.Duration) {
	t.Helper()
	cmd.Stdout, cmd.Stderr = log, log
	if err := l.Start(h, cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Stop(cmd)
		log.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("greipsec log of %s%s:\n%s", h.Name, who, out)
		}
	})
	if !lab.WaitFor(timeout, func() bool {
		_, err := os.Stat(socket)
		return err == nil || l.Exited(cmd)
	}) || l.Exited(cmd) {
		out, _ := os.ReadFile(logPath)
		t.Fatalf("greipsec up%s in %s did not start: %v\n%s", who, h.Name, l.Wait(cmd), out)
	}
}

// showJSON runs "greipsec show NAME --json" against the control socket
// and decodes it.
func showJSON(t *testing.T, socket, name string) gateway.TunnelStatus {
	t.Helper()
	out, err := exec.Command(greipsecBinary(t), "show", name, "--json", "--control", socket).Output()
	if err != nil {
		t.Fatalf("show %s: %v", name, err)
	}
	var st gateway.TunnelStatus
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("show --json: %v\n%s", err, out)
	}
	return st
}

// ctl runs a greipsec client command against g's control socket and
// returns its standard output.
func (g *gwProc) ctl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(greipsecBinary(t), append(args, "--control", g.socket)...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("greipsec %s: %v: %s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String(), err
}

// show returns the status of tunnel name from "greipsec show NAME --json".
func (g *gwProc) show(t *testing.T, name string) gateway.TunnelStatus {
	t.Helper()
	return showJSON(t, g.socket, name)
}

// exampleConfig returns an example configuration file, edited.
func exampleConfig(t *testing.T, name string, edits ...string) string {
	t.Helper()
	b, err := examples.FS.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(s, edits[i]) {
			t.Fatalf("%s has no %q", name, edits[i])
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	return s
}

func waitPing(t *testing.T, l *lab.Lab, from *lab.Host, dst string) {
	t.Helper()
	if !lab.WaitFor(20*time.Second, func() bool {
		n, _ := l.Ping(from, netip.MustParseAddr(dst), 1, time.Second)
		return n == 1
	}) {
		t.Fatalf("no ping reply from %s within 20 s", dst)
	}
}

// waitSettled waits until both gateways show the tunnel up with the same
// IKE SA and crossed Child SAs, unchanged for 3 s. Both sides of the
// example configurations initiate at start, and an IKE_SA_INIT sent before
// the peer listened is answered at its retransmission 2 s later: the two
// IKE SAs then cross (ikev2/crossing.go) and one Child SA replaces the
// other. Tests that compare SAs over time start after that.
func waitSettled(t *testing.T, a, b *gwProc, name string) {
	t.Helper()
	var key string
	var since time.Time
	if !lab.WaitFor(30*time.Second, func() bool {
		sa, sb := a.show(t, name), b.show(t, name)
		if !childUp(&sa) || !childUp(&sb) || sa.IKE.SPIi != sb.IKE.SPIi || sa.ChildSAs[0].InSPI != sb.ChildSAs[0].OutSPI {
			key = ""
			return false
		}
		if k := sa.IKE.SPIi + "/" + sa.ChildSAs[0].InSPI; k != key {
			key, since = k, time.Now()
		}
		return time.Since(since) >= 3*time.Second
	}) {
		t.Fatalf("%s did not settle on one IKE SA and Child SA within 30 s", name)
	}
}

// childUp reports whether a tunnel has an established IKE SA and an
// installed Child SA.
func childUp(st *gateway.TunnelStatus) bool {
	return st.IKE != nil && st.IKE.State == "ESTABLISHED" && len(st.ChildSAs) > 0 && st.ChildSAs[0].State == "INSTALLED"
}

// TestNetnsOperate runs two gateways with the IKE example configurations
// and operates them: show --json with values checked across the two sides,
// rekey --child and --ike while a 10 ms ping runs (no loss), terminate and
// initiate while it runs, and the metrics endpoint scraped during traffic
// and checked by promtool.
func TestNetnsOperate(t *testing.T) {
	needRoot(t)
	l, err := lab.New(lab.RandomPrefix("go"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	a := startUp(t, l, &l.A, exampleConfig(t, "site-a.toml"), "--metrics", "127.0.0.1:9712")
	b := startUp(t, l, &l.B, exampleConfig(t, "site-b.toml"))
	waitPing(t, l, &l.A, "10.255.0.2")
	waitSettled(t, a, b, "gre0")

	t.Run("show", func(t *testing.T) {
		sa, sb := a.show(t, "gre0"), b.show(t, "gre0")
		if !childUp(&sa) || !childUp(&sb) {
			t.Fatalf("not up: A %+v, B %+v", sa.IKE, sb.IKE)
		}
		if sa.IKE.SPIi != sb.IKE.SPIi || sa.IKE.SPIr != sb.IKE.SPIr || sa.IKE.Initiator == sb.IKE.Initiator {
			t.Errorf("IKE SPIs: A %s_i %s_r (initiator %v), B %s_i %s_r (initiator %v)",
				sa.IKE.SPIi, sa.IKE.SPIr, sa.IKE.Initiator, sb.IKE.SPIi, sb.IKE.SPIr, sb.IKE.Initiator)
		}
		ca, cb := sa.ChildSAs[0], sb.ChildSAs[0]
		if ca.InSPI != cb.OutSPI || ca.OutSPI != cb.InSPI {
			t.Errorf("Child SPIs not crossed: A in %s out %s, B in %s out %s", ca.InSPI, ca.OutSPI, cb.InSPI, cb.OutSPI)
		}
		if sa.IKE.LocalID != "192.0.2.1" || sa.IKE.PeerID != "192.0.2.2" || sa.IKE.PeerEndpoint != "192.0.2.2:500" ||
			sa.IKE.Algorithms != "AES_CBC-256/HMAC_SHA2_384_192/PRF_HMAC_SHA2_384/ECP_384" || ca.Algorithms != "AES_GCM_16-256" ||
			ca.Mode != "TRANSPORT" || sa.MTU != 1434 || sa.Interface != "gre0" {
			t.Errorf("A's status: %+v %+v", sa, ca)
		}
		// Both sides initiate at start, so the first seconds may settle a
		// crossing (ikev2/crossing.go): the kept IKE SA's Child SA replaces
		// the first one. Per-Child counters are compared on one Child SA,
		// so measure again when the SA changed under the pings.
		var sa2, sb2 gateway.TunnelStatus
		var ca2, cb2 gateway.ChildSAStatus
		for try := 0; ; try++ {
			if n, err := l.Ping(&l.A, netip.MustParseAddr("10.255.0.2"), 20, time.Second); err != nil || n != 20 {
				t.Fatalf("20 pings: %d answered, %v", n, err)
			}
			time.Sleep(1100 * time.Millisecond) // last-packet times are sampled once a second
			sa2, sb2 = a.show(t, "gre0"), b.show(t, "gre0")
			ca2, cb2 = sa2.ChildSAs[0], sb2.ChildSAs[0]
			if (ca2.InSPI == ca.InSPI && cb2.InSPI == cb.InSPI) || try == 3 {
				break
			}
			t.Logf("Child SA changed under the pings (A %s -> %s); measuring again", ca.InSPI, ca2.InSPI)
			sa, sb, ca, cb = sa2, sb2, ca2, cb2
		}
		if ca2.PacketsOut < ca.PacketsOut+20 || cb2.PacketsIn < cb.PacketsIn+20 || ca2.PacketsIn < ca.PacketsIn+20 ||
			sa2.Traffic.TxPackets < sa.Traffic.TxPackets+20 || ca2.LastInSeconds == nil || *ca2.LastInSeconds > 2 {
			t.Errorf("counters did not rise with 20 pings: A before %+v after %+v; B before %+v after %+v", ca, ca2, cb, cb2)
		}
		text, err := a.ctl(t, "show")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"gre0: gre-transport over esp, interface gre0, 192.0.2.1 -> 192.0.2.2, mtu 1434, mss 1394/1374, ike keys",
			"ESTABLISHED, IKEv2, " + sa2.IKE.SPIi + "_i",
			"local  '192.0.2.1' @ 192.0.2.1[500]",
			"remote '192.0.2.2' @ 192.0.2.2[500]",
			"AES_CBC-256/HMAC_SHA2_384_192/PRF_HMAC_SHA2_384/ECP_384",
			"INSTALLED, TRANSPORT, ESP:AES_GCM_16-256 (aes256gcm16-ecp384)",
			"in  " + ca2.InSPI + ",",
			"out " + ca2.OutSPI + ",",
			"local  192.0.2.1/32[gre]",
			"remote 192.0.2.2/32[gre]",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("greipsec show lacks %q:\n%s", want, text)
			}
		}
		t.Logf("greipsec show in %s:\n%s", l.A.Name, text)
	})

	t.Run("rekey", func(t *testing.T) {
		before := a.show(t, "gre0")
		p, err := l.StartPinger(&l.A, netip.MustParseAddr("10.255.0.2"), 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		out, err := a.ctl(t, "rekey", "gre0", "--child")
		if err != nil || !strings.Contains(out, "Child SA rekeyed: in ") {
			t.Errorf("rekey --child: %q, %v", out, err)
		}
		time.Sleep(300 * time.Millisecond)
		out, err = b.ctl(t, "rekey", "gre0", "--ike")
		if err != nil || !strings.Contains(out, "IKE SA rekeyed") {
			t.Errorf("rekey --ike: %q, %v", out, err)
		}
		time.Sleep(300 * time.Millisecond)
		sent, received, err := p.Stop()
		t.Logf("ping every 10 ms across rekey --child and rekey --ike: %d sent, %d received", sent, received)
		if err != nil || sent < 50 || received != sent {
			t.Errorf("ping every 10 ms across the rekeys: %d sent, %d received, %v", sent, received, err)
		}
		after := a.show(t, "gre0")
		if after.ChildSAs[0].InSPI == before.ChildSAs[0].InSPI || after.IKE.SPIi == before.IKE.SPIi || after.IKE.ChildRekeys == 0 || after.IKE.Rekeys == 0 {
			t.Errorf("after the rekeys: %+v", after.IKE)
		}
	})

	t.Run("terminate-initiate", func(t *testing.T) {
		p, err := l.StartPinger(&l.A, netip.MustParseAddr("10.255.0.2"), 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		start := time.Now()
		out, err := a.ctl(t, "terminate", "gre0")
		if err != nil || !strings.Contains(out, "held down until initiate") {
			t.Errorf("terminate: %q, %v", out, err)
		}
		if st := a.show(t, "gre0"); st.IKE.State != "HELD" && !childUp(&st) { // B, active, may have come back already
			t.Errorf("after terminate: %+v", st.IKE)
		}
		out, err = a.ctl(t, "initiate", "gre0")
		if err != nil || !strings.Contains(out, "Child SA installed") {
			t.Errorf("initiate: %q, %v", out, err)
		}
		took := time.Since(start)
		time.Sleep(300 * time.Millisecond)
		sent, received, err := p.Stop()
		t.Logf("ping every 10 ms across terminate and initiate (%v): %d sent, %d received", took.Round(time.Millisecond), sent, received)
		if err != nil || received == 0 || sent-received > int(took/(10*time.Millisecond))+5 {
			t.Errorf("ping across terminate and initiate: %d sent, %d received, %v", sent, received, err)
		}
		if st := a.show(t, "gre0"); !childUp(&st) {
			t.Errorf("not up after initiate: %+v", st.IKE)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		promtool := needPromtool(t)
		p, err := l.StartPinger(&l.A, netip.MustParseAddr("10.255.0.2"), 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		first := scrape(t, l, &l.A, "127.0.0.1:9712", "/metrics")
		time.Sleep(500 * time.Millisecond)
		second := scrape(t, l, &l.A, "127.0.0.1:9712", "/metrics")
		p.Stop()
		rx1, rx2 := metricValue(t, first, `greipsec_tunnel_rx_packets_total{tunnel="gre0"}`), metricValue(t, second, `greipsec_tunnel_rx_packets_total{tunnel="gre0"}`)
		if rx2 < rx1+20 {
			t.Errorf("rx packets did not rise with the ping: %v then %v", rx1, rx2)
		}
		for _, want := range []string{`greipsec_ike_sa_up{tunnel="gre0"} 1`, `greipsec_rekeys_total{sa="child",tunnel="gre0"} 1`, `greipsec_ready 1`} {
			if !strings.Contains(second, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(second)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
		t.Logf("promtool check metrics: ok (%d lines scraped)", strings.Count(second, "\n"))
		for _, path := range []string{"/healthz", "/readyz"} {
			if body := scrape(t, l, &l.A, "127.0.0.1:9712", path); !strings.Contains(body, `"ok"`) {
				t.Errorf("%s: %s", path, body)
			}
		}
	})
}

// scrape gets path from an HTTP server listening on addr inside h.
func scrape(t *testing.T, l *lab.Lab, h *lab.Host, addr, path string) string {
	t.Helper()
	var c net.Conn
	if err := l.Do(h, func() (err error) {
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	}); err != nil {
		t.Fatalf("connect to %s in %s: %v", addr, h.Name, err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) { return c, nil },
	}}
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s, %v\n%s", path, resp.Status, err, body)
	}
	return string(body)
}

// metricValue returns the value of the sample named by series (name and
// labels as the text format writes them).
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	t.Fatalf("no sample %s", series)
	return 0
}

// needPromtool returns the path of promtool, installing Debian's
// prometheus package when it is missing.
func needPromtool(t *testing.T) string {
	t.Helper()
	return needTool(t, "promtool", "prometheus")
}

// needTool returns the path of a program, installing the Debian package
// that has it when it is missing.
func needTool(t *testing.T, program, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(program); err == nil {
		return p
	}
	t.Logf("%s not found: installing Debian's %s with apt-get", program, pkg)
	cmd := exec.Command("sh", "-c", "apt-get -o DPkg::Lock::Timeout=300 update -qq && apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "+pkg)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("installing %s: %v\n%s", pkg, err, out)
	}
	p, err := exec.LookPath(program)
	if err != nil {
		t.Fatalf("%s installed but %s not found: %v", pkg, program, err)
	}
	return p
}

// sec1 is the second tunnel of TestNetnsReload, over the IPv6 outer
// addresses (%[1]d: this side, %[2]d: the peer).
const sec1 = `
[[tunnel]]
name      = "sec1"
mode      = "gre-tunnel"
transport = "udp"
local     = "2001:db8:255::%[1]d"
peer      = "2001:db8:255::%[2]d"
addresses = ["10.255.1.%[1]d/30"]
[tunnel.ike]
psk = "reload-test-psk-0123456789"
`

// TestNetnsReload: while a 10 ms ping runs through gre0, a reload adds a
// tunnel (sec1) on both sides, then another removes it again; gre0 keeps
// its SAs and loses no packet. One side reloads by SIGHUP, which must not
// stop it. A reload of a file with a mistake changes nothing and fails
// with the mistake.
func TestNetnsReload(t *testing.T) {
	needRoot(t)
	l, err := lab.New(lab.RandomPrefix("gr"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cfgA, cfgB := exampleConfig(t, "site-a.toml"), exampleConfig(t, "site-b.toml")
	a := startUp(t, l, &l.A, cfgA)
	b := startUp(t, l, &l.B, cfgB)
	waitPing(t, l, &l.A, "10.255.0.2")
	waitSettled(t, a, b, "gre0")
	before := a.show(t, "gre0")

	p, err := l.StartPinger(&l.A, netip.MustParseAddr("10.255.0.2"), 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	// Add sec1: A with greipsec reload, B with SIGHUP.
	os.WriteFile(a.config, []byte(cfgA+fmt.Sprintf(sec1, 1, 2)), 0o600)
	os.WriteFile(b.config, []byte(cfgB+fmt.Sprintf(sec1, 2, 1)), 0o600)
	out, err := a.ctl(t, "reload")
	if err != nil || !strings.Contains(out, "unchanged: gre0\nadded:     sec1\nremoved:   -\nchanged:   -") {
		t.Errorf("reload adding sec1: %q, %v", out, err)
	}
	if err := b.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitPing(t, l, &l.A, "10.255.1.2")
	if l.Exited(b.cmd) {
		t.Fatalf("SIGHUP stopped greipsec: %v", l.Wait(b.cmd))
	}
	// Remove it again: A by SIGHUP, B with greipsec reload.
	os.WriteFile(a.config, []byte(cfgA), 0o600)
	os.WriteFile(b.config, []byte(cfgB), 0o600)
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	out, err = b.ctl(t, "reload")
	if err != nil || !strings.Contains(out, "removed:   sec1") {
		t.Errorf("reload removing sec1: %q, %v", out, err)
	}
	time.Sleep(300 * time.Millisecond)
	sent, received, err := p.Stop()
	t.Logf("ping every 10 ms through gre0 while sec1 was added and removed: %d sent, %d received", sent, received)
	if err != nil || sent < 50 || received != sent {
		t.Errorf("ping every 10 ms through the unchanged gre0: %d sent, %d received, %v", sent, received, err)
	}
	for _, g := range []*gwProc{a, b} {
		if l.Exited(g.cmd) {
			t.Fatalf("greipsec exited: %v", l.Wait(g.cmd))
		}
	}
	after := a.show(t, "gre0")
	if after.IKE.SPIi != before.IKE.SPIi || after.ChildSAs[0].InSPI != before.ChildSAs[0].InSPI {
		t.Errorf("gre0's SAs changed across the reloads: before %s/%s, after %s/%s", before.IKE.SPIi, before.ChildSAs[0].InSPI, after.IKE.SPIi, after.ChildSAs[0].InSPI)
	}
	if err := l.Do(&l.A, func() error {
		if _, err := net.InterfaceByName("sec1"); err == nil {
			return fmt.Errorf("sec1 still exists")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if _, err := a.ctl(t, "show", "sec1"); err == nil || !strings.Contains(err.Error(), `no tunnel "sec1" (tunnels: gre0)`) {
		t.Errorf("show sec1 after its removal: %v", err)
	}
	blog, _ := os.ReadFile(b.log)
	if !strings.Contains(string(blog), `msg="IKE SA down" tunnel=sec1 reason="peer deleted the IKE SA"`) {
		t.Errorf("B did not see A's DELETE for sec1:\n%s", blog)
	}

	// A mistake: nothing changes, and reload says what is wrong.
	os.WriteFile(a.config, []byte(strings.Replace(cfgA, `mode = "gre-transport"`, `mode = "gre"`, 1)), 0o600)
	out, err = a.ctl(t, "reload")
	modeLine := strings.Count(cfgA[:strings.Index(cfgA, `mode = "gre-transport"`)], "\n") + 1
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf(`greipsec.toml:%d: tunnel "gre0": mode: unknown mode "gre"`, modeLine)) {
		t.Errorf("reload of a file with a mistake: %q, %v", out, err)
	}
	if st := a.show(t, "gre0"); st.ChildSAs[0].InSPI != before.ChildSAs[0].InSPI {
		t.Error("a failed reload changed gre0")
	}
	if n, err := l.Ping(&l.A, netip.MustParseAddr("10.255.0.2"), 3, time.Second); err != nil || n != 3 {
		t.Errorf("after the failed reload: %d of 3 pings, %v", n, err)
	}
}

// TestNetnsNATSourcePort: a NAT in front of B (nftables in B's namespace)
// rewrites its IKE source port 500 to 40500. A, passive, must answer from
// port 500 to port 40500; it used to fail silently ("no UDP socket on port
// 500") and the tunnel never came up. Then both see the NAT and move to
// ESP-in-UDP on port 4500.
func TestNetnsNATSourcePort(t *testing.T) {
	needRoot(t)
	nft := needTool(t, "nft", "nftables")
	l, err := lab.New(lab.RandomPrefix("gn"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	rules := `table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		udp sport 500 snat to 192.0.2.2:40500
	}
}
`
	cmd := exec.Command(nft, "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := l.Start(&l.B, cmd); err != nil {
		t.Fatal(err)
	}
	if err := l.Wait(cmd); err != nil {
		t.Fatalf("nft in %s: %v\n%s", l.B.Name, err, out.String())
	}
	a := startUp(t, l, &l.A, exampleConfig(t, "site-a.toml", `role = "active"`, `role = "passive"`), "--log-level", "debug")
	startUp(t, l, &l.B, exampleConfig(t, "site-b.toml"))
	waitPing(t, l, &l.A, "10.255.0.2")
	st := a.show(t, "gre0")
	if st.IKE.NAT != "peer" || st.IKE.PeerEndpoint != "192.0.2.2:4500" || !st.ChildSAs[0].UDPEncap {
		t.Errorf("A behind B's NAT: NAT %q, peer %s, Child SA %+v", st.IKE.NAT, st.IKE.PeerEndpoint, st.ChildSAs[0])
	}
	alog, _ := os.ReadFile(a.log)
	if !strings.Contains(string(alog), "dir=in exchange=IKE_SA_INIT msgid=0 type=request") || !strings.Contains(string(alog), "peer=192.0.2.2:40500") {
		t.Errorf("A's log does not show the IKE_SA_INIT from port 40500:\n%s", alog)
	}
}

// TestNetnsUnprivileged: "greipsec up" as an unprivileged user cannot
// create its TUN device. It must say so in one line, with what to do, and
// exit 1: it used to panic with a nil pointer dereference in its cleanup.
func TestNetnsUnprivileged(t *testing.T) {
	needRoot(t)
	exe := greipsecBinary(t)
	l, err := lab.New(lab.RandomPrefix("gu"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	dir := t.TempDir()
	cfg := filepath.Join(dir, "site-a.toml")
	if err := os.WriteFile(cfg, []byte(exampleConfig(t, "site-a.toml")), 0o600); err != nil {
		t.Fatal(err)
	}
	// Its user reads it, nobody else: it holds the key.
	if err := os.Chown(cfg, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	// nobody must reach the binary and the file.
	for _, d := range []string{filepath.Dir(exe), dir, filepath.Dir(dir)} {
		os.Chmod(d, 0o755)
	}
	run := filepath.Join(dir, "run") // nobody's own, for the control socket
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(run, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd := exec.Command(exe, "up", "--allow-example-psk", "-c", cfg, "--control", filepath.Join(run, "ctl.sock"))
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if err := l.Start(&l.A, cmd); err != nil {
		t.Fatal(err)
	}
	err = l.Wait(cmd)
	text := out.String()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("exit: %v, want status 1", err)
	}
	t.Logf("greipsec up as nobody: %v; printed: %s", err, text)
	if strings.Contains(text, "panic") || strings.Count(text, "\n") != 1 ||
		!strings.HasPrefix(text, `greipsec: tunnel "gre0": create TUN device gre0: `) ||
		!strings.HasSuffix(text, ": run as root, or give the container --cap-add NET_ADMIN --device /dev/net/tun\n") {
		t.Errorf("greipsec up as nobody printed:\n%s", text)
	}
}
