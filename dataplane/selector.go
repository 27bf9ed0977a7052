package dataplane

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
)

// This file holds the traffic selectors a tunnel enforces on inner packets
// (RFC 4301 §4.4.1 and §5.2: a packet that arrives on an SA must match that
// SA's selectors) and the prefix table that checks an address against them
// on the data path without allocating.

// Selector is one traffic selector as the dataplane enforces it: the inner
// addresses in Prefix and one IP protocol, 0 meaning any (as in an IKEv2
// traffic selector, RFC 7296 §3.13.1). Ports are not enforced: IKE agrees
// only to selectors that cover all ports (package ikev2).
type Selector struct {
	Prefix   netip.Prefix
	Protocol uint8
}

// Selectors are the traffic selectors of one Child SA from this gateway's
// side: Local covers the inner addresses behind this gateway, Peer those
// behind the peer. An inbound packet must come from Peer and go to Local;
// an outbound one from Local to Peer. An address matches a side when it
// lies in one of that side's prefixes whose protocol is the packet's or 0;
// the SA covers every pairing of a local and a peer selector (RFC 7296
// §2.9). A side with no selectors matches nothing.
type Selectors struct {
	Local, Peer []Selector
}

// policy is what the data path checks a tunnel's inner packets against:
// one SA's selectors, narrowed on the peer side by the tunnel's Allowed
// list. A nil table matches every address and protocol. A policy is
// immutable once built and safe for concurrent use.
type policy struct {
	local, peer *prefixTable
}

// newPolicy compiles the selectors of one SA of a tunnel in mode, narrowed
// by the tunnel's allowed list (nil: no list). In route mode sel describes
// the inner packets; nil sel (manual keys) leaves only allowed. In the GRE
// modes the SA's selectors name the two gateways, which decapsulation
// checks exactly, so only allowed applies, to the source of the packet GRE
// carries. It returns nil when nothing is to be checked.
func newPolicy(mode Mode, sel *Selectors, allowed []netip.Prefix) (*policy, error) {
	var p policy
	var err error
	if mode == ModeRoute && sel != nil {
		if p.local, err = newPrefixTable(sel.Local, nil); err != nil {
			return nil, fmt.Errorf("local selectors: %w", err)
		}
		if p.peer, err = newPrefixTable(sel.Peer, allowed); err != nil {
			return nil, fmt.Errorf("peer selectors: %w", err)
		}
		return &p, nil
	}
	if allowed == nil {
		return nil, nil
	}
	all := make([]Selector, len(allowed))
	for i, pfx := range allowed {
		all[i] = Selector{Prefix: pfx}
	}
	if p.peer, err = newPrefixTable(all, nil); err != nil {
		return nil, fmt.Errorf("allowed: %w", err)
	}
	return &p, nil
}

// inbound reports whether the inner packet pkt, which arrived from the
// peer, is within p: its source on the peer side, its destination on the
// local side. pkt must be a whole IPv4 or IPv6 packet (checkInner). A nil
// p allows everything.
func (p *policy) inbound(pkt []byte) bool {
	return p == nil || allowsPacket(pkt, p.peer, p.local)
}

// outbound reports whether the inner packet pkt, read from the TUN device,
// is within p: its source on the local side, its destination on the peer
// side. pkt must be at least a minimal IPv4 or IPv6 header. A nil p allows
// everything.
func (p *policy) outbound(pkt []byte) bool {
	return p == nil || allowsPacket(pkt, p.local, p.peer)
}

// allowsPacket reports whether pkt's source is in from and its destination
// in to, each with pkt's protocol.
func allowsPacket(pkt []byte, from, to *prefixTable) bool {
	if from == nil && to == nil {
		return true
	}
	proto := protoUnknown
	if pkt[0]>>4 == 4 {
		if from.needProto() || to.needProto() {
			proto = int(pkt[ipv4ProtocolOffset])
		}
		return from.allows4(binary.BigEndian.Uint32(pkt[ipv4SrcOffset:]), proto) &&
			to.allows4(binary.BigEndian.Uint32(pkt[ipv4DstOffset:]), proto)
	}
	if from.needProto() || to.needProto() {
		proto = ipv6Protocol(pkt)
	}
	return from.allows6(load128(pkt[ipv6SrcOffset:]), proto) &&
		to.allows6(load128(pkt[ipv6DstOffset:]), proto)
}

// Offsets in the fixed IPv4 (RFC 791 §3.1) and IPv6 (RFC 8200 §3) headers.
const (
	ipv4ProtocolOffset = 9
	ipv4SrcOffset      = 12
	ipv4DstOffset      = 16
	ipv6NextHdrOffset  = 6
	ipv6SrcOffset      = 8
	ipv6DstOffset      = 24
)

// protoUnknown stands for a packet whose upper-layer protocol could not be
// found (a truncated or overlong IPv6 extension header chain): only
// selectors for any protocol match it.
const protoUnknown = 256

// maxExtensionHeaders bounds the IPv6 extension headers ipv6Protocol walks.
const maxExtensionHeaders = 8

// ipv6Protocol returns the upper-layer protocol of the IPv6 packet pkt (a
// fixed header at least), after the extension headers that RFC 4301
// §4.4.1.1 skips to find the "Next Layer Protocol": Hop-by-Hop Options,
// Routing, Fragment and Destination Options (RFC 8200 §4). It returns
// protoUnknown if the chain is truncated or longer than
// maxExtensionHeaders.
func ipv6Protocol(pkt []byte) int {
	next := pkt[ipv6NextHdrOffset]
	rest := pkt[ipv6HeaderLen:]
	for range maxExtensionHeaders {
		var n int
		switch next {
		case 0, 43, 60: // Hop-by-Hop, Routing, Destination Options
			if len(rest) < 2 {
				return protoUnknown
			}
			n = (int(rest[1]) + 1) * 8 // Hdr Ext Len in 8-octet units, not counting the first 8
		case 44: // Fragment: fixed 8 bytes
			n = 8
		default:
			return int(next)
		}
		if len(rest) < n {
			return protoUnknown
		}
		next, rest = rest[0], rest[n:]
	}
	return protoUnknown
}

// uint128 is an IPv6 address as a number, for ordering.
type uint128 struct{ hi, lo uint64 }

func load128(b []byte) uint128 {
	return uint128{binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])}
}

func (a uint128) cmp(b uint128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

func (a uint128) next() uint128 {
	if a.lo == ^uint64(0) {
		return uint128{a.hi + 1, 0}
	}
	return uint128{a.hi, a.lo + 1}
}

func (a uint128) prev() uint128 {
	if a.lo == 0 {
		return uint128{a.hi - 1, ^uint64(0)}
	}
	return uint128{a.hi, a.lo - 1}
}

// protoSet is a set of IP protocol numbers, one bit each.
type protoSet [4]uint64

var allProtocols = protoSet{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}

func (s *protoSet) add(p uint8) { s[p>>6] |= 1 << (p & 63) }
func (s *protoSet) union(o *protoSet) {
	s[0], s[1], s[2], s[3] = s[0]|o[0], s[1]|o[1], s[2]|o[2], s[3]|o[3]
}
func (s *protoSet) empty() bool         { return *s == protoSet{} }
func (s *protoSet) contains(p int) bool { return p < protoUnknown && s[p>>6]&(1<<(p&63)) != 0 }

// prefixTable maps an inner address to the IP protocols a policy allows
// for it. It is built once from possibly overlapping prefixes into sorted,
// disjoint address ranges, each with the union of the protocols of every
// prefix that covers it, so that a lookup is one binary search over a flat
// slice (BenchmarkPrefixTable compares it with a linear scan). The zero
// table matches nothing; a nil *prefixTable matches everything.
type prefixTable struct {
	v4       []span4
	v6       []span6
	anyProto bool // every range allows every protocol
}

// span4 and span6 are one range of a prefixTable: first to last inclusive.
type span4 struct {
	first, last uint32
	any         bool // protos is allProtocols
	protos      protoSet
}

type span6 struct {
	first, last uint128
	any         bool
	protos      protoSet
}

// span is the family-independent range newPrefixTable works with.
type span struct {
	first, last uint128
	protos      protoSet
}

// prefixSpan returns the range of addresses in p, as numbers: IPv4
// addresses in the low 32 bits.
func prefixSpan(p netip.Prefix) span {
	p = p.Masked()
	if p.Addr().Is4() {
		a := p.Addr().As4()
		first := uint64(binary.BigEndian.Uint32(a[:]))
		size := uint64(1) << (32 - p.Bits())
		return span{first: uint128{0, first}, last: uint128{0, first + size - 1}}
	}
	a := p.Addr().As16()
	first := load128(a[:])
	last := first
	// The host part is all ones in last. A shift by 64 gives 0 in Go, so
	// 1<<64 - 1 is all ones too.
	if host := uint(128 - p.Bits()); host >= 64 {
		last.lo = ^uint64(0)
		last.hi |= uint64(1)<<(host-64) - 1
	} else {
		last.lo |= uint64(1)<<host - 1
	}
	return span{first: first, last: last}
}

// newPrefixTable builds the table of sel, keeping only addresses within
// mask unless mask is nil. Prefixes of either family may be mixed; an
// IPv4-mapped IPv6 prefix is an IPv6 prefix.
func newPrefixTable(sel []Selector, mask []netip.Prefix) (*prefixTable, error) {
	var s4, s6, m4, m6 []span
	for i, s := range sel {
		if !s.Prefix.IsValid() {
			return nil, fmt.Errorf("selector %d: invalid prefix %v", i+1, s.Prefix)
		}
		sp := prefixSpan(s.Prefix)
		if s.Protocol == 0 {
			sp.protos = allProtocols
		} else {
			sp.protos.add(s.Protocol)
		}
		if s.Prefix.Addr().Is4() {
			s4 = append(s4, sp)
		} else {
			s6 = append(s6, sp)
		}
	}
	for i, p := range mask {
		if !p.IsValid() {
			return nil, fmt.Errorf("allowed prefix %d: invalid prefix %v", i+1, p)
		}
		if p.Addr().Is4() {
			m4 = append(m4, prefixSpan(p))
		} else {
			m6 = append(m6, prefixSpan(p))
		}
	}
	masked := mask != nil
	t := &prefixTable{anyProto: true}
	for _, sp := range flatten(s4, m4, masked, uint128{0, 1<<32 - 1}) {
		r := span4{first: uint32(sp.first.lo), last: uint32(sp.last.lo), protos: sp.protos, any: sp.protos == allProtocols}
		t.anyProto = t.anyProto && r.any
		t.v4 = append(t.v4, r)
	}
	for _, sp := range flatten(s6, m6, masked, uint128{^uint64(0), ^uint64(0)}) {
		r := span6{first: sp.first, last: sp.last, protos: sp.protos, any: sp.protos == allProtocols}
		t.anyProto = t.anyProto && r.any
		t.v6 = append(t.v6, r)
	}
	return t, nil
}

// flatten turns possibly overlapping spans of one family (largest address
// max) into sorted, disjoint ones, each with the union of the protocols of
// the spans that cover it, and, if masked, only where some span of mask
// covers it too. Neighbouring results with the same protocols are merged.
//
// It sweeps over the points where some span starts or ends: between two
// such points the set of covering spans does not change. Prefixes nest or
// are disjoint, so at most one per prefix length covers a point and the
// active lists stay short.
func flatten(spans, mask []span, masked bool, max uint128) []span {
	var bounds []uint128
	for _, list := range [][]span{spans, mask} {
		for _, s := range list {
			bounds = append(bounds, s.first)
			if s.last != max {
				bounds = append(bounds, s.last.next())
			}
		}
	}
	slices.SortFunc(bounds, uint128.cmp)
	bounds = slices.Compact(bounds)
	byFirst := func(a, b span) int { return a.first.cmp(b.first) }
	slices.SortFunc(spans, byFirst)
	slices.SortFunc(mask, byFirst)

	var out []span
	var active, activeMask []span
	si, mi := 0, 0
	for bi, b := range bounds {
		ended := func(s span) bool { return s.last.cmp(b) < 0 }
		active = slices.DeleteFunc(active, ended)
		activeMask = slices.DeleteFunc(activeMask, ended)
		for ; si < len(spans) && spans[si].first.cmp(b) <= 0; si++ {
			if spans[si].last.cmp(b) >= 0 {
				active = append(active, spans[si])
			}
		}
		for ; mi < len(mask) && mask[mi].first.cmp(b) <= 0; mi++ {
			if mask[mi].last.cmp(b) >= 0 {
				activeMask = append(activeMask, mask[mi])
			}
		}
		var set protoSet
		for i := range active {
			set.union(&active[i].protos)
		}
		if set.empty() || masked && len(activeMask) == 0 {
			continue
		}
		last := max
		if bi+1 < len(bounds) {
			last = bounds[bi+1].prev()
		}
		if n := len(out); n > 0 && out[n-1].protos == set && out[n-1].last.next() == b {
			out[n-1].last = last
			continue
		}
		out = append(out, span{first: b, last: last, protos: set})
	}
	return out
}

// needProto reports whether a lookup in t depends on the protocol.
func (t *prefixTable) needProto() bool { return t != nil && !t.anyProto }

// allows4 reports whether the IPv4 address a (as a number) may be used
// with protocol proto. It does not allocate.
func (t *prefixTable) allows4(a uint32, proto int) bool {
	if t == nil {
		return true
	}
	r := t.v4
	lo, hi := 0, len(r) // find the first range that starts after a
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r[m].first <= a {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return false
	}
	s := &r[lo-1]
	return a <= s.last && (s.any || s.protos.contains(proto))
}

// allows6 is allows4 for an IPv6 address.
func (t *prefixTable) allows6(a uint128, proto int) bool {
	if t == nil {
		return true
	}
	r := t.v6
	lo, hi := 0, len(r)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r[m].first.cmp(a) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return false
	}
	s := &r[lo-1]
	return a.cmp(s.last) <= 0 && (s.any || s.protos.contains(proto))
}

// allows reports whether addr may be used with protocol proto (0 to 255,
// or protoUnknown).
func (t *prefixTable) allows(addr netip.Addr, proto int) bool {
	if addr.Is4() {
		a := addr.As4()
		return t.allows4(binary.BigEndian.Uint32(a[:]), proto)
	}
	a := addr.As16()
	return t.allows6(load128(a[:]), proto)
}
