//go:build linux

package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// StrongSwanAuth is public-key authentication for StartStrongSwan:
// charon's private key and either its certificate or its raw public key,
// and either the peer's raw public key or the CA of the peer's
// certificate. Every field is PEM (or DER); StartStrongSwan writes them
// where swanctl --load-all finds them (SWANCTL_DIR is the instance's Dir):
//
//	<dir>/private/local.key   PrivateKey
//	<dir>/x509/local.pem      Cert (swanctl.conf local.certs)
//	<dir>/pubkey/local.pub    PubKey (local.pubkeys), when there is no Cert
//	<dir>/pubkey/peer.pub     PeerPubKey (remote.pubkeys)
//	<dir>/x509ca/ca.pem       CACert (remote.cacerts), when there is no PeerPubKey
//	<dir>/x509crl/ca.crl      CRL, if any
type StrongSwanAuth struct {
	PrivateKey   []byte
	Cert, PubKey []byte
	PeerPubKey   []byte
	CACert, CRL  []byte
}

// swanAuth is what the templates need of a StrongSwanAuth.
type swanAuth struct{ Cert, CACert bool }

func (a *StrongSwanAuth) swanData() *swanAuth {
	if a == nil {
		return nil
	}
	return &swanAuth{Cert: a.Cert != nil, CACert: a.PeerPubKey == nil}
}

// write puts the credentials of a into dir.
func (a *StrongSwanAuth) write(dir string) error {
	if a == nil {
		return nil
	}
	files := map[string][]byte{
		"private/local.key": a.PrivateKey,
		"x509/local.pem":    a.Cert,
		"pubkey/local.pub":  a.PubKey,
		"pubkey/peer.pub":   a.PeerPubKey,
		"x509ca/ca.pem":     a.CACert,
		"x509crl/ca.crl":    a.CRL,
	}
	for name, data := range files {
		if data == nil {
			continue
		}
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("lab: strongSwan: %w", err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return fmt.Errorf("lab: strongSwan: %w", err)
		}
	}
	return nil
}

// PKIPath is strongSwan's pki tool, from Debian's strongswan-pki.
const PKIPath = "/usr/bin/pki"

// NeedStrongSwanPKI makes sure strongSwan's pki tool is installed,
// installing strongswan-pki with apt-get (as root) when it is missing.
func NeedStrongSwanPKI() error {
	installMu.Lock()
	defer installMu.Unlock()
	if _, err := os.Stat(PKIPath); err == nil {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("lab: %s missing; as root: apt-get install strongswan-pki", PKIPath)
	}
	for _, args := range [][]string{{"update", "-qq", "-oDPkg::Lock::Timeout=300"},
		{"install", "-y", "-qq", "--no-install-recommends", "-oDPkg::Lock::Timeout=300", "strongswan-pki"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			return fmt.Errorf("lab: apt-get %s: %w\n%s", strings.Join(args, " "), err, lastLines(out, 20))
		}
	}
	if _, err := os.Stat(PKIPath); err != nil {
		return fmt.Errorf("lab: apt-get installed strongswan-pki but %s is missing", PKIPath)
	}
	return nil
}

// PKI runs strongSwan's pki with args (and stdin, if not nil) and returns
// its standard output, e.g. PKI(nil, "--gen", "--type", "ecdsa", "--size",
// "256", "--outform", "pem").
func PKI(stdin []byte, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, PKIPath, args...)
	if stdin != nil {
		cmd.Stdin = strings.NewReader(string(stdin))
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("lab: pki %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}
