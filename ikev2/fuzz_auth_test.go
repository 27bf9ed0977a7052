package ikev2

import (
	"crypto/rand"
	"crypto/x509"
	"testing"
)

// Fuzz targets of the public-key authentication input: all of it arrives
// before the peer is authenticated (its CERT payloads, its AUTH data, its
// SIGNATURE_HASH_ALGORITHMS and CERTREQ).

// FuzzDigitalSignature: the Authentication Data of any method, with any
// octets, never panics and never verifies unless it is a real signature:
// only the genuine seeds verify.
func FuzzDigitalSignature(f *testing.F) {
	octets := []byte("signed octets")
	keys := []string{"p256", "rsa", "ed"}
	for i, name := range keys {
		p := &PubKeyAuth{Key: testKey(f, name)}
		auth, err := signAuth(p, octets, []HashAlgorithm{HashSHA256, HashSHA384, HashSHA512, HashIdentity}, rand.Reader)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(auth.Method), auth.Data, uint8(i))
	}
	legacy, _ := signAuth(&PubKeyAuth{Key: testKey(f, "p256")}, octets, nil, rand.Reader)
	f.Add(uint8(legacy.Method), legacy.Data, uint8(0))
	f.Add(uint8(AuthDigitalSignature), hexOf(f, "0f 30 0d 06 09 2a 86 48 86 f7 0d 01 01 0a 30 00 00"), uint8(1))
	f.Fuzz(func(t *testing.T, method uint8, data []byte, key uint8) {
		ParseDigitalSignature(data)
		k := testKey(t, keys[int(key)%len(keys)])
		p := &PubKeyAuth{Key: k, AllowSHA1: key&0x80 != 0}
		err := verifyAuth(p, k.Public(), &AuthPayload{Method: AuthMethod(method), Data: data}, octets)
		if err == nil {
			// Verified: it must be the key's signature, so it must fail
			// for other octets.
			if verifyAuth(p, k.Public(), &AuthPayload{Method: AuthMethod(method), Data: data}, append(octets, 0)) == nil {
				t.Fatalf("a signature that verifies for any octets: %x", data)
			}
		}
	})
}

// FuzzPeerCerts: CERT payloads of any encoding and content, as the peer's
// certificates or raw keys, never panic and never yield a key unless a
// genuine certificate (or the configured raw key) is among them.
func FuzzPeerCerts(f *testing.F) {
	pki := newTestPKI(f, "p256")
	k := testKey(f, "p384")
	leaf := pki.issue(f, k, certOpts{dns: []string{"a.example.org"}})
	spki, _ := x509.MarshalPKIXPublicKey(k.Public())
	f.Add(uint8(CertX509Signature), leaf.Raw, uint8(CertX509Signature), pki.ca.Raw, false)
	f.Add(uint8(CertRawPublicKey), spki, uint8(CertIKEDECDSA), spki, true)
	f.Add(uint8(CertRawRSAKey), []byte{0x30, 0x00}, uint8(4), []byte{0x30, 0x80}, false)
	f.Fuzz(func(t *testing.T, enc1 uint8, data1 []byte, enc2 uint8, data2 []byte, raw bool) {
		p := &PubKeyAuth{Key: testKey(t, "ed"), CACerts: []*x509.Certificate{pki.ca}}
		if raw {
			p = &PubKeyAuth{Key: testKey(t, "ed"), PeerKey: k.Public()}
		}
		certs := []*CertPayload{{Encoding: CertEncoding(enc1), Data: data1}, {Encoding: CertEncoding(enc2), Data: data2}}
		key, err := peerPublicKey(p, IdentityFQDN("a.example.org"), certs, epoch)
		if err == nil && !publicKeysEqual(key, k.Public()) {
			t.Fatalf("a key that is neither the configured one nor the genuine certificate's: %s", KeyName(key))
		}
		var r peerCertReq
		r.note(&CertReqPayload{Encoding: CertEncoding(enc1), Data: data1})
		certPayloads(p, r)
	})
}

// FuzzSignatureHashes: any notify data parses or is refused, never
// panics, and what parses is a bounded list without duplicates.
func FuzzSignatureHashes(f *testing.F) {
	f.Add(hexOf(f, "0002 0003 0004 0005"))
	f.Add([]byte{0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		hs, err := ParseSignatureHashes(data)
		if err != nil {
			return
		}
		seen := map[HashAlgorithm]bool{}
		for _, h := range hs {
			if seen[h] {
				t.Fatalf("duplicate %v", h)
			}
			seen[h] = true
		}
		if len(hs) == 0 || len(hs) > 64 {
			t.Fatalf("%d hashes", len(hs))
		}
	})
}
