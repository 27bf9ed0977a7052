package ikev2

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Public-key authentication (RFC 7296 §2.15): the AUTH payload is a
// signature over the octets of §2.15 ([ikecrypto.SignedOctets]) with the
// private key of the side that sends it. The methods:
//
//	 1  RSA_SIG              RSASSA-PKCS1-v1_5 with SHA-1 (RFC 7296 §3.8)
//	 9  ECDSA_SHA256_P256    ECDSA, r | s of fixed length (RFC 4754 §7)
//	10  ECDSA_SHA384_P384
//	11  ECDSA_SHA512_P521
//	14  DIGITAL_SIGNATURE    any PKIX signature algorithm, named in the AUTH
//	                         data by its AlgorithmIdentifier (RFC 7427 §3);
//	                         Ed25519 by id-Ed25519 (RFC 8420)
//
// Method 14 is used when the peer announced it with SIGNATURE_HASH_ALGORITHMS
// in IKE_SA_INIT (RFC 7427 §4), with a hash the peer listed; otherwise the
// legacy method of the key, as strongSwan and OpenIKED do. A received
// signature must use a hash we announced: SHA-1 only with
// PubKeyAuth.AllowSHA1, which also governs method 1.
//
// The method 14 Authentication Data (RFC 7427 §3):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| ASN.1 Length  | AlgorithmIdentifier ASN.1 object              |
//	+-+-+-+-+-+-+-+-+                                               +
//	~        AlgorithmIdentifier ASN.1 object continuing            ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                         Signature Value                       ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The Signature Value of ECDSA is the DER ECDSA-Sig-Value (RFC 7427 §3,
// RFC 3279), of RSA and Ed25519 the raw signature.

// PubKeyAuth is public-key authentication of one IKE peer: how this side
// signs its AUTH, and how it knows the peer's key. Set [Config.PubKey]
// instead of [Config.PSK].
type PubKeyAuth struct {
	// Key is our private key: *ecdsa.PrivateKey on P-256, P-384 or
	// P-521, *rsa.PrivateKey of at least 2048 bits, or
	// ed25519.PrivateKey.
	Key crypto.Signer
	// Certs is our certificate followed by the intermediate CA
	// certificates to send with it (CERT payloads, §3.6); nil for a raw
	// public key, which the peer has configured (as OpenIKED's
	// pubkeys/ and strongSwan's pubkeys do).
	Certs []*x509.Certificate
	// RSAPSS signs with RSASSA-PSS instead of PKCS#1 v1.5 (method 14
	// only). Both are verified either way.
	RSAPSS bool

	// PeerKey is the peer's raw public key (*ecdsa.PublicKey,
	// *rsa.PublicKey or ed25519.PublicKey). Exactly one of PeerKey and
	// CACerts is set.
	PeerKey crypto.PublicKey
	// CACerts are the trusted CA certificates the peer's certificate must
	// chain to (their key hashes go in our CERTREQ, §3.7). CRLs are
	// revocation lists of those CAs or of intermediate CAs.
	CACerts []*x509.Certificate
	CRLs    []*x509.RevocationList

	// AllowSHA1 accepts and makes SHA-1 signatures: RSA_SIG (method 1,
	// for an RSA key of a peer without RFC 7427) and method 14 with SHA-1.
	// Weak (RFC 8247 §3.2); only for old peers.
	AllowSHA1 bool
}

// checkPubKeyAuth validates a PubKeyAuth and returns a copy that owns its
// slices.
func checkPubKeyAuth(p *PubKeyAuth) (*PubKeyAuth, error) {
	c := *p
	if err := checkPrivateKey(c.Key); err != nil {
		return nil, err
	}
	if len(c.Certs) > 0 {
		if !publicKeysEqual(c.Certs[0].PublicKey, c.Key.Public()) {
			return nil, errors.New("the certificate's public key is not the private key's")
		}
	}
	switch {
	case c.PeerKey == nil && len(c.CACerts) == 0:
		return nil, errors.New("neither the peer's public key nor a CA certificate to verify the peer with")
	case c.PeerKey != nil && len(c.CACerts) > 0:
		return nil, errors.New("both the peer's public key and CA certificates; use one")
	case c.PeerKey != nil:
		if err := checkPublicKey(c.PeerKey); err != nil {
			return nil, fmt.Errorf("the peer's public key: %w", err)
		}
	}
	c.Certs = slices.Clone(c.Certs)
	c.CACerts = slices.Clone(c.CACerts)
	c.CRLs = slices.Clone(c.CRLs)
	return &c, nil
}

// minRSABits is the smallest RSA key accepted (RFC 8247 §3.2 wants 2048);
// maxRSABits bounds the cost of a peer's key.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

func checkPrivateKey(k crypto.Signer) error {
	if k == nil {
		return errors.New("no private key")
	}
	switch k.(type) {
	case *ecdsa.PrivateKey, *rsa.PrivateKey, ed25519.PrivateKey:
		return checkPublicKey(k.Public())
	}
	return fmt.Errorf("private key of type %T: want ECDSA, RSA or Ed25519", k)
}

func checkPublicKey(k crypto.PublicKey) error {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		if ecdsaHash(k.Curve) == 0 {
			return fmt.Errorf("ECDSA curve %s: want P-256, P-384 or P-521", k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < minRSABits || n > maxRSABits {
			return fmt.Errorf("RSA key of %d bits: want %d to %d", n, minRSABits, maxRSABits)
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return errors.New("Ed25519 public key of the wrong length")
		}
	default:
		return fmt.Errorf("public key of type %T: want ECDSA, RSA or Ed25519", k)
	}
	return nil
}

// publicKeysEqual reports whether a and b are the same public key.
func publicKeysEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// KeyName describes a public key for logs and errors: "ECDSA P-256",
// "RSA 3072", "Ed25519".
func KeyName(k crypto.PublicKey) string {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", k)
}

// ecdsaHash returns the hash of curve's legacy method (RFC 4754 §7), 0
// for another curve.
func ecdsaHash(c elliptic.Curve) HashAlgorithm {
	switch c {
	case elliptic.P256():
		return HashSHA256
	case elliptic.P384():
		return HashSHA384
	case elliptic.P521():
		return HashSHA512
	}
	return 0
}

// ecdsaMethod returns the legacy ECDSA method of curve (RFC 4754 §7).
func ecdsaMethod(c elliptic.Curve) AuthMethod {
	switch c {
	case elliptic.P256():
		return AuthECDSASHA256P256
	case elliptic.P384():
		return AuthECDSASHA384P384
	case elliptic.P521():
		return AuthECDSASHA512P521
	}
	return 0
}

// cryptoHash maps a registry hash to crypto.Hash; Identity is 0.
func cryptoHash(h HashAlgorithm) crypto.Hash {
	switch h {
	case HashSHA1:
		return crypto.SHA1
	case HashSHA256:
		return crypto.SHA256
	case HashSHA384:
		return crypto.SHA384
	case HashSHA512:
		return crypto.SHA512
	}
	return 0
}

// ourHashes are the hashes we announce in SIGNATURE_HASH_ALGORITHMS and
// accept in a method 14 signature.
func (p *PubKeyAuth) ourHashes() []HashAlgorithm {
	h := []HashAlgorithm{HashSHA256, HashSHA384, HashSHA512, HashIdentity}
	if p.AllowSHA1 {
		h = append(h, HashSHA1)
	}
	return h
}

// SignatureHashesPayload returns the SIGNATURE_HASH_ALGORITHMS notify
// listing hashes (RFC 7427 §4): 2 octets each.
func SignatureHashesPayload(hashes []HashAlgorithm) *NotifyPayload {
	var b []byte
	for _, h := range hashes {
		b = binary.BigEndian.AppendUint16(b, uint16(h))
	}
	return &NotifyPayload{NotifyType: NotifySignatureHashAlgorithms, Data: b}
}

// ParseSignatureHashes decodes the data of a SIGNATURE_HASH_ALGORITHMS
// notify: a list of 2-octet hash algorithms, at least one (RFC 7427 §4).
// Unknown values are kept; duplicates are dropped. At most 64 are read.
func ParseSignatureHashes(data []byte) ([]HashAlgorithm, error) {
	if len(data) == 0 || len(data)%2 != 0 {
		return nil, syntaxErrorf("SIGNATURE_HASH_ALGORITHMS: %d octets, want a non-zero even number", len(data))
	}
	var hs []HashAlgorithm
	for i := 0; i+1 < len(data) && len(hs) < 64; i += 2 {
		h := HashAlgorithm(binary.BigEndian.Uint16(data[i:]))
		if !slices.Contains(hs, h) {
			hs = append(hs, h)
		}
	}
	return hs, nil
}

// sigAlg is a signature algorithm of method 14: the key type, the hash
// and, for RSA, the padding.
type sigAlg struct {
	key  keyType
	hash HashAlgorithm
	pss  bool
	// saltLen is the PSS salt length.
	saltLen int
}

type keyType uint8

const (
	keyECDSA keyType = iota + 1
	keyRSA
	keyEd25519
)

func keyTypeOf(k crypto.PublicKey) keyType {
	switch k.(type) {
	case *ecdsa.PublicKey:
		return keyECDSA
	case *rsa.PublicKey:
		return keyRSA
	case ed25519.PublicKey:
		return keyEd25519
	}
	return 0
}

// The object identifiers of the signature algorithms (RFC 8017 Appendix
// C, RFC 5758 §3.2, RFC 8410 §3) and of the hashes in RSASSA-PSS
// parameters (RFC 4055 §2.1, §3.1).
var (
	oidSHA1WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}
	oidSHA256WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidRSASSAPSS     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidMGF1          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	oidECDSAWithSHA1 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 1}
	oidECDSAWithSHA2 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3} // .2 SHA-256, .3 SHA-384, .4 SHA-512
	oidEd25519       = asn1.ObjectIdentifier{1, 3, 101, 112}
	oidSHA1          = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA2          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2} // .1 SHA-256, .2 SHA-384, .3 SHA-512
)

// rsaOID returns the PKCS#1 v1.5 signature OID of h.
func rsaOID(h HashAlgorithm) asn1.ObjectIdentifier {
	switch h {
	case HashSHA1:
		return oidSHA1WithRSA
	case HashSHA256:
		return oidSHA256WithRSA
	case HashSHA384:
		return oidSHA384WithRSA
	case HashSHA512:
		return oidSHA512WithRSA
	}
	return nil
}

// hashOID returns the OID of hash h, and whether there is one.
func hashOID(h HashAlgorithm) (asn1.ObjectIdentifier, bool) {
	switch h {
	case HashSHA1:
		return oidSHA1, true
	case HashSHA256, HashSHA384, HashSHA512:
		return append(slices.Clone(oidSHA2), int(h-HashSHA256)+1), true
	}
	return nil, false
}

// hashOfOID returns the hash that oid names, or 0.
func hashOfOID(oid asn1.ObjectIdentifier) HashAlgorithm {
	for _, h := range []HashAlgorithm{HashSHA1, HashSHA256, HashSHA384, HashSHA512} {
		if o, _ := hashOID(h); o.Equal(oid) {
			return h
		}
	}
	return 0
}

// AlgorithmIdentifier returns the DER AlgorithmIdentifier of a method 14
// signature (RFC 7427 §3, Appendix A): ECDSA without parameters,
// PKCS#1 v1.5 with NULL ones, RSASSA-PSS with its hash, MGF1 with the same
// hash and a salt as long as the hash (the trailer field left at its
// default, as DER wants), Ed25519 without parameters (RFC 8410 §3).
func (a sigAlg) AlgorithmIdentifier() []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		switch {
		case a.key == keyEd25519:
			b.AddASN1ObjectIdentifier(oidEd25519)
		case a.key == keyECDSA && a.hash == HashSHA1:
			b.AddASN1ObjectIdentifier(oidECDSAWithSHA1)
		case a.key == keyECDSA:
			b.AddASN1ObjectIdentifier(append(slices.Clone(oidECDSAWithSHA2), int(a.hash-HashSHA256)+2))
		case a.key == keyRSA && !a.pss:
			b.AddASN1ObjectIdentifier(rsaOID(a.hash))
			b.AddASN1NULL()
		default: // RSASSA-PSS (RFC 4055 §3.1)
			b.AddASN1ObjectIdentifier(oidRSASSAPSS)
			hash, _ := hashOID(a.hash)
			hashAlg := func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(hash)
					b.AddASN1NULL()
				})
			}
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), hashAlg)
				b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(oidMGF1)
						hashAlg(b)
					})
				})
				b.AddASN1(cbasn1.Tag(2).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1Int64(int64(a.saltLen))
				})
			})
		}
	})
	return b.BytesOrPanic()
}

// String names the algorithm for logs: "ECDSA-SHA256", "RSA-PSS-SHA384",
// "Ed25519".
func (a sigAlg) String() string {
	h := map[HashAlgorithm]string{HashSHA1: "SHA1", HashSHA256: "SHA256", HashSHA384: "SHA384", HashSHA512: "SHA512"}[a.hash]
	switch {
	case a.key == keyEd25519:
		return "Ed25519"
	case a.key == keyECDSA:
		return "ECDSA-" + h
	case a.pss:
		return "RSA-PSS-" + h
	}
	return "RSA-" + h
}

// parseSigAlg decodes a DER AlgorithmIdentifier of method 14. It knows
// the algorithms of RFC 7427 Appendix A (PKCS#1 v1.5 and ECDSA with SHA-1
// and SHA-2, RSASSA-PSS with SHA-2 hashes and MGF1) and Ed25519; anything
// else, or trailing data, is an error.
func parseSigAlg(der []byte) (sigAlg, error) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() || !seq.ReadASN1ObjectIdentifier(&oid) {
		return sigAlg{}, errors.New("not a DER AlgorithmIdentifier")
	}
	params := seq // what follows the OID
	noParams := params.Empty()
	nullParams := func() bool {
		p := params
		return p.Empty() || (p.SkipASN1(cbasn1.NULL) && p.Empty())
	}
	switch {
	case oid.Equal(oidEd25519):
		if noParams {
			return sigAlg{key: keyEd25519, hash: HashIdentity}, nil
		}
	case oid.Equal(oidECDSAWithSHA1):
		if noParams {
			return sigAlg{key: keyECDSA, hash: HashSHA1}, nil
		}
	case len(oid) == len(oidECDSAWithSHA2)+1 && oid[:len(oidECDSAWithSHA2)].Equal(oidECDSAWithSHA2):
		if n := oid[len(oid)-1]; noParams && n >= 2 && n <= 4 {
			return sigAlg{key: keyECDSA, hash: HashSHA256 + HashAlgorithm(n-2)}, nil
		}
	case oid.Equal(oidRSASSAPSS):
		return parsePSSParams(params)
	default:
		for _, h := range []HashAlgorithm{HashSHA1, HashSHA256, HashSHA384, HashSHA512} {
			if oid.Equal(rsaOID(h)) && nullParams() {
				return sigAlg{key: keyRSA, hash: h}, nil
			}
		}
	}
	return sigAlg{}, fmt.Errorf("unsupported signature algorithm %v", oid)
}

// parsePSSParams decodes RSASSA-PSS-params (RFC 4055 §3.1): the hash
// (default SHA-1), MGF1 with the same hash, the salt length (default 20)
// and the trailer field, which must be 1. Absent parameters are all
// defaults.
func parsePSSParams(params cryptobyte.String) (sigAlg, error) {
	a := sigAlg{key: keyRSA, pss: true, hash: HashSHA1, saltLen: 20}
	bad := errors.New("malformed RSASSA-PSS parameters")
	if params.Empty() {
		return a, nil
	}
	var seq cryptobyte.String
	if !params.ReadASN1(&seq, cbasn1.SEQUENCE) || !params.Empty() {
		return sigAlg{}, bad
	}
	readHashAlg := func(s *cryptobyte.String) (HashAlgorithm, bool) {
		var alg cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !s.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) {
			return 0, false
		}
		if !alg.Empty() && !(alg.SkipASN1(cbasn1.NULL) && alg.Empty()) {
			return 0, false
		}
		h := hashOfOID(oid)
		return h, h != 0
	}
	mgfHash := HashSHA1
	var f cryptobyte.String
	var present bool
	if !seq.ReadOptionalASN1(&f, &present, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return sigAlg{}, bad
	}
	if present {
		h, ok := readHashAlg(&f)
		if !ok || !f.Empty() {
			return sigAlg{}, bad
		}
		a.hash = h
	}
	if !seq.ReadOptionalASN1(&f, &present, cbasn1.Tag(1).Constructed().ContextSpecific()) {
		return sigAlg{}, bad
	}
	if present {
		var mgf cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !f.ReadASN1(&mgf, cbasn1.SEQUENCE) || !f.Empty() || !mgf.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(oidMGF1) {
			return sigAlg{}, bad
		}
		h, ok := readHashAlg(&mgf)
		if !ok || !mgf.Empty() {
			return sigAlg{}, bad
		}
		mgfHash = h
	}
	if !seq.ReadOptionalASN1(&f, &present, cbasn1.Tag(2).Constructed().ContextSpecific()) {
		return sigAlg{}, bad
	}
	if present {
		var n int64
		if !f.ReadASN1Int64WithTag(&n, cbasn1.INTEGER) || !f.Empty() || n < 0 || n > 512 {
			return sigAlg{}, bad
		}
		a.saltLen = int(n)
	}
	if !seq.ReadOptionalASN1(&f, &present, cbasn1.Tag(3).Constructed().ContextSpecific()) {
		return sigAlg{}, bad
	}
	if present {
		var n int64
		if !f.ReadASN1Int64WithTag(&n, cbasn1.INTEGER) || !f.Empty() || n != 1 {
			return sigAlg{}, bad
		}
	}
	if !seq.Empty() {
		return sigAlg{}, bad
	}
	if mgfHash != a.hash {
		return sigAlg{}, errors.New("RSASSA-PSS with an MGF1 hash other than the message hash")
	}
	return a, nil
}

// ParseDigitalSignature splits the Authentication Data of method 14 into
// the AlgorithmIdentifier and the Signature Value (RFC 7427 §3), and
// decodes the algorithm. It is what a fuzz target exercises.
func ParseDigitalSignature(data []byte) (algID, sig []byte, err error) {
	if len(data) < 1 {
		return nil, nil, errors.New("empty Authentication Data")
	}
	n := int(data[0])
	if n == 0 || len(data) < 1+n {
		return nil, nil, fmt.Errorf("ASN.1 length %d overruns %d octets of Authentication Data", n, len(data)-1)
	}
	if _, err := parseSigAlg(data[1 : 1+n]); err != nil {
		return nil, nil, err
	}
	return data[1 : 1+n], data[1+n:], nil
}

// signAuth signs octets with p.Key as the AUTH payload of our IKE_AUTH
// message. peerHashes is what the peer announced with
// SIGNATURE_HASH_ALGORITHMS (nil: nothing, so a legacy method).
func signAuth(p *PubKeyAuth, octets []byte, peerHashes []HashAlgorithm, rnd io.Reader) (*AuthPayload, error) {
	pub := p.Key.Public()
	if peerHashes == nil {
		return signLegacy(p, pub, octets, rnd)
	}
	a, err := chooseSigAlg(p, pub, peerHashes)
	if err != nil {
		return nil, err
	}
	sig, err := sign(p.Key, a, octets, rnd)
	if err != nil {
		return nil, err
	}
	algID := a.AlgorithmIdentifier()
	data := append([]byte{byte(len(algID))}, algID...)
	return &AuthPayload{Method: AuthDigitalSignature, Data: append(data, sig...)}, nil
}

// chooseSigAlg picks the method 14 algorithm for our key among the hashes
// the peer announced: the curve's own hash for ECDSA, else the first of
// SHA-256, SHA-384, SHA-512 (SHA-1 last, only if allowed); Identity for
// Ed25519.
func chooseSigAlg(p *PubKeyAuth, pub crypto.PublicKey, peerHashes []HashAlgorithm) (sigAlg, error) {
	kt := keyTypeOf(pub)
	if kt == keyEd25519 {
		if !slices.Contains(peerHashes, HashIdentity) {
			return sigAlg{}, fmt.Errorf("ikev2: the peer does not accept Ed25519 signatures (its SIGNATURE_HASH_ALGORITHMS lack IDENTITY, RFC 8420); use an ECDSA or RSA key")
		}
		return sigAlg{key: keyEd25519, hash: HashIdentity}, nil
	}
	prefs := []HashAlgorithm{HashSHA256, HashSHA384, HashSHA512}
	if k, ok := pub.(*ecdsa.PublicKey); ok {
		own := ecdsaHash(k.Curve)
		prefs = append([]HashAlgorithm{own}, slices.DeleteFunc(prefs, func(h HashAlgorithm) bool { return h == own })...)
	}
	if p.AllowSHA1 {
		prefs = append(prefs, HashSHA1)
	}
	for _, h := range prefs {
		if slices.Contains(peerHashes, h) {
			a := sigAlg{key: kt, hash: h, pss: kt == keyRSA && p.RSAPSS}
			if a.pss {
				a.saltLen = cryptoHash(h).Size()
			}
			return a, nil
		}
	}
	return sigAlg{}, fmt.Errorf("ikev2: no signature hash in common: the peer announced %v", peerHashes)
}

// signLegacy signs with the method of RFC 7296 or RFC 4754 that the key
// has, for a peer that did not announce RFC 7427.
func signLegacy(p *PubKeyAuth, pub crypto.PublicKey, octets []byte, rnd io.Reader) (*AuthPayload, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		h := ecdsaHash(k.Curve)
		der, err := sign(p.Key, sigAlg{key: keyECDSA, hash: h}, octets, rnd)
		if err != nil {
			return nil, err
		}
		raw, err := ecdsaDERToRaw(der, (k.Curve.Params().BitSize+7)/8)
		if err != nil {
			return nil, err
		}
		return &AuthPayload{Method: ecdsaMethod(k.Curve), Data: raw}, nil
	case *rsa.PublicKey:
		if !p.AllowSHA1 {
			return nil, errors.New("ikev2: the peer does not support RFC 7427 signatures, and RSA_SIG (method 1) is RSA with SHA-1; allow it with weak-algorithms, or use an ECDSA key")
		}
		sig, err := sign(p.Key, sigAlg{key: keyRSA, hash: HashSHA1}, octets, rnd)
		if err != nil {
			return nil, err
		}
		return &AuthPayload{Method: AuthRSASig, Data: sig}, nil
	}
	return nil, errors.New("ikev2: the peer does not support RFC 7427 signatures, the only way to authenticate with an Ed25519 key (RFC 8420)")
}

// sign signs octets with key as a says; ECDSA signatures are DER.
func sign(key crypto.Signer, a sigAlg, octets []byte, rnd io.Reader) ([]byte, error) {
	if a.key == keyEd25519 {
		return key.Sign(rnd, octets, crypto.Hash(0))
	}
	h := cryptoHash(a.hash)
	hh := h.New()
	hh.Write(octets)
	digest := hh.Sum(nil)
	var opts crypto.SignerOpts = h
	if a.pss {
		opts = &rsa.PSSOptions{SaltLength: a.saltLen, Hash: h}
	}
	sig, err := key.Sign(rnd, digest, opts)
	if err != nil {
		return nil, fmt.Errorf("ikev2: signing AUTH: %w", err)
	}
	return sig, nil
}

// verifyAuth verifies the peer's AUTH payload over octets with its public
// key pub. ourHashes are the hashes we announced (method 14 must use one
// of them); allowSHA1 permits RSA_SIG. The error says why, for logs.
func verifyAuth(p *PubKeyAuth, pub crypto.PublicKey, auth *AuthPayload, octets []byte) error {
	switch auth.Method {
	case AuthDigitalSignature:
		algID, sig, err := ParseDigitalSignature(auth.Data)
		if err != nil {
			return fmt.Errorf("its AUTH (DIGITAL_SIGNATURE): %v", err)
		}
		a, _ := parseSigAlg(algID)
		if !slices.Contains(p.ourHashes(), a.hash) {
			return fmt.Errorf("it signed with %s, a hash we did not announce (SHA-1 only with weak-algorithms)", a)
		}
		if a.key != keyTypeOf(pub) {
			return fmt.Errorf("it signed with %s, but its key is %s", a, KeyName(pub))
		}
		if a.pss && (a.saltLen < cryptoHash(a.hash).Size()/2) {
			return fmt.Errorf("it signed with %s with a salt of %d octets, too short", a, a.saltLen)
		}
		if !verifySig(pub, a, octets, sig, false) {
			return fmt.Errorf("its %s signature does not verify with its key (%s)", a, KeyName(pub))
		}
		return nil
	case AuthECDSASHA256P256, AuthECDSASHA384P384, AuthECDSASHA512P521:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || ecdsaMethod(k.Curve) != auth.Method {
			return fmt.Errorf("it used %v, but its key is %s", auth.Method, KeyName(pub))
		}
		if !verifySig(pub, sigAlg{key: keyECDSA, hash: ecdsaHash(k.Curve)}, octets, auth.Data, true) {
			return fmt.Errorf("its %v signature does not verify with its key", auth.Method)
		}
		return nil
	case AuthRSASig:
		if _, ok := pub.(*rsa.PublicKey); !ok {
			return fmt.Errorf("it used RSA_SIG, but its key is %s", KeyName(pub))
		}
		if !p.AllowSHA1 {
			return errors.New("it used RSA_SIG, RSA with SHA-1, which is weak (allow it with weak-algorithms)")
		}
		if !verifySig(pub, sigAlg{key: keyRSA, hash: HashSHA1}, octets, auth.Data, false) {
			return errors.New("its RSA_SIG signature does not verify with its key")
		}
		return nil
	case AuthSharedKeyMIC:
		return errors.New("it authenticated with a pre-shared key, but we expect a signature (check auth on both sides)")
	}
	return fmt.Errorf("it used auth method %v, which we do not support", auth.Method)
}

// verifySig verifies one signature; raw says an ECDSA signature is r | s
// of fixed length (RFC 4754 §7) instead of DER.
func verifySig(pub crypto.PublicKey, a sigAlg, octets, sig []byte, raw bool) bool {
	if a.key == keyEd25519 {
		k, ok := pub.(ed25519.PublicKey)
		return ok && ed25519.Verify(k, octets, sig)
	}
	h := cryptoHash(a.hash)
	hh := h.New()
	hh.Write(octets)
	digest := hh.Sum(nil)
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if raw {
			n := (k.Curve.Params().BitSize + 7) / 8
			if len(sig) != 2*n {
				return false
			}
			r, s := new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
			return ecdsa.Verify(k, digest, r, s)
		}
		return ecdsa.VerifyASN1(k, digest, sig)
	case *rsa.PublicKey:
		if a.pss {
			return rsa.VerifyPSS(k, h, digest, sig, &rsa.PSSOptions{SaltLength: a.saltLen, Hash: h}) == nil
		}
		return rsa.VerifyPKCS1v15(k, h, digest, sig) == nil
	}
	return false
}

// ecdsaDERToRaw turns a DER ECDSA-Sig-Value into r | s, each n octets
// (RFC 4754 §7).
func ecdsaDERToRaw(der []byte, n int) ([]byte, error) {
	var r, s big.Int
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1Integer(&r) || !seq.ReadASN1Integer(&s) || !seq.Empty() ||
		r.Sign() <= 0 || s.Sign() <= 0 || len(r.Bytes()) > n || len(s.Bytes()) > n {
		return nil, errors.New("ikev2: malformed ECDSA signature")
	}
	out := make([]byte, 2*n)
	r.FillBytes(out[:n])
	s.FillBytes(out[n:])
	return out, nil
}
