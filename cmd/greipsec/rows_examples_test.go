package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/examples"
	"github.com/greipsec/greipsec/gateway/config"
)

// rowExamples are the example files of the rows of issue 8's table that
// need no files besides themselves (the OpenIKED site-to-site row is
// pubkey-a.toml, checked with its keys by TestCheckAuthExamples), and what
// each must say it pairs with.
var rowExamples = []struct {
	file  string
	peer  string // a line of the peer's configuration the header must show
	check func(*testing.T, *config.Config, string)
}{
	{"iked-ios.toml", "tunnel protection ipsec profile IPP", nil},
	{"aws-sec.toml", "childsa enc aes-256 auth hmac-sha2-256 group modp3072", checkAWSOutput},
	{"setkey-gre.toml", "spdadd 192.0.2.2 192.0.2.1 gre -P out ipsec esp/transport//require;", nil},
	{"openiked-linux.toml", `ikev2 "site-a" active esp`, nil},
	{"rfc3884.toml", "esp tunnel from 192.0.2.2 to 192.0.2.1 spi 0xdeadbeef:0xfeedbeef", checkRFC3884Keys},
}

// TestCheckRowExamples runs "greipsec check" on the example of each row of
// issue 8's table; each must pass and its header must show the peer's
// configuration it pairs with.
func TestCheckRowExamples(t *testing.T) {
	dir := t.TempDir()
	for _, ex := range rowExamples {
		t.Run(ex.file, func(t *testing.T) {
			data, err := examples.FS.ReadFile(ex.file)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), ex.peer) {
				t.Errorf("the header does not show the peer's line %q", ex.peer)
			}
			path := filepath.Join(dir, ex.file)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			if err := run([]string{"check", "-c", path}, &out, &errOut); err != nil {
				t.Fatalf("greipsec check: %v\n%s%s", err, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), ex.file+": ok") {
				t.Errorf("greipsec check printed:\n%s", out.String())
			}
			if ex.check != nil {
				cfg, err := config.Parse(path, data)
				if err != nil {
					t.Fatal(err)
				}
				ex.check(t, cfg, out.String())
			}
		})
	}
}

// ipsecctlLine matches the spi, authkey and enckey pairs of the ipsec.conf
// line in rfc3884.toml's header.
var ipsecctlLine = regexp.MustCompile(`spi 0x([0-9a-f]+):0x([0-9a-f]+)[\s\S]*?authkey 0x([0-9a-f]+):0x([0-9a-f]+)[\s\S]*?enckey 0x([0-9a-f]+):0x([0-9a-f]+)`)

// checkRFC3884Keys: the RFC 3884 row's keys are the ipsec.conf line's,
// exactly: the first of each pair (the rule's direction, peer to us) in
// sa.in, the second in sa.out; AES-128-CBC with HMAC-SHA2-256.
func checkRFC3884Keys(t *testing.T, cfg *config.Config, _ string) {
	data, _ := examples.FS.ReadFile("rfc3884.toml")
	m := ipsecctlLine.FindStringSubmatch(string(data))
	if m == nil {
		t.Fatal("no ipsec.conf line with spi, authkey and enckey pairs in the header")
	}
	spi := func(s string) uint32 {
		n, err := strconv.ParseUint(s, 16, 32)
		if err != nil {
			t.Fatal(err)
		}
		return uint32(n)
	}
	dp := cfg.Tunnels[0].Dataplane
	for _, c := range []struct {
		name                 string
		sa                   *esp.Config
		spi, authKey, encKey string
	}{{"sa.in", dp.Inbound, m[1], m[3], m[5]}, {"sa.out", dp.Outbound, m[2], m[4], m[6]}} {
		if c.sa == nil {
			t.Fatalf("%s missing", c.name)
		}
		got := fmt.Sprintf("spi %08x enc %x auth %x %v %v", c.sa.SPI, c.sa.Key, c.sa.AuthKey, c.sa.Algorithm, c.sa.Integrity)
		want := fmt.Sprintf("spi %08x enc %s auth %s %v %v", spi(c.spi), c.encKey, c.authKey, esp.AES128CBC, esp.HMACSHA256_128)
		if got != want {
			t.Errorf("%s: %s, want %s", c.name, got, want)
		}
		if _, err := hex.DecodeString(c.authKey); err != nil || len(c.authKey) != 64 || len(c.encKey) != 32 {
			t.Errorf("%s: the header's keys are not 64 and 32 hex digits", c.name)
		}
	}
}

// checkAWSOutput: check says that the BGP site's tunnels have no routes of
// their own, carry only IPv4 and follow their IKE SAs.
func checkAWSOutput(t *testing.T, _ *config.Config, out string) {
	for _, name := range []string{"sec0", "sec1"} {
		want := name + ": interface " + name + ": no routes (a routing daemon such as BGP, or you, routes into it); IPv4 only (IPv6 off on the interface); no carrier without an IKE SA"
		if !strings.Contains(out, want) {
			t.Errorf("greipsec check does not say %q:\n%s", want, out)
		}
	}
}
