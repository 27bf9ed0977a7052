package ikev2

import (
	"strings"
	"testing"
)

// TestIkedProposals checks that proposals written as iked.conf(5) writes
// its ikesa and childsa clauses parse to exactly what strongSwan's notation
// of the same algorithms gives (issue 8: the OpenBSD sec(4)/AWS row, the
// iked ↔ IOS row, OpenIKED's site-to-site row).
func TestIkedProposals(t *testing.T) {
	weak := ProposalOptions{AllowWeak: true}
	for _, c := range []struct{ iked, swan string }{
		{"enc aes-256 auth hmac-sha2-256 group modp3072", "aes256-sha256-modp3072"},
		{"ikesa enc aes-256 auth hmac-sha2-384 prf hmac-sha2-384 group ecp384", "aes256-sha384-prfsha384-ecp384"},
		{"enc aes-256-gcm prf hmac-sha2-384 group ecp384", "aes256gcm16-prfsha384-ecp384"},
		{"enc aes-128-gcm prf hmac-sha2-256 group curve25519", "aes128gcm16-prfsha256-curve25519"},
		{"enc chacha20-poly1305 prf hmac-sha2-256 group grp31", "chacha20poly1305-prfsha256-x25519"},
		{"ENC AES-192 AUTH HMAC-SHA2-512 GROUP GRP18", "aes192-sha512-modp8192"},
		{"enc aes-256 auth hmac-sha2-256 group modp3072, aes128gcm16-prfsha256-ecp256", "aes256-sha256-modp3072,aes128gcm16-prfsha256-ecp256"},
	} {
		got, err := ParseIKEProposals(c.iked)
		want, werr := ParseIKEProposals(c.swan)
		if err != nil || werr != nil || !equalStrings(stringers(got), stringers(want)) {
			t.Errorf("IKE %q = %v, %v; want %v (%q), %v", c.iked, got, err, want, c.swan, werr)
		}
	}
	for _, c := range []struct{ iked, swan string }{
		{"enc aes-256 auth hmac-sha2-256 group modp3072", "aes256-sha256-modp3072"},
		{"childsa enc aes-256-gcm group ecp384", "aes256gcm16-ecp384"},
		{"enc aes-128-gcm esn", "aes128gcm16-esn"},
		{"enc aes-128 auth hmac-sha1", "aes128-sha1"},
		{"enc null auth hmac-sha2-256", "null-sha256"},
		{"enc aes-256 auth hmac-sha2-256 group grp15 noesn esn", "aes256-sha256-modp3072-noesn-esn"},
	} {
		got, err := weak.ParseESP(c.iked)
		want, werr := weak.ParseESP(c.swan)
		if err != nil || werr != nil || !equalStrings(stringers(got), stringers(want)) {
			t.Errorf("ESP %q = %v, %v; want %v (%q), %v", c.iked, got, err, want, c.swan, werr)
		}
	}
}

func equalStrings[T interface{ String() string }](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].String() != b[i].String() {
			return false
		}
	}
	return true
}

// TestIkedProposalErrors: each mistake in iked's notation is one error
// naming the proposal, what is wrong and what is expected.
func TestIkedProposalErrors(t *testing.T) {
	for _, c := range []struct {
		esp  bool
		in   string
		want []string
	}{
		{false, "enc aes-256 auth hmac-md5 group modp3072", []string{`IKE proposal "enc aes-256 auth hmac-md5 group modp3072"`, `auth "hmac-md5" is not an algorithm greipsec knows`, "hmac-sha2-256"}},
		{false, "enc aes-256 auth hmac-sha2-256 group", []string{"group needs a name after it", "modp3072"}},
		{false, "enc aes-256 integ hmac-sha2-256 group modp3072", []string{`unknown keyword "integ"`, "enc, auth, prf, group"}},
		{false, "childsa enc aes-256 auth hmac-sha2-256 group modp3072", []string{"IKE proposals are iked's ikesa clause, not childsa"}},
		{true, "ikesa enc aes-256 auth hmac-sha2-256", []string{"ESP proposals are iked's childsa clause, not ikesa"}},
		{false, "enc aes-256 group modp3072", []string{"aes256 needs an integrity algorithm"}},
		{false, "enc aes-256 auth hmac-sha1 group modp3072", []string{"sha1 is weak"}},
		{false, "enc aes-256 auth hmac-sha2-256 group modp1024", []string{"modp1024 is weak"}},
		{true, "enc aes-256 enc aes-128 auth hmac-sha2-256", []string{"two encryption algorithms"}},
		{true, "enc aes-256 auth hmac-sha2-256 prf hmac-sha2-256", []string{"ESP takes no PRF"}},
		{true, "enc aes-256-gcm-12", []string{`enc "aes-256-gcm-12" is not an algorithm greipsec knows`}},
		{true, "childsa", []string{"no transform"}},
	} {
		var err error
		if c.esp {
			_, err = ParseESPProposals(c.in)
		} else {
			_, err = ParseIKEProposals(c.in)
		}
		if err == nil {
			t.Errorf("%q: no error", c.in)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not contain %q", c.in, err, w)
			}
		}
		if !strings.HasPrefix(err.Error(), "ikev2: ") {
			t.Errorf("%q: error %q does not start with the package name", c.in, err)
		}
	}
}
