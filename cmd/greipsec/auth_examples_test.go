package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/greipsec/greipsec/gateway/config"
)

// TestKeygenPubkey: keygen --pubkey writes iked's layout, private/local.key
// (owner only) and local.pub, for every key type; the pair loads as
// private-key and public-key of a configuration; existing files are never
// overwritten.
func TestKeygenPubkey(t *testing.T) {
	for _, typ := range []string{"ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "rsa-2048", "ed25519"} {
		dir := t.TempDir()
		var out bytes.Buffer
		if err := run([]string{"keygen", "--pubkey", typ, "--out", dir}, &out, new(bytes.Buffer)); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		st, err := os.Stat(filepath.Join(dir, "private", "local.key"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: local.key %v %v", typ, st, err)
		}
		key, _ := os.ReadFile(filepath.Join(dir, "private", "local.key"))
		want := map[string]string{"ecdsa-p256": "EC PRIVATE KEY", "rsa-2048": "RSA PRIVATE KEY", "ed25519": "PRIVATE KEY"}[typ]
		if b, _ := pem.Decode(key); b == nil || want != "" && b.Type != want {
			t.Errorf("%s: local.key is not PEM %q", typ, want)
		}
		doc := strings.Join([]string{`[[tunnel]]`, `name = "sec0"`, `mode = "route"`, `local = "192.0.2.1"`, `peer = "192.0.2.2"`,
			`[tunnel.ike]`, `private-key = "private/local.key"`, `public-key = "local.pub"`, `peer-pubkey = "local.pub"`}, "\n")
		if _, err := config.Parse(filepath.Join(dir, "x.toml"), []byte(doc)); err != nil {
			t.Errorf("%s: the pair does not load: %v", typ, err)
		}
		if err := run([]string{"keygen", "--pubkey", typ, "--out", dir}, &out, new(bytes.Buffer)); err == nil || !strings.Contains(err.Error(), "exists") {
			t.Errorf("%s: a second keygen into the same directory: %v", typ, err)
		}
	}
	for _, args := range [][]string{{"keygen", "--pubkey", "dsa", "--out", t.TempDir()}, {"keygen", "--pubkey", "ed25519"}, {"keygen", "--pubkey", "ed25519", "--out", "x", "aes256gcm16"}} {
		if err := run(args, new(bytes.Buffer), new(bytes.Buffer)); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// TestCheckAuthExamples: the public-key examples pass greipsec check with
// their files where they name them: pubkey-a/b.toml with keys made by
// keygen --pubkey in iked's layout (/etc/iked), each side's local.pub
// copied into the other's pubkeys/fqdn/; cert-a/b.toml with a CA, two
// certificates and a CRL (/etc/greipsec).
func TestCheckAuthExamples(t *testing.T) {
	root := t.TempDir()
	ikedDir := func(side string) string { return filepath.Join(root, "iked-"+side) }
	for _, side := range []string{"a", "b"} {
		if err := run([]string{"keygen", "--pubkey", "ecdsa-p256", "--out", ikedDir(side)}, new(bytes.Buffer), new(bytes.Buffer)); err != nil {
			t.Fatal(err)
		}
	}
	for side, other := range map[string]string{"a": "b", "b": "a"} {
		pub, err := os.ReadFile(filepath.Join(ikedDir(other), "local.pub"))
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(ikedDir(side), "pubkeys", "fqdn", "gw-"+other+".example.net")
		os.MkdirAll(filepath.Dir(dst), 0o755)
		if err := os.WriteFile(dst, pub, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pkiDir := filepath.Join(root, "greipsec")
	writeTestPKI(t, pkiDir)
	for _, c := range []struct {
		example, from, to string
		want              []string
	}{
		{"pubkey-a.toml", "/etc/iked", ikedDir("a"), []string{"sec0: auth ECDSA P-256 raw key as gw-a.example.net; peer gw-b.example.net: raw key ECDSA P-256", "1438"}},
		{"pubkey-b.toml", "/etc/iked", ikedDir("b"), []string{"sec0: auth ECDSA P-256 raw key as gw-b.example.net; peer gw-a.example.net: raw key ECDSA P-256"}},
		{"cert-a.toml", "/etc/greipsec", pkiDir, []string{`gre0: auth ECDSA P-256 certificate "CN=gw-a.example.net,O=Example,C=CH" as gw-a.example.net; peer gw-b.example.net: certificate from 1 CA, 1 CRL`}},
		{"cert-b.toml", "/etc/greipsec", pkiDir, []string{`certificate "CN=gw-b.example.net,O=Example,C=CH" as gw-b.example.net`}},
	} {
		text, err := os.ReadFile(filepath.Join("..", "..", "examples", c.example))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(root, c.example)
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(text), c.from, c.to)), 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := run([]string{"check", "-c", path}, &out, new(bytes.Buffer)); err != nil {
			t.Fatalf("%s: %v", c.example, err)
		}
		for _, w := range append(c.want, c.example+": ok") {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: check output lacks %q:\n%s", c.example, w, out.String())
			}
		}
	}
}

// writeTestPKI writes what cert-a.toml and cert-b.toml name: ca.pem,
// ca.crl, gw-a.key/pem and gw-b.key/pem, PEM as pki --outform pem writes
// them.
func writeTestPKI(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	caKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{Country: []string{"CH"}, Organization: []string{"Example"}, CommonName: "Example CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caT, caT, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	write("ca.pem", "CERTIFICATE", caDER)
	for i, gw := range []string{"gw-a", "gw-b"} {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.MarshalECPrivateKey(k)
		write(gw+".key", "EC PRIVATE KEY", der)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)),
			Subject:   pkix.Name{Country: []string{"CH"}, Organization: []string{"Example"}, CommonName: gw + ".example.net"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), DNSNames: []string{gw + ".example.net"}}
		cert, err := x509.CreateCertificate(rand.Reader, tmpl, ca, crypto.Signer(k).Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		write(gw+".pem", "CERTIFICATE", cert)
	}
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(time.Hour)}, ca, caKey)
	if err != nil {
		t.Fatal(err)
	}
	write("ca.crl", "X509 CRL", crl)
}
