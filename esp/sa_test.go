package esp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
)

// algorithms is every transform: the AEADs, AES-CBC with each key size
// and integrity algorithm, and NULL with each integrity algorithm.
var algorithms = func() []Transform {
	ts := []Transform{{Algorithm: AES128GCM16}, {Algorithm: AES256GCM16}, {Algorithm: ChaCha20Poly1305}}
	for _, a := range []Algorithm{AES128CBC, AES192CBC, AES256CBC, NullEncryption} {
		for _, i := range []Integrity{HMACSHA1_96, HMACSHA256_128, HMACSHA384_192, HMACSHA512_256} {
			ts = append(ts, Transform{Algorithm: a, Integrity: i})
		}
	}
	return ts
}()

// testKey returns deterministic key material for a.
func testKey(a Algorithm) []byte {
	k := make([]byte, a.KeyLen())
	for i := range k {
		k[i] = byte(i*7 + int(a))
	}
	return k
}

// testAuthKey returns deterministic integrity key material for i.
func testAuthKey(i Integrity) []byte {
	k := make([]byte, i.KeyLen())
	for j := range k {
		k[j] = byte(j*5 + 100 + int(i))
	}
	return k
}

// testConfig returns an SA configuration for tr with the test keys.
func testConfig(tr Transform, esn bool) Config {
	c := Config{SPI: 0x1000, Algorithm: tr.Algorithm, Integrity: tr.Integrity, Key: testKey(tr.Algorithm), ESN: esn}
	if tr.Integrity != IntegrityNone {
		c.AuthKey = testAuthKey(tr.Integrity)
	}
	return c
}

func newTestSA(t testing.TB, tr Transform, esn bool) *SA {
	t.Helper()
	sa, err := NewSA(testConfig(tr, esn))
	if err != nil {
		t.Fatal(err)
	}
	return sa
}

// sealPayload seals a copy of payload with seq in a fresh buffer of exactly
// the capacity Seal needs.
func sealPayload(sa *SA, payload []byte, seq uint64, nh byte) []byte {
	h := sa.Headroom()
	b := make([]byte, h+len(payload), h+len(payload)+sa.TrailerLen(len(payload)))
	copy(b[h:], payload)
	return sa.Seal(b, seq, nh)
}

// payloadOffset is where Open puts the payload of sa's packets.
func payloadOffset(sa *SA) int { return max(sa.Headroom(), HeadroomLen) }

func TestParseAlgorithm(t *testing.T) {
	for _, tr := range algorithms {
		got, err := ParseTransform(tr.String())
		if err != nil || got != tr {
			t.Errorf("ParseTransform(%q) = %v, %v", tr.String(), got, err)
		}
		a, err := ParseAlgorithm(tr.Algorithm.String())
		if err != nil || a != tr.Algorithm {
			t.Errorf("ParseAlgorithm(%q) = %v, %v", tr.Algorithm.String(), a, err)
		}
	}
	want := map[Algorithm]string{AES128GCM16: "aes128gcm16", AES256GCM16: "aes256gcm16", ChaCha20Poly1305: "chacha20poly1305",
		AES128CBC: "aes128", AES192CBC: "aes192", AES256CBC: "aes256", NullEncryption: "null"}
	for a, s := range want {
		if a.String() != s {
			t.Errorf("%d.String() = %q, want %q", a, a.String(), s)
		}
	}
	for _, s := range []string{"", "aes128-gcm16", "AES128GCM16", "aes192gcm16", "Algorithm(0)"} {
		if _, err := ParseAlgorithm(s); err == nil || !strings.HasPrefix(err.Error(), "esp: ") {
			t.Errorf("ParseAlgorithm(%q): err = %v", s, err)
		}
	}
	if s := Algorithm(9).String(); s != "Algorithm(9)" {
		t.Errorf("Algorithm(9).String() = %q", s)
	}
}

// TestParseTransform: the strongSwan spellings of the transforms of the
// issue's seed configurations, and the pairs that are refused.
func TestParseTransform(t *testing.T) {
	good := map[string]Transform{
		"aes256-sha256":    {AES256CBC, HMACSHA256_128},
		"aes128-sha1":      {AES128CBC, HMACSHA1_96},
		"aes192-sha2_384":  {AES192CBC, HMACSHA384_192},
		"aes256-sha512":    {AES256CBC, HMACSHA512_256},
		"null-sha256":      {NullEncryption, HMACSHA256_128},
		"aes256gcm16":      {AES256GCM16, IntegrityNone},
		"chacha20poly1305": {ChaCha20Poly1305, IntegrityNone},
	}
	for s, want := range good {
		if got, err := ParseTransform(s); err != nil || got != want {
			t.Errorf("ParseTransform(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"aes256", "null", "aes256gcm16-sha256", "aes256-md5", "aes256-", "3des-sha1", "", "aes256-sha256-modp3072"} {
		if tr, err := ParseTransform(s); err == nil || !strings.HasPrefix(err.Error(), "esp: ") {
			t.Errorf("ParseTransform(%q) = %v, %v; want an error", s, tr, err)
		}
	}
}

// TestTransformSizes checks the sizes the dataplane's MTU arithmetic reads
// against the RFCs: RFC 3602 §3 (16-byte IV, 16-byte block), RFC 2404 §2
// (12-byte ICV), RFC 4868 §2.3 (16, 24, 32-byte ICVs), RFC 4106 §3 and
// RFC 2410 (no IV, 4-byte alignment of RFC 4303 §2.4).
func TestTransformSizes(t *testing.T) {
	tests := []struct {
		tr                          Transform
		headroom, icv, block, keyLn int
	}{
		{Transform{AES256GCM16, 0}, 16, 16, 4, 0},
		{Transform{AES128CBC, HMACSHA1_96}, 24, 12, 16, 20},
		{Transform{AES256CBC, HMACSHA256_128}, 24, 16, 16, 32},
		{Transform{AES192CBC, HMACSHA384_192}, 24, 24, 16, 48},
		{Transform{AES256CBC, HMACSHA512_256}, 24, 32, 16, 64},
		{Transform{NullEncryption, HMACSHA256_128}, 8, 16, 4, 32},
	}
	for _, tt := range tests {
		if tt.tr.Headroom() != tt.headroom || tt.tr.ICVLen() != tt.icv || tt.tr.BlockLen() != tt.block || tt.tr.Integrity.KeyLen() != tt.keyLn {
			t.Errorf("%v: headroom %d icv %d block %d authkey %d", tt.tr, tt.tr.Headroom(), tt.tr.ICVLen(), tt.tr.BlockLen(), tt.tr.Integrity.KeyLen())
		}
		if tt.tr.Headroom() > MaxHeadroomLen {
			t.Errorf("%v: headroom above MaxHeadroomLen", tt.tr)
		}
		// MaxPayload is the largest payload that fits, for every length.
		for espLen := 0; espLen < 200; espLen++ {
			m := tt.tr.MaxPayload(espLen)
			fits := func(n int) bool { return tt.tr.Headroom()+n+tt.tr.TrailerLen(n) <= espLen }
			if m >= 0 && !fits(m) || fits(m+1) {
				t.Fatalf("%v: MaxPayload(%d) = %d", tt.tr, espLen, m)
			}
		}
	}
}

func TestKeyLen(t *testing.T) {
	want := map[Algorithm]int{AES128GCM16: 20, AES256GCM16: 36, ChaCha20Poly1305: 36, 0: 0, 9: 0,
		AES128CBC: 16, AES192CBC: 24, AES256CBC: 32, NullEncryption: 0}
	for a, n := range want {
		if a.KeyLen() != n {
			t.Errorf("%v.KeyLen() = %d, want %d", a, a.KeyLen(), n)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{SPI: 256, Algorithm: AES256GCM16, Key: make([]byte, 36)}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"spi0", func(c *Config) { c.SPI = 0 }, "esp: SPI 0 is reserved"},
		{"spi255", func(c *Config) { c.SPI = 255 }, "esp: SPI 255 is reserved"},
		{"alg", func(c *Config) { c.Algorithm = 0 }, "esp: unknown algorithm Algorithm(0)"},
		{"key", func(c *Config) { c.Key = make([]byte, 16) }, "esp: key must be 36 bytes (hex 72 digits) for aes256gcm16, got 16"},
		{"key128", func(c *Config) { c.Algorithm = AES128GCM16 }, "esp: key must be 20 bytes (hex 40 digits) for aes128gcm16, got 36"},
		{"window", func(c *Config) { c.ReplayWindow = 1000 }, "esp: replay window must be a power of two between 64 and 65536, got 1000"},
		{"windowbig", func(c *Config) { c.ReplayWindow = 1 << 17 }, "esp: replay window must be a power of two"},
		{"windowsmall", func(c *Config) { c.ReplayWindow = 32 }, "esp: replay window must be a power of two"},
		{"softpackets", func(c *Config) { c.SoftPackets, c.HardPackets = 10, 10 }, "esp: soft packet limit 10 must be below the hard limit 10"},
		{"softbytes", func(c *Config) { c.SoftBytes, c.HardBytes = 11, 10 }, "esp: soft byte limit 11 must be below the hard limit 10"},
	}
	for _, tt := range tests {
		c := good
		tt.modify(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want prefix %q", tt.name, err, tt.want)
		}
		if _, err2 := NewSA(c); err2 == nil {
			t.Errorf("%s: NewSA accepted an invalid config", tt.name)
		}
	}
	for _, w := range []int{0, 64, 128, 1024, 65536} {
		c := good
		c.ReplayWindow = w
		if err := c.Validate(); err != nil {
			t.Errorf("window %d: %v", w, err)
		}
	}
}

func TestNewSACopiesKeyAndConfig(t *testing.T) {
	key := testKey(AES128GCM16)
	sa, err := NewSA(Config{SPI: 0x1234, Algorithm: AES128GCM16, Key: key, SoftBytes: 5})
	if err != nil {
		t.Fatal(err)
	}
	pkt := sealPayload(sa, []byte("hello"), 1, 4)
	for i := range key {
		key[i] = 0 // the caller wipes its copy
	}
	if _, _, _, err := sa.Open(pkt); err != nil {
		t.Fatalf("Open after the caller wiped its key: %v", err)
	}
	c := sa.Config()
	if c.Key != nil || c.SPI != 0x1234 || c.Algorithm != AES128GCM16 || c.ReplayWindow != 1024 || c.SoftBytes != 5 {
		t.Fatalf("Config() = %+v", c)
	}
	if sa.SPI() != 0x1234 {
		t.Fatalf("SPI() = %#x", sa.SPI())
	}
}

func TestTrailerLenAndMaxPayload(t *testing.T) {
	for n := 0; n < 2000; n++ {
		tl := TrailerLen(n)
		pad := tl - 2 - ICVLen
		if pad < 0 || pad > 3 || (n+pad+2)%4 != 0 {
			t.Fatalf("TrailerLen(%d) = %d: pad %d", n, tl, pad)
		}
	}
	for espLen := 0; espLen < 2000; espLen++ {
		m := MaxPayload(espLen)
		// Brute force: the largest n whose packet fits.
		want := -1
		for n := 0; HeadroomLen+n+TrailerLen(n) <= espLen; n++ {
			want = n
		}
		if m != want {
			t.Fatalf("MaxPayload(%d) = %d, want %d", espLen, m, want)
		}
	}
	// DESIGN.md figures: 1500-byte path, IPv4 outer, GCM: GRE (4 bytes)
	// in transport mode leaves 1442, 1434 with UDP encapsulation, and
	// GRE in tunnel mode (inner IPv4 header) leaves 1422.
	if got := MaxPayload(1500-20) - 4; got != 1442 {
		t.Errorf("transport-mode GRE MTU = %d, want 1442", got)
	}
	if got := MaxPayload(1500-20-8) - 4; got != 1434 {
		t.Errorf("transport-mode GRE over UDP MTU = %d, want 1434", got)
	}
	if got := MaxPayload(1500-20) - 4 - 20; got != 1422 {
		t.Errorf("tunnel-mode GRE MTU = %d, want 1422", got)
	}
}

// TestSealLayout checks the header, IV and trailer Seal writes, by opening
// the packet with the raw helper and reading the trailer directly.
func TestSealLayout(t *testing.T) {
	sa := newTestSA(t, Transform{Algorithm: AES128GCM16}, true)
	for n := range 8 {
		payload := bytes.Repeat([]byte{0xaa}, n)
		seq := uint64(0x0102030405060708)
		pkt := sealPayload(sa, payload, seq, 47)
		if len(pkt) != HeadroomLen+n+TrailerLen(n) {
			t.Fatalf("n=%d: len %d, want %d", n, len(pkt), HeadroomLen+n+TrailerLen(n))
		}
		if binary.BigEndian.Uint32(pkt[0:]) != 0x1000 || binary.BigEndian.Uint32(pkt[4:]) != 0x05060708 ||
			binary.BigEndian.Uint64(pkt[8:]) != seq {
			t.Fatalf("n=%d: header %x", n, pkt[:16])
		}
		aead, _ := AES128GCM16.newAEAD(testKey(AES128GCM16)[:16])
		nonce := append(testKey(AES128GCM16)[16:20:20], pkt[8:16]...)
		aad := append(append([]byte{}, pkt[0:4]...), 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08)
		pt, err := aead.Open(nil, nonce, pkt[16:], aad)
		if err != nil {
			t.Fatalf("n=%d: AEAD with the ESN AAD built by hand: %v", n, err)
		}
		pad := len(pt) - n - 2
		want := append(append(payload, []byte{1, 2, 3}[:pad]...), byte(pad), 47)
		if !bytes.Equal(pt, want) {
			t.Fatalf("n=%d: plaintext %x, want %x", n, pt, want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, a := range algorithms {
		for _, esn := range []bool{false, true} {
			tx := newTestSA(t, a, esn)
			rx := newTestSA(t, a, esn)
			for n := 0; n <= 1500; n++ {
				payload := make([]byte, n)
				for i := range payload {
					payload[i] = byte(i ^ n)
				}
				seq, ok := tx.NextSeq()
				if !ok || seq != uint64(n+1) {
					t.Fatalf("%v esn=%v: NextSeq = %d, %v", a, esn, seq, ok)
				}
				nh := byte(n)
				pkt := sealPayload(tx, payload, seq, nh)
				got, gotNH, gotSeq, err := rx.Open(pkt)
				if err != nil {
					t.Fatalf("%v esn=%v n=%d: %v", a, esn, n, err)
				}
				if !bytes.Equal(got, payload) || gotNH != nh || gotSeq != seq {
					t.Fatalf("%v esn=%v n=%d: got nh %d seq %d", a, esn, n, gotNH, gotSeq)
				}
				if n > 0 && &got[:1][0] != &pkt[payloadOffset(rx):][:1][0] {
					t.Fatalf("payload does not alias the packet at %d", payloadOffset(rx))
				}
				if !rx.Accept(gotSeq, len(got)) {
					t.Fatalf("Accept(%d) = false", gotSeq)
				}
				tx.CountTx(1, uint64(len(pkt)))
			}
			st := rx.Stats()
			if st.RxPackets != 1501 || st.RxBytes != 1500*1501/2 || st.AuthFailures+st.Replays+st.BadPadding != 0 {
				t.Fatalf("%v esn=%v: rx stats %+v", a, esn, st)
			}
			if st := tx.Stats(); st.TxPackets != 1501 {
				t.Fatalf("tx stats %+v", st)
			}
		}
	}
}

// TestAlgorithmsDiffer guards against an SA quietly using the wrong cipher:
// a packet of one algorithm must not open under another with the same key
// bytes.
func TestAlgorithmsDiffer(t *testing.T) {
	key := testKey(AES256GCM16)
	a, _ := NewSA(Config{SPI: 300, Algorithm: AES256GCM16, Key: key})
	c, _ := NewSA(Config{SPI: 300, Algorithm: ChaCha20Poly1305, Key: key})
	pkt := sealPayload(a, []byte("payload"), 1, 4)
	if _, _, _, err := c.Open(pkt); err != ErrAuth {
		t.Fatalf("AES packet under ChaCha20: %v", err)
	}
}

func TestSealPanicsWithoutRoom(t *testing.T) {
	sa := newTestSA(t, Transform{Algorithm: AES128GCM16}, false)
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		f()
	}
	mustPanic("no headroom", func() { sa.Seal(make([]byte, HeadroomLen-1, 100), 1, 4) })
	mustPanic("no trailer room", func() {
		b := make([]byte, HeadroomLen+5, HeadroomLen+5+TrailerLen(5)-1)
		sa.Seal(b, 1, 4)
	})
}

func TestNextSeqExhaustion(t *testing.T) {
	sa := newTestSA(t, Transform{Algorithm: AES128GCM16}, false)
	sa.lastSeq.Store(math.MaxUint32 - 2) // test hook: skip 4 billion packets
	for _, want := range []uint64{math.MaxUint32 - 1, math.MaxUint32} {
		if seq, ok := sa.NextSeq(); !ok || seq != want {
			t.Fatalf("NextSeq = %d, %v; want %d", seq, ok, want)
		}
	}
	for range 3 {
		if seq, ok := sa.NextSeq(); ok {
			t.Fatalf("NextSeq after 2^32-1 = %d, ok", seq)
		}
	}
	if !sa.SoftExpired() {
		t.Fatal("SoftExpired false at the end of the sequence space")
	}

	esn := newTestSA(t, Transform{Algorithm: AES128GCM16}, true)
	esn.lastSeq.Store(math.MaxUint32 - 1)
	for _, want := range []uint64{math.MaxUint32, math.MaxUint32 + 1} {
		if seq, ok := esn.NextSeq(); !ok || seq != want {
			t.Fatalf("ESN NextSeq = %d, %v; want %d", seq, ok, want)
		}
	}
	if esn.SoftExpired() {
		t.Fatal("ESN SoftExpired at 2^32")
	}
	esn.lastSeq.Store(math.MaxUint64 - 1)
	if seq, ok := esn.NextSeq(); !ok || seq != math.MaxUint64 {
		t.Fatalf("ESN NextSeq = %d, %v; want 2^64-1", seq, ok)
	}
	if _, ok := esn.NextSeq(); ok {
		t.Fatal("ESN NextSeq after 2^64-1 ok")
	}
}

func TestSoftExpiredSequenceSpace(t *testing.T) {
	sa := newTestSA(t, Transform{Algorithm: AES128GCM16}, false)
	soft := uint64(math.MaxUint32 - math.MaxUint32/8)
	sa.lastSeq.Store(soft - 2)
	sa.NextSeq()
	if sa.SoftExpired() {
		t.Fatalf("SoftExpired at %d", soft-1)
	}
	sa.NextSeq()
	if !sa.SoftExpired() {
		t.Fatalf("not SoftExpired at %d", soft)
	}
}

func TestLifetimeOutbound(t *testing.T) {
	sa, err := NewSA(Config{SPI: 999, Algorithm: AES128GCM16, Key: testKey(AES128GCM16),
		SoftPackets: 3, HardPackets: 5, SoftBytes: 1000, HardBytes: 2000})
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 5; i++ {
		if sa.SoftExpired() != (i > 3) {
			t.Fatalf("before packet %d: SoftExpired = %v", i, sa.SoftExpired())
		}
		if seq, ok := sa.NextSeq(); !ok || seq != i {
			t.Fatalf("NextSeq = %d, %v", seq, ok)
		}
	}
	if _, ok := sa.NextSeq(); ok {
		t.Fatal("NextSeq past HardPackets")
	}

	sa, _ = NewSA(Config{SPI: 999, Algorithm: AES128GCM16, Key: testKey(AES128GCM16), SoftBytes: 1000, HardBytes: 2000})
	sa.NextSeq()
	sa.CountTx(1, 999)
	if sa.SoftExpired() {
		t.Fatal("SoftExpired below SoftBytes")
	}
	sa.CountTx(1, 1)
	if !sa.SoftExpired() {
		t.Fatal("not SoftExpired at SoftBytes")
	}
	if _, ok := sa.NextSeq(); !ok {
		t.Fatal("NextSeq failed below HardBytes")
	}
	sa.CountTx(1, 1000)
	if _, ok := sa.NextSeq(); ok {
		t.Fatal("NextSeq past HardBytes")
	}
}

func TestLifetimeInbound(t *testing.T) {
	cfg := Config{SPI: 999, Algorithm: ChaCha20Poly1305, Key: testKey(ChaCha20Poly1305), SoftPackets: 2, HardPackets: 3}
	tx, _ := NewSA(Config{SPI: 999, Algorithm: ChaCha20Poly1305, Key: testKey(ChaCha20Poly1305)})
	rx, err := NewSA(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 4; seq++ {
		pkt := sealPayload(tx, []byte("0123456789"), seq, 4)
		_, _, got, err := rx.Open(pkt)
		if seq == 4 {
			if err != ErrLifetime {
				t.Fatalf("packet 4: err = %v, want ErrLifetime", err)
			}
			break
		}
		if err != nil || !rx.Accept(got, 10) {
			t.Fatalf("packet %d: %v", seq, err)
		}
		if rx.SoftExpired() != (seq >= 2) {
			t.Fatalf("after packet %d: SoftExpired = %v", seq, rx.SoftExpired())
		}
	}

	rx, _ = NewSA(Config{SPI: 999, Algorithm: ChaCha20Poly1305, Key: testKey(ChaCha20Poly1305), SoftBytes: 15, HardBytes: 20})
	for seq := uint64(1); seq <= 3; seq++ {
		_, _, got, err := rx.Open(sealPayload(tx, []byte("0123456789"), seq, 4))
		if seq == 3 {
			if err != ErrLifetime {
				t.Fatalf("byte limit: err = %v, want ErrLifetime", err)
			}
			break
		}
		if err != nil || !rx.Accept(got, 10) {
			t.Fatalf("packet %d: %v", seq, err)
		}
		if rx.SoftExpired() != (seq == 2) {
			t.Fatalf("after %d bytes: SoftExpired = %v", seq*10, rx.SoftExpired())
		}
	}
}

// TestESNWrap sends across the 2^32 boundary with ESN: the receiver sees
// low 32 bits 0xffffffff, 0, 1 and must infer the high bits, also for a
// late packet from below the boundary.
func TestESNWrap(t *testing.T) {
	for _, a := range algorithms {
		tx := newTestSA(t, a, true)
		rx := newTestSA(t, a, true)
		tx.lastSeq.Store(math.MaxUint32 - 2)
		var pkts [][]byte
		for range 5 { // 2^32-2 .. 2^32+2
			seq, ok := tx.NextSeq()
			if !ok {
				t.Fatal("NextSeq failed")
			}
			pkts = append(pkts, sealPayload(tx, []byte{byte(seq)}, seq, 4))
		}
		if binary.BigEndian.Uint32(pkts[2][4:]) != 0 {
			t.Fatalf("seq 2^32 on the wire: %x", pkts[2][4:8])
		}
		// The receiver has seen up to 2^32-3.
		rx.window.Update(math.MaxUint32 - 2)
		open := func(i int, want uint64) {
			t.Helper()
			pkt := bytes.Clone(pkts[i])
			payload, _, seq, err := rx.Open(pkt)
			if err != nil || seq != want || payload[0] != byte(want) {
				t.Fatalf("%v: packet %d: seq %#x, err %v; want seq %#x", a, i, seq, err, want)
			}
			if !rx.Accept(seq, 1) {
				t.Fatalf("Accept(%#x) = false", seq)
			}
		}
		open(1, math.MaxUint32)   // still in subspace 0
		open(2, math.MaxUint32+1) // low 0: next subspace (case A)
		open(4, math.MaxUint32+3)
		open(0, math.MaxUint32-1) // late packet, window spans the boundary (case B)
		open(3, math.MaxUint32+2)
		for i := range pkts {
			if _, _, _, err := rx.Open(bytes.Clone(pkts[i])); err != ErrReplay {
				t.Fatalf("replayed packet %d: err = %v", i, err)
			}
		}
	}
}

// TestESNInference checks inferSeq against RFC 4303 Appendix A2.2 at the
// edges of both cases.
func TestESNInference(t *testing.T) {
	sa := newTestSA(t, Transform{Algorithm: AES128GCM16}, true) // window 1024
	const w = 1024
	tests := []struct {
		top  uint64
		low  uint32
		want uint64
		ok   bool
	}{
		// No packet yet: top 0, case B; numbers near 2^32 would be in
		// subspace -1, which does not exist.
		{0, 1, 1, true},
		{0, 0, 0, false},
		{0, math.MaxUint32, 0, false},
		{0, math.MaxUint32 - w + 2, 0, false}, // the bottom of the window
		{0, math.MaxUint32 - w + 1, math.MaxUint32 - w + 1, true},
		// Case A: top = 5<<32 | 5000.
		{5<<32 | 5000, 5000, 5<<32 | 5000, true},
		{5<<32 | 5000, 5000 - w + 1, 5<<32 | (5000 - w + 1), true},
		{5<<32 | 5000, 5000 - w, 6<<32 | (5000 - w), true},
		{5<<32 | 5000, 0, 6 << 32, true},
		{5<<32 | 5000, 9999, 5<<32 | 9999, true},
		// Case A exactly at Tl = W-1.
		{5<<32 | (w - 1), 0, 5 << 32, true},
		// Case B: top = 5<<32 | 10.
		{5<<32 | 10, 10, 5<<32 | 10, true},
		{5<<32 | 10, 0, 5 << 32, true},
		{5<<32 | 10, math.MaxUint32, 4<<32 | math.MaxUint32, true},
		{5<<32 | 10, math.MaxUint32 - (w - 12), 4<<32 | (math.MaxUint32 - (w - 12)), true},
		{5<<32 | 10, math.MaxUint32 - (w - 11), 5<<32 | (math.MaxUint32 - (w - 11)), true},
		// The last subspace: nothing after 2^64-1.
		{math.MaxUint64 - 10, 5, 0, false},
	}
	for _, tt := range tests {
		sa.window.Init(w)
		sa.window.Update(tt.top)
		got, ok := sa.inferSeq(tt.low)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("top %#x low %#x: got %#x, %v; want %#x, %v", tt.top, tt.low, got, ok, tt.want, tt.ok)
		}
	}
}

func TestNonESNSequenceZero(t *testing.T) {
	tx := newTestSA(t, Transform{Algorithm: AES128GCM16}, false)
	rx := newTestSA(t, Transform{Algorithm: AES128GCM16}, false)
	pkt := sealPayload(tx, []byte("x"), 0, 4) // a broken peer sends seq 0
	if _, _, _, err := rx.Open(pkt); err != ErrReplay {
		t.Fatalf("seq 0: err = %v, want ErrReplay", err)
	}
	if rx.Accept(0, 1) {
		t.Fatal("Accept(0) = true")
	}
}

func TestReplayCounted(t *testing.T) {
	tx := newTestSA(t, Transform{Algorithm: AES256GCM16}, false)
	rx := newTestSA(t, Transform{Algorithm: AES256GCM16}, false)
	pkt := sealPayload(tx, []byte("abc"), 7, 4)
	_, _, seq, err := rx.Open(bytes.Clone(pkt))
	if err != nil {
		t.Fatal(err)
	}
	// Two workers opened the same packet before either was accepted:
	// only the in-order stage catches the second.
	_, _, seq2, err := rx.Open(bytes.Clone(pkt))
	if err != nil {
		t.Fatal(err)
	}
	if !rx.Accept(seq, 3) || rx.Accept(seq2, 3) {
		t.Fatal("Accept did not reject the duplicate")
	}
	if _, _, _, err := rx.Open(bytes.Clone(pkt)); err != ErrReplay {
		t.Fatalf("err = %v, want ErrReplay", err)
	}
	// Too old.
	rx.Accept(7+1024, 0)
	old := sealPayload(tx, []byte("abc"), 7+1024-1024, 4)
	if _, _, _, err := rx.Open(old); err != ErrReplay {
		t.Fatalf("too old: err = %v, want ErrReplay", err)
	}
	if st := rx.Stats(); st.Replays != 3 || st.RxPackets != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestBadInput tampers with every part of a valid packet and checks the
// error, the counters and that the replay window did not move.
func TestBadInput(t *testing.T) {
	for _, a := range algorithms {
		for _, esn := range []bool{false, true} {
			tx := newTestSA(t, a, esn)
			rx := newTestSA(t, a, esn)
			rx.Accept(100, 0)
			good := sealPayload(tx, []byte("some payload bytes"), 101, 47)
			// Four bytes more or less still end on AEAD and NULL's
			// 4-byte boundary, and fail the ICV; not on CBC's block.
			misaligned4 := ErrAuth
			if a.BlockLen() > 4 {
				misaligned4 = ErrShort
			}
			tests := []struct {
				name   string
				mangle func([]byte) []byte
				want   error
			}{
				{"spi", func(b []byte) []byte { b[0] ^= 0x80; return b }, ErrSPI},
				{"seq", func(b []byte) []byte { b[7] ^= 2; return b }, ErrAuth},
				{"iv", func(b []byte) []byte { b[9] ^= 1; return b }, ErrAuth},
				{"ciphertext", func(b []byte) []byte { b[rx.Headroom()+3] ^= 0x10; return b }, ErrAuth},
				{"trailer", func(b []byte) []byte { b[len(b)-a.ICVLen()-1] ^= 1; return b }, ErrAuth},
				{"icv", func(b []byte) []byte { b[len(b)-1] ^= 0x40; return b }, ErrAuth},
				{"truncated4", func(b []byte) []byte { return b[:len(b)-4] }, misaligned4},
				{"truncated1", func(b []byte) []byte { return b[:len(b)-1] }, ErrShort},
				{"appended4", func(b []byte) []byte { return append(b, 0, 0, 0, 0) }, misaligned4},
				{"truncated-block", func(b []byte) []byte { return b[:len(b)-a.BlockLen()] }, ErrAuth},
				{"short", func(b []byte) []byte { return b[:rx.minLen-1] }, ErrShort},
				{"empty", func(b []byte) []byte { return b[:0] }, ErrShort},
			}
			for _, tt := range tests {
				before := rx.Stats()
				_, _, _, err := rx.Open(tt.mangle(bytes.Clone(good)))
				if err != tt.want {
					t.Fatalf("%v esn=%v %s: err = %v, want %v", a, esn, tt.name, err, tt.want)
				}
				after := rx.Stats()
				wantAuth := before.AuthFailures
				if tt.want == ErrAuth {
					wantAuth++
				}
				if after.AuthFailures != wantAuth || after.Replays != before.Replays || after.BadPadding != before.BadPadding {
					t.Fatalf("%s: stats %+v -> %+v", tt.name, before, after)
				}
				if rx.window.Top() != 100 || !rx.window.Check(101) {
					t.Fatalf("%s: window changed", tt.name)
				}
			}
			// The untouched packet still opens.
			if _, _, _, err := rx.Open(bytes.Clone(good)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestBadPadding seals authentic packets with invalid trailers through the
// raw helper, as a faulty peer would, and checks that Open rejects them.
func TestBadPadding(t *testing.T) {
	for _, a := range algorithms {
		tx := newTestSA(t, a, false)
		rx := newTestSA(t, a, false)
		tests := []struct {
			name    string
			trailer []byte // appended to a 6-byte payload
			want    error
		}{
			{"good", []byte{1, 2, 2, 4}, nil},
			{"good-long", []byte{1, 2, 3, 4, 5, 6, 6, 4}, nil}, // RFC 4303 allows up to 255
			{"pad-bytes", []byte{1, 3, 2, 4}, ErrPadding},
			{"pad-zero", []byte{0, 0, 2, 4}, ErrPadding},
			{"pad-too-long", []byte{1, 2, 9, 4}, ErrPadding},
			{"pad-whole", []byte{1, 2, 3, 4, 5, 6, 7, 8, 10, 4}, ErrPadding},
			{"pad-255", append(make([]byte, 14), 255, 4), ErrPadding},
		}
		for i, tt := range tests {
			seq := uint64(i + 1)
			pt := append([]byte{9, 9, 9, 9, 9, 9}, tt.trailer...)
			for len(pt)%a.BlockLen() != 0 {
				pt = append([]byte{9, 9}, pt...)
			}
			h := tx.Headroom()
			b := make([]byte, h+len(pt), h+len(pt)+a.ICVLen())
			copy(b[h:], pt)
			pkt := tx.crypt.seal(b, tx.spi, seq)
			before := rx.Stats().BadPadding
			payload, nh, _, err := rx.Open(pkt)
			if err != tt.want {
				t.Fatalf("%v %s: err = %v, want %v", a, tt.name, err, tt.want)
			}
			if err == nil {
				want := pt[:len(pt)-2-int(pt[len(pt)-2])]
				if !bytes.Equal(payload, want) || nh != 4 {
					t.Fatalf("%s: payload %x nh %d", tt.name, payload, nh)
				}
				continue
			}
			if rx.Stats().BadPadding != before+1 {
				t.Fatalf("%s: BadPadding not counted", tt.name)
			}
			if rx.window.Top() != 0 {
				t.Fatalf("%s: window moved", tt.name)
			}
		}
	}
}

func TestCountDrop(t *testing.T) {
	sa := newTestSA(t, Transform{Algorithm: AES128GCM16}, false)
	sa.CountDrop(DropNextHeader)
	sa.CountDrop(DropGRE)
	sa.CountDrop(DropGRE)
	sa.CountDrop(DropSelector)
	sa.CountDrop(DropSelector)
	sa.CountDrop(DropSelector)
	sa.CountDrop(DropOther)
	sa.CountDrop(DropReason(200))
	want := Stats{BadNextHeader: 1, BadGRE: 2, BadSelector: 3, Other: 2}
	if got := sa.Stats(); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
}

// TestConcurrent runs the pipeline's shape under the race detector: one
// goroutine assigns sequence numbers, several seal, several open, and one
// accepts in order of arrival. The window is larger than the number of
// packets, so however the scheduler reorders them none may be lost (with
// ESN, a packet delayed past the window is inferred into the next 2^32
// subspace and fails authentication, RFC 4303 Appendix A2.2).
func TestConcurrent(t *testing.T) {
	for _, a := range algorithms {
		const packets = 4000
		tx := newTestSA(t, a, true)
		cfg := testConfig(a, true)
		cfg.ReplayWindow = 8192
		rx, err := NewSA(cfg)
		if err != nil {
			t.Fatal(err)
		}
		seqs := make(chan uint64, 64)
		sealed := make(chan []byte, 64)
		opened := make(chan uint64, 64)
		go func() {
			for range packets {
				seq, _ := tx.NextSeq()
				seqs <- seq
			}
			close(seqs)
		}()
		var sealers, openers sync.WaitGroup
		for range 4 {
			sealers.Add(1)
			go func() {
				defer sealers.Done()
				for seq := range seqs {
					payload := make([]byte, 100+int(seq%200))
					binary.BigEndian.PutUint64(payload, seq)
					sealed <- sealPayload(tx, payload, seq, 47)
					tx.CountTx(1, uint64(len(payload)))
					_ = tx.SoftExpired()
				}
			}()
		}
		go func() { sealers.Wait(); close(sealed) }()
		errs := make(chan error, 8)
		for range 4 {
			openers.Add(1)
			go func() {
				defer openers.Done()
				for pkt := range sealed {
					payload, _, seq, err := rx.Open(pkt)
					if err != nil {
						errs <- err
						return
					}
					if binary.BigEndian.Uint64(payload) != seq {
						errs <- errors.New("payload of another packet")
						return
					}
					opened <- seq
				}
			}()
		}
		go func() { openers.Wait(); close(opened) }()
		accepted := 0
		for seq := range opened {
			if rx.Accept(seq, 1) {
				accepted++
			}
			_ = rx.Stats()
		}
		close(errs)
		for err := range errs {
			t.Fatalf("%v: %v", a, err)
		}
		if accepted != packets {
			t.Fatalf("%v: accepted %d of %d", a, accepted, packets)
		}
	}
}

func TestNoAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(1, func() {}); n != 0 {
		t.Fatalf("AllocsPerRun baseline = %v", n)
	}
	for _, a := range algorithms {
		for _, esn := range []bool{false, true} {
			tx := newTestSA(t, a, esn)
			rx := newTestSA(t, a, esn)
			buf := make([]byte, tx.Headroom()+1400+tx.TrailerLen(1400))
			var pkt []byte
			seq := uint64(0)
			if n := testing.AllocsPerRun(200, func() {
				seq++
				pkt = tx.Seal(buf[:tx.Headroom()+1400], seq, 4)
			}); n != 0 {
				t.Errorf("%v esn=%v: Seal allocates %v", a, esn, n)
			}
			pristine := bytes.Clone(pkt)
			work := make([]byte, len(pristine))
			if n := testing.AllocsPerRun(200, func() {
				copy(work, pristine)
				if _, _, _, err := rx.Open(work); err != nil {
					t.Fatal(err)
				}
			}); n != 0 {
				t.Errorf("%v esn=%v: Open allocates %v", a, esn, n)
			}
			rseq := uint64(0)
			if n := testing.AllocsPerRun(200, func() {
				rseq += 3
				rx.Accept(rseq, 1400)
			}); n != 0 {
				t.Errorf("%v esn=%v: Accept allocates %v", a, esn, n)
			}
			if n := testing.AllocsPerRun(200, func() {
				tx.NextSeq()
				tx.CountTx(1, 1400)
			}); n != 0 {
				t.Errorf("%v esn=%v: NextSeq/CountTx allocate %v", a, esn, n)
			}
		}
	}
}

// TestSoftExpiry: the channel closes once the soft byte limit is reached,
// on either the sending or the receiving side.
func TestSoftExpiry(t *testing.T) {
	closed := func(sa *SA) bool {
		select {
		case <-sa.SoftExpiry():
			return true
		default:
			return false
		}
	}
	key := make([]byte, AES256GCM16.KeyLen())
	out, err := NewSA(Config{SPI: 0x1000, Algorithm: AES256GCM16, Key: key, SoftBytes: 1000, HardBytes: 2000})
	if err != nil {
		t.Fatal(err)
	}
	out.CountTx(1, 999)
	if closed(out) {
		t.Fatal("soft expiry after 999 of 1000 bytes")
	}
	out.CountTx(1, 1)
	if !closed(out) || !out.SoftExpired() {
		t.Fatal("no soft expiry at 1000 bytes")
	}
	out.CountTx(1, 1) // closing twice would panic
	in, _ := NewSA(Config{SPI: 0x1001, Algorithm: AES256GCM16, Key: key, SoftBytes: 1000})
	for seq := uint64(1); seq <= 10; seq++ {
		in.Accept(seq, 100)
	}
	if !closed(in) {
		t.Fatal("no soft expiry after receiving 1000 bytes")
	}
}
