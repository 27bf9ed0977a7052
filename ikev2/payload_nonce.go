package ikev2

// The Nonce payload body (RFC 7296 §3.9, Figure 15) is the nonce itself:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                            Nonce Data                         ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

// Nonce lengths allowed by RFC 7296 §3.9: "between 16 and 256 octets".
const (
	MinNonceLen = 16
	MaxNonceLen = 256
)

// NoncePayload is a Nonce payload, Ni or Nr (RFC 7296 §3.9).
type NoncePayload struct {
	Nonce []byte // MinNonceLen to MaxNonceLen bytes
}

// Type returns PayloadNonce.
func (*NoncePayload) Type() PayloadType { return PayloadNonce }

// Encode appends the payload body. It does not check the nonce's length.
func (p *NoncePayload) Encode(b []byte) []byte { return append(b, p.Nonce...) }

// Decode decodes a Nonce payload body of 16 to 256 bytes.
func (p *NoncePayload) Decode(body []byte) error {
	if len(body) < MinNonceLen || len(body) > MaxNonceLen {
		return syntaxErrorf("Nonce payload: nonce length %d, want %d to %d", len(body), MinNonceLen, MaxNonceLen)
	}
	p.Nonce = clone(body)
	return nil
}
