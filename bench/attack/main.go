//go:build linux

// Command attack runs the attack and fault figures of issue 6 against real
// "greipsec up" processes in network namespaces (internal/lab) and prints
// a table: ping loss of a 10 ms ping, TCP throughput during the attack
// against before, the target gateway's RSS before and after, its counters,
// and recovery times against the targets. It needs root. run.sh builds
// greipsec and runs it; see README.md, "Security and reliability".
//
// The pair is examples/site-a.toml (A, the target, passive unless said
// otherwise) and site-b.toml (B). The attacker sends from B's namespace,
// on the same link, through a raw socket that forges any source address.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/greipsec/greipsec/examples"
	"github.com/greipsec/greipsec/gateway"
	"github.com/greipsec/greipsec/gateway/config"
	"github.com/greipsec/greipsec/internal/attack"
	"github.com/greipsec/greipsec/internal/lab"
)

var (
	binary   = flag.String("greipsec", "", "the greipsec `binary` to run (run.sh builds it)")
	duration = flag.Duration("d", 60*time.Second, "`duration` of each flood")
	rates    = flag.String("rates", "1000,10000", "IKE_SA_INIT flood `rates` per second")
	outages  = flag.String("outages", "60s,200s", "outage `durations`")
	only     = flag.String("only", "", "run only the scenarios whose name contains `text`")
)

// row is one line of the table.
type row struct {
	scenario          string
	pingSent, pingGot int
	before, during    float64 // Mbit/s; 0: not measured
	rssBefore         int     // kB of A's greipsec
	rssAfter          int
	result            string // recovery time or what is checked
	target            string
	ok                bool
	counters          string
}

func main() {
	flag.Parse()
	if os.Geteuid() != 0 || *binary == "" {
		fmt.Fprintln(os.Stderr, "attack: run as root with -greipsec BINARY (bench/attack/run.sh does both)")
		os.Exit(2)
	}
	var rows []row
	add := func(r row, err error) {
		if err != nil {
			r.result, r.ok = "error: "+err.Error(), false
		}
		rows = append(rows, r)
		printRow(os.Stderr, r)
	}
	want := func(name string) bool { return *only == "" || strings.Contains(name, *only) }
	for _, s := range strings.Split(*rates, ",") {
		rate, err := strconv.Atoi(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, "attack: -rates:", err)
			os.Exit(2)
		}
		if name := fmt.Sprintf("IKE_SA_INIT %d/s, random sources", rate); want(name) {
			add(ikeFlood(name, rate, false))
		}
		if name := fmt.Sprintf("IKE_SA_INIT %d/s, peer's address", rate); want(name) {
			add(ikeFlood(name, rate, true))
		}
	}
	if name := "malformed IKE 1000/s, ports 500+4500"; want(name) {
		add(malformed(name))
	}
	for _, kind := range []string{"raw ESP, unknown SPIs", "raw ESP, valid SPI + garbage", "ESP-in-UDP, unknown SPIs", "ESP-in-UDP, valid SPI + garbage"} {
		if name := kind + " 10000/s"; want(name) {
			add(espFlood(name, strings.HasPrefix(kind, "ESP-in-UDP"), strings.Contains(kind, "valid")))
		}
	}
	for _, side := range []string{"B", "A"} {
		if name := "SIGKILL + restart of " + side; want(name) {
			add(restart(name, side[0] == 'A'))
		}
	}
	for _, s := range strings.Split(*outages, ",") {
		d, err := time.ParseDuration(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, "attack: -outages:", err)
			os.Exit(2)
		}
		for _, passive := range []bool{false, true} {
			pair := "active/active"
			if passive {
				pair = "active/passive"
			}
			if name := fmt.Sprintf("outage %v, %s", d, pair); want(name) {
				add(outage(name, d, passive))
			}
		}
	}
	if name := "100 tunnels in one process"; want(name) {
		add(hundred(name, 100))
	}
	fmt.Println()
	fmt.Printf("greipsec attack and fault runs, %s, floods of %v (bench/attack/run.sh)\n\n", time.Now().UTC().Format("2006-01-02"), *duration)
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(w, "scenario\tping lost\tTCP before → during\tRSS before → after\tresult\ttarget\tok")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.scenario, pingCell(r), tputCell(r), rssCell(r), r.result, r.target, okCell(r.ok))
	}
	w.Flush()
	fmt.Println("\ncounters of A (the target) after each run:")
	for _, r := range rows {
		fmt.Printf("  %s: %s\n", r.scenario, r.counters)
	}
}

func printRow(f *os.File, r row) {
	fmt.Fprintf(f, "%s: ping %s, TCP %s, RSS %s, %s (target %s) %s; %s\n", r.scenario, pingCell(r), tputCell(r), rssCell(r), r.result, r.target, okCell(r.ok), r.counters)
}

func pingCell(r row) string {
	if r.pingSent == 0 {
		return "-"
	}
	return fmt.Sprintf("%d/%d", r.pingSent-r.pingGot, r.pingSent)
}

func tputCell(r row) string {
	if r.before == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f → %.0f Mbit/s", r.before, r.during)
}

func rssCell(r row) string {
	if r.rssBefore == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f → %.1f MB", float64(r.rssBefore)/1024, float64(r.rssAfter)/1024)
}

func okCell(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

// pair is a lab with greipsec running on both sides.
type pair struct {
	l    *lab.Lab
	dir  string
	a, b *proc
	raw  *attack.Raw
}

type proc struct {
	h      *lab.Host
	cmd    *exec.Cmd
	config string
	socket string
	log    *os.File
}

// exampleConfig returns an example file, edited (old, new pairs).
func exampleConfig(name string, edits ...string) string {
	b, err := examples.FS.ReadFile(name)
	if err != nil {
		panic(err)
	}
	s := string(b)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(s, edits[i]) {
			panic(fmt.Sprintf("%s has no %q", name, edits[i]))
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	return s
}

// newPair starts A and B with site-a.toml and site-b.toml, A passive
// unless activeA, both with transport udp if udp, and waits for the
// tunnel.
func newPair(activeA, udp bool) (*pair, error) {
	l, err := lab.New(lab.RandomPrefix("gz"))
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "greipsec-attack-")
	if err != nil {
		l.Close()
		return nil, err
	}
	p := &pair{l: l, dir: dir}
	var ea, eb []string
	if !activeA {
		ea = append(ea, `role = "active"`, `role = "passive"`)
	}
	if udp {
		ea = append(ea, `transport = "esp"`, `transport = "udp"`)
		eb = append(eb, `transport = "esp"`, `transport = "udp"`)
	}
	if p.a, err = p.start(&l.A, "a", exampleConfig("site-a.toml", ea...)); err == nil {
		p.b, err = p.start(&l.B, "b", exampleConfig("site-b.toml", eb...))
	}
	if err == nil {
		err = p.waitTraffic(20 * time.Second)
	}
	if err == nil {
		err = l.Do(&l.B, func() (err error) { p.raw, err = attack.OpenRaw(); return err })
	}
	if err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *pair) start(h *lab.Host, name, cfg string) (*proc, error) {
	g := &proc{h: h, config: filepath.Join(p.dir, name+".toml"), socket: filepath.Join(p.dir, name+".sock")}
	if err := os.WriteFile(g.config, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	var err error
	if g.log, err = os.Create(filepath.Join(p.dir, name+".log")); err != nil {
		return nil, err
	}
	return g, p.run(g)
}

func (p *pair) run(g *proc) error {
	os.Remove(g.socket)
	g.cmd = exec.Command(*binary, "up", "--allow-example-psk", "-c", g.config, "--control", g.socket)
	g.cmd.Stdout, g.cmd.Stderr = g.log, g.log
	if err := p.l.Start(g.h, g.cmd); err != nil {
		return err
	}
	if !lab.WaitFor(10*time.Second, func() bool { _, err := os.Stat(g.socket); return err == nil || p.l.Exited(g.cmd) }) || p.l.Exited(g.cmd) {
		return fmt.Errorf("greipsec up in %s did not start (log %s)", g.h.Name, g.log.Name())
	}
	return nil
}

func (p *pair) close() {
	if p.raw != nil {
		p.raw.Close()
	}
	p.l.Close() // stops the processes
	for _, g := range []*proc{p.a, p.b} {
		if g != nil {
			g.log.Close()
		}
	}
	if os.Getenv("KEEP") == "" {
		os.RemoveAll(p.dir)
	}
}

// waitTraffic waits until a ping from A to B's inner address is answered.
func (p *pair) waitTraffic(timeout time.Duration) error {
	if !lab.WaitFor(timeout, func() bool {
		n, _ := p.l.Ping(&p.l.A, innerB, 1, 200*time.Millisecond)
		return n == 1
	}) {
		return fmt.Errorf("no traffic through the tunnel within %v", timeout)
	}
	return nil
}

var (
	innerB = netip.MustParseAddr("10.255.0.2")
	outerA = netip.MustParseAddr("192.0.2.1")
	outerB = netip.MustParseAddr("192.0.2.2")
)

func (g *proc) status() (gateway.Status, error) {
	out, err := exec.Command(*binary, "show", "--json", "--control", g.socket).Output()
	var st gateway.Status
	if err == nil {
		err = json.Unmarshal(out, &st)
	}
	return st, err
}

// rss returns the resident set of the process in kB.
func (g *proc) rss() int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.cmd.Process.Pid))
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

func (p *pair) throughput(d time.Duration) float64 {
	bps, err := p.l.TCPThroughput(&p.l.A, &p.l.B, innerB, d)
	if err != nil {
		return 0
	}
	return bps / 1e6
}

// underAttack measures before (throughput, RSS), then runs attack for
// *duration with a 10 ms ping and a throughput measurement in its middle.
func (p *pair) underAttack(r *row, rate int, next func(i int, buf []byte) []byte) {
	r.before = p.throughput(3 * time.Second)
	r.rssBefore = p.a.rss()
	ping, err := p.l.StartPinger(&p.l.A, innerB, 10*time.Millisecond)
	if err != nil {
		r.result = err.Error()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.raw.Flood(ctx, rate, next)
	}()
	time.Sleep(min(*duration/3, 5*time.Second))
	r.during = p.throughput(3 * time.Second)
	<-done
	r.pingSent, r.pingGot, _ = ping.Stop()
	r.rssAfter = p.a.rss()
}

func (p *pair) counters() string {
	st, err := p.a.status()
	if err != nil || len(st.Tunnels) == 0 {
		return "status: " + fmt.Sprint(err)
	}
	d, dev, t := st.IKEDrops, st.Device, st.Tunnels[0]
	s := fmt.Sprintf("ike unknown_peer=%d cookies=%d gate_malformed=%d gate_unknown_spi=%d blocked=%d queue_full_init=%d queue_full_established=%d version_rejected=%d half_open=%d; device unknown_spi=%d malformed=%d",
		d.UnknownPeer, d.CookiesSent, d.GateMalformed, d.GateUnknownSPI, d.GateBlocked, d.QueueFullInit, d.QueueFullEstablished, d.VersionRejected, d.HalfOpen, dev.UnknownSPI, dev.Malformed)
	if len(t.ChildSAs) > 0 {
		s += fmt.Sprintf("; child auth_failure=%d replay=%d", t.ChildSAs[0].Drops["auth_failure"], t.ChildSAs[0].Drops["replay"])
	}
	if t.IKE != nil {
		s += fmt.Sprintf("; ike establishments=%d downs=%d half_open_created=%d", t.IKE.Establishments, t.IKE.Downs, t.IKE.Input["half_open_created"])
	}
	return s
}

// initTemplate returns an IKE_SA_INIT request as B, with site-b.toml's
// proposals, would send it: what the IKE floods forge and mangle.
func initTemplate() ([]byte, error) {
	cfg, err := config.Parse("site-b.toml", []byte(exampleConfig("site-b.toml")))
	if err != nil {
		return nil, err
	}
	return attack.InitTemplate(cfg.Tunnels[0].IKE)
}

// ikeFlood: spoofed IKE_SA_INIT at rate for *duration at A; then, the
// flood going on, B terminates and initiates again: the tunnel must come
// up within 10 s.
func ikeFlood(name string, rate int, peerAddr bool) (r row, err error) {
	r = row{scenario: name, target: "0 ping lost; up < 10 s under the flood; RSS bounded"}
	p, err := newPair(false, false)
	if err != nil {
		return r, err
	}
	defer p.close()
	init, err := initTemplate()
	if err != nil {
		return r, err
	}
	next := func(i int, buf []byte) []byte {
		attack.SetSPI(init, uint64(i)+1)
		src := netip.AddrPortFrom(outerB, 500)
		if !peerAddr {
			src = netip.AddrPortFrom(attack.RandomSource(), 500)
		}
		return attack.UDP4(buf, src, netip.AddrPortFrom(outerA, 500), init)
	}
	p.underAttack(&r, rate, next)
	r.counters = p.counters()
	// A tunnel coming up during the flood.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.raw.Flood(ctx, rate, next) }()
	defer func() { cancel(); <-done }()
	if out, err := exec.Command(*binary, "terminate", "gre0", "--ike", "--control", p.b.socket).CombinedOutput(); err != nil {
		return r, fmt.Errorf("terminate: %v: %s", err, out)
	}
	time.Sleep(2 * time.Second)
	start := time.Now()
	if out, err := exec.Command(*binary, "initiate", "gre0", "--ike", "--control", p.b.socket).CombinedOutput(); err != nil {
		return r, fmt.Errorf("initiate: %v: %s", err, out)
	}
	up := p.waitTraffic(10*time.Second) == nil
	r.result = fmt.Sprintf("up again %.2f s after initiate", time.Since(start).Seconds())
	if !up {
		r.result = "NOT up within 10 s"
	}
	r.ok = up && r.pingGot == r.pingSent && r.pingSent > 0 && r.rssAfter < r.rssBefore+64*1024
	return r, nil
}

func malformed(name string) (r row, err error) {
	r = row{scenario: name, target: "0 ping lost; nothing changes; each counted; RSS bounded"}
	p, err := newPair(false, false)
	if err != nil {
		return r, err
	}
	defer p.close()
	valid, err := initTemplate()
	if err != nil {
		return r, err
	}
	before, _ := p.a.status()
	p.underAttack(&r, 1000, func(i int, buf []byte) []byte {
		msg := attack.Malformed(i/2, valid)
		if i%2 == 0 {
			return attack.UDP4(buf, netip.AddrPortFrom(outerB, 500), netip.AddrPortFrom(outerA, 500), msg)
		}
		return attack.UDP4(buf, netip.AddrPortFrom(outerB, 4500), netip.AddrPortFrom(outerA, 4500), append([]byte{0, 0, 0, 0}, msg...))
	})
	after, _ := p.a.status()
	r.counters = p.counters()
	same := len(before.Tunnels) > 0 && len(after.Tunnels) > 0 && after.Tunnels[0].IKE.SPIi == before.Tunnels[0].IKE.SPIi &&
		after.Tunnels[0].IKE.Downs == 0
	r.result = "IKE SA unchanged"
	if !same {
		r.result = "IKE SA CHANGED"
	}
	r.ok = same && r.pingGot == r.pingSent && r.pingSent > 0 && r.rssAfter < r.rssBefore+64*1024
	return r, nil
}

func espFlood(name string, udp, valid bool) (r row, err error) {
	r = row{scenario: name, target: "no loss beyond CPU cost; counters match"}
	p, err := newPair(false, udp)
	if err != nil {
		return r, err
	}
	defer p.close()
	st, err := p.a.status()
	if err != nil || len(st.Tunnels) == 0 || len(st.Tunnels[0].ChildSAs) == 0 {
		return r, fmt.Errorf("no Child SA: %v", err)
	}
	spi, _ := strconv.ParseUint(st.Tunnels[0].ChildSAs[0].InSPI, 16, 32)
	esp := make([]byte, 0, 256)
	sent := 0
	p.underAttack(&r, 10000, func(i int, buf []byte) []byte {
		sent++
		s := uint32(i) + 0x10000
		src := attack.RandomSource()
		if valid {
			s, src = uint32(spi), outerB
		}
		esp = attack.ESP(esp[:0], s, uint32(i)+1<<20, 100)
		if udp {
			return attack.UDP4(buf, netip.AddrPortFrom(src, 4500), netip.AddrPortFrom(outerA, 4500), esp)
		}
		return attack.IPv4(buf, src, outerA, 50, esp)
	})
	after, _ := p.a.status()
	r.counters = p.counters()
	var counted uint64
	if valid && len(after.Tunnels[0].ChildSAs) > 0 {
		counted = after.Tunnels[0].ChildSAs[0].Drops["auth_failure"]
	} else {
		counted = after.Device.UnknownSPI
	}
	r.result = fmt.Sprintf("%d sent, %d counted", sent, counted)
	r.ok = counted <= uint64(sent) && counted >= uint64(sent)*9/10 && r.pingSent-r.pingGot <= r.pingSent/100
	return r, nil
}

// restart kills B (or A) with SIGKILL and starts it again; the time is
// from the start until a ping passes.
func restart(name string, killA bool) (r row, err error) {
	r = row{scenario: name, target: "traffic < 5 s after the restart"}
	p, err := newPair(true, false)
	if err != nil {
		return r, err
	}
	defer p.close()
	g := p.b
	if killA {
		g = p.a
	}
	r.rssBefore = p.a.rss()
	g.cmd.Process.Kill()
	p.l.Wait(g.cmd)
	time.Sleep(time.Second)
	start := time.Now()
	if err := p.run(g); err != nil {
		return r, err
	}
	err = p.waitTraffic(30 * time.Second)
	d := time.Since(start)
	r.rssAfter = p.a.rss()
	r.counters = p.counters()
	if err != nil {
		r.result = "no traffic within 30 s"
		return r, nil
	}
	r.result = fmt.Sprintf("traffic %.2f s after the restart", d.Seconds())
	r.ok = d < 5*time.Second
	return r, nil
}

// outage drops everything between A and B for d with nftables in A's
// namespace, then restores; the time is from the restore until a ping
// passes.
func outage(name string, d time.Duration, passive bool) (r row, err error) {
	r = row{scenario: name, target: "traffic < 10 s after the restore"}
	p, err := newPair(!passive, false)
	if err != nil {
		return r, err
	}
	defer p.close()
	r.rssBefore = p.a.rss()
	nft := func(script string) error {
		cmd := exec.Command("nft", "-f", "-")
		cmd.Stdin = strings.NewReader(script)
		if err := p.l.Start(&p.l.A, cmd); err != nil {
			return err
		}
		return p.l.Wait(cmd)
	}
	if err := nft("table inet gzdrop {\n chain in { type filter hook input priority -10; policy drop; }\n chain out { type filter hook output priority -10; policy drop; }\n}\n"); err != nil {
		return r, fmt.Errorf("nft: %w", err)
	}
	time.Sleep(d)
	if err := nft("delete table inet gzdrop\n"); err != nil {
		return r, fmt.Errorf("nft: %w", err)
	}
	start := time.Now()
	err = p.waitTraffic(60 * time.Second)
	took := time.Since(start)
	r.rssAfter = p.a.rss()
	r.counters = p.counters()
	if err != nil {
		r.result = "no traffic within 60 s of the restore"
		return r, nil
	}
	r.result = fmt.Sprintf("traffic %.2f s after the restore", took.Seconds())
	r.ok = took < 10*time.Second
	return r, nil
}

// hundred runs n IKE tunnels in one process on each side (A passive, an
// address pair per tunnel on the link), then pings through every tunnel
// in rounds: no tunnel may stall; the result is A's RSS per tunnel.
func hundred(name string, n int) (r row, err error) {
	r = row{scenario: name, target: "every tunnel up and answering; RSS per tunnel"}
	l, err := lab.New(lab.RandomPrefix("gh"))
	if err != nil {
		return r, err
	}
	dir, err := os.MkdirTemp("", "greipsec-attack-")
	if err != nil {
		l.Close()
		return r, err
	}
	p := &pair{l: l, dir: dir}
	defer p.close()
	var confA, confB strings.Builder
	// IKE tells its tunnels apart by the peer's address: one address per
	// tunnel on each side, 198.51.100.1-100 on A and .101-200 on B.
	for i := range n {
		local, peer := fmt.Sprintf("198.51.100.%d", 1+i), fmt.Sprintf("198.51.100.%d", 101+i)
		for _, a := range []struct {
			h    *lab.Host
			addr string
		}{{&l.A, local}, {&l.B, peer}} {
			if out, err := exec.Command("ip", "-n", a.h.Name, "addr", "add", a.addr+"/24", "dev", a.h.Link).CombinedOutput(); err != nil {
				return r, fmt.Errorf("ip addr add: %v: %s", err, out)
			}
		}
		tunnel := `
[[tunnel]]
name = "t%[1]d"
mode = "gre-transport"
local = "%[2]s"
peer = "%[3]s"
addresses = ["10.100.%[1]d.%[4]d/30"]
[tunnel.ike]
role = "%[5]s"
psk = "hundred-tunnels-psk-0123456789ab"
`
		fmt.Fprintf(&confA, tunnel, i, local, peer, 1, "passive")
		fmt.Fprintf(&confB, tunnel, i, peer, local, 2, "active")
	}
	if p.a, err = p.start(&l.A, "a", confA.String()); err != nil {
		return r, err
	}
	if p.b, err = p.start(&l.B, "b", confB.String()); err != nil {
		return r, err
	}
	r.rssBefore = p.a.rss()
	start := time.Now()
	up := func() int {
		st, err := p.a.status()
		if err != nil {
			return 0
		}
		k := 0
		for _, t := range st.Tunnels {
			if t.IKE != nil && t.IKE.State == "ESTABLISHED" && len(t.ChildSAs) > 0 {
				k++
			}
		}
		return k
	}
	if !lab.WaitFor(60*time.Second, func() bool { return up() == n }) {
		return r, fmt.Errorf("%d of %d tunnels up after 60 s", up(), n)
	}
	upIn := time.Since(start)
	// Rounds of one ping through every tunnel.
	for round := range 5 {
		for i := range n {
			dst := netip.AddrFrom4([4]byte{10, 100, byte(i), 2})
			r.pingSent++
			if got, _ := l.Ping(&l.A, dst, 1, time.Second); got == 1 {
				r.pingGot++
			} else if round == 0 {
				// The first packet may start an acquire; only later
				// rounds must all pass.
				r.pingSent--
			}
		}
	}
	if bps, err := l.TCPThroughput(&l.A, &l.B, netip.MustParseAddr("10.100.0.2"), 3*time.Second); err == nil {
		r.before = bps / 1e6 // through t0 while the others are up
		r.during = r.before
	}
	r.rssAfter = p.a.rss()
	r.counters = fmt.Sprintf("%d tunnels up in %.1f s", n, upIn.Seconds())
	r.result = fmt.Sprintf("%d/%d pings answered; %.0f kB RSS per tunnel", r.pingGot, r.pingSent, float64(r.rssAfter)/float64(n))
	r.ok = r.pingGot == r.pingSent
	return r, nil
}
