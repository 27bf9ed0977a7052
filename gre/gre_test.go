package gre

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
)

// allFields returns one Fields for each of the eight combinations of the C, K
// and S bits, with distinct key and sequence values.
func allFields() []Fields {
	var out []Fields
	for i := range 8 {
		f := Fields{
			Protocol:   ProtocolIPv4,
			Checksum:   i&1 != 0,
			KeyPresent: i&2 != 0,
			SeqPresent: i&4 != 0,
		}
		if i%2 == 1 {
			f.Protocol = ProtocolIPv6
		}
		if f.KeyPresent {
			f.Key = 0xdeadbeef + uint32(i)
		}
		if f.SeqPresent {
			f.Seq = 0x01020304 * uint32(i)
		}
		out = append(out, f)
	}
	return out
}

// packet builds a GRE packet of f followed by payload, with the checksum set.
func packet(f *Fields, payload []byte) []byte {
	b := make([]byte, f.HeaderLen()+len(payload))
	GRE(b).Encode(f)
	copy(b[f.HeaderLen():], payload)
	GRE(b).SetChecksum()
	return b
}

// refChecksum is the RFC 1071 one's complement sum written out plainly,
// independent of gVisor's optimised one, to cross-check it.
func refChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}

func TestHeaderLen(t *testing.T) {
	for _, f := range allFields() {
		want := 4
		for _, p := range []bool{f.Checksum, f.KeyPresent, f.SeqPresent} {
			if p {
				want += 4
			}
		}
		if got := f.HeaderLen(); got != want {
			t.Errorf("%+v: HeaderLen() = %d, want %d", f, got, want)
		}
		if got := GRE(packet(&f, nil)).HeaderLen(); got != want {
			t.Errorf("%+v: GRE.HeaderLen() = %d, want %d", f, got, want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	payloads := [][]byte{nil, {0x45}, {0x45, 0x00, 0x00, 0x14}, bytes.Repeat([]byte{0xa5, 0x5a, 0xff}, 100)}
	for _, f := range allFields() {
		for _, p := range payloads {
			b := packet(&f, p)
			got, n, err := Parse(b)
			if err != nil {
				t.Fatalf("%+v payload %d: Parse: %v", f, len(p), err)
			}
			if got != f {
				t.Errorf("Parse = %+v, want %+v", got, f)
			}
			if n != f.HeaderLen() {
				t.Errorf("%+v: hdrLen = %d, want %d", f, n, f.HeaderLen())
			}
			if !bytes.Equal(b[n:], p) || !bytes.Equal(GRE(b).Payload(), p) {
				t.Errorf("%+v: payload not where expected", f)
			}
			h := GRE(b)
			if h.Version() != 0 || h.ChecksumPresent() != f.Checksum || h.KeyPresent() != f.KeyPresent || h.SeqPresent() != f.SeqPresent || h.Protocol() != f.Protocol {
				t.Errorf("%+v: accessors disagree with Fields", f)
			}
			if f.KeyPresent && h.Key() != f.Key {
				t.Errorf("%+v: Key() = %#x", f, h.Key())
			}
			if f.SeqPresent && h.Seq() != f.Seq {
				t.Errorf("%+v: Seq() = %#x", f, h.Seq())
			}
		}
	}
}

func TestSetters(t *testing.T) {
	for _, f := range allFields() {
		f.KeyPresent, f.SeqPresent = true, true
		b := packet(&f, []byte{1, 2, 3})
		h := GRE(b)
		h.SetKey(0x11223344)
		h.SetSeq(0x55667788)
		h.SetProtocol(ProtocolIPv6)
		h.SetChecksum()
		got, _, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		want := f
		want.Key, want.Seq, want.Protocol = 0x11223344, 0x55667788, ProtocolIPv6
		if got != want {
			t.Errorf("after setters Parse = %+v, want %+v", got, want)
		}
	}
}

// TestKnownPackets checks Encode and Parse against headers written by hand
// from the diagrams in RFC 2784 §2.1 (C, Reserved0, Ver, Protocol Type,
// Checksum, Reserved1) and RFC 2890 §2 (Key, then Sequence Number), with the
// checksum of RFC 2784 §2.5 worked out by hand as the one's complement of the
// one's complement sum of the 16-bit words (RFC 1071).
func TestKnownPackets(t *testing.T) {
	for _, tc := range []struct {
		name   string
		f      Fields
		packet []byte // header, then payload
		hdrLen int
	}{{
		name:   "plain IPv4",
		f:      Fields{Protocol: ProtocolIPv4},
		packet: []byte{0x00, 0x00, 0x08, 0x00, 0x45},
		hdrLen: 4,
	}, {
		name:   "plain IPv6",
		f:      Fields{Protocol: ProtocolIPv6},
		packet: []byte{0x00, 0x00, 0x86, 0xdd, 0x60},
		hdrLen: 4,
	}, {
		name: "key",
		f:    Fields{Protocol: ProtocolIPv4, KeyPresent: true, Key: 42},
		// K is bit 2: 0x2000.
		packet: []byte{0x20, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x2a},
		hdrLen: 8,
	}, {
		name: "sequence",
		f:    Fields{Protocol: ProtocolIPv4, SeqPresent: true, Seq: 0x01020304},
		// S is bit 3: 0x1000.
		packet: []byte{0x10, 0x00, 0x08, 0x00, 0x01, 0x02, 0x03, 0x04},
		hdrLen: 8,
	}, {
		name: "key and sequence",
		f:    Fields{Protocol: ProtocolIPv6, KeyPresent: true, Key: 0xdeadbeef, SeqPresent: true, Seq: 7},
		packet: []byte{0x30, 0x00, 0x86, 0xdd,
			0xde, 0xad, 0xbe, 0xef,
			0x00, 0x00, 0x00, 0x07},
		hdrLen: 12,
	}, {
		name: "checksum",
		f:    Fields{Protocol: ProtocolIPv4, Checksum: true},
		// Sum 0x8000+0x0800+0x0102+0x0304 = 0x8c06; ^0x8c06 = 0x73f9.
		packet: []byte{0x80, 0x00, 0x08, 0x00, 0x73, 0xf9, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04},
		hdrLen: 8,
	}, {
		name: "checksum odd payload",
		f:    Fields{Protocol: ProtocolIPv4, Checksum: true},
		// The odd byte is padded with zero: 0x8000+0x0800+0x0102+0x0300 =
		// 0x8c02; ^0x8c02 = 0x73fd.
		packet: []byte{0x80, 0x00, 0x08, 0x00, 0x73, 0xfd, 0x00, 0x00, 0x01, 0x02, 0x03},
		hdrLen: 8,
	}, {
		name: "checksum with end-around carry",
		f:    Fields{Protocol: ProtocolIPv4, Checksum: true},
		// 0x8000+0x0800+0xffff+0xffff = 0x287fe; folded 0x87fe+0x2 = 0x8800;
		// ^0x8800 = 0x77ff.
		packet: []byte{0x80, 0x00, 0x08, 0x00, 0x77, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff},
		hdrLen: 8,
	}, {
		name: "checksum key sequence",
		f:    Fields{Protocol: ProtocolIPv4, Checksum: true, KeyPresent: true, Key: 0x00010002, SeqPresent: true, Seq: 0x00030004},
		// 0xb000+0x0800+0x0001+0x0002+0x0003+0x0004+0x4500 = 0xfd0a;
		// ^0xfd0a = 0x02f5.
		packet: []byte{0xb0, 0x00, 0x08, 0x00, 0x02, 0xf5, 0x00, 0x00,
			0x00, 0x01, 0x00, 0x02,
			0x00, 0x03, 0x00, 0x04,
			0x45, 0x00},
		hdrLen: 16,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			b := make([]byte, len(tc.packet))
			copy(b[tc.hdrLen:], tc.packet[tc.hdrLen:])
			GRE(b).Encode(&tc.f)
			GRE(b).SetChecksum()
			if !bytes.Equal(b, tc.packet) {
				t.Errorf("Encode+SetChecksum = % x, want % x", b, tc.packet)
			}
			f, n, err := Parse(tc.packet)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if f != tc.f || n != tc.hdrLen {
				t.Errorf("Parse = %+v, %d, want %+v, %d", f, n, tc.f, tc.hdrLen)
			}
		})
	}
}

func TestEncodeLeavesPayload(t *testing.T) {
	for _, f := range allFields() {
		b := bytes.Repeat([]byte{0xee}, MaxHeaderLen+4)
		GRE(b).Encode(&f)
		for i := f.HeaderLen(); i < len(b); i++ {
			if b[i] != 0xee {
				t.Fatalf("%+v: Encode wrote byte %d", f, i)
			}
		}
		if f.Checksum && (GRE(b).Checksum() != 0 || b[6] != 0 || b[7] != 0) {
			t.Errorf("%+v: Encode left checksum/Reserved1 non-zero", f)
		}
	}
}

func TestEncodeShortPanics(t *testing.T) {
	f := Fields{Checksum: true, KeyPresent: true}
	defer func() {
		if recover() == nil {
			t.Error("Encode into a short buffer did not panic")
		}
	}()
	GRE(make([]byte, f.HeaderLen()-1)).Encode(&f)
}

func TestSetChecksumWithoutC(t *testing.T) {
	b := []byte{0x20, 0x00, 0x08, 0x00, 0xaa, 0xbb, 0xcc, 0xdd, 0x45}
	want := bytes.Clone(b)
	GRE(b).SetChecksum()
	if !bytes.Equal(b, want) {
		t.Errorf("SetChecksum without C changed the packet: % x", b)
	}
}

// TestChecksumMatchesReference cross-checks SetChecksum and Parse against a
// plain RFC 1071 sum on random packets of every length up to 300 bytes.
func TestChecksumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 300 {
		for _, f := range allFields() {
			if !f.Checksum {
				continue
			}
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(r.Uint32())
			}
			b := packet(&f, p)
			c := GRE(b).Checksum()
			binary.BigEndian.PutUint16(b[4:], 0)
			if want := ^refChecksum(b); c != want {
				t.Fatalf("len %d: checksum %#04x, reference %#04x", len(b), c, want)
			}
			binary.BigEndian.PutUint16(b[4:], c)
			if refChecksum(b) != 0xffff {
				t.Fatalf("len %d: reference does not verify", len(b))
			}
			if _, _, err := Parse(b); err != nil {
				t.Fatalf("len %d: Parse: %v", len(b), err)
			}
		}
	}
}

// TestChecksumReject flips every bit of checksummed packets but the C bit
// (clearing C legitimately turns the checksum word into payload) and expects
// Parse to refuse each one: a one's complement sum detects every single-bit
// error.
func TestChecksumReject(t *testing.T) {
	for _, f := range allFields() {
		if !f.Checksum {
			continue
		}
		orig := packet(&f, []byte{0x45, 0x00, 0x00, 0x1c, 0x12})
		for i := range orig {
			for bit := range 8 {
				if i == 0 && bit == 7 {
					continue
				}
				b := bytes.Clone(orig)
				b[i] ^= 1 << bit
				if _, _, err := Parse(b); err == nil {
					t.Errorf("%+v: flipped byte %d bit %d: Parse accepted", f, i, bit)
				}
			}
		}
		b := bytes.Clone(orig)
		binary.BigEndian.PutUint16(b[4:], 0)
		if _, _, err := Parse(b); !errors.Is(err, ErrChecksum) {
			t.Errorf("%+v: zero checksum: err = %v, want ErrChecksum", f, err)
		}
	}
}

// TestFlagBits sets each bit of the first word, one at a time, on an
// otherwise valid header and checks the receive rules of RFC 2784 §2.3 and
// §2.3.1 as updated by RFC 2890 §2.
func TestFlagBits(t *testing.T) {
	for bit := range 16 {
		mask := uint16(0x8000) >> bit
		b := make([]byte, MaxHeaderLen+2)
		binary.BigEndian.PutUint16(b[0:], mask)
		binary.BigEndian.PutUint16(b[2:], ProtocolIPv4)
		GRE(b).SetChecksum()
		f, n, err := Parse(b)
		switch {
		case bit == 0: // C
			if err != nil || !f.Checksum || n != 8 {
				t.Errorf("C: %+v %d %v", f, n, err)
			}
		case bit == 1, bit == 4, bit == 5: // R, s, recursion control's top bit
			if !errors.Is(err, ErrReserved) {
				t.Errorf("bit %d: err = %v, want ErrReserved", bit, err)
			}
		case bit == 2: // K
			if err != nil || !f.KeyPresent || n != 8 {
				t.Errorf("K: %+v %d %v", f, n, err)
			}
		case bit == 3: // S
			if err != nil || !f.SeqPresent || n != 8 {
				t.Errorf("S: %+v %d %v", f, n, err)
			}
		case bit >= 6 && bit <= 12: // "MUST be ignored on receipt"
			if err != nil || f != (Fields{Protocol: ProtocolIPv4}) || n != 4 {
				t.Errorf("bit %d: %+v %d %v, want ignored", bit, f, n, err)
			}
		case bit >= 13: // Ver
			if !errors.Is(err, ErrVersion) {
				t.Errorf("bit %d: err = %v, want ErrVersion", bit, err)
			}
		}
	}
	// Version 1 is PPTP's enhanced GRE (RFC 2637), not ours.
	if _, _, err := Parse([]byte{0x30, 0x01, 0x88, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0}); !errors.Is(err, ErrVersion) {
		t.Errorf("version 1: err = %v, want ErrVersion", err)
	}
}

func TestTruncated(t *testing.T) {
	for _, f := range allFields() {
		b := packet(&f, []byte{0x45, 0x00})
		for n := range f.HeaderLen() {
			if _, _, err := Parse(b[:n]); !errors.Is(err, ErrTruncated) {
				t.Errorf("%+v: length %d: err = %v, want ErrTruncated", f, n, err)
			}
		}
		// A header with no payload is a valid, if useless, packet.
		if !f.Checksum {
			if _, n, err := Parse(b[:f.HeaderLen()]); err != nil || n != f.HeaderLen() {
				t.Errorf("%+v: bare header: %d %v", f, n, err)
			}
		}
	}
}

func TestAllocs(t *testing.T) {
	f := Fields{Protocol: ProtocolIPv4, Checksum: true, KeyPresent: true, Key: 1, SeqPresent: true, Seq: 2}
	b := make([]byte, 1500)
	h := GRE(b)
	if n := testing.AllocsPerRun(100, func() { h.Encode(&f) }); n != 0 {
		t.Errorf("Encode allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { h.SetChecksum() }); n != 0 {
		t.Errorf("SetChecksum allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, _, err := Parse(b); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Parse allocates %v times", n)
	}
	b[5] ^= 1
	if n := testing.AllocsPerRun(100, func() {
		if _, _, err := Parse(b); err == nil {
			t.Fatal("corrupt packet accepted")
		}
	}); n != 0 {
		t.Errorf("Parse of a bad packet allocates %v times", n)
	}
}

// ignoredBits are the Reserved0 bits 6-12 that Parse ignores, so a
// re-encoded header has them zero.
const ignoredBits = 0x03f8

// FuzzParse checks that Parse never panics, returns only its own errors,
// and that a header it accepts re-encodes to the same bytes (but for the
// ignored bits, and the checksum and Reserved1 words, which Encode zeroes).
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		fields, n, err := Parse(b)
		if err != nil {
			switch err {
			case ErrTruncated, ErrVersion, ErrReserved, ErrChecksum:
			default:
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if n != fields.HeaderLen() || n > len(b) || n < MinHeaderLen || n > MaxHeaderLen {
			t.Fatalf("hdrLen %d for %+v, len %d", n, fields, len(b))
		}
		in := bytes.Clone(b[:n])
		binary.BigEndian.PutUint16(in, binary.BigEndian.Uint16(in)&^ignoredBits)
		out := make([]byte, n)
		GRE(out).Encode(&fields)
		if fields.Checksum {
			copy(in[4:8], out[4:8])
		}
		if !bytes.Equal(in, out) {
			t.Fatalf("re-encode % x, input header % x", out, b[:n])
		}
		// The re-encoded packet, checksummed afresh, parses to the same
		// fields.
		pkt := append(out, b[n:]...)
		GRE(pkt).SetChecksum()
		again, n2, err := Parse(pkt)
		if err != nil || again != fields || n2 != n {
			t.Fatalf("re-encoded packet: %+v %d %v, want %+v %d", again, n2, err, fields, n)
		}
	})
}
