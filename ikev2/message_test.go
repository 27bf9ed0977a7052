package ikev2

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// unhex joins hex fragments, ignoring spaces, and decodes them.
func unhex(t testing.TB, parts ...string) []byte {
	t.Helper()
	s := strings.ReplaceAll(strings.Join(parts, ""), " ", "")
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// seq returns n bytes counting up from start.
func seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func hexSeq(start byte, n int) string { return hex.EncodeToString(seq(start, n)) }

// initRequest is an IKE_SA_INIT request as greipsec sends it: one IKE
// proposal with the transforms of DESIGN.md (aes256/sha384/prf-sha384/
// ecp384), a KE for group 20, a nonce and the two NAT detection notifies.
func initRequest() *Message {
	return &Message{
		Header: Header{SPIi: 0x0123456789abcdef, Exchange: ExchangeIKESAInit, Flags: FlagInitiator},
		Payloads: []Payload{
			&SAPayload{Proposals: []Proposal{{
				Number:   1,
				Protocol: ProtocolIKE,
				Transforms: []Transform{
					{Type: TransformENCR, ID: EncrAESCBC, KeyLength: 256},
					{Type: TransformPRF, ID: PRFHMACSHA2_384},
					{Type: TransformINTEG, ID: IntegHMACSHA2_384_192},
					{Type: TransformDH, ID: DHECP384},
				},
			}}},
			&KEPayload{Group: DHECP384, Data: seq(0x40, 96)},
			&NoncePayload{Nonce: seq(0x00, 32)},
			&NotifyPayload{NotifyType: NotifyNATDetectionSourceIP, Data: seq(0xa0, 20)},
			&NotifyPayload{NotifyType: NotifyNATDetectionDestinationIP, Data: seq(0xc0, 20)},
		},
	}
}

// initRequestWire is initRequest encoded by hand from the diagrams of
// RFC 7296 §3.1 (header), §3.2 (generic payload header), §3.3.1-§3.3.5
// (proposal, transform, attribute), §3.4 (KE), §3.9 (Nonce), §3.10 (Notify).
func initRequestWire(t testing.TB) []byte {
	return unhex(t,
		// IKE header, §3.1 (28 bytes).
		"0123456789abcdef", // IKE SA Initiator's SPI
		"0000000000000000", // IKE SA Responder's SPI: zero in the first message
		"21",               // Next Payload: SA (33)
		"20",               // MjVer 2, MnVer 0
		"22",               // Exchange Type: IKE_SA_INIT (34)
		"08",               // Flags: Initiator
		"00000000",         // Message ID 0
		"00000110",         // Length 272 = 28+48+104+36+28+28

		// SA payload, §3.3 (48 bytes).
		"22 00 0030", // Next Payload KE (34), C=0, Payload Length 48
		//   Proposal, §3.3.1 (44 bytes).
		"00 00 002c",  //   Last Substruc 0 (last proposal), RESERVED, Proposal Length 44
		"01 01 00 04", //  Proposal Num 1, Protocol ID IKE (1), SPI Size 0, Num Transforms 4
		//     Transform 1, §3.3.2 (12 bytes): ENCR_AES_CBC with Key Length 256.
		"03 00 000c", //     Last Substruc 3 (more), RESERVED, Transform Length 12
		"01 00 000c", //     Transform Type ENCR (1), RESERVED, Transform ID 12
		"800e 0100",  //     AF=1, Attribute Type 14 (Key Length), value 256, §3.3.5
		//     Transform 2 (8 bytes): PRF_HMAC_SHA2_384.
		"03 00 0008", //     Last Substruc 3, RESERVED, Transform Length 8
		"02 00 0006", //     Transform Type PRF (2), RESERVED, Transform ID 6
		//     Transform 3 (8 bytes): AUTH_HMAC_SHA2_384_192.
		"03 00 0008", //     Last Substruc 3, RESERVED, Transform Length 8
		"03 00 000d", //     Transform Type INTEG (3), RESERVED, Transform ID 13
		//     Transform 4 (8 bytes): group 20, 384-bit random ECP.
		"00 00 0008", //     Last Substruc 0 (last transform), RESERVED, Transform Length 8
		"04 00 0014", //     Transform Type DH (4), RESERVED, Transform ID 20

		// KE payload, §3.4 (104 bytes).
		"28 00 0068",     // Next Payload Nonce (40), C=0, Payload Length 104
		"0014 0000",      // Diffie-Hellman Group Num 20, RESERVED
		hexSeq(0x40, 96), // Key Exchange Data: x ‖ y of P-384 (RFC 5903), 96 bytes

		// Nonce payload, §3.9 (36 bytes).
		"29 00 0024",     // Next Payload Notify (41), C=0, Payload Length 36
		hexSeq(0x00, 32), // Nonce Data, 32 bytes

		// Notify payload, §3.10 (28 bytes): NAT_DETECTION_SOURCE_IP.
		"29 00 001c",     // Next Payload Notify (41), C=0, Payload Length 28
		"00 00 4004",     // Protocol ID 0, SPI Size 0, Notify Message Type 16388
		hexSeq(0xa0, 20), // Notification Data: SHA-1 digest, 20 bytes (§2.23)

		// Notify payload, §3.10 (28 bytes): NAT_DETECTION_DESTINATION_IP.
		"00 00 001c",     // Next Payload none (0), C=0, Payload Length 28
		"00 00 4005",     // Protocol ID 0, SPI Size 0, Notify Message Type 16389
		hexSeq(0xc0, 20), // Notification Data
	)
}

func TestInitRequestByteExact(t *testing.T) {
	want := initRequestWire(t)
	got := initRequest().Encode(nil)
	if !bytes.Equal(got, want) {
		t.Fatalf("Encode:\n got %x\nwant %x", got, want)
	}
	m, err := ParseMessage(want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, initRequest()) {
		t.Fatalf("ParseMessage:\n got %+v\nwant %+v", m, initRequest())
	}
	if s, want := m.String(), "IKE_SA_INIT request 0 [ SA KE Nonce N(NAT_DETECTION_SOURCE_IP) N(NAT_DETECTION_DESTINATION_IP) ]"; s != want {
		t.Errorf("String() = %q, want %q", s, want)
	}
	if err := CheckPayloads(m.Exchange, m.IsResponse(), false, m.Payloads); err != nil {
		t.Errorf("CheckPayloads: %v", err)
	}
	// Encode appends.
	prefix := []byte{0, 0, 0, 0}
	if got := initRequest().Encode(prefix); !bytes.Equal(got[:4], prefix) || !bytes.Equal(got[4:], want) {
		t.Error("Encode did not append to its argument")
	}
}

func TestParseHeader(t *testing.T) {
	wire := initRequestWire(t)
	wire[hdrVersion] = 0x2f // minor version 15 is ignored (§3.1)
	wire[hdrFlags] = 0xff   // X bits are ignored on receipt (§3.1)
	binary.BigEndian.PutUint64(wire[hdrSPIr:], 0x1122334455667788)
	binary.BigEndian.PutUint32(wire[hdrMessageID:], 7)
	h, err := ParseHeader(wire)
	if err != nil {
		t.Fatal(err)
	}
	want := Header{SPIi: 0x0123456789abcdef, SPIr: 0x1122334455667788, Exchange: ExchangeIKESAInit,
		Flags: FlagInitiator | FlagVersion | FlagResponse, MessageID: 7}
	if h != want {
		t.Errorf("got %+v, want %+v", h, want)
	}
	if !h.IsResponse() || !h.IsInitiator() {
		t.Error("IsResponse/IsInitiator")
	}
}

func TestParseMessageVersion(t *testing.T) {
	for _, v := range []byte{0x30, 0x10, 0x00, 0xf2} {
		wire := initRequestWire(t)
		wire[hdrVersion] = v
		_, err := ParseMessage(wire)
		var ve *InvalidMajorVersionError
		if !errors.As(err, &ve) {
			t.Fatalf("version %#x: err = %v, want *InvalidMajorVersionError", v, err)
		}
		if ve.Major != v>>4 || ve.Minor != v&0xf || ve.Header.SPIi != 0x0123456789abcdef || ve.Header.Exchange != ExchangeIKESAInit {
			t.Errorf("version %#x: %+v", v, ve)
		}
		if n := ve.Notify(); n.NotifyType != NotifyInvalidMajorVersion || n.Protocol != 0 || n.SPI != nil || n.Data != nil {
			t.Errorf("Notify() = %+v", n)
		}
	}
}

func TestParseMessageLength(t *testing.T) {
	wire := initRequestWire(t)
	// Every truncation of the datagram: the Length field no longer matches.
	for n := 0; n < len(wire); n++ {
		_, err := ParseMessage(wire[:n])
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Fatalf("truncated to %d: err = %v, want *SyntaxError", n, err)
		}
	}
	// Every truncation with the Length field fixed up: the payload chain is
	// cut, which must be caught by the generic header or payload checks.
	for n := HeaderLen; n < len(wire); n++ {
		b := append([]byte(nil), wire[:n]...)
		binary.BigEndian.PutUint32(b[hdrLength:], uint32(n))
		_, err := ParseMessage(b)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Fatalf("cut to %d with fixed length: err = %v, want *SyntaxError", n, err)
		}
	}
	// Length field larger or smaller than the datagram.
	for _, l := range []uint32{uint32(len(wire)) + 1, uint32(len(wire)) - 1, 0, 0xffffffff} {
		b := append([]byte(nil), wire...)
		binary.BigEndian.PutUint32(b[hdrLength:], l)
		_, err := ParseMessage(b)
		if err == nil || !strings.Contains(err.Error(), "length field") {
			t.Errorf("length field %d: err = %v", l, err)
		}
	}
	// Extra bytes after the last payload, counted by the Length field.
	b := append(append([]byte(nil), wire...), 0, 0, 0, 0)
	binary.BigEndian.PutUint32(b[hdrLength:], uint32(len(b)))
	if _, err := ParseMessage(b); err == nil || !strings.Contains(err.Error(), "4 bytes after the last payload") {
		t.Errorf("trailing bytes: err = %v", err)
	}
}

func TestParseMessagePayloadLength(t *testing.T) {
	const saLen = HeaderLen + genLength // offset of the SA payload's length field
	tests := []struct {
		length uint16
		want   string
	}{
		{0, "payload 1 (SA): length 0 < 4"},
		{3, "payload 1 (SA): length 3 < 4"},
		{245, "payload 1 (SA): length 245 overruns the message (244 bytes left)"},
		{0xffff, "overruns the message"},
		{47, "SA payload: proposal 1: proposal length 44 overruns the payload (43 bytes left)"},
	}
	for _, tt := range tests {
		b := initRequestWire(t)
		binary.BigEndian.PutUint16(b[saLen:], tt.length)
		_, err := ParseMessage(b)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("SA length %d: err = %v, want %q", tt.length, err, tt.want)
		}
	}
	// A payload length that lands in the middle of the next payload.
	b := initRequestWire(t)
	binary.BigEndian.PutUint16(b[saLen:], 52)
	if _, err := ParseMessage(b); err == nil {
		t.Error("misaligned payload length accepted")
	}
}

// unknownPayloadMessage returns IKE_SA_INIT with a payload of type 99
// (unassigned) between KE and Nonce.
func unknownPayloadMessage(t testing.TB, critical bool) []byte {
	m := initRequest()
	wire := m.Encode(nil)
	// Insert after SA (28+48) and KE (104).
	at := HeaderLen + 48 + 104
	c := byte(0)
	if critical {
		c = criticalBit
	}
	unknown := []byte{byte(PayloadNonce), c, 0, 7, 0xde, 0xad, 0xbf}
	b := append(append(append([]byte(nil), wire[:at]...), unknown...), wire[at:]...)
	b[HeaderLen+48] = 99 // KE's Next Payload now names the unknown payload
	binary.BigEndian.PutUint32(b[hdrLength:], uint32(len(b)))
	return b
}

func TestUnknownPayload(t *testing.T) {
	m, err := ParseMessage(unknownPayloadMessage(t, false))
	if err != nil {
		t.Fatalf("non-critical unknown payload: %v", err)
	}
	if !reflect.DeepEqual(m, initRequest()) {
		t.Errorf("non-critical unknown payload was not skipped: %v", m)
	}

	_, err = ParseMessage(unknownPayloadMessage(t, true))
	var uc *UnsupportedCriticalError
	if !errors.As(err, &uc) || uc.Type != 99 {
		t.Fatalf("critical unknown payload: err = %v", err)
	}
	if n := uc.Notify(); n.NotifyType != NotifyUnsupportedCriticalPayload || !bytes.Equal(n.Data, []byte{99}) {
		t.Errorf("Notify() = %+v", n)
	}
	if err.Error() != "ikev2: unsupported critical payload PAYLOAD(99)" {
		t.Errorf("Error() = %q", err)
	}

	// The critical bit on a known payload is ignored (§2.5).
	b := initRequestWire(t)
	b[HeaderLen+genCritical] = criticalBit
	if _, err := ParseMessage(b); err != nil {
		t.Errorf("critical bit on SA: %v", err)
	}
}

func authRequest(sk Payload) *Message {
	return &Message{
		Header:   Header{SPIi: 1, SPIr: 2, Exchange: ExchangeIKEAuth, Flags: FlagInitiator, MessageID: 1},
		Payloads: []Payload{sk},
	}
}

func TestEncryptedPayloadLast(t *testing.T) {
	m := authRequest(&EncryptedPayload{NextPayload: PayloadIDi, Data: seq(1, 40)})
	wire := m.Encode(nil)
	// The SK payload's Next Payload field names the first inner payload.
	if wire[HeaderLen] != byte(PayloadIDi) || wire[hdrNextPayload] != byte(PayloadSK) {
		t.Fatalf("next payload fields %d %d", wire[hdrNextPayload], wire[HeaderLen])
	}
	got, err := ParseMessage(wire)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("got %+v", got)
	}

	// SK followed by a Notify: the SK payload's length stops short of the
	// end of the message.
	n := EncodePayloadChain(nil, []Payload{&NotifyPayload{NotifyType: NotifyInitialContact}})
	b := append(append([]byte(nil), wire...), n...)
	binary.BigEndian.PutUint32(b[hdrLength:], uint32(len(b)))
	if _, err := ParseMessage(b); err == nil || !strings.Contains(err.Error(), "SK payload must be the last payload (8 bytes follow)") {
		t.Errorf("SK not last: err = %v", err)
	}

	// Encoding SK anywhere but last is a programmer error.
	assertPanics(t, "SK not last", func() {
		(&Message{Payloads: []Payload{&EncryptedPayload{}, &NoncePayload{Nonce: seq(0, 16)}}}).Encode(nil)
	})

	// SK and SKF are not allowed inside decrypted content.
	inner := EncodePayloadChain(nil, []Payload{&EncryptedPayload{NextPayload: PayloadNone, Data: seq(0, 8)}})
	if _, err := ParsePayloadChain(PayloadSK, inner); err == nil || !strings.Contains(err.Error(), "inside an encrypted payload") {
		t.Errorf("SK inside SK: err = %v", err)
	}
}

func TestEncryptedFragment(t *testing.T) {
	m := authRequest(&EncryptedFragmentPayload{NextPayload: PayloadIDi, FragmentNumber: 1, TotalFragments: 3, Data: seq(9, 33)})
	wire := m.Encode(nil)
	got, err := ParseMessage(wire)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("got %+v", got)
	}
	if s := got.String(); s != "IKE_AUTH request 1 [ SKF(1/3) ]" {
		t.Errorf("String() = %q", s)
	}
}

func assertPanics(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: no panic", what)
		}
	}()
	f()
}

// TestEncodeForSeal protects an IKE_AUTH message in place with AES-GCM as
// RFC 5282 describes (8-byte IV, 4-byte salt, 16-byte ICV, AAD from the
// start of the IKE header to the end of the SK generic header, §5.1), then
// parses, decrypts in place and reads the inner payloads back. It checks
// the layout contract, not the cipher: the cipher is package ikecrypto's.
func TestEncodeForSeal(t *testing.T) {
	inner := []Payload{
		&IDPayload{Identity: IdentityFQDN("left.example.org")},
		&AuthPayload{Method: AuthSharedKeyMIC, Data: seq(0x30, 48)},
		&NotifyPayload{NotifyType: NotifyUseTransportMode},
	}
	for _, last := range []Payload{
		&EncryptedPayload{NextPayload: inner[0].Type()},
		&EncryptedFragmentPayload{NextPayload: inner[0].Type(), FragmentNumber: 1, TotalFragments: 1},
	} {
		t.Run(last.Type().String(), func(t *testing.T) {
			block, err := aes.NewCipher(seq(0, 16))
			if err != nil {
				t.Fatal(err)
			}
			aead, err := cipher.NewGCM(block)
			if err != nil {
				t.Fatal(err)
			}
			salt, iv := seq(0xf0, 4), seq(0x10, 8)
			nonce := append(append([]byte(nil), salt...), iv...)

			plain := EncodePayloadChain(nil, inner)
			plain = append(plain, 0) // Pad Length 0: GCM needs no padding (RFC 5282 §3)
			dataLen := len(iv) + len(plain) + aead.Overhead()

			m := authRequest(last)
			marker := []byte{0, 0, 0, 0} // non-ESP marker of port 4500 (RFC 3948)
			out, l := m.EncodeForSeal(marker, dataLen)

			skHeader := GenericHeaderLen
			if last.Type() == PayloadSKF {
				skHeader += skfHeaderLen
			}
			if l.Start != len(marker) || l.Data != l.Start+HeaderLen+skHeader || l.End != len(out) || l.End-l.Data != dataLen {
				t.Fatalf("layout %+v for %d bytes", l, len(out))
			}
			if got := binary.BigEndian.Uint32(out[l.Start+hdrLength:]); int(got) != l.End-l.Start {
				t.Fatalf("Length field %d, message %d bytes", got, l.End-l.Start)
			}
			if !bytes.Equal(l.SKData(out), make([]byte, dataLen)) {
				t.Fatal("room for the SK data is not zeroed")
			}

			// Seal in place: IV, then the inner payloads encoded straight
			// into the message, then encrypted over themselves.
			copy(out[l.Data:], iv)
			body := out[l.Data+len(iv) : l.Data+len(iv)]
			pt := EncodePayloadChain(body, inner)
			pt = append(pt, 0)
			if &pt[0] != &out[l.Data+len(iv)] || !bytes.Equal(pt, plain) {
				t.Fatal("EncodePayloadChain did not write in place")
			}
			sealed := aead.Seal(body, nonce, pt, l.AAD(out))
			if &sealed[0] != &out[l.Data+len(iv)] || len(sealed) != l.End-l.Data-len(iv) {
				t.Fatal("Seal did not work in place")
			}

			msg := out[len(marker):]
			got, err := ParseMessage(msg)
			if err != nil {
				t.Fatal(err)
			}
			var data []byte
			var first PayloadType
			switch p := got.Payloads[0].(type) {
			case *EncryptedPayload:
				data, first = p.Data, p.NextPayload
			case *EncryptedFragmentPayload:
				data, first = p.Data, p.NextPayload
				if p.FragmentNumber != 1 || p.TotalFragments != 1 {
					t.Fatalf("fragment %d/%d", p.FragmentNumber, p.TotalFragments)
				}
			}
			if &data[0] != &msg[l.Data-len(marker)] {
				t.Fatal("parsed SK data does not alias the message")
			}
			aad := msg[:len(msg)-len(data)]
			if !bytes.Equal(aad, l.AAD(out)) {
				t.Fatal("receiver's AAD differs from sender's")
			}
			pt, err = aead.Open(data[len(iv):len(iv)], nonce, data[len(iv):], aad)
			if err != nil {
				t.Fatal(err)
			}
			padLen := int(pt[len(pt)-1])
			payloads, err := ParsePayloadChain(first, pt[:len(pt)-1-padLen])
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(payloads, inner) {
				t.Fatalf("inner payloads:\n got %+v\nwant %+v", payloads, inner)
			}
		})
	}
	assertPanics(t, "no SK", func() { initRequest().EncodeForSeal(nil, 10) })
	assertPanics(t, "empty", func() { (&Message{}).EncodeForSeal(nil, 10) })
	assertPanics(t, "negative", func() { authRequest(&EncryptedPayload{}).EncodeForSeal(nil, -1) })
	assertPanics(t, "too long", func() { authRequest(&EncryptedPayload{}).EncodeForSeal(nil, 0xffff) })
}

func TestParsedPayloadsOwnTheirBytes(t *testing.T) {
	wire := initRequestWire(t)
	m, err := ParseMessage(wire)
	if err != nil {
		t.Fatal(err)
	}
	for i := range wire {
		wire[i] = 0xee
	}
	if !reflect.DeepEqual(m, initRequest()) {
		t.Error("decoded payloads alias the input buffer")
	}
}

func TestEmptyMessage(t *testing.T) {
	m := &Message{Header: Header{SPIi: 5, SPIr: 6, Exchange: ExchangeInformational, Flags: FlagResponse, MessageID: 9}}
	wire := m.Encode(nil)
	if len(wire) != HeaderLen || wire[hdrNextPayload] != 0 {
		t.Fatalf("empty message %x", wire)
	}
	got, err := ParseMessage(wire)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("got %+v", got)
	}
	if s := got.String(); s != "INFORMATIONAL response 9 [ ]" {
		t.Errorf("String() = %q", s)
	}
}

// fuzzSeeds returns the seed corpus of FuzzParseMessage by file name: valid
// messages of every exchange and payload kind, and damaged ones.
func fuzzSeeds(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{}
	init := initRequestWire(t)
	seeds["ike_sa_init_request"] = init
	seeds["all_payloads"] = allPayloadsMessage().Encode(nil)
	seeds["ike_auth_sk"] = authRequest(&EncryptedPayload{NextPayload: PayloadIDi, Data: seq(0, 64)}).Encode(nil)
	seeds["ike_auth_skf"] = authRequest(&EncryptedFragmentPayload{NextPayload: PayloadIDi, FragmentNumber: 2, TotalFragments: 2, Data: seq(0, 64)}).Encode(nil)
	seeds["informational_delete"] = (&Message{
		Header: Header{SPIi: 1, SPIr: 2, Exchange: ExchangeInformational, MessageID: 3},
		Payloads: []Payload{
			&DeletePayload{Protocol: ProtocolESP, SPIs: []uint32{0xc0ffee01, 0xc0ffee02}},
			&DeletePayload{Protocol: ProtocolIKE},
		},
	}).Encode(nil)

	truncated := append([]byte(nil), init[:100]...)
	binary.BigEndian.PutUint32(truncated[hdrLength:], 100)
	seeds["truncated"] = truncated
	badLen := append([]byte(nil), init...)
	binary.BigEndian.PutUint16(badLen[HeaderLen+48+104+36+genLength:], 3) // first Notify's length
	seeds["bad_payload_length"] = badLen
	badMarker := append([]byte(nil), init...)
	badMarker[HeaderLen+4+8] = 2 // first transform's Last Substruc
	seeds["bad_substructure_marker"] = badMarker
	v3 := append([]byte(nil), init...)
	v3[hdrVersion] = 0x30
	seeds["version_3"] = v3
	seeds["critical_unknown"] = unknownPayloadMessage(t, true)
	return seeds
}

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz/FuzzParseMessage")

// TestFuzzCorpus checks that testdata/fuzz/FuzzParseMessage holds the seeds
// that fuzzSeeds builds (go test -update-corpus rewrites them).
func TestFuzzCorpus(t *testing.T) {
	seeds := fuzzSeeds(t)
	dir := filepath.Join("testdata", "fuzz", "FuzzParseMessage")
	for name, b := range seeds {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		path := filepath.Join(dir, name)
		if *updateCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestFuzzCorpus -update-corpus)", err)
		}
		if string(got) != content {
			t.Errorf("%s is stale (run go test -run TestFuzzCorpus -update-corpus)", path)
		}
	}
}

// FuzzParseMessage: parsing never panics, and a message that parses
// re-encodes to bytes that parse to an equal message.
func FuzzParseMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err != nil {
			var se *SyntaxError
			var uc *UnsupportedCriticalError
			var ve *InvalidMajorVersionError
			if !errors.As(err, &se) && !errors.As(err, &uc) && !errors.As(err, &ve) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		_ = m.String()
		_ = CheckPayloads(m.Exchange, m.IsResponse(), false, m.Payloads)
		_ = CheckPayloads(m.Exchange, m.IsResponse(), true, m.Payloads)
		again := m.Encode(nil)
		m2, err := ParseMessage(again)
		if err != nil {
			t.Fatalf("re-encoded message does not parse: %v\n%x", err, again)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip differs:\n%+v\n%+v", m, m2)
		}
	})
}

// allPayloadsMessage carries every payload kind but SK/SKF, for fuzzing
// and round trips (it follows no exchange's rules).
func allPayloadsMessage() *Message {
	return &Message{
		Header:   Header{SPIi: 0xa1a2a3a4a5a6a7a8, SPIr: 0xb1b2b3b4b5b6b7b8, Exchange: ExchangeCreateChildSA, Flags: FlagResponse, MessageID: 0x01020304},
		Payloads: samplePayloads(),
	}
}

func samplePayloads() []Payload {
	return []Payload{
		&SAPayload{Proposals: []Proposal{
			{Number: 1, Protocol: ProtocolESP, SPI: []byte{0xc1, 0xc2, 0xc3, 0xc4}, Transforms: []Transform{
				{Type: TransformENCR, ID: EncrAESGCM16, KeyLength: 256},
				{Type: TransformDH, ID: DHECP384},
				{Type: TransformESN, ID: ESNNone},
			}},
			{Number: 2, Protocol: ProtocolIKE, SPI: seq(1, 8), Transforms: []Transform{
				{Type: TransformENCR, ID: EncrChaCha20Poly1305},
				{Type: TransformPRF, ID: PRFHMACSHA2_256, Attributes: []TransformAttribute{
					{Type: 17, TV: true, Value: 5},
					{Type: 18, Data: []byte("tlv")},
					{Type: AttributeKeyLength, TV: true, Value: 0},
				}},
			}},
			{Number: 3, Protocol: ProtocolAH, SPI: seq(7, 4)},
		}},
		&KEPayload{Group: DHCurve25519, Data: seq(0x20, 32)},
		&IDPayload{Identity: IdentityAddr(netip.MustParseAddr("192.0.2.1"))},
		&IDPayload{Responder: true, Identity: IdentityAddr(netip.MustParseAddr("2001:db8::1"))},
		&CertPayload{Encoding: CertX509Signature, Data: seq(0x30, 20)},
		&CertReqPayload{Encoding: CertX509Signature, Data: seq(0x50, 40)},
		&AuthPayload{Method: AuthSharedKeyMIC, Data: seq(0x60, 48)},
		&NoncePayload{Nonce: seq(0x70, 16)},
		&NotifyPayload{Protocol: ProtocolESP, SPI: []byte{1, 2, 3, 4}, NotifyType: NotifyRekeySA},
		&NotifyPayload{NotifyType: NotifyCookie, Data: seq(0, 64)},
		&DeletePayload{Protocol: ProtocolAH, SPIs: []uint32{7}},
		&VendorIDPayload{ID: []byte("greipsec")},
		&TSPayload{Selectors: []TrafficSelector{
			TSFromPrefix(netip.MustParsePrefix("192.0.2.1/32"), 47),
			TSFromPrefix(netip.MustParsePrefix("2001:db8::/64"), 0),
		}},
		&TSPayload{Responder: true, Selectors: []TrafficSelector{{
			IPProtocol: 6, StartPort: 80, EndPort: 443,
			StartAddr: netip.MustParseAddr("198.51.100.10"), EndAddr: netip.MustParseAddr("198.51.100.20"),
		}}},
		&CPPayload{CFGType: CFGRequest, Attributes: []ConfigAttribute{{Type: 1}, {Type: 3, Value: []byte{192, 0, 2, 53}}}},
		&EAPPayload{Message: []byte{1, 1, 0, 5, 1}},
	}
}
