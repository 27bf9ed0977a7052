package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// Algorithm is an ESP encryption transform: a combined-mode (AEAD) cipher,
// which needs no integrity algorithm, or AES-CBC or NULL encryption, which
// need one (Integrity).
//
// The AEAD transforms use an 8-byte explicit IV, a 4-byte salt and a
// 16-byte ICV. AES-CBC (RFC 3602) uses a 16-byte IV and pads to its 16-byte
// block; NULL (RFC 2410) has no IV and pads to 4 bytes (RFC 4303 §2.4).
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
	// AES128CBC, AES192CBC and AES256CBC are AES in CBC mode with an
	// explicit 16-byte IV (RFC 3602, ENCR_AES_CBC with key length 128,
	// 192 or 256). Key material: the AES key. They need an Integrity.
	AES128CBC
	AES192CBC
	AES256CBC
	// NullEncryption sends the payload in clear (RFC 2410, ENCR_NULL):
	// integrity only. It needs an Integrity and is only used when a
	// configuration names it. Key material: none.
	NullEncryption
)

// saltLen is the length of the salt at the end of the key material
// (RFC 4106 §8.1, RFC 7634 §2).
const saltLen = 4

// cbcBlockLen is AES's block size, and the length of the CBC IV.
const cbcBlockLen = aes.BlockSize

var algorithmNames = [...]string{
	AES128GCM16:      "aes128gcm16",
	AES256GCM16:      "aes256gcm16",
	ChaCha20Poly1305: "chacha20poly1305",
	AES128CBC:        "aes128",
	AES192CBC:        "aes192",
	AES256CBC:        "aes256",
	NullEncryption:   "null",
}

// ParseAlgorithm parses an encryption algorithm in strongSwan's spelling:
// "aes128gcm16", "aes256gcm16", "chacha20poly1305", "aes128", "aes192",
// "aes256" (CBC) or "null". ParseTransform parses a whole transform such
// as "aes256-sha256".
func ParseAlgorithm(s string) (Algorithm, error) {
	for a, name := range algorithmNames {
		if a != 0 && s == name {
			return Algorithm(a), nil
		}
	}
	return 0, fmt.Errorf("esp: unknown algorithm %q (want aes128gcm16, aes256gcm16, chacha20poly1305, aes128, aes192, aes256 or null)", s)
}

// String returns the strongSwan spelling of a, or "Algorithm(N)" for an
// unknown value.
func (a Algorithm) String() string {
	if a.valid() {
		return algorithmNames[a]
	}
	return fmt.Sprintf("Algorithm(%d)", uint8(a))
}

// KeyLen returns the length of a's key material: for the AEADs the key and
// the salt (20 for AES128GCM16, 36 for AES256GCM16 and ChaCha20Poly1305),
// for AES-CBC the AES key (16, 24, 32), and 0 for NullEncryption and an
// unknown algorithm.
func (a Algorithm) KeyLen() int {
	switch a {
	case AES128GCM16:
		return 16 + saltLen
	case AES256GCM16:
		return 32 + saltLen
	case ChaCha20Poly1305:
		return chacha20poly1305.KeySize + saltLen
	case AES128CBC:
		return 16
	case AES192CBC:
		return 24
	case AES256CBC:
		return 32
	}
	return 0
}

// IsAEAD reports whether a is a combined-mode cipher, which carries its own
// ICV and takes no Integrity.
func (a Algorithm) IsAEAD() bool {
	return a == AES128GCM16 || a == AES256GCM16 || a == ChaCha20Poly1305
}

// IsCBC reports whether a is AES-CBC.
func (a Algorithm) IsCBC() bool { return a >= AES128CBC && a <= AES256CBC }

func (a Algorithm) valid() bool {
	return a >= AES128GCM16 && a <= NullEncryption
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
	return nil, fmt.Errorf("esp: %v is not an AEAD", a)
}

// Integrity is an ESP integrity transform, used with AES-CBC and NULL
// encryption. Each is HMAC with its output truncated to the ICV length
// (RFC 2404 for SHA-1, RFC 4868 for SHA-2); the key is as long as the
// hash output (RFC 2404 §3, RFC 4868 §2.1.1).
type Integrity uint8

const (
	// IntegrityNone is the absent integrity transform of an AEAD.
	IntegrityNone Integrity = iota
	// HMACSHA1_96 is HMAC-SHA-1 truncated to 96 bits (RFC 2404,
	// AUTH_HMAC_SHA1_96): a 20-byte key and a 12-byte ICV.
	HMACSHA1_96
	// HMACSHA256_128 is HMAC-SHA-256 truncated to 128 bits (RFC 4868,
	// AUTH_HMAC_SHA2_256_128): a 32-byte key and a 16-byte ICV.
	HMACSHA256_128
	// HMACSHA384_192 is HMAC-SHA-384 truncated to 192 bits (RFC 4868,
	// AUTH_HMAC_SHA2_384_192): a 48-byte key and a 24-byte ICV.
	HMACSHA384_192
	// HMACSHA512_256 is HMAC-SHA-512 truncated to 256 bits (RFC 4868,
	// AUTH_HMAC_SHA2_512_256): a 64-byte key and a 32-byte ICV.
	HMACSHA512_256
)

var integrityNames = [...]string{
	IntegrityNone:  "none",
	HMACSHA1_96:    "sha1",
	HMACSHA256_128: "sha256",
	HMACSHA384_192: "sha384",
	HMACSHA512_256: "sha512",
}

// ParseIntegrity parses an integrity algorithm as strongSwan writes it in
// a proposal: "sha1", "sha256", "sha384", "sha512", or "sha2_256",
// "sha2_384", "sha2_512".
func ParseIntegrity(s string) (Integrity, error) {
	s = strings.Replace(s, "sha2_", "sha", 1)
	for i, name := range integrityNames {
		if i != 0 && s == name {
			return Integrity(i), nil
		}
	}
	return 0, fmt.Errorf("esp: unknown integrity algorithm %q (want sha1, sha256, sha384 or sha512)", s)
}

// String returns the strongSwan spelling of i.
func (i Integrity) String() string {
	if int(i) < len(integrityNames) {
		return integrityNames[i]
	}
	return fmt.Sprintf("Integrity(%d)", uint8(i))
}

// KeyLen returns the key length of i in bytes, 0 for IntegrityNone.
func (i Integrity) KeyLen() int {
	switch i {
	case HMACSHA1_96:
		return sha1.Size
	case HMACSHA256_128:
		return sha256.Size
	case HMACSHA384_192:
		return sha512.Size384
	case HMACSHA512_256:
		return sha512.Size
	}
	return 0
}

// ICVLen returns the length of i's truncated ICV, 0 for IntegrityNone.
func (i Integrity) ICVLen() int {
	switch i {
	case HMACSHA1_96:
		return 12
	case HMACSHA256_128:
		return 16
	case HMACSHA384_192:
		return 24
	case HMACSHA512_256:
		return 32
	}
	return 0
}

func (i Integrity) valid() bool { return i >= HMACSHA1_96 && i <= HMACSHA512_256 }

// newHash returns the hash constructor of i.
func (i Integrity) newHash() func() hash.Hash {
	switch i {
	case HMACSHA1_96:
		return sha1.New
	case HMACSHA256_128:
		return sha256.New
	case HMACSHA384_192:
		return sha512.New384
	case HMACSHA512_256:
		return sha512.New
	}
	return nil
}

// newMAC returns a keyed HMAC whose inner and outer pads are computed
// once: hmac's Reset and Sum restore the saved states after the first
// Reset instead of hashing the key again.
func (i Integrity) newMAC(key []byte) hash.Hash {
	m := hmac.New(i.newHash(), key)
	m.Reset()
	return m
}

// Transform is a whole ESP transform: an encryption algorithm and, unless
// it is an AEAD, an integrity algorithm. Its methods give the sizes the
// transform adds to a packet.
type Transform struct {
	Algorithm Algorithm
	Integrity Integrity
}

// ParseTransform parses an ESP transform as strongSwan's esp_proposals
// write it, without a DH group: an AEAD ("aes256gcm16",
// "chacha20poly1305"), or AES-CBC or NULL encryption joined to an integrity
// algorithm with "-" ("aes256-sha256", "aes128-sha1", "null-sha256").
func ParseTransform(s string) (Transform, error) {
	unknown := fmt.Errorf("esp: unknown algorithm %q (want aes128gcm16, aes256gcm16 or chacha20poly1305, or aes128, aes192, aes256 or null joined to sha1, sha256, sha384 or sha512, as in aes256-sha256)", s)
	encr, integ, found := strings.Cut(s, "-")
	a, err := ParseAlgorithm(encr)
	if err != nil {
		return Transform{}, unknown
	}
	t := Transform{Algorithm: a}
	if found {
		if t.Integrity, err = ParseIntegrity(integ); err != nil {
			return Transform{}, unknown
		}
	}
	if err := t.Validate(); err != nil {
		return Transform{}, err
	}
	return t, nil
}

// Validate reports whether t is a usable pair: an AEAD alone, or AES-CBC or
// NULL with an integrity algorithm. ESP without integrity (RFC 4303 §3.2's
// confidentiality-only service) is refused.
func (t Transform) Validate() error {
	switch {
	case !t.Algorithm.valid():
		return fmt.Errorf("esp: unknown algorithm %v (want aes128gcm16, aes256gcm16, chacha20poly1305, aes128, aes192, aes256 or null)", t.Algorithm)
	case t.Algorithm.IsAEAD() && t.Integrity != IntegrityNone:
		return fmt.Errorf("esp: %v is an AEAD and takes no integrity algorithm (got %v)", t.Algorithm, t.Integrity)
	case !t.Algorithm.IsAEAD() && !t.Integrity.valid():
		return fmt.Errorf("esp: %v needs an integrity algorithm: %v-sha256, %v-sha384, %v-sha512 or %v-sha1",
			t.Algorithm, t.Algorithm, t.Algorithm, t.Algorithm, t.Algorithm)
	}
	return nil
}

// String returns t as ParseTransform reads it.
func (t Transform) String() string {
	if t.Integrity == IntegrityNone {
		return t.Algorithm.String()
	}
	return t.Algorithm.String() + "-" + t.Integrity.String()
}

// IVLen is the length of the explicit IV t sends after the ESP header.
func (t Transform) IVLen() int {
	switch {
	case t.Algorithm.IsCBC():
		return cbcBlockLen
	case t.Algorithm == NullEncryption:
		return 0
	}
	return IVLen
}

// Headroom is the number of bytes before the payload: the ESP header and
// the IV. It is at most MaxHeadroomLen.
func (t Transform) Headroom() int { return HeaderLen + t.IVLen() }

// ICVLen is the length of the integrity check value t appends.
func (t Transform) ICVLen() int {
	if t.Algorithm.IsAEAD() {
		return ICVLen
	}
	return t.Integrity.ICVLen()
}

// BlockLen is the boundary the encrypted part (payload, padding, pad
// length, next header) is padded to: the cipher's block size, and at least
// 4 bytes (RFC 4303 §2.4).
func (t Transform) BlockLen() int {
	if t.Algorithm.IsCBC() {
		return cbcBlockLen
	}
	return alignment
}

// padLen returns the number of padding bytes for a payload of n bytes.
func (t Transform) padLen(n int) int {
	bl := t.BlockLen()
	return (bl - (n+trailerFixedLen)%bl) % bl
}

// TrailerLen returns the number of bytes Seal appends to a payload of n
// bytes: padding, the pad length byte, the next header byte and the ICV.
func (t Transform) TrailerLen(n int) int {
	return t.padLen(n) + trailerFixedLen + t.ICVLen()
}

// MaxPayload returns the largest payload length whose sealed ESP packet
// (header to ICV) is at most espLen bytes, or -1 if not even an empty
// payload fits.
func (t Transform) MaxPayload(espLen int) int {
	bl := t.BlockLen()
	room := espLen - t.Headroom() - t.ICVLen()
	if room < bl {
		return -1
	}
	return room - room%bl - trailerFixedLen
}
