package ikecrypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"
)

// The Encrypted payload, RFC 7296 §3.14 (and the Encrypted Fragment payload
// of RFC 7383 §2.5, which has the same data region):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  <- dataOff
//	|                     Initialization Vector                     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                    Encrypted IKE Payloads                     ~
//	+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               |             Padding (0-255 octets)            |
//	+-+-+-+-+-+-+-+-+                               +-+-+-+-+-+-+-+-+
//	|                                               |  Pad Length   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                    Integrity Checksum Data                    ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  <- len(msg)
//
// The SK payload is the last payload of a message, so its data runs from
// dataOff, the first octet of the IV, to the end of the message. What is
// authenticated besides the encrypted octets is msg[:dataOff] for an AEAD
// (the IKE header through the SK payload header, and the fragment number
// fields of SKF: RFC 5282 §5.1, RFC 7383 §2.5.3), and for AES-CBC with HMAC
// the ICV covers the whole message up to the ICV (RFC 7296 §3.14).

// An SKCipher protects the SK payloads of one direction of an IKE SA: the
// initiator seals with SK_ei/SK_ai and opens with SK_er/SK_ar, the
// responder the other way round. An SKCipher is safe for concurrent use.
type SKCipher interface {
	// IVLen returns the length of the IV: 16 for AES-CBC, 8 for the AEADs.
	IVLen() int

	// ICVLen returns the length of the Integrity Checksum Data: the
	// truncated HMAC for AES-CBC (RFC 4868 §2.6), 16 for the AEADs.
	ICVLen() int

	// BlockLen returns the length the encrypted part (inner payloads,
	// padding and pad length) must be a multiple of: 16 for AES-CBC, 1 for
	// the AEADs (RFC 5282 §3, RFC 7634 §3), which need no padding.
	BlockLen() int

	// SealedLen returns the length of the SK payload's data, IV through
	// ICV (the Payload Length less the 4-octet generic header), that
	// carries n octets of inner payloads with the least padding.
	SealedLen(n int) int

	// MaxPlaintextLen returns the most octets of inner payloads that fit in
	// SK payload data of dataLen octets, or -1 if none do. It helps split
	// a message into fragments (RFC 7383 §2.5).
	MaxPlaintextLen(dataLen int) int

	// Seal encrypts and authenticates the SK payload of msg in place.
	//
	// msg is the whole message, already final up to dataOff: IKE header
	// with its Length, any unencrypted payloads, and the SK (or SKF)
	// payload header with its Payload Length. msg[dataOff:] is the SK
	// payload's data and must be exactly SealedLen(n) octets, with the n
	// octets of inner payloads in place after the IV, at
	// msg[dataOff+IVLen() : dataOff+IVLen()+n]. Seal writes the IV, zero
	// padding, the pad length, the ciphertext and the ICV.
	//
	// The IV is chosen by Seal: random for AES-CBC, as RFC 7296 §3.14
	// requires, and for the AEADs the next value of a 64-bit counter kept
	// by the SKCipher, so no IV repeats under the key (RFC 5282 §3.1,
	// RFC 7634 §2). Seal fails once the counter is exhausted.
	Seal(msg []byte, dataOff, n int) error

	// Open verifies and decrypts the SK payload of msg in place and returns
	// the inner payloads, a subslice of msg without padding and pad length.
	// msg[dataOff:] is the SK payload's data, IV through ICV, which runs to
	// the end of msg; msg must end where the message does.
	//
	// An error means the message must be dropped: it failed the integrity
	// check (compared in constant time), or its lengths or pad length are
	// wrong. On error msg[dataOff:] may have been overwritten.
	Open(msg []byte, dataOff int) ([]byte, error)
}

// ErrIntegrity is the error of [SKCipher.Open] for a message that fails the
// integrity check: it was not sent by the peer, or was changed on the way.
var ErrIntegrity = errors.New("ikecrypto: SK payload: integrity check failed")

var (
	errIVExhausted = errors.New("ikecrypto: SK payload: IV counter exhausted, rekey the IKE SA")
	errPadLength   = errors.New("ikecrypto: SK payload: pad length exceeds the encrypted data")
	errShortSKData = errors.New("ikecrypto: SK payload: data too short")
)

// KeyLens returns the key lengths in octets of an encryption transform encr
// with Key Length attribute keyBits (0 if absent) combined with integrity
// transform integ, as the key schedule cuts them for SK_e and SK_a
// (RFC 7296 §2.14) and for a Child SA's KEYMAT (§2.17). The lengths are the
// same for IKE and ESP. The encryption key of AES-GCM and ChaCha20-Poly1305
// includes the 4-octet salt at its end (RFC 5282 §7.1, RFC 4106 §8.1,
// RFC 7634 §4); the AEADs take no integrity transform (integ must be
// IntegNone) and their integKeyLen is 0.
//
// Supported: AES-CBC with 128, 192 or 256 bits and HMAC-SHA2-256-128,
// -384-192 or -512-256; AES-GCM with a 16-octet ICV and 128, 192 or 256
// bits; ChaCha20-Poly1305 without Key Length attribute (or 256).
func KeyLens(encr uint16, keyBits int, integ uint16) (encrKeyLen, integKeyLen int, err error) {
	switch encr {
	case EncrAESCBC:
		if !aesKeyBits(keyBits) {
			return 0, 0, fmt.Errorf("ikecrypto: ENCR_AES_CBC: key length %d bits, want 128, 192 or 256", keyBits)
		}
		a, ok := integByID(integ)
		if !ok {
			return 0, 0, fmt.Errorf("ikecrypto: ENCR_AES_CBC: unsupported integrity algorithm %d", integ)
		}
		return keyBits / 8, a.keyLen, nil
	case EncrAESGCM16:
		if !aesKeyBits(keyBits) {
			return 0, 0, fmt.Errorf("ikecrypto: ENCR_AES_GCM_16: key length %d bits, want 128, 192 or 256", keyBits)
		}
		if integ != IntegNone {
			return 0, 0, fmt.Errorf("ikecrypto: ENCR_AES_GCM_16: integrity algorithm %d with an AEAD, want NONE", integ)
		}
		return keyBits/8 + saltLen, 0, nil
	case EncrNull:
		// ESP only (RFC 2410): no key, and an integrity algorithm.
		if keyBits != 0 {
			return 0, 0, fmt.Errorf("ikecrypto: ENCR_NULL: key length %d bits, want none", keyBits)
		}
		a, ok := integByID(integ)
		if !ok {
			return 0, 0, fmt.Errorf("ikecrypto: ENCR_NULL: unsupported integrity algorithm %d", integ)
		}
		return 0, a.keyLen, nil
	case EncrChaCha20Poly1305:
		if keyBits != 0 && keyBits != 256 {
			return 0, 0, fmt.Errorf("ikecrypto: ENCR_CHACHA20_POLY1305: key length %d bits, want none or 256", keyBits)
		}
		if integ != IntegNone {
			return 0, 0, fmt.Errorf("ikecrypto: ENCR_CHACHA20_POLY1305: integrity algorithm %d with an AEAD, want NONE", integ)
		}
		return chacha20poly1305.KeySize + saltLen, 0, nil
	}
	return 0, 0, fmt.Errorf("ikecrypto: unsupported encryption algorithm %d", encr)
}

func aesKeyBits(n int) bool { return n == 128 || n == 192 || n == 256 }

// NewSKCipher returns the SKCipher of encryption transform encr with Key
// Length attribute keyBits (0 if absent), integrity transform integ and the
// keys ke (SK_ei or SK_er, salt included) and ka (SK_ai or SK_ar, empty for
// an AEAD), whose lengths must be those [KeyLens] returns. The keys are
// copied.
func NewSKCipher(encr uint16, keyBits int, integ uint16, ke, ka []byte) (SKCipher, error) {
	el, il, err := KeyLens(encr, keyBits, integ)
	if err != nil {
		return nil, err
	}
	if len(ke) != el || len(ka) != il {
		return nil, fmt.Errorf("ikecrypto: SK keys of %d and %d bytes, want %d and %d", len(ke), len(ka), el, il)
	}
	switch encr {
	case EncrAESCBC:
		block, err := aes.NewCipher(ke)
		if err != nil {
			return nil, fmt.Errorf("ikecrypto: %w", err)
		}
		a, _ := integByID(integ)
		return &skCBC{block: block, integ: a, ka: append([]byte(nil), ka...), rand: rand.Reader}, nil
	case EncrAESGCM16:
		block, err := aes.NewCipher(ke[:el-saltLen])
		if err != nil {
			return nil, fmt.Errorf("ikecrypto: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("ikecrypto: %w", err)
		}
		return newSKAEAD(aead, ke[el-saltLen:]), nil
	case EncrNull:
		return nil, errors.New("ikecrypto: ENCR_NULL protects ESP only, never the IKE SA")
	default: // EncrChaCha20Poly1305, KeyLens checked it
		aead, err := chacha20poly1305.New(ke[:el-saltLen])
		if err != nil {
			return nil, fmt.Errorf("ikecrypto: %w", err)
		}
		return newSKAEAD(aead, ke[el-saltLen:]), nil
	}
}

const (
	saltLen   = 4 // RFC 5282 §4, RFC 7634 §2
	aeadIVLen = 8 // RFC 5282 §3.1, RFC 7634 §2
)

// sealedLen is SealedLen for the given lengths: the encrypted part is
// rounded up to the block length after adding the pad length octet.
func sealedLen(n, ivLen, blockLen, icvLen int) int {
	enc := (n + 1 + blockLen - 1) / blockLen * blockLen
	return ivLen + enc + icvLen
}

func maxPlaintextLen(dataLen, ivLen, blockLen, icvLen int) int {
	enc := dataLen - ivLen - icvLen
	if enc < 1 {
		return -1
	}
	return enc/blockLen*blockLen - 1
}

// sealRegion checks the arguments of Seal and returns the SK data region
// and the encrypted part, with padding and pad length written.
func sealRegion(c SKCipher, msg []byte, dataOff, n int) (data, enc []byte, err error) {
	if n < 0 || dataOff < 0 || dataOff > len(msg) {
		return nil, nil, fmt.Errorf("ikecrypto: Seal: bad offsets (%d, %d) in a %d-byte message", dataOff, n, len(msg))
	}
	data = msg[dataOff:]
	if want := c.SealedLen(n); len(data) != want {
		return nil, nil, fmt.Errorf("ikecrypto: Seal: SK data is %d bytes, want %d for %d bytes of payloads", len(data), want, n)
	}
	enc = data[c.IVLen() : len(data)-c.ICVLen()]
	pad := len(enc) - n - 1 // < BlockLen, so it fits the octet
	clear(enc[n : n+pad])
	enc[len(enc)-1] = byte(pad)
	return data, enc, nil
}

// unpad strips padding and pad length from decrypted data.
func unpad(plain []byte) ([]byte, error) {
	pad := int(plain[len(plain)-1])
	if pad+1 > len(plain) {
		return nil, errPadLength
	}
	return plain[:len(plain)-1-pad], nil
}

// skCBC is AES-CBC (RFC 3602) with an HMAC-SHA2 integrity algorithm
// (RFC 4868), RFC 7296 §3.14.
type skCBC struct {
	block cipher.Block
	integ integ
	ka    []byte
	rand  io.Reader // source of IVs
}

func (c *skCBC) IVLen() int    { return aes.BlockSize }
func (c *skCBC) ICVLen() int   { return c.integ.icvLen }
func (c *skCBC) BlockLen() int { return aes.BlockSize }

func (c *skCBC) SealedLen(n int) int {
	return sealedLen(n, aes.BlockSize, aes.BlockSize, c.integ.icvLen)
}

func (c *skCBC) MaxPlaintextLen(dataLen int) int {
	return maxPlaintextLen(dataLen, aes.BlockSize, aes.BlockSize, c.integ.icvLen)
}

func (c *skCBC) Seal(msg []byte, dataOff, n int) error {
	data, enc, err := sealRegion(c, msg, dataOff, n)
	if err != nil {
		return err
	}
	iv := data[:aes.BlockSize]
	if _, err := io.ReadFull(c.rand, iv); err != nil {
		return fmt.Errorf("ikecrypto: Seal: IV: %w", err)
	}
	cipher.NewCBCEncrypter(c.block, iv).CryptBlocks(enc, enc)
	icvOff := len(msg) - c.integ.icvLen
	copy(msg[icvOff:], c.integ.mac(c.ka, msg[:icvOff]))
	return nil
}

func (c *skCBC) Open(msg []byte, dataOff int) ([]byte, error) {
	if dataOff < 0 || dataOff > len(msg) {
		return nil, errShortSKData
	}
	data := msg[dataOff:]
	encLen := len(data) - aes.BlockSize - c.integ.icvLen
	if encLen < aes.BlockSize {
		return nil, errShortSKData
	}
	if encLen%aes.BlockSize != 0 {
		return nil, fmt.Errorf("ikecrypto: SK payload: encrypted data of %d bytes is not a multiple of the block size", encLen)
	}
	icvOff := len(msg) - c.integ.icvLen
	if !hmac.Equal(c.integ.mac(c.ka, msg[:icvOff]), msg[icvOff:]) {
		return nil, ErrIntegrity
	}
	iv := data[:aes.BlockSize]
	enc := data[aes.BlockSize : aes.BlockSize+encLen]
	cipher.NewCBCDecrypter(c.block, iv).CryptBlocks(enc, enc)
	return unpad(enc)
}

// skAEAD is AES-GCM with a 16-octet ICV (RFC 5282) or ChaCha20-Poly1305
// (RFC 7634): the nonce is salt | IV, the AAD everything before the IV.
type skAEAD struct {
	aead   cipher.AEAD
	salt   [saltLen]byte
	nextIV atomic.Uint64 // IV of the next Seal; math.MaxUint64 is never used
}

func newSKAEAD(aead cipher.AEAD, salt []byte) *skAEAD {
	c := &skAEAD{aead: aead}
	copy(c.salt[:], salt)
	return c
}

func (c *skAEAD) IVLen() int    { return aeadIVLen }
func (c *skAEAD) ICVLen() int   { return c.aead.Overhead() }
func (c *skAEAD) BlockLen() int { return 1 }

func (c *skAEAD) SealedLen(n int) int {
	return sealedLen(n, aeadIVLen, 1, c.aead.Overhead())
}

func (c *skAEAD) MaxPlaintextLen(dataLen int) int {
	return maxPlaintextLen(dataLen, aeadIVLen, 1, c.aead.Overhead())
}

func (c *skAEAD) nonce(iv []byte) []byte {
	var nonce [saltLen + aeadIVLen]byte
	copy(nonce[:], c.salt[:])
	copy(nonce[saltLen:], iv)
	return nonce[:]
}

func (c *skAEAD) Seal(msg []byte, dataOff, n int) error {
	data, enc, err := sealRegion(c, msg, dataOff, n)
	if err != nil {
		return err
	}
	var seq uint64
	for {
		seq = c.nextIV.Load()
		if seq == math.MaxUint64 {
			return errIVExhausted
		}
		if c.nextIV.CompareAndSwap(seq, seq+1) {
			break
		}
	}
	iv := data[:aeadIVLen]
	binary.BigEndian.PutUint64(iv, seq)
	// enc[:0] has the capacity for enc and the tag, which lands in the ICV.
	c.aead.Seal(enc[:0], c.nonce(iv), enc, msg[:dataOff])
	return nil
}

func (c *skAEAD) Open(msg []byte, dataOff int) ([]byte, error) {
	if dataOff < 0 || dataOff > len(msg) {
		return nil, errShortSKData
	}
	data := msg[dataOff:]
	if len(data) < aeadIVLen+1+c.aead.Overhead() {
		return nil, errShortSKData
	}
	iv := data[:aeadIVLen]
	ct := data[aeadIVLen:]
	plain, err := c.aead.Open(ct[:0], c.nonce(iv), ct, msg[:dataOff])
	if err != nil {
		return nil, ErrIntegrity
	}
	return unpad(plain)
}
