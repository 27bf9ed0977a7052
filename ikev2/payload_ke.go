package ikev2

import "encoding/binary"

// The Key Exchange payload body (RFC 7296 §3.4, Figure 10):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Diffie-Hellman Group Num    |           RESERVED            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                       Key Exchange Data                       ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const keHeaderLen = 4

// KEPayload is a Key Exchange payload (RFC 7296 §3.4). The length of Data
// for a group is checked by the key exchange, not here.
type KEPayload struct {
	Group TransformID // a Transform Type 4 ID, e.g. DHECP384
	Data  []byte      // the sender's public value
}

// Type returns PayloadKE.
func (*KEPayload) Type() PayloadType { return PayloadKE }

// Encode appends the payload body.
func (p *KEPayload) Encode(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(p.Group))
	b = append(b, 0, 0)
	return append(b, p.Data...)
}

// Decode decodes a KE payload body of at least 4 bytes.
func (p *KEPayload) Decode(body []byte) error {
	if err := checkMin("KE", body, keHeaderLen); err != nil {
		return err
	}
	p.Group = TransformID(binary.BigEndian.Uint16(body))
	p.Data = clone(body[keHeaderLen:])
	return nil
}
