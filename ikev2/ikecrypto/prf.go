package ikecrypto

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
)

// A PRF is one of the IKEv2 pseudo-random functions PRF_HMAC_SHA2_256,
// _384 and _512 (RFC 4868 §2.1.2), or PRF_HMAC_SHA1 (RFC 2104) for old
// peers, which the proposal layer only allows when configured as weak. It is a small value, ready to copy; the
// zero PRF is invalid and its methods panic. Obtain one with [NewPRF].
type PRF struct {
	id   uint16
	hash func() hash.Hash
	size int
}

// NewPRF returns the PRF with IANA transform ID id (PRFHMACSHA2_256,
// PRFHMACSHA2_384 or PRFHMACSHA2_512).
func NewPRF(id uint16) (PRF, error) {
	switch id {
	case PRFHMACSHA1:
		return PRF{id: id, hash: sha1.New, size: sha1.Size}, nil
	case PRFHMACSHA2_256:
		return PRF{id: id, hash: sha256.New, size: sha256.Size}, nil
	case PRFHMACSHA2_384:
		return PRF{id: id, hash: sha512.New384, size: sha512.Size384}, nil
	case PRFHMACSHA2_512:
		return PRF{id: id, hash: sha512.New, size: sha512.Size}, nil
	}
	return PRF{}, fmt.Errorf("ikecrypto: unsupported PRF %d", id)
}

// ID returns the IANA transform ID of p.
func (p PRF) ID() uint16 { return p.id }

// Size returns the output length of p in bytes. For the HMAC-SHA2 PRFs it
// is also the preferred key length (RFC 4868 §2.1.2), which RFC 7296 §2.14
// uses as the length of SK_d, SK_pi and SK_pr.
func (p PRF) Size() int {
	p.check()
	return p.size
}

// Compute returns prf(key, data): HMAC (RFC 2104) with p's hash, not
// truncated (RFC 4868 §2.1.2). Keys of any length are allowed.
func (p PRF) Compute(key, data []byte) []byte {
	return p.compute(key, data)
}

// compute returns prf(key, data[0] | data[1] | ...).
func (p PRF) compute(key []byte, data ...[]byte) []byte {
	p.check()
	m := hmac.New(p.hash, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(make([]byte, 0, p.size))
}

// MaxPlusLen returns the largest output prf+ can produce with p: 255
// blocks, since the block counter is one octet (RFC 7296 §2.13).
func (p PRF) MaxPlusLen() int {
	p.check()
	return 255 * p.size
}

// Plus returns the first n bytes of prf+(key, seed) (RFC 7296 §2.13):
//
//	prf+ (K,S) = T1 | T2 | T3 | T4 | ...
//	T1 = prf (K, S | 0x01)
//	T2 = prf (K, T1 | S | 0x02)
//	T3 = prf (K, T2 | S | 0x03)
//
// n larger than p.MaxPlusLen() is a programmer error and panics.
func (p PRF) Plus(key, seed []byte, n int) []byte {
	return p.plus(key, n, seed)
}

// plus is Plus with the seed given as parts to be concatenated.
func (p PRF) plus(key []byte, n int, seed ...[]byte) []byte {
	p.check()
	if n < 0 || n > p.MaxPlusLen() {
		panic(fmt.Sprintf("ikecrypto: prf+ output of %d bytes, limit is %d", n, p.MaxPlusLen()))
	}
	out := make([]byte, 0, n+p.size)
	m := hmac.New(p.hash, key)
	var prev []byte
	for i := byte(1); len(out) < n; i++ {
		m.Reset()
		m.Write(prev)
		for _, s := range seed {
			m.Write(s)
		}
		m.Write([]byte{i})
		start := len(out)
		out = m.Sum(out)
		prev = out[start:]
	}
	clear(out[n:]) // the part of the last block not returned
	return out[:n:n]
}

// String returns the name IANA gives the PRF, like "PRF_HMAC_SHA2_256".
func (p PRF) String() string {
	switch p.id {
	case PRFHMACSHA1:
		return "PRF_HMAC_SHA1"
	case PRFHMACSHA2_256:
		return "PRF_HMAC_SHA2_256"
	case PRFHMACSHA2_384:
		return "PRF_HMAC_SHA2_384"
	case PRFHMACSHA2_512:
		return "PRF_HMAC_SHA2_512"
	}
	return fmt.Sprintf("PRF(%d)", p.id)
}

func (p PRF) check() {
	if p.hash == nil {
		panic("ikecrypto: use of zero PRF")
	}
}

// integ is one of the integrity algorithms AUTH_HMAC_SHA2_256_128, _384_192
// and _512_256: HMAC truncated to half the hash length, with a key of the
// full hash length (RFC 4868 §2.1.1, §2.6).
type integ struct {
	id     uint16
	hash   func() hash.Hash
	keyLen int
	icvLen int
}

func integByID(id uint16) (integ, bool) {
	switch id {
	case IntegHMACSHA1_96:
		return integ{id, sha1.New, 20, 12}, true // RFC 2404 §2-3
	case IntegHMACSHA2_256_128:
		return integ{id, sha256.New, 32, 16}, true
	case IntegHMACSHA2_384_192:
		return integ{id, sha512.New384, 48, 24}, true
	case IntegHMACSHA2_512_256:
		return integ{id, sha512.New, 64, 32}, true
	}
	return integ{}, false
}

// mac returns the truncated HMAC of data under key.
func (a integ) mac(key, data []byte) []byte {
	m := hmac.New(a.hash, key)
	m.Write(data)
	return m.Sum(nil)[:a.icvLen]
}
