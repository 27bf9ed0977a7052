package ikecrypto

import (
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"io"
)

// A DH is one side of an IKEv2 key exchange (RFC 7296 §1.2, §3.4): a
// private key of one group and its public value. It is safe for concurrent
// use.
type DH interface {
	// Group returns the IANA key exchange method number, like GroupECP384.
	Group() uint16

	// Public returns the public value as the Key Exchange payload carries
	// it: for MODP groups g^x padded with zeros on the left to the length
	// of the prime (RFC 7296 §3.4), for ECP groups x | y without a point
	// format octet (RFC 5903 §7), for Curve25519 the 32-octet u-coordinate
	// (RFC 8031 §2). The caller may modify the returned slice.
	Public() []byte

	// SharedSecret returns g^ir, the shared secret with the peer whose
	// public value is peer, in the form SKEYSEED and KEYMAT use it: the
	// MODP value padded to the length of the prime (RFC 7296 §2.14), the
	// x-coordinate for ECP groups (RFC 5903 §7), the 32 octets of X25519
	// for Curve25519 (RFC 8031 §2). A peer value of the wrong length or out
	// of range, a point not on the curve, and an all-zero Curve25519
	// result are rejected with an error.
	SharedSecret(peer []byte) ([]byte, error)
}

// PublicLen returns the length of the public value of group, which is the
// length of the Key Exchange Data of the KE payload, and false if the group
// is not supported.
func PublicLen(group uint16) (int, bool) {
	if g := modpGroupOf(group); g != nil {
		return g.size, true
	}
	if group == GroupCurve25519 {
		return 32, true
	}
	if c, n := nistCurve(group); c != nil {
		return 2 * n, true
	}
	return 0, false
}

// SupportedGroup reports whether [GenerateDH] supports group.
func SupportedGroup(group uint16) bool {
	_, ok := PublicLen(group)
	return ok
}

// GenerateDH returns a new private key of group.
//
// For a MODP group the private exponent has the size RFC 3526 §8 gives
// for the group's strength, drawn with random bytes from r, or from
// crypto/rand if r is nil; the exponentiation is constant-time (modp.go).
// The elliptic curve groups use crypto/ecdh, which since Go 1.26 ignores r
// and always uses a secure source.
func GenerateDH(group uint16, r io.Reader) (DH, error) {
	if r == nil {
		r = rand.Reader
	}
	if g := modpGroupOf(group); g != nil {
		return g.generate(r)
	}
	switch group {
	case GroupCurve25519:
		priv, err := ecdh.X25519().GenerateKey(r)
		if err != nil {
			return nil, fmt.Errorf("ikecrypto: group %d: %w", group, err)
		}
		return newECDH(group, priv, 0), nil
	}
	if c, n := nistCurve(group); c != nil {
		priv, err := c.GenerateKey(r)
		if err != nil {
			return nil, fmt.Errorf("ikecrypto: group %d: %w", group, err)
		}
		return newECDH(group, priv, n), nil
	}
	return nil, fmt.Errorf("ikecrypto: unsupported key exchange group %d", group)
}

// nistCurve returns the curve of an ECP group and the length of one of its
// coordinates, or nil.
func nistCurve(group uint16) (ecdh.Curve, int) {
	switch group {
	case GroupECP256:
		return ecdh.P256(), 32
	case GroupECP384:
		return ecdh.P384(), 48
	case GroupECP521:
		return ecdh.P521(), 66
	}
	return nil, 0
}

// ecdhKE is a key of an ECP group (RFC 5903) or of Curve25519 (RFC 8031).
type ecdhKE struct {
	group    uint16
	priv     *ecdh.PrivateKey
	coordLen int // length of one coordinate of an ECP group, 0 for Curve25519
	pub      []byte
}

func newECDH(group uint16, priv *ecdh.PrivateKey, coordLen int) *ecdhKE {
	pub := priv.PublicKey().Bytes()
	if coordLen != 0 {
		// Uncompressed SEC 1 point, 0x04 | x | y: RFC 5903 §7 sends x | y.
		pub = pub[1:]
	}
	return &ecdhKE{group: group, priv: priv, coordLen: coordLen, pub: pub}
}

func (k *ecdhKE) Group() uint16 { return k.group }

func (k *ecdhKE) Public() []byte { return append([]byte(nil), k.pub...) }

func (k *ecdhKE) SharedSecret(peer []byte) ([]byte, error) {
	var enc []byte
	if k.coordLen != 0 {
		if len(peer) != 2*k.coordLen {
			return nil, fmt.Errorf("ikecrypto: group %d: public value is %d bytes, want %d", k.group, len(peer), 2*k.coordLen)
		}
		enc = make([]byte, 1+len(peer))
		enc[0] = 4
		copy(enc[1:], peer)
	} else {
		if len(peer) != 32 {
			return nil, fmt.Errorf("ikecrypto: group %d: public value is %d bytes, want 32", k.group, len(peer))
		}
		enc = peer
	}
	pub, err := k.priv.Curve().NewPublicKey(enc)
	if err != nil {
		return nil, fmt.Errorf("ikecrypto: group %d: invalid public value: %w", k.group, err)
	}
	// For the NIST curves ECDH returns the x-coordinate (RFC 5903 §7); for
	// X25519 it fails on an all-zero result (RFC 8031 §2, RFC 7748 §6.1).
	s, err := k.priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("ikecrypto: group %d: %w", k.group, err)
	}
	return s, nil
}
