package dataplane

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
)

// naiveAllows is the definition prefixTable implements: some selector's
// prefix holds addr with the protocol proto or any, and, with a mask,
// some mask prefix holds addr too.
func naiveAllows(sel []Selector, mask []netip.Prefix, masked bool, addr netip.Addr, proto int) bool {
	if masked {
		in := false
		for _, m := range mask {
			in = in || m.Contains(addr)
		}
		if !in {
			return false
		}
	}
	for _, s := range sel {
		if s.Prefix.Contains(addr) && (s.Protocol == 0 || int(s.Protocol) == proto) {
			return true
		}
	}
	return false
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

func TestPrefixTable(t *testing.T) {
	sel := []Selector{
		{Prefix: pfx("10.0.0.0/8"), Protocol: 6},
		{Prefix: pfx("10.1.0.0/16")},               // any protocol, inside the /8
		{Prefix: pfx("10.1.2.0/24"), Protocol: 17}, // nested again
		{Prefix: pfx("10.1.2.3/24"), Protocol: 47}, // not masked: the table masks it
		{Prefix: pfx("192.0.2.255/32")},
		{Prefix: pfx("255.255.255.255/32"), Protocol: 1},
		{Prefix: pfx("fd00::/8"), Protocol: 58},
		{Prefix: pfx("fd00:1::/32")},
		{Prefix: pfx("2001:db8::1/128"), Protocol: 6},
		{Prefix: pfx("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120")},
	}
	queries := []string{
		"10.0.0.0", "10.0.0.1", "9.255.255.255", "10.255.255.255", "11.0.0.0",
		"10.1.0.0", "10.1.255.255", "10.1.2.0", "10.1.2.255", "10.2.0.0",
		"192.0.2.254", "192.0.2.255", "192.0.3.0", "255.255.255.255", "255.255.255.254", "0.0.0.0",
		"fd00::", "fd00::1", "fcff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fd00:1::5", "fd00:2::", "fe00::",
		"2001:db8::", "2001:db8::1", "2001:db8::2", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:feff", "::ffff:10.1.0.1",
	}
	masks := []struct {
		mask   []netip.Prefix
		masked bool
	}{
		{nil, false},
		{[]netip.Prefix{}, true}, // an empty allowed list allows nothing
		{[]netip.Prefix{pfx("10.1.0.0/17"), pfx("fd00::/12"), pfx("10.1.2.128/25")}, true},
		{[]netip.Prefix{pfx("0.0.0.0/0"), pfx("::/0")}, true},
	}
	for mi, m := range masks {
		mask := m.mask
		if !m.masked {
			mask = nil
		}
		tab, err := newPrefixTable(sel, mask)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range queries {
			a := addr(q)
			for _, proto := range []int{0, 1, 6, 17, 47, 58, 255, protoUnknown} {
				if got, want := tab.allows(a, proto), naiveAllows(sel, mask, m.masked, a, proto); got != want {
					t.Errorf("mask %d: allows(%s, %d) = %v, want %v", mi, a, proto, got, want)
				}
			}
		}
	}
	if _, err := newPrefixTable([]Selector{{}}, nil); err == nil {
		t.Error("newPrefixTable accepted an invalid prefix")
	}
}

// TestPrefixTableMerges checks that adjacent prefixes with the same
// protocols become one range and overlapping ones are split.
func TestPrefixTableMerges(t *testing.T) {
	tab, err := newPrefixTable([]Selector{
		{Prefix: pfx("10.0.0.0/25")}, {Prefix: pfx("10.0.0.128/25")}, {Prefix: pfx("10.0.1.0/24")},
		{Prefix: pfx("0.0.0.0/0")}, // covers them all
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.v4) != 1 || tab.v4[0].first != 0 || tab.v4[0].last != 1<<32-1 || !tab.anyProto {
		t.Errorf("0.0.0.0/0 over three prefixes: %+v, want one range of everything", tab.v4)
	}
	tab, err = newPrefixTable([]Selector{{Prefix: pfx("10.0.0.0/8"), Protocol: 6}, {Prefix: pfx("10.1.0.0/16"), Protocol: 17}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.v4) != 3 || tab.anyProto {
		t.Errorf("10.0.0.0/8 tcp with 10.1.0.0/16 udp: %d ranges (anyProto %v), want 3", len(tab.v4), tab.anyProto)
	}
}

// ipv4Header and ipv6Header build minimal headers for policy tests.
func ipv4Header(src, dst string, proto byte) []byte {
	b := make([]byte, 20)
	b[0] = 0x45
	b[ipv4ProtocolOffset] = proto
	s, d := addr(src).As4(), addr(dst).As4()
	copy(b[ipv4SrcOffset:], s[:])
	copy(b[ipv4DstOffset:], d[:])
	return b
}

func ipv6Header(src, dst string, next byte, ext ...byte) []byte {
	b := make([]byte, 40, 40+len(ext))
	b[0] = 0x60
	b[ipv6NextHdrOffset] = next
	s, d := addr(src).As16(), addr(dst).As16()
	copy(b[ipv6SrcOffset:], s[:])
	copy(b[ipv6DstOffset:], d[:])
	binary.BigEndian.PutUint16(b[4:], uint16(len(ext)))
	return append(b, ext...)
}

func TestPolicyPackets(t *testing.T) {
	sel := &Selectors{
		Local: []Selector{{Prefix: pfx("10.1.0.0/24")}, {Prefix: pfx("fd00:1::/64")}},
		Peer:  []Selector{{Prefix: pfx("10.2.0.0/24"), Protocol: 6}, {Prefix: pfx("fd00:2::/64"), Protocol: 17}},
	}
	p, err := newPolicy(ModeRoute, sel, []netip.Prefix{pfx("10.2.0.0/25"), pfx("fd00::/16")})
	if err != nil {
		t.Fatal(err)
	}
	// Hop-by-Hop (8 bytes, next Fragment), Fragment (8 bytes, next UDP).
	hbhFrag := []byte{44, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0, 0}
	for _, tc := range []struct {
		name    string
		pkt     []byte
		in, out bool
	}{
		{"tcp peer to local", ipv4Header("10.2.0.5", "10.1.0.9", 6), true, false},
		{"udp peer to local", ipv4Header("10.2.0.5", "10.1.0.9", 17), false, false},
		{"peer outside allowed", ipv4Header("10.2.0.200", "10.1.0.9", 6), false, false},
		{"spoofed source", ipv4Header("198.51.100.7", "10.1.0.9", 6), false, false},
		{"wrong destination", ipv4Header("10.2.0.5", "10.3.0.9", 6), false, false},
		{"tcp local to peer", ipv4Header("10.1.0.9", "10.2.0.5", 6), false, true},
		{"local to outside the peer", ipv4Header("10.1.0.9", "8.8.8.8", 6), false, false},
		{"v6 udp peer to local", ipv6Header("fd00:2::5", "fd00:1::9", 17), true, false},
		{"v6 udp behind extension headers", ipv6Header("fd00:2::5", "fd00:1::9", 0, hbhFrag...), true, false},
		{"v6 truncated extension header", ipv6Header("fd00:2::5", "fd00:1::9", 0, 44, 0, 0), false, false},
		{"v6 tcp peer to local", ipv6Header("fd00:2::5", "fd00:1::9", 6), false, false},
		{"v6 udp local to peer", ipv6Header("fd00:1::9", "fd00:2::5", 17), false, true},
		{"mixed families", ipv6Header("::ffff:10.2.0.5", "::ffff:10.1.0.9", 6), false, false},
	} {
		if got := p.inbound(tc.pkt); got != tc.in {
			t.Errorf("%s: inbound = %v, want %v", tc.name, got, tc.in)
		}
		if got := p.outbound(tc.pkt); got != tc.out {
			t.Errorf("%s: outbound = %v, want %v", tc.name, got, tc.out)
		}
	}
	var nilPolicy *policy
	if !nilPolicy.inbound(ipv4Header("1.2.3.4", "5.6.7.8", 6)) || !nilPolicy.outbound(ipv6Header("::1", "::2", 6)) {
		t.Error("a nil policy refused a packet")
	}

	// GRE modes: only the allowed list, on the peer side.
	p, err = newPolicy(ModeGRETransport, sel, []netip.Prefix{pfx("10.2.0.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	if !p.inbound(ipv4Header("10.2.0.5", "1.1.1.1", 17)) || p.inbound(ipv4Header("10.3.0.5", "10.1.0.1", 6)) {
		t.Error("GRE mode: the allowed list is not what the inner source is checked against")
	}
	if p, _ := newPolicy(ModeGRETunnel, sel, nil); p != nil {
		t.Error("GRE mode without an allowed list has a policy")
	}
	if p, _ := newPolicy(ModeRoute, nil, nil); p != nil {
		t.Error("manual route mode without an allowed list has a policy")
	}
}

func TestIPv6Protocol(t *testing.T) {
	for _, tc := range []struct {
		ext  []byte
		next byte
		want int
	}{
		{nil, 6, 6},
		{nil, 0, protoUnknown},                  // Hop-by-Hop with nothing behind it
		{[]byte{6, 0, 1, 2, 3, 4, 5, 6}, 60, 6}, // Destination Options
		{[]byte{58, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 43, 58}, // Routing, 16 bytes
		{[]byte{58, 1, 0, 0, 0, 0, 0, 0}, 43, protoUnknown},               // Routing claims 16, has 8
		{[]byte{51, 0, 0, 0, 0, 0, 0, 0}, 44, 51},                         // AH is the next layer protocol
		{[]byte{59, 0, 0, 0, 0, 0, 0, 0}, 60, 59},                         // No Next Header
	} {
		pkt := ipv6Header("::1", "::2", tc.next, tc.ext...)
		if got := ipv6Protocol(pkt); got != tc.want {
			t.Errorf("next %d ext %x: protocol %d, want %d", tc.next, tc.ext, got, tc.want)
		}
	}
	// A chain longer than maxExtensionHeaders.
	var ext []byte
	for range maxExtensionHeaders + 1 {
		ext = append(ext, 60, 0, 0, 0, 0, 0, 0, 0)
	}
	ext = append(ext, 6, 0, 0, 0, 0, 0, 0, 0)
	if got := ipv6Protocol(ipv6Header("::1", "::2", 60, ext...)); got != protoUnknown {
		t.Errorf("overlong chain: protocol %d, want unknown", got)
	}
}

func TestPolicyNoAllocs(t *testing.T) {
	p, err := newPolicy(ModeRoute, &Selectors{
		Local: []Selector{{Prefix: pfx("10.1.0.0/24")}, {Prefix: pfx("fd00:1::/64"), Protocol: 17}},
		Peer:  []Selector{{Prefix: pfx("10.2.0.0/24"), Protocol: 6}, {Prefix: pfx("fd00:2::/64")}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v4, v6 := ipv4Header("10.2.0.5", "10.1.0.9", 6), ipv6Header("fd00:2::5", "fd00:1::9", 60, 17, 0, 0, 0, 0, 0, 0, 0)
	if n := testing.AllocsPerRun(100, func() {
		if !p.inbound(v4) || !p.inbound(v6) {
			t.Fatal("policy refused a packet within it")
		}
	}); n != 0 {
		t.Errorf("%v allocations per check", n)
	}
}

// FuzzPrefixTable builds a table from arbitrary selectors and an arbitrary
// mask and compares every lookup with the definition (naiveAllows).
// Input: a count of selectors and of mask prefixes, then 19-byte records
// (family bit, 16 address bytes, prefix length, protocol), then queries of
// 17 bytes (family bit and address) each with a protocol byte.
func FuzzPrefixTable(f *testing.F) {
	rec := func(v6 bool, a string, bits, proto byte) []byte {
		b := make([]byte, 19)
		ad := addr(a).As16()
		if v6 {
			b[0] = 1
			copy(b[1:], ad[:])
		} else {
			copy(b[1:], ad[12:])
		}
		b[17], b[18] = bits, proto
		return b
	}
	seed := []byte{2, 1}
	seed = append(seed, rec(false, "10.0.0.0", 8, 6)...)
	seed = append(seed, rec(true, "fd00::", 16, 0)...)
	seed = append(seed, rec(false, "10.1.0.0", 16, 0)...)
	seed = append(seed, 0, 10, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6)
	f.Add(seed)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 || len(data) > 4096 {
			return
		}
		nsel, nmask := int(data[0]%32), int(data[1]%8)
		masked := data[1]&0x80 != 0
		data = data[2:]
		parse := func() (netip.Prefix, byte, bool) {
			if len(data) < 19 {
				return netip.Prefix{}, 0, false
			}
			r := data[:19]
			data = data[19:]
			var a netip.Addr
			bits := int(r[17])
			if r[0]&1 == 0 {
				a = netip.AddrFrom4([4]byte(r[1:5]))
				bits %= 33
			} else {
				a = netip.AddrFrom16([16]byte(r[1:17]))
				bits %= 129
			}
			return netip.PrefixFrom(a, bits), r[18], true
		}
		var sel []Selector
		var mask []netip.Prefix
		for range nsel {
			p, proto, ok := parse()
			if !ok {
				break
			}
			sel = append(sel, Selector{Prefix: p, Protocol: proto})
		}
		for range nmask {
			p, _, ok := parse()
			if !ok {
				break
			}
			mask = append(mask, p)
		}
		if masked && mask == nil {
			mask = []netip.Prefix{}
		}
		if !masked {
			mask = nil
		}
		tab, err := newPrefixTable(sel, mask)
		if err != nil {
			t.Fatal(err)
		}
		for len(data) >= 18 {
			var a netip.Addr
			if data[0]&1 == 0 {
				a = netip.AddrFrom4([4]byte(data[1:5]))
			} else {
				a = netip.AddrFrom16([16]byte(data[1:17]))
			}
			proto := int(data[17])
			data = data[18:]
			if got, want := tab.allows(a, proto), naiveAllows(sel, mask, masked, a, proto); got != want {
				t.Fatalf("selectors %v mask %v (masked %v): allows(%s, %d) = %v, want %v", sel, mask, masked, a, proto, got, want)
			}
			// Every range is sorted and disjoint.
			for i := 1; i < len(tab.v4); i++ {
				if tab.v4[i].first <= tab.v4[i-1].last {
					t.Fatalf("IPv4 ranges %d and %d overlap: %+v", i-1, i, tab.v4)
				}
			}
			for i := 1; i < len(tab.v6); i++ {
				if tab.v6[i].first.cmp(tab.v6[i-1].last) <= 0 {
					t.Fatalf("IPv6 ranges %d and %d overlap", i-1, i)
				}
			}
		}
	})
}

// FuzzInnerPolicy checks an arbitrary packet against a policy with
// per-protocol selectors, as RoutineSequentialReceiver does after
// checkInner: it must not panic, and must agree with the definition.
func FuzzInnerPolicy(f *testing.F) {
	f.Add(ipv4Header("10.2.0.5", "10.1.0.9", 6))
	f.Add(ipv6Header("fd00:2::5", "fd00:1::9", 0, 44, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0, 0))
	f.Add(ipv6Header("fd00:2::5", "fd00:1::9", 43, 6, 200))
	sel := &Selectors{
		Local: []Selector{{Prefix: pfx("10.1.0.0/16"), Protocol: 6}, {Prefix: pfx("fd00:1::/32"), Protocol: 17}},
		Peer:  []Selector{{Prefix: pfx("10.2.0.0/16")}, {Prefix: pfx("fd00:2::/32"), Protocol: 17}},
	}
	p, err := newPolicy(ModeRoute, sel, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		var src, dst netip.Addr
		proto := protoUnknown
		switch {
		case len(pkt) >= ipv4HeaderLen && pkt[0]>>4 == 4:
			src, dst = netip.AddrFrom4([4]byte(pkt[12:16])), netip.AddrFrom4([4]byte(pkt[16:20]))
			proto = int(pkt[9])
		case len(pkt) >= ipv6HeaderLen && pkt[0]>>4 == 6:
			src, dst = netip.AddrFrom16([16]byte(pkt[8:24])), netip.AddrFrom16([16]byte(pkt[24:40]))
			proto = ipv6Protocol(pkt)
			if proto < 0 || proto > protoUnknown {
				t.Fatalf("ipv6Protocol = %d", proto)
			}
		default:
			return
		}
		want := naiveAllows(sel.Peer, nil, false, src, proto) && naiveAllows(sel.Local, nil, false, dst, proto)
		if got := p.inbound(pkt); got != want {
			t.Fatalf("inbound(%x) = %v, want %v", pkt, got, want)
		}
	})
}

// BenchmarkPrefixTable measures one lookup in a table of n prefixes
// against a linear scan of the prefixes, the simplest alternative.
func BenchmarkPrefixTable(b *testing.B) {
	for _, n := range []int{1, 16, 256, 4096} {
		sel := make([]Selector, n)
		for i := range sel {
			// Every other /24, so that no two merge into one range.
			sel[i] = Selector{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 7), byte(i << 1), 0}), 24)}
		}
		tab, err := newPrefixTable(sel, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(tab.v4) != n {
			b.Fatalf("%d prefixes made %d ranges", n, len(tab.v4))
		}
		q := sel[n*2/3].Prefix.Addr().Next()
		qa := q.As4()
		qn := binary.BigEndian.Uint32(qa[:])
		b.Run(fmt.Sprintf("table/%d", n), func(b *testing.B) {
			for b.Loop() {
				if !tab.allows4(qn, 6) {
					b.Fatal("miss")
				}
			}
		})
		b.Run(fmt.Sprintf("linear/%d", n), func(b *testing.B) {
			for b.Loop() {
				if !naiveAllows(sel, nil, false, q, 6) {
					b.Fatal("miss")
				}
			}
		})
	}
}
