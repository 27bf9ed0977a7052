package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/greipsec/greipsec/ikev2"
)

// pkiFiles are key, certificate and CRL files in a temporary directory,
// laid out as OpenIKED keeps them (iked/private/local.key, iked/local.pub,
// iked/pubkeys/fqdn/gw-b.example.net, iked/pubkeys/ipv4/192.0.2.2) and as
// a swanctl.conf user would (ca.pem, gw-a.pem, ...).
type pkiFiles struct {
	dir                string
	keyA, keyB, rsaKey crypto.Signer
	certA              *x509.Certificate
}

func writePEM(t testing.TB, name, typ string, der []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newPKIFiles(t testing.TB) *pkiFiles {
	t.Helper()
	d := t.TempDir()
	f := &pkiFiles{dir: d}
	ka, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	kb, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f.keyA, f.keyB, f.rsaKey = ka, kb, rk
	sec1, _ := x509.MarshalECPrivateKey(ka)
	writePEM(t, filepath.Join(d, "iked/private/local.key"), "EC PRIVATE KEY", sec1)
	spki := func(k crypto.Signer) []byte { b, _ := x509.MarshalPKIXPublicKey(k.Public()); return b }
	writePEM(t, filepath.Join(d, "iked/local.pub"), "PUBLIC KEY", spki(ka))
	writePEM(t, filepath.Join(d, "iked/pubkeys/fqdn/gw-b.example.net"), "PUBLIC KEY", spki(kb))
	writePEM(t, filepath.Join(d, "iked/pubkeys/ipv4/192.0.2.2"), "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rk.PublicKey))
	writePEM(t, filepath.Join(d, "rsa.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk))
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	p8, _ := x509.MarshalPKCS8PrivateKey(ed)
	writePEM(t, filepath.Join(d, "ed.key"), "PRIVATE KEY", p8)
	if err := os.WriteFile(filepath.Join(d, "b.pub.der"), spki(kb), 0o600); err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(d, "enc.key"), "ENCRYPTED PRIVATE KEY", []byte{0x30, 0})

	caKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	now := time.Now()
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Example CA"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caT, caT, caKey.Public(), caKey)
	ca, _ := x509.ParseCertificate(caDER)
	writePEM(t, filepath.Join(d, "ca.pem"), "CERTIFICATE", caDER)
	aT := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{Country: []string{"CH"}, Organization: []string{"Example"}, CommonName: "gw-a.example.net"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), DNSNames: []string{"gw-a.example.net"}}
	aDER, _ := x509.CreateCertificate(rand.Reader, aT, ca, ka.Public(), caKey)
	f.certA, _ = x509.ParseCertificate(aDER)
	writePEM(t, filepath.Join(d, "gw-a.pem"), "CERTIFICATE", aDER)
	if err := os.WriteFile(filepath.Join(d, "gw-a.der"), aDER, 0o600); err != nil {
		t.Fatal(err)
	}
	crlDER, _ := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(time.Hour)}, ca, caKey)
	writePEM(t, filepath.Join(d, "ca.crl"), "X509 CRL", crlDER)
	return f
}

// pubKeyDoc is ikeBase with public-key authentication: A's key from iked's
// files, B's from the pubkeys directory by its FQDN, or whatever ike
// holds instead (from line 12).
func (f *pkiFiles) doc(ike string) string {
	return edit(ikeBase, `psk = "`+testPSK+`"`+"\n", `local-id = "fqdn:gw-a.example.net"`+"\n"+ // line 11
		ike+"\n")
}

func (f *pkiFiles) rawDoc() string {
	return f.doc(`auth = "pubkey"
private-key = "` + f.dir + `/iked/private/local.key"
public-key = "` + f.dir + `/iked/local.pub"
peer-id = "gw-b.example.net"
pubkey-dir = "` + f.dir + `/iked/pubkeys"
rsa-pss = false`)
}

func (f *pkiFiles) certDoc() string {
	return f.doc(`auth = "pubkey"
private-key = "` + f.dir + `/iked/private/local.key"
certs = ["` + f.dir + `/gw-a.pem"]
peer-id = "C=CH, O=Example, CN=gw-b.example.net"
cacerts = ["` + f.dir + `/ca.pem"]
crls = ["` + f.dir + `/ca.crl"]`)
}

// TestPubKeyConfig: the keys of auth = "pubkey" load iked's files as iked
// lays them out (SEC1 private key, local.pub, pubkeys/fqdn/NAME,
// pubkeys/ipv4/ADDR in PKCS#1), PEM and DER, certificates, CAs and CRLs,
// and give ikev2 a PubKeyAuth it accepts.
func TestPubKeyConfig(t *testing.T) {
	f := newPKIFiles(t)
	for _, tt := range []struct {
		name    string
		doc     string
		check   func(t *testing.T, c *ikev2.Config)
		summary string
	}{
		{"iked raw keys", f.rawDoc(), func(t *testing.T, c *ikev2.Config) {
			if !c.PubKey.Key.Public().(*ecdsa.PublicKey).Equal(f.keyA.Public()) || !c.PubKey.PeerKey.(*ecdsa.PublicKey).Equal(f.keyB.Public()) {
				t.Error("wrong keys")
			}
		}, "ECDSA P-256 raw key as gw-a.example.net; peer gw-b.example.net: raw key ECDSA P-384"},
		{"pubkeys/ipv4 in PKCS#1, RSA key with PSS", f.doc(`private-key = "` + f.dir + `/rsa.key"
rsa-pss = true
pubkey-dir = "` + f.dir + `/iked/pubkeys"`), func(t *testing.T, c *ikev2.Config) {
			if !c.PubKey.RSAPSS || !c.PubKey.PeerKey.(*rsa.PublicKey).Equal(f.rsaKey.Public()) {
				t.Error("wrong keys")
			}
		}, "RSA 2048 raw key as gw-a.example.net; peer 192.0.2.2: raw key RSA 2048"},
		{"DER peer-pubkey, Ed25519 PKCS#8, weak", f.doc(`private-key = "` + f.dir + `/ed.key"
weak-algorithms = true
peer-pubkey = "` + f.dir + `/b.pub.der"`), func(t *testing.T, c *ikev2.Config) {
			if !c.PubKey.AllowSHA1 {
				t.Error("weak-algorithms does not allow SHA-1 signatures")
			}
		}, "Ed25519 raw key"},
		{"certificates", f.certDoc(), func(t *testing.T, c *ikev2.Config) {
			if len(c.PubKey.Certs) != 1 || len(c.PubKey.CACerts) != 1 || len(c.PubKey.CRLs) != 1 || c.PeerID.IDType != ikev2.IDDERASN1DN {
				t.Errorf("%+v", c.PubKey)
			}
		}, `ECDSA P-256 certificate "CN=gw-a.example.net,O=Example,C=CH" as gw-a.example.net; peer CN=gw-b.example.net,O=Example,C=CH: certificate from 1 CA, 1 CRL`},
		{"DER certificate, DN local-id", edit(f.certDoc(), `local-id = "fqdn:gw-a.example.net"`, `local-id = "/C=CH/O=Example/CN=gw-a.example.net"`,
			`/gw-a.pem`, `/gw-a.der`), nil, `as CN=gw-a.example.net,O=Example,C=CH`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse(filepath.Join(f.dir, "x.toml"), []byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			c := cfg.Tunnels[0].IKE
			if c.PSK != nil || c.PubKey == nil {
				t.Fatalf("PSK %v PubKey %v", c.PSK != nil, c.PubKey)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
			if s := DescribeAuth(c); !strings.Contains(s, tt.summary) {
				t.Errorf("DescribeAuth = %q, want %q in it", s, tt.summary)
			}
			if _, err := ikev2.NewSession(c, nil); err != nil {
				t.Errorf("ikev2 refuses it: %v", err)
			}
		})
	}
}

// TestPubKeyErrors: each mistake of public-key authentication gives one
// error, on the line of the key, saying what is wrong and what to do.
func TestPubKeyErrors(t *testing.T) {
	f := newPKIFiles(t)
	raw, cert := f.rawDoc(), f.certDoc()
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherDER, _ := x509.MarshalPKIXPublicKey(other.Public())
	writePEM(t, filepath.Join(f.dir, "other.pub"), "PUBLIC KEY", otherDER)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p224DER, _ := x509.MarshalECPrivateKey(p224)
	writePEM(t, filepath.Join(f.dir, "p224.key"), "EC PRIVATE KEY", p224DER)
	tests := []struct {
		name string
		doc  string
		line int
		want string
	}{
		{"unknown auth", edit(raw, `auth = "pubkey"`, `auth = "rsa"`), 12, `ike.auth: unknown method "rsa" (expected "psk"`},
		{"psk with pubkey", edit(raw, `auth = "pubkey"`, `auth = "pubkey"`+"\npsk-env = \"X\""), 13, `ike.psk-env: a pre-shared key is not used with auth = "pubkey"`},
		{"pubkey keys with psk", withIKE(`private-key = "x.key"`), 12, `ike.private-key: only used with auth = "pubkey"`},
		{"no private key", edit(raw, `private-key = "`+f.dir+`/iked/private/local.key"`+"\n", ""), 10, `ike.private-key: missing (our private key`},
		{"private key missing file", edit(raw, `/iked/private/local.key`, `/nope.key`), 13, "ike.private-key: open " + f.dir + "/nope.key: no such file or directory"},
		{"private key is a public key", edit(raw, `/iked/private/local.key`, `/iked/local.pub`), 13, `no PEM PRIVATE KEY block`},
		{"encrypted private key", edit(raw, `/iked/private/local.key`, `/enc.key`), 13, `the private key is encrypted`},
		{"P-224", edit(raw, `/iked/private/local.key`, `/p224.key`), 13, `ECDSA curve P-224; want P-256, P-384 or P-521`},
		{"public-key not ours", edit(raw, `/iked/local.pub`, `/other.pub`), 14, `other.pub is not the public half of private-key (ECDSA P-256)`},
		{"public-key is a private key", edit(raw, `/iked/local.pub`, `/rsa.key`), 14, `holds a private key`},
		{"rsa-pss with ECDSA", edit(raw, `rsa-pss = false`, `rsa-pss = true`), 17, `ike.rsa-pss: only for an RSA private key; private-key is ECDSA P-256`},
		{"no peer key", edit(raw, `pubkey-dir = "`+f.dir+`/iked/pubkeys"`+"\n", ""), 13, `the peer cannot be checked: set peer-pubkey`},
		{"pubkey-dir without the peer's file", edit(raw, `peer-id = "gw-b.example.net"`, `peer-id = "gw-c.example.net"`), 16,
			`ike.pubkey-dir: the peer's key for peer-id gw-c.example.net: open ` + f.dir + `/iked/pubkeys/fqdn/gw-c.example.net: no such file or directory`},
		{"pubkey-dir with a DN peer", edit(raw, `peer-id = "gw-b.example.net"`, `peer-id = "dn:CN=b"`), 16, `iked's pubkeys directory has keys only for FQDN`},
		{"peer-pubkey and pubkey-dir", edit(raw, `rsa-pss = false`, `peer-pubkey = "`+f.dir+`/other.pub"`), 17, `ike.peer-pubkey: pubkey-dir is set too`},
		{"crls with a raw key", edit(raw, `rsa-pss = false`, `crls = ["`+f.dir+`/ca.crl"]`), 17, `ike.crls: only used with cacerts`},
		{"certs not ours", edit(cert, `/iked/private/local.key`, `/rsa.key`), 14, `ike.certs[0]: the certificate "CN=gw-a.example.net,O=Example,C=CH" is not for private-key (RSA 2048)`},
		{"cert lacks local-id", edit(cert, `fqdn:gw-a.example.net`, `fqdn:gw-z.example.net`), 14, `ike.certs: the certificate "CN=gw-a.example.net,O=Example,C=CH" has no subjectAltName for local-id gw-z.example.net`},
		{"cacerts not a CA", edit(cert, `/ca.pem"]`, `/gw-a.pem"]`), 16, `ike.cacerts[0]: "CN=gw-a.example.net,O=Example,C=CH" is not a CA certificate`},
		{"cacerts empty", edit(cert, `["`+f.dir+`/ca.pem"]`, `[]`), 16, `ike.cacerts: must not be empty`},
		{"crl not a CRL", edit(cert, `/ca.crl"]`, `/ca.pem"]`), 17, `no PEM X509 CRL block`},
		{"bad DN", edit(cert, `C=CH, O=Example, CN=gw-b.example.net`, `C=CH, Q=x`), 15, `unknown attribute "Q"`},
		{"cacerts with a keyid peer", edit(cert, `peer-id = "C=CH, O=Example, CN=gw-b.example.net"`, `peer-id = "keyid:b"`), 16, `a peer-id of type keyid cannot be checked against a certificate`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(filepath.Join(f.dir, "x.toml"), []byte(tt.doc))
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			t.Log(msg)
			if strings.Contains(msg, "\n") {
				t.Fatalf("more than one error:\n%s", msg)
			}
			var e *Error
			if !errors.As(err, &e) || e.Line != tt.line {
				t.Errorf("line %d, want %d", e.Line, tt.line)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error lacks %q", tt.want)
			}
		})
	}
}

// TestParseDN: the three ways a DN identity is written give the same
// Name; escapes work; mistakes are refused.
func TestParseDN(t *testing.T) {
	want, err := parseIdentity("dn:C=CH, O=Example, CN=gw-a")
	if err != nil || want.IDType != ikev2.IDDERASN1DN {
		t.Fatal(want, err)
	}
	for _, s := range []string{"C=CH, O=Example, CN=gw-a", "/C=CH/O=Example/CN=gw-a", "c=CH,o=Example,cn=gw-a"} {
		got, err := parseIdentity(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v %v", s, got, err)
		}
	}
	if got, err := parseIdentity(`dn:O=Example\, Inc., CN=gw`); err != nil || got.String() != `CN=gw,O=Example\, Inc.` {
		t.Errorf("escape: %v %v", got, err)
	}
	for _, bad := range []string{"dn:", "dn:CN", "dn:CN=", "dn:XX=1", `dn:CN=a\`, "dn:" + strings.Repeat("CN=x,", 300)} {
		if id, err := parseIdentity(bad); err == nil {
			t.Errorf("%q: %v", bad, id)
		}
	}
	if s := fmt.Sprint(want); s != "CN=gw-a,O=Example,C=CH" {
		t.Errorf("a DN identity prints as %q", s)
	}
}

// pubKeyDocs returns documents that set every key of public-key
// authentication between them, for TestExamplesDocumentEveryKey.
func pubKeyDocs(t *testing.T) []string {
	f := newPKIFiles(t)
	return []string{f.rawDoc(), edit(f.rawDoc(), `pubkey-dir = "`+f.dir+`/iked/pubkeys"`, `peer-pubkey = "`+f.dir+`/b.pub.der"`), f.certDoc()}
}
