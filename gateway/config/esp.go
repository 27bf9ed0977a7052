package config

import (
	"fmt"

	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/ikev2"
	"github.com/greipsec/greipsec/ikev2/ikecrypto"
)

// ESPTransform maps an ESP transform negotiated by IKE (IANA numbers:
// ENCR_*, Key Length in bits, AUTH_*) to the dataplane's.
func ESPTransform(encr uint16, keyBits int, integ uint16) (esp.Transform, error) {
	var t esp.Transform
	switch {
	case encr == ikecrypto.EncrAESGCM16 && keyBits == 128:
		t.Algorithm = esp.AES128GCM16
	case encr == ikecrypto.EncrAESGCM16 && keyBits == 256:
		t.Algorithm = esp.AES256GCM16
	case encr == ikecrypto.EncrChaCha20Poly1305:
		t.Algorithm = esp.ChaCha20Poly1305
	case encr == ikecrypto.EncrAESCBC && keyBits == 128:
		t.Algorithm = esp.AES128CBC
	case encr == ikecrypto.EncrAESCBC && keyBits == 192:
		t.Algorithm = esp.AES192CBC
	case encr == ikecrypto.EncrAESCBC && keyBits == 256:
		t.Algorithm = esp.AES256CBC
	case encr == ikecrypto.EncrNull:
		t.Algorithm = esp.NullEncryption
	default:
		return t, fmt.Errorf("ESP transform %d with %d-bit key is not supported by the dataplane", encr, keyBits)
	}
	switch integ {
	case ikecrypto.IntegNone:
	case ikecrypto.IntegHMACSHA1_96:
		t.Integrity = esp.HMACSHA1_96
	case ikecrypto.IntegHMACSHA2_256_128:
		t.Integrity = esp.HMACSHA256_128
	case ikecrypto.IntegHMACSHA2_384_192:
		t.Integrity = esp.HMACSHA384_192
	case ikecrypto.IntegHMACSHA2_512_256:
		t.Integrity = esp.HMACSHA512_256
	default:
		return t, fmt.Errorf("ESP integrity transform %d is not supported by the dataplane", integ)
	}
	return t, t.Validate()
}

// espTransforms returns the dataplane transforms of ps, for the MTU.
func espTransforms(ps []ikev2.ESPProposal) []esp.Transform {
	var ts []esp.Transform
	for _, p := range ps {
		if t, err := ESPTransform(p.Encr, p.KeyBits, p.Integ); err == nil {
			ts = append(ts, t)
		}
	}
	return ts
}
