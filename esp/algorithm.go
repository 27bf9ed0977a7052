package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// Algorithm is an ESP combined-mode (AEAD) transform. All of them use an
// 8-byte explicit IV, a 4-byte salt and a 16-byte ICV.
type Algorithm uint8

const (
	// AES128GCM16 is AES-GCM with a 128-bit key and a 16-byte ICV
	// (RFC 4106, IKEv2 transform ENCR_AES_GCM_16 with key length 128).
	// Key material: 16 bytes of key followed by 4 bytes of salt.
	AES128GCM16 Algorithm = iota + 1
	// AES256GCM16 is AES-GCM with a 256-bit key and a 16-byte ICV
	// (RFC 4106). Key material: 32 bytes of key and 4 bytes of salt.
	AES256GCM16
	// ChaCha20Poly1305 is the ChaCha20-Poly1305 AEAD (RFC 7634).
	// Key material: 32 bytes of key and 4 bytes of salt.
	ChaCha20Poly1305
)

// saltLen is the length of the salt at the end of the key material
// (RFC 4106 §8.1, RFC 7634 §2).
const saltLen = 4

var algorithmNames = [...]string{
	AES128GCM16:      "aes128gcm16",
	AES256GCM16:      "aes256gcm16",
	ChaCha20Poly1305: "chacha20poly1305",
}

// ParseAlgorithm parses an algorithm in strongSwan's spelling:
// "aes128gcm16", "aes256gcm16" or "chacha20poly1305".
func ParseAlgorithm(s string) (Algorithm, error) {
	for a, name := range algorithmNames {
		if a != 0 && s == name {
			return Algorithm(a), nil
		}
	}
	return 0, fmt.Errorf("esp: unknown algorithm %q (want aes128gcm16, aes256gcm16 or chacha20poly1305)", s)
}

// String returns the strongSwan spelling of a, or "Algorithm(N)" for an
// unknown value.
func (a Algorithm) String() string {
	if a.valid() {
		return algorithmNames[a]
	}
	return fmt.Sprintf("Algorithm(%d)", uint8(a))
}

// KeyLen returns the length of a's key material including the salt: 20 for
// AES128GCM16, 36 for AES256GCM16 and ChaCha20Poly1305, 0 for an unknown
// algorithm.
func (a Algorithm) KeyLen() int {
	switch a {
	case AES128GCM16:
		return 16 + saltLen
	case AES256GCM16:
		return 32 + saltLen
	case ChaCha20Poly1305:
		return chacha20poly1305.KeySize + saltLen
	}
	return 0
}

func (a Algorithm) valid() bool {
	return a >= AES128GCM16 && a <= ChaCha20Poly1305
}

// newAEAD returns the AEAD for a keyed with key (without the salt).
func (a Algorithm) newAEAD(key []byte) (cipher.AEAD, error) {
	switch a {
	case AES128GCM16, AES256GCM16:
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("esp: %v", err)
		}
		return cipher.NewGCM(block)
	case ChaCha20Poly1305:
		return chacha20poly1305.New(key)
	}
	return nil, fmt.Errorf("esp: unknown algorithm %v", a)
}
