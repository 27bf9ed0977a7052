package ikev2

// The Authentication payload body (RFC 7296 §3.8, Figure 14):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Auth Method   |                RESERVED                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                      Authentication Data                      ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const authHeaderLen = 4

// AuthPayload is an Authentication payload (RFC 7296 §3.8).
type AuthPayload struct {
	Method AuthMethod
	Data   []byte // e.g. prf(prf(PSK, "Key Pad for IKEv2"), <SignedOctets>)
}

// Type returns PayloadAUTH.
func (*AuthPayload) Type() PayloadType { return PayloadAUTH }

// Encode appends the payload body.
func (p *AuthPayload) Encode(b []byte) []byte {
	return append(append(b, byte(p.Method), 0, 0, 0), p.Data...)
}

// Decode decodes an AUTH payload body of at least 4 bytes.
func (p *AuthPayload) Decode(body []byte) error {
	if err := checkMin("AUTH", body, authHeaderLen); err != nil {
		return err
	}
	p.Method = AuthMethod(body[0])
	p.Data = clone(body[authHeaderLen:])
	return nil
}
