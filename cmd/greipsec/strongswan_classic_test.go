//go:build linux

package main

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/greipsec/greipsec/internal/lab"
)

var (
	ikeProposalsLine = regexp.MustCompile(`(?m)^ike-proposals\s*=.*$`)
	espProposalsLine = regexp.MustCompile(`(?m)^esp-proposals\s*=.*$`)
)

// TestStrongSwanClassic: the classic transforms of issue 8 against
// strongSwan's charon in route mode, greipsec initiating and responding:
// IKE aes256-sha256-modp3072 with ESP aes256-sha256 (the OpenBSD sec(4) to
// AWS row), and IKE aes128-sha1-modp2048 with ESP aes128-sha1 (the
// racoon-era row; weak-algorithms = true on greipsec's side). Ping and an
// iperf3 transfer through the tunnel; swanctl shows the transforms.
func TestStrongSwanClassic(t *testing.T) {
	for _, tc := range []struct {
		name, ike, esp string
		weak           bool
		wantIKE        string
		wantESP        string
	}{
		{"aes256-sha256-modp3072", "aes256-sha256-modp3072", "aes256-sha256", false,
			"AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_3072", "ESP:AES_CBC-256/HMAC_SHA2_256_128"},
		{"aes128-sha1", "aes128-sha1-modp2048", "aes128-sha1", true,
			"AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_2048", "ESP:AES_CBC-128/HMAC_SHA1_96"},
	} {
		for _, r := range []struct {
			name            string
			role            string
			charonInitiates bool
		}{{"greipsec-initiates", "active", false}, {"strongswan-initiates", "passive", true}} {
			t.Run(tc.name+"/"+r.name, func(t *testing.T) {
				edit := func(cfg string) string {
					cfg = ikeProposalsLine.ReplaceAllLiteralString(cfg, `ike-proposals = "`+tc.ike+`"`)
					cfg = espProposalsLine.ReplaceAllLiteralString(cfg, `esp-proposals = "`+tc.esp+`"`)
					if tc.weak {
						cfg = strings.Replace(cfg, "[tunnel.ike]", "[tunnel.ike]\nweak-algorithms = true", 1)
					}
					return cfg
				}
				l, ss, g := interopEdited(t, "strongswan/greipsec.toml", r.role, lab.StrongSwanConfig{
					LocalAddr: netip.MustParseAddr("192.0.2.2"), PeerAddr: netip.MustParseAddr("192.0.2.1"),
					PSK:          "greipsec-interop-psk",
					IKEProposals: tc.ike, ESPProposals: tc.esp,
					LocalTS: []string{"10.2.0.0/24"}, PeerTS: []string{"10.1.0.0/24"},
					Initiate:     r.charonInitiates,
					ExtraLANAddr: netip.MustParsePrefix("10.2.0.1/24"),
				}, edit)
				bps := lanTraffic(t, l, ss)
				t.Logf("iperf3 TCP greipsec -> strongSwan, %s / %s: %.2f Gbit/s", tc.ike, tc.esp, bps/1e9)
				sas, err := ss.ListSAs()
				if err != nil {
					t.Fatal(err)
				}
				for _, want := range []string{"ESTABLISHED", tc.wantIKE, tc.wantESP} {
					if !strings.Contains(sas, want) {
						t.Errorf("swanctl --list-sas lacks %q:\n%s", want, sas)
					}
				}
				in, out, err := ss.ChildBytes()
				if err != nil || in < 1e6 || out == 0 {
					t.Errorf("strongSwan Child SA bytes in %d, out %d (err %v)", in, out, err)
				}
				compareWithSwanctl(t, g, sas)
			})
		}
	}
}
