package ikev2

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
)

// hexOf decodes hex digits, ignoring any white space.
func hexOf(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testKeys are generated once per test binary: RSA keys take a while.
var (
	testKeysOnce sync.Once
	testKeys     map[string]crypto.Signer
)

func testKey(t testing.TB, name string) crypto.Signer {
	t.Helper()
	testKeysOnce.Do(func() {
		testKeys = make(map[string]crypto.Signer)
		gen := map[string]func() (crypto.Signer, error){
			"p256":  func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) },
			"p384":  func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) },
			"p521":  func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P521(), rand.Reader) },
			"rsa":   func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) },
			"rsa2":  func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) },
			"ed":    func() (crypto.Signer, error) { _, k, err := ed25519.GenerateKey(rand.Reader); return k, err },
			"p256b": func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) },
			"ed2":   func() (crypto.Signer, error) { _, k, err := ed25519.GenerateKey(rand.Reader); return k, err },
			"p384b": func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) },
			"p521b": func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P521(), rand.Reader) },
		}
		for n, g := range gen {
			k, err := g()
			if err != nil {
				panic(err)
			}
			testKeys[n] = k
		}
	})
	k, ok := testKeys[name]
	if !ok {
		t.Fatalf("no test key %q", name)
	}
	return k
}

// TestAlgorithmIdentifiersRFC7427 checks the AlgorithmIdentifier objects
// of method 14 against RFC 7427 Appendix A, byte for byte: the ones we
// send must be those of the appendix (A.1.x, A.3.x), and each object of
// the appendix we support must decode to its algorithm. RSASSA-PSS as we
// send it is A.4.3 without the trailerField, which DER leaves out as a
// DEFAULT; A.4.3 itself (with trailerField 1) decodes to the same. The
// Ed25519 identifier is id-Ed25519 of RFC 8410 §3 with absent parameters,
// as RFC 8420 §2 requires.
func TestAlgorithmIdentifiersRFC7427(t *testing.T) {
	tests := []struct {
		source string
		der    string
		alg    sigAlg
		sent   bool // we produce exactly these octets
	}{
		{"RFC 7427 A.1.1 sha1WithRSAEncryption", "30 0d 06 09 2a 86 48 86 f7 0d 01 01 05 05 00", sigAlg{key: keyRSA, hash: HashSHA1}, true},
		{"RFC 7427 A.1.2 sha256WithRSAEncryption", "30 0d 06 09 2a 86 48 86 f7 0d 01 01 0b 05 00", sigAlg{key: keyRSA, hash: HashSHA256}, true},
		{"RFC 7427 A.1.3 sha384WithRSAEncryption", "30 0d 06 09 2a 86 48 86 f7 0d 01 01 0c 05 00", sigAlg{key: keyRSA, hash: HashSHA384}, true},
		{"RFC 7427 A.1.4 sha512WithRSAEncryption", "30 0d 06 09 2a 86 48 86 f7 0d 01 01 0d 05 00", sigAlg{key: keyRSA, hash: HashSHA512}, true},
		{"RFC 7427 A.3.1 ecdsa-with-sha256", "30 0a 06 08 2a 86 48 ce 3d 04 03 02", sigAlg{key: keyECDSA, hash: HashSHA256}, true},
		{"RFC 7427 A.3.2 ecdsa-with-sha384", "30 0a 06 08 2a 86 48 ce 3d 04 03 03", sigAlg{key: keyECDSA, hash: HashSHA384}, true},
		{"RFC 7427 A.3.3 ecdsa-with-sha512", "30 0a 06 08 2a 86 48 ce 3d 04 03 04", sigAlg{key: keyECDSA, hash: HashSHA512}, true},
		{"RFC 7427 A.4.1 RSASSA-PSS with empty parameters", "30 0b 06 09 2a 86 48 86 f7 0d 01 01 0a",
			sigAlg{key: keyRSA, pss: true, hash: HashSHA1, saltLen: 20}, false},
		{"RFC 7427 A.4.2 RSASSA-PSS with default parameters", "30 0d 06 09 2a 86 48 86 f7 0d 01 01 0a 30 00",
			sigAlg{key: keyRSA, pss: true, hash: HashSHA1, saltLen: 20}, false},
		{"RFC 7427 A.4.3 RSASSA-PSS with SHA-256", `30 46 06 09 2a 86 48 86 f7 0d 01 01 0a 30 39 a0 0f
			30 0d 06 09 60 86 48 01 65 03 04 02 01 05 00 a1 1c 30 1a 06 09 2a 86 48 86 f7 0d 01 01 08 30 0d
			06 09 60 86 48 01 65 03 04 02 01 05 00 a2 03 02 01 20 a3 03 02 01 01`,
			sigAlg{key: keyRSA, pss: true, hash: HashSHA256, saltLen: 32}, false},
		{"RFC 7427 A.4.3 without the DEFAULT trailerField (what we send)", `30 41 06 09 2a 86 48 86 f7 0d 01 01 0a 30 34 a0 0f
			30 0d 06 09 60 86 48 01 65 03 04 02 01 05 00 a1 1c 30 1a 06 09 2a 86 48 86 f7 0d 01 01 08 30 0d
			06 09 60 86 48 01 65 03 04 02 01 05 00 a2 03 02 01 20`,
			sigAlg{key: keyRSA, pss: true, hash: HashSHA256, saltLen: 32}, true},
		{"RFC 8410 §3 id-Ed25519, RFC 8420 §2", "30 05 06 03 2b 65 70", sigAlg{key: keyEd25519, hash: HashIdentity}, true},
	}
	for _, tt := range tests {
		der := hexOf(t, tt.der)
		got, err := parseSigAlg(der)
		if err != nil || got != tt.alg {
			t.Errorf("%s: parsed %+v, %v; want %+v", tt.source, got, err, tt.alg)
		}
		if enc := tt.alg.AlgorithmIdentifier(); tt.sent && !bytes.Equal(enc, der) {
			t.Errorf("%s: we encode % x", tt.source, enc)
		}
	}
	for _, bad := range []string{
		"30 0d 06 09 2a 86 48 86 f7 0d 01 01 04 05 00",    // md5WithRSAEncryption
		"30 0a 06 08 2a 86 48 ce 3d 04 03 01",             // ecdsa-with-SHA224
		"30 0c 06 08 2a 86 48 ce 3d 04 03 02 05 00",       // ECDSA with NULL parameters
		"30 0d 06 09 2a 86 48 86 f7 0d 01 01 0b 05 00 00", // trailing octet
		"30 07 06 03 2b 65 70 05 00",                      // Ed25519 with parameters
		// PSS whose MGF1 hash (SHA-1) is not the message hash (SHA-256).
		"30 37 06 09 2a 86 48 86 f7 0d 01 01 0a 30 2a a0 0f 30 0d 06 09 60 86 48 01 65 03 04 02 01 05 00 a1 17 30 15 06 09 2a 86 48 86 f7 0d 01 01 08 30 08 06 06 2b 0e 03 02 1a 00",
		// PSS with trailerField 2.
		"30 12 06 09 2a 86 48 86 f7 0d 01 01 0a 30 05 a3 03 02 01 02",
	} {
		if a, err := parseSigAlg(hexOf(t, bad)); err == nil {
			t.Errorf("% s: accepted as %v", bad, a)
		}
	}
}

// TestEd25519RFC8032 signs with the key of RFC 8032 §7.1 TEST 1 (empty
// message) through the AUTH signer and checks the signature of the RFC.
func TestEd25519RFC8032(t *testing.T) {
	seed := hexOf(t, "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	pub := hexOf(t, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
	want := hexOf(t, `e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b`)
	key := ed25519.NewKeyFromSeed(seed)
	if !bytes.Equal(key.Public().(ed25519.PublicKey), pub) {
		t.Fatal("public key differs from RFC 8032")
	}
	p := &PubKeyAuth{Key: key}
	auth, err := signAuth(p, nil, []HashAlgorithm{HashIdentity}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	algID, sig, err := ParseDigitalSignature(auth.Data)
	if err != nil || auth.Method != AuthDigitalSignature || !bytes.Equal(algID, hexOf(t, "30 05 06 03 2b 65 70")) {
		t.Fatalf("AUTH %v % x: %v", auth.Method, auth.Data, err)
	}
	if !bytes.Equal(sig, want) {
		t.Fatalf("signature % x, want RFC 8032's % x", sig, want)
	}
	if err := verifyAuth(p, ed25519.PublicKey(pub), auth, nil); err != nil {
		t.Fatal(err)
	}
}

// TestSignVerify signs and verifies AUTH with every key type, by method
// 14 with each hash the peer may announce and by the legacy methods, and
// checks what must be refused.
func TestSignVerify(t *testing.T) {
	octets := []byte("RealMessage | Nonce | prf(SK_p, IDx')")
	all := []HashAlgorithm{HashSHA256, HashSHA384, HashSHA512, HashIdentity}
	tests := []struct {
		key    string
		pss    bool
		sha1   bool
		hashes []HashAlgorithm // nil: legacy
		method AuthMethod
		alg    string
	}{
		{key: "p256", hashes: all, method: AuthDigitalSignature, alg: "ECDSA-SHA256"},
		{key: "p384", hashes: all, method: AuthDigitalSignature, alg: "ECDSA-SHA384"},
		{key: "p521", hashes: all, method: AuthDigitalSignature, alg: "ECDSA-SHA512"},
		{key: "p384", hashes: []HashAlgorithm{HashSHA256}, method: AuthDigitalSignature, alg: "ECDSA-SHA256"},
		{key: "rsa", hashes: all, method: AuthDigitalSignature, alg: "RSA-SHA256"},
		{key: "rsa", hashes: []HashAlgorithm{HashSHA512}, method: AuthDigitalSignature, alg: "RSA-SHA512"},
		{key: "rsa", pss: true, hashes: all, method: AuthDigitalSignature, alg: "RSA-PSS-SHA256"},
		{key: "rsa", pss: true, hashes: []HashAlgorithm{HashSHA384}, method: AuthDigitalSignature, alg: "RSA-PSS-SHA384"},
		{key: "ed", hashes: all, method: AuthDigitalSignature, alg: "Ed25519"},
		{key: "p256", method: AuthECDSASHA256P256},
		{key: "p384", method: AuthECDSASHA384P384},
		{key: "p521", method: AuthECDSASHA512P521},
		{key: "rsa", sha1: true, method: AuthRSASig},
		{key: "rsa", sha1: true, hashes: []HashAlgorithm{HashSHA1}, method: AuthDigitalSignature, alg: "RSA-SHA1"},
	}
	for _, tt := range tests {
		key := testKey(t, tt.key)
		p := &PubKeyAuth{Key: key, RSAPSS: tt.pss, AllowSHA1: tt.sha1}
		auth, err := signAuth(p, octets, tt.hashes, rand.Reader)
		if err != nil {
			t.Errorf("%s %v: %v", tt.key, tt.hashes, err)
			continue
		}
		if auth.Method != tt.method {
			t.Errorf("%s %v: method %v, want %v", tt.key, tt.hashes, auth.Method, tt.method)
		}
		if tt.alg != "" {
			algID, _, err := ParseDigitalSignature(auth.Data)
			a, _ := parseSigAlg(algID)
			if err != nil || a.String() != tt.alg {
				t.Errorf("%s %v: algorithm %v (%v), want %s", tt.key, tt.hashes, a, err, tt.alg)
			}
		}
		if err := verifyAuth(p, key.Public(), auth, octets); err != nil {
			t.Errorf("%s %v: %v", tt.key, tt.hashes, err)
		}
		// Other octets, another key: refused.
		if verifyAuth(p, key.Public(), auth, append([]byte{1}, octets...)) == nil {
			t.Errorf("%s %v: verifies other octets", tt.key, tt.hashes)
		}
		other := testKey(t, map[string]string{"p256": "p256b", "p384": "p256b", "p521": "p256b", "rsa": "rsa2", "ed": "ed2"}[tt.key])
		if verifyAuth(p, other.Public(), auth, octets) == nil {
			t.Errorf("%s %v: verifies with another key", tt.key, tt.hashes)
		}
		// SHA-1 is refused without the opt-in, in both methods.
		if tt.sha1 {
			if err := verifyAuth(&PubKeyAuth{}, key.Public(), auth, octets); err == nil {
				t.Errorf("%s %v: SHA-1 accepted without AllowSHA1", tt.key, tt.hashes)
			}
		}
	}

	// What cannot be signed.
	for _, tt := range []struct {
		key    string
		hashes []HashAlgorithm
	}{
		{"ed", nil},                            // Ed25519 needs RFC 7427
		{"ed", []HashAlgorithm{HashSHA256}},    // and IDENTITY announced
		{"rsa", nil},                           // RSA_SIG is SHA-1: weak
		{"p256", []HashAlgorithm{HashSHA1}},    // only SHA-1 announced, not allowed
		{"rsa", []HashAlgorithm{HashIdentity}}, // nothing in common
	} {
		if a, err := signAuth(&PubKeyAuth{Key: testKey(t, tt.key)}, octets, tt.hashes, rand.Reader); err == nil {
			t.Errorf("%s %v: signed as %v", tt.key, tt.hashes, a.Method)
		}
	}

	// A P-256 key may not pass as ECDSA_SHA384_P384, nor an ECDSA
	// signature for an RSA key, nor a PSK MIC for a signature.
	p := &PubKeyAuth{Key: testKey(t, "p256")}
	auth, _ := signAuth(p, octets, nil, rand.Reader)
	auth.Method = AuthECDSASHA384P384
	if verifyAuth(p, p.Key.Public(), auth, octets) == nil {
		t.Error("ECDSA_SHA384_P384 accepted for a P-256 key")
	}
	auth, _ = signAuth(p, octets, all, rand.Reader)
	if verifyAuth(p, testKey(t, "rsa").Public(), auth, octets) == nil {
		t.Error("an ECDSA signature accepted for an RSA key")
	}
	if verifyAuth(p, p.Key.Public(), &AuthPayload{Method: AuthSharedKeyMIC, Data: make([]byte, 48)}, octets) == nil {
		t.Error("a PSK MIC accepted")
	}
}

// TestSignatureHashesNotify: the notify's data round-trips, and malformed
// data is refused.
func TestSignatureHashesNotify(t *testing.T) {
	n := SignatureHashesPayload([]HashAlgorithm{HashSHA256, HashSHA384, HashSHA512, HashIdentity})
	if !bytes.Equal(n.Data, hexOf(t, "0002 0003 0004 0005")) {
		t.Fatalf("% x", n.Data)
	}
	hs, err := ParseSignatureHashes(hexOf(t, "0002 0002 00ff 0005"))
	if err != nil || len(hs) != 3 || hs[2] != HashIdentity {
		t.Fatalf("%v %v", hs, err)
	}
	for _, bad := range []string{"", "02", "000200"} {
		if _, err := ParseSignatureHashes(hexOf(t, bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
