package ikecrypto

import (
	"bytes"
	"fmt"
	"math/big"
	"testing"
	"time"
)

// modpDefinitions are the MODP primes as RFC 2409 §6.2 (group 2) and
// RFC 3526 §2-§7 (groups 5, 14-18) define them in their text:
// "p = 2^n - 2^(n-64) - 1 + 2^64 * { [2^(n-130) pi] + k }", generator 2.
var modpDefinitions = []struct {
	group uint16
	bits  uint
	k     int64
}{
	{GroupMODP1024, 1024, 129093},  // RFC 2409 §6.2, "Second Oakley Group"
	{GroupMODP1536, 1536, 741804},  // RFC 3526 §2
	{GroupMODP2048, 2048, 124476},  // RFC 3526 §3
	{GroupMODP3072, 3072, 1690314}, // RFC 3526 §4
	{GroupMODP4096, 4096, 240904},  // RFC 3526 §5
	{GroupMODP6144, 6144, 929484},  // RFC 3526 §6
	{GroupMODP8192, 8192, 4743158}, // RFC 3526 §7
}

// rfcPrime computes 2^n - 2^(n-64) - 1 + 2^64 * { [2^(n-130) pi] + k },
// with pi from Machin's formula pi = 16 atan(1/5) - 4 atan(1/239) in fixed
// point with 64 guard bits.
func rfcPrime(n uint, k int64) *big.Int {
	bits, guard := n-130, uint(64)
	one := new(big.Int).Lsh(big.NewInt(1), bits+guard)
	atanInv := func(x int64) *big.Int { // atan(1/x) * 2^(bits+guard)
		sum := new(big.Int)
		xx := big.NewInt(x * x)
		term := new(big.Int).Div(one, big.NewInt(x)) // 1/x^(2k+1)
		for i := int64(0); term.Sign() != 0; i++ {
			t := new(big.Int).Div(term, big.NewInt(2*i+1))
			if i%2 == 0 {
				sum.Add(sum, t)
			} else {
				sum.Sub(sum, t)
			}
			term.Div(term, xx)
		}
		return sum
	}
	pi := new(big.Int).Mul(atanInv(5), big.NewInt(16))
	pi.Sub(pi, new(big.Int).Mul(atanInv(239), big.NewInt(4)))
	pi.Rsh(pi, guard) // [2^(n-130) pi]

	p := new(big.Int).Lsh(big.NewInt(1), n)
	p.Sub(p, new(big.Int).Lsh(big.NewInt(1), n-64))
	p.Sub(p, big.NewInt(1))
	pi.Add(pi, big.NewInt(k))
	return p.Add(p, pi.Lsh(pi, 64))
}

// TestMODPPrimes checks every MODP prime against its definition in the
// RFC text, and that it is a safe prime of the stated size. The group 14
// prime's hex digits were also checked by hand against RFC 3526 §3, as
// were the first and last digits of the others.
func TestMODPPrimes(t *testing.T) {
	for _, d := range modpDefinitions {
		g := modpGroupOf(d.group)
		if g == nil {
			t.Fatalf("group %d missing", d.group)
		}
		if want := rfcPrime(d.bits, d.k); g.p.Cmp(want) != 0 {
			t.Fatalf("group %d prime\n%X\ndiffers from the RFC's definition\n%X", d.group, g.p, want)
		}
		if g.p.BitLen() != int(d.bits) || g.size != int(d.bits/8) {
			t.Fatalf("group %d: %d bits", d.group, g.p.BitLen())
		}
		if d.bits > 4096 && testing.Short() {
			continue
		}
		q := new(big.Int).Rsh(g.p, 1) // (p-1)/2: p is a safe prime
		if !g.p.ProbablyPrime(1) || !q.ProbablyPrime(1) {
			t.Fatalf("group %d: p or (p-1)/2 is not prime", d.group)
		}
	}
}

// TestMODP runs a key exchange in every MODP group, checks the padding of
// values to the length of p (RFC 7296 §3.4, §2.14), and that peer values
// outside (1, p-1) (RFC 6989 §2.1) and of the wrong length are refused.
func TestMODP(t *testing.T) {
	for _, d := range modpDefinitions {
		t.Run(fmt.Sprint(d.group), func(t *testing.T) {
			start := time.Now()
			a, err := GenerateDH(d.group, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := GenerateDH(d.group, nil)
			if err != nil {
				t.Fatal(err)
			}
			size := int(d.bits / 8)
			if a.Group() != d.group || len(a.Public()) != size {
				t.Fatalf("group %d, public value of %d bytes", a.Group(), len(a.Public()))
			}
			sa, err := a.SharedSecret(b.Public())
			if err != nil {
				t.Fatal(err)
			}
			sb, err := b.SharedSecret(a.Public())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(sa, sb) || len(sa) != size {
				t.Fatalf("secrets differ or have the wrong length")
			}
			t.Logf("group %d: two keys and two secrets in %v", d.group, time.Since(start))
			// The public value is 2^x mod p (math/big as the reference).
			g := modpGroupOf(d.group)
			x := new(big.Int).SetBytes(a.(*modpKE).x)
			if y := new(big.Int).Exp(big.NewInt(2), x, g.p); !bytes.Equal(y.FillBytes(make([]byte, size)), a.Public()) {
				t.Fatal("public value is not 2^x mod p")
			}

			// x = 5 gives 2^5 = 32; with peer 2^7 the secret is 2^35,
			// both padded on the left.
			small := g.newKE(big.NewInt(5).FillBytes(make([]byte, size)))
			pad := func(v *big.Int) []byte { return v.FillBytes(make([]byte, size)) }
			if !bytes.Equal(small.Public(), pad(big.NewInt(32))) {
				t.Errorf("public value %x", small.Public())
			}
			s, err := small.SharedSecret(pad(big.NewInt(128)))
			if err != nil || !bytes.Equal(s, pad(new(big.Int).Lsh(big.NewInt(1), 35))) {
				t.Errorf("secret %x, %v; want 2^35", s, err)
			}

			pm1 := new(big.Int).Sub(g.p, big.NewInt(1))
			for name, bad := range map[string][]byte{
				"0":     make([]byte, size),
				"1":     pad(big.NewInt(1)),
				"p-1":   pad(pm1),
				"p":     pad(g.p),
				"p+1":   pad(new(big.Int).Add(g.p, big.NewInt(1))),
				"max":   bytes.Repeat([]byte{0xff}, size),
				"short": b.Public()[1:],
				"long":  append([]byte{0}, b.Public()...),
				"empty": nil,
			} {
				if s, err := a.SharedSecret(bad); err == nil {
					t.Errorf("peer value %s accepted, secret %x", name, s)
				}
			}
			for _, v := range []*big.Int{big.NewInt(2), new(big.Int).Sub(pm1, big.NewInt(1))} {
				if _, err := a.SharedSecret(pad(v)); err != nil {
					t.Errorf("peer value %x rejected: %v", v, err)
				}
			}
			// A degenerate secret: x = (p-1)/2 with peer p-2... is
			// unreachable for a random x; x = p-1 with any y gives 1.
			deg := g.newKE(pad(pm1))
			if s, err := deg.SharedSecret(pad(big.NewInt(3))); err == nil {
				t.Errorf("degenerate secret accepted: %x", s)
			}
		})
	}
}
