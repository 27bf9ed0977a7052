package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/greipsec/greipsec/gateway/config"
)

// TestKeygenCBC: for AES-CBC and NULL with an HMAC, keygen prints the
// enc-key and auth-key lines of an SA table, which parse as a valid SA.
func TestKeygenCBC(t *testing.T) {
	for _, alg := range []string{"aes256-sha256", "aes128-sha1", "null-sha512"} {
		var out bytes.Buffer
		if err := run([]string{"keygen", alg}, &out, new(bytes.Buffer)); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		want := 2
		if strings.HasPrefix(alg, "null") {
			want = 1
		}
		if len(lines) != want || !strings.HasPrefix(lines[len(lines)-1], "auth-key = ") {
			t.Fatalf("keygen %s printed %q", alg, out.String())
		}
		doc := fmt.Sprintf(`[[tunnel]]
name = "t"
local = "192.0.2.1"
peer = "192.0.2.2"
[tunnel.sa.out]
spi = 0x1001
algorithm = %q
%s
[tunnel.sa.in]
spi = 0x1002
algorithm = "aes256gcm16"
key = "%s"
`, alg, out.String(), strings.Repeat("ab", 36))
		if _, err := config.Parse("t.toml", []byte(doc)); err != nil {
			t.Errorf("keygen %s: its output does not parse: %v", alg, err)
		}
	}
}
