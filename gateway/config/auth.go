package config

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/greipsec/greipsec/ikev2"
)

// Authentication of a [tunnel.ike], as swanctl.conf and iked.conf write it:
//
//	auth        = "psk" | "pubkey"   default: psk if a psk key is set, pubkey if private-key is
//	psk, psk-file, psk-env           the pre-shared key (ike.go)
//	private-key = "local.key"        our key, PEM: PKCS#8, SEC1 (EC) or PKCS#1 (RSA); iked's private/local.key
//	public-key  = "local.pub"        optional: our public key (iked's local.pub), checked against private-key
//	certs       = ["gw-a.pem", ...]  our certificate, then intermediates (PEM or DER), as swanctl's certs
//	peer-pubkey = "gw-b.pub"         the peer's raw public key (PEM or DER SubjectPublicKeyInfo, or PEM PKCS#1 RSA)
//	pubkey-dir  = "/etc/iked/pubkeys" the peer's raw key found as iked does: DIR/fqdn/NAME, DIR/ipv4/A.B.C.D,
//	                                 DIR/ipv6/ADDR, DIR/ufqdn/USER@DOMAIN, by peer-id
//	cacerts     = ["ca.pem", ...]    CA certificates the peer's certificate must chain to
//	crls        = ["ca.crl", ...]    certificate revocation lists (PEM or DER)
//	rsa-pss     = false              sign with RSASSA-PSS instead of PKCS#1 v1.5 (RSA keys)
//
// Relative paths are relative to the configuration file, as psk-file.

// pubKeyKeys are the keys of public-key authentication.
var pubKeyKeys = []string{"private-key", "public-key", "certs", "peer-pubkey", "pubkey-dir", "cacerts", "crls", "rsa-pss"}

// maxKeyFile bounds every key, certificate and CRL file read.
const maxKeyFile = 1 << 20

// readAuth reads auth and the keys of the method it names into c.
func (p *parser) readAuth(k *table, c *ikev2.Config, weak bool) {
	method, ok := k.str("auth")
	hasPSK := false
	for _, key := range pskKeys {
		hasPSK = hasPSK || k.has(key)
	}
	// Every key of either method is read here, even after a mistake ends
	// the reading early: none is then reported as unknown.
	for _, key := range pubKeyKeys {
		k.has(key)
	}
	if !ok {
		if k.has("auth") {
			return
		}
		method = "psk"
		if !hasPSK && k.has("private-key") {
			method = "pubkey"
		}
	}
	switch method {
	case "psk":
		for _, key := range pubKeyKeys {
			if k.has(key) {
				k.errorf(key, `only used with auth = "pubkey" (public-key authentication); this tunnel uses a pre-shared key`)
				return
			}
		}
		c.PSK = p.readPSK(k)
	case "pubkey":
		for _, key := range pskKeys {
			if k.has(key) {
				k.errorf(key, `a pre-shared key is not used with auth = "pubkey"; remove %s, or set auth = "psk"`, key)
				return
			}
		}
		c.PubKey = p.readPubKey(k, c, weak)
	default:
		k.errorf("auth", `unknown method %q (expected "psk", a pre-shared key, or "pubkey", a private key with a raw public key or certificates)`, method)
	}
}

// readPubKey reads the keys of auth = "pubkey". It returns nil after a
// mistake (reported).
func (p *parser) readPubKey(k *table, c *ikev2.Config, weak bool) *ikev2.PubKeyAuth {
	nerr := len(p.errs)
	pk := &ikev2.PubKeyAuth{AllowSHA1: weak}
	if b, ok := k.boolean("rsa-pss"); ok {
		pk.RSAPSS = b
	}
	if k.require("private-key", `our private key: a PEM file such as iked's /etc/iked/private/local.key; make one with "greipsec keygen --pubkey ecdsa-p256 --out DIR"`) {
		if name, ok := p.path(k, "private-key"); ok {
			key, err := loadPrivateKey(name)
			if err != nil {
				k.errorf("private-key", "%v", err)
			} else if _, isRSA := key.(*rsa.PrivateKey); pk.RSAPSS && !isRSA {
				k.errorf("rsa-pss", "only for an RSA private key; private-key is %s", ikev2.KeyName(key.Public()))
			} else {
				pk.Key = key
			}
		}
	}
	if name, ok := p.path(k, "public-key"); ok {
		pub, err := loadPublicKey(name)
		switch {
		case err != nil:
			k.errorf("public-key", "%v", err)
		case pk.Key != nil && !sameKey(pub, pk.Key.Public()):
			k.errorf("public-key", "%s is not the public half of private-key (%s); leave public-key out, or name the matching files", name, ikev2.KeyName(pk.Key.Public()))
		}
	}
	if names, ok := p.paths(k, "certs"); ok {
		for i, name := range names {
			certs, err := loadCerts(name)
			if err != nil {
				k.elemErrorf("certs", i, "%v", err)
				continue
			}
			pk.Certs = append(pk.Certs, certs...)
		}
		if len(pk.Certs) > 0 && pk.Key != nil && !sameKey(pk.Certs[0].PublicKey, pk.Key.Public()) {
			k.elemErrorf("certs", 0, "the certificate %q is not for private-key (%s); certs starts with our own certificate, then its intermediates",
				pk.Certs[0].Subject, ikev2.KeyName(pk.Key.Public()))
		}
		if len(pk.Certs) > 0 && len(p.errs) == nerr {
			if err := certNamesID(pk.Certs[0], c.LocalID); err != nil {
				k.errorf("certs", "%v; set local-id to a name of the certificate", err)
			}
		}
	}
	p.readPeerAuth(k, c, pk)
	if len(p.errs) != nerr {
		return nil
	}
	return pk
}

// readPeerAuth reads how the peer is authenticated: its raw key
// (peer-pubkey or pubkey-dir) or the CAs of its certificate.
func (p *parser) readPeerAuth(k *table, c *ikev2.Config, pk *ikev2.PubKeyAuth) {
	var set []string
	for _, key := range []string{"peer-pubkey", "pubkey-dir", "cacerts"} {
		if k.has(key) {
			set = append(set, key)
		}
	}
	slices.SortStableFunc(set, func(a, b string) int { return k.line(a) - k.line(b) })
	switch len(set) {
	case 0:
		k.errorf("private-key", "the peer cannot be checked: set peer-pubkey (its public key), pubkey-dir (iked's pubkeys directory) or cacerts (the CA of its certificate)")
		return
	case 1:
	default:
		k.errorf(set[1], "%s is set too; the peer is checked by one of peer-pubkey, pubkey-dir and cacerts", set[0])
		return
	}
	switch set[0] {
	case "peer-pubkey":
		if name, ok := p.path(k, "peer-pubkey"); ok {
			pub, err := loadPublicKey(name)
			if err != nil {
				k.errorf("peer-pubkey", "%v", err)
				return
			}
			pk.PeerKey = pub
		}
	case "pubkey-dir":
		dir, ok := p.path(k, "pubkey-dir")
		if !ok {
			return
		}
		rel, err := PubKeyPath(c.PeerID)
		if err != nil {
			k.errorf("pubkey-dir", "%v", err)
			return
		}
		pub, err := loadPublicKey(filepath.Join(dir, rel))
		if err != nil {
			k.errorf("pubkey-dir", "the peer's key for peer-id %v: %v", c.PeerID, err)
			return
		}
		pk.PeerKey = pub
	case "cacerts":
		names, ok := p.paths(k, "cacerts")
		if !ok {
			return
		}
		for i, name := range names {
			certs, err := loadCerts(name)
			if err != nil {
				k.elemErrorf("cacerts", i, "%v", err)
				continue
			}
			for _, c := range certs {
				if !c.IsCA {
					k.elemErrorf("cacerts", i, "%q is not a CA certificate (no basicConstraints CA:TRUE)", c.Subject)
				}
			}
			pk.CACerts = append(pk.CACerts, certs...)
		}
		if c.PeerID.IDType == ikev2.IDKeyID {
			k.errorf("cacerts", "a peer-id of type keyid cannot be checked against a certificate; use the peer's FQDN, address, e-mail or DN")
		}
	}
	if pk.PeerKey != nil && k.has("crls") {
		k.errorf("crls", "only used with cacerts; a raw peer key (%s) has no certificate to revoke", set[0])
		return
	}
	if names, ok := p.paths(k, "crls"); ok {
		for i, name := range names {
			crls, err := loadCRLs(name)
			if err != nil {
				k.elemErrorf("crls", i, "%v", err)
				continue
			}
			pk.CRLs = append(pk.CRLs, crls...)
		}
	}
}

// PubKeyPath returns the path of a peer's raw public key under iked's
// pubkeys directory, as OpenIKED looks it up (ca.c, ca_validate_pubkey):
// fqdn/NAME, ipv4/A.B.C.D, ipv6/ADDR, ufqdn/USER@DOMAIN.
func PubKeyPath(id ikev2.Identity) (string, error) {
	var dir string
	switch id.IDType {
	case ikev2.IDFQDN:
		dir = "fqdn"
	case ikev2.IDRFC822Addr:
		dir = "ufqdn"
	case ikev2.IDIPv4Addr:
		dir = "ipv4"
	case ikev2.IDIPv6Addr:
		dir = "ipv6"
	default:
		return "", fmt.Errorf("peer-id %v: iked's pubkeys directory has keys only for FQDN, user FQDN (e-mail) and IPv4/IPv6 IDs; use peer-pubkey", id)
	}
	name := id.String()
	if a, ok := id.Addr(); ok {
		name = a.String()
	}
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." || strings.HasPrefix(name, `"`) {
		return "", fmt.Errorf("peer-id %v cannot be a file name", id)
	}
	return filepath.Join(dir, name), nil
}

// path reads a file name key, relative to the configuration file.
func (p *parser) path(k *table, key string) (string, bool) {
	name, ok := k.str(key)
	if !ok {
		return "", false
	}
	if name == "" {
		k.errorf(key, "must not be empty (a file name)")
		return "", false
	}
	return p.abs(name), true
}

// paths reads an array of file names.
func (p *parser) paths(k *table, key string) ([]string, bool) {
	list, ok := k.strings(key)
	if !ok {
		return nil, false
	}
	if len(list) == 0 {
		k.errorf(key, "must not be empty; name at least one file, or leave %s out", key)
		return nil, false
	}
	for i, name := range list {
		if name == "" {
			k.elemErrorf(key, i, "must not be empty (a file name)")
			return nil, false
		}
		list[i] = p.abs(name)
	}
	return list, true
}

func (p *parser) abs(name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(filepath.Dir(p.file), name)
}

// readPEMOrDER reads a key, certificate or CRL file: its PEM blocks, or
// the whole file as one DER object when it holds no PEM.
func readPEMOrDER(name string) ([]*pem.Block, []byte, error) {
	data, err := readSmallFile(name, maxKeyFile)
	if err != nil {
		return nil, nil, err
	}
	var blocks []*pem.Block
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	if len(blocks) == 0 {
		if len(data) > 0 && data[0] == 0x30 {
			return nil, data, nil
		}
		return nil, nil, fmt.Errorf("%s: neither PEM nor DER", name)
	}
	return blocks, nil, nil
}

// loadPrivateKey reads a private key in PEM: "PRIVATE KEY" (PKCS#8), "EC
// PRIVATE KEY" (SEC1, what openssl ecparam -genkey and iked write) or "RSA
// PRIVATE KEY" (PKCS#1, openssl genrsa); or DER (strongSwan's pki).
func loadPrivateKey(name string) (crypto.Signer, error) {
	blocks, der, err := readPEMOrDER(name)
	if err != nil {
		return nil, err
	}
	var key any
	if der != nil {
		key, err = parseAnyPrivateKey(der)
	} else {
		var b *pem.Block
		for _, x := range blocks {
			if strings.HasSuffix(x.Type, "PRIVATE KEY") {
				b = x
				break
			}
		}
		switch {
		case b == nil:
			return nil, fmt.Errorf("%s: no PEM PRIVATE KEY block", name)
		case b.Headers["Proc-Type"] != "" || b.Type == "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("%s: the private key is encrypted; greipsec needs it unencrypted (as iked does): openssl pkey -in %s -out NEW", name, name)
		case b.Type == "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case b.Type == "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case b.Type == "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		default:
			return nil, fmt.Errorf("%s: PEM block %q is not a private key (expected PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)", name, b.Type)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	switch key := key.(type) {
	case *ecdsa.PrivateKey:
		return key, checkKey(name, key.Public())
	case *rsa.PrivateKey:
		return key, checkKey(name, key.Public())
	case ed25519.PrivateKey:
		return key, nil
	}
	return nil, fmt.Errorf("%s: a %T key; want ECDSA (P-256, P-384, P-521), RSA or Ed25519", name, key)
}

func parseAnyPrivateKey(der []byte) (any, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("not a DER private key (PKCS#8, SEC1 or PKCS#1)")
}

// checkKey checks a key the way ikev2 will: supported curve, RSA size.
func checkKey(name string, pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve.Params().Name {
		case "P-256", "P-384", "P-521":
			return nil
		}
		return fmt.Errorf("%s: ECDSA curve %s; want P-256, P-384 or P-521", name, k.Curve.Params().Name)
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > 8192 {
			return fmt.Errorf("%s: RSA key of %d bits; want 2048 to 8192", name, n)
		}
	}
	return nil
}

// loadPublicKey reads a public key: PEM "PUBLIC KEY" (SubjectPublicKeyInfo,
// iked's local.pub and pubkeys files) or "RSA PUBLIC KEY" (PKCS#1, which
// iked also reads), or DER SubjectPublicKeyInfo (strongSwan's pki --pub).
func loadPublicKey(name string) (crypto.PublicKey, error) {
	blocks, der, err := readPEMOrDER(name)
	if err != nil {
		return nil, err
	}
	var key any
	switch {
	case der != nil:
		key, err = x509.ParsePKIXPublicKey(der)
	case blocks[0].Type == "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(blocks[0].Bytes)
	case blocks[0].Type == "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(blocks[0].Bytes)
	case strings.HasSuffix(blocks[0].Type, "PRIVATE KEY"):
		return nil, fmt.Errorf("%s holds a private key; name the public key (PEM PUBLIC KEY) here", name)
	default:
		return nil, fmt.Errorf("%s: PEM block %q is not a public key (expected PUBLIC KEY or RSA PUBLIC KEY)", name, blocks[0].Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	switch key.(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey, ed25519.PublicKey:
		return key, checkKey(name, key)
	}
	return nil, fmt.Errorf("%s: a %T key; want ECDSA, RSA or Ed25519", name, key)
}

// loadCerts reads the certificates of a PEM file (one or more) or a DER
// file (one).
func loadCerts(name string) ([]*x509.Certificate, error) {
	blocks, der, err := readPEMOrDER(name)
	if err != nil {
		return nil, err
	}
	if der != nil {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		return []*x509.Certificate{c}, nil
	}
	var certs []*x509.Certificate
	for _, b := range blocks {
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no PEM CERTIFICATE block", name)
	}
	return certs, nil
}

// loadCRLs reads the revocation lists of a PEM ("X509 CRL") or DER file.
func loadCRLs(name string) ([]*x509.RevocationList, error) {
	blocks, der, err := readPEMOrDER(name)
	if err != nil {
		return nil, err
	}
	ders := [][]byte{der}
	if der == nil {
		ders = nil
		for _, b := range blocks {
			if b.Type == "X509 CRL" {
				ders = append(ders, b.Bytes)
			}
		}
	}
	if len(ders) == 0 {
		return nil, fmt.Errorf("%s: no PEM X509 CRL block", name)
	}
	var out []*x509.RevocationList
	for _, d := range ders {
		l, err := x509.ParseRevocationList(d)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		out = append(out, l)
	}
	return out, nil
}

func sameKey(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// certNamesID checks that our certificate names our local ID, as the peer
// will check.
func certNamesID(c *x509.Certificate, id ikev2.Identity) error {
	switch id.IDType {
	case ikev2.IDIPv4Addr, ikev2.IDIPv6Addr:
		a, _ := id.Addr()
		for _, ip := range c.IPAddresses {
			if ip.Equal(a.AsSlice()) {
				return nil
			}
		}
	case ikev2.IDFQDN:
		for _, n := range c.DNSNames {
			if strings.EqualFold(n, string(id.Data)) {
				return nil
			}
		}
	case ikev2.IDRFC822Addr:
		for _, n := range c.EmailAddresses {
			if strings.EqualFold(n, string(id.Data)) {
				return nil
			}
		}
	case ikev2.IDDERASN1DN:
		if sameName(c.RawSubject, id.Data) {
			return nil
		}
		return fmt.Errorf("the certificate's subject %q is not local-id %v", c.Subject, id)
	default:
		return fmt.Errorf("local-id %v cannot be named by a certificate", id)
	}
	return fmt.Errorf("the certificate %q has no subjectAltName for local-id %v (it has DNS %v, IP %v, e-mail %v)",
		c.Subject, id, c.DNSNames, c.IPAddresses, c.EmailAddresses)
}

// sameName reports whether two DER Names have the same attributes.
func sameName(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var ra, rb pkix.RDNSequence
	if _, err := asn1.Unmarshal(a, &ra); err != nil {
		return false
	}
	if _, err := asn1.Unmarshal(b, &rb); err != nil {
		return false
	}
	return fmt.Sprint(ra) == fmt.Sprint(rb)
}

// dnAttributes are the attribute names a DN identity may use, as
// strongSwan and OpenSSL spell them.
var dnAttributes = map[string]asn1.ObjectIdentifier{
	"c": {2, 5, 4, 6}, "st": {2, 5, 4, 8}, "l": {2, 5, 4, 7}, "o": {2, 5, 4, 10}, "ou": {2, 5, 4, 11},
	"cn": {2, 5, 4, 3}, "sn": {2, 5, 4, 4}, "serialnumber": {2, 5, 4, 5}, "t": {2, 5, 4, 12}, "title": {2, 5, 4, 12},
	"street": {2, 5, 4, 9}, "postalcode": {2, 5, 4, 17}, "dc": {0, 9, 2342, 19200300, 100, 1, 25},
	"uid": {0, 9, 2342, 19200300, 100, 1, 1}, "e": {1, 2, 840, 113549, 1, 9, 1}, "emailaddress": {1, 2, 840, 113549, 1, 9, 1},
}

// parseDN parses a distinguished name as strongSwan writes it ("C=CH,
// O=Example, CN=gw-a") or as OpenSSL and iked.conf do
// ("/C=CH/O=Example/CN=gw-a"), and returns its DER encoding, one attribute
// per RDN in the order written. A backslash escapes the next character.
func parseDN(s string) ([]byte, error) {
	sep := ','
	body := s
	if strings.HasPrefix(s, "/") {
		sep, body = '/', s[1:]
	}
	var parts []string
	var cur strings.Builder
	esc := false
	for _, r := range body {
		switch {
		case esc:
			cur.WriteRune(r)
			esc = false
		case r == '\\':
			esc = true
		case r == sep:
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	if esc {
		return nil, fmt.Errorf("%q: a backslash at the end", s)
	}
	parts = append(parts, cur.String())
	var rdns pkix.RDNSequence
	for _, part := range parts {
		typ, val, ok := strings.Cut(part, "=")
		typ, val = strings.TrimSpace(typ), strings.TrimSpace(val)
		if !ok || typ == "" || val == "" {
			return nil, fmt.Errorf("%q: %q is not TYPE=value", s, strings.TrimSpace(part))
		}
		oid, known := dnAttributes[strings.ToLower(typ)]
		if !known {
			return nil, fmt.Errorf("%q: unknown attribute %q (expected C, ST, L, O, OU, CN, SN, serialNumber, T, street, postalCode, DC, UID or E)", s, typ)
		}
		rdns = append(rdns, pkix.RelativeDistinguishedNameSET{{Type: oid, Value: val}})
	}
	der, err := asn1.Marshal(rdns)
	if err != nil {
		return nil, fmt.Errorf("%q: %v", s, err)
	}
	if len(der) > 1024 {
		return nil, fmt.Errorf("%q: longer than 1024 octets encoded", s)
	}
	return der, nil
}

// DescribeAuth says how a tunnel keyed by IKE authenticates, for greipsec
// check: "pre-shared key", or e.g. "ECDSA P-256 raw key as gw-a.example.org;
// peer gw-b.example.org: raw key ECDSA P-256".
func DescribeAuth(c *ikev2.Config) string {
	p := c.PubKey
	if p == nil {
		return "pre-shared key"
	}
	local := ikev2.KeyName(p.Key.Public()) + " raw key"
	if len(p.Certs) > 0 {
		local = fmt.Sprintf("%s certificate %q", ikev2.KeyName(p.Key.Public()), p.Certs[0].Subject.String())
		if n := len(p.Certs) - 1; n > 0 {
			local += fmt.Sprintf(" (+%d intermediate)", n)
		}
	}
	peer := "raw key " + ikev2.KeyName(p.PeerKey)
	if p.PeerKey == nil {
		peer = fmt.Sprintf("certificate from %d CA", len(p.CACerts))
		if len(p.CRLs) > 0 {
			peer += fmt.Sprintf(", %d CRL", len(p.CRLs))
		}
	}
	return fmt.Sprintf("%s as %v; peer %v: %s", local, c.LocalID, c.PeerID, peer)
}
