// Package ikecrypto holds the cryptography of IKEv2 (RFC 7296): the
// pseudo-random functions and prf+ (§2.13), the key schedule of the IKE SA
// and its Child SAs (§2.14, §2.17, §2.18), pre-shared key authentication
// (§2.15), the key exchange groups, and the protection of the Encrypted
// (SK) payload (§3.14, RFC 5282, RFC 7634).
//
// The package knows nothing of message formats: transforms are named by
// their IANA numbers (the constants below), messages are byte slices, and
// the caller tells the SK cipher where the SK payload's data starts.
//
// All functions and types are safe for concurrent use unless their
// documentation says otherwise.
package ikecrypto

// Transform type 1, encryption algorithms (IANA "IKEv2 Parameters",
// Transform Type 1 - Encryption Algorithm Transform IDs).
const (
	EncrNull             = 11 // ENCR_NULL, RFC 2410: ESP only, integrity without encryption
	EncrAESCBC           = 12 // ENCR_AES_CBC, RFC 3602
	EncrAESGCM16         = 20 // ENCR_AES_GCM_16, RFC 5282 (16-octet ICV)
	EncrChaCha20Poly1305 = 28 // ENCR_CHACHA20_POLY1305, RFC 7634
)

// Transform type 2, pseudo-random functions (IANA Transform Type 2 -
// Pseudorandom Function Transform IDs; RFC 4868).
const (
	PRFHMACSHA1     = 2 // PRF_HMAC_SHA1, RFC 2104: for old peers only
	PRFHMACSHA2_256 = 5 // PRF_HMAC_SHA2_256
	PRFHMACSHA2_384 = 6 // PRF_HMAC_SHA2_384
	PRFHMACSHA2_512 = 7 // PRF_HMAC_SHA2_512
)

// Transform type 3, integrity algorithms (IANA Transform Type 3 - Integrity
// Algorithm Transform IDs; RFC 4868).
const (
	IntegNone             = 0  // NONE, required with AEAD ciphers
	IntegHMACSHA1_96      = 2  // AUTH_HMAC_SHA1_96, RFC 2404: for old peers only
	IntegHMACSHA2_256_128 = 12 // AUTH_HMAC_SHA2_256_128
	IntegHMACSHA2_384_192 = 13 // AUTH_HMAC_SHA2_384_192
	IntegHMACSHA2_512_256 = 14 // AUTH_HMAC_SHA2_512_256
)

// Transform type 4, key exchange methods (IANA Transform Type 4 - Key
// Exchange Method Transform IDs).
const (
	GroupMODP1024   = 2  // 1024-bit MODP group, RFC 2409 §6.2: weak (RFC 8247 §2.4)
	GroupMODP1536   = 5  // 1536-bit MODP group, RFC 3526 §2: weak (RFC 8247 §2.4)
	GroupMODP2048   = 14 // 2048-bit MODP group, RFC 3526 §3
	GroupMODP3072   = 15 // 3072-bit MODP group, RFC 3526 §4
	GroupMODP4096   = 16 // 4096-bit MODP group, RFC 3526 §5
	GroupMODP6144   = 17 // 6144-bit MODP group, RFC 3526 §6
	GroupMODP8192   = 18 // 8192-bit MODP group, RFC 3526 §7
	GroupECP256     = 19 // 256-bit random ECP group, RFC 5903
	GroupECP384     = 20 // 384-bit random ECP group, RFC 5903
	GroupECP521     = 21 // 521-bit random ECP group, RFC 5903
	GroupCurve25519 = 31 // Curve25519, RFC 8031
)
