package ikev2

// The EAP payload body (RFC 7296 §3.16, Figure 24) is one EAP message
// (RFC 3748), opaque here:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                       EAP Message                             ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

// EAPPayload is an Extensible Authentication payload (RFC 7296 §3.16).
type EAPPayload struct {
	Message []byte
}

// Type returns PayloadEAP.
func (*EAPPayload) Type() PayloadType { return PayloadEAP }

// Encode appends the payload body.
func (p *EAPPayload) Encode(b []byte) []byte { return append(b, p.Message...) }

// Decode decodes an EAP payload body; the EAP message is not checked here.
func (p *EAPPayload) Decode(body []byte) error {
	p.Message = clone(body)
	return nil
}
