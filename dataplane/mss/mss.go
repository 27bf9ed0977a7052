// Package mss clamps the Maximum Segment Size option of TCP connection
// setups that cross the tunnel, so that the segments the two ends then send
// fit the tunnel's MTU without fragmentation (the job of iptables' TCPMSS
// target, Cisco's "ip tcp adjust-mss" and pf's "scrub max-mss").
//
// Clamp works in place on one IPv4 or IPv6 packet and never allocates. It
// has no state, so it is safe for concurrent use on different packets.
package mss

import (
	"encoding/binary"
	"math/bits"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Clamp lowers the MSS option of a TCP SYN (or SYN-ACK) in the IPv4 or IPv6
// packet pkt to at most max4 (IPv4) / max6 (IPv6), updating the TCP checksum
// incrementally (RFC 1624). It returns true if it changed the packet.
//
// Non-TCP packets, segments without SYN or with RST, fragments (IPv4 MF set
// or offset non-zero, IPv6 Fragment header), packets whose TCP header sits
// behind an IPv6 extension header other than Hop-by-Hop, Routing and
// Destination Options (an Authentication Header in particular, whose ICV
// covers the segment), and truncated or malformed packets, including any
// malformed TCP option, are left untouched. A SYN without an MSS option is
// left untouched too: Clamp never changes a packet's length. A max4 or max6
// of zero turns clamping off for that family. Every MSS option in the
// segment is clamped, should there be more than one.
//
// pkt starts with the IP header; bytes after the IP total length (IPv4) or
// payload length (IPv6) are ignored. The TCP checksum must be complete, not
// the partial pseudo-header sum of a checksum offload; Clamp keeps it exactly
// as right or as wrong as it was.
func Clamp(pkt []byte, max4, max6 uint16) bool {
	switch header.IPVersion(pkt) {
	case header.IPv4Version:
		if max4 == 0 {
			return false
		}
		tcp, ok := ipv4TCP(pkt)
		return ok && clampTCP(tcp, max4)
	case header.IPv6Version:
		if max6 == 0 {
			return false
		}
		tcp, ok := ipv6TCP(pkt)
		return ok && clampTCP(tcp, max6)
	}
	return false
}

// ipv4TCP returns the TCP segment that the IPv4 packet pkt carries, if it
// is a well-formed, unfragmented TCP packet.
func ipv4TCP(pkt []byte) ([]byte, bool) {
	ip := header.IPv4(pkt)
	if !ip.IsValid(len(pkt)) {
		return nil, false
	}
	if ip.Protocol() != uint8(header.TCPProtocolNumber) || ip.More() || ip.FragmentOffset() != 0 {
		return nil, false
	}
	return pkt[ip.HeaderLength():ip.TotalLength()], true
}

// ipv6TCP returns the TCP segment that the IPv6 packet pkt carries, after
// walking the extension headers in front of it (RFC 8200 §4).
func ipv6TCP(pkt []byte) ([]byte, bool) {
	ip := header.IPv6(pkt)
	if !ip.IsValid(len(pkt)) {
		return nil, false
	}
	next := ip.NextHeader()
	rest := pkt[header.IPv6MinimumSize : header.IPv6MinimumSize+int(ip.PayloadLength())]
	// Every extension header is at least 8 bytes long, so this ends.
	for {
		switch header.IPv6ExtensionHeaderIdentifier(next) {
		case header.IPv6HopByHopOptionsExtHdrIdentifier,
			header.IPv6RoutingExtHdrIdentifier,
			header.IPv6DestinationOptionsExtHdrIdentifier:
			// Next Header (1), Hdr Ext Len (1) in 8-octet units, not
			// counting the first 8 octets (RFC 8200 §4.3, §4.4, §4.6).
			if len(rest) < 8 {
				return nil, false
			}
			n := (int(rest[1]) + 1) * 8
			if len(rest) < n {
				return nil, false
			}
			next = rest[0]
			rest = rest[n:]
		default:
			// TCP, or something Clamp does not look behind: the
			// Fragment header, AH, ESP, No Next Header, any other
			// protocol.
			if next != uint8(header.TCPProtocolNumber) {
				return nil, false
			}
			return rest, true
		}
	}
}

// clampTCP clamps the MSS options of the TCP segment tcp to max.
func clampTCP(tcp []byte, max uint16) bool {
	if len(tcp) < header.TCPMinimumSize {
		return false
	}
	t := header.TCP(tcp)
	hdrLen := int(t.DataOffset())
	if hdrLen < header.TCPMinimumSize || hdrLen > len(tcp) {
		return false
	}
	if flags := t.Flags(); !flags.Contains(header.TCPFlagSyn) || flags.Intersects(header.TCPFlagRst) {
		return false
	}
	opts := tcp[header.TCPMinimumSize:hdrLen]

	// Check every option before changing any, so that a malformed header
	// is left as it came.
	need := false
	for i := 0; i < len(opts); {
		kind, n, ok := nextOption(opts, i)
		if !ok {
			return false
		}
		if kind == header.TCPOptionMSS && binary.BigEndian.Uint16(opts[i+2:]) > max {
			need = true
		}
		i += n
	}
	if !need {
		return false
	}

	xsum := ^t.Checksum()
	for i := 0; i < len(opts); {
		kind, n, _ := nextOption(opts, i)
		if kind == header.TCPOptionMSS {
			off := header.TCPMinimumSize + i + 2
			old := binary.BigEndian.Uint16(tcp[off:])
			if old > max {
				binary.BigEndian.PutUint16(tcp[off:], max)
				xsum = checksumUpdate(xsum, old, max, off)
			}
		}
		i += n
	}
	t.SetChecksum(^xsum)
	return true
}

// nextOption decodes the TCP option at opts[i] (RFC 9293 §3.1, §3.2) and
// returns its kind and its length, which is the rest of opts for End of
// Option List. ok is false if the option is malformed: a length below 2 or
// past the end of opts, or an MSS option whose length is not 4.
func nextOption(opts []byte, i int) (kind byte, n int, ok bool) {
	switch kind = opts[i]; kind {
	case header.TCPOptionEOL:
		// What follows End of Option List is padding.
		return kind, len(opts) - i, true
	case header.TCPOptionNOP:
		return kind, 1, true
	}
	if i+1 >= len(opts) {
		return kind, 0, false
	}
	n = int(opts[i+1])
	if n < 2 || i+n > len(opts) {
		return kind, 0, false
	}
	if kind == header.TCPOptionMSS && n != header.TCPOptionMSSLength {
		return kind, 0, false
	}
	return kind, n, true
}

// checksumUpdate returns the one's complement sum xsum after the 16-bit
// value at byte offset off of the summed data changes from old to new
// (RFC 1624 §3, eqn. 3, without the final complement). TCP options need not
// be 2-byte aligned: a value at an odd offset straddles two 16-bit words of
// the sum and so counts byte-swapped.
func checksumUpdate(xsum, old, new uint16, off int) uint16 {
	if off%2 == 1 {
		old, new = bits.ReverseBytes16(old), bits.ReverseBytes16(new)
	}
	return checksum.Combine(checksum.Combine(xsum, ^old), new)
}
