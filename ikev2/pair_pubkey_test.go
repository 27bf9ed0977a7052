package ikev2

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// Test PKI: a CA, intermediates and end entities made with crypto/x509,
// valid around epoch (the pair's virtual clock).

type certOpts struct {
	cn       string
	dns      []string
	ips      []net.IP
	emails   []string
	ca       bool
	usage    x509.KeyUsage
	from, to time.Time
	serial   int64
}

// makeCert issues a certificate for key, signed by parent/parentKey, or
// self-signed when parent is nil.
func makeCert(t testing.TB, key crypto.Signer, parent *x509.Certificate, parentKey crypto.Signer, o certOpts) *x509.Certificate {
	t.Helper()
	if o.from.IsZero() {
		o.from, o.to = epoch.Add(-24*time.Hour), epoch.Add(365*24*time.Hour)
	}
	if o.serial == 0 {
		o.serial = time.Now().UnixNano()
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(o.serial),
		Subject:      pkix.Name{CommonName: o.cn, Organization: []string{"greipsec test"}},
		NotBefore:    o.from, NotAfter: o.to,
		DNSNames: o.dns, IPAddresses: o.ips, EmailAddresses: o.emails,
		KeyUsage:              o.usage,
		BasicConstraintsValid: true,
		IsCA:                  o.ca,
	}
	if o.ca && o.usage == 0 {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testPKI is a CA with an end-entity certificate for each of two gateways.
type testPKI struct {
	ca    *x509.Certificate
	caKey crypto.Signer
}

func newTestPKI(t testing.TB, keyName string) *testPKI {
	k := testKey(t, keyName)
	return &testPKI{ca: makeCert(t, k, nil, nil, certOpts{cn: "greipsec test CA " + keyName, ca: true}), caKey: k}
}

func (p *testPKI) issue(t testing.TB, key crypto.Signer, o certOpts) *x509.Certificate {
	return makeCert(t, key, p.ca, p.caKey, o)
}

// pubKeyConfigs returns gwConfigs with public-key authentication: A with
// key ka, B with key kb; raw keys (each knows the other's) unless pki is
// set, then certificates naming the FQDNs a.example.org and b.example.org.
func pubKeyConfigs(t testing.TB, ka, kb crypto.Signer, pki *testPKI) (*Config, *Config) {
	ca, cb := gwConfigs(ModeTransport)
	ca.PSK, cb.PSK = nil, nil
	ca.LocalID, cb.PeerID = IdentityFQDN("a.example.org"), IdentityFQDN("a.example.org")
	cb.LocalID, ca.PeerID = IdentityFQDN("b.example.org"), IdentityFQDN("b.example.org")
	if pki == nil {
		ca.PubKey = &PubKeyAuth{Key: ka, PeerKey: kb.Public()}
		cb.PubKey = &PubKeyAuth{Key: kb, PeerKey: ka.Public()}
		return ca, cb
	}
	certA := pki.issue(t, ka, certOpts{cn: "a", dns: []string{"a.example.org"}, usage: x509.KeyUsageDigitalSignature})
	certB := pki.issue(t, kb, certOpts{cn: "b", dns: []string{"b.example.org"}})
	ca.PubKey = &PubKeyAuth{Key: ka, Certs: []*x509.Certificate{certA}, CACerts: []*x509.Certificate{pki.ca}}
	cb.PubKey = &PubKeyAuth{Key: kb, Certs: []*x509.Certificate{certB}, CACerts: []*x509.Certificate{pki.ca}}
	return ca, cb
}

// TestPairPubKeyMatrix: every authentication method with every key type
// brings a pair up, both ways: raw public keys (OpenIKED's and
// strongSwan's pubkeys) and X.509 certificates from a CA, with ECDSA
// P-256, P-384, P-521, RSA with PKCS#1 v1.5 and with PSS, and Ed25519 (the
// PSK rows are TestPairModes and TestPairTransforms). Each side checks
// the other's signature, and the certificates travel in CERT payloads
// only with certificates.
func TestPairPubKeyMatrix(t *testing.T) {
	keys := []struct {
		name   string
		a, b   string
		rsaPSS bool
	}{
		{"ecdsa-p256", "p256", "p256b", false},
		{"ecdsa-p384", "p384", "p384b", false},
		{"ecdsa-p521", "p521", "p521b", false},
		{"rsa-pkcs1", "rsa", "rsa2", false},
		{"rsa-pss", "rsa", "rsa2", true},
		{"ed25519", "ed", "ed2", false},
	}
	for _, method := range []string{"raw", "cert"} {
		for _, k := range keys {
			t.Run(method+"/"+k.name, func(t *testing.T) {
				var pki *testPKI
				if method == "cert" {
					pki = newTestPKI(t, "p256")
				}
				ca, cb := pubKeyConfigs(t, testKey(t, k.a), testKey(t, k.b), pki)
				ca.PubKey.RSAPSS, cb.PubKey.RSAPSS = k.rsaPSS, k.rsaPSS
				p := newPair(t, ca, cb)
				p.start()
				if !p.run(time.Minute, p.bothUp) {
					t.Fatalf("no tunnel: A %v; B %v", p.evA, p.evB)
				}
				p.checkChildPair()
				certs, auths := 0, 0
				for _, d := range append(append([]Datagram(nil), p.sentA...), p.sentB...) {
					for _, pl := range decryptAll(t, p, d) {
						switch pl := pl.(type) {
						case *CertPayload:
							certs++
						case *AuthPayload:
							auths++
							if pl.Method != AuthDigitalSignature {
								t.Errorf("AUTH method %v, want DIGITAL_SIGNATURE", pl.Method)
							}
						}
					}
				}
				if auths != 2 || (certs != 0) != (method == "cert") {
					t.Errorf("%d AUTH and %d CERT payloads", auths, certs)
				}
			})
		}
	}
}

// decryptAll returns the payloads of d, as the side that receives it sees
// them: IKE_SA_INIT in the clear, SK payloads decrypted with the current
// IKE SA's keys (fragments are skipped).
func decryptAll(t testing.TB, p *pair, d Datagram) []Payload {
	m, err := ParseMessage(append([]byte(nil), d.Data...))
	if err != nil {
		t.Fatal(err)
	}
	if m.Exchange == ExchangeIKESAInit {
		return m.Payloads
	}
	if _, ok := m.Payloads[0].(*EncryptedPayload); !ok {
		return nil
	}
	recv := p.b
	if d.Local.Addr() == addrB {
		recv = p.a
	}
	for _, sa := range []*ikeSA{recv.sa, recv.old} {
		if sa == nil || sa.in == nil || sa.spii != m.SPIi {
			continue
		}
		buf := append([]byte(nil), d.Data...)
		m2, _ := ParseMessage(buf)
		sk := m2.Payloads[0].(*EncryptedPayload)
		plain, err := sa.in.Open(buf, len(buf)-len(sk.Data))
		if err != nil {
			return nil
		}
		pls, err := ParsePayloadChain(sk.NextPayload, plain)
		if err != nil {
			t.Fatal(err)
		}
		return pls
	}
	return nil
}

// TestPairCertIDs: the peer's ID is checked against its certificate: a
// subjectAltName IP address for an IPv4 ID, an e-mail address for an
// RFC822 ID, the subject for a DN ID (encoded by the configuration
// differently from the certificate), and an intermediate CA sent along.
func TestPairCertIDs(t *testing.T) {
	pki := newTestPKI(t, "p384")
	interKey := testKey(t, "p256b")
	inter := pki.issue(t, interKey, certOpts{cn: "intermediate", ca: true})
	ka, kb := testKey(t, "p256"), testKey(t, "ed")
	certA := makeCert(t, ka, inter, interKey, certOpts{cn: "gw-a", ips: []net.IP{addrA.AsSlice()}, emails: []string{"gw-a@example.org"}})
	certB := pki.issue(t, kb, certOpts{cn: "gw-b.example.org"})
	dnB := Identity{IDType: IDDERASN1DN, Data: mustDN(t, "greipsec test", "gw-b.example.org")}
	for _, idA := range []Identity{IdentityAddr(addrA), IdentityRFC822("gw-a@example.org")} {
		ca, cb := gwConfigs(ModeTransport)
		ca.PSK, cb.PSK = nil, nil
		ca.LocalID, cb.PeerID = idA, idA
		cb.LocalID, ca.PeerID = dnB, dnB
		ca.PubKey = &PubKeyAuth{Key: ka, Certs: []*x509.Certificate{certA, inter}, CACerts: []*x509.Certificate{pki.ca}}
		cb.PubKey = &PubKeyAuth{Key: kb, Certs: []*x509.Certificate{certB}, CACerts: []*x509.Certificate{pki.ca}}
		p := newPair(t, ca, cb)
		p.start()
		if !p.run(time.Minute, p.bothUp) {
			t.Fatalf("%v: no tunnel: A %v; B %v", idA, p.evA, p.evB)
		}
	}
}

// mustDN returns the DER Name O=org, CN=cn with UTF8String values, where
// crypto/x509 writes PrintableString: the same DN, other octets.
func mustDN(t testing.TB, org, cn string) []byte {
	t.Helper()
	name := pkix.RDNSequence{
		{{Type: []int{2, 5, 4, 10}, Value: org}},
		{{Type: []int{2, 5, 4, 3}, Value: cn}},
	}
	for _, rdn := range name {
		for i := range rdn {
			fb, err := asn1.MarshalWithParams(rdn[i].Value, "utf8")
			if err != nil {
				t.Fatal(err)
			}
			rdn[i].Value = asn1.RawValue{FullBytes: fb}
		}
	}
	der, err := asn1.Marshal(name)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestRawKeyCert: with a raw peer key configured, a raw key the peer
// sends in CERT (OpenIKED answers a CERTREQ of its type so) must be that
// key, in each of its encodings; X.509 certificates are ignored.
func TestRawKeyCert(t *testing.T) {
	kb, mallory := testKey(t, "p256"), testKey(t, "p256b")
	p := &PubKeyAuth{Key: testKey(t, "ed"), PeerKey: kb.Public()}
	spki := func(k crypto.Signer) []byte { der, _ := x509.MarshalPKIXPublicKey(k.Public()); return der }
	id := IdentityFQDN("b.example.org")
	for _, enc := range []CertEncoding{CertRawPublicKey, CertIKEDECDSA} {
		if k, err := peerPublicKey(p, id, []*CertPayload{{Encoding: enc, Data: spki(kb)}}, epoch); err != nil || !publicKeysEqual(k, kb.Public()) {
			t.Errorf("%v: %v", enc, err)
		}
		if _, err := peerPublicKey(p, id, []*CertPayload{{Encoding: enc, Data: spki(mallory)}}, epoch); err == nil || !strings.Contains(err.Error(), "not the configured peer key") {
			t.Errorf("%v: Mallory's key: %v", enc, err)
		}
	}
	rsaKey := testKey(t, "rsa")
	pr := &PubKeyAuth{Key: kb, PeerKey: rsaKey.Public()}
	der := x509.MarshalPKCS1PublicKey(rsaKey.Public().(*rsa.PublicKey))
	if _, err := peerPublicKey(pr, id, []*CertPayload{{Encoding: CertRawRSAKey, Data: der}}, epoch); err != nil {
		t.Errorf("RAW_RSA_KEY: %v", err)
	}
	if _, err := peerPublicKey(pr, id, []*CertPayload{{Encoding: CertRawRSAKey, Data: der[:len(der)-1]}}, epoch); err == nil {
		t.Error("a truncated RAW_RSA_KEY accepted")
	}
	// What we answer to a CERTREQ of each raw type.
	for _, tt := range []struct {
		key  crypto.Signer
		req  CertEncoding
		want CertEncoding
	}{
		{kb, CertIKEDECDSA, CertIKEDECDSA}, {kb, CertRawPublicKey, CertRawPublicKey}, {kb, CertRawRSAKey, 0},
		{rsaKey, CertRawRSAKey, CertRawRSAKey}, {rsaKey, CertIKEDECDSA, 0}, {kb, CertX509Signature, 0},
	} {
		var r peerCertReq
		r.note(&CertReqPayload{Encoding: tt.req})
		got := certPayloads(&PubKeyAuth{Key: tt.key}, r)
		if (len(got) == 1) != (tt.want != 0) || len(got) == 1 && got[0].(*CertPayload).Encoding != tt.want {
			t.Errorf("%s, CERTREQ %v: %v", KeyName(tt.key.Public()), tt.req, got)
			continue
		}
		if len(got) == 1 {
			if k, err := ParseRawPublicKey(tt.want, got[0].(*CertPayload).Data); err != nil || !publicKeysEqual(k, tt.key.Public()) {
				t.Errorf("%v: %v", tt.want, err)
			}
		}
	}
}

// TestPairPubKeyAttacks: a peer is refused, with AUTHENTICATION_FAILED,
// when it proves nothing the configuration trusts: a certificate from
// another CA, a revoked, expired or not yet valid certificate, a valid
// certificate of the same CA for another name, or a raw key other than
// the configured one (TestRawKeyCert: a raw key sent in CERT that is not
// the configured one).
func TestPairPubKeyAttacks(t *testing.T) {
	pki := newTestPKI(t, "p256")
	other := newTestPKI(t, "p384")
	ka, kb := testKey(t, "p256b"), testKey(t, "rsa")
	mallory := testKey(t, "p256") // the key type B expects, not the key
	revokedSerial := int64(4242)
	crl := func(t testing.TB) *x509.RevocationList {
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
			Number: big.NewInt(1), ThisUpdate: epoch.Add(-time.Hour), NextUpdate: epoch.Add(24 * time.Hour),
			RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(revokedSerial), RevocationTime: epoch.Add(-time.Minute)}},
		}, pki.ca, pki.caKey)
		if err != nil {
			t.Fatal(err)
		}
		l, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	aDNS := []string{"a.example.org"}
	tests := []struct {
		name   string
		edit   func(t testing.TB, a, b *Config)
		reason string // in B's note
	}{
		{"another CA", func(t testing.TB, a, b *Config) {
			a.PubKey.Certs = []*x509.Certificate{other.issue(t, ka, certOpts{dns: aDNS})}
		}, "does not verify with our CA"},
		{"revoked", func(t testing.TB, a, b *Config) {
			a.PubKey.Certs = []*x509.Certificate{pki.issue(t, ka, certOpts{dns: aDNS, serial: revokedSerial})}
			b.PubKey.CRLs = []*x509.RevocationList{crl(t)}
		}, "revoked"},
		{"expired", func(t testing.TB, a, b *Config) {
			a.PubKey.Certs = []*x509.Certificate{pki.issue(t, ka, certOpts{dns: aDNS, from: epoch.Add(-48 * time.Hour), to: epoch.Add(-time.Hour)})}
		}, "does not verify"},
		{"not yet valid", func(t testing.TB, a, b *Config) {
			a.PubKey.Certs = []*x509.Certificate{pki.issue(t, ka, certOpts{dns: aDNS, from: epoch.Add(time.Hour), to: epoch.Add(48 * time.Hour)})}
		}, "does not verify"},
		{"certificate of another name", func(t testing.TB, a, b *Config) {
			// A valid certificate of the same CA, for the ID it claims,
			// which is not the one B expects.
			a.PubKey.Certs = []*x509.Certificate{pki.issue(t, ka, certOpts{dns: []string{"c.example.org"}})}
			a.LocalID = IdentityFQDN("c.example.org")
		}, "identified as c.example.org"},
		{"claims a name its certificate lacks", func(t testing.TB, a, b *Config) {
			// A certificate for c.example.org claiming a.example.org:
			// checkConfig refuses it on A; the attacker's session is
			// built below without that check.
			a.PubKey.Certs = []*x509.Certificate{pki.issue(t, ka, certOpts{dns: []string{"c.example.org"}})}
		}, "no subjectAltName"},
		{"key usage without digital signature", func(t testing.TB, a, b *Config) {
			a.PubKey.Certs = []*x509.Certificate{pki.issue(t, ka, certOpts{dns: aDNS, usage: x509.KeyUsageKeyEncipherment})}
		}, "digital signatures"},
		{"raw key not configured", func(t testing.TB, a, b *Config) {
			a.PubKey = &PubKeyAuth{Key: mallory, PeerKey: kb.Public()}
			b.PubKey = &PubKeyAuth{Key: kb, PeerKey: ka.Public()}
		}, "does not verify with its key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca, cb := pubKeyConfigs(t, ka, kb, pki)
			tt.edit(t, ca, cb)
			// Build A without checkConfig's test of its own certificate,
			// as an attacker would.
			a, err := NewSession(ca, nil)
			if err != nil {
				if !strings.Contains(tt.name, "lacks") {
					t.Fatal(err)
				}
				saved := ca.PubKey.Certs
				ca.PubKey.Certs = nil
				ca.PubKey.PeerKey, ca.PubKey.CACerts = kb.Public(), nil
				if a, err = NewSession(ca, nil); err != nil {
					t.Fatal(err)
				}
				a.cfg.PubKey.Certs = saved
			}
			b, err := NewSession(cb, nil)
			if err != nil {
				t.Fatal(err)
			}
			p := &pair{t: t, now: epoch, a: a, b: b}
			p.start()
			p.run(2*time.Minute, nil)
			if len(childUps(p.evB)) != 0 || len(childUps(p.evA)) != 0 {
				t.Fatalf("a Child SA came up: A %v; B %v", p.evA, p.evB)
			}
			found := false
			for _, d := range downs(p.evB) {
				if strings.Contains(d.Reason, tt.reason) {
					found = true
				}
			}
			if !found {
				t.Errorf("B's notes lack %q: %v", tt.reason, p.evB)
			}
		})
	}
}

// TestPeerCertBounds: the peer's certificates are bounded before any is
// verified: count, size of one, size of all, and chain length.
func TestPeerCertBounds(t *testing.T) {
	pki := newTestPKI(t, "p256")
	k := testKey(t, "p256b")
	p := &PubKeyAuth{Key: k, CACerts: []*x509.Certificate{pki.ca}}
	id := IdentityFQDN("a.example.org")
	leaf := pki.issue(t, k, certOpts{dns: []string{"a.example.org"}})
	one := &CertPayload{Encoding: CertX509Signature, Data: leaf.Raw}
	if _, err := peerPublicKey(p, id, []*CertPayload{one}, epoch); err != nil {
		t.Fatal(err)
	}
	many := make([]*CertPayload, maxPeerCerts+1)
	for i := range many {
		many[i] = one
	}
	big := &CertPayload{Encoding: CertX509Signature, Data: make([]byte, maxPeerCertBytes+1)}
	huge := []*CertPayload{one, {Encoding: CertRawRSAKey, Data: make([]byte, maxPeerCertTotal)}}
	garbage := &CertPayload{Encoding: CertX509Signature, Data: []byte{0x30, 0x03, 1, 2, 3}}
	for name, certs := range map[string][]*CertPayload{
		"too many": many, "too big": {big}, "too much": huge, "garbage": {garbage}, "none": nil,
	} {
		if _, err := peerPublicKey(p, id, certs, epoch); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A chain longer than maxChainLen: 6 intermediates.
	parent, parentKey := pki.ca, pki.caKey
	var inters []*CertPayload
	for i := range 6 {
		c := makeCert(t, k, parent, parentKey, certOpts{cn: "inter " + string(rune('0'+i)), ca: true, serial: int64(100 + i)})
		inters = append([]*CertPayload{{Encoding: CertX509Signature, Data: c.Raw}}, inters...)
		parent, parentKey = c, k
	}
	deep := makeCert(t, k, parent, parentKey, certOpts{dns: []string{"a.example.org"}})
	chain := append([]*CertPayload{{Encoding: CertX509Signature, Data: deep.Raw}}, inters...)
	if _, err := peerPublicKey(p, id, chain, epoch); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("a chain of 8: %v", err)
	}
}

// TestPairCertFragmentation: IKE_AUTH with an RSA certificate chain is
// larger than the fragment size and goes in RFC 7383 fragments, and the
// pair comes up; without fragmentation the same messages are sent whole.
func TestPairCertFragmentation(t *testing.T) {
	pki := newTestPKI(t, "rsa2")
	inter := pki.issue(t, testKey(t, "rsa2"), certOpts{cn: "intermediate", ca: true})
	ka, kb := testKey(t, "rsa"), testKey(t, "p384")
	ca, cb := pubKeyConfigs(t, ka, kb, pki)
	ca.PubKey.Certs = append(ca.PubKey.Certs, inter)
	for _, c := range []*Config{ca, cb} {
		c.Fragmentation, c.FragmentSize = true, 1280
	}
	p := newPair(t, ca, cb)
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatalf("no tunnel: A %v; B %v", p.evA, p.evB)
	}
	frags := 0
	for _, d := range p.sentA {
		if len(d.Data) > 1280 {
			t.Errorf("datagram of %d bytes", len(d.Data))
		}
		if m, _ := ParseMessage(d.Data); m != nil && m.Payloads[0].Type() == PayloadSKF {
			frags++
		}
	}
	if frags < 2 {
		t.Errorf("%d fragments of A's IKE_AUTH", frags)
	}
}
