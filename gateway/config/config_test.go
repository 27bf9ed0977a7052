package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/tun"
)

// Test key material: recognisable patterns, not real keys.
var (
	keyOut = strings.Repeat("a1", 36)
	keyIn  = strings.Repeat("b2", 36)
)

// base is a valid one-tunnel file; the error cases edit it. Its line
// numbers are used in the expectations below.
var base = `[[tunnel]]
name = "gre0"
mode = "gre-transport"
transport = "esp"
local = "192.0.2.1"
peer = "192.0.2.2"
addresses = ["10.255.0.1/30", "fd00:255::1/64"]
routes = ["10.2.0.0/24", "fd00:2::/64"]

[tunnel.sa.out]
spi = 0x1001
algorithm = "aes256gcm16"
key = "` + keyOut + `"
esn = true

[tunnel.sa.in]
spi = 0x1002
algorithm = "aes256gcm16"
key = "` + keyIn + `"
esn = true
`

// outBlock is base's [tunnel.sa.out] table, lines 10 to 15.
var outBlock = `[tunnel.sa.out]
spi = 0x1001
algorithm = "aes256gcm16"
key = "` + keyOut + `"
esn = true

`

// second is a second tunnel, valid together with base; appended to base its
// [[tunnel]] is on line 22.
var second = `
[[tunnel]]
name = "gre1"
local = "192.0.2.1"
peer = "192.0.2.3"
routes = ["10.3.0.0/24"]
[tunnel.sa.out]
spi = 0x2001
algorithm = "aes256gcm16"
key = "` + strings.Repeat("c3", 36) + `"
[tunnel.sa.in]
spi = 0x2002
algorithm = "aes256gcm16"
key = "` + strings.Repeat("d4", 36) + `"
`

// edit replaces the first occurrence of each old with its new, in pairs.
func edit(doc string, pairs ...string) string {
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(doc, pairs[i]) {
			panic(fmt.Sprintf("edit: %q not in document", pairs[i]))
		}
		doc = strings.Replace(doc, pairs[i], pairs[i+1], 1)
	}
	return doc
}

// withKey adds lines to base's [[tunnel]] table, from line 9.
func withKey(lines string) string {
	return edit(base, `"fd00:2::/64"]`+"\n", `"fd00:2::/64"]`+"\n"+lines+"\n")
}

// withOut adds lines to base's [tunnel.sa.out], from line 14.
func withOut(lines string) string {
	return edit(base, `key = "`+keyOut+`"`+"\n", `key = "`+keyOut+`"`+"\n"+lines+"\n")
}

// withIn adds lines to base's [tunnel.sa.in], from line 21.
func withIn(lines string) string {
	return base + lines + "\n"
}

func TestParseBase(t *testing.T) {
	for name, doc := range map[string]string{"base": base, "two tunnels": base + second} {
		if _, err := Parse("test.toml", []byte(doc)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestErrors checks that each mistake gives exactly one error, that names
// the file and the line (or only the file when there is no line), and says
// what is wrong and what is expected.
func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		line int      // 0: the message has no line
		want []string // all in the message
	}{
		// TOML syntax and types.
		{"syntax", edit(base, `name = "gre0"`, `name = "gre0`), 2, []string{"TOML syntax", "newline"}},
		{"duplicate key", withKey(`mode = "route"`), 9, []string{"TOML syntax", "already been defined"}},
		{"integer as string", withKey(`mtu = "1400"`), 9, []string{`tunnel "gre0": mtu: must be an integer, got a string`, "mtu = 1400"}},
		{"boolean as string", edit(base, "esn = true", `esn = "yes"`), 14, []string{"sa.out.esn: must be true or false, got a string"}},
		{"boolean as integer", withKey("mss-clamp = 1"), 9, []string{"mss-clamp: must be true or false, got the integer 1"}},
		{"fragmentation", withKey(`fragmentation = "after"`), 9, []string{`tunnel "gre0": fragmentation: unknown fragmentation "after" (expected before-encryption or after-encryption)`}},
		{"pmtud as string", withKey(`pmtud = "yes"`), 9, []string{"pmtud: must be true or false, got a string"}},
		{"route loop", edit(base, `routes = ["10.2.0.0/24", "fd00:2::/64"]`, `routes = ["10.2.0.0/24", "0.0.0.0/0"]`), 8, []string{`tunnel "gre0": routes[1]: 0.0.0.0/0 contains the peer 192.0.2.2: the tunnel's own ESP and IKE packets would be routed into it (a loop)`}},
		{"link-follows-ike with manual SAs", withKey("link-follows-ike = true"), 9, []string{`tunnel "gre0": link-follows-ike: only with [tunnel.ike]: manual SAs have no IKE SA to follow`}},
		{"string as integer", edit(base, `local = "192.0.2.1"`, `local = 3221225985`), 5, []string{"local: must be a string, got the integer"}},
		{"array as string", edit(base, `addresses = ["10.255.0.1/30", "fd00:255::1/64"]`, `addresses = "10.255.0.1/30"`), 7,
			[]string{"addresses: must be an array of strings, got a string", `addresses = ["10.255.0.1/30"]`}},
		{"array element", edit(base, `routes = ["10.2.0.0/24", "fd00:2::/64"]`, `routes = ["10.2.0.0/24", 5]`), 8, []string{"routes[1]: must be a string, got the integer 5"}},
		{"table as value", edit(base, outBlock, "[tunnel.sa]\nout = 5\n\n"), 11, []string{"sa.out: must be a table", "[tunnel.sa.out]"}},
		{"tunnel not an array", "[tunnel]\nname = \"x\"\n", 1, []string{"tunnel: write [[tunnel]]", "not [tunnel]"}},
		{"tunnel a number", "tunnel = 5\n", 1, []string{"tunnel: must be [[tunnel]] tables, got the integer 5"}},

		// Unknown keys.
		{"unknown key", withOut("spii = 1"), 14, []string{`tunnel "gre0": sa.out.spii: unknown key (did you mean spi?)`}},
		{"unknown key list", withKey("colour = 1"), 9, []string{"colour: unknown key (expected one of: name, interface, mode,"}},
		{"unknown top-level key", "verbose = true\n" + base, 1, []string{"test.toml:1: verbose: unknown key (the top level holds state-file, [[tunnel]] tables and the [control] and [metrics] tables)"}},
		{"misspelt tunnel", strings.ReplaceAll(base, "tunnel", "tunel"), 1, []string{"test.toml:1: tunel: unknown key (did you mean tunnel?)"}},
		{"unknown table", base + "[tunnel.ike2]\nrole = \"initiator\"\n", 21, []string{`tunnel "gre0": ike2: unknown key (did you mean ike?)`}},
		{"unknown gre key", base + "[tunnel.gre]\nkeyy = 1\n", 22, []string{"gre.keyy: unknown key (did you mean key?)"}},

		// Missing keys.
		{"no tunnels", "", 0, []string{"test.toml: no tunnels", "[[tunnel]]"}},
		{"only comments", "# nothing here\n", 0, []string{"test.toml: no tunnels"}},
		{"empty tunnel array", "tunnel = []\n", 1, []string{"tunnel: no tunnels"}},
		{"missing name", edit(base, "name = \"gre0\"\n", ""), 1, []string{"tunnel #1: name: missing", `"gre0"`}},
		{"missing local", edit(base, "local = \"192.0.2.1\"\n", ""), 1, []string{`tunnel "gre0": local: missing (an IP address`}},
		{"missing peer", edit(base, "peer = \"192.0.2.2\"\n", ""), 1, []string{`peer: missing (an IP address`}},
		{"missing sa", base[:strings.Index(base, "\n[tunnel.sa.out]")+1], 1, []string{`tunnel "gre0": ike: missing`, "[tunnel.ike]", "[tunnel.sa.out]", "[tunnel.sa.in]"}},
		{"missing sa.out", edit(base, outBlock, ""), 10, []string{"sa.out: missing ([tunnel.sa.out]"}},
		{"missing sa.in", base[:strings.Index(base, "[tunnel.sa.in]")], 10, []string{"sa.in: missing ([tunnel.sa.in]"}},
		{"missing spi", edit(base, "spi = 0x1002\n", ""), 16, []string{"sa.in.spi: missing", "0x100 to 0xffffffff"}},
		{"missing algorithm", edit(base, "algorithm = \"aes256gcm16\"\n", ""), 10, []string{"sa.out.algorithm: missing", "aes256gcm16"}},
		{"missing key", edit(base, `key = "`+keyIn+"\"\n", ""), 16, []string{"sa.in.key: missing", "hex digits"}},

		// Values of the tunnel.
		{"mode", edit(base, `mode = "gre-transport"`, `mode = "gre"`), 3, []string{`tunnel "gre0": mode: unknown mode "gre" (expected gre-transport, gre-tunnel or route)`}},
		{"transport", edit(base, `transport = "esp"`, `transport = "tcp"`), 4, []string{`transport: unknown transport "tcp" (expected esp or udp)`}},
		{"local not an address", edit(base, `local = "192.0.2.1"`, `local = "gw-a"`), 5, []string{`local: "gw-a" is not an IP address`}},
		{"local unspecified", edit(base, `local = "192.0.2.1"`, `local = "0.0.0.0"`), 5, []string{"local: 0.0.0.0 is unspecified"}},
		{"peer multicast", edit(base, `peer = "192.0.2.2"`, `peer = "224.0.0.5"`), 6, []string{"peer: 224.0.0.5 is not a unicast address"}},
		{"families differ", edit(base, `peer = "192.0.2.2"`, `peer = "2001:db8::2"`), 6, []string{"peer: 2001:db8::2 is IPv6 but local 192.0.2.1 is IPv4", "same family"}},
		{"local is peer", edit(base, `peer = "192.0.2.2"`, `peer = "192.0.2.1"`), 6, []string{"peer: 192.0.2.1 is the same as local"}},
		{"udp-port with esp", withKey("udp-port = 4500"), 9, []string{`udp-port: only used with transport = "udp"`}},
		{"udp-port range", edit(withKey("udp-port = 0"), `transport = "esp"`, `transport = "udp"`), 9, []string{"udp-port: must be between 1 and 65535, got 0"}},
		{"name characters", edit(base, `name = "gre0"`, `name = "gre 0"`), 2, []string{`name: "gre 0": use only letters, digits`}},
		{"name too long for an interface", edit(base, `name = "gre0"`, `name = "site-b-primary-link"`), 2,
			[]string{`name: "site-b-primary-link" is longer than 15 characters`, "unless interface is set"}},
		{"interface too long", withKey(`interface = "greipsec-site-b-1"`), 9, []string{"interface: \"greipsec-site-b-1\" is longer than 15 characters"}},
		{"interface with slash", withKey(`interface = "gre/0"`), 9, []string{"interface: \"gre/0\": an interface name may not contain"}},

		// MTUs.
		{"mtu below IPv6 minimum", withKey("mtu = 1000"), 9, []string{"mtu: must be between 1280 and 65535", "carries IPv6", "got 1000"}},
		{"mtu below IPv4 minimum",
			edit(withKey("mtu = 500"), `, "fd00:255::1/64"`, "", `, "fd00:2::/64"`, ""), 9,
			[]string{"mtu: must be between 576 and 65535", "got 500"}},
		{"mtu above maximum", withKey("mtu = 70000"), 9, []string{"mtu: must be between 1280 and 65535, got 70000"}},
		{"mtu does not fit", withKey("mtu = 1500"), 9, []string{"mtu: 1500 does not fit path-mtu 1500", "gre-transport over esp leaves at most 1442"}},
		{"mtu does not fit a small path", withKey("path-mtu = 1300\nmtu = 1280"), 10, []string{"mtu: 1280 does not fit path-mtu 1300"}},
		{"path-mtu range", withKey("path-mtu = 100"), 9, []string{"path-mtu: must be between 576 and 65535", "got 100"}},
		{"path-mtu IPv6 range", edit(withKey("path-mtu = 1000"), `"192.0.2.1"`, `"2001:db8::1"`, `"192.0.2.2"`, `"2001:db8::2"`), 9,
			[]string{"path-mtu: must be between 1280 and 65535", "IPv6"}},
		{"path-mtu leaves too little", withKey("path-mtu = 600"), 9, []string{"path-mtu: 600 leaves", "need at least 576"}},
		{"path-mtu leaves too little for IPv6", withKey("path-mtu = 1300"), 9, []string{"path-mtu: 1300 leaves 1242 bytes", "carries IPv6, which needs 1280"}},

		// Addresses and routes.
		{"address without length", edit(base, `"10.255.0.1/30"`, `"10.255.0.1"`), 7, []string{`addresses[0]: "10.255.0.1" needs a prefix length or a peer`, `"A/len"`, `"A peer B"`}},
		{"address bad prefix", edit(base, `"10.255.0.1/30"`, `"10.255.0.1/40"`), 7, []string{`addresses[0]: "10.255.0.1/40" is not an address with a prefix length`}},
		{"address garbage", edit(base, `"fd00:255::1/64"`, `"10.255.0.1 peer"`), 7, []string{`addresses[1]: "10.255.0.1 peer" is not an address`}},
		{"point-to-point families", edit(base, `"fd00:255::1/64"`, `"10.9.0.1 peer fd00::2"`), 7, []string{"addresses[1]:", "same family"}},
		{"point-to-point length", edit(base, `"fd00:255::1/64"`, `"10.9.0.1/30 peer 10.9.0.2"`), 7, []string{"addresses[1]:", "takes no prefix length"}},
		{"duplicate address", edit(base, `"fd00:255::1/64"`, `"10.255.0.1/24"`), 7, []string{"addresses[1]: 10.255.0.1 is already addresses[0]"}},
		{"route bad prefix", edit(base, `"10.2.0.0/24"`, `"10.2.0.0/33"`), 8, []string{`routes[0]: "10.2.0.0/33" is not a prefix`}},
		{"route host bits", edit(base, `"10.2.0.0/24"`, `"10.2.0.1/24"`), 8, []string{`routes[0]: "10.2.0.1/24" has bits set past the prefix length; the prefix is 10.2.0.0/24`}},
		{"route without length", edit(base, `"10.2.0.0/24"`, `"10.2.0.5"`), 8, []string{`routes[0]: "10.2.0.5" needs a prefix length, e.g. "10.2.0.5/32"`}},
		{"duplicate route", edit(base, `"fd00:2::/64"]`, `"fd00:2::/64", "10.2.0.0/24"]`), 8, []string{"routes[2]: 10.2.0.0/24 is already routes[0]"}},

		// GRE.
		{"gre with route mode", edit(base+"[tunnel.gre]\nkey = 5\n", `"gre-transport"`, `"route"`), 21, []string{`gre: only used with mode "gre-transport" or "gre-tunnel"`}},
		{"gre key range", base + "[tunnel.gre]\nkey = -1\n", 22, []string{"gre.key: must be between 0 and 4294967295, got -1"}},
		{"gre keepalive too short", base + "[tunnel.gre]\nkeepalive = \"100ms\"\n", 22, []string{`gre.keepalive: must be "0s" (off) or at least 1s, got 100ms`}},
		{"gre keepalive-retries alone", base + "[tunnel.gre]\nkeepalive-retries = 3\n", 22, []string{`gre.keepalive-retries: only with keepalive`}},
		{"gre keepalive-retries range", base + "[tunnel.gre]\nkeepalive = \"5s\"\nkeepalive-retries = 0\n", 23, []string{`gre.keepalive-retries: must be between 1 and 255, got 0`}},
		{"gre not a table", withKey("gre = true"), 9, []string{"gre: must be a table ([tunnel.gre]"}},

		// SAs.
		{"spi reserved", edit(base, "spi = 0x1001", "spi = 255"), 11, []string{"sa.out.spi: must be between 256 and 4294967295", "RFC 4303", "got 255"}},
		{"spi too big", edit(base, "spi = 0x1001", "spi = 0x100000000"), 11, []string{"sa.out.spi: must be between 256 and 4294967295, got 4294967296"}},
		{"algorithm", edit(base, `algorithm = "aes256gcm16"`, `algorithm = "aes256-gcm"`), 12,
			[]string{`sa.out.algorithm: unknown algorithm "aes256-gcm"`, "aes128gcm16, aes256gcm16 or chacha20poly1305"}},
		{"key length", edit(base, keyOut, keyOut[:64]), 13,
			[]string{`tunnel "gre0": sa.out.key: must be 72 hex digits (36 bytes: 32-byte key + 4-byte salt for aes256gcm16), got 64`}},
		{"key length with 0x", edit(base, keyOut, "0x"+keyOut[:70]), 13, []string{"sa.out.key: must be 72 hex digits", "got 70"}},
		{"key length aes128", edit(base, `algorithm = "aes256gcm16"`, `algorithm = "aes128gcm16"`), 13,
			[]string{"sa.out.key: must be 40 hex digits (20 bytes: 16-byte key + 4-byte salt for aes128gcm16), got 72"}},
		{"key length chacha", edit(base, `algorithm = "aes256gcm16"`, `algorithm = "chacha20poly1305"`, keyOut, keyOut[:40]), 13,
			[]string{"sa.out.key: must be 72 hex digits (36 bytes: 32-byte key + 4-byte salt for chacha20poly1305), got 40"}},
		{"key not hex", edit(base, keyIn, "0xb2b2g"+keyIn[5:]), 19, []string{`sa.in.key: must be hex digits`, `found 'g' at digit 5`}},
		{"same key both ways", edit(base, keyIn, keyOut), 19, []string{"sa.in.key: is the same as sa.out.key", "reflected"}},
		{"replay-window power of two", withIn("replay-window = 1000"), 21, []string{"sa.in.replay-window: must be a power of two", "got 1000"}},
		{"replay-window range", withIn("replay-window = 32"), 21, []string{"sa.in.replay-window: must be between 64 and 65536 packets, got 32"}},
		{"replay-window outbound", withOut("replay-window = 1024"), 14, []string{"sa.out.replay-window: only used in sa.in"}},
		{"soft not below hard", withOut("soft-packets = 10\nhard-packets = 10"), 14, []string{"sa.out.soft-packets: 10 must be below hard-packets 10"}},
		{"bytes size", withOut(`hard-bytes = "5X"`), 14, []string{`sa.out.hard-bytes: must be an integer or a size such as "500M"`, `got "5X"`}},
		{"bytes size overflow", withOut(`hard-bytes = "99999999999T"`), 14, []string{`sa.out.hard-bytes: must be an integer or a size`}},
		{"packets negative", withOut("hard-packets = -1"), 14, []string{"sa.out.hard-packets: must be 0 or more, got -1"}},

		// Between tunnels.
		{"duplicate name", base + edit(second, `"gre1"`, `"gre0"`), 23, []string{`name: "gre0" is already the name of the tunnel at line 2`}},
		{"duplicate interface", base + edit(second, "name = \"gre1\"\n", "name = \"gre1\"\ninterface = \"gre0\"\n"), 24,
			[]string{`tunnel "gre1": interface: "gre0" is already the interface of tunnel "gre0" (line 2)`}},
		{"duplicate inbound spi", base + edit(second, "spi = 0x2002", "spi = 0x1002"), 32,
			[]string{`tunnel "gre1": sa.in.spi: 0x1002 is already the inbound SPI of tunnel "gre0" (line 2)`}},
		{"duplicate endpoints", base + edit(second, `"192.0.2.3"`, `"192.0.2.2"`), 25,
			[]string{`tunnel "gre1": peer: tunnel "gre0" (line 6) already runs between 192.0.2.1 and 192.0.2.2 over esp`}},
		{"duplicate route between tunnels", base + edit(second, `"10.3.0.0/24"`, `"10.2.0.0/24"`), 26,
			[]string{`tunnel "gre1": routes[0]: 10.2.0.0/24 is already routed into tunnel "gre0" (line 8)`}},
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
			prefix := "test.toml: "
			if tt.line > 0 {
				prefix = fmt.Sprintf("test.toml:%d:", tt.line)
			}
			if !strings.HasPrefix(msg, prefix) {
				t.Errorf("error %q does not start with %q", msg, prefix)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			for _, key := range []string{keyOut[:16], keyIn[8:24]} {
				if strings.Contains(msg, key) {
					t.Errorf("error %q shows key material", msg)
				}
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not an *Error", err)
			}
			if e.File != "test.toml" || e.Line != tt.line {
				t.Errorf("Error at %s:%d, want test.toml:%d", e.File, e.Line, tt.line)
			}
		})
	}
}

func TestSyntaxErrorColumn(t *testing.T) {
	_, err := Parse("test.toml", []byte("[[tunnel]]\nname = = 1\n"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want an *Error", err)
	}
	if e.Line != 2 || e.Column < 1 {
		t.Errorf("at %d:%d, want line 2 and a column", e.Line, e.Column)
	}
	if want := fmt.Sprintf("test.toml:2:%d: TOML syntax: ", e.Column); !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}
}

// TestSeveralErrors checks that all mistakes are reported, one line each,
// in the order of the file.
func TestSeveralErrors(t *testing.T) {
	doc := edit(base+second,
		`mode = "gre-transport"`, `mode = "gre"`, // line 3
		keyOut, keyOut[:10], // line 13
		`peer = "192.0.2.3"`, `peer = "192.0.2.300"`, // line 25
	)
	_, err := Parse("test.toml", []byte(doc))
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		`test.toml:3: tunnel "gre0": mode: `,
		`test.toml:13: tunnel "gre0": sa.out.key: `,
		`test.toml:25: tunnel "gre1": peer: "192.0.2.300" is not an IP address`,
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(lines), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("error %d is %q, want it to start with %q", i, lines[i], want[i])
		}
	}
	var n int
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		if _, ok := e.(*Error); ok {
			n++
		}
	}
	if n != len(want) {
		t.Errorf("%d of the joined errors are *Error, want %d", n, len(want))
	}
}

func TestTooManyErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString(base)
	for i := range 25 {
		fmt.Fprintf(&b, "bogus%d = 1\n", i)
	}
	_, err := Parse("test.toml", []byte(b.String()))
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxErrors+1 {
		t.Fatalf("got %d lines, want %d", len(lines), maxErrors+1)
	}
	if want := "test.toml:21: tunnel \"gre0\": sa.in.bogus0: unknown key"; !strings.HasPrefix(lines[0], want) {
		t.Errorf("first line %q, want %q", lines[0], want)
	}
	if want := "test.toml: 5 more errors not shown"; lines[maxErrors] != want {
		t.Errorf("last line %q, want %q", lines[maxErrors], want)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// full uses every key greipsec knows, none with its default value.
var full = `
[[tunnel]]
name = "to-b"
inner = "tun"
interface = "gre7"
mode = "gre-tunnel"
transport = "udp"
udp-port = 4501
peer-udp-port = 4502
local = "2001:db8::1"
peer = "2001:db8::2"
path-mtu = 1480
mtu = 1300
mss-clamp = false
pmtud = false
fragmentation = "after-encryption"
addresses = ["10.255.0.1 peer 10.255.0.2", "fd00:255::1/64"]
routes = ["10.2.0.0/24", "fd00::/8"]

[tunnel.gre]
key = 1001
sequence = true
checksum = true
keepalive = "10s"
keepalive-retries = 5

[tunnel.sa.out]
spi = 0xdeadbeef
algorithm = "chacha20poly1305"
key = "0X` + strings.Repeat("0F", 36) + `"
esn = false
soft-packets = 1000
hard-packets = 2000
soft-bytes = "500M"
hard-bytes = 1073741824

[tunnel.sa.in]
spi = 0x100
algorithm = "aes128gcm16"
enc-key = "` + strings.Repeat("e5", 20) + `"
esn = true
new = true
replay-window = 4096
soft-packets = 1
hard-packets = 2
soft-bytes = 3
hard-bytes = "4k"
`

func TestParseFull(t *testing.T) {
	cfg, err := Parse("full.toml", []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	want := Tunnel{
		Dataplane: dataplane.TunnelConfig{
			Name:        "to-b",
			Mode:        dataplane.ModeGRETunnel,
			Transport:   dataplane.TransportUDP,
			Local:       netip.MustParseAddr("2001:db8::1"),
			Peer:        netip.MustParseAddr("2001:db8::2"),
			UDPPort:     4501,
			PathMTU:     1480,
			PeerUDPPort: 4502,
			MTU:         1300,
			MSSClamp:    false,
			GRE:         dataplane.GREConfig{Key: 1001, HasKey: true, Sequence: true, Checksum: true},

			NoPathMTUDiscovery: true,
			Fragmentation:      dataplane.FragmentAfterEncryption,
			Outbound: &esp.Config{
				SPI: 0xdeadbeef, Algorithm: esp.ChaCha20Poly1305, Key: mustHex(t, strings.Repeat("0f", 36)),
				SoftPackets: 1000, HardPackets: 2000, SoftBytes: 500 << 20, HardBytes: 1 << 30,
			},
			Inbound: &esp.Config{
				SPI: 0x100, Algorithm: esp.AES128GCM16, Key: mustHex(t, strings.Repeat("e5", 20)), ESN: true,
				ReplayWindow: 4096, SoftPackets: 1, HardPackets: 2, SoftBytes: 3, HardBytes: 4 << 10,
			},
			Interface: "gre7",
		},
		Link: tun.LinkConfig{
			MTU: 1300,
			Addresses: []tun.Address{
				{Prefix: netip.MustParsePrefix("10.255.0.1/32"), Peer: netip.MustParseAddr("10.255.0.2")},
				{Prefix: netip.MustParsePrefix("fd00:255::1/64")},
			},
			Routes: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/24"), netip.MustParsePrefix("fd00::/8")},
		},
		Keepalive:        10 * time.Second,
		KeepaliveRetries: 5,
		InNew:            true,
	}
	if cfg.Path != "full.toml" || len(cfg.Tunnels) != 1 {
		t.Fatalf("Path %q with %d tunnels", cfg.Path, len(cfg.Tunnels))
	}
	if got := cfg.Tunnels[0]; !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\n%+v\n%+v\n%+v\nwant\n%+v\n%+v\n%+v\n%+v", got.Dataplane, got.Link, got.Dataplane.Outbound, got.Dataplane.Inbound,
			want.Dataplane, want.Link, want.Dataplane.Outbound, want.Dataplane.Inbound)
	}
}

func TestParseDefaults(t *testing.T) {
	doc := `[[tunnel]]
name = "t"
local = "198.51.100.1"
peer = "198.51.100.2"
[tunnel.sa.out]
spi = 256
algorithm = "aes256gcm16"
key = "` + keyOut + `"
[tunnel.sa.in]
spi = 257
algorithm = "aes256gcm16"
key = "` + keyIn + `"
`
	cfg, err := Parse("min.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := Tunnel{Dataplane: dataplane.TunnelConfig{
		Name:        "t",
		Mode:        dataplane.ModeGRETransport,
		Transport:   dataplane.TransportESP,
		Local:       netip.MustParseAddr("198.51.100.1"),
		Peer:        netip.MustParseAddr("198.51.100.2"),
		UDPPort:     dataplane.DefaultUDPPort,
		PathMTU:     dataplane.DefaultPathMTU,
		PeerUDPPort: dataplane.DefaultUDPPort,
		MSSClamp:    true,
		Outbound:    &esp.Config{SPI: 256, Algorithm: esp.AES256GCM16, Key: mustHex(t, keyOut)},
		Inbound:     &esp.Config{SPI: 257, Algorithm: esp.AES256GCM16, Key: mustHex(t, keyIn)},
		Interface:   "t",
	}}
	if got := cfg.Tunnels[0]; !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\n%+v\nwant\n%+v\n%+v", got.Dataplane, got.Link, want.Dataplane, want.Link)
	}
}

// TestInlineTunnels checks the other TOML spelling of the same file, with
// line numbers inside inline tables.
func TestInlineTunnels(t *testing.T) {
	doc := `tunnel = [
  { name = "a", local = "192.0.2.1", peer = "192.0.2.2", sa = { out = { spi = 0x1001, algorithm = "aes256gcm16", key = "` + keyOut + `" }, in = { spi = 0x1002, algorithm = "aes256gcm16", key = "` + keyIn + `" } } },
  { name = "b", local = "192.0.2.1", peer = "192.0.2.3", mode = "gre" },
]
`
	_, err := Parse("inline.toml", []byte(doc))
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		`inline.toml:3: tunnel "b": mode: unknown mode "gre"`,
		`inline.toml:3: tunnel "b": ike: missing`,
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(lines), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("error %d is %q, want it to start with %q", i, lines[i], want[i])
		}
	}
}

func TestSameEndpointsOtherTransport(t *testing.T) {
	doc := base + edit(second, `"192.0.2.3"`, `"192.0.2.2"`, `local = "192.0.2.1"`, "local = \"192.0.2.1\"\ntransport = \"udp\"")
	if _, err := Parse("test.toml", []byte(doc)); err != nil {
		t.Errorf("esp and udp tunnels between the same gateways: %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(good, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(edit(base, `mode = "gre-transport"`, `mode = "gre"`)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(good)
	if err != nil || cfg.Path != good || len(cfg.Tunnels) != 1 {
		t.Errorf("Load(good) = %+v, %v", cfg, err)
	}
	if _, err := Load(bad); err == nil || !strings.HasPrefix(err.Error(), bad+":3: ") {
		t.Errorf("Load(bad) error %v, want it to start with %s:3:", err, bad)
	}
	missing := filepath.Join(dir, "missing.toml")
	if _, err := Load(missing); err == nil || !strings.HasPrefix(err.Error(), "config: ") || !strings.Contains(err.Error(), missing) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) error %v", err)
	}
}

const examplesDir = "../../examples"

// TestExamplesManual checks that the two shipped examples with manual keys
// load and describe the two ends of the same tunnel.
func TestExamplesManual(t *testing.T) {
	a, err := Load(filepath.Join(examplesDir, "manual-a.toml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(filepath.Join(examplesDir, "manual-b.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Tunnels) != 1 || len(b.Tunnels) != 1 {
		t.Fatalf("%d and %d tunnels, want 1 each", len(a.Tunnels), len(b.Tunnels))
	}
	ta, tb := a.Tunnels[0], b.Tunnels[0]
	da, db := ta.Dataplane, tb.Dataplane

	// What the demo relies on.
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"A local", da.Local, netip.MustParseAddr("192.0.2.1")},
		{"B local", db.Local, netip.MustParseAddr("192.0.2.2")},
		{"A interface", da.Interface, "gre0"},
		{"B interface", db.Interface, "gre0"},
		{"A mode", da.Mode, dataplane.ModeGRETransport},
		{"A transport", da.Transport, dataplane.TransportESP},
		{"A addresses", ta.Link.Addresses, []tun.Address{{Prefix: netip.MustParsePrefix("10.255.0.1/30")}, {Prefix: netip.MustParsePrefix("fd00:255::1/64")}}},
		{"B addresses", tb.Link.Addresses, []tun.Address{{Prefix: netip.MustParsePrefix("10.255.0.2/30")}, {Prefix: netip.MustParsePrefix("fd00:255::2/64")}}},
		{"A routes", ta.Link.Routes, []netip.Prefix{netip.MustParsePrefix("10.2.0.0/24"), netip.MustParsePrefix("fd00:2::/64")}},
		{"B routes", tb.Link.Routes, []netip.Prefix{netip.MustParsePrefix("10.1.0.0/24"), netip.MustParsePrefix("fd00:1::/64")}},
		{"A out SPI", da.Outbound.SPI, uint32(0x1001)},
		{"A in SPI", da.Inbound.SPI, uint32(0x1002)},
		{"A out algorithm", da.Outbound.Algorithm, esp.AES256GCM16},
		{"A out ESN", da.Outbound.ESN, true},
		{"A in ESN", da.Inbound.ESN, true},

		// The two sides match.
		{"A.peer = B.local", da.Peer, db.Local},
		{"B.peer = A.local", db.Peer, da.Local},
		{"A.out = B.in", *da.Outbound, withoutWindow(*db.Inbound)},
		{"A.in = B.out", withoutWindow(*da.Inbound), *db.Outbound},
		{"A.in window = B.in window", da.Inbound.ReplayWindow, db.Inbound.ReplayWindow},
		{"mode", da.Mode, db.Mode},
		{"transport", da.Transport, db.Transport},
		{"UDP port", da.UDPPort, db.UDPPort},
		{"GRE", da.GRE, db.GRE},
		{"path MTU", da.PathMTU, db.PathMTU},
		{"MTU", da.MTU, db.MTU},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	// The inner addresses of each side are on the same link.
	for i, pa := range ta.Link.Addresses {
		if pb := tb.Link.Addresses[i]; pa.Prefix.Bits() != pb.Prefix.Bits() || !pa.Prefix.Contains(pb.Prefix.Addr()) || pa.Prefix.Addr() == pb.Prefix.Addr() {
			t.Errorf("addresses[%d]: %v and %v are not two addresses of one subnet", i, pa.Prefix, pb.Prefix)
		}
	}
	if string(da.Outbound.Key) == string(da.Inbound.Key) {
		t.Error("A uses the same key both ways")
	}
	if ta.IKE != nil || tb.IKE != nil {
		t.Error("a manually keyed example has an IKE config")
	}
	// manual-a.toml says the derived MTU is 1442.
	if got := dataplane.OverheadOf(&da).MTU(); got != 1442 {
		t.Errorf("derived MTU of site A is %d; manual-a.toml says 1442", got)
	}
}

func withoutWindow(c esp.Config) esp.Config {
	c.ReplayWindow = 0
	return c
}

// arrayIndex is the index of an array element in a key's path: "[0]".
var arrayIndex = regexp.MustCompile(`\[\d+\]`)

// netstackDocs set every netstack key between them: fullNetstack, and the
// same with the two proxies' tables swapped and with users-file.
func netstackDocs(t *testing.T) []string {
	file := filepath.Join(t.TempDir(), "proxy.users")
	if err := os.WriteFile(file, []byte("alice:"+testPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	swap := func(doc string) string {
		doc = strings.Replace(doc, "[tunnel.socks5]", "[tunnel.SWAP]", 1)
		doc = strings.Replace(doc, "[tunnel.http-proxy]", "[tunnel.socks5]", 1)
		return strings.Replace(doc, "[tunnel.SWAP]", "[tunnel.http-proxy]", 1)
	}
	withFile := fullNetstackFile(file)
	return []string{fullNetstack, swap(fullNetstack), withFile, swap(withFile)}
}

// TestExamplesDocumentEveryKey checks that the examples mention every key
// the parser knows (as a setting or commented out), so they stay the
// reference: manual-a.toml every key of a manually keyed tunnel, site-a.toml
// every key of a tunnel keyed by IKE. The documents set every key between
// them, so every table is read; a key that only one mode takes is set by
// the document of that mode.
func TestExamplesDocumentEveryKey(t *testing.T) {
	t.Setenv(testPSKEnv, testPSK)
	for _, c := range []struct {
		example string
		docs    []string
		skip    []string // the table of the other kind of keying, keys only it takes
		least   int
		only    []string // if set, only the keys under these paths: the others are site-a.toml's
	}{
		{"manual-a.toml", []string{full, fullCBC}, []string{"ike", "link-follows-ike"}, 25, nil},
		{"site-a.toml", append([]string{fullIKE, fullIKERoute, ikeEnvDoc}, pubKeyDocs(t)...), []string{"sa"}, 35, nil},
		{"netstack-a.toml", netstackDocs(t), []string{"sa"}, 20, []string{"inner", "udp-port", "peer-udp-port", "addresses", "routes",
			"dns", "socks5", "http-proxy", "forward", "ike.port-500"}},
	} {
		text, err := os.ReadFile(filepath.Join(examplesDir, c.example))
		if err != nil {
			t.Fatal(err)
		}
		type keyInfo struct {
			used, isTable bool
			header        string
		}
		keys := make(map[string]*keyInfo) // by path
		for i, doc := range c.docs {
			_, p, err := parse(fmt.Sprintf("doc%d.toml", i), []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			for _, tb := range p.tables {
				if tb.tunnel == nil {
					continue // the top level holds only [[tunnel]]
				}
				for _, k := range tb.known {
					// The elements of [[tunnel.forward]] share their keys.
					path := arrayIndex.ReplaceAllString(tb.path(k), "")
					ki := keys[path]
					if ki == nil {
						ki = &keyInfo{header: toml.Key(append(append([]string{"tunnel"}, tb.rel...), k)).String()}
						keys[path] = ki
					}
					ki.used = ki.used || tb.used[k]
					switch tb.m[k].(type) {
					case map[string]any, []map[string]any:
						ki.isTable = true
					}
				}
			}
		}
		for path, ki := range keys {
			if slices.Contains(c.skip, path) || (c.only != nil && !slices.ContainsFunc(c.only, func(p string) bool { return path == p || strings.HasPrefix(path, p+".") })) {
				continue
			}
			if !ki.used {
				t.Errorf("%s: no test document sets %s, so this test does not cover it", c.example, path)
			}
			k := path[strings.LastIndexByte(path, '.')+1:]
			var re *regexp.Regexp
			if ki.isTable { // a [table], an [[array]], or an inline table k = { ... }
				re = regexp.MustCompile(`(?m)^#? ?(\[\[?` + regexp.QuoteMeta(ki.header) + `[.\]]|` + regexp.QuoteMeta(k) + ` *=)`)
			} else {
				re = regexp.MustCompile(`(?m)^#? ?` + regexp.QuoteMeta(k) + ` *=`)
			}
			if !re.Match(text) {
				t.Errorf("%s does not document %s", c.example, path)
			}
		}
		if len(keys) < c.least {
			t.Errorf("%s: only %d keys checked", c.example, len(keys))
		}
	}
}
