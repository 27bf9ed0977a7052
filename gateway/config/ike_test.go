package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/ikev2"
)

// testPSK is the pre-shared key of the test documents; no message may
// show it, or any long part of it.
const (
	testPSK    = "sesame-Q7w2x9-open"
	testPSKEnv = "GREIPSEC_CONFIG_TEST_PSK"
)

// ikeBase is a valid tunnel keyed by IKE; the error cases edit it. Its line
// numbers are used in the expectations below.
var ikeBase = `[[tunnel]]
name = "gre0"
mode = "gre-transport"
transport = "esp"
local = "192.0.2.1"
peer = "192.0.2.2"
addresses = ["10.255.0.1/30"]
routes = ["10.2.0.0/24"]

[tunnel.ike]
psk = "` + testPSK + `"
`

// routeBase is ikeBase in route mode.
var routeBase = edit(ikeBase, `"gre-transport"`, `"route"`)

// withIKE adds lines to ikeBase's [tunnel.ike], from line 12.
func withIKE(lines string) string { return ikeBase + lines + "\n" }

// withRoute adds lines to routeBase's [tunnel.ike], from line 12.
func withRoute(lines string) string { return routeBase + lines + "\n" }

// secretParts are pieces of the test keys that no message may contain.
var secretParts = []string{testPSK[:6], testPSK[7:13], testPSK[12:], "file-psk", "deadbeefcafe", "123456789"}

func checkNoSecret(t *testing.T, msg string) {
	t.Helper()
	for _, s := range secretParts {
		if strings.Contains(msg, s) {
			t.Errorf("message %q shows the pre-shared key (%q)", msg, s)
		}
	}
}

// TestIKEErrors checks each mistake in [tunnel.ike] and in the choice of
// keying: exactly one error, on the right line, saying what is wrong and
// what is expected, and never showing the pre-shared key.
func TestIKEErrors(t *testing.T) {
	t.Setenv(testPSKEnv+"_EMPTY", "")
	os.Unsetenv(testPSKEnv + "_UNSET")
	dir := t.TempDir()
	emptyFile := filepath.Join(dir, "empty.psk")
	if err := os.WriteFile(emptyFile, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badHexFile := filepath.Join(dir, "badhex.psk")
	if err := os.WriteFile(badHexFile, []byte("0xdeadbeefcafeZZ\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ikeTable := "\n[tunnel.ike]\npsk = \"" + testPSK + "\"\n"
	twoIKE := ikeBase + edit(ikeBase, `name = "gre0"`, `name = "gre1"`, `transport = "esp"`, `transport = "udp"`,
		`["10.255.0.1/30"]`, `["10.255.1.1/30"]`, `["10.2.0.0/24"]`, `["10.3.0.0/24"]`)

	tests := []struct {
		name string
		doc  string
		line int
		want []string
	}{
		// Keying.
		{"ike and sa", base + ikeTable, 10, []string{`tunnel "gre0": sa: a tunnel is keyed either by IKE ([tunnel.ike]) or by hand`, "not both"}},
		{"neither", edit(ikeBase, ikeTable[1:], ""), 1, []string{`tunnel "gre0": ike: missing`, "[tunnel.ike]", "[tunnel.sa.out] and [tunnel.sa.in]"}},
		{"ike not a table", edit(ikeBase, ikeTable[1:], "ike = true\n"), 10, []string{"ike: must be a table ([tunnel.ike] or ike = { ... })"}},
		{"unknown key", withIKE(`lifetime-byte = "1G"`), 12, []string{"ike.lifetime-byte: unknown key (did you mean lifetime-bytes?)"}},
		{"two IKE tunnels between the same gateways", twoIKE, 17,
			[]string{`tunnel "gre1": peer: tunnel "gre0" (line 6) already runs IKE between 192.0.2.1 and 192.0.2.2`}},

		// Role and identities.
		{"role", withIKE(`role = "initiator"`), 12, []string{`ike.role: unknown role "initiator" (expected active`, "or passive"}},
		{"role type", withIKE("role = 1"), 12, []string{"ike.role: must be a string, got the integer 1"}},
		{"identity", withIKE(`local-id = "gwa"`), 12, []string{`ike.local-id: "gwa" is not an identity (expected an IP address, "fqdn:name"`}},
		{"identity type", withIKE(`peer-id = "asn1dn:C=CH, O=Example"`), 12, []string{`ike.peer-id: "asn1dn:C=CH, O=Example": unknown identity type "asn1dn"`}},
		{"fqdn with @", withIKE(`peer-id = "fqdn:gw@example.net"`), 12, []string{`a domain name has no '@'; for an e-mail address write "user:gw@example.net"`}},
		{"e-mail without name", withIKE(`peer-id = "user:@example.net"`), 12, []string{"ike.peer-id:", "needs a name before and a domain after the '@'"}},
		{"e-mail without domain", withIKE(`peer-id = "gw@"`), 12, []string{"ike.peer-id:", "needs a name before and a domain after the '@'"}},
		{"identity with space", withIKE(`local-id = "fqdn:gw a.example.net"`), 12, []string{"only printable ASCII characters without spaces"}},
		{"empty fqdn", withIKE(`local-id = "fqdn:"`), 12, []string{`ike.local-id: "fqdn:": the identity is empty`}},
		{"key id odd hex", withIKE(`local-id = "keyid:0x123"`), 12, []string{`ike.local-id: "keyid:0x123": a key ID after 0x (or #) must be 2 to 510 hex digits`}},
		{"key id not hex", withIKE(`local-id = "keyid:#zz"`), 12, []string{"a key ID after 0x (or #) must be"}},
		{"ipv4 identity of IPv6", withIKE(`local-id = "ipv4:2001:db8::1"`), 12, []string{`"2001:db8::1" is not an IPv4 address`}},
		{"identity too long", withIKE(`local-id = "fqdn:` + strings.Repeat("a.", 128) + `"`), 12, []string{"at most 255 characters"}},

		// The pre-shared key.
		{"no psk", edit(ikeBase, `psk = "`+testPSK+`"`+"\n", `role = "active"`+"\n"), 10, []string{"ike.psk: missing", "psk, psk-file or psk-env"}},
		{"psk twice", withIKE(`psk-env = "` + testPSKEnv + `"`), 12, []string{"ike.psk-env: psk is set too; set only one of psk, psk-file and psk-env"}},
		{"psk integer", edit(ikeBase, `"`+testPSK+`"`, "123456789"), 11, []string{"ike.psk: must be a string in quotes"}},
		{"psk empty", edit(ikeBase, `"`+testPSK+`"`, `""`), 11, []string{"ike.psk: the pre-shared key is empty"}},
		{"psk bad hex", edit(ikeBase, `"`+testPSK+`"`, `"0xdeadbeefcafe`+testPSK+`"`), 11, []string{"ike.psk: the pre-shared key starts with 0x, so it must be hex digits", "digit 13 is not one"}},
		{"psk odd hex", edit(ikeBase, `"`+testPSK+`"`, `"0xdeadbeefcafe1"`), 11, []string{"an even number", "there are 13"}},
		{"psk bare word", edit(ikeBase, `"`+testPSK+`"`, testPSK), 11, []string{"TOML syntax: the value of psk is not valid TOML (not shown"}},
		{"psk-file missing", edit(ikeBase, `psk = "`+testPSK+`"`, `psk-file = "/nonexistent/greipsec.psk"`), 11,
			[]string{"ike.psk-file: open /nonexistent/greipsec.psk: no such file or directory"}},
		{"psk-file relative", edit(ikeBase, `psk = "`+testPSK+`"`, `psk-file = "no-such.psk"`), 11,
			[]string{"ike.psk-file: open no-such.psk: no such file or directory"}},
		{"psk-file endless", edit(ikeBase, `psk = "`+testPSK+`"`, `psk-file = "/dev/zero"`), 11,
			[]string{"ike.psk-file: /dev/zero: larger than 4096 bytes; the file must hold only the pre-shared key"}},
		{"psk-file a directory", edit(ikeBase, `psk = "`+testPSK+`"`, `psk-file = "`+dir+`"`), 11,
			[]string{"ike.psk-file: read " + dir + ": is a directory"}},
		{"psk-file empty path", edit(ikeBase, `psk = "`+testPSK+`"`, `psk-file = ""`), 11, []string{"ike.psk-file: must not be empty"}},
		{"psk-file empty", edit(ikeBase, `psk = "`+testPSK+`"`, `psk-file = "`+emptyFile+`"`), 11, []string{"ike.psk-file: the pre-shared key is empty"}},
		{"psk-file bad hex", edit(ikeBase, `psk = "`+testPSK+`"`, `psk-file = "`+badHexFile+`"`), 11, []string{"ike.psk-file: the pre-shared key starts with 0x", "digit 13"}},
		{"psk-env unset", edit(ikeBase, `psk = "`+testPSK+`"`, `psk-env = "`+testPSKEnv+`_UNSET"`), 11,
			[]string{"ike.psk-env: environment variable " + testPSKEnv + "_UNSET is not set"}},
		{"psk-env empty", edit(ikeBase, `psk = "`+testPSK+`"`, `psk-env = "`+testPSKEnv+`_EMPTY"`), 11, []string{"ike.psk-env: the pre-shared key is empty"}},
		{"psk-env bad name", edit(ikeBase, `psk = "`+testPSK+`"`, `psk-env = "A=B"`), 11, []string{`ike.psk-env: "A=B" is not the name of an environment variable`}},

		// Proposals.
		{"ike-proposals", withIKE(`ike-proposals = "aes256-md5-ecp384"`), 12, []string{"ike.ike-proposals: ", "md5"}},
		{"ike-proposals empty", withIKE(`ike-proposals = ""`), 12, []string{"ike.ike-proposals: "}},
		{"ike-proposals type", withIKE(`ike-proposals = ["aes256-sha384-ecp384"]`), 12, []string{"ike.ike-proposals: must be a string, got an array"}},
		{"esp-proposals", withIKE(`esp-proposals = "3des-md5"`), 12, []string{"ike.esp-proposals: ", "3des"}},

		// Mode and selectors.
		{"tunnel-fallback in route mode", withRoute("tunnel-fallback = true"), 12, []string{`ike.tunnel-fallback: only used with mode "gre-transport"; mode "route" always negotiates tunnel mode`}},
		{"tunnel-fallback in gre-tunnel mode", edit(withIKE("tunnel-fallback = true"), `"gre-transport"`, `"gre-tunnel"`), 12, []string{`ike.tunnel-fallback: only used with mode "gre-transport"`}},
		{"local-ts in gre mode", withIKE(`local-ts = ["10.1.0.0/24"]`), 12,
			[]string{`ike.local-ts: only used with mode "route"; mode "gre-transport" carries only GRE between the two gateways (192.0.2.1 ↔ 192.0.2.2, IP protocol 47)`}},
		{"peer-ts in gre mode", withIKE(`peer-ts = ["10.2.0.0/24"]`), 12, []string{`ike.peer-ts: only used with mode "route"`}},
		{"narrowing in gre mode", withIKE("narrowing = true"), 12, []string{`ike.narrowing: only used with mode "route"`}},
		{"local-ts prefix", withRoute(`local-ts = ["10.1.0.0/33"]`), 12, []string{`ike.local-ts[0]: "10.1.0.0/33" is not a prefix`}},
		{"local-ts host bits", withRoute(`local-ts = ["10.1.0.1/24"]`), 12, []string{`ike.local-ts[0]: "10.1.0.1/24" has bits set past the prefix length`}},
		{"local-ts empty", withRoute(`local-ts = []`), 12, []string{"ike.local-ts: must not be empty; leave it out to cover every address"}},
		{"peer-ts duplicate", withRoute(`peer-ts = ["10.2.0.0/24", "10.2.0.0/24"]`), 12, []string{"ike.peer-ts[1]: 10.2.0.0/24 is already peer-ts[0]"}},
		{"selector families", withRoute(`local-ts = ["10.1.0.0/24"]` + "\n" + `peer-ts = ["10.2.0.0/24", "fd00:2::/64"]`), 13,
			[]string{"ike.peer-ts: covers IPv4 and IPv6 but local-ts covers only IPv4; both need the same address families"}},
		{"route outside peer-ts", withRoute(`peer-ts = ["10.3.0.0/24"]`), 8,
			[]string{"routes[0]: 10.2.0.0/24 is not inside ike.peer-ts (10.3.0.0/24): packets routed there could not be sent"}},
		{"route outside the default peer-ts", edit(withRoute(`local-ts = ["10.1.0.0/24"]`), `["10.2.0.0/24"]`, `["10.2.0.0/24", "fd00:2::/64"]`), 8,
			[]string{"routes[1]: fd00:2::/64 is not inside ike.peer-ts (0.0.0.0/0)"}},

		// Durations, counts and switches.
		{"dpd not a duration", withIKE(`dpd = "30"`), 12, []string{`ike.dpd: "30" is not a duration (expected e.g. "30s"`}},
		{"dpd integer", withIKE("dpd = 30"), 12, []string{`ike.dpd: must be a duration in quotes such as "30s", got the integer 30; for 30 seconds write dpd = "30s"`}},
		{"dpd too short", withIKE(`dpd = "500ms"`), 12, []string{`ike.dpd: must be "0s" (off) or at least 1s, got 500ms`}},
		{"dpd negative", withIKE(`dpd = "-1s"`), 12, []string{`ike.dpd: must be "0s" (off) or at least 1s, got -1s`}},
		{"retransmit-timeout short", withIKE(`retransmit-timeout = "10ms"`), 12, []string{"ike.retransmit-timeout: must be at least 100ms, got 10ms"}},
		{"retransmit-timeout long", withIKE(`retransmit-timeout = "2m"`), 12, []string{"ike.retransmit-timeout: must be at most 1m, got 2m"}},
		{"retransmit-tries", withIKE("retransmit-tries = 0"), 12, []string{"ike.retransmit-tries: must be between 1 and 20, got 0"}},
		{"ike-lifetime", withIKE(`ike-lifetime = "1s"`), 12, []string{"ike.ike-lifetime: must be at least 10s, got 1s"}},
		{"ike-lifetime zero", withIKE(`ike-lifetime = "0s"`), 12, []string{"ike.ike-lifetime: must be at least 10s, got 0s"}},
		{"lifetime", withIKE(`lifetime = "1 hour"`), 12, []string{`ike.lifetime: "1 hour" is not a duration (expected e.g. "1h"; units h, m, s, ms)`}},
		{"lifetime-bytes", withIKE(`lifetime-bytes = "5X"`), 12, []string{`ike.lifetime-bytes: must be an integer or a size such as "500M"`}},
		{"lifetime-bytes negative", withIKE("lifetime-bytes = -1"), 12, []string{"ike.lifetime-bytes: must be 0 or more, got -1"}},
		{"nat-keepalive", withIKE(`nat-keepalive = "0s"`), 12, []string{"ike.nat-keepalive: must be at least 1s, got 0s"}},
		{"fragmentation", withIKE(`fragmentation = "yes"`), 12, []string{"ike.fragmentation: must be true or false, got a string"}},
		{"encap", withIKE("encap = 1"), 12, []string{"ike.encap: must be true or false, got the integer 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("test.toml", []byte(tt.doc))
			if err == nil {
				t.Fatalf("no error; config %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("a Config with the error")
			}
			msg := err.Error()
			t.Log(msg)
			if strings.Contains(msg, "\n") {
				t.Fatalf("more than one error for one mistake:\n%s", msg)
			}
			if prefix := fmt.Sprintf("test.toml:%d:", tt.line); !strings.HasPrefix(msg, prefix) {
				t.Errorf("error %q does not start with %q", msg, prefix)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, "ikev2:") {
				t.Errorf("error %q repeats the package name of ikev2", msg)
			}
			checkNoSecret(t, msg)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not an *Error", err)
			}
			if e.Line != tt.line {
				t.Errorf("Error at line %d, want %d", e.Line, tt.line)
			}
		})
	}
}

// TestPSKSyntaxErrorInline checks that a syntax error in a psk inside an
// inline table does not show it either.
func TestPSKSyntaxErrorInline(t *testing.T) {
	doc := edit(ikeBase, "\n[tunnel.ike]\npsk = \""+testPSK+"\"\n", "\nike = { role = \"active\", psk = "+testPSK+" }\n")
	_, err := Parse("test.toml", []byte(doc))
	if err == nil {
		t.Fatal("no error")
	}
	if !strings.Contains(err.Error(), "not shown") {
		t.Errorf("error %q: want the redacted syntax error", err)
	}
	checkNoSecret(t, err.Error())
}

// fullIKE sets every key of [tunnel.ike] that a gre-transport tunnel
// takes, none with its default value, and the tunnel's other keys too.
var fullIKE = `
[[tunnel]]
name = "to-b"
inner = "tun"
interface = "gre7"
mode = "gre-transport"
transport = "udp"
udp-port = 4501
peer-udp-port = 14500
local = "2001:db8::1"
peer = "2001:db8::2"
path-mtu = 1480
mtu = 1300
mss-clamp = false
pmtud = true
fragmentation = "before-encryption"
addresses = ["10.255.0.1 peer 10.255.0.2", "fd00:255::1/64"]
routes = ["10.2.0.0/24", "fd00::/8"]

[tunnel.gre]
key = 1001
sequence = true
checksum = true
keepalive = "10s"
keepalive-retries = 5

[tunnel.ike]
role = "passive"
port-500 = false
local-id = "fqdn:gw-a.example.net"
peer-id = "user:admin@example.net"
psk = "0xdeadbeefcafe0102"
ike-proposals = "aes256gcm16-prfsha384-ecp384, aes128-sha256-modp2048, aes128-sha1-modp1024"
esp-proposals = "chacha20poly1305-x25519-esn, aes128gcm16, aes256-sha512-modp3072"
weak-algorithms = true
tunnel-fallback = true
encap = true
dpd = "0s"
retransmit-timeout = "500ms"
retransmit-tries = 3
ike-lifetime = "8h"
lifetime = "15m"
lifetime-bytes = "500M"
fragmentation = false
nat-keepalive = "25s"
`

// fullIKERoute sets the keys that only route mode takes, and reads the
// key from a file.
var fullIKERoute = `
[[tunnel]]
name = "rt"
mode = "route"
local = "192.0.2.1"
peer = "192.0.2.2"
addresses = ["10.1.0.1/24"]
routes = ["10.2.0.0/24", "10.9.0.0/16", "fd00:2::/64"]
link-follows-ike = true

[tunnel.ike]
psk-file = "testdata/psk.txt"
local-id = "keyid:0x0a0b0c"
peer-id = "keyid:gw-b"
local-ts = ["10.1.0.0/24", "fd00:1::/64"]
peer-ts = ["10.2.0.0/24", "10.9.0.0/16", "fd00:2::/64"]
narrowing = true
`

// ikeEnvDoc reads the key from the environment variable testPSKEnv.
var ikeEnvDoc = `
[[tunnel]]
name = "env"
mode = "gre-tunnel"
local = "192.0.2.1"
peer = "192.0.2.2"
[tunnel.ike]
psk-env = "` + testPSKEnv + `"
`

func prefixes(s ...string) []netip.Prefix {
	var list []netip.Prefix
	for _, p := range s {
		list = append(list, netip.MustParsePrefix(p))
	}
	return list
}

func selectors(proto uint8, s ...string) []ikev2.Selector {
	var list []ikev2.Selector
	for _, p := range prefixes(s...) {
		list = append(list, ikev2.Selector{Prefix: p, Protocol: proto})
	}
	return list
}

func parseOne(t *testing.T, path, doc string) Tunnel {
	t.Helper()
	cfg, err := Parse(path, []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Tunnels) != 1 {
		t.Fatalf("%d tunnels, want 1", len(cfg.Tunnels))
	}
	return cfg.Tunnels[0]
}

func checkIKE(t *testing.T, got, want *ikev2.Config) {
	t.Helper()
	if got == nil {
		t.Fatal("no IKE config")
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%#v\nwant\n%#v", *got, *want)
	}
}

func TestParseIKEFull(t *testing.T) {
	tu := parseOne(t, "full.toml", fullIKE)
	if tu.Dataplane.Outbound != nil || tu.Dataplane.Inbound != nil {
		t.Errorf("manual SAs in a tunnel keyed by IKE")
	}
	// The MTU fits the largest ESP proposal: AES-CBC with HMAC-SHA-512.
	if n := len(tu.Dataplane.ESPTransforms); n != 3 || dataplane.OverheadOf(&tu.Dataplane).ESP.Integrity != esp.HMACSHA512_256 {
		t.Errorf("ESP transforms %v", tu.Dataplane.ESPTransforms)
	}
	if tu.Dataplane.Mode != dataplane.ModeGRETransport || tu.Dataplane.Transport != dataplane.TransportUDP || tu.Dataplane.UDPPort != 4501 || tu.Dataplane.PeerUDPPort != 14500 ||
		!tu.Dataplane.NATTraversal || !tu.Dataplane.TunnelFallback || tu.Dataplane.NoPathMTUDiscovery || tu.Dataplane.Fragmentation != dataplane.FragmentBeforeEncryption {
		t.Errorf("dataplane %+v", tu.Dataplane)
	}
	checkIKE(t, tu.IKE, &ikev2.Config{
		Name:      "to-b",
		Role:      ikev2.RolePassive,
		LocalAddr: netip.MustParseAddr("2001:db8::1"),
		PeerAddr:  netip.MustParseAddr("2001:db8::2"),
		LocalID:   ikev2.Identity{IDType: ikev2.IDFQDN, Data: []byte("gw-a.example.net")},
		PeerID:    ikev2.Identity{IDType: ikev2.IDRFC822Addr, Data: []byte("admin@example.net")},
		PSK:       []byte{0xde, 0xad, 0xbe, 0xef, 0xca, 0xfe, 0x01, 0x02},
		IKEProposals: []ikev2.IKEProposal{
			{Encr: uint16(ikev2.EncrAESGCM16), KeyBits: 256, PRF: uint16(ikev2.PRFHMACSHA2_384), DH: uint16(ikev2.DHECP384)},
			{Encr: uint16(ikev2.EncrAESCBC), KeyBits: 128, Integ: uint16(ikev2.IntegHMACSHA2_256_128), PRF: uint16(ikev2.PRFHMACSHA2_256), DH: uint16(ikev2.DHModP2048)},
			{Encr: uint16(ikev2.EncrAESCBC), KeyBits: 128, Integ: uint16(ikev2.IntegHMACSHA1_96), PRF: uint16(ikev2.PRFHMACSHA1), DH: uint16(ikev2.DHModP1024)},
		},
		ESPProposals: []ikev2.ESPProposal{
			{Encr: uint16(ikev2.EncrChaCha20Poly1305), DH: uint16(ikev2.DHCurve25519), ESN: true},
			{Encr: uint16(ikev2.EncrAESGCM16), KeyBits: 128},
			{Encr: uint16(ikev2.EncrAESCBC), KeyBits: 256, Integ: uint16(ikev2.IntegHMACSHA2_512_256), DH: uint16(ikev2.DHModP3072)},
		},
		Mode:              ikev2.ModeTransportOrTunnel,
		LocalTS:           selectors(47, "2001:db8::1/128"),
		PeerTS:            selectors(47, "2001:db8::2/128"),
		ForceEncap:        true,
		NATTPort:          4501,
		PeerNATTPort:      14500,
		StartNATT:         true,
		NATKeepalive:      25 * time.Second,
		IKELifetime:       8 * time.Hour,
		ChildLifetime:     15 * time.Minute,
		ChildBytes:        500 << 20,
		DPD:               0,
		RetransmitTimeout: 500 * time.Millisecond,
		RetransmitTries:   3,
		Fragmentation:     false,
	})
}

func TestParseIKERoute(t *testing.T) {
	tu := parseOne(t, "route.toml", fullIKERoute)
	want := ikeDefaults("rt", "192.0.2.1", "192.0.2.2")
	want.PSK = []byte("file-psk-for-tests")
	want.LocalID = ikev2.Identity{IDType: ikev2.IDKeyID, Data: []byte{0x0a, 0x0b, 0x0c}}
	want.PeerID = ikev2.Identity{IDType: ikev2.IDKeyID, Data: []byte("gw-b")}
	want.Mode = ikev2.ModeTunnel
	want.LocalTS = selectors(0, "10.1.0.0/24", "fd00:1::/64")
	want.PeerTS = selectors(0, "10.2.0.0/24", "10.9.0.0/16", "fd00:2::/64")
	want.AllowNarrowing = true
	checkIKE(t, tu.IKE, want)
}

// ikeDefaults is the ikev2.Config of a gre-transport tunnel that sets
// nothing in [tunnel.ike] but the key: the defaults site-a.toml documents.
func ikeDefaults(name, local, peer string) *ikev2.Config {
	l, p := netip.MustParseAddr(local), netip.MustParseAddr(peer)
	return &ikev2.Config{
		Name:      name,
		Role:      ikev2.RoleActive,
		LocalAddr: l,
		PeerAddr:  p,
		LocalID:   ikev2.IdentityAddr(l),
		PeerID:    ikev2.IdentityAddr(p),
		PSK:       []byte(testPSK),
		// "aes256-sha384-ecp384" and "aes256gcm16-ecp384".
		IKEProposals: []ikev2.IKEProposal{{Encr: uint16(ikev2.EncrAESCBC), KeyBits: 256,
			Integ: uint16(ikev2.IntegHMACSHA2_384_192), PRF: uint16(ikev2.PRFHMACSHA2_384), DH: uint16(ikev2.DHECP384)}},
		ESPProposals:      []ikev2.ESPProposal{{Encr: uint16(ikev2.EncrAESGCM16), KeyBits: 256, DH: uint16(ikev2.DHECP384)}},
		Mode:              ikev2.ModeTransport,
		LocalTS:           selectors(47, local+"/32"),
		PeerTS:            selectors(47, peer+"/32"),
		NATTPort:          4500,
		PeerNATTPort:      4500,
		NATKeepalive:      20 * time.Second,
		IKELifetime:       24 * time.Hour,
		ChildLifetime:     time.Hour,
		DPD:               30 * time.Second,
		RetransmitTimeout: 2 * time.Second,
		RetransmitTries:   5,
		Fragmentation:     true,
	}
}

func TestParseIKEDefaults(t *testing.T) {
	tu := parseOne(t, "min.toml", ikeBase)
	checkIKE(t, tu.IKE, ikeDefaults("gre0", "192.0.2.1", "192.0.2.2"))
	if !tu.Dataplane.NATTraversal || tu.Dataplane.TunnelFallback || tu.Dataplane.Outbound != nil || tu.Dataplane.Inbound != nil {
		t.Errorf("dataplane %+v", tu.Dataplane)
	}

	// gre-tunnel: tunnel mode, the same selectors.
	tu = parseOne(t, "min.toml", edit(ikeBase, `"gre-transport"`, `"gre-tunnel"`))
	want := ikeDefaults("gre0", "192.0.2.1", "192.0.2.2")
	want.Mode = ikev2.ModeTunnel
	checkIKE(t, tu.IKE, want)

	// Route mode: everything ↔ everything, any protocol.
	tu = parseOne(t, "min.toml", routeBase)
	want.LocalTS = selectors(0, "0.0.0.0/0", "::/0")
	want.PeerTS = selectors(0, "0.0.0.0/0", "::/0")
	checkIKE(t, tu.IKE, want)

	// One list set: the other covers everything of its families.
	tu = parseOne(t, "min.toml", withRoute(`peer-ts = ["10.2.0.0/16"]`))
	want.LocalTS = selectors(0, "0.0.0.0/0")
	want.PeerTS = selectors(0, "10.2.0.0/16")
	checkIKE(t, tu.IKE, want)
	tu = parseOne(t, "min.toml", edit(withRoute(`local-ts = ["fd00:1::/64"]`+"\n"+`role = "passive"`), `["10.2.0.0/24"]`, `["fd00:2::/64"]`))
	want.Role = ikev2.RolePassive
	want.LocalTS = selectors(0, "fd00:1::/64")
	want.PeerTS = selectors(0, "::/0")
	checkIKE(t, tu.IKE, want)

	// IPv6 gateways: 128-bit selectors.
	tu = parseOne(t, "min.toml", edit(ikeBase, `"192.0.2.1"`, `"2001:db8::a"`, `"192.0.2.2"`, `"2001:db8::b"`))
	want = ikeDefaults("gre0", "2001:db8::a", "2001:db8::b")
	want.LocalTS = selectors(47, "2001:db8::a/128")
	want.PeerTS = selectors(47, "2001:db8::b/128")
	checkIKE(t, tu.IKE, want)
}

func TestPSKSources(t *testing.T) {
	dir := t.TempDir()
	abs := filepath.Join(dir, "abs.psk")
	if err := os.WriteFile(abs, []byte("\t"+testPSK+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A relative psk-file is relative to the configuration file.
	if err := os.WriteFile(filepath.Join(dir, "rel.psk"), []byte("0x0001ff\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(testPSKEnv, testPSK)
	t.Setenv(testPSKEnv+"_HEX", "0XA0b1")
	withSource := func(line string) string { return edit(ikeBase, `psk = "`+testPSK+`"`, line) }
	for _, c := range []struct {
		name, doc, path string
		want            []byte
	}{
		{"psk", ikeBase, "x.toml", []byte(testPSK)},
		{"psk hex", withSource(`psk = "0x00ff10"`), "x.toml", []byte{0x00, 0xff, 0x10}},
		{"psk with spaces kept", withSource(`psk = " a b "`), "x.toml", []byte(" a b ")},
		{"psk-file absolute, trimmed", withSource(`psk-file = "` + abs + `"`), "x.toml", []byte(testPSK)},
		{"psk-file relative to the config", withSource(`psk-file = "rel.psk"`), filepath.Join(dir, "x.toml"), []byte{0x00, 0x01, 0xff}},
		{"psk-env", withSource(`psk-env = "` + testPSKEnv + `"`), "x.toml", []byte(testPSK)},
		{"psk-env hex", withSource(`psk-env = "` + testPSKEnv + `_HEX"`), "x.toml", []byte{0xa0, 0xb1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tu := parseOne(t, c.path, c.doc)
			if tu.IKE == nil || string(tu.IKE.PSK) != string(c.want) {
				t.Errorf("PSK %q, want %q", tu.IKE.PSK, c.want)
			}
		})
	}

	// Load reads the file named in the config, at Load time.
	cfgPath := filepath.Join(dir, "gw.toml")
	if err := os.WriteFile(cfgPath, []byte(withSource(`psk-file = "late.psk"`)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(cfgPath); err == nil || !strings.Contains(err.Error(), "ike.psk-file: open "+filepath.Join(dir, "late.psk")) {
		t.Errorf("Load before the file exists: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "late.psk"), []byte("late-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(cfgPath)
	if err != nil || string(cfg.Tunnels[0].IKE.PSK) != "late-key" {
		t.Errorf("Load after the file exists: %v", err)
	}
}

func TestParseIdentity(t *testing.T) {
	for _, c := range []struct {
		in   string
		want ikev2.Identity
	}{
		{"192.0.2.1", ikev2.Identity{IDType: ikev2.IDIPv4Addr, Data: []byte{192, 0, 2, 1}}},
		{"::ffff:192.0.2.1", ikev2.Identity{IDType: ikev2.IDIPv4Addr, Data: []byte{192, 0, 2, 1}}},
		{"2001:db8::1", ikev2.IdentityAddr(netip.MustParseAddr("2001:db8::1"))},
		{"ipv4:192.0.2.9", ikev2.Identity{IDType: ikev2.IDIPv4Addr, Data: []byte{192, 0, 2, 9}}},
		{"ipv6:2001:db8::9", ikev2.IdentityAddr(netip.MustParseAddr("2001:db8::9"))},
		{"fqdn:gw-b.example.net", ikev2.Identity{IDType: ikev2.IDFQDN, Data: []byte("gw-b.example.net")}},
		{"FQDN:gw-b", ikev2.Identity{IDType: ikev2.IDFQDN, Data: []byte("gw-b")}},
		{"gw-b.example.net", ikev2.Identity{IDType: ikev2.IDFQDN, Data: []byte("gw-b.example.net")}},
		{"gw-b.example.net.", ikev2.Identity{IDType: ikev2.IDFQDN, Data: []byte("gw-b.example.net")}},
		{"@gw-b.example.net", ikev2.Identity{IDType: ikev2.IDFQDN, Data: []byte("gw-b.example.net")}},
		{"@gwb", ikev2.Identity{IDType: ikev2.IDFQDN, Data: []byte("gwb")}},
		{"user:admin@example.net", ikev2.Identity{IDType: ikev2.IDRFC822Addr, Data: []byte("admin@example.net")}},
		{"email:admin@example.net", ikev2.Identity{IDType: ikev2.IDRFC822Addr, Data: []byte("admin@example.net")}},
		{"admin@example.net", ikev2.Identity{IDType: ikev2.IDRFC822Addr, Data: []byte("admin@example.net")}},
		{"keyid:0x0102ff", ikev2.Identity{IDType: ikev2.IDKeyID, Data: []byte{1, 2, 0xff}}},
		{"keyid:#0A0b", ikev2.Identity{IDType: ikev2.IDKeyID, Data: []byte{0x0a, 0x0b}}},
		{"keyid:site-a", ikev2.Identity{IDType: ikev2.IDKeyID, Data: []byte("site-a")}},
	} {
		got, err := parseIdentity(c.in)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("parseIdentity(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "gwb", "fe80::1%eth0", "keyid:", "keyid:0x", "user:a@", "x@", "@", "fqdn:a@b.c", "ipv6:192.0.2.1", "dn:CN", "gw b.example"} {
		if id, err := parseIdentity(bad); err == nil {
			t.Errorf("parseIdentity(%q) = %v, want an error", bad, id)
		}
	}
}

func TestFmtDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", time.Hour: "1h", 24 * time.Hour: "24h", 90 * time.Minute: "1h30m", time.Minute: "1m",
		90 * time.Second: "1m30s", 2 * time.Second: "2s", 500 * time.Millisecond: "500ms", time.Hour + time.Second: "1h0m1s",
	} {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestDecodePSK(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []byte
	}{
		{"secret", []byte("secret")},
		{"0", []byte("0")},
		{"0y12", []byte("0y12")},
		{"0x00", []byte{0}},
		{"0XaBcD", []byte{0xab, 0xcd}},
	} {
		got, err := decodePSK([]byte(c.in))
		if err != nil || string(got) != string(c.want) {
			t.Errorf("decodePSK(%q) = %x, %v; want %x", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "0x", "0x1", "0x1g", "0x 12"} {
		if got, err := decodePSK([]byte(bad)); err == nil {
			t.Errorf("decodePSK(%q) = %x, want an error", bad, got)
		}
	}
}

func loadExample(t *testing.T, name string) Tunnel {
	t.Helper()
	cfg, err := Load(filepath.Join(examplesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Tunnels) != 1 {
		t.Fatalf("%s: %d tunnels, want 1", name, len(cfg.Tunnels))
	}
	return cfg.Tunnels[0]
}

// TestExamplesIKE checks that site-a.toml and site-b.toml are the two ends
// of one tunnel keyed by IKE, and the same tunnel as the manually keyed
// pair apart from the keying.
func TestExamplesIKE(t *testing.T) {
	a, b := loadExample(t, "site-a.toml"), loadExample(t, "site-b.toml")
	ma, mb := loadExample(t, "manual-a.toml"), loadExample(t, "manual-b.toml")
	if a.IKE == nil || b.IKE == nil {
		t.Fatal("an example is not keyed by IKE")
	}
	ia, ib := a.IKE, b.IKE
	ikeP, err := ikev2.ParseIKEProposals("aes256-sha384-ecp384")
	if err != nil {
		t.Fatal(err)
	}
	espP, err := ikev2.ParseESPProposals("aes256gcm16-ecp384")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"A role", ia.Role, ikev2.RoleActive},
		{"B role", ib.Role, ikev2.RoleActive},
		{"A IKE proposals", ia.IKEProposals, ikeP},
		{"B IKE proposals", ib.IKEProposals, ikeP},
		{"A ESP proposals", ia.ESPProposals, espP},
		{"B ESP proposals", ib.ESPProposals, espP},
		{"PSK", string(ia.PSK), string(ib.PSK)},
		{"A mode", ia.Mode, ikev2.ModeTransport},
		{"B mode", ib.Mode, ikev2.ModeTransport},
		{"A.LocalAddr = B.PeerAddr", ia.LocalAddr, ib.PeerAddr},
		{"A.PeerAddr = B.LocalAddr", ia.PeerAddr, ib.LocalAddr},
		{"A.LocalTS = B.PeerTS", ia.LocalTS, ib.PeerTS},
		{"A.PeerTS = B.LocalTS", ia.PeerTS, ib.LocalTS},
		{"A GRE selectors", ia.LocalTS, selectors(47, "192.0.2.1/32")},
		{"ForceEncap", ia.ForceEncap, ib.ForceEncap},
		{"Fragmentation", ia.Fragmentation, ib.Fragmentation},

		// The same tunnel as the manual examples, apart from the keying.
		{"A dataplane", withoutKeying(a.Dataplane), withoutKeying(ma.Dataplane)},
		{"B dataplane", withoutKeying(b.Dataplane), withoutKeying(mb.Dataplane)},
		{"A link", a.Link, ma.Link},
		{"B link", b.Link, mb.Link},
		{"A manual SAs", a.Dataplane.Outbound == nil && a.Dataplane.Inbound == nil, true},
		{"B manual SAs", b.Dataplane.Outbound == nil && b.Dataplane.Inbound == nil, true},
		{"A NAT traversal", a.Dataplane.NATTraversal, true},
		{"A tunnel fallback", a.Dataplane.TunnelFallback, false},
		// site-a.toml says the derived MTU is 1434.
		{"A derived MTU", dataplane.OverheadOf(&a.Dataplane).MTU(), 1434},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	if !ia.LocalID.Equal(ib.PeerID) || !ia.PeerID.Equal(ib.LocalID) {
		t.Errorf("identities do not cross: A %v → %v, B %v → %v", ia.LocalID, ia.PeerID, ib.LocalID, ib.PeerID)
	}
	if !strings.Contains(string(ia.PSK), "EXAMPLE") {
		t.Errorf("the example PSK does not say it is an example")
	}
}

// withoutKeying is c without what depends on how the tunnel is keyed.
func withoutKeying(c dataplane.TunnelConfig) dataplane.TunnelConfig {
	c.Outbound, c.Inbound, c.ESPTransforms = nil, nil, nil
	c.NATTraversal, c.TunnelFallback = false, false
	return c
}

// TestExampleStrongSwanGRE checks greipsec's side of the GRE interop
// example against strongSwan's, gre-tunnel/swanctl.conf.
func TestExampleStrongSwanGRE(t *testing.T) {
	tu := loadExample(t, filepath.Join("strongswan", "greipsec-gre-tunnel.toml"))
	dp, ike := tu.Dataplane, tu.IKE
	if ike == nil {
		t.Fatal("not keyed by IKE")
	}
	if dp.Mode != dataplane.ModeGRETunnel || dp.Transport != dataplane.TransportUDP || ike.Mode != ikev2.ModeTunnel {
		t.Errorf("mode %v over %v, IKE mode %v", dp.Mode, dp.Transport, ike.Mode)
	}
	swanctl, err := os.ReadFile(filepath.Join(examplesDir, "strongswan", "gre-tunnel", "swanctl.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"local_addrs = " + dp.Peer.String(),
		"remote_addrs = " + dp.Local.String(),
		"proposals = aes256-sha384-ecp384",
		"esp_proposals = aes256gcm16-ecp384",
		"local_ts = " + ike.PeerTS[0].Prefix.String() + "[gre]",
		"remote_ts = " + ike.LocalTS[0].Prefix.String() + "[gre]",
		"mode = tunnel",
		"secret = 0x" + hex.EncodeToString(ike.PSK),
	} {
		if !strings.Contains(string(swanctl), want) {
			t.Errorf("strongswan/gre-tunnel/swanctl.conf does not have %q", want)
		}
	}
	if ike.LocalTS[0].Protocol != 47 || ike.PeerTS[0].Protocol != 47 {
		t.Errorf("selectors %v ↔ %v, want protocol 47", ike.LocalTS, ike.PeerTS)
	}
}

// TestExampleStrongSwan checks greipsec's side of the strongSwan interop
// example against the setup the interop test expects.
func TestExampleStrongSwan(t *testing.T) {
	tu := loadExample(t, filepath.Join("strongswan", "greipsec.toml"))
	dp, ike := tu.Dataplane, tu.IKE
	if ike == nil {
		t.Fatal("not keyed by IKE")
	}
	ikeP, _ := ikev2.ParseIKEProposals("aes256-sha384-ecp384")
	espP, _ := ikev2.ParseESPProposals("aes256gcm16-ecp384")
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"mode", dp.Mode, dataplane.ModeRoute},
		{"transport", dp.Transport, dataplane.TransportUDP},
		{"local", dp.Local, netip.MustParseAddr("192.0.2.1")},
		{"peer", dp.Peer, netip.MustParseAddr("192.0.2.2")},
		{"interface", dp.Interface, "sec0"},
		{"routes", tu.Link.Routes, prefixes("10.2.0.0/24")},
		{"IKE mode", ike.Mode, ikev2.ModeTunnel},
		{"local TS", ike.LocalTS, selectors(0, "10.1.0.0/24")},
		{"peer TS", ike.PeerTS, selectors(0, "10.2.0.0/24")},
		{"PSK", string(ike.PSK), "greipsec-interop-psk"},
		{"IKE proposals", ike.IKEProposals, ikeP},
		{"ESP proposals", ike.ESPProposals, espP},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	if !tu.Link.Addresses[0].Prefix.Contains(netip.MustParseAddr("10.1.0.1")) {
		t.Errorf("sec0 addresses %v", tu.Link.Addresses)
	}

	// strongSwan's side, in route/swanctl.conf, is the mirror image.
	swanctl, err := os.ReadFile(filepath.Join(examplesDir, "strongswan", "route", "swanctl.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"local_addrs = " + dp.Peer.String(),
		"remote_addrs = " + dp.Local.String(),
		"proposals = aes256-sha384-ecp384",
		"esp_proposals = aes256gcm16-ecp384",
		"local_ts = " + ike.PeerTS[0].Prefix.String(),
		"remote_ts = " + ike.LocalTS[0].Prefix.String(),
		"mode = tunnel",
		"secret = 0x" + hex.EncodeToString(ike.PSK),
	} {
		if !strings.Contains(string(swanctl), want) {
			t.Errorf("strongswan/route/swanctl.conf does not have %q", want)
		}
	}
}

// TestIkedProposalKeys: ike-proposals and esp-proposals take iked.conf's
// notation as its ikesa and childsa lines write it, next to strongSwan's,
// and a mistake in it is one error with the file, line and key.
func TestIkedProposalKeys(t *testing.T) {
	doc := func(ike, esp string) string {
		return fmt.Sprintf(`[[tunnel]]
name = "sec0"
mode = "route"
local = "192.0.2.1"
peer = "192.0.2.2"
[tunnel.ike]
psk = "x"
ike-proposals = %q
esp-proposals = %q
`, ike, esp)
	}
	iked := parseOne(t, "iked.toml", doc("ikesa enc aes-256 auth hmac-sha2-256 prf hmac-sha2-256 group modp3072",
		"enc aes-256 auth hmac-sha2-256 group modp3072, childsa enc aes-256-gcm group ecp384"))
	swan := parseOne(t, "swan.toml", doc("aes256-sha256-prfsha256-modp3072", "aes256-sha256-modp3072,aes256gcm16-ecp384"))
	if !slices.Equal(iked.IKE.IKEProposals, swan.IKE.IKEProposals) || !slices.Equal(iked.IKE.ESPProposals, swan.IKE.ESPProposals) {
		t.Errorf("iked notation: %v / %v; strongSwan's: %v / %v", iked.IKE.IKEProposals, iked.IKE.ESPProposals, swan.IKE.IKEProposals, swan.IKE.ESPProposals)
	}
	_, err := Parse("bad.toml", []byte(doc("enc aes-256 auth hmac-sha2-256 group modp3072", "enc aes-256 auth hmac-md5")))
	want := `bad.toml:9: tunnel "sec0": ike.esp-proposals: ESP proposal "enc aes-256 auth hmac-md5": auth "hmac-md5" is not an algorithm greipsec knows`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want %q", err, want)
	}
}
