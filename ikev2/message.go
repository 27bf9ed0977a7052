package ikev2

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// The IKE header (RFC 7296 §3.1, Figure 4):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IKE SA Initiator's SPI                  |
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IKE SA Responder's SPI                  |
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                          Message ID                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                            Length                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	hdrSPIi        = 0
	hdrSPIr        = 8
	hdrNextPayload = 16
	hdrVersion     = 17
	hdrExchange    = 18
	hdrFlags       = 19
	hdrMessageID   = 20
	hdrLength      = 24
)

// HeaderLen is the length of the IKE header (RFC 7296 §3.1).
const HeaderLen = 28

// version is MjVer 2, MnVer 0: what this implementation sends (RFC 7296 §3.1).
const version = 0x20

// The generic payload header (RFC 7296 §3.2, Figure 5):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	genNextPayload = 0
	genCritical    = 1
	genLength      = 2

	criticalBit = 0x80
)

// GenericHeaderLen is the length of the generic payload header
// (RFC 7296 §3.2), and the minimum Payload Length.
const GenericHeaderLen = 4

// maxPayloadLen is the largest Payload Length the 16-bit field can carry.
const maxPayloadLen = 0xffff

// Header holds the fields of the IKE header (RFC 7296 §3.1) that a caller
// chooses. The Next Payload and Length fields follow from the payloads and
// are computed by [Message.Encode]; the version is always 2.0 on output.
type Header struct {
	SPIi      uint64       // IKE SA Initiator's SPI
	SPIr      uint64       // IKE SA Responder's SPI; zero in the first IKE_SA_INIT request
	Exchange  ExchangeType // Exchange Type
	Flags     Flags        // I, V and R; other bits are dropped on parse
	MessageID uint32       // Message ID
}

// IsResponse reports whether the Response flag is set.
func (h *Header) IsResponse() bool { return h.Flags&FlagResponse != 0 }

// IsInitiator reports whether the Initiator flag is set, i.e. the sender is
// the original initiator of the IKE SA.
func (h *Header) IsInitiator() bool { return h.Flags&FlagInitiator != 0 }

// Payload is one IKE payload. Encode appends the payload's body, everything
// after the generic payload header, to b and returns the extended slice.
// Decode replaces the payload's fields with those decoded from body and
// verifies them against the RFC; it returns a *[SyntaxError] if body is
// malformed. Decode keeps the fields that the body does not carry (which of
// IDi/IDr or TSi/TSr, the SK payload's first inner payload type).
type Payload interface {
	Type() PayloadType
	Encode(b []byte) []byte
	Decode(body []byte) error
}

// Message is an IKE message: the header and the payloads in order. If the
// message is protected, its last payload is an *[EncryptedPayload] or an
// *[EncryptedFragmentPayload].
type Message struct {
	Header
	Payloads []Payload
}

// SyntaxError reports a message or payload that does not follow the
// encoding of RFC 7296; the usual answer is INVALID_SYNTAX (§2.21.x) or, for
// an unauthenticated message, dropping it.
type SyntaxError struct {
	Msg string // what is wrong, without the "ikev2: " prefix
}

func (e *SyntaxError) Error() string { return "ikev2: " + e.Msg }

func syntaxErrorf(format string, args ...any) error {
	return &SyntaxError{Msg: fmt.Sprintf(format, args...)}
}

// UnsupportedCriticalError reports a payload of a type this implementation
// does not know, with the critical bit set (RFC 7296 §2.5). The message must
// be rejected; a request is answered with UNSUPPORTED_CRITICAL_PAYLOAD.
type UnsupportedCriticalError struct {
	Type PayloadType
}

func (e *UnsupportedCriticalError) Error() string {
	return "ikev2: unsupported critical payload " + e.Type.String()
}

// Notify returns the UNSUPPORTED_CRITICAL_PAYLOAD Notify payload answering
// e; its data is the one-octet payload type (RFC 7296 §3.10.1).
func (e *UnsupportedCriticalError) Notify() *NotifyPayload {
	return &NotifyPayload{NotifyType: NotifyUnsupportedCriticalPayload, Data: []byte{byte(e.Type)}}
}

// InvalidMajorVersionError reports an IKE header whose major version is not
// 2 (RFC 7296 §2.5). Header holds the rest of the header so that the caller
// can answer with INVALID_MAJOR_VERSION.
type InvalidMajorVersionError struct {
	Major, Minor uint8
	Header       Header
}

func (e *InvalidMajorVersionError) Error() string {
	return fmt.Sprintf("ikev2: unsupported major version %d (version %d.%d)", e.Major, e.Major, e.Minor)
}

// Notify returns the INVALID_MAJOR_VERSION Notify payload answering e
// (RFC 7296 §3.10.1); the answer's header carries version 2.0.
func (e *InvalidMajorVersionError) Notify() *NotifyPayload {
	return &NotifyPayload{NotifyType: NotifyInvalidMajorVersion}
}

// ParseHeader decodes and checks the IKE header at the start of b, which
// must hold the whole message: the Length field must equal len(b), and the
// major version must be 2 (else the error is *[InvalidMajorVersionError]).
// Use it to find the IKE SA before decoding the payloads.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, syntaxErrorf("message too short: %d bytes < %d", len(b), HeaderLen)
	}
	if n := binary.BigEndian.Uint32(b[hdrLength:]); uint64(n) != uint64(len(b)) {
		return Header{}, syntaxErrorf("length field %d != datagram length %d", n, len(b))
	}
	h := Header{
		SPIi:      binary.BigEndian.Uint64(b[hdrSPIi:]),
		SPIr:      binary.BigEndian.Uint64(b[hdrSPIr:]),
		Exchange:  ExchangeType(b[hdrExchange]),
		Flags:     Flags(b[hdrFlags]) & flagsMask,
		MessageID: binary.BigEndian.Uint32(b[hdrMessageID:]),
	}
	// The minor version is ignored on receipt (§3.1).
	if major := b[hdrVersion] >> 4; major != 2 {
		return Header{}, &InvalidMajorVersionError{Major: major, Minor: b[hdrVersion] & 0x0f, Header: h}
	}
	return h, nil
}

// ParseMessage decodes an IKE message that fills b (without the 4-byte
// non-ESP marker of port 4500). It checks the header as [ParseHeader] does,
// decodes and verifies every known payload, skips unknown payloads whose
// critical bit is clear, and fails with *[UnsupportedCriticalError] on the
// first unknown critical one. An SK or SKF payload must be the last payload;
// its content stays encrypted. Bytes after the last payload are an error.
//
// The returned payloads own their bytes, except the Data of an SK or SKF
// payload, which aliases b.
func ParseMessage(b []byte) (*Message, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	payloads, err := parseChain(PayloadType(b[hdrNextPayload]), b[HeaderLen:], true)
	if err != nil {
		return nil, err
	}
	return &Message{Header: h, Payloads: payloads}, nil
}

// ParsePayloadChain decodes a chain of payloads that fills b, the first of
// type first: the decrypted content of an SK payload (after its padding and
// Pad Length are removed), or of reassembled SKF payloads (RFC 7383).
// Unknown payloads are handled as in [ParseMessage]; SK and SKF payloads are
// not allowed. The returned payloads own their bytes.
func ParsePayloadChain(first PayloadType, b []byte) ([]Payload, error) {
	return parseChain(first, b, false)
}

func parseChain(next PayloadType, b []byte, outer bool) ([]Payload, error) {
	var payloads []Payload
	off := 0
	for i := 1; next != PayloadNone; i++ {
		rest := len(b) - off
		if rest < GenericHeaderLen {
			return nil, syntaxErrorf("payload %d (%v): %d bytes left < generic header length %d", i, next, rest, GenericHeaderLen)
		}
		g := b[off:]
		plen := int(binary.BigEndian.Uint16(g[genLength:]))
		if plen < GenericHeaderLen {
			return nil, syntaxErrorf("payload %d (%v): length %d < %d", i, next, plen, GenericHeaderLen)
		}
		if plen > rest {
			return nil, syntaxErrorf("payload %d (%v): length %d overruns the message (%d bytes left)", i, next, plen, rest)
		}
		body := g[GenericHeaderLen:plen]
		typ, following := next, PayloadType(g[genNextPayload])
		off += plen
		next = following

		switch typ {
		case PayloadSK, PayloadSKF:
			if !outer {
				return nil, syntaxErrorf("payload %d: %v payload inside an encrypted payload", i, typ)
			}
			if off != len(b) {
				return nil, syntaxErrorf("%v payload must be the last payload (%d bytes follow)", typ, len(b)-off)
			}
			// The Next Payload field of SK/SKF names the first inner
			// payload (RFC 7296 §3.14, RFC 7383 §2.5); the chain ends here.
			var p Payload
			if typ == PayloadSK {
				p = &EncryptedPayload{NextPayload: following}
			} else {
				p = &EncryptedFragmentPayload{NextPayload: following}
			}
			if err := p.Decode(body); err != nil {
				return nil, err
			}
			return append(payloads, p), nil
		}

		p := newPayload(typ)
		if p == nil {
			if g[genCritical]&criticalBit != 0 {
				return nil, &UnsupportedCriticalError{Type: typ}
			}
			continue // §2.5: skip an unknown non-critical payload
		}
		if err := p.Decode(body); err != nil {
			return nil, err
		}
		payloads = append(payloads, p)
	}
	if off != len(b) {
		return nil, syntaxErrorf("%d bytes after the last payload", len(b)-off)
	}
	return payloads, nil
}

// newPayload returns an empty payload of type t, or nil if t is not decoded
// by this package. SK and SKF are handled by parseChain.
func newPayload(t PayloadType) Payload {
	switch t {
	case PayloadSA:
		return new(SAPayload)
	case PayloadKE:
		return new(KEPayload)
	case PayloadIDi:
		return &IDPayload{}
	case PayloadIDr:
		return &IDPayload{Responder: true}
	case PayloadCERT:
		return new(CertPayload)
	case PayloadCERTREQ:
		return new(CertReqPayload)
	case PayloadAUTH:
		return new(AuthPayload)
	case PayloadNonce:
		return new(NoncePayload)
	case PayloadNotify:
		return new(NotifyPayload)
	case PayloadDelete:
		return new(DeletePayload)
	case PayloadVendorID:
		return new(VendorIDPayload)
	case PayloadTSi:
		return &TSPayload{}
	case PayloadTSr:
		return &TSPayload{Responder: true}
	case PayloadCP:
		return new(CPPayload)
	case PayloadEAP:
		return new(EAPPayload)
	}
	return nil
}

// Encode appends the encoded message to b and returns the extended slice.
// It computes the Next Payload and Length fields and writes version 2.0.
// It panics if an SK or SKF payload is not the last payload or a payload
// does not fit its 16-bit length field.
func (m *Message) Encode(b []byte) []byte {
	b, _ = m.encode(b, -1)
	return b
}

// SealLayout locates the parts of a message laid out by
// [Message.EncodeForSeal], as offsets into the returned slice.
type SealLayout struct {
	Start int // the IKE header starts here
	Data  int // the SK data (IV ‖ ciphertext ‖ ICV) starts here
	End   int // the message ends here
}

// AAD returns msg[l.Start:l.Data]: the IKE header, any payloads before the
// SK payload and the SK payload's generic header (for SKF also its Fragment
// Number and Total Fragments fields). It is the associated data of an AEAD
// (RFC 5282 §5.1, RFC 7383 §2.5); with an integrity transform the ICV
// covers msg[l.Start:l.End-icvLen] instead (RFC 7296 §3.14).
func (l SealLayout) AAD(msg []byte) []byte { return msg[l.Start:l.Data] }

// SKData returns msg[l.Data:l.End], the room for IV ‖ ciphertext ‖ ICV.
func (l SealLayout) SKData(msg []byte) []byte { return msg[l.Data:l.End] }

// EncodeForSeal appends m to b like [Message.Encode], but the last payload,
// which must be an *[EncryptedPayload] or *[EncryptedFragmentPayload], gets
// dataLen zero bytes of room instead of its Data. All length fields count
// those bytes, so the header and the payloads before the SK data are final
// and can serve as associated data.
//
// To protect a message with n bytes of inner payloads: compute dataLen =
// IV length + n + padding + 1 (Pad Length) + ICV length (RFC 7296 §3.14);
// call EncodeForSeal; write the inner payloads after the IV, either by
// copying or, without a copy, with EncodePayloadChain(out[iv:iv], inner)
// where iv = l.Data + IV length (the append lands in out's own storage,
// which has room up to l.End); then encrypt in place. The message is
// out[l.Start:l.End] and its SK data starts l.Data-l.Start bytes in: the
// (msg, dataOff) that package ikecrypto's SKCipher.Seal takes.
//
// It panics if the last payload is not SK or SKF, or dataLen is negative
// or too large for the Payload Length field.
func (m *Message) EncodeForSeal(b []byte, dataLen int) ([]byte, SealLayout) {
	if len(m.Payloads) == 0 {
		panic("ikev2: EncodeForSeal: message has no SK payload")
	}
	switch m.Payloads[len(m.Payloads)-1].(type) {
	case *EncryptedPayload, *EncryptedFragmentPayload:
	default:
		panic("ikev2: EncodeForSeal: last payload is " + m.Payloads[len(m.Payloads)-1].Type().String() + ", not SK or SKF")
	}
	if dataLen < 0 {
		panic("ikev2: EncodeForSeal: negative data length")
	}
	start := len(b)
	b, data := m.encode(b, dataLen)
	return b, SealLayout{Start: start, Data: data, End: len(b)}
}

// encode appends m; with sealLen >= 0 the last (SK/SKF) payload gets
// sealLen zero bytes instead of its Data, and the offset of those bytes is
// returned.
func (m *Message) encode(b []byte, sealLen int) ([]byte, int) {
	start := len(b)
	first := PayloadNone
	if len(m.Payloads) > 0 {
		first = m.Payloads[0].Type()
	}
	b = binary.BigEndian.AppendUint64(b, m.SPIi)
	b = binary.BigEndian.AppendUint64(b, m.SPIr)
	b = append(b, byte(first), version, byte(m.Exchange), byte(m.Flags))
	b = binary.BigEndian.AppendUint32(b, m.MessageID)
	b = append(b, 0, 0, 0, 0) // Length, set below
	b, data := appendChain(b, m.Payloads, sealLen)
	n := len(b) - start
	if uint64(n) > 0xffffffff {
		panic("ikev2: message longer than 2^32-1 bytes")
	}
	binary.BigEndian.PutUint32(b[start+hdrLength:], uint32(n))
	return b, data
}

// EncodePayloadChain appends payloads, each with its generic payload
// header, to b and returns the extended slice; the last payload's Next
// Payload field is zero. The type of the first payload is payloads[0].Type(),
// which the caller puts in the SK payload's Next Payload field. It panics
// like [Message.Encode].
func EncodePayloadChain(b []byte, payloads []Payload) []byte {
	b, _ = appendChain(b, payloads, -1)
	return b
}

func appendChain(b []byte, payloads []Payload, sealLen int) ([]byte, int) {
	data := -1
	for i, p := range payloads {
		next := PayloadNone
		if i+1 < len(payloads) {
			next = payloads[i+1].Type()
		}
		last := i+1 == len(payloads)
		switch sk := p.(type) {
		case *EncryptedPayload:
			if !last {
				panic("ikev2: SK payload must be the last payload")
			}
			next = sk.NextPayload
			if sealLen >= 0 {
				p = &EncryptedPayload{}
			}
		case *EncryptedFragmentPayload:
			if !last {
				panic("ikev2: SKF payload must be the last payload")
			}
			next = sk.NextPayload
			if sealLen >= 0 {
				c := *sk
				c.Data = nil
				p = &c
			}
		}
		start := len(b)
		b = append(b, byte(next), 0, 0, 0)
		b = p.Encode(b)
		if last && sealLen >= 0 {
			data = len(b)
			b = append(b, make([]byte, sealLen)...)
		}
		n := len(b) - start
		if n > maxPayloadLen {
			panic(fmt.Sprintf("ikev2: %v payload length %d > %d", p.Type(), n, maxPayloadLen))
		}
		binary.BigEndian.PutUint16(b[start+genLength:], uint16(n))
	}
	return b, data
}

// String summarises m for logs, e.g.
// "IKE_SA_INIT request 0 [ SA KE Nonce N(NAT_DETECTION_SOURCE_IP) ]".
func (m *Message) String() string {
	var s strings.Builder
	s.WriteString(m.Exchange.String())
	if m.IsResponse() {
		s.WriteString(" response ")
	} else {
		s.WriteString(" request ")
	}
	s.WriteString(strconv.FormatUint(uint64(m.MessageID), 10))
	s.WriteString(" [")
	for _, p := range m.Payloads {
		s.WriteByte(' ')
		switch p := p.(type) {
		case *NotifyPayload:
			s.WriteString("N(" + p.NotifyType.String() + ")")
		case *DeletePayload:
			s.WriteString("D(" + p.Protocol.String() + ")")
		case *EncryptedFragmentPayload:
			fmt.Fprintf(&s, "SKF(%d/%d)", p.FragmentNumber, p.TotalFragments)
		default:
			s.WriteString(p.Type().String())
		}
	}
	s.WriteString(" ]")
	return s.String()
}

// clone copies b, returning nil for an empty b, so that decoded payloads
// own their bytes and compare equal after a round trip.
func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// putLen16 writes n at b[off:] as a 16-bit length, panicking if it does not
// fit: encoding such a value is a programmer error.
func putLen16(b []byte, off, n int, what string) {
	if n > 0xffff {
		panic(fmt.Sprintf("ikev2: %s length %d > 65535", what, n))
	}
	binary.BigEndian.PutUint16(b[off:], uint16(n))
}

// checkMin reports a payload body shorter than min bytes, quoting the
// Payload Length field as the RFC does ("KE payload: length 6 < 8").
func checkMin(name string, body []byte, min int) error {
	if len(body) < min {
		return syntaxErrorf("%s payload: length %d < %d", name, GenericHeaderLen+len(body), GenericHeaderLen+min)
	}
	return nil
}
