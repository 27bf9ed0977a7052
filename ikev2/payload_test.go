package ikev2

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// decodeAs decodes body into a fresh payload of p's kind, carrying over
// the fields that the body does not hold.
func decodeAs(p Payload, body []byte) (Payload, error) {
	var q Payload
	switch p := p.(type) {
	case *EncryptedPayload:
		q = &EncryptedPayload{NextPayload: p.NextPayload}
	case *EncryptedFragmentPayload:
		q = &EncryptedFragmentPayload{NextPayload: p.NextPayload}
	default:
		q = newPayload(p.Type())
	}
	err := q.Decode(body)
	return q, err
}

func TestPayloadRoundTrip(t *testing.T) {
	payloads := append(samplePayloads(),
		&EncryptedPayload{NextPayload: PayloadIDi, Data: seq(0, 50)},
		&EncryptedFragmentPayload{NextPayload: PayloadNone, FragmentNumber: 3, TotalFragments: 7, Data: seq(0, 20)},
		&IDPayload{Identity: IdentityFQDN("gw.example.org")},
		&IDPayload{Responder: true, Identity: IdentityRFC822("ops@example.org")},
		&IDPayload{Identity: IdentityKeyID([]byte{0, 1, 0xfe, 0xff})},
		&IDPayload{Identity: Identity{IDType: IDDERASN1DN, Data: seq(0x30, 10)}},
		&NoncePayload{Nonce: seq(0, 256)},
		&DeletePayload{Protocol: ProtocolIKE},
		&DeletePayload{Protocol: ProtocolESP},
		&CertPayload{Encoding: CertRawPublicKey},
		&CPPayload{CFGType: CFGAck},
		&VendorIDPayload{},
		&EAPPayload{},
		&KEPayload{Group: DHModP2048},
	)
	for _, p := range payloads {
		body := p.Encode(nil)
		q, err := decodeAs(p, body)
		if err != nil {
			t.Errorf("%v: Decode(%x): %v", p.Type(), body, err)
			continue
		}
		if !reflect.DeepEqual(p, q) {
			t.Errorf("%v round trip:\n got %+v\nwant %+v", p.Type(), q, p)
		}
	}

	// The same payloads inside a message, with generic headers.
	m := allPayloadsMessage()
	got, err := ParseMessage(m.Encode(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("message round trip:\n got %+v\nwant %+v", got, m)
	}
}

func TestKeyLengthAttribute(t *testing.T) {
	// RFC 7296 §3.3.5: Key Length is attribute type 14 in TV format.
	tr := Transform{Type: TransformENCR, ID: EncrAESGCM16, KeyLength: 128}
	sa := &SAPayload{Proposals: []Proposal{{Number: 1, Protocol: ProtocolESP, SPI: seq(1, 4), Transforms: []Transform{tr}}}}
	body := sa.Encode(nil)
	want := unhex(t,
		"00 00 0018 01 03 04 01", // last proposal, length 24, #1, ESP, SPI size 4, 1 transform
		"01020304",               // SPI
		"00 00 000c 01 00 0014",  // last transform, length 12, ENCR, AES_GCM_16
		"800e 0080",              // AF=1, Key Length = 128
	)
	if !reflect.DeepEqual(body, want) {
		t.Fatalf("got %x, want %x", body, want)
	}
	// A second Key Length stays visible as an attribute, so a proposal
	// matcher can refuse it.
	dup := append(append([]byte(nil), want...), 0x80, 0x0e, 0x01, 0x00)
	dup[3] += 4  // proposal length
	dup[15] += 4 // transform length
	var got SAPayload
	if err := got.Decode(dup); err != nil {
		t.Fatal(err)
	}
	g := got.Proposals[0].Transforms[0]
	if g.KeyLength != 128 || !reflect.DeepEqual(g.Attributes, []TransformAttribute{{Type: AttributeKeyLength, TV: true, Value: 256}}) {
		t.Errorf("duplicate Key Length decoded as %+v", g)
	}
}

func TestIdentity(t *testing.T) {
	tests := []struct {
		id     Identity
		typ    IDType
		data   []byte
		str    string
		addr   string
		isAddr bool
	}{
		{IdentityAddr(netip.MustParseAddr("192.0.2.7")), IDIPv4Addr, []byte{192, 0, 2, 7}, "192.0.2.7", "192.0.2.7", true},
		{IdentityAddr(netip.MustParseAddr("::ffff:192.0.2.7")), IDIPv4Addr, []byte{192, 0, 2, 7}, "192.0.2.7", "192.0.2.7", true},
		{IdentityAddr(netip.MustParseAddr("2001:db8::7")), IDIPv6Addr, append([]byte{0x20, 0x01, 0x0d, 0xb8}, append(make([]byte, 11), 7)...), "2001:db8::7", "2001:db8::7", true},
		{IdentityFQDN("gw.example.org"), IDFQDN, []byte("gw.example.org"), "gw.example.org", "", false},
		{IdentityRFC822("ops@example.org"), IDRFC822Addr, []byte("ops@example.org"), "ops@example.org", "", false},
		{IdentityKeyID([]byte{0xca, 0xfe}), IDKeyID, []byte{0xca, 0xfe}, "keyid:cafe", "", false},
		{IdentityFQDN("evil\nname"), IDFQDN, []byte("evil\nname"), `"evil\nname"`, "", false},
		{IdentityFQDN(""), IDFQDN, nil, `""`, "", false},
		{Identity{IDType: IDDERASN1DN, Data: []byte{0x30, 0}}, IDDERASN1DN, []byte{0x30, 0}, "ID_DER_ASN1_DN:3000", "", false},
		{Identity{IDType: IDIPv4Addr, Data: []byte{1}}, IDIPv4Addr, []byte{1}, "ID_IPV4_ADDR:01", "", false},
	}
	for _, tt := range tests {
		if tt.id.IDType != tt.typ || string(tt.id.Data) != string(tt.data) {
			t.Errorf("%s: got %v %x, want %v %x", tt.str, tt.id.IDType, tt.id.Data, tt.typ, tt.data)
		}
		if s := tt.id.String(); s != tt.str {
			t.Errorf("String() = %q, want %q", s, tt.str)
		}
		a, ok := tt.id.Addr()
		if ok != tt.isAddr || (ok && a.String() != tt.addr) {
			t.Errorf("%s: Addr() = %v, %v", tt.str, a, ok)
		}
		if !tt.id.Equal(Identity{IDType: tt.typ, Data: tt.data}) {
			t.Errorf("%s: Equal false", tt.str)
		}
		for _, responder := range []bool{false, true} {
			p := &IDPayload{Responder: responder, Identity: tt.id}
			q, err := decodeAs(p, p.Encode(nil))
			if tt.typ == IDIPv4Addr && !tt.isAddr {
				if err == nil {
					t.Errorf("%s: short IPv4 identity decoded", tt.str)
				}
				continue
			}
			if err != nil || !q.(*IDPayload).Identity.Equal(tt.id) || q.Type() != p.Type() {
				t.Errorf("%s: round trip %+v, %v", tt.str, q, err)
			}
		}
	}
	if IdentityFQDN("a").Equal(IdentityRFC822("a")) {
		t.Error("identities of different types are equal")
	}
	assertPanics(t, "invalid address", func() { IdentityAddr(netip.Addr{}) })
}

func TestTrafficSelectorHelpers(t *testing.T) {
	tests := []struct {
		prefix     string
		start, end string
		isPrefix   bool
	}{
		{"192.0.2.1/32", "192.0.2.1", "192.0.2.1", true},
		{"192.0.2.77/24", "192.0.2.0", "192.0.2.255", true},
		{"0.0.0.0/0", "0.0.0.0", "255.255.255.255", true},
		{"10.0.0.0/9", "10.0.0.0", "10.127.255.255", true},
		{"2001:db8::/64", "2001:db8::", "2001:db8::ffff:ffff:ffff:ffff", true},
		{"::/0", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
		{"2001:db8::1/128", "2001:db8::1", "2001:db8::1", true},
	}
	for _, tt := range tests {
		ts := TSFromPrefix(netip.MustParsePrefix(tt.prefix), 47)
		if ts.StartAddr.String() != tt.start || ts.EndAddr.String() != tt.end || ts.IPProtocol != 47 || ts.StartPort != 0 || ts.EndPort != 0xffff {
			t.Errorf("%s: %v", tt.prefix, ts)
		}
		p, ok := ts.Prefix()
		if !ok || p != netip.MustParsePrefix(tt.prefix).Masked() {
			t.Errorf("%s: Prefix() = %v, %v", tt.prefix, p, ok)
		}
	}
	odd := TrafficSelector{StartAddr: netip.MustParseAddr("10.0.0.1"), EndAddr: netip.MustParseAddr("10.0.0.2")}
	if p, ok := odd.Prefix(); ok {
		t.Errorf("range 10.0.0.1-10.0.0.2 is prefix %v", p)
	}
	assertPanics(t, "invalid prefix", func() { TSFromPrefix(netip.Prefix{}, 0) })
	mixed := TrafficSelector{StartAddr: netip.MustParseAddr("10.0.0.1"), EndAddr: netip.MustParseAddr("::1")}
	if _, ok := mixed.Prefix(); ok {
		t.Error("mixed families make a prefix")
	}
	if s := TSFromPrefix(netip.MustParsePrefix("192.0.2.1/32"), 47).String(); s != "192.0.2.1-192.0.2.1 proto 47 ports 0-65535" {
		t.Errorf("String() = %q", s)
	}
	if TSFromPrefix(netip.MustParsePrefix("::/0"), 0).TSType() != TSIPv6AddrRange || odd.TSType() != TSIPv4AddrRange {
		t.Error("TSType")
	}

	// RFC 7296 §3.13.1: TS_IPV4_ADDR_RANGE has Selector Length 16,
	// TS_IPV6_ADDR_RANGE 40.
	p := &TSPayload{Selectors: []TrafficSelector{
		TSFromPrefix(netip.MustParsePrefix("192.0.2.1/32"), 47),
		TSFromPrefix(netip.MustParsePrefix("2001:db8::1/128"), 47),
	}}
	want := unhex(t,
		"02 000000",                              // Number of TSs 2, RESERVED
		"07 2f 0010 0000 ffff c0000201 c0000201", // v4: type 7, GRE, length 16, ports 0-65535
		"08 2f 0028 0000 ffff 20010db8000000000000000000000001 20010db8000000000000000000000001", // v6: type 8, length 40
	)
	if got := p.Encode(nil); !reflect.DeepEqual(got, want) {
		t.Errorf("TS encode:\n got %x\nwant %x", got, want)
	}
}

func TestMalformedPayloads(t *testing.T) {
	tests := []struct {
		name string
		p    Payload
		body string
		want string
	}{
		// SA (RFC 7296 §3.3).
		{"SA empty", &SAPayload{}, "", "SA payload: no proposals"},
		{"SA short proposal", &SAPayload{}, "00 00 0008 01 01 00", "proposal 1: 7 bytes left < proposal header length 8"},
		{"SA proposal length", &SAPayload{}, "00 00 0007 01 01 00 00", "proposal 1: proposal length 7 < 8"},
		{"SA proposal overrun", &SAPayload{}, "00 00 0009 01 01 00 00", "proposal 1: proposal length 9 overruns the payload (8 bytes left)"},
		{"SA marker 1", &SAPayload{}, "01 00 0008 01 01 00 00", "proposal 1: last substructure 1, want 0 or 2"},
		{"SA marker 0 not last", &SAPayload{}, "00 00 0008 01 01 00 00 00 00 0008 02 01 00 00", "proposal 1: last substructure 0 but 8 bytes follow"},
		{"SA marker 2 last", &SAPayload{}, "02 00 0008 01 01 00 00", "proposal 1: last substructure 2 but no proposal follows"},
		{"SA second proposal bad", &SAPayload{}, "02 00 0008 01 01 00 00 03 00 0008 02 01 00 00", "proposal 2: last substructure 3, want 0 or 2"},
		{"SA SPI overrun", &SAPayload{}, "00 00 000a 01 03 04 00 0102", "proposal 1: SPI size 4 overruns proposal length 10"},
		{"SA ESP SPI size", &SAPayload{}, "00 00 0010 01 03 08 00 0102030405060708", "proposal 1: SPI size 8 for ESP, want 4"},
		{"SA IKE SPI size", &SAPayload{}, "00 00 000c 01 01 04 00 01020304", "proposal 1: SPI size 4 for IKE, want 0 or 8"},
		{"SA transform length", &SAPayload{}, "00 00 0010 01 01 00 01 00 00 0005 01 00 000c", "ikev2: SA payload: proposal 1: transform length 5 < 8"},
		{"SA transform short", &SAPayload{}, "00 00 000c 01 01 00 01 00 00 0008", "proposal 1: transform 1: 4 bytes left < transform header length 8"},
		{"SA transform overrun", &SAPayload{}, "00 00 0010 01 01 00 01 00 00 000c 01 00 000c", "transform 1: transform length 12 overruns the proposal (8 bytes left)"},
		{"SA transform marker 2", &SAPayload{}, "00 00 0010 01 01 00 01 02 00 0008 01 00 000c", "transform 1: last substructure 2, want 0 or 3"},
		{"SA transform marker 0 not last", &SAPayload{}, "00 00 0018 01 01 00 02 00 00 0008 01 00 000c 00 00 0008 02 00 0005", "transform 1: last substructure 0 but 8 bytes follow"},
		{"SA transform marker 3 last", &SAPayload{}, "00 00 0010 01 01 00 01 03 00 0008 01 00 000c", "transform 1: last substructure 3 but no transform follows"},
		{"SA num transforms", &SAPayload{}, "00 00 0010 01 01 00 02 00 00 0008 01 00 000c", "proposal 1: 1 transforms present, Num Transforms 2"},
		{"SA attribute short", &SAPayload{}, "00 00 0012 01 01 00 01 00 00 000a 01 00 000c 800e", "transform 1: attribute 1: 2 bytes left < 4"},
		{"SA attribute overrun", &SAPayload{}, "00 00 0014 01 01 00 01 00 00 000c 01 00 000c 0011 0001", "transform 1: attribute 1: length 1 overruns the transform (0 bytes left)"},
		// KE (§3.4), ID (§3.5), CERT (§3.6), CERTREQ (§3.7), AUTH (§3.8).
		{"KE short", &KEPayload{}, "0014 00", "KE payload: length 7 < 8"},
		{"IDi short", &IDPayload{}, "01 0000", "IDi payload: length 7 < 8"},
		{"IDr IPv4 length", &IDPayload{Responder: true}, "01 000000 c0000201 00", "IDr payload: ID_IPV4_ADDR data length 5, want 4"},
		{"IDi IPv6 length", &IDPayload{}, "05 000000 c0000201", "IDi payload: ID_IPV6_ADDR data length 4, want 16"},
		{"CERT empty", &CertPayload{}, "", "CERT payload: length 4 < 5"},
		{"CERTREQ empty", &CertReqPayload{}, "", "CERTREQ payload: length 4 < 5"},
		{"AUTH short", &AuthPayload{}, "02 00 00", "AUTH payload: length 7 < 8"},
		// Nonce (§3.9): 16 to 256 octets.
		{"Nonce 15", &NoncePayload{}, hexSeq(0, 15), "Nonce payload: nonce length 15, want 16 to 256"},
		{"Nonce 257", &NoncePayload{}, hexSeq(0, 257), "Nonce payload: nonce length 257, want 16 to 256"},
		// Notify (§3.10).
		{"Notify short", &NotifyPayload{}, "00 00 40", "Notify payload: length 7 < 8"},
		{"Notify SPI overrun", &NotifyPayload{}, "03 04 4009 010203", "Notify payload: SPI size 4 overruns the payload (3 bytes left)"},
		// Delete (§3.11).
		{"Delete short", &DeletePayload{}, "01 00 00", "Delete payload: length 7 < 8"},
		{"Delete IKE SPIs", &DeletePayload{}, "01 00 0001", "Delete payload: IKE with SPI size 0 and 1 SPIs, want 0 and 0"},
		{"Delete IKE SPI size", &DeletePayload{}, "01 08 0000", "Delete payload: IKE with SPI size 8 and 0 SPIs"},
		{"Delete ESP SPI size", &DeletePayload{}, "03 08 0001 0102030405060708", "Delete payload: SPI size 8 for ESP, want 4"},
		{"Delete count", &DeletePayload{}, "03 04 0002 01020304", "Delete payload: 2 SPIs of 4 bytes need 8 bytes, have 4"},
		{"Delete protocol", &DeletePayload{}, "07 04 0001 01020304", "Delete payload: unknown protocol ID 7"},
		// TS (§3.13).
		{"TSi short", &TSPayload{}, "01 0000", "TSi payload: length 7 < 8"},
		{"TSi none", &TSPayload{}, "00 000000", "TSi payload: no traffic selectors"},
		{"TSr type", &TSPayload{Responder: true}, "01 000000 09 00 0010 0000 ffff 00000000 ffffffff", "TSr payload: selector 1: unsupported TS type 9"},
		{"TSi v4 length", &TSPayload{}, "01 000000 07 00 0028 0000 ffff 00000000 ffffffff", "TSi payload: selector 1: TS_IPV4_ADDR_RANGE selector length 40, want 16"},
		{"TSi v6 length", &TSPayload{}, "01 000000 08 00 0010 0000 ffff 00000000 ffffffff", "TSi payload: selector 1: TS_IPV6_ADDR_RANGE selector length 16, want 40"},
		{"TSi truncated", &TSPayload{}, "01 000000 07 00 0010 0000 ffff 00000000 ffff", "TSi payload: selector 1: selector length 16 overruns the payload (14 bytes left)"},
		{"TSi header cut", &TSPayload{}, "01 000000 07 00 0010 0000", "TSi payload: selector 1: 6 bytes left < 8"},
		{"TSi count", &TSPayload{}, "02 000000 07 00 0010 0000 ffff 00000000 ffffffff", "TSi payload: 1 selectors present, Number of TSs 2"},
		// SKF (RFC 7383 §2.5).
		{"SKF short", &EncryptedFragmentPayload{}, "0001 00", "SKF payload: length 7 < 8"},
		{"SKF number 0", &EncryptedFragmentPayload{}, "0000 0001", "SKF payload: fragment number 0 of 1"},
		{"SKF total 0", &EncryptedFragmentPayload{}, "0001 0000", "SKF payload: fragment number 1 of 0"},
		{"SKF number > total", &EncryptedFragmentPayload{}, "0003 0002 00", "SKF payload: fragment number 3 of 2"},
		// CP (§3.15).
		{"CP short", &CPPayload{}, "01 0000", "CP payload: length 7 < 8"},
		{"CP attribute short", &CPPayload{}, "01 000000 0001 00", "CP payload: attribute 1: 3 bytes left < 4"},
		{"CP attribute overrun", &CPPayload{}, "01 000000 0001 0004 c00002", "CP payload: attribute 1: length 4 overruns the payload (3 bytes left)"},
	}
	for _, tt := range tests {
		err := tt.p.Decode(unhex(t, tt.body))
		var se *SyntaxError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want *SyntaxError containing %q", tt.name, err, tt.want)
		}
	}
}

func TestDecodeReplacesFields(t *testing.T) {
	// One payload of each kind whose every field differs from the samples.
	others := map[PayloadType]Payload{}
	for _, o := range []Payload{
		&SAPayload{Proposals: []Proposal{{Number: 9, Protocol: ProtocolESP, SPI: seq(9, 4), Transforms: []Transform{
			{Type: TransformINTEG, ID: 99, KeyLength: 1, Attributes: []TransformAttribute{{Type: 3, Data: []byte{1}}}},
		}}, {Number: 10}}},
		&KEPayload{Group: 1, Data: seq(1, 3)},
		&IDPayload{Identity: IdentityFQDN("other")},
		&IDPayload{Responder: true, Identity: IdentityKeyID([]byte{1})},
		&CertPayload{Encoding: 1, Data: seq(1, 3)},
		&CertReqPayload{Encoding: 1, Data: seq(1, 3)},
		&AuthPayload{Method: 9, Data: seq(1, 3)},
		&NoncePayload{Nonce: seq(1, 99)},
		&NotifyPayload{Protocol: ProtocolIKE, SPI: seq(1, 8), NotifyType: 1, Data: seq(1, 3)},
		&DeletePayload{Protocol: ProtocolESP, SPIs: []uint32{1, 2, 3}},
		&VendorIDPayload{ID: seq(1, 3)},
		&TSPayload{Selectors: make([]TrafficSelector, 3)},
		&TSPayload{Responder: true, Selectors: make([]TrafficSelector, 3)},
		&CPPayload{CFGType: 9, Attributes: []ConfigAttribute{{Type: 5, Value: []byte{5}}, {Type: 6}, {Type: 7}}},
		&EAPPayload{Message: seq(1, 3)},
	} {
		others[o.Type()] = o
	}
	for _, p := range samplePayloads() {
		dirty, ok := others[p.Type()]
		if !ok {
			t.Fatalf("no other %v payload", p.Type())
		}
		if err := dirty.Decode(p.Encode(nil)); err != nil {
			t.Fatalf("%v: %v", p.Type(), err)
		}
		if !reflect.DeepEqual(dirty, p) {
			t.Errorf("%v: Decode kept old fields:\n got %+v\nwant %+v", p.Type(), dirty, p)
		}
	}
}

func TestEncodePanics(t *testing.T) {
	assertPanics(t, "Delete IKE with SPIs", func() { (&DeletePayload{Protocol: ProtocolIKE, SPIs: []uint32{1}}).Encode(nil) })
	assertPanics(t, "Delete unknown protocol", func() { (&DeletePayload{Protocol: 9}).Encode(nil) })
	assertPanics(t, "TS mixed families", func() {
		(&TSPayload{Selectors: []TrafficSelector{{StartAddr: netip.MustParseAddr("10.0.0.1"), EndAddr: netip.MustParseAddr("::1")}}}).Encode(nil)
	})
	assertPanics(t, "TS no address", func() { (&TSPayload{Selectors: []TrafficSelector{{}}}).Encode(nil) })
	assertPanics(t, "Notify SPI", func() { (&NotifyPayload{SPI: make([]byte, 256)}).Encode(nil) })
	assertPanics(t, "SA transforms", func() {
		(&SAPayload{Proposals: []Proposal{{Transforms: make([]Transform, 256)}}}).Encode(nil)
	})
	assertPanics(t, "payload too long", func() {
		EncodePayloadChain(nil, []Payload{&VendorIDPayload{ID: make([]byte, 0xffff-3)}})
	})
	// The largest payload that fits is fine.
	b := EncodePayloadChain(nil, []Payload{&VendorIDPayload{ID: make([]byte, 0xffff-4)}})
	if p, err := ParsePayloadChain(PayloadVendorID, b); err != nil || len(p[0].(*VendorIDPayload).ID) != 0xffff-4 {
		t.Errorf("65535-byte payload: %v", err)
	}
}
