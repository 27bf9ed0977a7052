package ikev2

import "encoding/binary"

// The Encrypted payload body (RFC 7296 §3.14, Figure 21):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Initialization Vector                     |
//	|         (length is block size for encryption algorithm)       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                    Encrypted IKE Payloads                     ~
//	+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               |             Padding (0-255 octets)            |
//	+-+-+-+-+-+-+-+-+                               +-+-+-+-+-+-+-+-+
//	|                                               |  Pad Length   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                    Integrity Checksum Data                    ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The Encrypted Fragment payload body (RFC 7383 §2.5) puts two fields in
// front of the same content:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|        Fragment Number        |        Total Fragments        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Initialization Vector                     |
//	~                      Encrypted content                        ~
//	~                    Integrity Checksum Data                    ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	skfFragmentNumber = 0
	skfTotalFragments = 2
	skfHeaderLen      = 4
)

// EncryptedPayload is an Encrypted and Authenticated payload, SK
// (RFC 7296 §3.14). It is always the last payload of its message, and its
// generic header's Next Payload field carries NextPayload, the type of the
// first payload inside it.
//
// Data is IV ‖ ciphertext ‖ ICV, still encrypted; the codec does not know
// the cipher's IV and ICV sizes. After [ParseMessage] of b, Data aliases
// the end of b, so b[:len(b)-len(Data)] is the associated data for an AEAD
// (RFC 5282 §5.1), and Data can be decrypted in place; parse the plaintext,
// without padding and Pad Length, with [ParsePayloadChain](NextPayload, ...).
type EncryptedPayload struct {
	NextPayload PayloadType
	Data        []byte
}

// Type returns PayloadSK.
func (*EncryptedPayload) Type() PayloadType { return PayloadSK }

// Encode appends Data.
func (p *EncryptedPayload) Encode(b []byte) []byte { return append(b, p.Data...) }

// Decode sets Data to body, without copying, and keeps NextPayload. Any
// length is accepted here; the cipher checks that IV and ICV fit.
func (p *EncryptedPayload) Decode(body []byte) error {
	p.Data = body
	if len(body) == 0 {
		p.Data = nil
	}
	return nil
}

// EncryptedFragmentPayload is an Encrypted and Authenticated Fragment
// payload, SKF (RFC 7383 §2.5). Like SK it is the last payload of its
// message. NextPayload is the first inner payload's type in fragment 1 and
// zero in the others.
//
// Data is IV ‖ ciphertext ‖ ICV and after [ParseMessage] aliases the end of
// the parsed message, like [EncryptedPayload].Data; the associated data
// includes the Fragment Number and Total Fragments fields.
type EncryptedFragmentPayload struct {
	NextPayload    PayloadType
	FragmentNumber uint16 // 1 to TotalFragments
	TotalFragments uint16
	Data           []byte
}

// Type returns PayloadSKF.
func (*EncryptedFragmentPayload) Type() PayloadType { return PayloadSKF }

// Encode appends the Fragment Number, Total Fragments and Data.
func (p *EncryptedFragmentPayload) Encode(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, p.FragmentNumber)
	b = binary.BigEndian.AppendUint16(b, p.TotalFragments)
	return append(b, p.Data...)
}

// Decode decodes an SKF payload body, keeping NextPayload: Fragment Number
// and Total Fragments must be non-zero, the number at most the total
// (RFC 7383 §2.5). Data aliases body.
func (p *EncryptedFragmentPayload) Decode(body []byte) error {
	if err := checkMin("SKF", body, skfHeaderLen); err != nil {
		return err
	}
	p.FragmentNumber = binary.BigEndian.Uint16(body[skfFragmentNumber:])
	p.TotalFragments = binary.BigEndian.Uint16(body[skfTotalFragments:])
	if p.FragmentNumber == 0 || p.TotalFragments == 0 || p.FragmentNumber > p.TotalFragments {
		return syntaxErrorf("SKF payload: fragment number %d of %d, want 1 <= number <= total", p.FragmentNumber, p.TotalFragments)
	}
	p.Data = body[skfHeaderLen:]
	if len(p.Data) == 0 {
		p.Data = nil
	}
	return nil
}
