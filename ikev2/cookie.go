package ikev2

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
)

// Cookies (RFC 7296 §2.6): a responder under load answers an IKE_SA_INIT
// request without state, with a COOKIE the initiator must repeat, so that
// only initiators that receive at their address make it keep state.

// cookieVersion is the first octet of our cookies, so that a new secret
// format can be told apart (§2.6 suggests a version ID).
const cookieVersion = 1

// cookieState is the responder's cookie knob and secret.
type cookieState struct {
	required bool
	secret   [32]byte
}

func (c *cookieState) init(r io.Reader) error {
	if _, err := io.ReadFull(r, c.secret[:]); err != nil {
		return fmt.Errorf("ikev2: random source: %w", err)
	}
	return nil
}

// make returns the cookie for an initiator: the version octet and
// SHA-256(secret | Ni | IPi | SPIi).
func (c *cookieState) make(ni []byte, ipi netip.Addr, spii uint64) []byte {
	h := sha256.New()
	h.Write(c.secret[:])
	h.Write(ni)
	h.Write(ipi.Unmap().AsSlice())
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], spii)
	h.Write(b[:])
	return h.Sum([]byte{cookieVersion})
}

// check reports whether the first payload of an IKE_SA_INIT request is a
// COOKIE notify with the cookie of this initiator (§2.6: it must come
// first).
func (c *cookieState) check(payloads []Payload, ni []byte, ipi netip.Addr, spii uint64) bool {
	if len(payloads) == 0 {
		return false
	}
	n, ok := payloads[0].(*NotifyPayload)
	if !ok || n.NotifyType != NotifyCookie {
		return false
	}
	return subtle.ConstantTimeCompare(n.Data, c.make(ni, ipi, spii)) == 1
}
