package ikecrypto

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha512"
	"testing"
)

// ikev2KDFVector is a NIST SP 800-135 IKEv2 KDF test case: SKEYSEED,
// DKM = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr), DKM(Child SA) =
// prf+(SK_d, Ni | Nr), DKM(Child SA D-H) = prf+(SK_d, g^ir (new) | Ni | Nr)
// and SKEYSEED(Rekey) = prf(SK_d, g^ir (new) | Ni | Nr), where SK_d is the
// first prf-size octets of DKM.
type ikev2KDFVector struct {
	source               string
	prf                  uint16
	ni, nr, gir, girNew  string
	spii, spir           string
	skeyseed, dkm        string
	dkmChild, dkmChildDH string // empty if the source has none
	skeyseedRekey        string
	childDKMLen          int
}

var ikev2KDFVectors = []ikev2KDFVector{
	{
		// NIST ACVP-Server, crypto/test/NIST.CVP.Crypto.IKEv2.Tests/IKEv2Tests.cs,
		// test case "IKEv2 SHA2-256" (DKM length 3072 bits).
		source: "NIST ACVP IKEv2 SHA2-256",
		prf:    PRFHMACSHA2_256,
		ni: `0a58fea9c1d4fee2e74e1aad6fb02dd5f318eb127465a112be8dc3c04d5dba62eae708f9dc1b2362afd6ba4bda3cf500
			0f4979fbcbadbcfda9291593829c4e905c21db0c2ee15175ce77a8a0dadf25c7f175bc53fd91b636a9b3c50b203de9b9
			d6dc463dcb4048f101e26498ceaed3afbcd931394a7e099392dfff82e5d6fa85c2e8a8ab90ad363a66795dc32798847e
			405acd87988140f973058917273a6b0bafb962c75e2b1a21e79c08beeb82168bf8b4b57f3dce867bf7862a7b8acbc21b
			e838021913daf64340c055ed17aaf7b6e1d0ca33ae890ddbdb83f4e615aad5e3bff58c3db70bac81a0dfbabe5391fc62
			bca4659e22a0741e01d8d06e67d9bb41`,
		nr: `e4fdfa68df6171d9eaff8b7b5ad31e7c6098d259f3397c9854cbefe7449b0864c1df16ddece8b26567560f8d59182a44
			c19149c2d0d72606a160021ade3d23c7c6936c91a4b6bec37adf38cfc84b851c68dcee06f81306f63abbefc07e231e30
			58c49437a557df617eac01663593d2a3e594699284c0a35eae6931492ccb2a43db72a600a3899205d681d2b76b1280e4
			56339bb10e0c584aecfdae31c77a4c40dbcb345f782ac32835d4c220c1e97254ded6a40075dd717b00b69c86a49e8017
			73026536ae02d58a649827f1ba67610ee936dffd11c9d5a9156631916a0a0046ec0ba42f56f2a18de83d5d71a985b0cc
			9eec2c06b3d907ca58454419f374069d`,
		gir:      "9d469de41b4739c7dd01f19aa94f17e48150ae9dbede94832142db19",
		girNew:   "c2987b0767006c3b9aea491bfed1646a3d7194639492b8d45b23b383",
		spii:     "c8de93111750e409",
		spir:     "32d51b33508997fa",
		skeyseed: "eec13ac67c2e072abb684ab4e7b6ce3e7f400af8b96bed48e113497ed337f8d4",
		dkm: `bc83518f63b762874ac57947cdfae33a8d9724df0b83ee4b6df38c23fc2ad829f4d70b5a68dd1f5a52416f09758638ae
			df919c09a17c5298cdb703bb75b1005cba0109739aaa4efd2fe7534c95ad05e546e4419931270eddcab68ac1589d7fde
			47f5b9e8d5b614cb24ec3caf515497a9e99ee6f1b318ff153b539ef071dcaff9b41945dcb780700d69e5dc888a91de19
			5c52825badfd0ab4c33cec71ab5c2b4badefe5455455ce5d8ae91721a2091bcccc1514e69482c9c8da1d9f0f187eedda
			916393570a8c0a8dfabc26d8ed31e8ea47662515972a22d11d692bc1fac6395aecd82a01ab78daafcd6f3070b1201f15
			8a19331b5d21ceee66fccd2ea37bc07648b9539a52dbf797af53e31a0e8706dd86cf5081ebabd095f281d23c222dd3bc
			5abf06869017ca8f751cafcc85abea6ba88c139d1f32a12f7f486cf57eae5d85551b97f3963616d8f597c70efa98c1e1
			fa369fb77a80b1ec5fe533890672c4551172eab1b7fd68ad08c4d4c69f2a867302065ca730aa6915bc2cfb6d93820977`,
		dkmChild: `c725012285d56e53244a9baaaf95abfca543708d333a3f3a86ba660e00edd4d489bcd631819fda0413382edd9f53d1ed
			718e056c2ad91d38de90f06cd434de70141d051c021e7ddd6e4137946b4770dca59a4decabdd866852eb557fdd995646
			613ff2923f5f23aa58c8fbd5ad52cf2eac9bda97faad5596695f4a747a0f1cc6a1f78b2181138fb19ac24574d2e6b3a4
			0d6e688abb919a27d793b76568ec66bd099f6f476b705c1472d774a1516a11311b887688f36649e24227640ea8d8666b
			9f452217e7103b6f0a92b6adb8fbda650ba58d6ac13ac6f6b6361a5d1c44f1e9f22196c96295115c5d01a120e7265962
			d20353a049286908da776c2165f706a16f43d85fcd319f89c4386340bcb8ed10df38345cb68af719abaf997e9789a5f1
			9a392dcecd78168ba282f0b30555c7a47031a3156d12d7158aa41b863b8394d30fec63120e89cbc5750eed7786f7d596
			1b1f2e6faca641ed776d2211bee757b68b77f94056172553715da9fbd1c9a8728f28a2f3c9714a4917490132562484cd`,
		dkmChildDH: `140a1f2a3c94318ece6edfa8c63f37d8d45982de8b6cbfe34011150db0253e34de3796d4aa579954a0bbf234794eb6e7
			ece2a8f91100f5507df4ee8e66c7813d4c0ff64d484a3494c54b0d9c605ea24234a49a010ce5c352feb9e1060c8c7872
			29466296cdc9d11bb9d221ed2bb39544572464254ec02a0fbe777b07402c775eb6d3e53cd16214c707f851942cc7da92
			a811b6c5c82f29d9fc3751b0ebff9898fb14372402a6989ffb9cc32dfe7e2cea32fd882e09804d7fea34ce3b5eb6f303
			e095c48a452b0a3eccada81af22195ebbaad289aeabdab074c94e751496bde39d868ebf1d693f36d1c3c672bbb59c9f7
			7aeb68de57d77da231b7f13d6d277f600c3d3086c4de7b3a59127f4cb9c118935574f30e1b7c88b52c8c3531fdbd38ee
			3d14c69e81803ced6e7501fa0180f6d110b648272002dc1ad5bf09dc83188011da1d48632e0d2453c8abdd8e9fd32a57
			6aeb9ddfb0a024f674441c20a950d9bd8cd7b30933cc0d8e87b55e8aa9d913579b410417b3acc13c14bf73c457327873`,
		skeyseedRekey: "05f796c8df322a7e33283ae5fa2f376d8d5efa0ac3745fc548e430031424c121",
		childDKMLen:   384,
	},
	{
		// NIST CAVP sample for SHA-384, as NSS carries it in
		// gtests/common/testvectors/ike-sha384-vectors.h (cases 6-8: "these
		// vectors are from this NIST samples"). It has no Child SA DKM.
		source:   "NIST CAVP IKEv2 sample SHA-384 (NSS)",
		prf:      PRFHMACSHA2_384,
		ni:       "fd1b572a8e735591",
		nr:       "6013b0ef88dacd3d",
		gir:      "d3288cd87565101e88fe3bad918f31939d8dd26ff1071f8b2d7f447524e58d7c",
		girNew:   "3358f620539473aee8d07e779764c4c6a9aabddc79a28e136b3bac021dbde44a",
		spii:     "2116ad07ce61f749",
		spir:     "24880e55f11a65b7",
		skeyseed: "69fe7a1ac94adaeb711295f5fe004b1a8d6a0b65d05692758ce8ad2f7a45f59d7d0b596f51f7dfcf3330061888f6a94f",
		dkm: `4f904c2025c90c817ea5ff9b662a6fdb445a73b57cdf09eacd379b95e1f03cacb04cd6deeda4f952191dd9bc1f7a9502
			471a648d74dc06d38112de48a42501f6b1a3ad55c2099cd9a648e5f17e5bf3e34bf9b5953decb768a34f875fe2b78dca
			0c2fcca81ec1a412006dfaed38fa06882e61f4c148105fb8e231fdb33c4d484c001721d4`,
		skeyseedRekey: "e0548c1682e13bce454026b3b1bdf42985b24e4e7408095a7c529de38c3d1fcb04c9fe6868042a34c9614c6c99e3fcea",
	},
}

func TestIKEv2KDFVectors(t *testing.T) {
	for _, v := range ikev2KDFVectors {
		t.Run(v.source, func(t *testing.T) {
			prf := mustPRF(t, v.prf)
			ni, nr := unhex(t, v.ni), unhex(t, v.nr)
			gir, girNew := unhex(t, v.gir), unhex(t, v.girNew)
			spii, spir := unhex(t, v.spii), unhex(t, v.spir)

			skeyseed := SKEYSEED(prf, ni, nr, gir)
			if want := unhex(t, v.skeyseed); !bytes.Equal(skeyseed, want) {
				t.Fatalf("SKEYSEED = %x, want %x", skeyseed, want)
			}
			wantDKM := unhex(t, v.dkm)
			dkm := prf.Plus(skeyseed, bytes.Join([][]byte{ni, nr, spii, spir}, nil), len(wantDKM))
			if !bytes.Equal(dkm, wantDKM) {
				t.Fatalf("DKM =\n%x\nwant\n%x", dkm, wantDKM)
			}
			skd := dkm[:prf.Size()]
			// DeriveIKESAKeys cuts the same DKM: with no SK_a and no SK_e the
			// key material is SK_d | SK_pi | SK_pr.
			keys := DeriveIKESAKeys(prf, skeyseed, ni, nr, spii, spir, 0, 0)
			if !bytes.Equal(keys.SKd, skd) {
				t.Errorf("SK_d = %x, want %x", keys.SKd, skd)
			}
			if want := unhex(t, v.skeyseedRekey); !bytes.Equal(RekeySKEYSEED(prf, skd, girNew, ni, nr), want) {
				t.Errorf("SKEYSEED(Rekey) = %x, want %x", RekeySKEYSEED(prf, skd, girNew, ni, nr), want)
			}
			if v.dkmChild == "" {
				return
			}
			for _, c := range []struct {
				name string
				gir  []byte
				want string
			}{
				{"DKM(Child SA)", nil, v.dkmChild},
				{"DKM(Child SA D-H)", girNew, v.dkmChildDH},
			} {
				want := unhex(t, c.want)
				if len(want) != v.childDKMLen {
					t.Fatalf("%s is %d bytes", c.name, len(want))
				}
				i2r, r2i := ChildKeys(prf, skd, c.gir, ni, nr, len(want)/2)
				if got := append(append([]byte(nil), i2r...), r2i...); !bytes.Equal(got, want) {
					t.Errorf("%s =\n%x\nwant\n%x", c.name, got, want)
				}
			}
		})
	}
}

// TestDeriveIKESAKeysLayout checks the cut of KEYMAT into the seven keys,
// RFC 7296 §2.14, against prf+ of the NIST SHA2-256 vector.
func TestDeriveIKESAKeysLayout(t *testing.T) {
	v := ikev2KDFVectors[0]
	prf := mustPRF(t, v.prf)
	ni, nr := unhex(t, v.ni), unhex(t, v.nr)
	spii, spir := unhex(t, v.spii), unhex(t, v.spir)
	skeyseed := unhex(t, v.skeyseed)
	dkm := unhex(t, v.dkm)
	for _, c := range []struct {
		name        string
		encr, integ int
	}{
		{"AES-CBC-256/HMAC-SHA2-256-128", 32, 32},
		{"AES-CBC-128/HMAC-SHA2-512-256", 16, 64},
		{"AES-GCM-16-256", 36, 0},
		{"ChaCha20-Poly1305", 36, 0},
	} {
		k := DeriveIKESAKeys(prf, skeyseed, ni, nr, spii, spir, c.encr, c.integ)
		off := 0
		for _, part := range []struct {
			name string
			got  []byte
			n    int
		}{
			{"SK_d", k.SKd, 32}, {"SK_ai", k.SKai, c.integ}, {"SK_ar", k.SKar, c.integ},
			{"SK_ei", k.SKei, c.encr}, {"SK_er", k.SKer, c.encr},
			{"SK_pi", k.SKpi, 32}, {"SK_pr", k.SKpr, 32},
		} {
			if want := dkm[off : off+part.n]; !bytes.Equal(part.got, want) {
				t.Errorf("%s: %s = %x, want DKM[%d:%d] = %x", c.name, part.name, part.got, off, off+part.n, want)
			}
			if cap(part.got) != part.n {
				t.Errorf("%s: %s has capacity %d, appending would clobber the next key", c.name, part.name, cap(part.got))
			}
			off += part.n
		}
	}
}

func TestChildKeysSplit(t *testing.T) {
	prf := mustPRF(t, PRFHMACSHA2_384)
	skd := bytes.Repeat([]byte{7}, 48)
	ni, nr, gir := []byte("initiator nonce!"), []byte("responder nonce!"), []byte("shared secret")
	// AES-GCM-16-256 for ESP: 36 octets a direction (RFC 4106 §8.1).
	i2r, r2i := ChildKeys(prf, skd, gir, ni, nr, 36)
	keymat := prf.Plus(skd, bytes.Join([][]byte{gir, ni, nr}, nil), 72)
	if !bytes.Equal(i2r, keymat[:36]) || !bytes.Equal(r2i, keymat[36:]) {
		t.Errorf("split %x | %x of %x", i2r, r2i, keymat)
	}
	if cap(i2r) != 36 {
		t.Errorf("initiator key capacity %d", cap(i2r))
	}
	// Without PFS the seed is Ni | Nr only.
	i2r, _ = ChildKeys(prf, skd, nil, ni, nr, 36)
	if want := prf.Plus(skd, append(append([]byte(nil), ni...), nr...), 36); !bytes.Equal(i2r, want) {
		t.Errorf("without PFS: %x, want %x", i2r, want)
	}
}

// TestPSKAuth computes AUTH of RFC 7296 §2.15 step by step with crypto/hmac
// and compares.
func TestPSKAuth(t *testing.T) {
	prf := mustPRF(t, PRFHMACSHA2_384)
	psk := []byte("correct horse battery staple")
	msg := []byte("the IKE_SA_INIT request, byte for byte")
	nr := bytes.Repeat([]byte{0x4e}, 32)
	skpi := bytes.Repeat([]byte{0x51}, 48)
	// ID payload body: ID_FQDN (2), RESERVED, "gw1.example".
	idBody := append([]byte{2, 0, 0, 0}, "gw1.example"...)

	h := func(key []byte, data ...[]byte) []byte {
		m := hmac.New(sha512.New384, key)
		for _, d := range data {
			m.Write(d)
		}
		return m.Sum(nil)
	}
	want := h(h(psk, []byte("Key Pad for IKEv2")), msg, nr, h(skpi, idBody))

	got := PSKAuth(prf, psk, msg, nr, skpi, idBody)
	if !bytes.Equal(got, want) {
		t.Fatalf("AUTH = %x, want %x", got, want)
	}
	if !VerifyPSKAuth(prf, want, psk, msg, nr, skpi, idBody) {
		t.Error("VerifyPSKAuth rejected the right AUTH")
	}
	for i := range want {
		bad := append([]byte(nil), want...)
		bad[i] ^= 0x80
		if VerifyPSKAuth(prf, bad, psk, msg, nr, skpi, idBody) {
			t.Fatalf("VerifyPSKAuth accepted AUTH with byte %d flipped", i)
		}
	}
	if VerifyPSKAuth(prf, want[:len(want)-1], psk, msg, nr, skpi, idBody) {
		t.Error("VerifyPSKAuth accepted a truncated AUTH")
	}
	if VerifyPSKAuth(prf, want, []byte("wrong psk"), msg, nr, skpi, idBody) {
		t.Error("VerifyPSKAuth accepted AUTH under another PSK")
	}
	other := append([]byte(nil), idBody...)
	other[0] = 1 // ID_IPV4_ADDR: the ID type is signed too
	if VerifyPSKAuth(prf, want, psk, msg, nr, skpi, other) {
		t.Error("VerifyPSKAuth accepted AUTH for another ID")
	}
}
