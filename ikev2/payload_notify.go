package ikev2

import "encoding/binary"

// The Notify payload body (RFC 7296 §3.10, Figure 16):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Protocol ID  |   SPI Size    |      Notify Message Type      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                Security Parameter Index (SPI)                 ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                       Notification Data                       ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	notifyProtocol   = 0
	notifySPISize    = 1
	notifyType       = 2
	notifyHeaderLen  = 4
	notifyMaxSPISize = 0xff
)

// NotifyPayload is a Notify payload (RFC 7296 §3.10). For a notification
// about the IKE SA, Protocol is ProtocolNone and SPI empty; about a Child
// SA (INVALID_SELECTORS, REKEY_SA, CHILD_SA_NOT_FOUND), Protocol is AH or
// ESP and SPI its 4 bytes.
type NotifyPayload struct {
	Protocol   ProtocolID
	SPI        []byte
	NotifyType NotifyType
	Data       []byte
}

// Type returns PayloadNotify.
func (*NotifyPayload) Type() PayloadType { return PayloadNotify }

// Encode appends the payload body. It panics if the SPI is longer than 255
// bytes.
func (p *NotifyPayload) Encode(b []byte) []byte {
	if len(p.SPI) > notifyMaxSPISize {
		panic("ikev2: Notify payload: SPI longer than 255 bytes")
	}
	b = append(b, byte(p.Protocol), byte(len(p.SPI)))
	b = binary.BigEndian.AppendUint16(b, uint16(p.NotifyType))
	b = append(b, p.SPI...)
	return append(b, p.Data...)
}

// Decode decodes a Notify payload body: 4 bytes and the SPI its SPI Size
// announces, then the notification data.
func (p *NotifyPayload) Decode(body []byte) error {
	if err := checkMin("Notify", body, notifyHeaderLen); err != nil {
		return err
	}
	spiSize := int(body[notifySPISize])
	if notifyHeaderLen+spiSize > len(body) {
		return syntaxErrorf("Notify payload: SPI size %d overruns the payload (%d bytes left)", spiSize, len(body)-notifyHeaderLen)
	}
	p.Protocol = ProtocolID(body[notifyProtocol])
	p.NotifyType = NotifyType(binary.BigEndian.Uint16(body[notifyType:]))
	p.SPI = clone(body[notifyHeaderLen : notifyHeaderLen+spiSize])
	p.Data = clone(body[notifyHeaderLen+spiSize:])
	return nil
}
