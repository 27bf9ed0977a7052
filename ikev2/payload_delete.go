package ikev2

import "encoding/binary"

// The Delete payload body (RFC 7296 §3.11, Figure 17):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Protocol ID   |   SPI Size    |          Num of SPIs          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~               Security Parameter Index(es) (SPI)              ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	delProtocol  = 0
	delSPISize   = 1
	delNumSPIs   = 2
	delHeaderLen = 4
	childSPISize = 4 // SPI Size of AH and ESP
)

// DeletePayload is a Delete payload (RFC 7296 §3.11). Deleting the IKE SA
// is Protocol ProtocolIKE with no SPIs (the SPIs are in the IKE header);
// deleting Child SAs is ProtocolAH or ProtocolESP with their inbound SPIs,
// as the sender of the Delete sees them.
type DeletePayload struct {
	Protocol ProtocolID
	SPIs     []uint32
}

// Type returns PayloadDelete.
func (*DeletePayload) Type() PayloadType { return PayloadDelete }

// Encode appends the payload body. It panics if Protocol is IKE and SPIs
// is not empty, if Protocol is neither IKE, AH nor ESP, or if there are
// more than 65535 SPIs.
func (p *DeletePayload) Encode(b []byte) []byte {
	spiSize := byte(childSPISize)
	switch p.Protocol {
	case ProtocolIKE:
		if len(p.SPIs) != 0 {
			panic("ikev2: Delete payload: IKE SA delete carries no SPIs")
		}
		spiSize = 0
	case ProtocolAH, ProtocolESP:
	default:
		panic("ikev2: Delete payload: protocol " + p.Protocol.String())
	}
	if len(p.SPIs) > 0xffff {
		panic("ikev2: Delete payload: more than 65535 SPIs")
	}
	b = append(b, byte(p.Protocol), spiSize)
	b = binary.BigEndian.AppendUint16(b, uint16(len(p.SPIs)))
	for _, spi := range p.SPIs {
		b = binary.BigEndian.AppendUint32(b, spi)
	}
	return b
}

// Decode decodes a Delete payload body. The SPI Size must be 0 for IKE
// (with no SPIs) and 4 for AH and ESP (§3.11); Num of SPIs times the SPI
// Size must fill the payload.
func (p *DeletePayload) Decode(body []byte) error {
	if err := checkMin("Delete", body, delHeaderLen); err != nil {
		return err
	}
	p.Protocol = ProtocolID(body[delProtocol])
	p.SPIs = nil
	spiSize := int(body[delSPISize])
	num := int(binary.BigEndian.Uint16(body[delNumSPIs:]))
	spis := body[delHeaderLen:]
	switch p.Protocol {
	case ProtocolIKE:
		if spiSize != 0 || num != 0 {
			return syntaxErrorf("Delete payload: IKE with SPI size %d and %d SPIs, want 0 and 0", spiSize, num)
		}
	case ProtocolAH, ProtocolESP:
		if spiSize != childSPISize {
			return syntaxErrorf("Delete payload: SPI size %d for %v, want %d", spiSize, p.Protocol, childSPISize)
		}
	default:
		return syntaxErrorf("Delete payload: unknown protocol ID %d", byte(p.Protocol))
	}
	if len(spis) != num*spiSize {
		return syntaxErrorf("Delete payload: %d SPIs of %d bytes need %d bytes, have %d", num, spiSize, num*spiSize, len(spis))
	}
	if num > 0 {
		p.SPIs = make([]uint32, num)
		for i := range p.SPIs {
			p.SPIs[i] = binary.BigEndian.Uint32(spis[i*childSPISize:])
		}
	}
	return nil
}
