package ikecrypto

import (
	"bytes"
	"crypto/ecdh"
	"errors"
	"testing"
)

// The test vectors of RFC 5903 §8.1 (256-bit random ECP group), §8.2
// (384-bit) and §8.3 (521-bit): private values i and r, public values
// g^i = gix | giy and g^r = grx | gry, and the shared secret, the
// x-coordinate girx of g^ir.
var rfc5903Tests = []struct {
	group       uint16
	i, gix, giy string
	r, grx, gry string
	girx        string
}{
	{
		group: GroupECP256,
		i:     "C88F01F5 10D9AC3F 70A292DA A2316DE5 44E9AAB8 AFE84049 C62A9C57 862D1433",
		gix:   "DAD0B653 94221CF9 B051E1FE CA5787D0 98DFE637 FC90B9EF 945D0C37 72581180",
		giy:   "5271A046 1CDB8252 D61F1C45 6FA3E59A B1F45B33 ACCF5F58 389E0577 B8990BB3",
		r:     "C6EF9C5D 78AE012A 011164AC B397CE20 88685D8F 06BF9BE0 B283AB46 476BEE53",
		grx:   "D12DFB52 89C8D4F8 1208B702 70398C34 2296970A 0BCCB74C 736FC755 4494BF63",
		gry:   "56FBF3CA 366CC23E 8157854C 13C58D6A AC23F046 ADA30F83 53E74F33 039872AB",
		girx:  "D6840F6B 42F6EDAF D13116E0 E1256520 2FEF8E9E CE7DCE03 812464D0 4B9442DE",
	},
	{
		group: GroupECP384,
		i: `099F3C70 34D4A2C6 99884D73 A375A67F 7624EF7C 6B3C0F16 0647B674 14DCE655
			E35B5380 41E649EE 3FAEF896 783AB194`,
		gix: `667842D7 D180AC2C DE6F74F3 7551F557 55C7645C 20EF73E3 1634FE72 B4C55EE6
			DE3AC808 ACB4BDB4 C88732AE E95F41AA`,
		giy: `9482ED1F C0EEB9CA FC498462 5CCFC23F 65032149 E0E144AD A0241815 35A0F38E
			EB9FCFF3 C2C947DA E69B4C63 4573A81C`,
		r: `41CB0779 B4BDB85D 47846725 FBEC3C94 30FAB46C C8DC5060 855CC9BD A0AA2942
			E0308312 916B8ED2 960E4BD5 5A7448FC`,
		grx: `E558DBEF 53EECDE3 D3FCCFC1 AEA08A89 A987475D 12FD950D 83CFA417 32BC509D
			0D1AC43A 0336DEF9 6FDA41D0 774A3571`,
		gry: `DCFBEC7A ACF31964 72169E83 8430367F 66EEBE3C 6E70C416 DD5F0C68 759DD1FF
			F83FA401 42209DFF 5EAAD96D B9E6386C`,
		girx: `11187331 C279962D 93D60424 3FD592CB 9D0A926F 422E4718 7521287E 7156C5C4
			D6031355 69B9E9D0 9CF5D4A2 70F59746`,
	},
	{
		group: GroupECP521,
		i: `0037ADE9 319A89F4 DABDB3EF 411AACCC A5123C61 ACAB57B5 393DCE47 608172A0
			95AA85A3 0FE1C295 2C6771D9 37BA9777 F5957B26 39BAB072 462F68C2 7A57382D
			4A52`,
		gix: `0015417E 84DBF28C 0AD3C278 713349DC 7DF153C8 97A1891B D98BAB43 57C9ECBE
			E1E3BF42 E00B8E38 0AEAE57C 2D107564 94188594 2AF5A7F4 601723C4 195D176C
			ED3E`,
		giy: `017CAE20 B6641D2E EB695786 D8C94614 6239D099 E18E1D5A 514C739D 7CB4A10A
			D8A78801 5AC405D7 799DC75E 7B7D5B6C F2261A6A 7F150743 8BF01BEB 6CA3926F
			9582`,
		r: `0145BA99 A847AF43 793FDD0E 872E7CDF A16BE30F DC780F97 BCCC3F07 8380201E
			9C677D60 0B343757 A3BDBF2A 3163E4C2 F869CCA7 458AA4A4 EFFC311F 5CB15168
			5EB9`,
		grx: `00D0B397 5AC4B799 F5BEA16D 5E13E9AF 971D5E9B 984C9F39 728B5E57 39735A21
			9B97C356 436ADC6E 95BB0352 F6BE64A6 C2912D4E F2D0433C ED2B6171 640012D9
			460F`,
		gry: `015C6822 6383956E 3BD066E7 97B623C2 7CE0EAC2 F551A10C 2C724D98 52077B87
			220B6536 C5C408A1 D2AEBB8E 86D678AE 49CB5709 1F473229 6579AB44 FCD17F0F
			C56A`,
		girx: `01144C7D 79AE6956 BC8EDB8E 7C787C45 21CB086F A64407F9 7894E5E6 B2D79B04
			D1427E73 CA4BAA24 0A347868 59810C06 B3C715A3 A8CC3151 F2BEE417 996D19F3
			DDEA`,
	},
}

// testECDH returns the DH of group with the given private key.
func testECDH(t *testing.T, group uint16, priv []byte) DH {
	t.Helper()
	var curve ecdh.Curve
	n := 0
	if group == GroupCurve25519 {
		curve = ecdh.X25519()
	} else {
		curve, n = nistCurve(group)
	}
	k, err := curve.NewPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return newECDH(group, k, n)
}

func TestECPRFC5903(t *testing.T) {
	for _, tc := range rfc5903Tests {
		gi := append(unhex(t, tc.gix), unhex(t, tc.giy)...)
		gr := append(unhex(t, tc.grx), unhex(t, tc.gry)...)
		girx := unhex(t, tc.girx)
		if n, ok := PublicLen(tc.group); !ok || n != len(gi) {
			t.Errorf("group %d: PublicLen = %d, %v; vector has %d", tc.group, n, ok, len(gi))
		}
		i := testECDH(t, tc.group, unhex(t, tc.i))
		r := testECDH(t, tc.group, unhex(t, tc.r))
		if i.Group() != tc.group {
			t.Errorf("Group() = %d", i.Group())
		}
		if !bytes.Equal(i.Public(), gi) {
			t.Errorf("group %d: g^i = %x, want %x", tc.group, i.Public(), gi)
		}
		if !bytes.Equal(r.Public(), gr) {
			t.Errorf("group %d: g^r = %x, want %x", tc.group, r.Public(), gr)
		}
		for _, side := range []struct {
			name string
			k    DH
			peer []byte
		}{{"initiator", i, gr}, {"responder", r, gi}} {
			s, err := side.k.SharedSecret(side.peer)
			if err != nil {
				t.Fatalf("group %d %s: %v", tc.group, side.name, err)
			}
			if !bytes.Equal(s, girx) {
				t.Errorf("group %d %s: g^ir = %x, want %x", tc.group, side.name, s, girx)
			}
		}

		// Invalid peer values: wrong lengths, SEC 1 encodings, a point off
		// the curve, the (0, 0) encoding.
		off := append([]byte(nil), gr...)
		off[len(off)-1] ^= 1
		for name, bad := range map[string][]byte{
			"empty":        nil,
			"short":        gr[:len(gr)-1],
			"long":         append(append([]byte(nil), gr...), 0),
			"uncompressed": append([]byte{4}, gr...),
			"compressed":   append([]byte{2}, gr[:len(gr)/2]...),
			"x only":       gr[:len(gr)/2],
			"off curve":    off,
			"zeros":        make([]byte, len(gr)),
		} {
			if s, err := i.SharedSecret(bad); err == nil {
				t.Errorf("group %d: peer value %s accepted, g^ir = %x", tc.group, name, s)
			}
		}
	}
}

// TestCurve25519RFC7748 checks group 31 (RFC 8031) with the Diffie-Hellman
// test vector of RFC 7748 §6.1.
func TestCurve25519RFC7748(t *testing.T) {
	alice := testECDH(t, GroupCurve25519, unhex(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
	bob := testECDH(t, GroupCurve25519, unhex(t, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"))
	alicePub := unhex(t, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
	bobPub := unhex(t, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
	k := unhex(t, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
	if !bytes.Equal(alice.Public(), alicePub) || !bytes.Equal(bob.Public(), bobPub) {
		t.Fatalf("public values %x, %x", alice.Public(), bob.Public())
	}
	for _, c := range []struct {
		k    DH
		peer []byte
	}{{alice, bobPub}, {bob, alicePub}} {
		s, err := c.k.SharedSecret(c.peer)
		if err != nil || !bytes.Equal(s, k) {
			t.Errorf("shared secret %x, %v; want %x", s, err, k)
		}
	}
	// RFC 8031 §2: an all-zero result must be rejected. The u-coordinates
	// 0 and 1 are points of small order, so any private key yields zero.
	one := make([]byte, 32)
	one[0] = 1
	for _, bad := range [][]byte{make([]byte, 32), one, bobPub[:31], append(append([]byte(nil), bobPub...), 0)} {
		if s, err := alice.SharedSecret(bad); err == nil {
			t.Errorf("peer value %x accepted, secret %x", bad, s)
		}
	}
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestGenerateDH(t *testing.T) {
	for _, g := range []uint16{GroupMODP2048, GroupECP256, GroupECP384, GroupECP521, GroupCurve25519} {
		if !SupportedGroup(g) {
			t.Errorf("group %d not supported", g)
		}
		a, err := GenerateDH(g, nil)
		if err != nil {
			t.Fatalf("group %d: %v", g, err)
		}
		b, err := GenerateDH(g, nil)
		if err != nil {
			t.Fatalf("group %d: %v", g, err)
		}
		n, _ := PublicLen(g)
		if a.Group() != g || len(a.Public()) != n {
			t.Errorf("group %d: Group() %d, public value of %d bytes, want %d", g, a.Group(), len(a.Public()), n)
		}
		if bytes.Equal(a.Public(), b.Public()) {
			t.Errorf("group %d: two keys with the same public value", g)
		}
		sa, err1 := a.SharedSecret(b.Public())
		sb, err2 := b.SharedSecret(a.Public())
		if err1 != nil || err2 != nil || !bytes.Equal(sa, sb) {
			t.Errorf("group %d: secrets %x (%v), %x (%v)", g, sa, err1, sb, err2)
		}
		// Public returns a copy.
		pub := a.Public()
		pub[0] ^= 0xff
		if bytes.Equal(pub, a.Public()) {
			t.Errorf("group %d: Public exposes internal state", g)
		}
	}
	for _, g := range []uint16{0, 1, 3, 6, 13, 22, 24, 32, 0xffff} {
		if SupportedGroup(g) {
			t.Errorf("group %d supported", g)
		}
		if _, err := GenerateDH(g, nil); err == nil {
			t.Errorf("GenerateDH(%d) succeeded", g)
		}
	}
	if _, err := GenerateDH(GroupMODP2048, failReader{}); err == nil {
		t.Error("GenerateDH with a failing reader succeeded")
	}
}
