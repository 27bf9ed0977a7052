package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/greipsec/greipsec/esp"
)

var keygenCommand = &command{
	name:  "keygen",
	args:  "ALG | --pubkey TYPE --out DIR",
	short: "print random keys for a manual SA, or write a key pair for public-key IKE",
	long: `Print random keys for a manual SA of algorithm ALG: for an AEAD
(aes128gcm16, aes256gcm16, chacha20poly1305) one line, the key in hex with
the 4-byte salt after it, as the key of [tunnel.sa.out] and [tunnel.sa.in]
takes it; for AES-CBC or NULL with an HMAC (e.g. aes256-sha256, null-sha256)
the enc-key (not for NULL) and auth-key lines of the SA's table.

With --pubkey TYPE (ecdsa-p256, ecdsa-p384, ecdsa-p521, rsa-2048, rsa-3072,
rsa-4096 or ed25519), write a key pair for auth = "pubkey" the way OpenIKED
keeps its own: DIR/private/local.key (PEM, owner only; SEC1 for ECDSA and
PKCS#1 for RSA, as iked and openssl write them, PKCS#8 for Ed25519) and
DIR/local.pub (PEM SubjectPublicKeyInfo). --out /etc/iked makes the files
iked would have; give local.pub to the peer (iked: pubkeys/fqdn/<our ID>;
greipsec: peer-pubkey or pubkey-dir). Existing files are not overwritten.`,
	setup: func(fs *flag.FlagSet) runFunc {
		pubkey := fs.String("pubkey", "", "write a key pair of `type` (ecdsa-p256, ecdsa-p384, ecdsa-p521, rsa-2048, rsa-3072, rsa-4096, ed25519)")
		out := fs.String("out", "", "with --pubkey: the `directory` for private/local.key and local.pub")
		return func(args []string, stdout, _ io.Writer) error {
			if *pubkey != "" || *out != "" {
				if len(args) != 0 {
					return usagef("keygen", "--pubkey takes no algorithm argument")
				}
				if *pubkey == "" || *out == "" {
					return usagef("keygen", "--pubkey TYPE and --out DIR go together")
				}
				return keygenPubkey(*pubkey, *out, stdout)
			}
			if len(args) != 1 {
				return usagef("keygen", "want one algorithm (aes128gcm16, aes256gcm16, chacha20poly1305, or e.g. aes256-sha256), or --pubkey TYPE --out DIR")
			}
			tr, err := esp.ParseTransform(args[0])
			if err != nil {
				return usagef("keygen", "%v", err)
			}
			random := func(n int) string {
				key := make([]byte, n)
				rand.Read(key)
				return "0x" + hex.EncodeToString(key)
			}
			if tr.Algorithm.IsAEAD() {
				fmt.Fprintln(stdout, random(tr.Algorithm.KeyLen()))
				return nil
			}
			if n := tr.Algorithm.KeyLen(); n > 0 {
				fmt.Fprintf(stdout, "enc-key = %q\n", random(n))
			}
			fmt.Fprintf(stdout, "auth-key = %q\n", random(tr.Integrity.KeyLen()))
			return nil
		}
	},
}

// keygenPubkey writes a key pair of type typ into dir, in OpenIKED's
// layout: private/local.key and local.pub.
func keygenPubkey(typ, dir string, stdout io.Writer) error {
	var key crypto.Signer
	var block *pem.Block
	var err error
	switch typ {
	case "ecdsa-p256", "ecdsa-p384", "ecdsa-p521":
		curve := map[string]elliptic.Curve{"ecdsa-p256": elliptic.P256(), "ecdsa-p384": elliptic.P384(), "ecdsa-p521": elliptic.P521()}[typ]
		var k *ecdsa.PrivateKey
		if k, err = ecdsa.GenerateKey(curve, rand.Reader); err == nil {
			var der []byte
			if der, err = x509.MarshalECPrivateKey(k); err == nil {
				key, block = k, &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
			}
		}
	case "rsa-2048", "rsa-3072", "rsa-4096":
		bits := map[string]int{"rsa-2048": 2048, "rsa-3072": 3072, "rsa-4096": 4096}[typ]
		var k *rsa.PrivateKey
		if k, err = rsa.GenerateKey(rand.Reader, bits); err == nil {
			key, block = k, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
		}
	case "ed25519":
		var k ed25519.PrivateKey
		if _, k, err = ed25519.GenerateKey(rand.Reader); err == nil {
			var der []byte
			if der, err = x509.MarshalPKCS8PrivateKey(k); err == nil {
				key, block = k, &pem.Block{Type: "PRIVATE KEY", Bytes: der}
			}
		}
	default:
		return usagef("keygen", "--pubkey %q: want ecdsa-p256, ecdsa-p384, ecdsa-p521, rsa-2048, rsa-3072, rsa-4096 or ed25519", typ)
	}
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	keyFile, pubFile := filepath.Join(dir, "private", "local.key"), filepath.Join(dir, "local.pub")
	for _, f := range []string{keyFile, pubFile} {
		if _, err := os.Lstat(f); err == nil {
			return fmt.Errorf("keygen: %s exists; remove it first, or write the pair elsewhere with --out", f)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("keygen: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := writeNew(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	if err := writeNew(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		os.Remove(keyFile)
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (private, mode 0600) and %s\n", keyFile, pubFile)
	fmt.Fprintf(stdout, "the peer needs %s: iked as pubkeys/fqdn/<this side's local-id> (or ipv4/, ipv6/, ufqdn/), greipsec as peer-pubkey or in its pubkey-dir\n", pubFile)
	return nil
}

// writeNew writes a file that must not exist yet.
func writeNew(name string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(name)
		return fmt.Errorf("keygen: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return fmt.Errorf("keygen: %w", err)
	}
	return nil
}
