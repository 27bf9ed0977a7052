package ikecrypto

import (
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
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
	switch group {
	case GroupMODP2048:
		return modp2048Len, true
	case GroupCurve25519:
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
// For the MODP group the private exponent is drawn uniformly from
// [2, p-2] with random bytes from r, or from crypto/rand if r is nil. The
// elliptic curve groups use crypto/ecdh, which since Go 1.26 ignores r and
// always uses a secure source.
func GenerateDH(group uint16, r io.Reader) (DH, error) {
	if r == nil {
		r = rand.Reader
	}
	switch group {
	case GroupMODP2048:
		return generateMODP(r)
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

// modp2048Len is the length of the group 14 prime and of its values.
const modp2048Len = 256

// modp2048P is the prime of the 2048-bit MODP group, RFC 3526 §3:
// 2^2048 - 2^1984 - 1 + 2^64 * { [2^1918 pi] + 124476 }. Its generator is 2.
var modp2048P, _ = new(big.Int).SetString(""+
	"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1"+
	"29024E088A67CC74020BBEA63B139B22514A08798E3404DD"+
	"EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245"+
	"E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"+
	"EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D"+
	"C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"+
	"83655D23DCA3AD961C62F356208552BB9ED529077096966D"+
	"670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"+
	"E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9"+
	"DE2BCBF6955817183995497CEA956AE515D2261898FA0510"+
	"15728E5A8AACAA68FFFFFFFFFFFFFFFF", 16)

var (
	bigOne     = big.NewInt(1)
	bigTwo     = big.NewInt(2)
	modp2048P1 = new(big.Int).Sub(modp2048P, bigOne) // p-1
)

// modpKE is a key of the 2048-bit MODP group. The arithmetic is math/big's,
// which does not promise constant time.
type modpKE struct {
	x   *big.Int // private exponent
	pub []byte
}

func generateMODP(r io.Reader) (*modpKE, error) {
	// x uniform in [2, p-2]: Int returns [0, p-3).
	x, err := rand.Int(r, new(big.Int).Sub(modp2048P, big.NewInt(3)))
	if err != nil {
		return nil, fmt.Errorf("ikecrypto: group %d: %w", GroupMODP2048, err)
	}
	x.Add(x, bigTwo)
	return newMODP(x), nil
}

func newMODP(x *big.Int) *modpKE {
	y := new(big.Int).Exp(bigTwo, x, modp2048P)
	return &modpKE{x: x, pub: y.FillBytes(make([]byte, modp2048Len))}
}

func (k *modpKE) Group() uint16 { return GroupMODP2048 }

func (k *modpKE) Public() []byte { return append([]byte(nil), k.pub...) }

var errMODPRange = errors.New("ikecrypto: group 14: public value not in (1, p-1)")

func (k *modpKE) SharedSecret(peer []byte) ([]byte, error) {
	if len(peer) != modp2048Len {
		return nil, fmt.Errorf("ikecrypto: group 14: public value is %d bytes, want %d", len(peer), modp2048Len)
	}
	y := new(big.Int).SetBytes(peer)
	if y.Cmp(bigOne) <= 0 || y.Cmp(modp2048P1) >= 0 {
		return nil, errMODPRange
	}
	s := new(big.Int).Exp(y, k.x, modp2048P)
	if s.Cmp(bigOne) <= 0 || s.Cmp(modp2048P1) >= 0 {
		// Only when x is a multiple of the order of y, which for a y in
		// range is q or 2q, (p-1)/2 or p-1: not by chance, but a degenerate
		// secret must never reach the key schedule.
		return nil, errors.New("ikecrypto: group 14: degenerate shared secret")
	}
	return s.FillBytes(make([]byte, modp2048Len)), nil
}
