// Package gre encodes and decodes the Generic Routing Encapsulation header of
// RFC 2784 with the Key and Sequence Number extensions of RFC 2890, in place,
// in the style of gVisor's pkg/tcpip/header.
//
// The header, as RFC 2784 §2.1 and RFC 2890 §2 draw it:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|C| |K|S| Reserved0       | Ver |         Protocol Type         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|      Checksum (optional)      |       Reserved1 (Optional)    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Key (optional)                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Sequence Number (Optional)                    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Each optional word is present only when its bit is set, and the present
// ones follow in this order.
package gre

import (
	"encoding/binary"
	"errors"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

// Protocol Type values (EtherTypes, RFC 2784 §2.4) of the payloads greipsec
// carries.
const (
	ProtocolIPv4 = 0x0800
	ProtocolIPv6 = 0x86DD
	// ProtocolKeepalive (0) is the Protocol Type of the GRE packet a
	// keepalive asks the peer to send back, as Cisco IOS and OpenBSD
	// gre(4) build them (package dataplane, keepalive.go); RFC 2784
	// assigns it nothing.
	ProtocolKeepalive = 0
)

// Header sizes.
const (
	// MinHeaderLen is the length of a header with no optional field.
	MinHeaderLen = 4

	// MaxHeaderLen is the length of a header with checksum, key and
	// sequence number all present.
	MaxHeaderLen = 16
)

// Offsets of the fixed fields. The optional fields have no fixed offset: see
// GRE.keyOffset and GRE.seqOffset.
const (
	flagsVerOffset = 0
	protocolOffset = 2
	checksumOffset = 4
	optionalOffset = 4
	optionalLen    = 4
)

// Bits of the first 16-bit word (C, Reserved0, Ver), numbered as in the RFC
// diagrams: bit 0 is the most significant.
const (
	// flagChecksum is C, Checksum Present (RFC 2784 §2.2).
	flagChecksum = 0x8000
	// flagRouting is R, Routing Present (RFC 1701), bit 1 of Reserved0.
	flagRouting = 0x4000
	// flagKey is K, Key Present (RFC 2890 §2.1), bit 2.
	flagKey = 0x2000
	// flagSeq is S, Sequence Number Present (RFC 2890 §2.2), bit 3.
	flagSeq = 0x1000
	// flagStrictSourceRoute is s, Strict Source Route (RFC 1701), bit 4.
	flagStrictSourceRoute = 0x0800
	// flagRecursion5 is bit 5, the top bit of RFC 1701's three-bit
	// Recursion Control (bits 5-7).
	flagRecursion5 = 0x0400
	// discardMask holds the Reserved0 bits 1-5 that RFC 2784 §2.3 says a
	// receiver not implementing RFC 1701 MUST discard on, less K and S,
	// which RFC 2890 gives a meaning. Bits 6-12 MUST be ignored on receipt.
	discardMask = flagRouting | flagStrictSourceRoute | flagRecursion5
	// versionMask is Ver, bits 13-15 (RFC 2784 §2.3.1).
	versionMask = 0x0007
)

// Errors returned by Parse. They are distinct values so that a caller can
// count drops by reason.
var (
	ErrTruncated = errors.New("gre: packet shorter than its header")
	ErrVersion   = errors.New("gre: version is not 0")
	ErrReserved  = errors.New("gre: routing, strict source route or recursion bit set")
	ErrChecksum  = errors.New("gre: bad checksum")
)

// Fields describes a GRE header, to build one with Encode or as decoded by
// Parse.
type Fields struct {
	// Protocol is the Protocol Type: the EtherType of the payload.
	Protocol uint16

	// Checksum is the C bit: the Checksum and Reserved1 fields are present.
	// Encode writes a zero checksum; call SetChecksum once the payload is
	// in place.
	Checksum bool

	// KeyPresent is the K bit (RFC 2890 §2.1); Key is meaningful only when
	// it is set.
	KeyPresent bool
	Key        uint32

	// SeqPresent is the S bit (RFC 2890 §2.2); Seq is meaningful only when
	// it is set.
	SeqPresent bool
	Seq        uint32
}

// HeaderLen returns the length in bytes of the header f describes, from
// MinHeaderLen to MaxHeaderLen.
func (f *Fields) HeaderLen() int {
	n := MinHeaderLen
	if f.Checksum {
		n += optionalLen
	}
	if f.KeyPresent {
		n += optionalLen
	}
	if f.SeqPresent {
		n += optionalLen
	}
	return n
}

// GRE is a GRE packet, header and payload, stored in a byte slice. Like the
// gVisor header types, the accessors do not check bounds: check the packet
// with Parse before using them on bytes from the wire.
type GRE []byte

// Encode writes the header that f describes into h[:f.HeaderLen()], with the
// checksum and Reserved1 fields, when present, set to zero. It panics if h
// is shorter than f.HeaderLen().
func (h GRE) Encode(f *Fields) {
	n := f.HeaderLen()
	if len(h) < n {
		panic("gre: Encode into a buffer shorter than the header")
	}
	var flags uint16
	off := optionalOffset
	if f.Checksum {
		flags |= flagChecksum
		binary.BigEndian.PutUint32(h[off:], 0)
		off += optionalLen
	}
	if f.KeyPresent {
		flags |= flagKey
		binary.BigEndian.PutUint32(h[off:], f.Key)
		off += optionalLen
	}
	if f.SeqPresent {
		flags |= flagSeq
		binary.BigEndian.PutUint32(h[off:], f.Seq)
	}
	binary.BigEndian.PutUint16(h[flagsVerOffset:], flags)
	binary.BigEndian.PutUint16(h[protocolOffset:], f.Protocol)
}

// SetChecksum computes the checksum of RFC 2784 §2.5 over all of h, header
// and payload, and stores it, if the C bit is set; otherwise it does
// nothing. h must hold exactly the GRE packet, nothing after it.
func (h GRE) SetChecksum() {
	if !h.ChecksumPresent() {
		return
	}
	// "For purposes of computing the checksum, the value of the checksum
	// field is zero." An odd trailing byte is padded with zero, as in
	// RFC 1071.
	binary.BigEndian.PutUint16(h[checksumOffset:], 0)
	checksum.Put(h[checksumOffset:], ^checksum.Checksum(h, 0))
}

// Parse checks that b starts with a GRE header a receiver may accept and
// decodes it. b is the whole GRE packet, header and payload, and nothing
// after it: when the C bit is set the checksum is verified over all of b.
//
// Parse rejects, with one of the Err* values: a b shorter than its header
// (ErrTruncated); a version other than 0 (ErrVersion); any of the Reserved0
// bits 1, 4 and 5 set, which RFC 2784 §2.3 requires a receiver that does not
// implement RFC 1701 to discard (routing present, strict source route, and
// the top bit of recursion control) (ErrReserved); a wrong checksum
// (ErrChecksum). Reserved0 bits 6-12, which the same section says MUST be
// ignored on receipt, and Reserved1 are ignored, as is the value of the
// Protocol Type: the caller decides which payloads it accepts.
//
// It returns the decoded fields and the header length; the payload is
// b[hdrLen:].
func Parse(b []byte) (f Fields, hdrLen int, err error) {
	if len(b) < MinHeaderLen {
		return Fields{}, 0, ErrTruncated
	}
	h := GRE(b)
	flags := h.flagsVer()
	if flags&versionMask != 0 {
		return Fields{}, 0, ErrVersion
	}
	if flags&discardMask != 0 {
		return Fields{}, 0, ErrReserved
	}
	hdrLen = h.HeaderLen()
	if len(b) < hdrLen {
		return Fields{}, 0, ErrTruncated
	}
	f = Fields{
		Protocol:   h.Protocol(),
		Checksum:   flags&flagChecksum != 0,
		KeyPresent: flags&flagKey != 0,
		SeqPresent: flags&flagSeq != 0,
	}
	// RFC 1071: the sum over the data and the checksum field itself is all
	// ones when the checksum is right.
	if f.Checksum && checksum.Checksum(b, 0) != 0xffff {
		return Fields{}, 0, ErrChecksum
	}
	if f.KeyPresent {
		f.Key = h.Key()
	}
	if f.SeqPresent {
		f.Seq = h.Seq()
	}
	return f, hdrLen, nil
}

func (h GRE) flagsVer() uint16 {
	return binary.BigEndian.Uint16(h[flagsVerOffset:])
}

// Version returns the Ver field (RFC 2784 §2.3.1).
func (h GRE) Version() uint8 {
	return uint8(h.flagsVer() & versionMask)
}

// ChecksumPresent reports whether the C bit is set (RFC 2784 §2.2).
func (h GRE) ChecksumPresent() bool {
	return h.flagsVer()&flagChecksum != 0
}

// KeyPresent reports whether the K bit is set (RFC 2890 §2.1).
func (h GRE) KeyPresent() bool {
	return h.flagsVer()&flagKey != 0
}

// SeqPresent reports whether the S bit is set (RFC 2890 §2.2).
func (h GRE) SeqPresent() bool {
	return h.flagsVer()&flagSeq != 0
}

// Protocol returns the Protocol Type field (RFC 2784 §2.4).
func (h GRE) Protocol() uint16 {
	return binary.BigEndian.Uint16(h[protocolOffset:])
}

// SetProtocol sets the Protocol Type field. It does not update the checksum.
func (h GRE) SetProtocol(p uint16) {
	binary.BigEndian.PutUint16(h[protocolOffset:], p)
}

// HeaderLen returns the length of the header in bytes, as its C, K and S
// bits say.
func (h GRE) HeaderLen() int {
	flags := h.flagsVer()
	n := MinHeaderLen
	if flags&flagChecksum != 0 {
		n += optionalLen
	}
	if flags&flagKey != 0 {
		n += optionalLen
	}
	if flags&flagSeq != 0 {
		n += optionalLen
	}
	return n
}

// Payload returns the bytes after the header.
func (h GRE) Payload() []byte {
	return h[h.HeaderLen():]
}

// Checksum returns the Checksum field (RFC 2784 §2.5). Call it only when
// ChecksumPresent.
func (h GRE) Checksum() uint16 {
	return binary.BigEndian.Uint16(h[checksumOffset:])
}

func (h GRE) keyOffset() int {
	if h.ChecksumPresent() {
		return optionalOffset + optionalLen
	}
	return optionalOffset
}

func (h GRE) seqOffset() int {
	off := h.keyOffset()
	if h.KeyPresent() {
		off += optionalLen
	}
	return off
}

// Key returns the Key field (RFC 2890 §2.1). Call it only when KeyPresent.
func (h GRE) Key() uint32 {
	return binary.BigEndian.Uint32(h[h.keyOffset():])
}

// SetKey sets the Key field. Call it only when KeyPresent. It does not
// update the checksum.
func (h GRE) SetKey(k uint32) {
	binary.BigEndian.PutUint32(h[h.keyOffset():], k)
}

// Seq returns the Sequence Number field (RFC 2890 §2.2). Call it only when
// SeqPresent.
func (h GRE) Seq() uint32 {
	return binary.BigEndian.Uint32(h[h.seqOffset():])
}

// SetSeq sets the Sequence Number field. Call it only when SeqPresent. It
// does not update the checksum.
func (h GRE) SetSeq(s uint32) {
	binary.BigEndian.PutUint32(h[h.seqOffset():], s)
}
