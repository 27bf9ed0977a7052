package ikecrypto

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// unhex decodes hex, ignoring white space.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

func mustPRF(t testing.TB, id uint16) PRF {
	t.Helper()
	p, err := NewPRF(id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The PRF test vectors of RFC 4868 §2.7.1 (which repeat those of RFC 4231
// §4), except the ones with the 4-octet key "Jefe", as transcribed in
// strongSwan src/libstrongswan/plugins/test_vectors/test_vectors/sha2_hmac.c.
var rfc4868PRFTests = []struct {
	key, data      []byte
	out256, out384 string
	out512         string
}{
	{ // 20-octet key, "Hi There"
		key:    bytes.Repeat([]byte{0x0b}, 20),
		data:   []byte("Hi There"),
		out256: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
		out384: "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c" +
			"faea9ea9076ede7f4af152e8b2fa9cb6",
		out512: "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde" +
			"daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
	},
	{ // 20-octet key, 50 octets of 0xdd
		key:    bytes.Repeat([]byte{0xaa}, 20),
		data:   bytes.Repeat([]byte{0xdd}, 50),
		out256: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
		out384: "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b" +
			"2a5ab39dc13814b94e3ab6e101a34f27",
		out512: "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39" +
			"bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb",
	},
	{ // 25-octet key, 50 octets of 0xcd
		key: []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
			0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14,
			0x15, 0x16, 0x17, 0x18, 0x19},
		data:   bytes.Repeat([]byte{0xcd}, 50),
		out256: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
		out384: "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e" +
			"6801dd23c4a7d679ccf8a386c674cffb",
		out512: "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3db" +
			"a91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd",
	},
	{ // key larger than the block
		key:    bytes.Repeat([]byte{0xaa}, 131),
		data:   []byte("Test Using Larger Than Block-Size Key - Hash Key First"),
		out256: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
		out384: "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6" +
			"0c2ef6ab4030fe8296248df163f44952",
		out512: "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352" +
			"6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
	},
	{ // key and data larger than the block
		key: bytes.Repeat([]byte{0xaa}, 131),
		data: []byte("This is a test using a larger than block-size key and a larger " +
			"than block-size data. The key needs to be hashed before being " +
			"used by the HMAC algorithm."),
		out256: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
		out384: "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5" +
			"a678cc31e799176d3860e6110c46523e",
		out512: "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944" +
			"b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58",
	},
}

func TestPRFRFC4868(t *testing.T) {
	for i, tc := range rfc4868PRFTests {
		for _, c := range []struct {
			id   uint16
			want string
		}{
			{PRFHMACSHA2_256, tc.out256},
			{PRFHMACSHA2_384, tc.out384},
			{PRFHMACSHA2_512, tc.out512},
		} {
			p := mustPRF(t, c.id)
			got := p.Compute(tc.key, tc.data)
			if want := unhex(t, c.want); !bytes.Equal(got, want) {
				t.Errorf("case %d %v: got %x, want %x", i, p, got, want)
			}
			if len(got) != p.Size() {
				t.Errorf("%v: output %d bytes, Size %d", p, len(got), p.Size())
			}
		}
	}
}

// The authenticator test vectors of RFC 4868 §2.7.2 (keys of the full hash
// length, output truncated to half of it), as transcribed in strongSwan's
// sha2_hmac.c.
func TestIntegRFC4868(t *testing.T) {
	jefe := func(n int) []byte { return bytes.Repeat([]byte("Jefe"), n/4) }
	tests := []struct {
		id   uint16
		key  []byte
		data []byte
		want string
	}{
		{IntegHMACSHA2_256_128, bytes.Repeat([]byte{0x0b}, 32), []byte("Hi There"),
			"198a607eb44bfbc69903a0f1cf2bbdc5"},
		{IntegHMACSHA2_384_192, bytes.Repeat([]byte{0x0b}, 48), []byte("Hi There"),
			"b6a8d5636f5c6a7224f9977dcf7ee6c7fb6d0c48cbdee973"},
		{IntegHMACSHA2_512_256, bytes.Repeat([]byte{0x0b}, 64), []byte("Hi There"),
			"637edc6e01dce7e6742a99451aae82df23da3e92439e590e43e761b33e910fb8"},
		{IntegHMACSHA2_256_128, jefe(32), []byte("what do ya want for nothing?"),
			"167f928588c5cc2eef8e3093caa0e87c"},
		{IntegHMACSHA2_384_192, jefe(48), []byte("what do ya want for nothing?"),
			"2c7353974f1842fd66d53c452ca42122b28c0b594cfb184d"},
		{IntegHMACSHA2_512_256, jefe(64), []byte("what do ya want for nothing?"),
			"cb370917ae8a7ce28cfd1d8f4705d6141c173b2a9362c15df235dfb251b15454"},
		{IntegHMACSHA2_256_128, bytes.Repeat([]byte{0xaa}, 32), bytes.Repeat([]byte{0xdd}, 50),
			"cdcb1220d1ecccea91e53aba3092f962"},
		{IntegHMACSHA2_384_192, bytes.Repeat([]byte{0xaa}, 48), bytes.Repeat([]byte{0xdd}, 50),
			"809f439be00274321d4a538652164b53554a508184a0c316"},
		{IntegHMACSHA2_512_256, bytes.Repeat([]byte{0xaa}, 64), bytes.Repeat([]byte{0xdd}, 50),
			"2ee7acd783624ca9398710f3ee05ae41b9f9b0510c87e49e586cc9bf961733d8"},
	}
	for i, tc := range tests {
		a, ok := integByID(tc.id)
		if !ok {
			t.Fatalf("integ %d not supported", tc.id)
		}
		if len(tc.key) != a.keyLen {
			t.Fatalf("case %d: key %d bytes, keyLen %d", i, len(tc.key), a.keyLen)
		}
		if got, want := a.mac(tc.key, tc.data), unhex(t, tc.want); !bytes.Equal(got, want) {
			t.Errorf("case %d (integ %d): got %x, want %x", i, tc.id, got, want)
		}
	}
}

// TestPRFPlus checks prf+ (RFC 7296 §2.13) with PRF_HMAC_SHA2_256 against
// the vector of strongSwan src/libstrongswan/tests/suites/test_prf_plus.c
// ("counter" data: key 0x0b * 20, seed "Hi There"), whose successive reads
// concatenate to these 122 bytes.
func TestPRFPlus(t *testing.T) {
	p := mustPRF(t, PRFHMACSHA2_256)
	key := bytes.Repeat([]byte{0x0b}, 20)
	seed := []byte("Hi There")
	want := unhex(t, `
		b9bdc0
		8988b4c2b75a
		a93e596ac84205
		fa2ddde1bf7a2572067b00e14b237732
		830509981ad2f94a
		8c32a47daa2255b6
		60c436347ae756a6edc023477d80
		9590e682f61d9c04b06b4ad971a34c8147fa6679
		2ff1434b93c722b32e12f48832ebc15ce2369ce71fe9b7b81e5704c14d0f5280a6ec626e992d7a9f`)
	if len(want) != 122 {
		t.Fatalf("vector is %d bytes", len(want))
	}
	if got := p.Plus(key, seed, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("prf+:\n got %x\nwant %x", got, want)
	}
	// Shorter outputs are prefixes; T1 is prf(K, S | 0x01).
	for _, n := range []int{0, 1, 31, 32, 33, 64, 121} {
		if got := p.Plus(key, seed, n); !bytes.Equal(got, want[:n]) || cap(got) != n {
			t.Errorf("prf+ of %d bytes: got %x (cap %d)", n, got, cap(got))
		}
	}
	t1 := p.Compute(key, append(append([]byte(nil), seed...), 1))
	if !bytes.Equal(t1, want[:32]) {
		t.Errorf("T1 = %x, want %x", t1, want[:32])
	}
	t2 := p.Compute(key, append(append(append([]byte(nil), t1...), seed...), 2))
	if !bytes.Equal(t2, want[32:64]) {
		t.Errorf("T2 = %x, want %x", t2, want[32:64])
	}
}

func TestPRFPlusLimit(t *testing.T) {
	for _, id := range []uint16{PRFHMACSHA2_256, PRFHMACSHA2_384, PRFHMACSHA2_512} {
		p := mustPRF(t, id)
		if p.MaxPlusLen() != 255*p.Size() {
			t.Errorf("%v: MaxPlusLen %d", p, p.MaxPlusLen())
		}
		// The last block uses counter 0xff.
		full := p.Plus([]byte("k"), []byte("s"), p.MaxPlusLen())
		last := full[len(full)-p.Size():]
		prev := full[len(full)-2*p.Size() : len(full)-p.Size()]
		if want := p.Compute([]byte("k"), append(append(append([]byte(nil), prev...), 's'), 0xff)); !bytes.Equal(last, want) {
			t.Errorf("%v: T255 = %x, want %x", p, last, want)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%v: prf+ beyond 255 blocks did not panic", p)
				}
			}()
			p.Plus([]byte("k"), []byte("s"), p.MaxPlusLen()+1)
		}()
	}
}

func TestNewPRF(t *testing.T) {
	for _, c := range []struct {
		id   uint16
		size int
		name string
	}{
		{PRFHMACSHA2_256, 32, "PRF_HMAC_SHA2_256"},
		{PRFHMACSHA2_384, 48, "PRF_HMAC_SHA2_384"},
		{PRFHMACSHA2_512, 64, "PRF_HMAC_SHA2_512"},
	} {
		p := mustPRF(t, c.id)
		if p.ID() != c.id || p.Size() != c.size || p.String() != c.name {
			t.Errorf("NewPRF(%d) = %v id %d size %d", c.id, p, p.ID(), p.Size())
		}
	}
	for _, id := range []uint16{0, 1, 4, 8, 9} { // MD5, AES128_XCBC, ... (SHA1: TestSHA1Transforms)
		if _, err := NewPRF(id); err == nil {
			t.Errorf("NewPRF(%d) succeeded", id)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("zero PRF did not panic")
		}
	}()
	var zero PRF
	zero.Compute(nil, nil)
}
