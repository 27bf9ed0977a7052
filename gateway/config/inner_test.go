package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/greipsec/greipsec/proxy"
	"github.com/greipsec/greipsec/tun"
)

// nsBase is a valid netstack tunnel keyed by IKE; the error cases edit it.
// Its line numbers are used in the expectations below.
var nsBase = `[[tunnel]]
name = "ns0"
inner = "netstack"
transport = "udp"
udp-port = 14500
peer-udp-port = 4500
local = "192.0.2.1"
peer = "192.0.2.2"
addresses = ["10.255.0.1/30"]
routes = ["10.2.0.0/24"]
dns = ["10.2.0.53"]

[tunnel.ike]
port-500 = false
psk = "` + testPSK + `"
`

// withNS appends lines after nsBase (from line 16).
func withNS(lines string) string { return nsBase + lines + "\n" }

// The passwords of the test documents; no message may show them.
const (
	testPassword  = "Pa55-w0rd-never-shown"
	testPassword2 = "another-Secret-pw"
)

// fullNetstack sets every netstack key, none with its default value.
var fullNetstack = `
[[tunnel]]
name = "ns0"
inner = "netstack"
transport = "udp"
udp-port = 14500
peer-udp-port = 4500
local = "192.0.2.1"
peer = "192.0.2.2"
addresses = ["10.255.0.1/30", "fd00:255::1/64"]
routes = ["10.2.0.0/24", "fd00:2::/64"]
dns = ["10.2.0.53", "[fd00:2::53]:5353"]

[tunnel.socks5]
listen = "0.0.0.0:1080"
users = { alice = "` + testPassword + `", bob = "` + testPassword2 + `" }
resolve = "local"
max-connections = 32
idle-timeout = "5m"

[tunnel.http-proxy]
listen = "192.0.2.1:3128"
unauthenticated = true
resolve = "none"

[[tunnel.forward]]
proto = "tcp"
direction = "local-to-far"
listen = "127.0.0.1:2222"
target = "10.2.0.10:22"
max-connections = 4

[[tunnel.forward]]
proto = "udp"
direction = "far-to-local"
listen = "10.255.0.1:53"
target = "resolver.local.example:53"
idle-timeout = "30s"

[[tunnel.forward]]
proto = "tcp"
direction = "local-to-far"
listen = "[::1]:8443"
target = "intranet.far.example:443"

[tunnel.ike]
port-500 = false
psk = "` + testPSK + `"
`

// fullNetstackFile is fullNetstack with users-file instead of users.
func fullNetstackFile(usersFile string) string {
	return edit(fullNetstack, `users = { alice = "`+testPassword+`", bob = "`+testPassword2+`" }`, fmt.Sprintf("users-file = %q", usersFile))
}

func TestParseNetstackFull(t *testing.T) {
	tu := parseOne(t, "full.toml", fullNetstack)
	if tu.Inner != InnerNetstack || tu.Dataplane.Interface != "" {
		t.Errorf("inner %v, interface %q; want netstack and none", tu.Inner, tu.Dataplane.Interface)
	}
	if tu.Dataplane.UDPPort != 14500 || tu.Dataplane.PeerUDPPort != 4500 {
		t.Errorf("ports %d -> %d", tu.Dataplane.UDPPort, tu.Dataplane.PeerUDPPort)
	}
	if !tu.IKE.StartNATT || tu.IKE.NATTPort != 14500 || tu.IKE.PeerNATTPort != 4500 {
		t.Errorf("IKE start on NAT-T %v, ports %d -> %d", tu.IKE.StartNATT, tu.IKE.NATTPort, tu.IKE.PeerNATTPort)
	}
	want := &Netstack{
		DNS: []netip.AddrPort{netip.MustParseAddrPort("10.2.0.53:53"), netip.MustParseAddrPort("[fd00:2::53]:5353")},
		SOCKS5: &Proxy{Listen: "0.0.0.0:1080", Users: map[string]string{"alice": testPassword, "bob": testPassword2},
			Resolve: ResolveLocal, Limits: proxy.Limits{MaxConns: 32, IdleTimeout: 5 * time.Minute}},
		HTTP: &Proxy{Listen: "192.0.2.1:3128", Unauthenticated: true, Resolve: ResolveNone},
		Forwards: []Forward{
			{Proto: "tcp", Direction: LocalToFar, Listen: "127.0.0.1:2222", Target: "10.2.0.10:22", Limits: proxy.Limits{MaxConns: 4}},
			{Proto: "udp", Direction: FarToLocal, Listen: "10.255.0.1:53", Target: "resolver.local.example:53", Limits: proxy.Limits{IdleTimeout: 30 * time.Second}},
			{Proto: "tcp", Direction: LocalToFar, Listen: "[::1]:8443", Target: "intranet.far.example:443"},
		},
	}
	if !reflect.DeepEqual(tu.Netstack, want) {
		t.Errorf("got\n%+v\nwant\n%+v", tu.Netstack, want)
	}
	if want := []tun.Address{{Prefix: netip.MustParsePrefix("10.255.0.1/30")}, {Prefix: netip.MustParsePrefix("fd00:255::1/64")}}; !reflect.DeepEqual(tu.Link.Addresses, want) {
		t.Errorf("addresses %v", tu.Link.Addresses)
	}

	// The same users from a file.
	dir := t.TempDir()
	file := filepath.Join(dir, "socks.users")
	os.WriteFile(file, []byte("# who may use the proxy\nalice:"+testPassword+"\n\n  bob:"+testPassword2+"  \n"), 0o600)
	tf := parseOne(t, filepath.Join(dir, "full.toml"), fullNetstackFile("socks.users"))
	if !reflect.DeepEqual(tf.Netstack.SOCKS5.Users, want.SOCKS5.Users) {
		t.Errorf("users from the file: %v", tf.Netstack.SOCKS5.Users)
	}
}

func TestParseNetstackDefaults(t *testing.T) {
	tu := parseOne(t, "ns.toml", withNS("[tunnel.socks5]\nlisten = \"127.0.0.1:1080\"\n[tunnel.http-proxy]\nlisten = \"[::1]:3128\""))
	ns := tu.Netstack
	if ns.SOCKS5.Resolve != ResolveFar || ns.HTTP.Resolve != ResolveFar || ns.SOCKS5.Users != nil || ns.SOCKS5.Limits != (proxy.Limits{}) {
		t.Errorf("defaults with dns: %+v %+v", ns.SOCKS5, ns.HTTP)
	}
	tu = parseOne(t, "ns.toml", edit(withNS("[tunnel.socks5]\nlisten = \"127.0.0.1:1080\""), `dns = ["10.2.0.53"]`+"\n", ""))
	if tu.Netstack.SOCKS5.Resolve != ResolveNone || tu.Netstack.DNS != nil {
		t.Errorf("resolve without dns: %v", tu.Netstack.SOCKS5.Resolve)
	}
	// A TUN tunnel is what it was: an interface, no netstack.
	tu = parseOne(t, "ike.toml", ikeBase)
	if tu.Inner != InnerTUN || tu.Netstack != nil || tu.Dataplane.Interface != "gre0" || tu.IKE.StartNATT ||
		tu.IKE.NATTPort != 4500 || tu.Dataplane.PeerUDPPort != 4500 {
		t.Errorf("TUN tunnel: %v %+v %q", tu.Inner, tu.Netstack, tu.Dataplane.Interface)
	}
	// Two gateways on one host: the same address, told apart by the ports.
	tu = parseOne(t, "lo.toml", edit(nsBase, `local = "192.0.2.1"`, `local = "127.0.0.1"`, `peer = "192.0.2.2"`, `peer = "127.0.0.1"`))
	if tu.Dataplane.Local != tu.Dataplane.Peer {
		t.Errorf("loopback pair: %v %v", tu.Dataplane.Local, tu.Dataplane.Peer)
	}
}

// TestNetstackErrors checks each mistake in the netstack keys and the
// ports: one error, on the right line, saying what is wrong and what is
// expected, never showing a password.
func TestNetstackErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		line int
		want []string
	}{
		{"inner unknown", edit(nsBase, `inner = "netstack"`, `inner = "gvisor"`), 3, []string{`inner: unknown inner side "gvisor" (expected "tun"`, `"netstack"`}},
		{"interface with netstack", edit(nsBase, `name = "ns0"`, `name = "ns0"`+"\ninterface = \"ns0\""), 3, []string{`interface: only used with inner = "tun"`}},
		{"netstack keys with tun", edit(nsBase, `inner = "netstack"`, `inner = "tun"`), 11, []string{`dns: only used with inner = "netstack"`}},
		{"socks5 with tun", edit(ikeBase, "\n[tunnel.ike]", "[tunnel.socks5]\nlisten = \"127.0.0.1:1080\"\n[tunnel.ike]"), 9, []string{`socks5: only used with inner = "netstack"`}},
		{"no addresses", edit(nsBase, `addresses = ["10.255.0.1/30"]`+"\n", ""), 1, []string{`addresses: missing: a netstack tunnel needs its own address`}},
		{"empty addresses", edit(nsBase, `["10.255.0.1/30"]`, `[]`), 9, []string{`addresses: must not be empty`}},
		{"dns not routed", edit(nsBase, `"10.2.0.53"`, `"10.9.0.53"`), 11, []string{`dns[0]: 10.9.0.53 is not routed into the tunnel (addresses and routes cover 10.255.0.0/30, 10.2.0.0/24)`}},
		{"dns not an address", edit(nsBase, `"10.2.0.53"`, `"ns.example"`), 11, []string{`dns[0]: "ns.example" is not a name server address`}},
		{"dns port 0", edit(nsBase, `"10.2.0.53"`, `"10.2.0.53:0"`), 11, []string{`dns[0]: "10.2.0.53:0": port 0`}},
		{"dns twice", edit(nsBase, `"10.2.0.53"`, `"10.2.0.53", "10.2.0.53:53"`), 11, []string{`dns[1]: 10.2.0.53:53 is given twice`}},
		{"socks5 no listen", withNS("[tunnel.socks5]\nresolve = \"far\""), 16, []string{`socks5.listen: missing (host:port`}},
		{"socks5 listen no host", withNS("[tunnel.socks5]\nlisten = \":1080\""), 17, []string{`socks5.listen: ":1080": the host is missing`}},
		{"socks5 listen localhost", withNS("[tunnel.socks5]\nlisten = \"localhost:1080\""), 17, []string{`write the address, 127.0.0.1 or [::1], not localhost`}},
		{"socks5 listen bad port", withNS("[tunnel.socks5]\nlisten = \"127.0.0.1:99999\""), 17, []string{`the port must be a number from 0`}},
		{"socks5 open", withNS("[tunnel.socks5]\nlisten = \"0.0.0.0:1080\""), 17, []string{
			`socks5.listen: 0.0.0.0:1080 is not a loopback address and a SOCKS5 proxy has no users: anyone who can reach it could use it into the far site`,
			"set users or users-file, listen on 127.0.0.1 or [::1], or set unauthenticated = true"}},
		{"http open", withNS("[tunnel.http-proxy]\nlisten = \"192.0.2.1:3128\""), 17, []string{`http-proxy.listen: 192.0.2.1:3128 is not a loopback address and an HTTP proxy has no users`}},
		{"resolve far without dns", edit(withNS("[tunnel.socks5]\nlisten = \"127.0.0.1:1080\"\nresolve = \"far\""), `dns = ["10.2.0.53"]`+"\n", ""), 17,
			[]string{`socks5.resolve: "far" needs the far site's name servers: set dns`}},
		{"resolve unknown", withNS("[tunnel.socks5]\nlisten = \"127.0.0.1:1080\"\nresolve = \"remote\""), 18, []string{`socks5.resolve: unknown value "remote" (expected "far"`}},
		{"users and users-file", withNS("[tunnel.socks5]\nlisten = \"127.0.0.1:1080\"\nusers = { a = \"" + testPassword + "\" }\nusers-file = \"x\""), 19,
			[]string{`socks5.users-file: users is set too; set only one of users and users-file`}},
		{"users not a table", withNS("[tunnel.socks5]\nlisten = \"127.0.0.1:1080\"\nusers = [\"alice:" + testPassword + "\"]"), 18, []string{`socks5.users: must be a table of user = "password"`}},
		{"users empty", withNS("[tunnel.socks5]\nlisten = \"127.0.0.1:1080\"\nusers = {}"), 18, []string{`socks5.users: must not be empty`}},
		{"user with colon", withNS("[tunnel.socks5]\nlisten = \"127.0.0.1:1080\"\nusers = { \"a:b\" = \"" + testPassword + "\" }"), 18, []string{`user "a:b": a name may not contain ':'`}},
		{"password not a string", withNS("[tunnel.socks5]\nlisten = \"127.0.0.1:1080\"\nusers = { alice = 12345678 }"), 18, []string{`"alice": the password must be a string in quotes`}},
		{"password too long", withNS("[tunnel.socks5]\nlisten = \"127.0.0.1:1080\"\nusers = { alice = \"" + strings.Repeat("p", 256) + "\" }"), 18, []string{`the password must be 1 to 255 bytes (RFC 1929), got 256`}},
		{"users and unauthenticated", withNS("[tunnel.socks5]\nlisten = \"0.0.0.0:1080\"\nusers = { a = \"" + testPassword + "\" }\nunauthenticated = true"), 19, []string{`socks5.unauthenticated: users are set`}},
		{"users-file missing", withNS("[tunnel.socks5]\nlisten = \"127.0.0.1:1080\"\nusers-file = \"no-such-file.users\""), 18, []string{`socks5.users-file: open `, "no such file"}},
		{"max-connections 0", withNS("[tunnel.socks5]\nlisten = \"127.0.0.1:1080\"\nmax-connections = 0"), 18, []string{`socks5.max-connections: must be between 1 and 65536, got 0`}},
		{"idle-timeout short", withNS("[tunnel.socks5]\nlisten = \"127.0.0.1:1080\"\nidle-timeout = \"10ms\""), 18, []string{`socks5.idle-timeout: must be at least 1s`}},
		{"socks5 unknown key", withNS("[tunnel.socks5]\nlisten = \"127.0.0.1:1080\"\nlistn = \"127.0.0.1:1081\""), 18, []string{`socks5.listn: unknown key (did you mean listen?)`}},
		{"forward not an array", withNS("[tunnel.forward]\nproto = \"tcp\""), 16, []string{`forward: write [[tunnel.forward]]`}},
		{"forward proto", withNS("[[tunnel.forward]]\nproto = \"sctp\"\ndirection = \"local-to-far\"\nlisten = \"127.0.0.1:1\"\ntarget = \"10.2.0.1:1\""), 17,
			[]string{`forward[0].proto: unknown protocol "sctp" (expected "tcp" or "udp")`}},
		{"forward direction", withNS("[[tunnel.forward]]\nproto = \"tcp\"\ndirection = \"out\"\nlisten = \"127.0.0.1:1\"\ntarget = \"10.2.0.1:1\""), 18,
			[]string{`forward[0].direction: unknown direction "out" (expected "local-to-far"`}},
		{"forward no target", withNS("[[tunnel.forward]]\nproto = \"tcp\"\ndirection = \"local-to-far\"\nlisten = \"127.0.0.1:1\""), 16,
			[]string{`forward[0].target: missing (host:port`}},
		{"forward target not routed", withNS("[[tunnel.forward]]\nproto = \"tcp\"\ndirection = \"local-to-far\"\nlisten = \"127.0.0.1:1\"\ntarget = \"10.3.0.1:22\""), 20,
			[]string{`forward[0].target: "10.3.0.1:22": 10.3.0.1 is not routed into the tunnel`}},
		{"forward target port", withNS("[[tunnel.forward]]\nproto = \"tcp\"\ndirection = \"local-to-far\"\nlisten = \"127.0.0.1:1\"\ntarget = \"10.2.0.1:0\""), 20,
			[]string{`forward[0].target: "10.2.0.1:0": the port must be a number from 1 to 65535`}},
		{"forward name without dns", edit(withNS("[[tunnel.forward]]\nproto = \"tcp\"\ndirection = \"local-to-far\"\nlisten = \"127.0.0.1:1\"\ntarget = \"db.far.example:5432\""), `dns = ["10.2.0.53"]`+"\n", ""), 19,
			[]string{`a host name on the far site needs its name servers`}},
		{"far-to-local listen not ours", withNS("[[tunnel.forward]]\nproto = \"tcp\"\ndirection = \"far-to-local\"\nlisten = \"10.255.0.2:80\"\ntarget = \"127.0.0.1:80\""), 19,
			[]string{`forward[0].listen: "10.255.0.2:80": 10.255.0.2 is not an address of the tunnel (addresses: 10.255.0.1)`}},
		{"two listeners on one port", withNS("[tunnel.socks5]\nlisten = \"127.0.0.1:1080\"\n[[tunnel.forward]]\nproto = \"tcp\"\ndirection = \"local-to-far\"\nlisten = \"127.0.0.1:1080\"\ntarget = \"10.2.0.1:1\""), 18,
			[]string{`forward[0]: listens on 127.0.0.1:1080, as socks5 does already`}},
		{"two tunnels on one port", withNS("[tunnel.socks5]\nlisten = \"127.0.0.1:1080\"\n") + edit(edit(nsBase, `name = "ns0"`, `name = "ns1"`, `peer = "192.0.2.2"`, `peer = "192.0.2.3"`, `udp-port = 14500`, `udp-port = 14501`),
			`routes = ["10.2.0.0/24"]`, `routes = ["10.3.0.0/24"]`, `dns = ["10.2.0.53"]`, `dns = ["10.3.0.53"]`) + "[tunnel.socks5]\nlisten = \"127.0.0.1:1080\"\n", 34,
			[]string{`tunnel "ns1": socks5: listens on 127.0.0.1:1080, as tunnel "ns0" (line 2) does already`}},
		{"peer-udp-port with esp", edit(ikeBase, `local = "192.0.2.1"`, "peer-udp-port = 4501\nlocal = \"192.0.2.1\""), 5, []string{`peer-udp-port: only used with transport = "udp"`}},
		{"udp-port 500", edit(nsBase, `udp-port = 14500`, `udp-port = 500`), 5, []string{`udp-port: 500 is IKE's own port`}},
		{"port-500 not a boolean", edit(nsBase, `port-500 = false`, `port-500 = "no"`), 14, []string{`ike.port-500: must be true or false`}},
		{"same address, same ports", edit(nsBase, `local = "192.0.2.1"`, `local = "127.0.0.1"`, `peer = "192.0.2.2"`, `peer = "127.0.0.1"`, `peer-udp-port = 4500`, `peer-udp-port = 14500`), 8,
			[]string{`peer: 127.0.0.1 is the same as local`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("test.toml", []byte(tt.doc))
			if err == nil {
				t.Fatalf("no error; config %+v", cfg)
			}
			msg := err.Error()
			t.Log(msg)
			if strings.Contains(msg, "\n") {
				t.Fatalf("more than one error for one mistake:\n%s", msg)
			}
			var e *Error
			if !errors.As(err, &e) || e.Line != tt.line {
				t.Errorf("error at line %d, want %d", e.Line, tt.line)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			for _, pw := range []string{testPassword, testPassword2, "p" + strings.Repeat("p", 20)} {
				if strings.Contains(msg, pw) {
					t.Errorf("error %q shows a password", msg)
				}
			}
			checkNoSecret(t, msg)
		})
	}
}

// TestUsersFile: the lines of a users-file, and its mistakes, which name
// the line but never a password.
func TestUsersFile(t *testing.T) {
	users, err := parseUsersFile([]byte("# comment\n\nalice:" + testPassword + "\r\nbob:pw:with:colons\n"))
	if err != nil || !reflect.DeepEqual(users, map[string]string{"alice": testPassword, "bob": "pw:with:colons"}) {
		t.Errorf("users %v, %v", users, err)
	}
	for _, tc := range []struct{ text, want string }{
		{"alice " + testPassword + "\n", "line 1: expected user:password"},
		{"alice:" + testPassword + "\nalice:" + testPassword2 + "\n", `line 2: user "alice" is given twice`},
		{":" + testPassword + "\n", "line 1: user names must be 1 to 255 bytes"},
		{"alice:\n", `line 1: user "alice": the password must be 1 to 255 bytes`},
		{"# nobody\n", "no user:password lines"},
	} {
		_, err := parseUsersFile([]byte(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.text, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), testPassword) || strings.Contains(err.Error(), testPassword2) {
			t.Errorf("%q: error %q shows a password", tc.text, err)
		}
	}
}

// FuzzUsersFile: any file gives users or an error, never a panic, and no
// error shows a password of a well-formed line.
func FuzzUsersFile(f *testing.F) {
	for _, s := range []string{
		"alice:" + testPassword + "\n",
		"# c\n\nalice:a\nbob:b:c\n",
		"alice\n", ":x\n", "a:\n", "a:b\na:c\n",
		"\xff\xfe:\x00\n", strings.Repeat("u", 300) + ":p\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		users, err := parseUsersFile(b)
		if err != nil {
			if users != nil {
				t.Fatal("users with an error")
			}
			return
		}
		if len(users) == 0 {
			t.Fatal("no users and no error")
		}
		for name, pw := range users {
			if checkUser(name, pw) != nil {
				t.Fatalf("user %q accepted with a bad name or password", name)
			}
		}
	})
}

// FuzzDNSServer: parseDNSServer returns an address with a port, or an
// error, never a panic.
func FuzzDNSServer(f *testing.F) {
	for _, s := range []string{"10.2.0.53", "10.2.0.53:5353", "[fd00::53]:53", "fd00::53", "::", "10.2.0.53:0", "x", "[::1%eth0]:53"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ap, err := parseDNSServer(s)
		if err == nil && (!ap.IsValid() || ap.Port() == 0 || ap.Addr().Zone() != "") {
			t.Fatalf("%q: %v accepted", s, ap)
		}
	})
}

// TestExamplesNetstack: the netstack examples parse, and each pair fits
// together: the ports crossed, IKE started on them on both sides, the
// same key, the identities crossed.
func TestExamplesNetstack(t *testing.T) {
	for _, pair := range [][2]string{{"netstack-a.toml", "netstack-b.toml"}, {"loopback-a.toml", "loopback-b.toml"}} {
		var tu [2]Tunnel
		for i, name := range pair {
			cfg, err := Load(filepath.Join(examplesDir, name))
			if err != nil {
				t.Fatal(err)
			}
			tu[i] = cfg.Tunnels[0]
		}
		a, b := tu[0], tu[1]
		if a.Inner != InnerNetstack || a.Netstack == nil {
			t.Errorf("%s: inner %v", pair[0], a.Inner)
		}
		if a.Dataplane.UDPPort != b.Dataplane.PeerUDPPort || b.Dataplane.UDPPort != a.Dataplane.PeerUDPPort || a.Dataplane.UDPPort < 1024 {
			t.Errorf("%s: ports %d -> %d, %d -> %d", pair, a.Dataplane.UDPPort, a.Dataplane.PeerUDPPort, b.Dataplane.UDPPort, b.Dataplane.PeerUDPPort)
		}
		if !a.IKE.StartNATT || !b.IKE.StartNATT || string(a.IKE.PSK) != string(b.IKE.PSK) ||
			!reflect.DeepEqual(a.IKE.LocalID, b.IKE.PeerID) || !reflect.DeepEqual(a.IKE.PeerID, b.IKE.LocalID) {
			t.Errorf("%s: IKE does not pair up", pair)
		}
		if a.Dataplane.Local != b.Dataplane.Peer || a.Dataplane.Peer != b.Dataplane.Local {
			t.Errorf("%s: addresses do not pair up", pair)
		}
	}
}
