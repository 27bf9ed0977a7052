package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"hash"
	"sync"
)

// ivSetter is implemented by the standard library's CBC block modes: it
// lets one BlockMode be reused for every packet instead of allocating one.
type ivSetter interface {
	cipher.BlockMode
	SetIV(iv []byte)
}

// macScratch is the per-call state of an HMAC transform: a keyed HMAC
// (hash.Hash is not safe for concurrent use), the CBC block modes, and the
// buffers that must not live on the stack (they are passed to interface
// methods and would escape). The mutex makes one area usable by one call
// at a time.
type macScratch struct {
	mu  sync.Mutex
	mac hash.Hash
	enc ivSetter // nil for NULL encryption
	dec ivSetter
	sum [sha512.Size]byte
	ctr [aes.BlockSize]byte
	hi  [4]byte
}

// macCryptor is AES-CBC (RFC 3602) or NULL encryption (RFC 2410) with an
// HMAC integrity transform (RFC 2404, RFC 4868), encrypt-then-MAC: the ICV
// covers the ESP header, the IV and the ciphertext, and with ESN the high
// 32 bits of the sequence number appended after them, which are not sent
// (RFC 4303 §2.2.1, §3.3.2.1). Open checks the ICV, in constant time,
// before it decrypts anything. It is safe for concurrent use; workers pick
// a scratch area by sequence number as aeadCryptor does.
type macCryptor struct {
	cbc      bool
	esn      bool
	icvLen   int
	headroom int
	// ivBlock encrypts the sequence number into the IV: an AES key drawn
	// at random when the SA is made and never sent. The IV is then
	// unpredictable to anyone without that key, as RFC 3602 §2.3
	// requires, and unique per packet, without a random read per packet
	// (the idea of Linux's echainiv).
	ivBlock cipher.Block
	scratch [scratchStripes]macScratch
}

// newMACCryptor keys a macCryptor for t with the encryption key encKey
// (empty for NULL) and the integrity key authKey.
func newMACCryptor(t Transform, encKey, authKey []byte, esn bool) (*macCryptor, error) {
	c := &macCryptor{
		cbc:      t.Algorithm.IsCBC(),
		esn:      esn,
		icvLen:   t.ICVLen(),
		headroom: t.Headroom(),
	}
	var block cipher.Block
	if c.cbc {
		var err error
		if block, err = aes.NewCipher(encKey); err != nil {
			return nil, err
		}
		var ivKey [16]byte
		rand.Read(ivKey[:])
		if c.ivBlock, err = aes.NewCipher(ivKey[:]); err != nil {
			return nil, err
		}
		clear(ivKey[:])
	}
	var zeroIV [aes.BlockSize]byte
	for i := range c.scratch {
		s := &c.scratch[i]
		s.mac = t.Integrity.newMAC(authKey)
		if c.cbc {
			s.enc = cipher.NewCBCEncrypter(block, zeroIV[:]).(ivSetter)
			s.dec = cipher.NewCBCDecrypter(block, zeroIV[:]).(ivSetter)
		}
	}
	return c, nil
}

// icv computes the full HMAC of the packet b (SPI to the end of the
// ciphertext) into s.sum and returns it truncated to the ICV length.
func (c *macCryptor) icv(s *macScratch, b []byte, seq uint64) []byte {
	s.mac.Reset()
	s.mac.Write(b)
	if c.esn {
		binary.BigEndian.PutUint32(s.hi[:], uint32(seq>>32))
		s.mac.Write(s.hi[:])
	}
	return s.mac.Sum(s.sum[:0])[:c.icvLen]
}

func (c *macCryptor) seal(b []byte, spi uint32, seq uint64) []byte {
	return c.sealWithIV(b, spi, seq, nil)
}

// sealWithIV is seal with a given IV instead of the generated one, for
// the known-answer tests; iv is nil otherwise.
func (c *macCryptor) sealWithIV(b []byte, spi uint32, seq uint64, iv []byte) []byte {
	binary.BigEndian.PutUint32(b[offSPI:], spi)
	binary.BigEndian.PutUint32(b[offSeq:], uint32(seq))
	s := &c.scratch[uint32(seq)%scratchStripes]
	s.mu.Lock()
	if c.cbc {
		ivb := b[HeaderLen:c.headroom]
		if iv != nil {
			copy(ivb, iv)
		} else {
			binary.BigEndian.PutUint64(s.ctr[:8], seq)
			c.ivBlock.Encrypt(ivb, s.ctr[:])
		}
		s.enc.SetIV(ivb)
		s.enc.CryptBlocks(b[c.headroom:], b[c.headroom:])
	}
	n := len(b)
	icv := c.icv(s, b, seq)
	b = b[:n+c.icvLen]
	copy(b[n:], icv)
	s.mu.Unlock()
	return b
}

func (c *macCryptor) open(b []byte, seq uint64) ([]byte, byte, error) {
	bl := alignment
	if c.cbc {
		bl = aes.BlockSize
	}
	n := len(b) - c.icvLen // end of the ciphertext
	if n < c.headroom+bl || (n-c.headroom)%bl != 0 {
		return nil, 0, ErrShort
	}
	s := &c.scratch[uint32(seq)%scratchStripes]
	s.mu.Lock()
	if !hmac.Equal(c.icv(s, b[:n], seq), b[n:]) {
		s.mu.Unlock()
		return nil, 0, ErrAuth
	}
	if c.cbc {
		s.dec.SetIV(b[HeaderLen:c.headroom])
		s.dec.CryptBlocks(b[c.headroom:n], b[c.headroom:n])
	}
	s.mu.Unlock()
	payload, nh, err := checkTrailer(b[c.headroom:n])
	if err != nil || c.headroom >= HeadroomLen {
		return payload, nh, err
	}
	// NULL encryption: move the payload to HeadroomLen, where every
	// transform's payload starts, over the padding and ICV behind it;
	// the dataplane relies on that room in front of the payload.
	moved := b[HeadroomLen : HeadroomLen+len(payload)]
	copy(moved, payload)
	return moved, nh, nil
}
