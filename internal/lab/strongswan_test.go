//go:build linux

package lab

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// exampleDir is the directory the configurations in examples/strongswan
// are written for; StartStrongSwan uses a fresh temporary one instead.
const exampleDir = "/tmp/greipsec-strongswan"

// The PSK of the examples and of the tests.
const testPSK = "greipsec-interop-psk"

// exampleConfigs are the strongSwan sides of the greipsec interop tests,
// with strongSwan as gateway B (192.0.2.2) and greipsec as gateway A
// (192.0.2.1), written to examples/strongswan/<name>/.
var exampleConfigs = map[string]StrongSwanConfig{
	"route": {
		LocalAddr: netip.MustParseAddr("192.0.2.2"), PeerAddr: netip.MustParseAddr("192.0.2.1"),
		PSK:          testPSK,
		IKEProposals: "aes256-sha384-ecp384", ESPProposals: "aes256gcm16-ecp384",
		LocalTS: []string{"10.2.0.0/24"}, PeerTS: []string{"10.1.0.0/24"},
		Mode:         "tunnel",
		ExtraLANAddr: netip.MustParsePrefix("10.2.0.1/24"),
	},
	"gre-tunnel": {
		LocalAddr: netip.MustParseAddr("192.0.2.2"), PeerAddr: netip.MustParseAddr("192.0.2.1"),
		PSK:          testPSK,
		IKEProposals: "aes256-sha384-ecp384", ESPProposals: "aes256gcm16-ecp384",
		LocalTS: []string{"192.0.2.2/32[gre]"}, PeerTS: []string{"192.0.2.1/32[gre]"},
		Mode:        "tunnel",
		AllowPeerTS: true,
	},
}

// TestStrongSwanExamples checks that examples/strongswan holds what Files
// generates for exampleConfigs. GREIPSEC_UPDATE_EXAMPLES=1 rewrites them.
func TestStrongSwanExamples(t *testing.T) {
	update := os.Getenv("GREIPSEC_UPDATE_EXAMPLES") != ""
	for name, conf := range exampleConfigs {
		swan, swanctl, err := conf.Files(exampleDir)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		dir := filepath.Join("..", "..", "examples", "strongswan", name)
		for file, want := range map[string][]byte{"strongswan.conf": swan, "swanctl.conf": swanctl} {
			path := filepath.Join(dir, file)
			if update {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from what Files generates; run the test with GREIPSEC_UPDATE_EXAMPLES=1 and review the diff:\n%s", path, want)
			}
		}
	}
}

// TestStrongSwanFiles checks what the generated files say for the options
// that matter to charon.
func TestStrongSwanFiles(t *testing.T) {
	conf := exampleConfigs["gre-tunnel"]
	conf.LocalID, conf.PeerID = "gw-b.example.org", "@#a1b2"
	conf.PSK = "a\"b\n{c}"
	conf.Initiate = true
	swan, swanctl, err := conf.Files(exampleDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"load = random! nonce! openssl! aes sha1 sha2 hmac gcm kdf! pem pkcs1 x509 pubkey kernel-libipsec! kernel-netlink socket-default! vici!\n",
		"socket = unix://" + exampleDir + "/charon.vici\n",
		"path = " + exampleDir + "/charon.log\n",
		"allow_peer_ts = yes\n",
		"fwmark = 0x42\n",
		"fwmark = !0x42\n",
	} {
		if !strings.Contains(string(swan), want) {
			t.Errorf("strongswan.conf lacks %q:\n%s", want, swan)
		}
	}
	for _, want := range []string{
		"local_addrs = 192.0.2.2\n",
		"remote_addrs = 192.0.2.1\n",
		"proposals = aes256-sha384-ecp384\n",
		"esp_proposals = aes256gcm16-ecp384\n",
		"id = \"gw-b.example.org\"\n",
		"id = \"@#a1b2\"\n",
		"local_ts = 192.0.2.2/32[gre]\n",
		"remote_ts = 192.0.2.1/32[gre]\n",
		"mode = tunnel\n",
		"start_action = start\n",
		"secret = 0x6122620a7b637d\n", // the PSK's bytes in hex
	} {
		if !strings.Contains(string(swanctl), want) {
			t.Errorf("swanctl.conf lacks %q:\n%s", want, swanctl)
		}
	}

	// Without AllowPeerTS there are no marks; defaults are filled in.
	conf = StrongSwanConfig{
		LocalAddr: netip.MustParseAddr("2001:db8::1"), PeerAddr: netip.MustParseAddr("2001:db8::2"),
		PSK: "k", LocalTS: []string{"fd00:1::/64", "10.1.0.0/24"}, PeerTS: []string{"fd00:2::/64"},
	}
	swan, swanctl, err = conf.Files(exampleDir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(swan), "fwmark") || strings.Contains(string(swan), "allow_peer_ts") {
		t.Errorf("strongswan.conf has marks without AllowPeerTS:\n%s", swan)
	}
	for _, want := range []string{
		"id = \"2001:db8::1\"\n", "id = \"2001:db8::2\"\n",
		"local_ts = fd00:1::/64,10.1.0.0/24\n",
		"proposals = " + defaultIKEProposals + "\n", "esp_proposals = " + defaultESPProposals + "\n",
		"mode = tunnel\n", "start_action = none\n",
	} {
		if !strings.Contains(string(swanctl), want) {
			t.Errorf("swanctl.conf lacks %q:\n%s", want, swanctl)
		}
	}
}

func TestStrongSwanFilesRejected(t *testing.T) {
	good := exampleConfigs["route"]
	for name, tc := range map[string]struct {
		change func(*StrongSwanConfig)
		dir    string
	}{
		"no address":      {change: func(c *StrongSwanConfig) { c.PeerAddr = netip.Addr{} }},
		"no psk":          {change: func(c *StrongSwanConfig) { c.PSK = "" }},
		"no selectors":    {change: func(c *StrongSwanConfig) { c.LocalTS = nil }},
		"bad mode":        {change: func(c *StrongSwanConfig) { c.Mode = "beet" }},
		"quote in id":     {change: func(c *StrongSwanConfig) { c.LocalID = `a"b` }},
		"brace in ts":     {change: func(c *StrongSwanConfig) { c.PeerTS = []string{"10.1.0.0/24 } x {"} }},
		"newline in prop": {change: func(c *StrongSwanConfig) { c.ESPProposals = "aes256gcm16\nx" }},
		"empty ts part":   {change: func(c *StrongSwanConfig) { c.LocalTS = []string{"10.2.0.0/24,"} }},
		"relative dir":    {dir: "tmp/x"},
		"long dir":        {dir: "/" + strings.Repeat("d", 100)},
	} {
		c := good
		if tc.change != nil {
			tc.change(&c)
		}
		dir := exampleDir
		if tc.dir != "" {
			dir = tc.dir
		}
		if _, _, err := c.Files(dir); err == nil {
			t.Errorf("%s: Files accepted it", name)
		} else if !strings.HasPrefix(err.Error(), "lab: ") {
			t.Errorf("%s: error %q does not start with \"lab: \"", name, err)
		}
	}
}

// listSAsRaw is swanctl --list-sas --raw as strongSwan 5.9.8 printed it
// in TestStrongSwanRouteMode (one IKE SA, one Child SA, after 3 pings).
const listSAsRaw = `list-sa event {greipsec {uniqueid=1 version=2 state=ESTABLISHED local-host=192.0.2.1 local-port=4500 local-id=192.0.2.1 remote-host=192.0.2.2 remote-port=4500 remote-id=192.0.2.2 initiator=yes initiator-spi=b636652526ac6312 responder-spi=c8313a7fd16bd016 nat-remote=yes nat-any=yes encr-alg=AES_CBC encr-keysize=256 integ-alg=HMAC_SHA2_384_192 prf-alg=PRF_HMAC_SHA2_384 dh-group=ECP_384 established=0 rekey-time=13513 child-sas {greipsec-1 {name=greipsec uniqueid=1 reqid=1 state=INSTALLED mode=TUNNEL protocol=ESP encap=yes spi-in=2589ff9e spi-out=75c04f1f encr-alg=AES_GCM_16 encr-keysize=256 bytes-in=138 packets-in=3 use-in=0 bytes-out=138 packets-out=3 use-out=0 rekey-time=3598 life-time=3960 install-time=0 local-ts=[10.1.0.0/24] remote-ts=[10.2.0.0/24]}}}}
list-sas reply {}
`

func TestParseChildBytes(t *testing.T) {
	in, out, err := parseChildBytes(listSAsRaw)
	if err != nil || in != 138 || out != 138 {
		t.Errorf("parseChildBytes = %d, %d, %v; want 138, 138, nil", in, out, err)
	}
	two := strings.Replace(listSAsRaw, "}}}}", "} greipsec-2 {bytes-in=1000 bytes-out=7}}}}", 1)
	if in, out, err := parseChildBytes(two); err != nil || in != 1138 || out != 145 {
		t.Errorf("parseChildBytes with two Child SAs = %d, %d, %v; want 1138, 145, nil", in, out, err)
	}
	if in, out, err := parseChildBytes("list-sa event {}\n"); err != nil || in != 0 || out != 0 {
		t.Errorf("parseChildBytes without SAs = %d, %d, %v; want 0, 0, nil", in, out, err)
	}
	if _, _, err := parseChildBytes("bytes-in=99999999999999999999999"); err == nil {
		t.Error("parseChildBytes accepted a counter beyond 64 bits")
	}
}

// needStrongSwan skips in short mode, and installs strongSwan if needed.
func needStrongSwan(t *testing.T) {
	t.Helper()
	needRoot(t)
	if testing.Short() {
		t.Skip("strongSwan tests start charon and take a while: skipped in -short mode")
	}
	if err := NeedStrongSwan(); err != nil {
		t.Fatal(err)
	}
}

// startSwan starts charon in h, stopped when the test ends; if the test
// failed, it logs charon's log first.
func startSwan(t *testing.T, l *Lab, h *Host, conf StrongSwanConfig) *StrongSwan {
	t.Helper()
	s, err := l.StartStrongSwan(h, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("%s: %v", h.Name, err)
		}
		if t.Failed() {
			t.Logf("charon log in %s:\n%s", h.Name, s.Log())
		}
		os.RemoveAll(s.Dir)
	})
	return s
}

// waitInstalled is WaitInstalled with a failure if there is no Child SA.
func waitInstalled(t *testing.T, s *StrongSwan, name string) string {
	t.Helper()
	out, err := s.WaitInstalled(30 * time.Second)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

// twoSwans runs charon in both hosts of a new lab with the configurations
// a and b, and has A initiate.
func twoSwans(t *testing.T, a, b StrongSwanConfig) (l *Lab, sa, sb *StrongSwan) {
	t.Helper()
	needStrongSwan(t)
	l = newLab(t)
	for _, c := range []*StrongSwanConfig{&a, &b} {
		c.PSK = testPSK
		c.IKEProposals, c.ESPProposals = "aes256-sha384-ecp384", "aes256gcm16-ecp384"
		c.Mode = "tunnel"
	}
	a.LocalAddr, a.PeerAddr = l.A.Addr4.Addr(), l.B.Addr4.Addr()
	b.LocalAddr, b.PeerAddr = l.B.Addr4.Addr(), l.A.Addr4.Addr()
	sb = startSwan(t, l, &l.B, b)
	sa = startSwan(t, l, &l.A, a)
	return l, sa, sb
}

// TestStrongSwanRouteMode runs strongSwan against itself, route mode: LANs
// 10.1.0.0/24 behind A and 10.2.0.0/24 behind B, A initiating by itself,
// and checks that pings between the LANs go through the Child SA.
func TestStrongSwanRouteMode(t *testing.T) {
	lanA, lanB := netip.MustParsePrefix("10.1.0.1/24"), netip.MustParsePrefix("10.2.0.1/24")
	l, sa, sb := twoSwans(t,
		StrongSwanConfig{LocalTS: []string{"10.1.0.0/24"}, PeerTS: []string{"10.2.0.0/24"}, Initiate: true, ExtraLANAddr: lanA},
		StrongSwanConfig{LocalTS: []string{"10.2.0.0/24"}, PeerTS: []string{"10.1.0.0/24"}, ExtraLANAddr: lanB})
	waitInstalled(t, sa, "A")
	waitInstalled(t, sb, "B")
	inA0, outA0, err := sa.ChildBytes()
	if err != nil {
		t.Fatal(err)
	}
	inB0, outB0, err := sb.ChildBytes()
	if err != nil {
		t.Fatal(err)
	}

	const count = 3
	n, err := l.PingFrom(&l.A, lanA.Addr(), lanB.Addr(), count, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if n != count {
		t.Fatalf("ping %s from %s: %d of %d replies", lanB.Addr(), lanA.Addr(), n, count)
	}
	// An IPv4 echo of PingFrom is 20 + 8 + 18 bytes; libipsec counts the
	// inner packets.
	const echo = 20 + 8 + 18
	inA, outA, err := sa.ChildBytes()
	if err != nil {
		t.Fatal(err)
	}
	inB, outB, err := sb.ChildBytes()
	if err != nil {
		t.Fatal(err)
	}
	if outA-outA0 < count*echo || inB-inB0 < count*echo || outB-outB0 < count*echo || inA-inA0 < count*echo {
		t.Errorf("byte counters rose by A in %d out %d, B in %d out %d; want at least %d each",
			inA-inA0, outA-outA0, inB-inB0, outB-outB0, count*echo)
	}
	list, err := sa.ListSAs()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ESTABLISHED", "AES_CBC-256/HMAC_SHA2_384_192/PRF_HMAC_SHA2_384/ECP_384",
		"INSTALLED, TUNNEL-in-UDP, ESP:AES_GCM_16-256", "local  10.1.0.0/24", "remote 10.2.0.0/24"} {
		if !strings.Contains(list, want) {
			t.Errorf("A's --list-sas lacks %q", want)
		}
	}
	t.Logf("A: swanctl --list-sas after %d pings:\n%s", count, list)
	raw, _ := sa.swanctl("--list-sas", "--raw")
	t.Logf("A: swanctl --list-sas --raw:\n%s", raw)
}

// TestStrongSwanGREPeerTS runs strongSwan against itself with the
// selectors of GRE between the two gateways, 192.0.2.1/32[gre] ↔
// 192.0.2.2/32[gre], in tunnel mode, A initiating on request: the Child SA
// must be installed (allow_peer_ts), IKE must still reach the peer, and
// GRE packets A sends must go through the Child SA.
func TestStrongSwanGREPeerTS(t *testing.T) {
	l, sa, sb := twoSwans(t,
		StrongSwanConfig{LocalTS: []string{"192.0.2.1/32[gre]"}, PeerTS: []string{"192.0.2.2/32[gre]"}, AllowPeerTS: true},
		StrongSwanConfig{LocalTS: []string{"192.0.2.2/32[gre]"}, PeerTS: []string{"192.0.2.1/32[gre]"}, AllowPeerTS: true})
	if err := sa.Initiate(StrongSwanChild); err != nil {
		t.Fatal(err)
	}
	list := waitInstalled(t, sa, "A")
	waitInstalled(t, sb, "B")
	for _, want := range []string{"INSTALLED, TUNNEL-in-UDP", "local  192.0.2.1/32[gre]", "remote 192.0.2.2/32[gre]"} {
		if !strings.Contains(list, want) {
			t.Errorf("A's --list-sas lacks %q", want)
		}
	}
	t.Logf("A: swanctl --list-sas:\n%s", list)

	// GRE from A to B (the kernel has no GRE, so nothing answers): a GRE
	// header for IPv4 and a dummy inner header, through a raw socket.
	_, outA0, err := sa.ChildBytes()
	if err != nil {
		t.Fatal(err)
	}
	inB0, _, err := sb.ChildBytes()
	if err != nil {
		t.Fatal(err)
	}
	var c net.PacketConn
	err = l.Do(&l.A, func() (err error) {
		c, err = net.ListenPacket("ip4:gre", l.A.Addr4.Addr().String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	gre := make([]byte, 4+20)
	gre[2], gre[3] = 0x08, 0x00 // protocol type IPv4
	const count = 5
	for range count {
		if _, err := c.WriteTo(gre, &net.IPAddr{IP: l.B.Addr4.Addr().AsSlice()}); err != nil {
			t.Fatal(err)
		}
	}
	want := uint64(count * (20 + len(gre)))
	var outA, inB uint64
	if !WaitFor(5*time.Second, func() bool {
		if _, outA, err = sa.ChildBytes(); err != nil {
			return false
		}
		if inB, _, err = sb.ChildBytes(); err != nil {
			return false
		}
		return outA-outA0 >= want && inB-inB0 >= want
	}) {
		t.Errorf("after %d GRE packets: A out +%d, B in +%d bytes; want at least %d each (%v)", count, outA-outA0, inB-inB0, want, err)
	}
	list, _ = sb.ListSAs()
	t.Logf("B: swanctl --list-sas after %d GRE packets from A:\n%s", count, list)
}

// TestStrongSwanPeerTSRefused checks why AllowPeerTS exists: without it,
// kernel-libipsec refuses a remote selector equal to the IKE peer, so the
// responder answers TS_UNACCEPTABLE and no Child SA is installed.
func TestStrongSwanPeerTSRefused(t *testing.T) {
	_, sa, sb := twoSwans(t,
		StrongSwanConfig{LocalTS: []string{"192.0.2.1/32[gre]"}, PeerTS: []string{"192.0.2.2/32[gre]"}},
		StrongSwanConfig{LocalTS: []string{"192.0.2.2/32[gre]"}, PeerTS: []string{"192.0.2.1/32[gre]"}})
	err := sa.Initiate(StrongSwanChild)
	if err == nil {
		t.Fatal("Initiate succeeded without AllowPeerTS")
	}
	if !strings.Contains(err.Error(), "TS_UNACCEPTABLE") {
		t.Errorf("Initiate: %v\nwant TS_UNACCEPTABLE", err)
	}
	if log := sb.Log(); !strings.Contains(log, "conflicts with IKE traffic") {
		t.Errorf("B's log does not say the selector conflicts with IKE traffic:\n%s", log)
	}
	if list, err := sa.WaitInstalled(time.Second); err == nil {
		t.Errorf("A's --list-sas:\n%s\nwant no installed Child SA", list)
	} else if !strings.HasPrefix(err.Error(), "lab: charon: no Child SA installed within 1s") {
		t.Errorf("WaitInstalled: %v", err)
	}
}
