package ikecrypto

import (
	"errors"
	"fmt"
	"io"
	"math/big"

	"filippo.io/bigmod"
)

// modpGroup is a MODP Diffie-Hellman group with generator 2 and a safe
// prime p (RFC 2409 §6.2, RFC 3526).
//
// The exponentiations use filippo.io/bigmod, the constant-time modular
// arithmetic of Go's crypto/rsa published as a module: their time does
// not depend on the private exponent or the shared secret (review finding
// L9). math/big is used only to draw the exponent, on public bounds.
type modpGroup struct {
	id   uint16
	size int // bytes of p, and of public values and shared secrets
	// expBits is the length of private exponents: the upper end of the
	// exponent sizes RFC 3526 §8 gives for the group's strength (for
	// group 2, group 5's). A full-size exponent would cost an 8192-bit
	// group about 20 times more for no added strength.
	expBits int
	p       *big.Int
	m       *bigmod.Modulus
	g       *bigmod.Nat // 2
}

var modpGroups = []*modpGroup{
	newMODPGroup(GroupMODP1024, modp1024Hex, 240),
	newMODPGroup(GroupMODP1536, modp1536Hex, 240),
	newMODPGroup(GroupMODP2048, modp2048Hex, 320),
	newMODPGroup(GroupMODP3072, modp3072Hex, 420),
	newMODPGroup(GroupMODP4096, modp4096Hex, 480),
	newMODPGroup(GroupMODP6144, modp6144Hex, 540),
	newMODPGroup(GroupMODP8192, modp8192Hex, 620),
}

func newMODPGroup(id uint16, hex string, expBits int) *modpGroup {
	p, ok := new(big.Int).SetString(hex, 16)
	if !ok {
		panic("ikecrypto: bad MODP prime")
	}
	g := &modpGroup{id: id, size: (p.BitLen() + 7) / 8, p: p, expBits: expBits}
	var err error
	if g.m, err = bigmod.NewModulus(p.Bytes()); err != nil {
		panic(err)
	}
	if g.g, err = bigmod.NewNat().SetBytes([]byte{2}, g.m); err != nil {
		panic(err)
	}
	return g
}

// modpGroupOf returns the MODP group with IANA number id, or nil.
func modpGroupOf(id uint16) *modpGroup {
	for _, g := range modpGroups {
		if g.id == id {
			return g
		}
	}
	return nil
}

// generate draws a private exponent of expBits bits, the top one set, and
// computes 2^x. With a safe prime every exponent in [2, p-2] is as good as
// another; RFC 3526 §8 gives the sizes that keep the group's strength.
func (g *modpGroup) generate(r io.Reader) (*modpKE, error) {
	x := make([]byte, (g.expBits+7)/8)
	if _, err := io.ReadFull(r, x); err != nil {
		return nil, fmt.Errorf("ikecrypto: group %d: %w", g.id, err)
	}
	if extra := len(x)*8 - g.expBits; extra > 0 {
		x[0] &= 0xff >> extra
	}
	x[0] |= 0x80 >> ((len(x)*8 - g.expBits) % 8)
	return g.newKE(x), nil
}

// newKE returns the key with private exponent x, big-endian; its length,
// not its value, decides the time Exp takes.
func (g *modpGroup) newKE(x []byte) *modpKE {
	y := bigmod.NewNat().Exp(g.g, x, g.m)
	return &modpKE{group: g, x: x, pub: y.Bytes(g.m)}
}

// modpKE is a key of a MODP group.
type modpKE struct {
	group *modpGroup
	x     []byte // private exponent, big-endian
	pub   []byte
}

func (k *modpKE) Group() uint16 { return k.group.id }

func (k *modpKE) Public() []byte { return append([]byte(nil), k.pub...) }

// SharedSecret checks the peer's public value as RFC 6989 §2.1 requires
// for a MODP group with a safe prime, 1 < y < p-1, and refuses a
// degenerate result (1 or p-1; 0 cannot occur). It returns y^x padded to
// the length of p (RFC 7296 §2.14).
func (k *modpKE) SharedSecret(peer []byte) ([]byte, error) {
	g := k.group
	if len(peer) != g.size {
		return nil, fmt.Errorf("ikecrypto: group %d: public value is %d bytes, want %d", g.id, len(peer), g.size)
	}
	y, err := bigmod.NewNat().SetBytes(peer, g.m)
	if err != nil || y.IsZero() == 1 || y.IsOne() == 1 || y.IsMinusOne(g.m) == 1 {
		return nil, fmt.Errorf("ikecrypto: group %d: %w", g.id, errMODPRange)
	}
	s := bigmod.NewNat().Exp(y, k.x, g.m)
	if s.IsOne() == 1 || s.IsMinusOne(g.m) == 1 || s.IsZero() == 1 {
		// Only when x is a multiple of the order of y (q or 2q, with
		// p = 2q+1): not by chance, but a degenerate secret must never
		// reach the key schedule.
		return nil, fmt.Errorf("ikecrypto: group %d: degenerate shared secret", g.id)
	}
	return s.Bytes(g.m), nil
}

var errMODPRange = errors.New("public value not in (1, p-1) (RFC 6989 §2.1)")
