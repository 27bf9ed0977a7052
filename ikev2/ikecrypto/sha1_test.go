package ikecrypto

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// TestSHA1Transforms checks PRF_HMAC_SHA1 and AUTH_HMAC_SHA1_96 against
// RFC 2202 §3 (test cases 1, 2 and 5; case 5 gives the 96-bit truncation),
// and that AES-CBC-192 with HMAC-SHA1-96 protects an SK payload both ways.
func TestSHA1Transforms(t *testing.T) {
	prf, err := NewPRF(PRFHMACSHA1)
	if err != nil || prf.Size() != 20 || prf.String() != "PRF_HMAC_SHA1" {
		t.Fatalf("NewPRF(PRF_HMAC_SHA1) = %v, %v", prf, err)
	}
	for _, tc := range []struct{ key, data, mac string }{
		{strings.Repeat("0b", 20), "Hi There", "b617318655057264e28bc0b6fb378c8ef146be00"},
		{"4a656665", "what do ya want for nothing?", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
		{strings.Repeat("0c", 20), "Test With Truncation", "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04"},
	} {
		key, _ := hex.DecodeString(tc.key)
		want, _ := hex.DecodeString(tc.mac)
		if got := prf.Compute(key, []byte(tc.data)); !bytes.Equal(got, want) {
			t.Errorf("PRF %x, want %x", got, want)
		}
		a, _ := integByID(IntegHMACSHA1_96)
		if got := a.mac(key, []byte(tc.data)); !bytes.Equal(got, want[:12]) {
			t.Errorf("AUTH_HMAC_SHA1_96 %x, want %x", got, want[:12])
		}
	}
	el, il, err := KeyLens(EncrAESCBC, 192, IntegHMACSHA1_96)
	if err != nil || el != 24 || il != 20 {
		t.Fatalf("KeyLens(AES-CBC-192, SHA1-96) = %d, %d, %v", el, il, err)
	}
	c, err := NewSKCipher(EncrAESCBC, 192, IntegHMACSHA1_96, bytes.Repeat([]byte{1}, el), bytes.Repeat([]byte{2}, il))
	if err != nil {
		t.Fatal(err)
	}
	if c.ICVLen() != 12 {
		t.Fatalf("ICV %d", c.ICVLen())
	}
	if _, _, err := KeyLens(EncrNull, 0, IntegHMACSHA2_256_128); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSKCipher(EncrNull, 0, IntegHMACSHA2_256_128, nil, make([]byte, 32)); err == nil {
		t.Fatal("ENCR_NULL accepted for the IKE SA")
	}
}
