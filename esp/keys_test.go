package esp

import (
	"bytes"
	"strings"
	"testing"
)

// TestSplitKeymat: RFC 7296 §2.17 order, initiator-to-responder first and
// the encryption key before the integrity key, for an AEAD (key ‖ salt,
// no integrity key) and for AES-CBC with HMAC.
func TestSplitKeymat(t *testing.T) {
	tr := Transform{Algorithm: AES256CBC, Integrity: HMACSHA256_128}
	km := make([]byte, tr.KeymatLen())
	for i := range km {
		km[i] = byte(i)
	}
	if len(km) != 2*(32+32) {
		t.Fatalf("KeymatLen = %d", len(km))
	}
	i2r, r2i, err := SplitKeymat(tr, km)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(i2r.Enc, km[0:32]) || !bytes.Equal(i2r.Auth, km[32:64]) ||
		!bytes.Equal(r2i.Enc, km[64:96]) || !bytes.Equal(r2i.Auth, km[96:128]) {
		t.Fatal("wrong split")
	}
	gcm := Transform{Algorithm: AES128GCM16}
	i2r, r2i, err = SplitKeymat(gcm, km[:40])
	if err != nil || !bytes.Equal(i2r.Enc, km[:20]) || !bytes.Equal(r2i.Enc, km[20:40]) || i2r.Auth != nil {
		t.Fatalf("GCM split: %v", err)
	}
	if _, _, err := SplitKeymat(tr, km[:100]); err == nil {
		t.Fatal("short KEYMAT accepted")
	}
	// The halves make working SAs.
	i2r, _, _ = SplitKeymat(tr, km)
	if _, err := NewSA(Config{SPI: 300, Algorithm: tr.Algorithm, Integrity: tr.Integrity, Key: i2r.Enc, AuthKey: i2r.Auth}); err != nil {
		t.Fatal(err)
	}
}

// TestCheckKeyReuse: the same key in two tunnels, in both directions, as
// encryption and authentication key, or with another salt, is refused.
func TestCheckKeyReuse(t *testing.T) {
	k := func(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }
	gcm := func(key []byte) *Config { return &Config{Algorithm: AES256GCM16, Key: key} }
	cbc := func(enc, auth []byte) *Config {
		return &Config{Algorithm: AES256CBC, Integrity: HMACSHA256_128, Key: enc, AuthKey: auth}
	}
	ok := []KeyUse{{"a out", gcm(k(1, 36))}, {"a in", gcm(k(2, 36))}, {"b out", cbc(k(3, 32), k(4, 32))}, {"b in", cbc(k(5, 32), k(6, 32))}}
	if err := CheckKeyReuse(ok); err != nil {
		t.Fatal(err)
	}
	saltOnly := append(k(1, 32), 9, 9, 9, 9)
	for name, uses := range map[string][]KeyUse{
		"two tunnels":       {{"a out", gcm(k(1, 36))}, {"b out", gcm(k(1, 36))}},
		"both directions":   {{"a out", cbc(k(3, 32), k(4, 32))}, {"a in", cbc(k(3, 32), k(7, 32))}},
		"other salt":        {{"a out", gcm(k(1, 36))}, {"a in", gcm(saltOnly)}},
		"enc as auth":       {{"a out", cbc(k(3, 32), k(4, 32))}, {"b in", cbc(k(4, 32), k(8, 32))}},
		"enc = auth in one": {{"a out", cbc(k(3, 32), k(3, 32))}},
	} {
		if err := CheckKeyReuse(uses); err == nil || !strings.HasPrefix(err.Error(), "esp: ") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
