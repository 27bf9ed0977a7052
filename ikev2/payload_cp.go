package ikev2

import "encoding/binary"

// The Configuration payload body (RFC 7296 §3.15, Figure 22):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   CFG Type    |                    RESERVED                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                   Configuration Attributes                    ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// and each configuration attribute (§3.15.1, Figure 23):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|R|         Attribute Type      |            Length             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	~                             Value                             ~
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	cpHeaderLen     = 4
	cpAttrHeaderLen = 4
	cpAttrTypeMask  = 0x7fff
)

// CPPayload is a Configuration payload (RFC 7296 §3.15). Its attributes are
// opaque here.
type CPPayload struct {
	CFGType    CFGType
	Attributes []ConfigAttribute
}

// ConfigAttribute is one configuration attribute (RFC 7296 §3.15.1), e.g.
// INTERNAL_IP4_ADDRESS (1) with an empty or 4-byte value.
type ConfigAttribute struct {
	Type  uint16 // 15 bits; the reserved bit is dropped
	Value []byte
}

// Type returns PayloadCP.
func (*CPPayload) Type() PayloadType { return PayloadCP }

// Encode appends the payload body. It panics if a value is longer than
// 65535 bytes.
func (p *CPPayload) Encode(b []byte) []byte {
	b = append(b, byte(p.CFGType), 0, 0, 0)
	for _, a := range p.Attributes {
		b = binary.BigEndian.AppendUint16(b, a.Type&cpAttrTypeMask)
		b = append(b, 0, 0)
		putLen16(b, len(b)-2, len(a.Value), "CP attribute")
		b = append(b, a.Value...)
	}
	return b
}

// Decode decodes a CP payload body: 4 bytes, then attributes whose Length
// fields fill the rest exactly.
func (p *CPPayload) Decode(body []byte) error {
	if err := checkMin("CP", body, cpHeaderLen); err != nil {
		return err
	}
	p.CFGType = CFGType(body[0])
	p.Attributes = nil
	b := body[cpHeaderLen:]
	for i := 1; len(b) > 0; i++ {
		if len(b) < cpAttrHeaderLen {
			return syntaxErrorf("CP payload: attribute %d: %d bytes left < %d", i, len(b), cpAttrHeaderLen)
		}
		n := int(binary.BigEndian.Uint16(b[2:]))
		if cpAttrHeaderLen+n > len(b) {
			return syntaxErrorf("CP payload: attribute %d: length %d overruns the payload (%d bytes left)", i, n, len(b)-cpAttrHeaderLen)
		}
		p.Attributes = append(p.Attributes, ConfigAttribute{
			Type:  binary.BigEndian.Uint16(b) & cpAttrTypeMask,
			Value: clone(b[cpAttrHeaderLen : cpAttrHeaderLen+n]),
		})
		b = b[cpAttrHeaderLen+n:]
	}
	return nil
}
