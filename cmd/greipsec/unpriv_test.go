//go:build linux

package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/greipsec/greipsec/gateway"
	"github.com/greipsec/greipsec/internal/lab"
	"github.com/greipsec/greipsec/internal/nstest"
)

// The tests in this file run greipsec with a netstack inner side as an
// unprivileged user (nobody, with no capability) in one network namespace
// of a lab, against a TUN greipsec or strongSwan in the other, as root:
// curl through its SOCKS5 and HTTP proxies to a web server on the far
// site's LAN, a DNS query through SOCKS5 UDP ASSOCIATE, iperf3 through its
// port forwards both ways, and ping from the far site to its address. They
// need root to make the namespaces.
//
//	A (nobody): greipsec, netstack 10.255.0.1     B (root): greipsec gre0 10.255.0.2/30, or charon
//	  SOCKS5 127.0.0.1:1080, HTTP 127.0.0.1:3128    LAN on lo: 10.2.0.1 (web, iperf3), 10.2.0.53 (DNS)
//	  192.0.2.1:14500 ========== ESP-in-UDP, IKE from the start ========== 192.0.2.2:4500

// nobody is the unprivileged user greipsec runs as.
const nobody = 65534

// unprivProc is a greipsec up run as nobody by startUnprivileged.
type unprivProc struct {
	cmd    *exec.Cmd
	dir    string // its own directory: config, log, XDG_RUNTIME_DIR
	socket string // the control socket, the default one for nobody
	log    string
	trace  string // strace's log of its socket and open calls
}

// startUnprivileged runs "greipsec up -c cfg" in h as nobody, with no
// capability, XDG_RUNTIME_DIR set to a directory of nobody's and no
// --control flag, so that the unprivileged default control socket is
// used, under strace (socket and open calls only) to prove afterwards
// what it never did.
func startUnprivileged(t *testing.T, l *lab.Lab, h *lab.Host, cfg string) *unprivProc {
	t.Helper()
	exe := greipsecBinary(t)
	strace := needTool(t, "strace", "strace")
	dir := t.TempDir()
	// nobody must reach the binary and its files.
	for _, d := range []string{filepath.Dir(exe), dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	g := &unprivProc{dir: dir, log: filepath.Join(dir, "log"), trace: filepath.Join(dir, "strace")}
	config := filepath.Join(dir, "greipsec.toml")
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// Its user reads it, nobody else: it holds the key.
	if err := os.Chown(config, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run")
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{run, dir} {
		if err := os.Chown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	g.socket = filepath.Join(run, "greipsec", "greipsec.sock")
	log, err := os.Create(g.log)
	if err != nil {
		t.Fatal(err)
	}
	// --seccomp-bpf: only the traced calls stop the process.
	g.cmd = exec.Command(strace, "-f", "-qq", "--seccomp-bpf", "-e", "trace=socket,open,openat", "-o", g.trace, exe, "up", "--allow-example-psk", "-v", "-c", config)
	g.cmd.Env = []string{"XDG_RUNTIME_DIR=" + run, "PATH=/usr/bin:/bin"}
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}}
	startAndWait(t, l, h, g.cmd, log, g.log, g.socket, " as nobody", 15*time.Second)
	return g
}

// show returns the status of tunnel name from the control socket.
func (g *unprivProc) show(t *testing.T, name string) gateway.TunnelStatus {
	t.Helper()
	return showJSON(t, g.socket, name)
}

// checkUnprivileged checks, while greipsec runs, that it runs as nobody
// with no capability at all, and, from strace's log, that it never opened
// a netlink or raw socket, nor /dev/net/tun.
func (g *unprivProc) checkUnprivileged(t *testing.T) {
	t.Helper()
	trace, err := os.ReadFile(g.trace)
	if err != nil {
		t.Fatal(err)
	}
	// Every thread strace saw make a call; those still running are
	// greipsec's.
	pids := map[string]bool{}
	for _, line := range strings.Split(string(trace), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			pids[f[0]] = true
		}
	}
	checked := 0
	for pid := range pids {
		status, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			continue // a thread that is gone, or not a process
		}
		for _, field := range []string{"Uid", "Gid", "CapInh", "CapPrm", "CapEff", "CapAmb"} {
			m := regexp.MustCompile(`(?m)^` + field + `:\s+(.*)$`).FindSubmatch(status)
			if m == nil {
				t.Fatalf("/proc/%s/status has no %s", pid, field)
			}
			v := strings.Fields(string(m[1]))
			switch field {
			case "Uid", "Gid":
				for _, id := range v {
					if id != strconv.Itoa(nobody) {
						t.Errorf("greipsec (pid %s) runs with %s %s, want %d throughout", pid, field, m[1], nobody)
					}
				}
			default:
				if n, _ := strconv.ParseUint(v[0], 16, 64); n != 0 {
					t.Errorf("greipsec (pid %s) has capabilities: %s %s", pid, field, v[0])
				}
			}
		}
		checked++
	}
	if checked == 0 {
		t.Fatalf("no running greipsec found in strace's log:\n%s", trace)
	}
	for _, bad := range []string{"AF_NETLINK", "SOCK_RAW", "/dev/net/tun"} {
		if strings.Contains(string(trace), bad) {
			t.Errorf("greipsec as nobody used %s:\n%s", bad, grepLines(string(trace), bad))
		}
	}
	if !strings.Contains(string(trace), "SOCK_DGRAM") {
		t.Errorf("strace saw no UDP socket: the trace is not of greipsec?\n%s", trace)
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// farSite serves, in h, what the far site's LAN offers: a web server on
// 10.2.0.1:80, a DNS server on 10.2.0.53:53 that knows web.far.example,
// and an iperf3 server on 10.2.0.1:5201. The addresses must be local in h.
func farSite(t *testing.T, l *lab.Lab, h *lab.Host, iperf3 string) *nstest.Zone {
	t.Helper()
	var web net.Listener
	var dns net.PacketConn
	if err := l.Do(h, func() error {
		var err error
		if web, err = net.Listen("tcp", "10.2.0.1:80"); err != nil {
			return err
		}
		dns, err = net.ListenPacket("udp", "10.2.0.53:53")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from the far site's LAN, %s asked for %s\n", r.RemoteAddr, r.Host)
	})}
	go srv.Serve(web)
	t.Cleanup(func() { srv.Close() })
	zone := &nstest.Zone{Addrs: map[string][]netip.Addr{"web.far.example.": {netip.MustParseAddr("10.2.0.1")}}}
	nstest.ServeDNS(t, zone, dns, nil)
	if iperf3 != "" {
		cmd := exec.Command(iperf3, "-s", "-B", "10.2.0.1", "-p", "5201")
		if err := l.Start(h, cmd); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Stop(cmd) })
	}
	return zone
}

// curl runs curl in h with args and returns what it printed.
func curl(t *testing.T, l *lab.Lab, h *lab.Host, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(needTool(t, "curl", "curl"), append([]string{"-sS", "--max-time", "20"}, args...)...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := l.Start(h, cmd); err != nil {
		t.Fatal(err)
	}
	err := l.Wait(cmd)
	return out.String(), err
}

// socks5DNS asks the DNS server at server for name's A record through the
// SOCKS5 proxy at proxyAddr with UDP ASSOCIATE (RFC 1928 §7), from h, and
// returns the addresses of the answer.
func socks5DNS(l *lab.Lab, h *lab.Host, proxyAddr string, server netip.AddrPort, name string) ([]netip.Addr, error) {
	var ctl net.Conn
	var udp *net.UDPConn
	if err := l.Do(h, func() error {
		var err error
		if ctl, err = net.DialTimeout("tcp", proxyAddr, 5*time.Second); err != nil {
			return err
		}
		udp, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		return err
	}); err != nil {
		return nil, err
	}
	defer ctl.Close()
	defer udp.Close()
	ctl.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(ctl)
	// No authentication; UDP ASSOCIATE from our UDP socket's address.
	local := udp.LocalAddr().(*net.UDPAddr).AddrPort()
	req := []byte{5, 1, 0, 5, 3, 0, 1}
	req = append(req, local.Addr().AsSlice()...)
	req = binary.BigEndian.AppendUint16(req, local.Port())
	if _, err := ctl.Write(req); err != nil {
		return nil, err
	}
	var method [2]byte
	if _, err := io.ReadFull(r, method[:]); err != nil || method != [2]byte{5, 0} {
		return nil, fmt.Errorf("method selection: %v %v", method, err)
	}
	var rep [10]byte // an IPv4 bound address
	if _, err := io.ReadFull(r, rep[:]); err != nil || rep[1] != 0 || rep[3] != 1 {
		return nil, fmt.Errorf("UDP ASSOCIATE reply %v: %v", rep, err)
	}
	relay := netip.AddrPortFrom(netip.AddrFrom4([4]byte(rep[4:8])), binary.BigEndian.Uint16(rep[8:]))

	id := uint16(time.Now().UnixNano())
	q, err := (&dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}},
	}).Pack()
	if err != nil {
		return nil, err
	}
	dg := []byte{0, 0, 0, 1}
	dg = append(dg, server.Addr().AsSlice()...)
	dg = binary.BigEndian.AppendUint16(dg, server.Port())
	dg = append(dg, q...)
	udp.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1500)
	for try := 0; try < 3; try++ {
		if _, err := udp.WriteToUDPAddrPort(dg, relay); err != nil {
			return nil, err
		}
		n, _, err := udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			continue
		}
		if n < 10 || buf[3] != 1 || netip.AddrFrom4([4]byte(buf[4:8])) != server.Addr() {
			return nil, fmt.Errorf("relayed datagram with a bad header: %x", buf[:min(n, 10)])
		}
		var m dnsmessage.Message
		if err := m.Unpack(buf[10:n]); err != nil {
			return nil, err
		}
		if m.ID != id {
			return nil, fmt.Errorf("answer ID %d, want %d", m.ID, id)
		}
		var addrs []netip.Addr
		for _, a := range m.Answers {
			if rr, ok := a.Body.(*dnsmessage.AResource); ok {
				addrs = append(addrs, netip.AddrFrom4(rr.A))
			}
		}
		return addrs, nil
	}
	return nil, errors.New("no answer through the UDP association")
}

// iperfThrough runs an iperf3 client in h against dst:port for 3 s and
// returns the received throughput in bit/s.
func iperfThrough(t *testing.T, l *lab.Lab, h *lab.Host, iperf3, dst string, port int) float64 {
	t.Helper()
	cmd := exec.Command(iperf3, "-c", dst, "-p", strconv.Itoa(port), "-t", "3", "-J")
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := l.Start(h, cmd); err != nil {
		t.Fatal(err)
	}
	if err := l.Wait(cmd); err != nil {
		t.Errorf("iperf3 -c %s -p %d in %s: %v\n%s%s", dst, port, h.Name, err, out.String(), errOut.String())
		return 0
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Errorf("iperf3 output: %v\n%s", err, out.String())
	}
	return res.End.SumReceived.BitsPerSecond
}

// unprivConfigA is netstack-a.toml as the tests run it: the forwards for
// iperf3 both ways, and B's DNS server.
func unprivConfigA(t *testing.T) string {
	return exampleConfig(t, "netstack-a.toml",
		`listen    = "127.0.0.1:2222"
target    = "10.2.0.10:22"`, `listen    = "127.0.0.1:15201"
target    = "10.2.0.1:5201"`,
		`listen    = ":8080"
target    = "127.0.0.1:80"`, `listen    = ":5201"
target    = "127.0.0.1:5202"`)
}

// TestNetnsNetstackTUN: greipsec with a netstack inner side, run as nobody
// with no capability, behind a NAT that rewrites its port 14500 (as
// Docker's would), against a TUN greipsec, with IKEv2 started on the
// ESP-in-UDP ports.
func TestNetnsNetstackTUN(t *testing.T) {
	needRoot(t)
	iperf3 := needIperf3(t)
	nft := needTool(t, "nft", "nftables")
	l, err := lab.New(lab.RandomPrefix("gv"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	for _, p := range []string{"10.2.0.1/24"} {
		if err := l.AddLoopbackAddr(&l.B, netip.MustParsePrefix(p)); err != nil {
			t.Fatal(err)
		}
	}
	// A's NAT: what leaves port 14500 leaves from port 40000.
	cmd := exec.Command(nft, "-f", "-")
	cmd.Stdin = strings.NewReader(`table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		udp sport 14500 snat to 192.0.2.1:40000
	}
}
`)
	if err := l.Start(&l.A, cmd); err != nil {
		t.Fatal(err)
	}
	if err := l.Wait(cmd); err != nil {
		t.Fatalf("nft in %s: %v", l.A.Name, err)
	}

	zone := farSite(t, l, &l.B, iperf3)
	// B answers only: behind its NAT, A is where IKE starts.
	b := startUp(t, l, &l.B, exampleConfig(t, "netstack-b.toml", `role     = "active"`, `role     = "passive"`))
	a := startUnprivileged(t, l, &l.A, unprivConfigA(t))
	// A's iperf3 server, for the far-to-local forward :5201 -> 127.0.0.1:5202.
	srv := exec.Command(iperf3, "-s", "-B", "127.0.0.1", "-p", "5202")
	if err := l.Start(&l.A, srv); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Stop(srv) })

	var sa gateway.TunnelStatus
	if !lab.WaitFor(30*time.Second, func() bool {
		sa = a.show(t, "ns0")
		return childUp(&sa)
	}) {
		t.Fatalf("the tunnel did not come up: %s", jsonOf(sa))
	}
	sb := b.show(t, "gre0")
	t.Logf("A: IKE %s -> %s, NAT %s; B: IKE %s -> %s, NAT %s", sa.IKE.LocalEndpoint, sa.IKE.PeerEndpoint, sa.IKE.NAT,
		sb.IKE.LocalEndpoint, sb.IKE.PeerEndpoint, sb.IKE.NAT)
	if sb.IKE.PeerEndpoint != "192.0.2.1:40000" || !sb.ChildSAs[0].UDPEncap || sa.IKE.PeerEndpoint != "192.0.2.2:4500" {
		t.Errorf("through A's NAT: B sees A at %s (udp encap %v), A sees B at %s; want 192.0.2.1:40000 and 192.0.2.2:4500",
			sb.IKE.PeerEndpoint, sb.ChildSAs[0].UDPEncap, sa.IKE.PeerEndpoint)
	}

	// curl through the SOCKS5 proxy, the name resolved on the far site.
	out, err := curl(t, l, &l.A, "--socks5-hostname", "127.0.0.1:1080", "http://web.far.example/")
	if err != nil || !strings.Contains(out, "hello from the far site's LAN, 10.255.0.1:") {
		t.Errorf("curl through SOCKS5: %v\n%s", err, out)
	}
	if zone.Queries.Load() == 0 {
		t.Error("the far site's DNS server was not asked")
	}
	// curl through the HTTP proxy, a plain request and CONNECT.
	out, err = curl(t, l, &l.A, "-x", "http://127.0.0.1:3128", "http://10.2.0.1/")
	if err != nil || !strings.Contains(out, "hello from the far site's LAN") {
		t.Errorf("curl through the HTTP proxy: %v\n%s", err, out)
	}
	out, err = curl(t, l, &l.A, "-p", "-x", "http://127.0.0.1:3128", "http://web.far.example/")
	if err != nil || !strings.Contains(out, "asked for web.far.example") {
		t.Errorf("curl through the HTTP proxy with CONNECT: %v\n%s", err, out)
	}
	// DNS over UDP through SOCKS5 UDP ASSOCIATE.
	addrs, err := socks5DNS(l, &l.A, "127.0.0.1:1080", netip.MustParseAddrPort("10.2.0.53:53"), "web.far.example.")
	if err != nil || len(addrs) != 1 || addrs[0] != netip.MustParseAddr("10.2.0.1") {
		t.Errorf("DNS through SOCKS5 UDP ASSOCIATE: %v, %v", addrs, err)
	}
	// iperf3 through the forwards: A -> B's LAN, and B -> A's host.
	bps := iperfThrough(t, l, &l.A, iperf3, "127.0.0.1", 15201)
	t.Logf("iperf3 TCP, A's host -> local-to-far forward -> B's LAN: %.0f Mbit/s", bps/1e6)
	bps2 := iperfThrough(t, l, &l.B, iperf3, "10.255.0.1", 5201)
	t.Logf("iperf3 TCP, B -> A's far-to-local forward -> A's host: %.0f Mbit/s", bps2/1e6)
	if bps < 1e6 || bps2 < 1e6 {
		t.Errorf("iperf3 through the forwards: %.0f and %.0f bit/s", bps, bps2)
	}
	// Ping from the far site to the stack's address.
	if n, err := l.Ping(&l.B, netip.MustParseAddr("10.255.0.1"), 5, 2*time.Second); n < 4 {
		t.Errorf("ping from B to the netstack address: %d/5 replies, %v", n, err)
	}

	sa = a.show(t, "ns0")
	if sa.Netstack == nil || len(sa.Netstack.Listeners) != 5 {
		t.Fatalf("A's listeners: %s", jsonOf(sa.Netstack))
	}
	for _, ls := range sa.Netstack.Listeners {
		t.Logf("listener %s %s %s %s -> %s: accepted %d, failed %d", ls.Kind, ls.Proto, ls.Direction, ls.Listen, ls.Target, ls.Accepted, ls.Failed)
	}
	if ls := sa.Netstack.Listeners; ls[0].Accepted < 2 || ls[1].Accepted < 2 || ls[2].Accepted < 2 || ls[4].Accepted < 2 {
		t.Errorf("listener counters did not count the connections: %s", jsonOf(ls))
	}
	text, err := exec.Command(greipsecBinary(t), "show", "--control", a.socket).Output()
	if err != nil || !strings.Contains(string(text), "socks5 127.0.0.1:1080, resolve far, no authentication: accepted") {
		t.Errorf("greipsec show: %v\n%s", err, text)
	}
	t.Logf("greipsec show of A:\n%s", text)
	a.checkUnprivileged(t)
}

// TestNetnsNetstackStrongSwan: greipsec with a netstack inner side, run as
// nobody, against strongSwan (charon with kernel-libipsec) in route mode:
// greipsec initiates to a charon with its default ports (it answers on
// 4500 behind the non-ESP marker), and charon, told local_port = 4500 and
// remote_port = 14500, initiates to greipsec; curl through the SOCKS5 proxy
// to a web server behind charon, and ping from charon's LAN address to the
// stack. (charon with only remote_port = 14500 sends IKE_SA_INIT from port
// 500, without the marker, which no ESP-in-UDP port can take.)
func TestNetnsNetstackStrongSwan(t *testing.T) {
	for _, tc := range []struct {
		name                string
		role                string
		charonInitiates     bool
		localPort, peerPort uint16
	}{
		{"greipsec-initiates", "active", false, 0, 0},
		{"strongswan-initiates", "passive", true, 4500, 14500},
	} {
		t.Run(tc.name, func(t *testing.T) { testNetstackStrongSwan(t, tc.role, tc.charonInitiates, tc.localPort, tc.peerPort) })
	}
}

func testNetstackStrongSwan(t *testing.T, role string, charonInitiates bool, localPort, peerPort uint16) {
	needRoot(t)
	if err := lab.NeedStrongSwan(); err != nil {
		t.Fatal(err)
	}
	l, err := lab.New(lab.RandomPrefix("gw"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ss, err := l.StartStrongSwan(&l.B, lab.StrongSwanConfig{
		LocalAddr: netip.MustParseAddr("192.0.2.2"), PeerAddr: netip.MustParseAddr("192.0.2.1"),
		PSK:          "greipsec-netstack-interop-psk",
		IKEProposals: "aes256-sha384-ecp384", ESPProposals: "aes256gcm16-ecp384",
		LocalTS: []string{"10.2.0.0/24"}, PeerTS: []string{"10.1.0.0/24"},
		LocalPort: localPort, RemotePort: peerPort,
		Initiate:     charonInitiates,
		ExtraLANAddr: netip.MustParsePrefix("10.2.0.1/24"),
	})
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
	farSite(t, l, &l.B, "")
	a := startUnprivileged(t, l, &l.A, fmt.Sprintf(`[[tunnel]]
name          = "ns0"
inner         = "netstack"
mode          = "route"
transport     = "udp"
udp-port      = 14500
peer-udp-port = 4500
local         = "192.0.2.1"
peer          = "192.0.2.2"
addresses     = ["10.1.0.1/24"]
routes        = ["10.2.0.0/24"]
dns           = ["10.2.0.53"]

[tunnel.socks5]
listen = "127.0.0.1:1080"

[tunnel.ike]
role          = %q
port-500      = false
psk           = "greipsec-netstack-interop-psk"
ike-proposals = "aes256-sha384-ecp384"
esp-proposals = "aes256gcm16-ecp384"
local-ts      = ["10.1.0.0/24"]
peer-ts       = ["10.2.0.0/24"]
`, role))
	sas, err := ss.WaitInstalled(30 * time.Second)
	if err != nil {
		t.Fatalf("Child SA not installed in strongSwan: %v\n%s", err, sas)
	}
	t.Logf("swanctl --list-sas:\n%s", sas)
	for _, want := range []string{"192.0.2.2[4500]", "192.0.2.1[14500]", "INSTALLED, TUNNEL-in-UDP", "10.1.0.0/24"} {
		if !strings.Contains(sas, want) {
			t.Errorf("swanctl --list-sas lacks %q", want)
		}
	}
	if !lab.WaitFor(20*time.Second, func() bool {
		out, err := curl(t, l, &l.A, "--max-time", "3", "--socks5-hostname", "127.0.0.1:1080", "http://web.far.example/")
		return err == nil && strings.Contains(out, "hello from the far site's LAN, 10.1.0.1:")
	}) {
		out, err := curl(t, l, &l.A, "--socks5-hostname", "127.0.0.1:1080", "http://web.far.example/")
		t.Errorf("curl through SOCKS5 to the LAN behind strongSwan: %v\n%s", err, out)
	}
	if n, err := l.PingFrom(&l.B, netip.MustParseAddr("10.2.0.1"), netip.MustParseAddr("10.1.0.1"), 5, 2*time.Second); n < 4 {
		t.Errorf("ping from strongSwan's LAN to the netstack address: %d/5 replies, %v", n, err)
	}
	st := a.show(t, "ns0")
	if st.IKE == nil || st.IKE.LocalEndpoint != "192.0.2.1:14500" || st.IKE.PeerEndpoint != "192.0.2.2:4500" {
		t.Errorf("greipsec's IKE endpoints: %s", jsonOf(st.IKE))
	}
	a.checkUnprivileged(t)
}

func jsonOf(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// TestNetnsUnprivilegedRawESP: a netstack tunnel that asks for raw ESP,
// run by a user without CAP_NET_RAW: "check" says what is missing and to
// use transport = "udp", without opening the raw socket; "up" fails with
// one line that says the same.
func TestNetnsUnprivilegedRawESP(t *testing.T) {
	needRoot(t)
	exe := greipsecBinary(t)
	l, err := lab.New(lab.RandomPrefix("gx"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(exe), dir, filepath.Dir(dir)} {
		os.Chmod(d, 0o755)
	}
	if err := os.Chown(dir, nobody, nobody); err != nil { // for the control socket
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "esp.toml")
	text := exampleConfig(t, "netstack-a.toml", `transport = "udp"`, `transport = "esp"`, "udp-port      = 14500\n", "", "peer-udp-port = 4500\n", "")
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	// Its user reads it, nobody else: it holds the key.
	if err := os.Chown(cfg, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	asNobody := func(args ...string) (string, error) {
		cmd := exec.Command(exe, args...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.Env = []string{"XDG_RUNTIME_DIR=" + dir}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}}
		if err := l.Start(&l.A, cmd); err != nil {
			t.Fatal(err)
		}
		err := l.Wait(cmd)
		return out.String(), err
	}
	out, err := asNobody("check", "-c", cfg)
	t.Logf("greipsec check as nobody: %v\n%s", err, out)
	if err != nil || !strings.Contains(out, `tunnel "ns0": transport = "esp" (raw ESP) needs CAP_NET_RAW, which this process does not have: run as root, give the container --cap-add NET_RAW, or use transport = "udp"`) ||
		strings.Contains(out, "CAP_NET_ADMIN") || strings.Contains(out, "port 500") {
		t.Errorf("check as nobody:\n%s", out)
	}
	out, err = asNobody("up", "--allow-example-psk", "-c", cfg, "--control", filepath.Join(dir, "ctl.sock"))
	t.Logf("greipsec up as nobody: %v\n%s", err, out)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("exit: %v, want status 1", err)
	}
	if strings.Contains(out, "panic") || strings.Count(out, "\n") != 1 || !strings.Contains(out, `open esp socket on 192.0.2.1`) ||
		!strings.HasSuffix(out, `raw ESP (transport = "esp") needs CAP_NET_RAW: run as root, give the container --cap-add NET_RAW, or use transport = "udp"`+"\n") {
		t.Errorf("up as nobody printed:\n%s", out)
	}
}

// TestNetnsLoopbackDemo runs README.md's "Without root" walk-through as
// nobody: examples/loopback-a.toml and loopback-b.toml on 127.0.0.1 (in a
// lab namespace, to keep its ports apart from the host's), a web server on
// 127.0.0.1:8000, and curl through A's SOCKS5 proxy to B's tunnel address.
func TestNetnsLoopbackDemo(t *testing.T) {
	needRoot(t)
	l, err := lab.New(lab.RandomPrefix("gy"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var web net.Listener
	if err := l.Do(&l.A, func() (err error) { web, err = net.Listen("tcp", "127.0.0.1:8000"); return err }); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from B's machine\n")
	})}
	go srv.Serve(web)
	t.Cleanup(func() { srv.Close() })
	b := startUnprivileged(t, l, &l.A, strings.Replace(exampleConfig(t, "loopback-b.toml"), "[control]\n", "# [control]\n#", 1))
	a := startUnprivileged(t, l, &l.A, strings.Replace(exampleConfig(t, "loopback-a.toml"), "[control]\n", "# [control]\n#", 1))
	if !lab.WaitFor(20*time.Second, func() bool {
		st := a.show(t, "lo-a")
		return childUp(&st)
	}) {
		t.Fatalf("the loopback tunnel did not come up: %s", jsonOf(a.show(t, "lo-a")))
	}
	out, err := curl(t, l, &l.A, "--socks5-hostname", "127.0.0.1:1080", "http://10.255.0.2/")
	if err != nil || out != "hello from B's machine\n" {
		t.Errorf("curl through A's SOCKS5 proxy to B's forward: %v\n%s", err, out)
	}
	if st := b.show(t, "lo-b"); st.Netstack == nil || st.Netstack.Listeners[0].Accepted != 1 {
		t.Errorf("B's forward: %s", jsonOf(st.Netstack))
	}
	a.checkUnprivileged(t)
	b.checkUnprivileged(t)
}
