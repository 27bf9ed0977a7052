package ikev2

import (
	"testing"
	"time"
)

// TestPairClassicTransforms runs two sessions with the transforms of the
// classic setups of issue 8: IKE with AES-CBC (128, 192, 256), HMAC-SHA1
// and the MODP groups of RFC 3526 (and, opted in as weak, RFC 2409's
// group 2 and group 5), and ESP with AES-CBC or NULL and HMAC integrity.
// Every pair comes up with the keys crossed and the KEYMAT split into
// encryption and integrity keys of the right lengths, and rekeys its
// Child SA with PFS in the same MODP group.
func TestPairClassicTransforms(t *testing.T) {
	weak := ProposalOptions{AllowWeak: true}
	tests := []struct{ ike, esp string }{
		{"aes256-sha256-modp3072", "aes256-sha256-modp3072"}, // OpenBSD sec(4) to AWS
		{"aes256-sha384-modp4096", "aes256-sha384"},
		{"aes192-sha512-modp6144", "aes192-sha512-modp2048"},
		{"aes256-sha256-modp8192", "aes128-sha256"},
		{"aes128-sha1-modp1024", "aes128-sha1-modp1536"},        // racoon-era peer, weak opt-in
		{"aes192-sha1-prfsha1-modp1536", "null-sha256-esn"},     // iked "enc null"
		{"aes256gcm16-prfsha256-modp3072", "aes256-sha512-esn"}, // AEAD IKE, CBC ESP
		{"aes128-sha256-ecp256", "aes256gcm16,aes256-sha256"},   // AEAD chosen first
		{"aes128-sha256-ecp256", "null-sha384"},
	}
	for _, tt := range tests {
		t.Run(tt.ike+"/"+tt.esp, func(t *testing.T) {
			ike, err := weak.ParseIKE(tt.ike)
			if err != nil {
				t.Fatal(err)
			}
			esp, err := weak.ParseESP(tt.esp)
			if err != nil {
				t.Fatal(err)
			}
			ca, cb := gwConfigs(ModeTransport)
			ca.ChildLifetime, cb.ChildLifetime = time.Hour, time.Hour
			ca.IKEProposals, cb.IKEProposals = ike, ike
			ca.ESPProposals, cb.ESPProposals = esp, esp
			p := newPair(t, ca, cb)
			p.start()
			if !p.run(time.Minute, p.bothUp) {
				t.Fatalf("no tunnel: A %v; B %v", p.evA, p.evB)
			}
			a, _ := p.checkChildPair()
			want := esp[0]
			if a.Encr != want.Encr || a.KeyBits != want.KeyBits || a.Integ != want.Integ || a.ESN != want.ESN {
				t.Fatalf("child %v-%d integ %d esn %v, want %v", a.Encr, a.KeyBits, a.Integ, a.ESN, want)
			}
			wantEnc := map[TransformID]int{EncrAESCBC: want.KeyBits / 8, EncrNull: 0, EncrAESGCM16: want.KeyBits/8 + 4}[TransformID(want.Encr)]
			wantAuth := map[TransformID]int{IntegNone: 0, IntegHMACSHA1_96: 20, IntegHMACSHA2_256_128: 32,
				IntegHMACSHA2_384_192: 48, IntegHMACSHA2_512_256: 64}[TransformID(want.Integ)]
			if len(a.InKey) != wantEnc || len(a.OutKey) != wantEnc || len(a.InAuthKey) != wantAuth || len(a.OutAuthKey) != wantAuth {
				t.Fatalf("keys of %d/%d and %d/%d bytes, want %d and %d", len(a.InKey), len(a.OutKey), len(a.InAuthKey), len(a.OutAuthKey), wantEnc, wantAuth)
			}
			// A Child SA rekey, with PFS where the proposal has a group.
			p.a.RekeyChild(a.InSPI, p.now)
			p.run(time.Minute, nil)
			checkRekeyedPair(t, p, 2)
			ups := childUps(p.evA)
			if n := ups[len(ups)-1]; n.Integ != want.Integ || n.Encr != want.Encr {
				t.Fatalf("rekeyed child %+v", n)
			}
		})
	}
}

// TestWeakNeedsOptIn: SHA-1 and the MODP groups below 2048 bits are
// refused unless weak algorithms are allowed, and NULL never protects the
// IKE SA.
func TestWeakNeedsOptIn(t *testing.T) {
	for _, s := range []string{"aes128-sha1-modp2048", "aes128-sha256-modp1024", "aes128-sha256-modp1536", "aes128gcm16-prfsha1-ecp256"} {
		if _, err := ParseIKEProposals(s); err == nil {
			t.Errorf("IKE %q accepted without the weak opt-in", s)
		}
		if _, err := (ProposalOptions{AllowWeak: true}).ParseIKE(s); err != nil {
			t.Errorf("IKE %q refused with the weak opt-in: %v", s, err)
		}
	}
	for _, s := range []string{"aes128-sha1", "aes256-sha256-modp1024"} {
		if _, err := ParseESPProposals(s); err == nil {
			t.Errorf("ESP %q accepted without the weak opt-in", s)
		}
	}
	if _, err := (ProposalOptions{AllowWeak: true}).ParseIKE("null-sha256-modp2048"); err == nil {
		t.Error("NULL accepted for the IKE SA")
	}
	for _, s := range []string{"aes256", "null", "aes256gcm16-sha256", "aes256-sha256-sha384", "aes256-prfsha256"} {
		if _, err := ParseESPProposals(s); err == nil {
			t.Errorf("ESP %q accepted", s)
		}
	}
	// The swanctl spellings of issue 8 round-trip.
	for _, s := range []string{"aes256-sha256-modp3072", "aes128-sha256", "null-sha256-esn", "aes192-sha512-modp8192"} {
		ps, err := ParseESPProposals(s)
		if err != nil || len(ps) != 1 || ps[0].String() != s {
			t.Errorf("ParseESPProposals(%q) = %v, %v", s, ps, err)
		}
	}
}
