package esp

import (
	"crypto/cipher"
	"encoding/binary"
	"sync"
)

// Offsets in an ESP packet (see the diagram in the package comment).
const (
	offSPI     = 0
	offSeq     = 4
	offIV      = HeaderLen
	offPayload = HeadroomLen
)

// nonceLen is the AEAD nonce length: salt ‖ IV (RFC 4106 §4, RFC 7634 §2).
const nonceLen = saltLen + IVLen

// scratchStripes is the number of nonce/AAD scratch areas of a cryptor.
// Workers pick one by sequence number, so concurrent workers, which hold
// neighbouring sequence numbers, rarely meet on one.
const scratchStripes = 32

// scratch holds the nonce and AAD of one AEAD call. They cannot live on the
// stack: a slice passed to an interface method (cipher.AEAD) escapes, and
// would cost two heap allocations per packet. The mutex makes one area
// usable by one call at a time; it is padded to its own cache line.
type scratch struct {
	mu    sync.Mutex
	nonce [nonceLen]byte
	aad   [12]byte
	_     [64 - 8 - nonceLen - 12]byte
}

// cryptor is the cryptographic half of an SA: it seals and opens ESP
// packets whose sequence number is already known. Implementations are safe
// for concurrent use and allocate nothing.
type cryptor interface {
	// seal writes the ESP header (spi, low 32 bits of seq) and the IV
	// into the transform's headroom at the start of b, encrypts what
	// follows in place (the payload with its padding, pad length and
	// next header) and returns b extended by the ICV.
	seal(b []byte, spi uint32, seq uint64) []byte
	// open authenticates and decrypts the ESP packet b in place, taking
	// seq as its full sequence number, checks the trailer, and returns
	// the payload, which aliases b and starts at least HeadroomLen into
	// it, and the next header.
	open(b []byte, seq uint64) (payload []byte, nextHeader byte, err error)
}

// aeadCryptor seals and opens with a combined-mode cipher (RFC 4106,
// RFC 7634). It is safe for concurrent use.
type aeadCryptor struct {
	aead    cipher.AEAD
	salt    [saltLen]byte
	esn     bool
	scratch [scratchStripes]scratch
}

// init sets c up with an AEAD and a salt.
func (c *aeadCryptor) init(aead cipher.AEAD, salt []byte, esn bool) {
	if aead.NonceSize() != nonceLen || aead.Overhead() != ICVLen || len(salt) != saltLen {
		panic("esp: AEAD with unsupported nonce or tag size")
	}
	c.aead = aead
	copy(c.salt[:], salt)
	c.esn = esn
}

// prepare locks a scratch area and fills in the nonce (salt ‖ iv) and the
// AAD for spi and seq (RFC 4106 §5). The caller unlocks s.mu.
func (c *aeadCryptor) prepare(spi uint32, seq uint64, iv []byte) (s *scratch, nonce, aad []byte) {
	s = &c.scratch[uint32(seq)%scratchStripes]
	s.mu.Lock()
	copy(s.nonce[:saltLen], c.salt[:])
	copy(s.nonce[saltLen:], iv)
	binary.BigEndian.PutUint32(s.aad[0:4], spi)
	if c.esn {
		binary.BigEndian.PutUint64(s.aad[4:12], seq)
		return s, s.nonce[:], s.aad[:12]
	}
	binary.BigEndian.PutUint32(s.aad[4:8], uint32(seq))
	return s, s.nonce[:], s.aad[:8]
}

func (c *aeadCryptor) seal(b []byte, spi uint32, seq uint64) []byte {
	// The IV is the 64-bit sequence number: unique under the key, which
	// is all GCM and ChaCha20-Poly1305 need (RFC 4106 §3.1).
	return c.sealWithIV(b, spi, seq, seq)
}

func (c *aeadCryptor) open(b []byte, seq uint64) ([]byte, byte, error) {
	return c.openRaw(b, seq)
}

// sealWithIV writes the ESP header (spi, low 32 bits of seq) and iv into
// b[:HeadroomLen] and encrypts b[HeadroomLen:], which must already hold the
// payload with its padding, pad length and next header, in place. It
// returns b extended by the ICV; cap(b) must allow that.
func (c *aeadCryptor) sealWithIV(b []byte, spi uint32, seq, iv uint64) []byte {
	binary.BigEndian.PutUint32(b[offSPI:], spi)
	binary.BigEndian.PutUint32(b[offSeq:], uint32(seq))
	binary.BigEndian.PutUint64(b[offIV:], iv)
	s, nonce, aad := c.prepare(spi, seq, b[offIV:offPayload])
	plaintext := b[offPayload:]
	ct := c.aead.Seal(plaintext[:0], nonce, plaintext, aad)
	s.mu.Unlock()
	return b[:offPayload+len(ct)]
}

// openRaw authenticates and decrypts the ESP packet b in place, taking seq
// as its full sequence number (the high half is used only with ESN), then
// checks the trailer (RFC 4303 §2.4, §2.5). It returns the payload, which
// aliases b, and the next header. It does not check the SPI or the replay
// window.
func (c *aeadCryptor) openRaw(b []byte, seq uint64) (payload []byte, nextHeader byte, err error) {
	if len(b) < minPacketLen || (len(b)-offPayload-ICVLen)%alignment != 0 {
		return nil, 0, ErrShort
	}
	s, nonce, aad := c.prepare(binary.BigEndian.Uint32(b[offSPI:]), seq, b[offIV:offPayload])
	ciphertext := b[offPayload:]
	pt, err := c.aead.Open(ciphertext[:0], nonce, ciphertext, aad)
	s.mu.Unlock()
	if err != nil {
		return nil, 0, ErrAuth
	}
	return checkTrailer(pt)
}

// checkTrailer splits the decrypted part of an ESP packet into payload and
// next header, checking the pad length and that the pad bytes are 1, 2, 3,
// ... (RFC 4303 §2.4, the default padding every implementation sends).
func checkTrailer(pt []byte) (payload []byte, nextHeader byte, err error) {
	n := len(pt) - trailerFixedLen
	pad := int(pt[n])
	nextHeader = pt[n+1]
	if pad > n {
		return nil, 0, ErrPadding
	}
	n -= pad
	for i, v := range pt[n : n+pad] {
		if int(v) != i+1 {
			return nil, 0, ErrPadding
		}
	}
	return pt[:n], nextHeader, nil
}
