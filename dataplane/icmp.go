package dataplane

import (
	"encoding/binary"
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

/* ICMP errors to inner senders: what a router sends when a packet does not
 * fit the next hop, here the tunnel.
 *
 * An IPv4 packet with DF, or any IPv6 packet, larger than the tunnel can
 * carry whole over the path (pathLimits) is dropped and answered with
 * ICMPv4 "fragmentation needed and DF set" (type 3 code 4, RFC 792, with
 * the next-hop MTU of RFC 1191 §4) or ICMPv6 "packet too big" (type 2,
 * RFC 4443 §3.2, RFC 8201), written into the tunnel's inner device towards
 * the packet's source.
 *
 * The error's source address is the dropped packet's destination. A
 * router would use its own address on the interface the packet arrived
 * on; here that is the tunnel interface, whose addresses are local to the
 * host the error is written into, and a kernel drops a packet that
 * arrives from outside with a local source address (Linux: "martian
 * source", unless accept_local). The destination is reachable only
 * through the tunnel, so the packet passes reverse-path filtering, and
 * the sender's stack matches the error to its connection by the quoted
 * header, not by the source (RFC 1191 §4, RFC 8201 §4). Errors are not
 * sent when that address is not unicast.
 *
 * No error answers an ICMP error, a non-initial fragment, or a packet from
 * an address that does not name one host (RFC 1122 §3.2.2, RFC 1812
 * §4.3.2.7, RFC 4443 §2.4 (e)). Errors are rate-limited per tunnel by a
 * token bucket (RFC 1812 §4.3.2.8, RFC 4443 §2.4 (f)); a dropped packet
 * that gets no error is still counted.
 */

// Sizes of the ICMP errors (RFC 1812 §4.3.2.3: an ICMPv4 error should
// quote as much as fits in 576 bytes; RFC 4443 §2.4 (c): an ICMPv6 error
// as much as fits in the minimum IPv6 MTU).
const (
	icmpv4MaxLen     = 576
	icmpv6MaxLen     = 1280
	icmpHeaderLen    = 8
	icmpBufferLen    = inboundTUNOffset + icmpv6MaxLen
	icmpTTL          = 64
	icmpBurst        = 10                     // errors a tunnel may send at once
	icmpInterval     = 100 * time.Millisecond // and then one per interval
	minIPv6MTU       = 1280
	ipProtoICMPv4    = 1
	ipProtoICMPv6    = 58
	icmpv4DstUnreach = 3
	icmpv4FragNeeded = 4
	icmpv6TooBig     = 2
)

// tokenBucket limits the rate of ICMP errors of one tunnel: at most
// icmpBurst at once, then one per icmpInterval. Only the tunnel's TUN
// reader uses it.
type tokenBucket struct {
	tokens int
	last   time.Time
}

// take reports whether an error may be sent now, and takes a token.
func (b *tokenBucket) take(now time.Time) bool {
	if b.last.IsZero() {
		b.tokens, b.last = icmpBurst, now
	}
	if n := int(now.Sub(b.last) / icmpInterval); n > 0 {
		b.tokens = min(icmpBurst, b.tokens+n)
		b.last = b.last.Add(time.Duration(n) * icmpInterval)
	}
	if b.tokens == 0 {
		return false
	}
	b.tokens--
	return true
}

// unicast4 reports whether a may be the source or destination of an ICMP
// error: not unspecified, loopback, multicast, limited broadcast or class E
// (RFC 1812 §4.3.2.7, RFC 1122 §3.2.2).
func unicast4(a [4]byte) bool {
	return a[0] != 0 && a[0] != 127 && a[0] < 224
}

// fragNeeded writes into b an IPv4 packet carrying ICMP "fragmentation
// needed and DF set" with next-hop MTU mtu that answers pkt, a well-formed
// IPv4 packet, and returns its length; 0 if no error is due.
func fragNeeded(b, pkt []byte, mtu int) int {
	ip := header.IPv4(pkt)
	if len(pkt) < header.IPv4MinimumSize || !ip.IsValid(len(pkt)) {
		return 0
	}
	src, dst := ip.SourceAddress().As4(), ip.DestinationAddress().As4()
	if !unicast4(src) || !unicast4(dst) || ip.FragmentOffset() != 0 {
		return 0
	}
	hlen := int(ip.HeaderLength())
	if ip.Protocol() == ipProtoICMPv4 {
		// An ICMP error answers no ICMP error: only the queries
		// (echo, timestamp, information, RFC 792) may get one.
		if len(pkt) < hlen+1 {
			return 0
		}
		switch pkt[hlen] {
		case 0, 8, 13, 14, 15, 16:
		default:
			return 0
		}
	}
	quote := min(len(pkt), icmpv4MaxLen-header.IPv4MinimumSize-icmpHeaderLen, len(b)-header.IPv4MinimumSize-icmpHeaderLen)
	n := header.IPv4MinimumSize + icmpHeaderLen + quote
	out := header.IPv4(b[:n])
	out.Encode(&header.IPv4Fields{
		TotalLength: uint16(n),
		TTL:         icmpTTL,
		Protocol:    ipProtoICMPv4,
		SrcAddr:     tcpip.AddrFrom4(dst),
		DstAddr:     tcpip.AddrFrom4(src),
	})
	out.SetChecksum(^out.CalculateChecksum())
	icmp := header.ICMPv4(b[header.IPv4MinimumSize:n])
	icmp.SetType(icmpv4DstUnreach)
	icmp.SetCode(icmpv4FragNeeded)
	icmp.SetChecksum(0)
	binary.BigEndian.PutUint16(icmp[4:], 0) // unused (RFC 1191 §4)
	icmp.SetMTU(uint16(mtu))
	copy(icmp[icmpHeaderLen:], pkt[:quote])
	icmp.SetChecksum(^checksum.Checksum(icmp, 0))
	return n
}

// unicast6 reports whether a may be the source or destination of an
// ICMPv6 error: not unspecified, loopback or multicast (RFC 4443 §2.4).
func unicast6(a netip.Addr) bool {
	return !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast()
}

// icmpv6Error reports whether the IPv6 packet pkt carries an ICMPv6 error
// message (type below 128, RFC 4443 §2.1), looking through the extension
// headers (RFC 8200 §4) that precede it. A packet whose headers cannot be
// followed counts as one, so it gets no error either.
func icmpv6Error(pkt []byte) bool {
	next := pkt[6]
	off := header.IPv6MinimumSize
	for range 8 {
		switch next {
		case ipProtoICMPv6:
			return off >= len(pkt) || pkt[off] < 128
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if off+2 > len(pkt) {
				return true
			}
			next, off = pkt[off], off+(int(pkt[off+1])+1)*8
		case 44: // fragment: only the first has the upper-layer header
			if off+8 > len(pkt) || binary.BigEndian.Uint16(pkt[off+2:])&0xfff8 != 0 {
				return next == ipProtoICMPv6
			}
			next, off = pkt[off], off+8
		default:
			return false
		}
	}
	return true
}

// packetTooBig writes into b an IPv6 packet carrying ICMPv6 "packet too
// big" with MTU mtu that answers pkt, an IPv6 packet of at least the
// fixed header, and returns its length; 0 if no error is due.
func packetTooBig(b, pkt []byte, mtu int) int {
	ip := header.IPv6(pkt)
	src, dst := netip.AddrFrom16(ip.SourceAddress().As16()), netip.AddrFrom16(ip.DestinationAddress().As16())
	// RFC 4443 §2.4 (e.3) allows "packet too big" for a multicast
	// destination, but the error's source would then not be unicast.
	if !unicast6(src) || !unicast6(dst) || icmpv6Error(pkt) {
		return 0
	}
	quote := min(len(pkt), icmpv6MaxLen-header.IPv6MinimumSize-icmpHeaderLen, len(b)-header.IPv6MinimumSize-icmpHeaderLen)
	n := header.IPv6MinimumSize + icmpHeaderLen + quote
	tsrc, tdst := tcpip.AddrFrom16(dst.As16()), tcpip.AddrFrom16(src.As16())
	header.IPv6(b[:n]).Encode(&header.IPv6Fields{
		PayloadLength:     uint16(n - header.IPv6MinimumSize),
		TransportProtocol: ipProtoICMPv6,
		HopLimit:          icmpTTL,
		SrcAddr:           tsrc,
		DstAddr:           tdst,
	})
	icmp := header.ICMPv6(b[header.IPv6MinimumSize:n])
	icmp.SetType(icmpv6TooBig)
	icmp.SetCode(0)
	icmp.SetMTU(uint32(mtu))
	copy(icmp[icmpHeaderLen:], pkt[:quote])
	icmp.SetChecksum(0)
	icmp.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{
		Header:      icmp[:icmpHeaderLen],
		Src:         tsrc,
		Dst:         tdst,
		PayloadCsum: checksum.Checksum(icmp[icmpHeaderLen:], 0),
		PayloadLen:  quote,
	}))
	return n
}
