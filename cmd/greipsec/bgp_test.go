//go:build linux

package main

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/greipsec/greipsec/internal/lab"
	"github.com/vishvananda/netlink"
)

// The two-tunnel BGP site of issue 8, as OpenBSD sec(4) sites run it
// against AWS: a site gateway (A) with two route-mode tunnels (0/0 traffic
// selectors, AES-256-CBC + HMAC-SHA2-256, MODP 3072, lifetimes 28800/3600)
// to two peer gateways (B over 192.0.2.0/24, C over 198.51.100.0/24), a
// BGP session over each tunnel between the tunnel's inner addresses (a /30
// and a /126 per tunnel, hold time 30 s, keepalive 10 s), and both peers
// announcing the same remote LAN, 10.2.0.0/24 and fd00:2::/64. BIRD 2 runs
// the BGP sessions in each namespace.
//
//	   LAN 10.1.0.1/24                         sec0 169.254.10.2 [ B ] LAN 10.2.0.1/24
//	   fd00:1::1/64    sec0 169.254.10.1  ======= 192.0.2.2       fd00:2::1/64
//	           [ A ] 192.0.2.1
//	                 198.51.100.1     sec1 169.254.11.1 ===== 198.51.100.2 [ C ] LAN 10.2.0.1/24
//	                                                                       fd00:2::1/64
//
// The tunnels set link-follows-ike: when dead peer detection finds a peer
// gone, its tunnel's interface loses its carrier, BIRD ("check link")
// takes the session down at once, and the route through the other tunnel
// is used, well within the hold time.

const bgpPSK = "bgp-site-test-psk"

// bgpTunnel is one tunnel of the site as greipsec's config writes it.
func bgpTunnel(name, local, peer, addr4, addr6 string, linkFollows bool) string {
	return fmt.Sprintf(`
[[tunnel]]
name      = %q
mode      = "route"
local     = %q
peer      = %q
addresses = [%q, %q]
link-follows-ike = %v

[tunnel.ike]
psk            = %q
ike-proposals  = "aes256-sha256-modp3072"
esp-proposals  = "aes256-sha256-modp3072"
ike-lifetime   = "8h"
lifetime       = "1h"
dpd                = "2s"
retransmit-timeout = "500ms"
retransmit-tries   = 2
`, name, local, peer, addr4, addr6, linkFollows, bgpPSK)
}

// birdConfig is one namespace's BIRD 2 configuration: the LAN interface
// announced, BGP routes into the kernel, and one IPv4 and one IPv6 session
// per neighbor.
func birdConfig(dir, host, routerID, lan string, localAS int, neighbors []bgpNeighbor) string {
	var b strings.Builder
	fmt.Fprintf(&b, `log %q all;
router id %s;
protocol device { scan time 1; }
protocol direct { ipv4; ipv6; interface %q; }
protocol kernel { ipv4 { import none; export where source = RTS_BGP; }; }
protocol kernel { ipv6 { import none; export where source = RTS_BGP; }; }
template bgp tun {
	local as %d;
	direct;
	check link yes;
	hold time 30;
	keepalive time 10;
	connect delay time 1;
	connect retry time 2;
	error wait time 1, 4;
}
`, filepath.Join(dir, host+".bird.log"), routerID, lan, localAS)
	for i, n := range neighbors {
		for _, fam := range []struct{ name, addr string }{{"ipv4", n.addr4}, {"ipv6", n.addr6}} {
			fmt.Fprintf(&b, `protocol bgp %s_%d_%s from tun {
	neighbor %s as %d;
	interface %q;
	%s { import all; export where source = RTS_DEVICE; };
}
`, n.name, i, fam.name, fam.addr, n.as, n.iface, fam.name)
		}
	}
	return b.String()
}

type bgpNeighbor struct {
	name         string
	iface        string
	addr4, addr6 string
	as           int
}

// needBIRD returns the paths of bird and birdc, installing Debian's bird2
// if they are missing.
func needBIRD(t *testing.T) (bird, birdc string) {
	t.Helper()
	if _, err := exec.LookPath("bird"); err != nil {
		t.Log("bird not found: installing bird2 with apt-get")
		cmd := exec.Command("sh", "-c", "apt-get -o DPkg::Lock::Timeout=300 update -qq && apt-get -o DPkg::Lock::Timeout=300 install -y -qq bird2")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("installing bird2: %v\n%s", err, out)
		}
	}
	var err error
	if bird, err = exec.LookPath("bird"); err != nil {
		t.Fatal(err)
	}
	if birdc, err = exec.LookPath("birdc"); err != nil {
		t.Fatal(err)
	}
	return bird, birdc
}

// bgpSite is the running scenario.
type bgpSite struct {
	t      *testing.T
	l      *lab.Lab
	c      *lab.Host
	dir    string
	exe    string
	birdc  string
	procs  map[string]*exec.Cmd // greipsec by host name
	cfgs   map[string]string    // greipsec config path by host name
	socks  map[string]string    // BIRD control socket by host name
	lanA   netip.Addr
	remote [2]netip.Addr // an address on the remote LAN, IPv4 and IPv6
}

func startBGPSite(t *testing.T, linkFollows bool) *bgpSite {
	needRoot(t)
	bird, birdc := needBIRD(t)
	s := &bgpSite{t: t, exe: greipsecBinary(t), birdc: birdc, dir: t.TempDir(),
		procs: map[string]*exec.Cmd{}, cfgs: map[string]string{}, socks: map[string]string{},
		lanA:   netip.MustParseAddr("10.1.0.1"),
		remote: [2]netip.Addr{netip.MustParseAddr("10.2.0.1"), netip.MustParseAddr("fd00:2::1")}}
	l, err := lab.New(lab.RandomPrefix("gb"))
	if err != nil {
		t.Fatal(err)
	}
	s.l = l
	t.Cleanup(func() {
		l.Close()
		lab.Cleanup(l.Prefix)
	})
	if s.c, err = l.AddHost("c"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Connect(&l.A, s.c, []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24")},
		[]netip.Prefix{netip.MustParsePrefix("198.51.100.2/24")}); err != nil {
		t.Fatal(err)
	}
	lans := map[*lab.Host]string{}
	for h, addrs := range map[*lab.Host][]netip.Prefix{
		&l.A: {netip.MustParsePrefix("10.1.0.1/24"), netip.MustParsePrefix("fd00:1::1/64")},
		&l.B: {netip.MustParsePrefix("10.2.0.1/24"), netip.MustParsePrefix("fd00:2::1/64")},
		s.c:  {netip.MustParsePrefix("10.2.0.1/24"), netip.MustParsePrefix("fd00:2::1/64")},
	} {
		if lans[h], err = l.AddLAN(h, "l", addrs...); err != nil {
			t.Fatal(err)
		}
	}

	// greipsec on the three gateways.
	s.writeConfig(&l.A, bgpTunnel("sec0", "192.0.2.1", "192.0.2.2", "169.254.10.1/30", "fd00:10::1/126", linkFollows)+
		bgpTunnel("sec1", "198.51.100.1", "198.51.100.2", "169.254.11.1/30", "fd00:11::1/126", linkFollows))
	s.writeConfig(&l.B, bgpTunnel("sec0", "192.0.2.2", "192.0.2.1", "169.254.10.2/30", "fd00:10::2/126", linkFollows))
	s.writeConfig(s.c, bgpTunnel("sec0", "198.51.100.2", "198.51.100.1", "169.254.11.2/30", "fd00:11::2/126", linkFollows))
	for _, h := range []*lab.Host{&l.A, &l.B, s.c} {
		s.startGateway(h)
	}
	for _, w := range []struct {
		h     *lab.Host
		iface string
	}{{&l.A, "sec0"}, {&l.A, "sec1"}, {&l.B, "sec0"}, {s.c, "sec0"}} {
		if err := l.WaitLink(w.h, w.iface, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}

	// BIRD: A is AS 65000, both peers AS 64512 (one VPN gateway's two tunnels).
	s.startBIRD(bird, &l.A, "10.1.0.1", lans[&l.A], 65000, []bgpNeighbor{
		{"b", "sec0", "169.254.10.2", "fd00:10::2", 64512},
		{"c", "sec1", "169.254.11.2", "fd00:11::2", 64512}})
	s.startBIRD(bird, &l.B, "192.0.2.2", lans[&l.B], 64512, []bgpNeighbor{{"a", "sec0", "169.254.10.1", "fd00:10::1", 65000}})
	s.startBIRD(bird, s.c, "198.51.100.2", lans[s.c], 64512, []bgpNeighbor{{"a", "sec0", "169.254.11.1", "fd00:11::1", 65000}})
	return s
}

func (s *bgpSite) writeConfig(h *lab.Host, cfg string) {
	path := filepath.Join(s.dir, h.Name+".toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		s.t.Fatal(err)
	}
	s.cfgs[h.Name] = path
}

// startGateway starts (or starts again) greipsec in h, its log appended to
// the config's .log file, shown when the test fails.
func (s *bgpSite) startGateway(h *lab.Host) {
	t, path := s.t, s.cfgs[h.Name]
	log, err := os.OpenFile(path+".log", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(s.exe, "up", "-c", path, "--control", path+".sock")
	cmd.Stdout, cmd.Stderr = log, log
	if err := s.l.Start(h, cmd); err != nil {
		t.Fatal(err)
	}
	first := s.procs[h.Name] == nil
	s.procs[h.Name] = cmd
	t.Cleanup(func() {
		s.l.Stop(cmd)
		log.Close()
		if first && t.Failed() {
			out, _ := os.ReadFile(path + ".log")
			t.Logf("greipsec log of %s:\n%s", h.Name, out)
		}
	})
}

func (s *bgpSite) startBIRD(bird string, h *lab.Host, routerID, lan string, as int, neighbors []bgpNeighbor) {
	t := s.t
	conf := filepath.Join(s.dir, h.Name+".bird.conf")
	if err := os.WriteFile(conf, []byte(birdConfig(s.dir, h.Name, routerID, lan, as, neighbors)), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(s.dir, h.Name+".bird.ctl")
	cmd := exec.Command(bird, "-f", "-c", conf, "-s", sock, "-P", filepath.Join(s.dir, h.Name+".bird.pid"))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := s.l.Start(h, cmd); err != nil {
		t.Fatal(err)
	}
	s.socks[h.Name] = sock
	t.Cleanup(func() {
		s.l.Stop(cmd)
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(s.dir, h.Name+".bird.log"))
			t.Logf("BIRD of %s: %s\n%s", h.Name, out.String(), log)
		}
	})
}

// established returns how many of h's BGP sessions are established.
func (s *bgpSite) established(h *lab.Host) int {
	out, err := exec.Command(s.birdc, "-s", s.socks[h.Name], "show", "protocols").CombinedOutput()
	if err != nil {
		return 0
	}
	return strings.Count(string(out), "Established")
}

// paths returns how many paths to the remote LAN A's BIRD has, for IPv4
// and IPv6 together: 4 when both peers announce it.
func (s *bgpSite) paths() int {
	n := 0
	for _, p := range []string{"10.2.0.0/24", "fd00:2::/64"} {
		out, err := exec.Command(s.birdc, "-s", s.socks[s.l.A.Name], "show", "route", "for", p).CombinedOutput()
		if err != nil {
			return 0
		}
		n += strings.Count(string(out), "via ")
	}
	return n
}

// routeDev returns the interface through which A routes dst, or "".
func (s *bgpSite) routeDev(dst netip.Addr) string {
	var dev string
	s.l.Do(&s.l.A, func() error {
		routes, err := netlink.RouteGet(dst.AsSlice())
		if err != nil || len(routes) == 0 {
			return err
		}
		link, err := netlink.LinkByIndex(routes[0].LinkIndex)
		if err != nil {
			return err
		}
		dev = link.Attrs().Name
		return nil
	})
	return dev
}

// reaches reports whether a ping from A's LAN address gets an answer from
// the remote LAN address dst, through the tunnels.
func (s *bgpSite) reaches(dst netip.Addr) bool {
	src := s.lanA
	if dst.Is6() {
		src = netip.MustParseAddr("fd00:1::1")
	}
	n, _ := s.l.PingFrom(&s.l.A, src, dst, 1, 250*time.Millisecond)
	return n == 1
}

// failover SIGKILLs the greipsec of peer and returns how long it took until
// pings from A's LAN to the remote LAN were answered again, for IPv4 and
// IPv6, and the interface they then go through.
func (s *bgpSite) failover(peer *lab.Host, limit time.Duration) (took [2]time.Duration, dev string) {
	t := s.t
	cmd := s.procs[peer.Name]
	killed := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.l.Wait(cmd)
	for i, dst := range s.remote {
		if !lab.WaitFor(limit, func() bool { return s.reaches(dst) }) {
			t.Fatalf("no answer from %s within %v of SIGKILL to the greipsec of %s (route via %q)", dst, limit, peer.Name, s.routeDev(dst))
		}
		took[i] = time.Since(killed)
	}
	return took, s.routeDev(s.remote[0])
}

// TestNetnsBGPSite runs the two-tunnel BGP site and measures the failover
// when the peer gateway carrying the traffic is killed, the return of that
// peer, and the failover back to it when the other one is killed.
//
// With GREIPSEC_BGP_HOLD=1 the tunnels do not set link-follows-ike: the
// failover then waits for BGP's hold time (a measurement, not for CI).
func TestNetnsBGPSite(t *testing.T) {
	hold := os.Getenv("GREIPSEC_BGP_HOLD") != ""
	limit := 30 * time.Second
	if hold {
		limit = 60 * time.Second
	}
	s := startBGPSite(t, !hold)
	l := s.l
	if !lab.WaitFor(45*time.Second, func() bool { return s.established(&l.A) == 4 && s.paths() == 4 }) {
		out, _ := exec.Command(s.birdc, "-s", s.socks[l.A.Name], "show", "protocols").CombinedOutput()
		t.Fatalf("A's four BGP sessions not established within 45 s:\n%s", out)
	}
	for _, dst := range s.remote {
		if !lab.WaitFor(10*time.Second, func() bool { return s.reaches(dst) }) {
			t.Fatalf("no answer from %s through the tunnels (route via %q)", dst, s.routeDev(dst))
		}
	}
	peers := map[string]*lab.Host{"sec0": &l.B, "sec1": s.c}
	other := map[string]string{"sec0": "sec1", "sec1": "sec0"}
	first := s.routeDev(s.remote[0])
	if peers[first] == nil {
		t.Fatalf("A routes %s through %q, not a tunnel", s.remote[0], first)
	}
	if dev6 := s.routeDev(s.remote[1]); peers[dev6] == nil {
		t.Fatalf("A routes %s through %q, not a tunnel", s.remote[1], dev6)
	}

	// Kill the peer behind the tunnel in use.
	took, dev := s.failover(peers[first], limit)
	t.Logf("failover %s -> %s after SIGKILL of %s: IPv4 %v, IPv6 %v", first, dev, peers[first].Name, took[0].Round(10*time.Millisecond), took[1].Round(10*time.Millisecond))
	if dev != other[first] {
		t.Errorf("after the failover A routes %s through %q, want %s", s.remote[0], dev, other[first])
	}

	// Bring it back: IKE, then BGP.
	back := time.Now()
	if !lab.WaitFor(10*time.Second, func() bool {
		return l.Do(peers[first], func() error {
			_, err := os.Stat("/sys/class/net/sec0")
			if err == nil {
				return fmt.Errorf("still there")
			}
			return nil
		}) == nil
	}) {
		t.Fatalf("the killed greipsec's sec0 did not go away")
	}
	s.startGateway(peers[first])
	if !lab.WaitFor(45*time.Second, func() bool { return s.established(&l.A) == 4 && s.paths() == 4 }) {
		t.Fatalf("BGP over %s not established again within 45 s of the restart", first)
	}
	t.Logf("%s back (IKE SA and both BGP sessions established) %v after the restart of %s", first, time.Since(back).Round(10*time.Millisecond), peers[first].Name)

	// Now the other one fails: traffic goes back to the first tunnel.
	now := s.routeDev(s.remote[0])
	took, dev = s.failover(peers[now], limit)
	t.Logf("failover %s -> %s after SIGKILL of %s: IPv4 %v, IPv6 %v", now, dev, peers[now].Name, took[0].Round(10*time.Millisecond), took[1].Round(10*time.Millisecond))
	if dev != other[now] {
		t.Errorf("after the second failover A routes %s through %q, want %s", s.remote[0], dev, other[now])
	}
}
