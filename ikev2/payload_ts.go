package ikev2

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// The Traffic Selector payload body (RFC 7296 §3.13, Figure 19):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Number of TSs |                 RESERVED                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                       <Traffic Selectors>                     ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// and each traffic selector (§3.13.1, Figure 20):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   TS Type     |IP Protocol ID*|       Selector Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Start Port*         |           End Port*           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                         Starting Address*                     ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                         Ending Address*                       ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	tsPayloadHeaderLen = 4

	tsType      = 0
	tsProtocol  = 1
	tsLength    = 2
	tsStartPort = 4
	tsEndPort   = 6
	tsAddrs     = 8

	tsIPv4Len = tsAddrs + 2*4  // 16
	tsIPv6Len = tsAddrs + 2*16 // 40
)

// TSPayload is a Traffic Selector payload, TSi or TSr (RFC 7296 §3.13).
type TSPayload struct {
	Responder bool // TSr, else TSi
	Selectors []TrafficSelector
}

// TrafficSelector is one traffic selector (RFC 7296 §3.13.1): packets whose
// address lies in [StartAddr, EndAddr], whose port lies in [StartPort,
// EndPort] and whose IP protocol is IPProtocol (0: any). Both addresses are
// IPv4 (TS_IPV4_ADDR_RANGE) or both IPv6 (TS_IPV6_ADDR_RANGE). For ICMP the
// "ports" hold the type and code (§3.13.1).
type TrafficSelector struct {
	IPProtocol uint8
	StartPort  uint16
	EndPort    uint16
	StartAddr  netip.Addr
	EndAddr    netip.Addr
}

// TSFromPrefix returns the selector covering the addresses of p, all ports
// and the IP protocol proto (0 for any), e.g. 192.0.2.1/32 and protocol 47
// for GRE between two gateways. It panics if p is not valid.
func TSFromPrefix(p netip.Prefix, proto uint8) TrafficSelector {
	if !p.IsValid() {
		panic("ikev2: TSFromPrefix: invalid prefix")
	}
	p = p.Masked()
	start := p.Addr()
	end := start
	bits := start.BitLen()
	if hostBits := bits - p.Bits(); hostBits > 0 {
		b := start.AsSlice()
		for i := bits - hostBits; i < bits; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
		end, _ = netip.AddrFromSlice(b)
	}
	return TrafficSelector{IPProtocol: proto, StartPort: 0, EndPort: 0xffff, StartAddr: start, EndAddr: end}
}

// Prefix returns the prefix whose addresses are exactly the selector's
// range, if there is one.
func (ts TrafficSelector) Prefix() (netip.Prefix, bool) {
	if !ts.StartAddr.IsValid() || ts.StartAddr.Is4() != ts.EndAddr.Is4() {
		return netip.Prefix{}, false
	}
	for bits := 0; bits <= ts.StartAddr.BitLen(); bits++ {
		p, err := ts.StartAddr.Prefix(bits)
		if err != nil {
			return netip.Prefix{}, false
		}
		if p.Addr() == ts.StartAddr && TSFromPrefix(p, 0).EndAddr == ts.EndAddr {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// TSType returns the selector's TS type, from its start address.
func (ts TrafficSelector) TSType() TSType {
	if ts.StartAddr.Is4() {
		return TSIPv4AddrRange
	}
	return TSIPv6AddrRange
}

// String returns the selector for logs, e.g.
// "192.0.2.1-192.0.2.1 proto 47 ports 0-65535".
func (ts TrafficSelector) String() string {
	return fmt.Sprintf("%v-%v proto %d ports %d-%d", ts.StartAddr, ts.EndAddr, ts.IPProtocol, ts.StartPort, ts.EndPort)
}

// Type returns PayloadTSr if p.Responder, else PayloadTSi.
func (p *TSPayload) Type() PayloadType {
	if p.Responder {
		return PayloadTSr
	}
	return PayloadTSi
}

// Encode appends the payload body. It panics if there are more than 255
// selectors or a selector's addresses are not both IPv4 or both IPv6.
func (p *TSPayload) Encode(b []byte) []byte {
	if len(p.Selectors) > 0xff {
		panic("ikev2: TS payload: more than 255 traffic selectors")
	}
	b = append(b, byte(len(p.Selectors)), 0, 0, 0)
	for _, ts := range p.Selectors {
		s, e := ts.StartAddr, ts.EndAddr
		switch {
		case s.Is4() && e.Is4():
			b = append(b, byte(TSIPv4AddrRange), ts.IPProtocol, 0, tsIPv4Len)
		case s.Is6() && e.Is6():
			b = append(b, byte(TSIPv6AddrRange), ts.IPProtocol, 0, tsIPv6Len)
		default:
			panic("ikev2: TS payload: selector " + ts.String() + " mixes or lacks address families")
		}
		b = binary.BigEndian.AppendUint16(b, ts.StartPort)
		b = binary.BigEndian.AppendUint16(b, ts.EndPort)
		b = append(b, s.AsSlice()...)
		b = append(b, e.AsSlice()...)
	}
	return b
}

// Decode decodes a TS payload body, keeping p.Responder: at least one
// selector, as many as Number of TSs says, each TS_IPV4_ADDR_RANGE with
// Selector Length 16 or TS_IPV6_ADDR_RANGE with 40. Other TS types are
// rejected.
func (p *TSPayload) Decode(body []byte) error {
	name := p.Type().String()
	if err := checkMin(name, body, tsPayloadHeaderLen); err != nil {
		return err
	}
	num := int(body[0])
	if num == 0 {
		return syntaxErrorf("%s payload: no traffic selectors", name)
	}
	p.Selectors = make([]TrafficSelector, 0, num)
	b := body[tsPayloadHeaderLen:]
	for i := 1; len(b) > 0; i++ {
		if len(b) < tsAddrs {
			return syntaxErrorf("%s payload: selector %d: %d bytes left < %d", name, i, len(b), tsAddrs)
		}
		n := int(binary.BigEndian.Uint16(b[tsLength:]))
		typ := TSType(b[tsType])
		var want int
		switch typ {
		case TSIPv4AddrRange:
			want = tsIPv4Len
		case TSIPv6AddrRange:
			want = tsIPv6Len
		default:
			return syntaxErrorf("%s payload: selector %d: unsupported TS type %d", name, i, byte(typ))
		}
		if n != want {
			return syntaxErrorf("%s payload: selector %d: %v selector length %d, want %d", name, i, typ, n, want)
		}
		if n > len(b) {
			return syntaxErrorf("%s payload: selector %d: selector length %d overruns the payload (%d bytes left)", name, i, n, len(b))
		}
		alen := (n - tsAddrs) / 2
		s, _ := netip.AddrFromSlice(b[tsAddrs : tsAddrs+alen])
		e, _ := netip.AddrFromSlice(b[tsAddrs+alen : n])
		p.Selectors = append(p.Selectors, TrafficSelector{
			IPProtocol: b[tsProtocol],
			StartPort:  binary.BigEndian.Uint16(b[tsStartPort:]),
			EndPort:    binary.BigEndian.Uint16(b[tsEndPort:]),
			StartAddr:  s,
			EndAddr:    e,
		})
		b = b[n:]
	}
	if len(p.Selectors) != num {
		return syntaxErrorf("%s payload: %d selectors present, Number of TSs %d", name, len(p.Selectors), num)
	}
	return nil
}
