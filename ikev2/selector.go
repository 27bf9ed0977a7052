package ikev2

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// This file negotiates the traffic selectors of a Child SA (RFC 7296 §2.9).
// A Selector of the configuration is a prefix, all ports and one IP
// protocol (or any). On the wire a traffic selector is an address range,
// a port range and a protocol; a range that is not a prefix, or a port range
// that is not 0-65535, cannot be represented as a Selector and is never
// agreed to: the responder leaves such an intersection out (and answers
// TS_UNACCEPTABLE if nothing is left), the initiator rejects an answer
// holding one.

// ErrTSUnacceptable reports traffic selectors that leave nothing both
// sides allow, or an answer outside what was proposed. The responder
// answers with the TS_UNACCEPTABLE notify (RFC 7296 §3.10.1). The errors of
// [NarrowTS] and [AcceptTS] wrap it, with the selectors in their text.
var ErrTSUnacceptable = errors.New("ikev2: traffic selectors unacceptable")

// TSPayloadFor returns the TSi (responder false) or TSr (responder true)
// payload for sel: each prefix as a TS_IPV4_ADDR_RANGE or
// TS_IPV6_ADDR_RANGE selector with ports 0-65535 and the selector's
// protocol. It panics if a prefix is invalid or there are more than 255
// selectors, both programmer errors.
func TSPayloadFor(sel []Selector, responder bool) *TSPayload {
	if len(sel) > 0xff {
		panic("ikev2: TSPayloadFor: more than 255 selectors")
	}
	p := &TSPayload{Responder: responder, Selectors: make([]TrafficSelector, len(sel))}
	for i, s := range sel {
		p.Selectors[i] = TSFromPrefix(s.Prefix, s.Protocol)
	}
	return p
}

// selectorTS returns the wire form of s.
func selectorTS(s Selector) TrafficSelector { return TSFromPrefix(s.Prefix, s.Protocol) }

// tsSelector returns ts as a Selector if it is one: a prefix, all ports.
func tsSelector(ts TrafficSelector) (Selector, bool) {
	if ts.StartPort != 0 || ts.EndPort != 0xffff {
		return Selector{}, false
	}
	p, ok := ts.Prefix()
	if !ok {
		return Selector{}, false
	}
	return Selector{Prefix: p, Protocol: ts.IPProtocol}, true
}

// intersectTS returns the traffic that both a and b cover, if any: the
// overlap of the address and port ranges, and the protocol of either when
// the other is 0 (any).
func intersectTS(a, b TrafficSelector) (TrafficSelector, bool) {
	if !a.StartAddr.IsValid() || !b.StartAddr.IsValid() || a.StartAddr.Is4() != b.StartAddr.Is4() {
		return TrafficSelector{}, false
	}
	x := TrafficSelector{
		StartAddr: maxAddr(a.StartAddr, b.StartAddr),
		EndAddr:   minAddr(a.EndAddr, b.EndAddr),
		StartPort: max(a.StartPort, b.StartPort),
		EndPort:   min(a.EndPort, b.EndPort),
	}
	if x.StartAddr.Compare(x.EndAddr) > 0 || x.StartPort > x.EndPort {
		return TrafficSelector{}, false
	}
	switch {
	case a.IPProtocol == b.IPProtocol || b.IPProtocol == 0:
		x.IPProtocol = a.IPProtocol
	case a.IPProtocol == 0:
		x.IPProtocol = b.IPProtocol
	default:
		return TrafficSelector{}, false
	}
	return x, true
}

func maxAddr(a, b netip.Addr) netip.Addr {
	if a.Compare(b) >= 0 {
		return a
	}
	return b
}

func minAddr(a, b netip.Addr) netip.Addr {
	if a.Compare(b) <= 0 {
		return a
	}
	return b
}

// insideTS reports whether inner covers no traffic that outer does not.
func insideTS(inner, outer TrafficSelector) bool {
	x, ok := intersectTS(inner, outer)
	return ok && x == inner
}

func normalize(s Selector) Selector {
	return Selector{Prefix: s.Prefix.Masked(), Protocol: s.Protocol}
}

func containsSelector(set []Selector, s Selector) bool {
	s = normalize(s)
	for _, t := range set {
		if normalize(t) == s {
			return true
		}
	}
	return false
}

// sameSelectors reports whether the selectors of ts are exactly ours, as
// sets (order and repetition do not matter).
func sameSelectors(ours []Selector, ts *TSPayload) bool {
	if ts == nil || len(ts.Selectors) == 0 {
		return false
	}
	var got []Selector
	for _, t := range ts.Selectors {
		s, ok := tsSelector(t)
		if !ok || !containsSelector(ours, s) {
			return false
		}
		got = append(got, s)
	}
	for _, s := range ours {
		if !containsSelector(got, s) {
			return false
		}
	}
	return true
}

// narrowSide intersects every offered selector with every one of ours,
// keeping the intersections that are Selectors, without repeats, in the
// offered order.
func narrowSide(ours []Selector, ts *TSPayload) []Selector {
	if ts == nil {
		return nil
	}
	var out []Selector
	for _, o := range ts.Selectors {
		for _, s := range ours {
			x, ok := intersectTS(o, selectorTS(s))
			if !ok {
				continue
			}
			sel, ok := tsSelector(x)
			if ok && !containsSelector(out, sel) {
				out = append(out, sel)
			}
		}
	}
	return out
}

func selectorsString(sel []Selector) string {
	if len(sel) == 0 {
		return "none"
	}
	s := make([]string, len(sel))
	for i, x := range sel {
		s[i] = x.Prefix.String()
		if x.Protocol != 0 {
			s[i] += fmt.Sprintf(" proto %d", x.Protocol)
		}
	}
	return strings.Join(s, ", ")
}

func tsString(ts *TSPayload) string {
	if ts == nil || len(ts.Selectors) == 0 {
		return "none"
	}
	s := make([]string, len(ts.Selectors))
	for i, x := range ts.Selectors {
		s[i] = x.String()
	}
	return strings.Join(s, ", ")
}

// NarrowTS chooses the traffic selectors of a Child SA as the responder
// (RFC 7296 §2.9). TSi is the initiator's side, so it is compared with our
// peer selectors, and TSr with our local ones.
//
// With allowNarrowing, each side's result is the intersection of every
// offered selector with every one of ours: address ranges overlapped, and a
// protocol of 0 (any) on one side narrowed to the other's. Intersections
// that are not a prefix with all ports are left out (see the top of this
// file). Without allowNarrowing (the GRE modes), the offered selectors must
// be exactly ours, as sets, and ours are returned.
//
// The error wraps [ErrTSUnacceptable] when either side comes out empty.
func NarrowTS(local, peer []Selector, tsi, tsr *TSPayload, allowNarrowing bool) (narrowedLocal, narrowedPeer []Selector, err error) {
	if !allowNarrowing {
		if !sameSelectors(peer, tsi) || !sameSelectors(local, tsr) {
			return nil, nil, fmt.Errorf("%w: initiator proposed TSi %s, TSr %s; configured exactly peer %s, local %s",
				ErrTSUnacceptable, tsString(tsi), tsString(tsr), selectorsString(peer), selectorsString(local))
		}
		return append([]Selector(nil), local...), append([]Selector(nil), peer...), nil
	}
	narrowedPeer = narrowSide(peer, tsi)
	narrowedLocal = narrowSide(local, tsr)
	if len(narrowedPeer) == 0 || len(narrowedLocal) == 0 {
		return nil, nil, fmt.Errorf("%w: initiator proposed TSi %s, TSr %s; configured peer %s, local %s",
			ErrTSUnacceptable, tsString(tsi), tsString(tsr), selectorsString(peer), selectorsString(local))
	}
	return narrowedLocal, narrowedPeer, nil
}

// acceptSide checks the responder's selectors for one side against ours.
func acceptSide(ours []Selector, ts *TSPayload, allowNarrowing bool) ([]Selector, bool) {
	if !allowNarrowing {
		if !sameSelectors(ours, ts) {
			return nil, false
		}
		return append([]Selector(nil), ours...), true
	}
	if ts == nil || len(ts.Selectors) == 0 {
		return nil, false
	}
	var out []Selector
	for _, t := range ts.Selectors {
		s, ok := tsSelector(t)
		if !ok {
			return nil, false
		}
		inside := false
		for _, o := range ours {
			if insideTS(t, selectorTS(o)) {
				inside = true
				break
			}
		}
		if !inside {
			return nil, false
		}
		if !containsSelector(out, s) {
			out = append(out, s)
		}
	}
	return out, true
}

// AcceptTS checks the responder's TSi and TSr as the initiator (RFC 7296
// §2.9): TSi is our side, compared with local, and TSr the peer's. Every
// selector of the answer must be a prefix with all ports, inside one of the
// selectors we proposed (same protocol, or ours 0); without
// allowNarrowing the answer must be exactly ours. It returns the
// negotiated selectors. The error wraps [ErrTSUnacceptable].
func AcceptTS(local, peer []Selector, tsi, tsr *TSPayload, allowNarrowing bool) (negLocal, negPeer []Selector, err error) {
	negLocal, okL := acceptSide(local, tsi, allowNarrowing)
	negPeer, okP := acceptSide(peer, tsr, allowNarrowing)
	if !okL || !okP {
		how := "inside"
		if !allowNarrowing {
			how = "equal to"
		}
		return nil, nil, fmt.Errorf("%w: responder answered TSi %s, TSr %s; want them %s local %s, peer %s",
			ErrTSUnacceptable, tsString(tsi), tsString(tsr), how, selectorsString(local), selectorsString(peer))
	}
	return negLocal, negPeer, nil
}
