package ikev2

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Certificates (RFC 7296 §3.6, §3.7, RFC 7670) for public-key
// authentication:
//
//   - CERT payloads carry our certificate and its intermediates
//     (X.509 Certificate - Signature, encoding 4), or, when the peer's
//     CERTREQ asks for it, our raw public key: encoding 15 (RFC 7670,
//     SubjectPublicKeyInfo), 11 (PKCS#1 RSAPublicKey) or OpenIKED's
//     private-use 201 (SubjectPublicKeyInfo of an ECDSA key), which is what
//     an iked without CA certificates requests and sends.
//   - A CERTREQ (encoding 4) lists the SHA-1 hashes of the
//     SubjectPublicKeyInfo of the CAs we trust (§3.7).
//   - The peer's certificates are unauthenticated input until its AUTH
//     verifies with the key they vouch for: their number, size and chain
//     length are bounded, the chain is verified with crypto/x509 to the
//     configured CA certificates at the current time (validity, CA basic
//     constraints and path length; any extended key usage, as strongSwan:
//     serverAuth is not required), the end entity must allow digital
//     signatures if it limits its key usage, no certificate of the chain
//     may be on a configured CRL of its issuer, and the peer's ID must be
//     in the end entity: a subjectAltName dNSName, iPAddress or rfc822Name
//     for an FQDN, IP address or RFC822 ID, the subject for a DER_ASN1_DN
//     ID.
//   - With a raw public key configured (PubKeyAuth.PeerKey) that key is
//     authoritative: a raw key the peer sends must be the same, X.509
//     certificates are ignored.

// Bounds on the peer's CERT payloads: they are read before its AUTH is
// verified.
const (
	maxPeerCerts     = 8         // X.509 CERT payloads looked at
	maxPeerCertBytes = 16 << 10  // one certificate
	maxPeerCertTotal = 48 << 10  // all CERT payloads of a message
	maxChainLen      = 6         // end entity, up to 4 intermediates, the trust anchor
	maxCertReqHashes = 64        // CA hashes read from the peer's CERTREQ
	certReqHashLen   = sha1.Size // §3.7
)

// certReqPayload returns our CERTREQ: the SHA-1 hashes of the public keys
// of the CAs we trust (§3.7), or nil without CAs.
func certReqPayload(p *PubKeyAuth) *CertReqPayload {
	if p == nil || len(p.CACerts) == 0 {
		return nil
	}
	var data []byte
	for _, c := range p.CACerts {
		h := sha1.Sum(c.RawSubjectPublicKeyInfo)
		data = append(data, h[:]...)
	}
	return &CertReqPayload{Encoding: CertX509Signature, Data: data}
}

// peerCertReq is what the peer's CERTREQ payloads asked for.
type peerCertReq struct {
	x509 bool         // X.509 certificates (any CA)
	raw  CertEncoding // a raw key encoding, 0 for none
}

// noteCertReq records a CERTREQ payload of the peer.
func (r *peerCertReq) note(c *CertReqPayload) {
	switch c.Encoding {
	case CertX509Signature:
		r.x509 = true
	case CertRawPublicKey, CertRawRSAKey, CertIKEDECDSA:
		if r.raw == 0 {
			r.raw = c.Encoding
		}
	}
}

// certPayloads returns the CERT payloads of our IKE_AUTH message: our
// certificate chain, or our raw public key in the encoding the peer
// requested (if the key fits it).
func certPayloads(p *PubKeyAuth, req peerCertReq) []Payload {
	if p == nil {
		return nil
	}
	var out []Payload
	if len(p.Certs) > 0 {
		for _, c := range p.Certs {
			out = append(out, &CertPayload{Encoding: CertX509Signature, Data: c.Raw})
		}
		return out
	}
	pub := p.Key.Public()
	switch req.raw {
	case CertRawPublicKey:
		if der, err := x509.MarshalPKIXPublicKey(pub); err == nil {
			out = append(out, &CertPayload{Encoding: CertRawPublicKey, Data: der})
		}
	case CertIKEDECDSA:
		if _, ok := pub.(*ecdsa.PublicKey); ok {
			if der, err := x509.MarshalPKIXPublicKey(pub); err == nil {
				out = append(out, &CertPayload{Encoding: CertIKEDECDSA, Data: der})
			}
		}
	case CertRawRSAKey:
		if k, ok := pub.(*rsa.PublicKey); ok {
			out = append(out, &CertPayload{Encoding: CertRawRSAKey, Data: x509.MarshalPKCS1PublicKey(k)})
		}
	}
	return out
}

// peerPublicKey returns the key the peer's AUTH must verify with: the
// configured raw key (after checking any raw key the peer sent against
// it), or the key of the peer's certificate, verified to our CAs at now
// and matching its identity id.
func peerPublicKey(p *PubKeyAuth, id Identity, certs []*CertPayload, now time.Time) (crypto.PublicKey, error) {
	total := 0
	for _, c := range certs {
		total += len(c.Data)
	}
	if total > maxPeerCertTotal {
		return nil, fmt.Errorf("its CERT payloads hold %d octets, more than %d", total, maxPeerCertTotal)
	}
	if p.PeerKey != nil {
		for _, c := range certs {
			if c.Encoding != CertRawPublicKey && c.Encoding != CertRawRSAKey && c.Encoding != CertIKEDECDSA {
				continue
			}
			k, err := ParseRawPublicKey(c.Encoding, c.Data)
			if err != nil {
				return nil, fmt.Errorf("its raw public key (CERT %v): %v", c.Encoding, err)
			}
			if !publicKeysEqual(p.PeerKey, k) {
				return nil, fmt.Errorf("it sent a raw public key (%s) that is not the configured peer key (%s)", KeyName(k), KeyName(p.PeerKey))
			}
		}
		return p.PeerKey, nil
	}
	var chain []*x509.Certificate
	for _, c := range certs {
		if c.Encoding != CertX509Signature {
			continue
		}
		if len(chain) == maxPeerCerts {
			return nil, fmt.Errorf("it sent more than %d certificates", maxPeerCerts)
		}
		if len(c.Data) > maxPeerCertBytes {
			return nil, fmt.Errorf("it sent a certificate of %d octets, more than %d", len(c.Data), maxPeerCertBytes)
		}
		cert, err := x509.ParseCertificate(c.Data)
		if err != nil {
			return nil, fmt.Errorf("its certificate %d does not parse: %v", len(chain)+1, err)
		}
		chain = append(chain, cert)
	}
	if len(chain) == 0 {
		return nil, errors.New("it sent no certificate (CERT payload), and no raw public key of it is configured")
	}
	return VerifyPeerCertificate(p, id, chain, now)
}

// VerifyPeerCertificate verifies chain, the peer's end-entity certificate
// followed by the intermediates it sent, against p's CA certificates and
// CRLs at now, and checks that it names identity id. It returns the end
// entity's public key.
func VerifyPeerCertificate(p *PubKeyAuth, id Identity, chain []*x509.Certificate, now time.Time) (crypto.PublicKey, error) {
	leaf := chain[0]
	if err := checkPublicKey(leaf.PublicKey); err != nil {
		return nil, fmt.Errorf("its certificate %q: %v", leaf.Subject, err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range p.CACerts {
		roots.AddCert(c)
	}
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, fmt.Errorf("its certificate %q does not verify with our CA certificates: %v", leaf.Subject, err)
	}
	var path []*x509.Certificate
	for _, c := range chains {
		if len(c) <= maxChainLen && (path == nil || len(c) < len(path)) {
			path = c
		}
	}
	if path == nil {
		return nil, fmt.Errorf("its certificate %q is more than %d certificates from our CA", leaf.Subject, maxChainLen)
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return nil, fmt.Errorf("its certificate %q does not allow digital signatures (key usage)", leaf.Subject)
	}
	for i := 0; i+1 < len(path); i++ {
		if crl := revokedBy(p.CRLs, path[i], path[i+1], now); crl != nil {
			return nil, fmt.Errorf("certificate %q (serial %s) is revoked by the CRL of %q", path[i].Subject, path[i].SerialNumber, crl.Issuer)
		}
	}
	if err := certMatchesID(leaf, id); err != nil {
		return nil, err
	}
	return leaf.PublicKey, nil
}

// revokedBy returns the CRL of issuer, among crls, that lists cert, or
// nil. A CRL counts only if issuer signed it.
func revokedBy(crls []*x509.RevocationList, cert, issuer *x509.Certificate, now time.Time) *x509.RevocationList {
	for _, crl := range crls {
		if !bytes.Equal(crl.RawIssuer, cert.RawIssuer) || crl.CheckSignatureFrom(issuer) != nil {
			continue
		}
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber != nil && e.SerialNumber.Cmp(cert.SerialNumber) == 0 && !e.RevocationTime.After(now) {
				return crl
			}
		}
	}
	return nil
}

// certMatchesID checks that certificate c names the identity id (see the
// comment at the top of this file).
func certMatchesID(c *x509.Certificate, id Identity) error {
	switch id.IDType {
	case IDIPv4Addr, IDIPv6Addr:
		a, _ := id.Addr()
		for _, ip := range c.IPAddresses {
			if b, ok := netip.AddrFromSlice(ip); ok && b.Unmap() == a {
				return nil
			}
		}
	case IDFQDN:
		for _, n := range c.DNSNames {
			if strings.EqualFold(n, string(id.Data)) {
				return nil
			}
		}
	case IDRFC822Addr:
		for _, n := range c.EmailAddresses {
			if strings.EqualFold(n, string(id.Data)) {
				return nil
			}
		}
	case IDDERASN1DN:
		if sameDN(c.RawSubject, id.Data) {
			return nil
		}
		return fmt.Errorf("its certificate's subject %q is not its ID %v", c.Subject, id)
	default:
		return fmt.Errorf("an ID of type %v cannot be checked against a certificate", id.IDType)
	}
	return fmt.Errorf("its certificate %q has no subjectAltName for its ID %v", c.Subject, id)
}

// sameDN reports whether two DER Names hold the same attributes in the
// same order, whatever string types they use.
func sameDN(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var ra, rb pkix.RDNSequence
	if rest, err := asn1.Unmarshal(a, &ra); err != nil || len(rest) > 0 {
		return false
	}
	if rest, err := asn1.Unmarshal(b, &rb); err != nil || len(rest) > 0 {
		return false
	}
	return slices.EqualFunc(ra, rb, func(x, y pkix.RelativeDistinguishedNameSET) bool {
		return slices.EqualFunc(x, y, func(u, v pkix.AttributeTypeAndValue) bool {
			return u.Type.Equal(v.Type) && fmt.Sprint(u.Value) == fmt.Sprint(v.Value)
		})
	})
}

// ParseRawPublicKey decodes a raw public key from a CERT payload: a
// SubjectPublicKeyInfo (encodings 15 and 201) or a PKCS#1 RSAPublicKey
// (11).
func ParseRawPublicKey(enc CertEncoding, data []byte) (crypto.PublicKey, error) {
	var k crypto.PublicKey
	var err error
	switch enc {
	case CertRawPublicKey, CertIKEDECDSA:
		k, err = x509.ParsePKIXPublicKey(data)
	case CertRawRSAKey:
		k, err = x509.ParsePKCS1PublicKey(data)
	default:
		return nil, fmt.Errorf("encoding %v is no raw public key", enc)
	}
	if err != nil {
		return nil, err
	}
	if err := checkPublicKey(k); err != nil {
		return nil, err
	}
	return k, nil
}
