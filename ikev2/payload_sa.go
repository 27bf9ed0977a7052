package ikev2

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// The Security Association payload body (RFC 7296 §3.3) is a list of
// proposal substructures (§3.3.1, Figure 7):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Last Substruc |   RESERVED    |         Proposal Length       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Proposal Num  |  Protocol ID  |    SPI Size   |Num  Transforms|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                        SPI (variable)                         ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                        <Transforms>                           ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	propLastSubstruc = 0
	propLength       = 2
	propNumber       = 4
	propProtocol     = 5
	propSPISize      = 6
	propNumTrans     = 7
	propHeaderLen    = 8

	lastProposal = 0 // Last Substruc of the last proposal
	moreProposal = 2 // Last Substruc of a proposal followed by another
)

// Each proposal holds transform substructures (§3.3.2, Figure 8):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Last Substruc |   RESERVED    |        Transform Length       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Transform Type |   RESERVED    |          Transform ID         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                      Transform Attributes                     ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	transLastSubstruc = 0
	transLength       = 2
	transType         = 4
	transID           = 6
	transHeaderLen    = 8

	lastTransform = 0 // Last Substruc of the last transform
	moreTransform = 3 // Last Substruc of a transform followed by another
)

// Each transform holds data attributes (§3.3.5, Figure 9):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|A|       Attribute Type        |    AF=0  Attribute Length     |
//	|F|                             |    AF=1  Attribute Value      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                   AF=0  Attribute Value                       |
//	|                   AF=1  Not Transmitted                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	attrHeaderLen = 4
	attrFormatTV  = 0x8000
	attrTypeMask  = 0x7fff
)

// SAPayload is a Security Association payload (RFC 7296 §3.3): proposals,
// most preferred first. A request's proposals are numbered 1, 2, ...; a
// response carries the one accepted proposal with its number.
type SAPayload struct {
	Proposals []Proposal
}

// Proposal is a proposal substructure (RFC 7296 §3.3.1): a protocol and the
// transforms offered for it.
type Proposal struct {
	Number   uint8      // Proposal Num
	Protocol ProtocolID // IKE, AH or ESP
	// SPI is empty in an IKE_SA_INIT proposal, 8 bytes for an IKE SA
	// rekey, 4 bytes (network order) for AH and ESP.
	SPI        []byte
	Transforms []Transform
}

// Transform is a transform substructure (RFC 7296 §3.3.2).
type Transform struct {
	Type TransformType
	ID   TransformID
	// KeyLength is the value of the Key Length attribute (§3.3.5), in bits;
	// zero means the transform has no such attribute.
	KeyLength uint16
	// Attributes holds any other attributes, in order. RFC 7296 defines
	// none, and a transform with an attribute the receiver does not
	// understand must not be selected (§3.3.6).
	Attributes []TransformAttribute
}

// TransformAttribute is a data attribute of a transform (RFC 7296 §3.3.5)
// other than the Key Length attribute that Transform holds itself.
type TransformAttribute struct {
	Type  AttributeType // 15 bits
	TV    bool          // AF bit: Value holds the value, else Data does
	Value uint16
	Data  []byte
}

// Type returns PayloadSA.
func (*SAPayload) Type() PayloadType { return PayloadSA }

// Encode appends the payload body. It panics if a proposal has more than
// 255 transforms or an SPI longer than 255 bytes, or a substructure
// exceeds 65535 bytes.
func (p *SAPayload) Encode(b []byte) []byte {
	for i := range p.Proposals {
		prop := &p.Proposals[i]
		if len(prop.SPI) > 0xff || len(prop.Transforms) > 0xff {
			panic("ikev2: SA payload: proposal SPI or transform count exceeds 255")
		}
		last := byte(moreProposal)
		if i == len(p.Proposals)-1 {
			last = lastProposal
		}
		start := len(b)
		b = append(b, last, 0, 0, 0, prop.Number, byte(prop.Protocol), byte(len(prop.SPI)), byte(len(prop.Transforms)))
		b = append(b, prop.SPI...)
		for j := range prop.Transforms {
			b = prop.Transforms[j].encode(b, j == len(prop.Transforms)-1)
		}
		putLen16(b, start+propLength, len(b)-start, "SA proposal")
	}
	return b
}

func (t *Transform) encode(b []byte, last bool) []byte {
	marker := byte(moreTransform)
	if last {
		marker = lastTransform
	}
	start := len(b)
	b = append(b, marker, 0, 0, 0, byte(t.Type), 0)
	b = binary.BigEndian.AppendUint16(b, uint16(t.ID))
	if t.KeyLength != 0 {
		b = binary.BigEndian.AppendUint16(b, attrFormatTV|uint16(AttributeKeyLength))
		b = binary.BigEndian.AppendUint16(b, t.KeyLength)
	}
	for _, a := range t.Attributes {
		typ := uint16(a.Type) & attrTypeMask
		if a.TV {
			b = binary.BigEndian.AppendUint16(b, attrFormatTV|typ)
			b = binary.BigEndian.AppendUint16(b, a.Value)
			continue
		}
		b = binary.BigEndian.AppendUint16(b, typ)
		b = append(b, 0, 0)
		putLen16(b, len(b)-2, len(a.Data), "transform attribute")
		b = append(b, a.Data...)
	}
	putLen16(b, start+transLength, len(b)-start, "SA transform")
	return b
}

// Decode decodes and verifies an SA payload body: at least one proposal;
// every length consistent with its container; Last Substruc 0 on the last
// proposal or transform and 2 (proposals) or 3 (transforms) on the others;
// Num Transforms equal to the transforms present; the SPI size 0 or 8 for
// IKE and 4 for AH and ESP (§3.3.1).
func (p *SAPayload) Decode(body []byte) error {
	p.Proposals = nil
	if len(body) == 0 {
		return syntaxErrorf("SA payload: no proposals")
	}
	for n := 1; len(body) > 0; n++ {
		if len(body) < propHeaderLen {
			return syntaxErrorf("SA payload: proposal %d: %d bytes left < proposal header length %d", n, len(body), propHeaderLen)
		}
		plen := int(binary.BigEndian.Uint16(body[propLength:]))
		if plen < propHeaderLen {
			return syntaxErrorf("SA payload: proposal %d: proposal length %d < %d", n, plen, propHeaderLen)
		}
		if plen > len(body) {
			return syntaxErrorf("SA payload: proposal %d: proposal length %d overruns the payload (%d bytes left)", n, plen, len(body))
		}
		switch last := body[propLastSubstruc]; {
		case last != lastProposal && last != moreProposal:
			return syntaxErrorf("SA payload: proposal %d: last substructure %d, want 0 or 2", n, last)
		case last == lastProposal && plen != len(body):
			return syntaxErrorf("SA payload: proposal %d: last substructure 0 but %d bytes follow", n, len(body)-plen)
		case last == moreProposal && plen == len(body):
			return syntaxErrorf("SA payload: proposal %d: last substructure 2 but no proposal follows", n)
		}
		prop, err := decodeProposal(n, body[:plen])
		if err != nil {
			return err
		}
		p.Proposals = append(p.Proposals, prop)
		body = body[plen:]
	}
	return nil
}

func decodeProposal(n int, b []byte) (Proposal, error) {
	prop := Proposal{
		Number:   b[propNumber],
		Protocol: ProtocolID(b[propProtocol]),
	}
	spiSize := int(b[propSPISize])
	numTrans := int(b[propNumTrans])
	if propHeaderLen+spiSize > len(b) {
		return prop, syntaxErrorf("SA payload: proposal %d: SPI size %d overruns proposal length %d", n, spiSize, len(b))
	}
	switch prop.Protocol {
	case ProtocolIKE:
		if spiSize != 0 && spiSize != 8 {
			return prop, syntaxErrorf("SA payload: proposal %d: SPI size %d for IKE, want 0 or 8", n, spiSize)
		}
	case ProtocolAH, ProtocolESP:
		if spiSize != 4 {
			return prop, syntaxErrorf("SA payload: proposal %d: SPI size %d for %v, want 4", n, spiSize, prop.Protocol)
		}
	}
	prop.SPI = clone(b[propHeaderLen : propHeaderLen+spiSize])
	b = b[propHeaderLen+spiSize:]
	for t := 1; len(b) > 0; t++ {
		if len(b) < transHeaderLen {
			return prop, syntaxErrorf("SA payload: proposal %d: transform %d: %d bytes left < transform header length %d", n, t, len(b), transHeaderLen)
		}
		tlen := int(binary.BigEndian.Uint16(b[transLength:]))
		if tlen < transHeaderLen {
			return prop, syntaxErrorf("SA payload: proposal %d: transform length %d < %d", n, tlen, transHeaderLen)
		}
		if tlen > len(b) {
			return prop, syntaxErrorf("SA payload: proposal %d: transform %d: transform length %d overruns the proposal (%d bytes left)", n, t, tlen, len(b))
		}
		switch last := b[transLastSubstruc]; {
		case last != lastTransform && last != moreTransform:
			return prop, syntaxErrorf("SA payload: proposal %d: transform %d: last substructure %d, want 0 or 3", n, t, last)
		case last == lastTransform && tlen != len(b):
			return prop, syntaxErrorf("SA payload: proposal %d: transform %d: last substructure 0 but %d bytes follow", n, t, len(b)-tlen)
		case last == moreTransform && tlen == len(b):
			return prop, syntaxErrorf("SA payload: proposal %d: transform %d: last substructure 3 but no transform follows", n, t)
		}
		tr := Transform{
			Type: TransformType(b[transType]),
			ID:   TransformID(binary.BigEndian.Uint16(b[transID:])),
		}
		if err := tr.decodeAttributes(b[transHeaderLen:tlen]); err != nil {
			return prop, syntaxErrorf("SA payload: proposal %d: transform %d: %s", n, t, err)
		}
		prop.Transforms = append(prop.Transforms, tr)
		b = b[tlen:]
	}
	if len(prop.Transforms) != numTrans {
		return prop, syntaxErrorf("SA payload: proposal %d: %d transforms present, Num Transforms %d", n, len(prop.Transforms), numTrans)
	}
	return prop, nil
}

// attrError is a plain error text wrapped by the caller with its position.
type attrError string

func (e attrError) Error() string { return string(e) }

func (t *Transform) decodeAttributes(b []byte) error {
	for a := 1; len(b) > 0; a++ {
		if len(b) < attrHeaderLen {
			return attrError("attribute " + strconv.Itoa(a) + ": " + strconv.Itoa(len(b)) + " bytes left < 4")
		}
		word := binary.BigEndian.Uint16(b)
		attr := TransformAttribute{Type: AttributeType(word & attrTypeMask)}
		if word&attrFormatTV != 0 {
			attr.TV = true
			attr.Value = binary.BigEndian.Uint16(b[2:])
			b = b[attrHeaderLen:]
			// Keep the first non-zero Key Length in its own field; anything
			// else (a second one, a zero one) stays visible as an attribute.
			if attr.Type == AttributeKeyLength && attr.Value != 0 && t.KeyLength == 0 {
				t.KeyLength = attr.Value
				continue
			}
		} else {
			n := int(binary.BigEndian.Uint16(b[2:]))
			if attrHeaderLen+n > len(b) {
				return attrError("attribute " + strconv.Itoa(a) + ": length " + strconv.Itoa(n) + " overruns the transform (" + strconv.Itoa(len(b)-attrHeaderLen) + " bytes left)")
			}
			attr.Data = clone(b[attrHeaderLen : attrHeaderLen+n])
			b = b[attrHeaderLen+n:]
		}
		t.Attributes = append(t.Attributes, attr)
	}
	return nil
}

// String returns the transform's RFC name with its key length, e.g.
// "ENCR_AES_CBC_256" or "PRF_HMAC_SHA2_384", and "+attrs" if it has other
// attributes.
func (t Transform) String() string {
	s := t.ID.Name(t.Type)
	if t.KeyLength != 0 {
		s += "_" + strconv.Itoa(int(t.KeyLength))
	}
	if len(t.Attributes) > 0 {
		s += "+attrs"
	}
	return s
}

// String returns the proposal for logs, e.g.
// "ESP:ENCR_AES_GCM_16_256/NO_ESN".
func (p Proposal) String() string {
	names := make([]string, len(p.Transforms))
	for i, t := range p.Transforms {
		names[i] = t.String()
	}
	return p.Protocol.String() + ":" + strings.Join(names, "/")
}
