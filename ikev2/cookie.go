package ikev2

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"sync/atomic"
	"time"
)

// Cookies (RFC 7296 §2.6): a responder under load answers an IKE_SA_INIT
// request without state, with a COOKIE the initiator must repeat, so that
// only initiators that receive at their address make it keep state or do
// a key exchange.
//
//	Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)
//
// The secret changes every cookieRotation; a cookie made with the previous
// secret is still accepted, as §2.6 allows, so that an initiator whose
// cookie was made just before a change is not turned away twice.

// cookieRotation is how often the cookie secret changes (strongSwan's
// COOKIE_LIFETIME is the same).
const cookieRotation = 120 * time.Second

// cookieLen is the length of our cookies: the version octet and SHA-256.
const cookieLen = 1 + sha256.Size

// cookieSecrets is one generation of the secret and the one before it.
// It is immutable once published.
type cookieSecrets struct {
	version     uint8 // the first octet of the cookies made with cur
	prevVersion uint8 // of the cookies made with prev; 0: no prev
	cur, prev   [32]byte
	until       time.Time // when cur is replaced; zero: not yet started
}

// cookieJar makes and checks cookies. It is safe for concurrent use: the
// secrets are an immutable value behind an atomic pointer, replaced by
// compare-and-swap when they expire.
type cookieJar struct {
	rand    io.Reader
	secrets atomic.Pointer[cookieSecrets]
}

func (j *cookieJar) init(r io.Reader) error {
	s := &cookieSecrets{version: 1}
	if _, err := io.ReadFull(r, s.cur[:]); err != nil {
		return fmt.Errorf("ikev2: random source: %w", err)
	}
	j.rand = r
	j.secrets.Store(s)
	return nil
}

// current returns the secrets valid at now, rotating them if they expired.
// If the random source fails, the old secret stays in use.
func (j *cookieJar) current(now time.Time) *cookieSecrets {
	for {
		s := j.secrets.Load()
		switch {
		case s.until.IsZero():
			// First use: the first secret lives a full period from now.
			n := *s
			n.until = now.Add(cookieRotation)
			if j.secrets.CompareAndSwap(s, &n) {
				return &n
			}
		case now.Before(s.until):
			return s
		default:
			// Versions run 1..255; 0 marks "no previous secret".
			n := &cookieSecrets{version: s.version%255 + 1, prevVersion: s.version, prev: s.cur, until: now.Add(cookieRotation)}
			if _, err := io.ReadFull(j.rand, n.cur[:]); err != nil {
				return s
			}
			if j.secrets.CompareAndSwap(s, n) {
				return n
			}
		}
	}
}

// cookieHash returns Hash(Ni | IPi | SPIi | secret) without allocating.
func cookieHash(secret *[32]byte, ni []byte, ipi netip.Addr, spii uint64) [sha256.Size]byte {
	var buf [MaxNonceLen + 16 + 8 + 32]byte
	b := append(buf[:0], ni...)
	ip := ipi.Unmap().As16()
	if ipi.Unmap().Is4() {
		b = append(b, ip[12:]...)
	} else {
		b = append(b, ip[:]...)
	}
	b = binary.BigEndian.AppendUint64(b, spii)
	b = append(b, secret[:]...)
	return sha256.Sum256(b)
}

// make returns the cookie for an initiator, made with the current secret.
func (j *cookieJar) make(ni []byte, ipi netip.Addr, spii uint64, now time.Time) []byte {
	s := j.current(now)
	h := cookieHash(&s.cur, ni, ipi, spii)
	return append([]byte{s.version}, h[:]...)
}

// valid reports whether cookie is one we made for this initiator with the
// current or the previous secret.
func (j *cookieJar) valid(cookie, ni []byte, ipi netip.Addr, spii uint64, now time.Time) bool {
	if len(cookie) != cookieLen || len(ni) > MaxNonceLen {
		return false
	}
	s := j.current(now)
	var secret *[32]byte
	switch {
	case cookie[0] == s.version:
		secret = &s.cur
	case s.prevVersion != 0 && cookie[0] == s.prevVersion:
		secret = &s.prev
	default:
		return false
	}
	h := cookieHash(secret, ni, ipi, spii)
	return subtle.ConstantTimeCompare(cookie[1:], h[:]) == 1
}
