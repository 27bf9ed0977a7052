package config

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/esp"
)

// fullCBC is a manual tunnel with AES-CBC + HMAC SAs written the way
// OpenBSD's ipsecctl and setkey configurations carry them over: separate
// encryption and authentication keys per direction, and a state file.
var fullCBC = `state-file = "/var/lib/greipsec/cbc.state"

[[tunnel]]
name = "sec0"
mode = "route"
local = "192.0.2.1"
peer = "192.0.2.2"
addresses = ["169.254.10.1/30"]
routes = ["10.2.0.0/16"]
allowed = ["10.2.0.0/16", "169.254.10.2/32"]

[tunnel.sa.out]
spi = 0xdeadbeef
algorithm = "aes128-sha256"
enc-key = "0x` + strings.Repeat("11", 16) + `"
auth-key = "0x` + strings.Repeat("22", 32) + `"
new = true

[tunnel.sa.in]
spi = 0xfeedbeef
algorithm = "aes256-sha1"
key = "` + strings.Repeat("33", 32) + `"
auth-key = "` + strings.Repeat("44", 20) + `"
`

// TestParseCBC: AES-CBC + HMAC SAs with enc-key and auth-key, new, and the
// state-file.
func TestParseCBC(t *testing.T) {
	cfg, err := Parse("/etc/greipsec/cbc.toml", []byte(fullCBC))
	if err != nil {
		t.Fatal(err)
	}
	tc := cfg.Tunnels[0]
	out, in := tc.Dataplane.Outbound, tc.Dataplane.Inbound
	if out.Algorithm != esp.AES128CBC || out.Integrity != esp.HMACSHA256_128 ||
		!bytes.Equal(out.Key, bytes.Repeat([]byte{0x11}, 16)) || !bytes.Equal(out.AuthKey, bytes.Repeat([]byte{0x22}, 32)) {
		t.Errorf("sa.out = %+v", out)
	}
	if in.Algorithm != esp.AES256CBC || in.Integrity != esp.HMACSHA1_96 || len(in.AuthKey) != 20 {
		t.Errorf("sa.in = %+v", in)
	}
	if !tc.OutNew || tc.InNew {
		t.Errorf("new: out %v in %v", tc.OutNew, tc.InNew)
	}
	if cfg.StateFile != "/var/lib/greipsec/cbc.state" {
		t.Errorf("state-file %q", cfg.StateFile)
	}
	// The MTU leaves room for the CBC IV and block and the HMAC ICV.
	if mtu := dataplane.OverheadOf(&tc.Dataplane).MTU(); mtu != 1438 {
		t.Errorf("route-mode MTU %d, want 1438 (1480 - 24 - 16 = 1440, - 2)", mtu)
	}

	// Without state-file: beside the configuration file.
	noState := strings.Replace(fullCBC, `state-file = "/var/lib/greipsec/cbc.state"`, "", 1)
	cfg, err = Parse("/etc/greipsec/cbc.toml", []byte(noState))
	if err != nil || cfg.StateFile != "/etc/greipsec/cbc.toml.state" {
		t.Fatalf("default state file %q, %v", cfg.StateFile, err)
	}
	cfg, err = Parse("/etc/greipsec/cbc.toml", []byte(strings.Replace(fullCBC, "/var/lib/greipsec/cbc.state", "state/cbc.state", 1)))
	if err != nil || cfg.StateFile != filepath.FromSlash("/etc/greipsec/state/cbc.state") {
		t.Fatalf("relative state file %q, %v", cfg.StateFile, err)
	}
}

// TestManualKeyErrors: the mistakes of CBC+HMAC and NULL SAs, and keys
// used twice, each get one error naming the key.
func TestManualKeyErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"auth-key missing", strings.Replace(fullCBC, `auth-key = "0x`+strings.Repeat("22", 32)+`"`, "", 1),
			`sa.out.auth-key: missing (hex digits: 32 bytes: the HMAC-SHA256 key for aes128-sha256)`},
		{"auth-key short", strings.Replace(fullCBC, strings.Repeat("22", 32), strings.Repeat("22", 20), 1),
			`sa.out.auth-key: must be 64 hex digits (32 bytes: the HMAC-SHA256 key for aes128-sha256), got 40`},
		{"enc-key length", strings.Replace(fullCBC, strings.Repeat("11", 16), strings.Repeat("11", 32), 1),
			`sa.out.enc-key: must be 32 hex digits (16 bytes: the AES-128 key for aes128-sha256), got 64`},
		{"key and enc-key", strings.Replace(fullCBC, "new = true", `key = "`+strings.Repeat("55", 16)+`"`, 1),
			`sa.out.enc-key: key is set too`},
		{"auth-key with AEAD", strings.Replace(fullCBC, `"aes128-sha256"`+"\n"+`enc-key = "0x`+strings.Repeat("11", 16)+`"`,
			`"aes128gcm16"`+"\n"+`key = "`+strings.Repeat("11", 20)+`"`, 1),
			`sa.out.auth-key: aes128gcm16 is an AEAD`},
		{"NULL with a key", strings.Replace(fullCBC, `"aes128-sha256"`, `"null-sha256"`, 1),
			`sa.out.enc-key: NULL encryption has no encryption key`},
		{"no integrity", strings.Replace(fullCBC, `"aes128-sha256"`, `"aes128"`, 1),
			`sa.out.algorithm: aes128 needs an integrity algorithm`},
		{"auth-key both directions", strings.Replace(fullCBC, strings.Repeat("44", 20), strings.Repeat("22", 20), 1),
			""}, // different lengths: not the same key
		{"enc-key both directions", strings.Replace(strings.Replace(fullCBC, `"aes256-sha1"`, `"aes128-sha1"`, 1), strings.Repeat("33", 32), strings.Repeat("11", 16), 1),
			`sa.in.key: is the same as sa.out.key; each direction needs its own key`},
		{"state-file empty", strings.Replace(fullCBC, "/var/lib/greipsec/cbc.state", "", 1), `state-file: is empty`},
	} {
		_, err := Parse("cbc.toml", []byte(tc.doc))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		case tc.want != "" && strings.Count(err.Error(), "\n") != 0:
			t.Errorf("%s: more than one error: %v", tc.name, err)
		}
	}
}

// TestKeyReuseAcrossTunnels: one key in two tunnels is refused, naming the
// other tunnel and its line.
func TestKeyReuseAcrossTunnels(t *testing.T) {
	doc := base + strings.Replace(second, strings.Repeat("c3", 36), keyOut, 1)
	_, err := Parse("test.toml", []byte(doc))
	if err == nil || !strings.Contains(err.Error(), `tunnel "gre1": sa.out.key: is the same as a key of tunnel "gre0" sa.out (line 11)`) {
		t.Fatalf("error %v", err)
	}
}

// TestWeakAlgorithmsKey: sha1 and modp1024 in [tunnel.ike] proposals are
// refused unless weak-algorithms = true.
func TestWeakAlgorithmsKey(t *testing.T) {
	doc := `[[tunnel]]
name = "old"
local = "192.0.2.1"
peer = "192.0.2.2"
[tunnel.ike]
psk = "a pre-shared key of some length"
ike-proposals = "aes128-sha1-modp1024"
esp-proposals = "aes128-sha1"
`
	_, err := Parse("old.toml", []byte(doc))
	if err == nil || !strings.Contains(err.Error(), "weak") || !strings.Contains(err.Error(), "old.toml:7:") {
		t.Fatalf("weak proposals without the opt-in: %v", err)
	}
	if _, err := Parse("old.toml", []byte(doc+"weak-algorithms = true\n")); err != nil {
		t.Fatal(err)
	}
}
