package ikecrypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"hash"
	"math"
	"sync"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// TestSKChaCha20Poly1305RFC7634 reproduces the IKEv2 example of RFC 7634
// Appendix B: an INFORMATIONAL request carrying a SET_WINDOW_SIZE notify,
// encrypted with ChaCha20-Poly1305. The expected message is the one of
// strongSwan src/libcharon/tests/suites/test_message_chapoly.c, which
// implements that appendix.
func TestSKChaCha20Poly1305RFC7634(t *testing.T) {
	key := unhex(t, `808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f a0a1a2a3`)
	want := unhex(t, `
		c0c1c2c3c4c5c6c7 d0d1d2d3d4d5d6d7 2e 20 25 00 00000009 00000045
		29 00 0029
		1011121314151617
		610394701f8d017f7c12924889
		6b71bfe25236efd7cdc67066906315b2`)
	// Inner payload: Notify, no next payload, length 12, protocol 0, SPI
	// size 0, SET_WINDOW_SIZE (16385), window size 10.
	inner := unhex(t, "00 00 000c 00 00 4001 0000000a")

	send, err := NewSKCipher(EncrChaCha20Poly1305, 0, IntegNone, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	send.(*skAEAD).nextIV.Store(0x1011121314151617)
	if got := send.SealedLen(len(inner)); got != len(want)-32 {
		t.Fatalf("SealedLen(%d) = %d, want %d", len(inner), got, len(want)-32)
	}
	msg := make([]byte, len(want))
	copy(msg, want[:32]) // IKE header and SK payload header
	copy(msg[32+send.IVLen():], inner)
	if err := send.Seal(msg, 32, len(inner)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(msg, want) {
		t.Fatalf("sealed\n%x\nwant\n%x", msg, want)
	}

	recv, err := NewSKCipher(EncrChaCha20Poly1305, 256, IntegNone, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := recv.Open(msg, 32)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, inner) {
		t.Errorf("opened %x, want %x", got, inner)
	}
}

type skSuite struct {
	name          string
	encr          uint16
	keyBits       int
	integ         uint16
	ivLen, icvLen int
	blockLen      int
	hash          func() hash.Hash // of the HMAC, for CBC
	encrLen, aLen int
}

var skSuites = []skSuite{
	{"AES-CBC-128/HMAC-SHA2-256-128", EncrAESCBC, 128, IntegHMACSHA2_256_128, 16, 16, 16, sha256.New, 16, 32},
	{"AES-CBC-256/HMAC-SHA2-256-128", EncrAESCBC, 256, IntegHMACSHA2_256_128, 16, 16, 16, sha256.New, 32, 32},
	{"AES-CBC-256/HMAC-SHA2-384-192", EncrAESCBC, 256, IntegHMACSHA2_384_192, 16, 24, 16, sha512.New384, 32, 48},
	{"AES-CBC-128/HMAC-SHA2-512-256", EncrAESCBC, 128, IntegHMACSHA2_512_256, 16, 32, 16, sha512.New, 16, 64},
	{"AES-GCM-16-128", EncrAESGCM16, 128, IntegNone, 8, 16, 1, nil, 20, 0},
	{"AES-GCM-16-256", EncrAESGCM16, 256, IntegNone, 8, 16, 1, nil, 36, 0},
	{"ChaCha20-Poly1305", EncrChaCha20Poly1305, 0, IntegNone, 8, 16, 1, nil, 36, 0},
}

func randBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// pair returns a sealing and an opening SKCipher of s under fresh keys,
// and the keys.
func (s skSuite) pair(t testing.TB) (send, recv SKCipher, ke, ka []byte) {
	t.Helper()
	el, il, err := KeyLens(s.encr, s.keyBits, s.integ)
	if err != nil {
		t.Fatal(err)
	}
	if el != s.encrLen || il != s.aLen {
		t.Fatalf("%s: KeyLens = %d, %d; want %d, %d", s.name, el, il, s.encrLen, s.aLen)
	}
	ke, ka = randBytes(t, el), randBytes(t, il)
	if send, err = NewSKCipher(s.encr, s.keyBits, s.integ, ke, ka); err != nil {
		t.Fatal(err)
	}
	if recv, err = NewSKCipher(s.encr, s.keyBits, s.integ, ke, ka); err != nil {
		t.Fatal(err)
	}
	return send, recv, ke, ka
}

// skMessage lays out an IKE message whose only payload is SK carrying
// inner, ready for Seal at the returned offset.
func skMessage(c SKCipher, inner []byte) ([]byte, int) {
	sealed := c.SealedLen(len(inner))
	msg := make([]byte, 28+4+sealed)
	copy(msg, "SPIiSPIiSPIrSPIr")
	msg[16] = 46 // SK
	msg[17] = 0x20
	msg[18] = 35 // IKE_AUTH
	msg[19] = 0x08
	binary.BigEndian.PutUint32(msg[20:], 1)
	binary.BigEndian.PutUint32(msg[24:], uint32(len(msg)))
	msg[28] = 35 // IDi
	binary.BigEndian.PutUint16(msg[30:], uint16(4+sealed))
	copy(msg[32+c.IVLen():], inner)
	return msg, 32
}

var innerLens = []int{0, 1, 2, 14, 15, 16, 17, 31, 32, 33, 100, 1000}

func TestSKRoundTrip(t *testing.T) {
	for _, s := range skSuites {
		t.Run(s.name, func(t *testing.T) {
			send, recv, _, _ := s.pair(t)
			if send.IVLen() != s.ivLen || send.ICVLen() != s.icvLen || send.BlockLen() != s.blockLen {
				t.Fatalf("IVLen %d ICVLen %d BlockLen %d", send.IVLen(), send.ICVLen(), send.BlockLen())
			}
			for _, n := range innerLens {
				inner := randBytes(t, n)
				msg, off := skMessage(send, inner)
				if err := send.Seal(msg, off, n); err != nil {
					t.Fatalf("n=%d: %v", n, err)
				}
				if bytes.Contains(msg, inner) && n >= 16 {
					t.Fatalf("n=%d: plaintext visible in sealed message", n)
				}
				got, err := recv.Open(msg, off)
				if err != nil {
					t.Fatalf("n=%d: %v", n, err)
				}
				if !bytes.Equal(got, inner) {
					t.Fatalf("n=%d: opened %x, want %x", n, got, inner)
				}
				if n > 0 && &got[0] != &msg[off+s.ivLen] {
					t.Errorf("n=%d: Open did not decrypt in place", n)
				}
			}
		})
	}
}

// TestSKTamper flips every bit position's byte of a sealed message, and
// truncates it: everything from the IKE header to the ICV is authenticated.
func TestSKTamper(t *testing.T) {
	for _, s := range skSuites {
		t.Run(s.name, func(t *testing.T) {
			send, recv, _, _ := s.pair(t)
			inner := randBytes(t, 40)
			msg, off := skMessage(send, inner)
			if err := send.Seal(msg, off, len(inner)); err != nil {
				t.Fatal(err)
			}
			for i := range msg {
				for _, bit := range []byte{0x01, 0x80} {
					bad := append([]byte(nil), msg...)
					bad[i] ^= bit
					if _, err := recv.Open(bad, off); !errors.Is(err, ErrIntegrity) {
						t.Fatalf("byte %d ^ %#x: Open error %v, want ErrIntegrity", i, bit, err)
					}
				}
			}
			for _, n := range []int{1, s.icvLen, s.blockLen} {
				if _, err := recv.Open(append([]byte(nil), msg[:len(msg)-n]...), off); err == nil {
					t.Errorf("message truncated by %d opened", n)
				}
			}
			// The AAD is the header up to the IV: opening at another offset fails.
			if _, err := recv.Open(append([]byte(nil), msg...), off-4); err == nil {
				t.Error("opened with the wrong data offset")
			}
			// A key of the other direction does not open it.
			_, other, _, _ := s.pair(t)
			if _, err := other.Open(append([]byte(nil), msg...), off); !errors.Is(err, ErrIntegrity) {
				t.Errorf("other key: %v", err)
			}
			// The untampered message still opens.
			if got, err := recv.Open(msg, off); err != nil || !bytes.Equal(got, inner) {
				t.Errorf("Open after tampering copies: %x, %v", got, err)
			}
		})
	}
}

// TestSKLayout decrypts sealed messages with crypto/cipher directly, to
// check the wire layout: for the AEADs nonce = salt | IV and AAD =
// everything before the IV (RFC 5282 §4, §5.1; RFC 7634 §2, §3), no
// padding; for AES-CBC the ICV is the truncated HMAC of the message up to
// the ICV and the padding is minimal (RFC 7296 §3.14).
func TestSKLayout(t *testing.T) {
	for _, s := range skSuites {
		t.Run(s.name, func(t *testing.T) {
			send, _, ke, ka := s.pair(t)
			for _, n := range innerLens {
				inner := randBytes(t, n)
				msg, off := skMessage(send, inner)
				if err := send.Seal(msg, off, n); err != nil {
					t.Fatal(err)
				}
				data := msg[off:]
				iv := data[:s.ivLen]
				body := data[s.ivLen:]
				var plain []byte
				if s.integ == IntegNone {
					var aead cipher.AEAD
					var err error
					if s.encr == EncrAESGCM16 {
						block, _ := aes.NewCipher(ke[:len(ke)-4])
						aead, err = cipher.NewGCM(block)
					} else {
						aead, err = chacha20poly1305.New(ke[:32])
					}
					if err != nil {
						t.Fatal(err)
					}
					nonce := append(append([]byte(nil), ke[len(ke)-4:]...), iv...)
					plain, err = aead.Open(nil, nonce, body, msg[:off])
					if err != nil {
						t.Fatalf("n=%d: independent AEAD open: %v", n, err)
					}
					if len(plain) != n+1 || plain[n] != 0 {
						t.Fatalf("n=%d: AEAD plaintext %x, want payloads and pad length 0", n, plain)
					}
				} else {
					icvOff := len(msg) - s.icvLen
					m := hmac.New(s.hash, ka)
					m.Write(msg[:icvOff])
					if want := m.Sum(nil)[:s.icvLen]; !bytes.Equal(msg[icvOff:], want) {
						t.Fatalf("n=%d: ICV %x, want %x", n, msg[icvOff:], want)
					}
					block, _ := aes.NewCipher(ke)
					plain = append([]byte(nil), body[:len(body)-s.icvLen]...)
					if len(plain)%16 != 0 {
						t.Fatalf("n=%d: encrypted part of %d bytes", n, len(plain))
					}
					cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, plain)
					pad := int(plain[len(plain)-1])
					if pad > 15 || n+pad+1 != len(plain) {
						t.Fatalf("n=%d: pad length %d in %d bytes", n, pad, len(plain))
					}
					if !bytes.Equal(plain[n:n+pad], make([]byte, pad)) {
						t.Errorf("n=%d: padding %x", n, plain[n:n+pad])
					}
				}
				if !bytes.Equal(plain[:n], inner) {
					t.Fatalf("n=%d: decrypted %x, want %x", n, plain[:n], inner)
				}
			}
		})
	}
}

// sealRaw builds a correctly authenticated SK message around an arbitrary
// encrypted part, with crypto/cipher directly, to test what Open does with
// a bad pad length.
func sealRaw(t *testing.T, s skSuite, ke, ka, encPart []byte) ([]byte, int) {
	hdr := make([]byte, 32)
	hdr[17] = 0x20
	var body []byte
	if s.integ == IntegNone {
		var aead cipher.AEAD
		if s.encr == EncrAESGCM16 {
			block, _ := aes.NewCipher(ke[:len(ke)-4])
			aead, _ = cipher.NewGCM(block)
		} else {
			aead, _ = chacha20poly1305.New(ke[:32])
		}
		iv := make([]byte, 8)
		nonce := append(append([]byte(nil), ke[len(ke)-4:]...), iv...)
		body = append(iv, aead.Seal(nil, nonce, encPart, hdr)...)
		return append(hdr, body...), 32
	}
	block, _ := aes.NewCipher(ke)
	iv := make([]byte, 16)
	ct := append([]byte(nil), encPart...)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)
	msg := append(append(hdr, iv...), ct...)
	m := hmac.New(s.hash, ka)
	m.Write(msg)
	return append(msg, m.Sum(nil)[:s.icvLen]...), 32
}

func TestSKOpenMalformed(t *testing.T) {
	for _, s := range skSuites {
		t.Run(s.name, func(t *testing.T) {
			_, recv, ke, ka := s.pair(t)
			// Pad length one more than the bytes before it.
			enc := make([]byte, 16)
			enc[15] = 16
			msg, off := sealRaw(t, s, ke, ka, enc)
			if _, err := recv.Open(msg, off); err == nil || errors.Is(err, ErrIntegrity) {
				t.Errorf("pad length 16 in 16 bytes: %v", err)
			}
			// The largest pad length that fits is fine: no payloads.
			enc[15] = 15
			msg, off = sealRaw(t, s, ke, ka, enc)
			if got, err := recv.Open(msg, off); err != nil || len(got) != 0 {
				t.Errorf("pad length 15 in 16 bytes: %x, %v", got, err)
			}
			// Too short to hold IV, one octet and ICV.
			for n := 0; n < s.ivLen+s.blockLen+s.icvLen; n++ {
				short := make([]byte, 32+n)
				if _, err := recv.Open(short, 32); err == nil {
					t.Errorf("%d bytes of SK data opened", n)
				}
			}
			for _, off := range []int{-1, 100} {
				if _, err := recv.Open(make([]byte, 64), off); err == nil {
					t.Errorf("offset %d accepted", off)
				}
			}
			if s.blockLen > 1 {
				// Encrypted part not a multiple of the block size.
				odd := make([]byte, 32+s.ivLen+17+s.icvLen)
				if _, err := recv.Open(odd, 32); err == nil {
					t.Error("17-byte CBC ciphertext accepted")
				}
			}
		})
	}
}

func TestSKSealArguments(t *testing.T) {
	for _, s := range skSuites {
		send, _, _, _ := s.pair(t)
		msg, off := skMessage(send, make([]byte, 20))
		for _, c := range []struct {
			msg    []byte
			off, n int
		}{
			{msg, off, 20 + s.blockLen},
			{msg, off, 19 - s.blockLen},
			{msg, off, -1},
			{msg, -1, 20},
			{msg, len(msg) + 1, 20},
			{msg[:len(msg)-1], off, 20},
			{append(msg, 0), off, 20},
		} {
			if err := send.Seal(c.msg, c.off, c.n); err == nil {
				t.Errorf("%s: Seal(%d bytes, %d, %d) succeeded", s.name, len(c.msg), c.off, c.n)
			}
		}
	}
}

func TestSKSealedLen(t *testing.T) {
	for _, s := range skSuites {
		send, _, _, _ := s.pair(t)
		for n := 0; n < 200; n++ {
			l := send.SealedLen(n)
			enc := l - s.ivLen - s.icvLen
			if enc < n+1 || enc%s.blockLen != 0 || enc-n-1 >= s.blockLen {
				t.Fatalf("%s: SealedLen(%d) = %d", s.name, n, l)
			}
			if m := send.MaxPlaintextLen(l); m < n || send.SealedLen(m) != l {
				t.Fatalf("%s: MaxPlaintextLen(SealedLen(%d)) = %d", s.name, n, m)
			}
			if m := send.MaxPlaintextLen(l - 1); m >= n {
				t.Fatalf("%s: MaxPlaintextLen(%d) = %d", s.name, l-1, m)
			}
		}
		if m := send.MaxPlaintextLen(s.ivLen + s.icvLen); m != -1 {
			t.Errorf("%s: MaxPlaintextLen of IV and ICV only = %d", s.name, m)
		}
	}
}

func TestSKAEADIVCounter(t *testing.T) {
	for _, s := range skSuites {
		if s.integ != IntegNone {
			continue
		}
		send, recv, _, _ := s.pair(t)
		for want := uint64(0); want < 3; want++ {
			msg, off := skMessage(send, []byte("same payloads"))
			if err := send.Seal(msg, off, 13); err != nil {
				t.Fatal(err)
			}
			if iv := binary.BigEndian.Uint64(msg[off:]); iv != want {
				t.Errorf("%s: IV %d, want %d", s.name, iv, want)
			}
		}
		send.(*skAEAD).nextIV.Store(math.MaxUint64 - 1)
		msg, off := skMessage(send, []byte("last"))
		if err := send.Seal(msg, off, 4); err != nil {
			t.Fatalf("%s: last IV: %v", s.name, err)
		}
		if _, err := recv.Open(msg, off); err != nil {
			t.Errorf("%s: last IV: %v", s.name, err)
		}
		msg, off = skMessage(send, []byte("over"))
		if err := send.Seal(msg, off, 4); err == nil {
			t.Errorf("%s: Seal after the last IV succeeded", s.name)
		}
	}
}

// TestSKConcurrentSeal seals from several goroutines: every IV is used once.
func TestSKConcurrentSeal(t *testing.T) {
	for _, s := range skSuites {
		send, recv, _, _ := s.pair(t)
		const workers, each = 4, 50
		ivs := make(chan string, workers*each)
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					msg, off := skMessage(send, []byte("concurrent"))
					if err := send.Seal(msg, off, 10); err != nil {
						t.Error(err)
						return
					}
					if _, err := recv.Open(append([]byte(nil), msg...), off); err != nil {
						t.Error(err)
						return
					}
					ivs <- string(msg[off : off+s.ivLen])
				}
			}()
		}
		wg.Wait()
		close(ivs)
		seen := map[string]bool{}
		for iv := range ivs {
			if seen[iv] {
				t.Fatalf("%s: IV %x used twice", s.name, iv)
			}
			seen[iv] = true
		}
	}
}

func TestSKCBCRandomIV(t *testing.T) {
	send, _, _, _ := skSuites[1].pair(t)
	send.(*skCBC).rand = failReader{}
	msg, off := skMessage(send, []byte("x"))
	if err := send.Seal(msg, off, 1); err == nil {
		t.Error("Seal with a failing random source succeeded")
	}
}

func TestKeyLens(t *testing.T) {
	for _, c := range []struct {
		encr    uint16
		keyBits int
		integ   uint16
		el, il  int
		ok      bool
	}{
		{EncrAESCBC, 128, IntegHMACSHA2_256_128, 16, 32, true},
		{EncrAESCBC, 192, IntegHMACSHA2_384_192, 24, 48, true},
		{EncrAESCBC, 256, IntegHMACSHA2_512_256, 32, 64, true},
		{EncrAESCBC, 0, IntegHMACSHA2_256_128, 0, 0, false}, // Key Length is mandatory
		{EncrAESCBC, 256, IntegNone, 0, 0, false},           // CBC needs integrity
		{EncrAESCBC, 256, 2, 32, 20, true},                  // AUTH_HMAC_SHA1_96 (for old peers)
		{EncrAESCBC, 512, IntegHMACSHA2_256_128, 0, 0, false},
		{EncrAESGCM16, 128, IntegNone, 20, 0, true},
		{EncrAESGCM16, 256, IntegNone, 36, 0, true},
		{EncrAESGCM16, 256, IntegHMACSHA2_256_128, 0, 0, false}, // RFC 5282 §8
		{EncrAESGCM16, 0, IntegNone, 0, 0, false},
		{EncrChaCha20Poly1305, 0, IntegNone, 36, 0, true},
		{EncrChaCha20Poly1305, 256, IntegNone, 36, 0, true},
		{EncrChaCha20Poly1305, 128, IntegNone, 0, 0, false},
		{EncrChaCha20Poly1305, 0, IntegHMACSHA2_256_128, 0, 0, false},
		{3, 0, IntegHMACSHA2_256_128, 0, 0, false}, // 3DES
		{18, 128, IntegNone, 0, 0, false},          // AES-GCM with 8-octet ICV
	} {
		el, il, err := KeyLens(c.encr, c.keyBits, c.integ)
		if (err == nil) != c.ok || el != c.el || il != c.il {
			t.Errorf("KeyLens(%d, %d, %d) = %d, %d, %v", c.encr, c.keyBits, c.integ, el, il, err)
		}
		if !c.ok {
			if _, err := NewSKCipher(c.encr, c.keyBits, c.integ, make([]byte, 32), make([]byte, 32)); err == nil {
				t.Errorf("NewSKCipher(%d, %d, %d) succeeded", c.encr, c.keyBits, c.integ)
			}
			continue
		}
		if _, err := NewSKCipher(c.encr, c.keyBits, c.integ, make([]byte, el+1), make([]byte, il)); err == nil {
			t.Errorf("NewSKCipher(%d, %d, %d) with a long key succeeded", c.encr, c.keyBits, c.integ)
		}
		if _, err := NewSKCipher(c.encr, c.keyBits, c.integ, make([]byte, el), make([]byte, il+1)); err == nil {
			t.Errorf("NewSKCipher(%d, %d, %d) with a long integrity key succeeded", c.encr, c.keyBits, c.integ)
		}
	}
}

// TestSKWithKeySchedule runs a whole IKE SA key setup: both peers agree on
// a Curve25519 secret, derive the keys, and each opens what the other sealed.
func TestSKWithKeySchedule(t *testing.T) {
	prf := mustPRF(t, PRFHMACSHA2_384)
	i, _ := GenerateDH(GroupCurve25519, nil)
	r, _ := GenerateDH(GroupCurve25519, nil)
	ni, nr := randBytes(t, 32), randBytes(t, 32)
	spii, spir := randBytes(t, 8), randBytes(t, 8)
	derive := func(own DH, peer []byte) IKESAKeys {
		gir, err := own.SharedSecret(peer)
		if err != nil {
			t.Fatal(err)
		}
		el, il, _ := KeyLens(EncrAESCBC, 256, IntegHMACSHA2_384_192)
		return DeriveIKESAKeys(prf, SKEYSEED(prf, ni, nr, gir), ni, nr, spii, spir, el, il)
	}
	ki, kr := derive(i, r.Public()), derive(r, i.Public())
	iOut, iIn, err := ki.Ciphers(true, EncrAESCBC, 256, IntegHMACSHA2_384_192)
	if err != nil {
		t.Fatal(err)
	}
	rOut, rIn, err := kr.Ciphers(false, EncrAESCBC, 256, IntegHMACSHA2_384_192)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ki.Ciphers(true, EncrAESGCM16, 256, IntegNone); err == nil {
		t.Error("Ciphers accepted transforms the keys were not derived for")
	}
	for _, c := range []struct{ out, in SKCipher }{{iOut, rIn}, {rOut, iIn}} {
		msg, off := skMessage(c.out, []byte("IDi AUTH SA TSi TSr"))
		if err := c.out.Seal(msg, off, 19); err != nil {
			t.Fatal(err)
		}
		if got, err := c.in.Open(msg, off); err != nil || string(got) != "IDi AUTH SA TSi TSr" {
			t.Fatalf("%q, %v", got, err)
		}
	}
	// The directions use different keys.
	msg, off := skMessage(iOut, []byte("x"))
	_ = iOut.Seal(msg, off, 1)
	if _, err := iIn.Open(msg, off); err == nil {
		t.Error("initiator opened its own message with the responder's keys")
	}
}
