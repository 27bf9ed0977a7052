package ikev2

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

func sel(prefix string, proto uint8) Selector {
	return Selector{Prefix: netip.MustParsePrefix(prefix), Protocol: proto}
}

func sels(s ...Selector) []Selector { return s }

// onWire encodes and decodes a TS payload, as the peer would see it.
func onWire(t *testing.T, p *TSPayload) *TSPayload {
	t.Helper()
	got := &TSPayload{Responder: p.Responder}
	if err := got.Decode(p.Encode(nil)); err != nil {
		t.Fatalf("decoding our own TS payload: %v", err)
	}
	return got
}

func TestTSPayloadFor(t *testing.T) {
	p := onWire(t, TSPayloadFor(sels(sel("192.0.2.1/32", 47), sel("10.1.0.0/16", 0), sel("2001:db8::/32", 0)), true))
	if p.Type() != PayloadTSr {
		t.Errorf("type %v, want TSr", p.Type())
	}
	want := []TrafficSelector{
		{IPProtocol: 47, EndPort: 0xffff, StartAddr: netip.MustParseAddr("192.0.2.1"), EndAddr: netip.MustParseAddr("192.0.2.1")},
		{EndPort: 0xffff, StartAddr: netip.MustParseAddr("10.1.0.0"), EndAddr: netip.MustParseAddr("10.1.255.255")},
		{EndPort: 0xffff, StartAddr: netip.MustParseAddr("2001:db8::"), EndAddr: netip.MustParseAddr("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")},
	}
	if !reflect.DeepEqual(p.Selectors, want) {
		t.Errorf("selectors\n%v\nwant\n%v", p.Selectors, want)
	}
	if p.Selectors[0].TSType() != TSIPv4AddrRange || p.Selectors[2].TSType() != TSIPv6AddrRange {
		t.Errorf("TS types %v %v", p.Selectors[0].TSType(), p.Selectors[2].TSType())
	}
	if TSPayloadFor(nil, false).Type() != PayloadTSi {
		t.Error("responder=false is not TSi")
	}
}

// negotiate runs one Child SA's selectors through both sides: the
// initiator proposes its local/peer selectors, the responder narrows them
// against its own, and the initiator accepts the answer.
func negotiate(t *testing.T, iLocal, iPeer, rLocal, rPeer []Selector, narrow bool) (iNegLocal, iNegPeer, rNegLocal, rNegPeer []Selector, err error) {
	t.Helper()
	tsi := onWire(t, TSPayloadFor(iLocal, false))
	tsr := onWire(t, TSPayloadFor(iPeer, true))
	rNegLocal, rNegPeer, err = NarrowTS(rLocal, rPeer, tsi, tsr, narrow)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	// The responder answers TSi = the initiator's side = its peer side.
	ansI := onWire(t, TSPayloadFor(rNegPeer, false))
	ansR := onWire(t, TSPayloadFor(rNegLocal, true))
	iNegLocal, iNegPeer, err = AcceptTS(iLocal, iPeer, ansI, ansR, narrow)
	if err != nil {
		t.Fatalf("initiator rejects the responder's answer: %v", err)
	}
	return iNegLocal, iNegPeer, rNegLocal, rNegPeer, nil
}

func TestNarrowTS(t *testing.T) {
	a, b := "192.0.2.1/32", "198.51.100.2/32"
	tests := []struct {
		name                  string
		iLocal, iPeer         []Selector
		rLocal, rPeer         []Selector
		narrow                bool
		wantILocal, wantIPeer []Selector // nil: ErrTSUnacceptable
	}{
		{"GRE /32 proto 47 exact",
			sels(sel(a, 47)), sels(sel(b, 47)), sels(sel(b, 47)), sels(sel(a, 47)), false,
			sels(sel(a, 47)), sels(sel(b, 47))},
		{"GRE IPv6 /128 exact",
			sels(sel("2001:db8::1/128", 47)), sels(sel("2001:db8::2/128", 47)),
			sels(sel("2001:db8::2/128", 47)), sels(sel("2001:db8::1/128", 47)), false,
			sels(sel("2001:db8::1/128", 47)), sels(sel("2001:db8::2/128", 47))},
		{"GRE proto mismatch exact",
			sels(sel(a, 0)), sels(sel(b, 0)), sels(sel(b, 47)), sels(sel(a, 47)), false, nil, nil},
		{"GRE address mismatch",
			sels(sel(a, 47)), sels(sel(b, 47)), sels(sel(b, 47)), sels(sel("192.0.2.9/32", 47)), false, nil, nil},
		{"GRE address mismatch narrowing",
			sels(sel(a, 47)), sels(sel(b, 47)), sels(sel(b, 47)), sels(sel("192.0.2.9/32", 47)), true, nil, nil},
		{"route 0/0 <-> 0/0",
			sels(sel("0.0.0.0/0", 0)), sels(sel("0.0.0.0/0", 0)), sels(sel("0.0.0.0/0", 0)), sels(sel("0.0.0.0/0", 0)), false,
			sels(sel("0.0.0.0/0", 0)), sels(sel("0.0.0.0/0", 0))},
		{"route ::/0 and 0/0",
			sels(sel("0.0.0.0/0", 0), sel("::/0", 0)), sels(sel("::/0", 0), sel("0.0.0.0/0", 0)),
			sels(sel("0.0.0.0/0", 0), sel("::/0", 0)), sels(sel("::/0", 0), sel("0.0.0.0/0", 0)), false,
			sels(sel("0.0.0.0/0", 0), sel("::/0", 0)), sels(sel("::/0", 0), sel("0.0.0.0/0", 0))},
		{"exact needs all of ours",
			sels(sel("0.0.0.0/0", 0)), sels(sel("0.0.0.0/0", 0)),
			sels(sel("0.0.0.0/0", 0), sel("::/0", 0)), sels(sel("0.0.0.0/0", 0), sel("::/0", 0)), false, nil, nil},
		{"narrow ::/0 and 0/0 to IPv4",
			sels(sel("0.0.0.0/0", 0), sel("::/0", 0)), sels(sel("0.0.0.0/0", 0), sel("::/0", 0)),
			sels(sel("0.0.0.0/0", 0)), sels(sel("0.0.0.0/0", 0)), true,
			sels(sel("0.0.0.0/0", 0)), sels(sel("0.0.0.0/0", 0))},
		{"narrow /16 to /24",
			sels(sel("10.1.0.0/16", 0)), sels(sel("10.2.0.0/16", 0)),
			sels(sel("10.2.3.0/24", 0)), sels(sel("10.1.0.0/16", 0)), true,
			sels(sel("10.1.0.0/16", 0)), sels(sel("10.2.3.0/24", 0))},
		{"narrowing refused",
			sels(sel("10.1.0.0/16", 0)), sels(sel("10.2.0.0/16", 0)),
			sels(sel("10.2.3.0/24", 0)), sels(sel("10.1.0.0/16", 0)), false, nil, nil},
		{"narrow protocol 0 to 47",
			sels(sel(a, 0)), sels(sel(b, 0)), sels(sel(b, 47)), sels(sel(a, 47)), true,
			sels(sel(a, 47)), sels(sel(b, 47))},
		{"narrow 0/0 to GRE /32",
			sels(sel("0.0.0.0/0", 0)), sels(sel("0.0.0.0/0", 0)), sels(sel(b, 47)), sels(sel(a, 47)), true,
			sels(sel(a, 47)), sels(sel(b, 47))},
		{"protocol 47 vs 6",
			sels(sel(a, 47)), sels(sel(b, 47)), sels(sel(b, 6)), sels(sel(a, 6)), true, nil, nil},
		{"family mismatch",
			sels(sel("::/0", 0)), sels(sel("::/0", 0)), sels(sel("0.0.0.0/0", 0)), sels(sel("0.0.0.0/0", 0)), true, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			il, ip, rl, rp, err := negotiate(t, tt.iLocal, tt.iPeer, tt.rLocal, tt.rPeer, tt.narrow)
			if tt.wantILocal == nil {
				if !errors.Is(err, ErrTSUnacceptable) {
					t.Fatalf("negotiated %v <-> %v, want ErrTSUnacceptable (err %v)", il, ip, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(il, tt.wantILocal) || !reflect.DeepEqual(ip, tt.wantIPeer) {
				t.Errorf("initiator has %v <-> %v, want %v <-> %v", il, ip, tt.wantILocal, tt.wantIPeer)
			}
			// The two sides agree, mirrored (order aside).
			if !sameSet(rl, ip) || !sameSet(rp, il) {
				t.Errorf("responder has local %v peer %v; initiator local %v peer %v", rl, rp, il, ip)
			}
		})
	}
}

func sameSet(a, b []Selector) bool {
	if len(a) != len(b) {
		return false
	}
	for _, s := range a {
		if !containsSelector(b, s) {
			return false
		}
	}
	return true
}

func TestNarrowTSRanges(t *testing.T) {
	ours := sels(sel("10.0.0.0/24", 0))
	mk := func(start, end string, proto uint8, sp, ep uint16) *TSPayload {
		return &TSPayload{Selectors: []TrafficSelector{{IPProtocol: proto, StartPort: sp, EndPort: ep,
			StartAddr: netip.MustParseAddr(start), EndAddr: netip.MustParseAddr(end)}}}
	}
	tsr := TSPayloadFor(ours, true)
	// A range that is not a prefix cannot be a Selector: TS_UNACCEPTABLE.
	if _, _, err := NarrowTS(ours, ours, mk("10.0.0.0", "10.0.0.5", 0, 0, 0xffff), tsr, true); !errors.Is(err, ErrTSUnacceptable) {
		t.Errorf("non-prefix range: %v", err)
	}
	// A range overlapping ours in a prefix is narrowed to that prefix.
	_, peer, err := NarrowTS(ours, ours, mk("9.0.0.0", "10.0.0.255", 0, 0, 0xffff), tsr, true)
	if err != nil || !reflect.DeepEqual(peer, sels(sel("10.0.0.0/24", 0))) {
		t.Errorf("overlapping range: %v, %v", peer, err)
	}
	// Port-specific selectors (a triggering packet, §2.9) are left out;
	// the whole-range selector after it is used.
	tsi := &TSPayload{Selectors: []TrafficSelector{
		{IPProtocol: 6, StartPort: 443, EndPort: 443, StartAddr: netip.MustParseAddr("10.0.0.7"), EndAddr: netip.MustParseAddr("10.0.0.7")},
		TSFromPrefix(netip.MustParsePrefix("10.0.0.0/16"), 0),
	}}
	_, peer, err = NarrowTS(ours, ours, tsi, tsr, true)
	if err != nil || !reflect.DeepEqual(peer, sels(sel("10.0.0.0/24", 0))) {
		t.Errorf("with a triggering-packet selector: %v, %v", peer, err)
	}
	if _, _, err := NarrowTS(ours, ours, mk("10.0.0.7", "10.0.0.7", 6, 443, 443), tsr, true); !errors.Is(err, ErrTSUnacceptable) {
		t.Errorf("port-only selector: %v", err)
	}
	// Unmasked configured prefixes compare by their masked form.
	loose := sels(sel("10.0.0.1/24", 0))
	if _, _, err := NarrowTS(loose, loose, TSPayloadFor(ours, false), tsr, false); err != nil {
		t.Errorf("unmasked prefix: %v", err)
	}
	if _, _, err := NarrowTS(ours, ours, nil, tsr, true); !errors.Is(err, ErrTSUnacceptable) {
		t.Errorf("nil TSi: %v", err)
	}
}

func TestAcceptTS(t *testing.T) {
	local, peer := sels(sel("10.1.0.0/16", 0)), sels(sel("10.2.0.0/16", 0))
	ans := func(s ...Selector) *TSPayload { return TSPayloadFor(s, false) }
	tests := []struct {
		name     string
		tsi, tsr *TSPayload
		narrow   bool
		ok       bool
	}{
		{"equal", ans(local...), ans(peer...), false, true},
		{"narrower allowed", ans(sel("10.1.2.0/24", 0)), ans(sel("10.2.0.0/17", 6)), true, true},
		{"narrower refused", ans(sel("10.1.2.0/24", 0)), ans(peer...), false, false},
		{"wider", ans(sel("10.0.0.0/8", 0)), ans(peer...), true, false},
		{"swapped sides", ans(peer...), ans(local...), true, false},
		{"outside", ans(local...), ans(sel("10.3.0.0/16", 0)), true, false},
		{"port range", ans(local...), &TSPayload{Selectors: []TrafficSelector{{StartPort: 1, EndPort: 2,
			StartAddr: netip.MustParseAddr("10.2.0.0"), EndAddr: netip.MustParseAddr("10.2.255.255")}}}, true, false},
		{"missing", nil, ans(peer...), true, false},
	}
	for _, tt := range tests {
		nl, np, err := AcceptTS(local, peer, tt.tsi, tt.tsr, tt.narrow)
		if tt.ok != (err == nil) {
			t.Errorf("%s: AcceptTS = %v, %v, %v", tt.name, nl, np, err)
		}
		if err != nil && !errors.Is(err, ErrTSUnacceptable) {
			t.Errorf("%s: error %v does not wrap ErrTSUnacceptable", tt.name, err)
		}
	}
	// A narrowed protocol comes back in the result.
	nl, np, err := AcceptTS(sels(sel("192.0.2.1/32", 0)), sels(sel("198.51.100.2/32", 0)),
		ans(sel("192.0.2.1/32", 47)), ans(sel("198.51.100.2/32", 47)), true)
	if err != nil || !reflect.DeepEqual(nl, sels(sel("192.0.2.1/32", 47))) || !reflect.DeepEqual(np, sels(sel("198.51.100.2/32", 47))) {
		t.Errorf("narrowed protocol: %v %v %v", nl, np, err)
	}
	// But a protocol of 0 is not inside 47.
	if _, _, err := AcceptTS(sels(sel("192.0.2.1/32", 47)), sels(sel("198.51.100.2/32", 47)),
		ans(sel("192.0.2.1/32", 0)), ans(sel("198.51.100.2/32", 0)), true); !errors.Is(err, ErrTSUnacceptable) {
		t.Errorf("protocol 0 for 47: %v", err)
	}
}
