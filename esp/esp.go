// Package esp implements the data side of an IPsec Encapsulating Security
// Payload (ESP, RFC 4303) Security Association with the combined-mode
// ciphers AES-GCM (RFC 4106) and ChaCha20-Poly1305 (RFC 7634), and with
// AES-CBC (RFC 3602) or NULL encryption (RFC 2410) followed by HMAC-SHA1-96
// (RFC 2404) or HMAC-SHA2 (RFC 4868) integrity: sequence numbers, extended
// sequence numbers, the anti-replay window (RFC 6479 bitmap), lifetimes
// counted in packets and bytes, sealing and opening of one packet in place,
// the durable sequence state that makes manual keys safe across restarts
// (SeqReserver, Config.FirstSeq and ReplayFloor; package esp/seqstate keeps
// it in a file), and the framing of ESP-in-UDP (RFC 3948).
//
// File map: algorithm.go (transforms and their sizes), crypt.go (the AEAD
// transforms), cbc.go (AES-CBC and NULL with HMAC), sa.go (the SA),
// replay.go (the window), reserve.go (sequence number reservations),
// keys.go (KEYMAT split, keys used twice), udp.go (RFC 3948).
//
// An ESP packet with an AEAD, from the SPI to the ICV (RFC 4303 §2,
// RFC 4106 §3):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               Security Parameters Index (SPI)                 |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                      Sequence Number (low 32 bits)            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Initialization Vector (8 bytes)               |
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ---
//	|                    Payload Data (variable)                    |  ^
//	~                                                               ~  |
//	+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ enc
//	|               |     Padding (0-3 bytes here: 1, 2, 3)         |  |
//	+-+-+-+-+-+-+-+-+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  |
//	|                               |  Pad Length   | Next Header   |  v
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ---
//	|            Integrity Check Value (16 bytes)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The AEAD nonce is salt ‖ IV; the additional authenticated data is
// SPI ‖ Sequence Number, or SPI ‖ high 32 bits ‖ low 32 bits of the
// sequence number with ESN (RFC 4106 §5, RFC 7634 §2.2). The IV sent is the
// 64-bit sequence number, which never repeats under one key.
//
// With AES-CBC the IV is 16 bytes and unpredictable (RFC 3602 §2.3): the
// sequence number encrypted under a random per-SA key. The encrypted part
// is padded to the 16-byte block (4 bytes with NULL, which has no IV).
// The ICV is the truncated HMAC of everything from the SPI to the end of
// the ciphertext, followed with ESN by the high 32 bits of the sequence
// number, which are not sent (RFC 4303 §2.2.1, §3.3.2.1): encrypt-then-
// MAC, and Open checks it in constant time before it decrypts. Sizes per
// transform: Transform.Headroom, ICVLen, BlockLen, TrailerLen, MaxPayload.
//
// How the dataplane uses an SA (the stages of wireguard-go's device):
//
//  1. Outbound, sequential: NextSeq assigns sequence numbers in order.
//  2. Outbound, parallel: Seal encrypts each packet in place.
//  3. Outbound, sequential: the writer sends and calls CountTx.
//  4. Inbound, parallel: Open authenticates and decrypts in place.
//  5. Inbound, sequential per SA: Accept checks and updates the replay
//     window; the caller decapsulates and reports its own drops with
//     CountDrop.
package esp

import "errors"

// Sizes of the parts of an ESP packet with the algorithms of this package.
const (
	// HeaderLen is the length of the ESP header: SPI and sequence number.
	HeaderLen = 8
	// IVLen is the length of the explicit IV (RFC 4106 §3.1, RFC 7634 §3).
	IVLen = 8
	// ICVLen is the length of the integrity check value (the AEAD tag).
	ICVLen = 16
	// HeadroomLen is the number of bytes Seal needs before the payload
	// for the ESP header and the IV of the AEAD transforms, and the least
	// offset of the payload Open returns for every transform.
	HeadroomLen = HeaderLen + IVLen
	// MaxHeadroomLen is the most headroom any transform needs: the ESP
	// header and AES-CBC's 16-byte IV.
	MaxHeadroomLen = HeaderLen + cbcBlockLen
)

const (
	// trailerFixedLen is the pad length and next header bytes.
	trailerFixedLen = 2
	// alignment is the boundary the ciphertext must end on (RFC 4303 §2.4).
	alignment = 4
	// minPacketLen is the shortest ESP packet: header, IV, the two trailer
	// bytes padded to the alignment, and the ICV.
	minPacketLen = HeadroomLen + alignment + ICVLen
)

// Errors returned by Open. They are distinct values, to be compared with
// errors.Is or ==.
var (
	// ErrShort means the packet is too short to be an ESP packet, or its
	// ciphertext does not end on a 4-byte boundary (RFC 4303 §2.4).
	ErrShort = errors.New("esp: packet too short or misaligned")
	// ErrSPI means the packet's SPI is not the SA's.
	ErrSPI = errors.New("esp: SPI does not match the SA")
	// ErrReplay means the sequence number was already seen, is too old
	// for the anti-replay window, or is zero.
	ErrReplay = errors.New("esp: replayed or too old sequence number")
	// ErrAuth means the ICV did not verify.
	ErrAuth = errors.New("esp: authentication failed")
	// ErrPadding means the decrypted trailer is invalid: a pad length
	// longer than the payload, or pad bytes other than 1, 2, 3, ...
	ErrPadding = errors.New("esp: invalid padding")
	// ErrLifetime means the SA has reached a hard lifetime limit.
	ErrLifetime = errors.New("esp: SA hard lifetime reached")
)

// aeadTransform stands for every AEAD transform in the sizes below: they
// all have the same IV, ICV and alignment.
var aeadTransform = Transform{Algorithm: AES256GCM16}

// TrailerLen returns the number of bytes Seal appends to a payload of n
// bytes with an AEAD transform: padding, the pad length byte, the next
// header byte and the ICV. The padding aligns payload+2 to 4 bytes
// (RFC 4303 §2.4). Transform.TrailerLen gives it for any transform.
func TrailerLen(n int) int { return aeadTransform.TrailerLen(n) }

// MaxPayload returns the largest payload length whose sealed ESP packet
// (header to ICV) with an AEAD transform is at most espLen bytes, or -1 if
// not even an empty payload fits. Transform.MaxPayload gives it for any
// transform.
func MaxPayload(espLen int) int { return aeadTransform.MaxPayload(espLen) }
