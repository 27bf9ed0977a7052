package ikev2

// The Certificate payload body (RFC 7296 §3.6, Figure 12) and the
// Certificate Request payload body (§3.7, Figure 13) share one layout:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Cert Encoding |                                               |
//	+-+-+-+-+-+-+-+-+                                               |
//	~       Certificate Data / Certification Authority              ~
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const certHeaderLen = 1

// CertPayload is a Certificate payload (RFC 7296 §3.6); Data is opaque here.
type CertPayload struct {
	Encoding CertEncoding
	Data     []byte
}

// Type returns PayloadCERT.
func (*CertPayload) Type() PayloadType { return PayloadCERT }

// Encode appends the payload body.
func (p *CertPayload) Encode(b []byte) []byte {
	return append(append(b, byte(p.Encoding)), p.Data...)
}

// Decode decodes a CERT payload body of at least 1 byte.
func (p *CertPayload) Decode(body []byte) error {
	if err := checkMin("CERT", body, certHeaderLen); err != nil {
		return err
	}
	p.Encoding = CertEncoding(body[0])
	p.Data = clone(body[certHeaderLen:])
	return nil
}

// CertReqPayload is a Certificate Request payload (RFC 7296 §3.7). For
// X.509 its Data is a list of SHA-1 hashes of CA public keys; it is opaque
// here.
type CertReqPayload struct {
	Encoding CertEncoding
	Data     []byte
}

// Type returns PayloadCERTREQ.
func (*CertReqPayload) Type() PayloadType { return PayloadCERTREQ }

// Encode appends the payload body.
func (p *CertReqPayload) Encode(b []byte) []byte {
	return append(append(b, byte(p.Encoding)), p.Data...)
}

// Decode decodes a CERTREQ payload body of at least 1 byte.
func (p *CertReqPayload) Decode(body []byte) error {
	if err := checkMin("CERTREQ", body, certHeaderLen); err != nil {
		return err
	}
	p.Encoding = CertEncoding(body[0])
	p.Data = clone(body[certHeaderLen:])
	return nil
}
