package esp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"testing"
)

// cbcVectors are the AES-CBC ESP packets of RFC 3602 §4, test cases #5 to
// #8 ("Sending 64 bytes", "Sending 28 bytes" of ICMP in transport mode,
// and the two tunnel-mode ones carrying IPv4), which RFC 3602 gives
// without an ICV. packet runs from the SPI to the end of the ciphertext;
// payload is the plaintext before the ESP trailer.
var cbcVectors = []struct {
	name, key, iv string
	spi           uint32
	seq           uint64
	nextHeader    byte
	payload       string
	packet        string
}{
	{
		name: "rfc3602#5", key: "90d382b410eeba7ad938c46cec1a82bf", iv: "e96e8c08ab465763fd098d45dd3ff893",
		spi: 0x4321, seq: 1, nextHeader: 1,
		payload: `08000ebda70a00008e9c083db95b0700 08090a0b0c0d0e0f1011121314151617
			18191a1b1c1d1e1f2021222324252627 28292a2b2c2d2e2f3031323334353637`,
		packet: `0000432100000001e96e8c08ab465763 fd098d45dd3ff893f663c25d325c18c6
			a9453e194e120849a4870b66cc6b9965 330013b4898dc856a4699e523a55db08
			0b59ec3a8e4b7e52775b07d1db34ed9c 538ab50c551b874aa269add047ad2d59
			13ac19b7cfbad4a6`,
	},
	{
		name: "rfc3602#6", key: "90d382b410eeba7ad938c46cec1a82bf", iv: "69d08df7d203329db093fc4924e5bd80",
		spi: 0x4321, seq: 8, nextHeader: 1,
		payload: `0800b5e8a80a0500a69c083d0b660e00 777777777777777777777777`,
		packet: `000043210000000869d08df7d203329d b093fc4924e5bd80f51995881ec4e0c4
			488987ce742e8109689bb379d2d750c0 d915dca346a89f75`,
	},
	{
		name: "rfc3602#7", key: "0123456789abcdef0123456789abcdef", iv: "f4e765244f6407adf13dc1380f673f37",
		spi: 0x8765, seq: 2, nextHeader: 4,
		payload: `45000054090400004001f988c0a87b03 c0a87bc808009f76a90a0100b49c083d
			02a2040008090a0b0c0d0e0f10111213 1415161718191a1b1c1d1e1f20212223
			2425262728292a2b2c2d2e2f30313233 34353637`,
		packet: `0000876500000002f4e765244f6407ad f13dc1380f673f37773b5241a4c44922
			5e4f3ce5ed611b0c237ca96cf74a9301 3c1b0ea1a0cf70f8e4ecaec78ac53aad
			7a0f022b859243c647752e94a859352b 8a4d4d2decd136e5c177f132ad3fbfb2
			201ac9904c74ee0a109e0ca1e4dfe9d5 a100b842f1c22f0d`,
	},
	{
		name: "rfc3602#8", key: "0123456789abcdef0123456789abcdef", iv: "85d47224b5f3dd5d2101d4ea8dffab22",
		spi: 0x8765, seq: 5, nextHeader: 4,
		payload: `45000044090c00004001f990c0a87b03 c0a87bc80800d63caa0a0200c69c083d
			a3de0300ffffffffffffffffffffffff ffffffffffffffffffffffffffffffff
			ffffffff`,
		packet: `000087650000000585d47224b5f3dd5d 2101d4ea8dffab2215b92683819596a8
			047232cc00f7048fe45318e11f8a0f62 ede3c3fc61203bb50f980a08c9843fd3
			a1b06d5c07ff9639b7eb7dfb3512e5de 435e7207ed971ef3d2726d9b5ef6affc
			6d17a0decbb13892`,
	},
}

// TestKATCBC seals each RFC 3602 payload with the RFC's IV and compares
// the packet byte for byte (framing, monotonic padding, CBC); RFC 3602
// sends no ICV, so the test adds HMAC-SHA-256-128 with a key of its own
// and checks that ICV against crypto/hmac over the RFC's packet
// (encrypt-then-MAC, RFC 4303 §3.3.2.1). Then SA.Open, which checks the
// ICV and decrypts, must give back the RFC's payload and next header.
func TestKATCBC(t *testing.T) {
	authKey := bytes.Repeat([]byte{0x5a}, 32)
	for _, v := range cbcVectors {
		t.Run(v.name, func(t *testing.T) {
			cfg := Config{SPI: v.spi, Algorithm: AES128CBC, Integrity: HMACSHA256_128,
				Key: unhex(t, v.key), AuthKey: authKey}
			sa, err := NewSA(cfg)
			if err != nil {
				t.Fatal(err)
			}
			payload := unhex(t, v.payload)
			h := sa.Headroom()
			b := make([]byte, h+len(payload), h+len(payload)+sa.TrailerLen(len(payload)))
			copy(b[h:], payload)
			// Seal's own steps, with the RFC's IV in place of the
			// generated one.
			b = b[:len(b)+sa.transform.padLen(len(payload))+2]
			tr := b[h+len(payload):]
			for i := range len(tr) - 2 {
				tr[i] = byte(i + 1)
			}
			tr[len(tr)-2], tr[len(tr)-1] = byte(len(tr)-2), v.nextHeader
			got := sa.crypt.(*macCryptor).sealWithIV(b, v.spi, v.seq, unhex(t, v.iv))

			want := unhex(t, v.packet)
			if !bytes.Equal(got[:len(got)-16], want) {
				t.Fatalf("sealed\n got %x\nwant %x", got[:len(got)-16], want)
			}
			mac := hmac.New(sha256.New, authKey)
			mac.Write(want)
			if icv := mac.Sum(nil)[:16]; !bytes.Equal(got[len(got)-16:], icv) {
				t.Fatalf("ICV %x, want %x", got[len(got)-16:], icv)
			}

			opened, nh, seq, err := sa.Open(bytes.Clone(got))
			if err != nil || seq != v.seq || nh != v.nextHeader || !bytes.Equal(opened, payload) {
				t.Fatalf("Open = %x, nh %d, seq %d, %v", opened, nh, seq, err)
			}
			// A flipped ciphertext bit fails the ICV before decryption.
			bad := bytes.Clone(got)
			bad[h] ^= 1
			if _, _, _, err := sa.Open(bad); err != ErrAuth {
				t.Fatalf("tampered: %v", err)
			}
		})
	}
}

// TestKATHMAC checks the truncated ICVs against published HMAC vectors:
// RFC 2202 §3 (HMAC-SHA-1, test cases 1, 2 and 5, the last one truncated
// to 96 bits by the RFC itself), RFC 4231 §4.3 (test case 2, SHA-256,
// -384, -512) and RFC 4868 §2.7.2 (the authentication vectors with keys
// as long as the hash output, "AUTH256-1", "AUTH384-1", "AUTH512-1",
// truncated as RFC 4868 §2.3 says).
func TestKATHMAC(t *testing.T) {
	tests := []struct {
		name  string
		integ Integrity
		key   string
		data  string // text
		mac   string // full HMAC output
	}{
		{"rfc2202-1", HMACSHA1_96, strings.Repeat("0b", 20), "Hi There", "b617318655057264e28bc0b6fb378c8ef146be00"},
		{"rfc2202-2", HMACSHA1_96, "4a656665", "what do ya want for nothing?", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
		{"rfc2202-5", HMACSHA1_96, strings.Repeat("0c", 20), "Test With Truncation", "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04"},
		{"rfc4231-2-sha256", HMACSHA256_128, "4a656665", "what do ya want for nothing?",
			"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
		{"rfc4231-2-sha384", HMACSHA384_192, "4a656665", "what do ya want for nothing?",
			"af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"},
		{"rfc4231-2-sha512", HMACSHA512_256, "4a656665", "what do ya want for nothing?",
			"164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"},
		{"rfc4868-AUTH256-1", HMACSHA256_128, strings.Repeat("0b", 32), "Hi There",
			"198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7"},
		{"rfc4868-AUTH256-2", HMACSHA256_128, strings.Repeat("4a656665", 8), "what do ya want for nothing?",
			"167f928588c5cc2eef8e3093caa0e87c9ff566a14794aa61648d81621a2a40c6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &macCryptor{icvLen: tt.integ.ICVLen()}
			c.scratch[0].mac = tt.integ.newMAC(unhex(t, tt.key))
			want := unhex(t, tt.mac)[:tt.integ.ICVLen()]
			// Twice: the second call runs from the saved keyed state.
			for range 2 {
				if got := c.icv(&c.scratch[0], []byte(tt.data), 0); !bytes.Equal(got, want) {
					t.Fatalf("ICV %x, want %x", got, want)
				}
			}
		})
	}
}

// TestCBCIV: the AES-CBC IV is neither the sequence number nor the same
// for two SAs with the same keys (RFC 3602 §2.3: unpredictable), and never
// repeats within an SA.
func TestCBCIV(t *testing.T) {
	tr := Transform{Algorithm: AES256CBC, Integrity: HMACSHA256_128}
	a, b := newTestSA(t, tr, false), newTestSA(t, tr, false)
	seen := map[string]bool{}
	for seq := uint64(1); seq <= 1000; seq++ {
		pa := sealPayload(a, []byte("x"), seq, 4)
		pb := sealPayload(b, []byte("x"), seq, 4)
		iv := string(pa[8:24])
		if seen[iv] || bytes.Equal(pa[8:24], pb[8:24]) {
			t.Fatalf("seq %d: IV %x repeats", seq, pa[8:24])
		}
		seen[iv] = true
		var plain [16]byte
		plain[7] = byte(seq)
		if bytes.Equal(pa[8:24], plain[:]) || bytes.Equal(pa[16:24], plain[:8]) {
			t.Fatalf("seq %d: IV is the sequence number", seq)
		}
	}
}

// TestESNInICV: with ESN the high 32 bits of the sequence number are in
// the ICV (RFC 4303 §3.3.2.1) but not on the wire, so a packet sealed with
// seq 2^32+5 does not open as seq 5 with the ESN counter in another
// subspace, and the packet is 4 bytes shorter than an ICV over them sent.
func TestESNInICV(t *testing.T) {
	tr := Transform{Algorithm: AES128CBC, Integrity: HMACSHA1_96}
	tx, rx := newTestSA(t, tr, true), newTestSA(t, tr, true)
	pkt := sealPayload(tx, []byte("payload"), 1<<32+5, 4)
	if len(pkt) != 24+16+12 {
		t.Fatalf("packet is %d bytes", len(pkt))
	}
	if _, _, _, err := rx.Open(bytes.Clone(pkt)); err != ErrAuth {
		t.Fatalf("opened with the wrong high bits: %v", err)
	}
	rx.Accept(1<<32, 0)
	if _, _, seq, err := rx.Open(bytes.Clone(pkt)); err != nil || seq != 1<<32+5 {
		t.Fatalf("Open = %d, %v", seq, err)
	}
}
