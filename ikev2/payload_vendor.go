package ikev2

// The Vendor ID payload body (RFC 7296 §3.12, Figure 18) is opaque:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                        Vendor ID (VID)                        ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

// VendorIDPayload is a Vendor ID payload (RFC 7296 §3.12).
type VendorIDPayload struct {
	ID []byte
}

// Type returns PayloadVendorID.
func (*VendorIDPayload) Type() PayloadType { return PayloadVendorID }

// Encode appends the payload body.
func (p *VendorIDPayload) Encode(b []byte) []byte { return append(b, p.ID...) }

// Decode decodes a Vendor ID payload body; any content is valid.
func (p *VendorIDPayload) Decode(body []byte) error {
	p.ID = clone(body)
	return nil
}
