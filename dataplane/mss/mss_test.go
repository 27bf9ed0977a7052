package mss

import (
	"bytes"
	"encoding/binary"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

var (
	src4 = tcpip.AddrFrom4([4]byte{10, 0, 0, 1})
	dst4 = tcpip.AddrFrom4([4]byte{10, 0, 1, 2})
	src6 = tcpip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1})
	dst6 = tcpip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 1, 15: 2})
)

// Option lists, as built by gVisor's encoders.
func optMSS(mss uint16) []byte {
	b := make([]byte, header.TCPOptionMSSLength)
	header.EncodeMSSOption(uint32(mss), b)
	return b
}

// linuxSYNOptions is the option layout of a Linux SYN: MSS, SACK permitted,
// timestamps, NOP, window scale (20 bytes).
func linuxSYNOptions(mss uint16) []byte {
	b := make([]byte, 20)
	n := header.EncodeMSSOption(uint32(mss), b)
	n += header.EncodeSACKPermittedOption(b[n:])
	n += header.EncodeTSOption(0x01020304, 0, b[n:])
	n += header.EncodeNOP(b[n:])
	header.EncodeWSOption(7, b[n:])
	return b
}

// oddMSSOptions puts the MSS value at an odd offset in the TCP header:
// NOP, MSS, NOP, NOP, NOP, timestamps (20 bytes).
func oddMSSOptions(mss uint16) []byte {
	b := make([]byte, 20)
	n := header.EncodeNOP(b)
	n += header.EncodeMSSOption(uint32(mss), b[n:])
	for range 3 {
		n += header.EncodeNOP(b[n:])
	}
	header.EncodeTSOption(0xaabbccdd, 0x11223344, b[n:])
	return b
}

// tsFirstOptions has timestamps before the MSS (NOP, NOP, TS, MSS).
func tsFirstOptions(mss uint16) []byte {
	b := make([]byte, 16)
	n := header.EncodeNOP(b)
	n += header.EncodeNOP(b[n:])
	n += header.EncodeTSOption(5, 6, b[n:])
	header.EncodeMSSOption(uint32(mss), b[n:])
	return b
}

type segment struct {
	flags   header.TCPFlags
	opts    []byte // a multiple of 4 bytes
	payload []byte
}

// encodeTCP writes the segment into b with a correct checksum for the given
// addresses.
func encodeTCP(b []byte, s segment, src, dst tcpip.Address) {
	t := header.TCP(b)
	t.Encode(&header.TCPFields{
		SrcPort:    40000,
		DstPort:    443,
		SeqNum:     0x11111111,
		AckNum:     0x22222222,
		DataOffset: uint8(header.TCPMinimumSize + len(s.opts)),
		Flags:      s.flags,
		WindowSize: 64240,
	})
	copy(b[header.TCPMinimumSize:], s.opts)
	copy(b[header.TCPMinimumSize+len(s.opts):], s.payload)
	t.SetChecksum(^fullTCPSum(b, src, dst))
}

// fullTCPSum computes the TCP checksum sum from scratch (checksum field taken
// as zero), pseudo-header included.
func fullTCPSum(b []byte, src, dst tcpip.Address) uint16 {
	c := bytes.Clone(b)
	header.TCP(c).SetChecksum(0)
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(len(c)))
	return checksum.Checksum(c, xsum)
}

// syn4 builds an IPv4 packet carrying s, with ipOpts as IPv4 options.
func syn4(s segment, ipOpts header.IPv4OptionsSerializer) []byte {
	ihl := header.IPv4MinimumSize + int(ipOpts.Length())
	tcpLen := header.TCPMinimumSize + len(s.opts) + len(s.payload)
	b := make([]byte, ihl+tcpLen)
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(len(b)),
		ID:          1,
		TTL:         64,
		Protocol:    uint8(header.TCPProtocolNumber),
		SrcAddr:     src4,
		DstAddr:     dst4,
		Options:     ipOpts,
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	encodeTCP(b[ihl:], s, src4, dst4)
	return b
}

// syn6 builds an IPv6 packet carrying s behind the given extension headers.
// ext is raw bytes whose first byte (Next Header) chains are filled in here:
// each element of ext is one extension header.
func syn6(s segment, ext ...[]byte) []byte {
	extLen := 0
	for _, e := range ext {
		extLen += len(e)
	}
	tcpLen := header.TCPMinimumSize + len(s.opts) + len(s.payload)
	b := make([]byte, header.IPv6MinimumSize+extLen+tcpLen)
	ip := header.IPv6(b)
	ip.Encode(&header.IPv6Fields{
		PayloadLength:     uint16(extLen + tcpLen),
		TransportProtocol: header.TCPProtocolNumber,
		HopLimit:          64,
		SrcAddr:           src6,
		DstAddr:           dst6,
	})
	off := header.IPv6MinimumSize
	next := &b[header.IPv6NextHeaderOffset]
	for _, e := range ext {
		*next = e[0] // the caller puts this header's own identifier in e[0]
		copy(b[off:], e)
		next = &b[off]
		off += len(e)
	}
	*next = uint8(header.TCPProtocolNumber)
	encodeTCP(b[off:], s, src6, dst6)
	return b
}

// Extension headers for syn6. Byte 0 holds the header's own identifier,
// which syn6 moves to the previous Next Header field.
func extHdr(id header.IPv6ExtensionHeaderIdentifier, units int) []byte {
	b := make([]byte, 8*(units+1))
	b[0] = uint8(id)
	b[1] = uint8(units)
	if id == header.IPv6HopByHopOptionsExtHdrIdentifier || id == header.IPv6DestinationOptionsExtHdrIdentifier {
		// PadN filling the rest (RFC 8200 §4.2).
		b[2], b[3] = 1, uint8(len(b)-4)
	}
	if id == header.IPv6RoutingExtHdrIdentifier {
		b[2] = 253 // Routing Type: experimental (RFC 4727), and
		b[3] = 0   // Segments Left 0, so a node ignores it (RFC 8200 §4.4).
	}
	return b
}

// tcpOffset returns where the TCP header starts in a packet built by syn4 or
// syn6 (computed from what the builders wrote, not by Clamp's code).
func tcpOffset(t *testing.T, pkt []byte, extLen int) (int, tcpip.Address, tcpip.Address) {
	t.Helper()
	if header.IPVersion(pkt) == 4 {
		ip := header.IPv4(pkt)
		return int(ip.HeaderLength()), src4, dst4
	}
	return header.IPv6MinimumSize + extLen, src6, dst6
}

// checkClamped asserts that after a Clamp that returned true the MSS value
// at option offset mssAt is want, that the checksum equals a from-scratch
// recomputation, and that nothing else changed.
func checkClamped(t *testing.T, before, after []byte, tcpOff, mssAt int, want uint16, src, dst tcpip.Address) {
	t.Helper()
	seg := header.TCP(after[tcpOff:])
	pos := tcpOff + header.TCPMinimumSize + mssAt + 2
	if got := binary.BigEndian.Uint16(after[pos:]); got != want {
		t.Errorf("MSS = %d, want %d", got, want)
	}
	if got, want := seg.Checksum(), ^fullTCPSum(after[tcpOff:], src, dst); got != want {
		t.Errorf("checksum %#04x, recomputed %#04x", got, want)
	}
	payload := seg.Payload()
	if !seg.IsChecksumValid(src, dst, checksum.Checksum(payload, 0), uint16(len(payload))) {
		t.Error("gVisor says the TCP checksum is invalid")
	}
	for i := range before {
		if before[i] != after[i] && i != pos && i != pos+1 && i != tcpOff+16 && i != tcpOff+17 {
			t.Errorf("byte %d changed: %#02x -> %#02x", i, before[i], after[i])
		}
	}
}

func TestClamp(t *testing.T) {
	const max4, max6 = 1402, 1382
	for _, tc := range []struct {
		name  string
		opts  func(uint16) []byte
		mssAt int // offset of the MSS option in the options
	}{
		{"mss only", optMSS, 0},
		{"linux", linuxSYNOptions, 0},
		{"odd offset", oddMSSOptions, 1},
		{"timestamps first", tsFirstOptions, 12},
	} {
		for _, flags := range []header.TCPFlags{header.TCPFlagSyn, header.TCPFlagSyn | header.TCPFlagAck, header.TCPFlagSyn | header.TCPFlagEce | header.TCPFlagCwr} {
			for _, payload := range [][]byte{nil, []byte("tfo"), []byte("fast open data!!")} {
				for _, mss := range []uint16{1460, 1403, 8960, 65535} {
					s := segment{flags: flags, opts: tc.opts(mss), payload: payload}
					t.Run(tc.name, func(t *testing.T) {
						pkt := syn4(s, nil)
						before := bytes.Clone(pkt)
						if !Clamp(pkt, max4, max6) {
							t.Fatalf("v4 flags %v mss %d: not clamped", flags, mss)
						}
						off, src, dst := tcpOffset(t, pkt, 0)
						checkClamped(t, before, pkt, off, tc.mssAt, max4, src, dst)
						if Clamp(pkt, max4, max6) {
							t.Error("second Clamp changed the packet again")
						}

						pkt = syn6(s)
						before = bytes.Clone(pkt)
						if !Clamp(pkt, max4, max6) {
							t.Fatalf("v6 flags %v mss %d: not clamped", flags, mss)
						}
						off, src, dst = tcpOffset(t, pkt, 0)
						checkClamped(t, before, pkt, off, tc.mssAt, max6, src, dst)
					})
				}
			}
		}
	}
}

// TestChecksumEdges clamps SYNs whose checksums land on many values,
// including those near 0x0000 and 0xffff, by varying the sequence number.
func TestChecksumEdges(t *testing.T) {
	for _, opts := range [][]byte{optMSS(1460), oddMSSOptions(1460)} {
		for seq := range uint32(70000) {
			pkt := syn4(segment{flags: header.TCPFlagSyn, opts: opts}, nil)
			off := header.IPv4MinimumSize
			tcp := header.TCP(pkt[off:])
			tcp.SetSequenceNumber(seq)
			tcp.SetChecksum(^fullTCPSum(pkt[off:], src4, dst4))
			if !Clamp(pkt, 1400, 1400) {
				t.Fatal("not clamped")
			}
			if got, want := tcp.Checksum(), ^fullTCPSum(pkt[off:], src4, dst4); got != want {
				t.Fatalf("seq %d: checksum %#04x, recomputed %#04x", seq, got, want)
			}
		}
	}
}

func TestClampIPv4Options(t *testing.T) {
	pkt := syn4(segment{flags: header.TCPFlagSyn, opts: linuxSYNOptions(1460)},
		header.IPv4OptionsSerializer{&header.IPv4SerializableRouterAlertOption{}})
	if header.IPv4(pkt).HeaderLength() != 24 {
		t.Fatalf("IHL = %d, want 24", header.IPv4(pkt).HeaderLength())
	}
	before := bytes.Clone(pkt)
	if !Clamp(pkt, 1400, 1400) {
		t.Fatal("not clamped")
	}
	checkClamped(t, before, pkt, 24, 0, 1400, src4, dst4)
}

func TestClampIPv6ExtensionHeaders(t *testing.T) {
	s := segment{flags: header.TCPFlagSyn, opts: oddMSSOptions(1440)}
	for _, tc := range []struct {
		name string
		ext  [][]byte
	}{
		{"hop-by-hop", [][]byte{extHdr(header.IPv6HopByHopOptionsExtHdrIdentifier, 0)}},
		{"routing", [][]byte{extHdr(header.IPv6RoutingExtHdrIdentifier, 2)}},
		{"destination options", [][]byte{extHdr(header.IPv6DestinationOptionsExtHdrIdentifier, 1)}},
		{"all three", [][]byte{
			extHdr(header.IPv6HopByHopOptionsExtHdrIdentifier, 1),
			extHdr(header.IPv6DestinationOptionsExtHdrIdentifier, 0),
			extHdr(header.IPv6RoutingExtHdrIdentifier, 0),
			extHdr(header.IPv6DestinationOptionsExtHdrIdentifier, 3),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkt := syn6(s, tc.ext...)
			extLen := 0
			for _, e := range tc.ext {
				extLen += len(e)
			}
			before := bytes.Clone(pkt)
			if !Clamp(pkt, 1400, 1380) {
				t.Fatal("not clamped")
			}
			off, src, dst := tcpOffset(t, pkt, extLen)
			checkClamped(t, before, pkt, off, 1, 1380, src, dst)
		})
	}

	// gVisor's own hop-by-hop serializer, as a second opinion on the layout.
	b := make([]byte, 200)
	tcpLen := header.TCPMinimumSize + 4
	hbh := header.IPv6SerializableHopByHopExtHdr{&header.IPv6RouterAlertOption{Value: header.IPv6RouterAlertMLD}}
	ext := header.IPv6ExtHdrSerializer{hbh}
	ip := header.IPv6(b)
	ip.Encode(&header.IPv6Fields{
		PayloadLength:     uint16(ext.Length() + tcpLen),
		TransportProtocol: header.TCPProtocolNumber,
		HopLimit:          1,
		SrcAddr:           src6,
		DstAddr:           dst6,
		ExtensionHeaders:  ext,
	})
	off := header.IPv6MinimumSize + ext.Length()
	b = b[:off+tcpLen]
	encodeTCP(b[off:], segment{flags: header.TCPFlagSyn, opts: optMSS(9000)}, src6, dst6)
	before := bytes.Clone(b)
	if !Clamp(b, 0, 1280) {
		t.Fatal("gVisor hop-by-hop: not clamped")
	}
	checkClamped(t, before, b, off, 0, 1280, src6, dst6)
}

func TestMultipleMSS(t *testing.T) {
	opts := append(optMSS(1460), optMSS(1300)...)
	opts = append(opts, optMSS(9000)...)
	pkt := syn4(segment{flags: header.TCPFlagSyn, opts: opts}, nil)
	if !Clamp(pkt, 1400, 1400) {
		t.Fatal("not clamped")
	}
	o := header.TCP(pkt[header.IPv4MinimumSize:]).Options()
	for i, want := range []uint16{1400, 1300, 1400} {
		if got := binary.BigEndian.Uint16(o[4*i+2:]); got != want {
			t.Errorf("MSS option %d = %d, want %d", i, got, want)
		}
	}
	if got, want := header.TCP(pkt[20:]).Checksum(), ^fullTCPSum(pkt[20:], src4, dst4); got != want {
		t.Errorf("checksum %#04x, recomputed %#04x", got, want)
	}
}

// TestUntouched lists packets Clamp must leave exactly as they are.
func TestUntouched(t *testing.T) {
	syn := header.TCPFlagSyn
	v4 := func(s segment) []byte { return syn4(s, nil) }
	mod := func(b []byte, f func([]byte)) []byte { f(b); return b }
	// setOpts replaces the option bytes and leaves the checksum stale,
	// which does not matter: Clamp must not touch these at all.
	setOpts := func(opts []byte) []byte {
		return v4(segment{flags: syn, opts: opts})
	}
	for _, tc := range []struct {
		name string
		pkt  []byte
	}{
		{"mss lower", v4(segment{flags: syn, opts: optMSS(1300)})},
		{"mss equal", v4(segment{flags: syn, opts: optMSS(1400)})},
		{"v6 mss lower", syn6(segment{flags: syn, opts: linuxSYNOptions(1220)})},
		{"no mss option", v4(segment{flags: syn, opts: []byte{1, 1, 1, 1, 3, 3, 7, 0}})},
		{"no options", v4(segment{flags: syn})},
		{"ack", v4(segment{flags: header.TCPFlagAck, opts: optMSS(1460)})},
		{"fin", v4(segment{flags: header.TCPFlagFin | header.TCPFlagAck, opts: optMSS(1460)})},
		{"syn rst", v4(segment{flags: syn | header.TCPFlagRst, opts: optMSS(1460)})},
		{"ipv4 more fragments", mod(v4(segment{flags: syn, opts: optMSS(1460)}), func(b []byte) {
			header.IPv4(b).SetFlagsFragmentOffset(header.IPv4FlagMoreFragments, 0)
		})},
		{"ipv4 fragment offset", mod(v4(segment{flags: syn, opts: optMSS(1460)}), func(b []byte) {
			header.IPv4(b).SetFlagsFragmentOffset(0, 8)
		})},
		{"ipv4 udp", mod(v4(segment{flags: syn, opts: optMSS(1460)}), func(b []byte) {
			b[9] = uint8(header.UDPProtocolNumber)
		})},
		{"ipv4 ihl below 5", mod(v4(segment{flags: syn, opts: optMSS(1460)}), func(b []byte) { b[0] = 0x44 })},
		{"ipv4 ihl past total length", mod(v4(segment{flags: syn, opts: optMSS(1460)}), func(b []byte) { b[0] = 0x4f })},
		{"ipv4 total length past packet", mod(v4(segment{flags: syn, opts: optMSS(1460)}), func(b []byte) {
			header.IPv4(b).SetTotalLength(uint16(len(b) + 1))
		})},
		{"ipv4 total length cuts options", mod(v4(segment{flags: syn, opts: optMSS(1460)}), func(b []byte) {
			header.IPv4(b).SetTotalLength(uint16(len(b) - 2))
		})},
		{"ip version 5", mod(v4(segment{flags: syn, opts: optMSS(1460)}), func(b []byte) { b[0] = 0x55 })},
		{"v6 fragment header", syn6(segment{flags: syn, opts: optMSS(1460)}, fragmentHdr())},
		{"v6 fragment after hop-by-hop", syn6(segment{flags: syn, opts: optMSS(1460)},
			extHdr(header.IPv6HopByHopOptionsExtHdrIdentifier, 0), fragmentHdr())},
		{"v6 authentication header", syn6(segment{flags: syn, opts: optMSS(1460)}, ahHdr())},
		{"v6 ext header past payload", mod(syn6(segment{flags: syn, opts: optMSS(1460)},
			extHdr(header.IPv6DestinationOptionsExtHdrIdentifier, 0)), func(b []byte) { b[header.IPv6MinimumSize+1] = 200 })},
		{"v6 udp", mod(syn6(segment{flags: syn, opts: optMSS(1460)}), func(b []byte) {
			b[header.IPv6NextHeaderOffset] = uint8(header.UDPProtocolNumber)
		})},
		{"v6 no next header", mod(syn6(segment{flags: syn, opts: optMSS(1460)}), func(b []byte) {
			b[header.IPv6NextHeaderOffset] = uint8(header.IPv6NoNextHeaderIdentifier)
		})},
		{"v6 payload length past packet", mod(syn6(segment{flags: syn, opts: optMSS(1460)}), func(b []byte) {
			header.IPv6(b).SetPayloadLength(uint16(len(b)))
		})},
		{"data offset below 5", mod(v4(segment{flags: syn, opts: optMSS(1460)}), func(b []byte) { b[20+12] = 0x40 })},
		{"data offset past segment", mod(v4(segment{flags: syn, opts: optMSS(1460)}), func(b []byte) { b[20+12] = 0x70 })},
		{"option length 0", setOpts([]byte{2, 4, 0x05, 0xb4, 8, 0, 1, 1})},
		{"option length 1", setOpts([]byte{2, 4, 0x05, 0xb4, 4, 1, 1, 1})},
		{"option past header", setOpts([]byte{2, 4, 0x05, 0xb4, 1, 1, 8, 10})},
		{"kind without length", setOpts([]byte{2, 4, 0x05, 0xb4, 1, 1, 1, 4})},
		{"mss length 3", setOpts([]byte{2, 3, 0x05, 0xb4})},
		{"mss length 5", setOpts([]byte{2, 5, 0x05, 0xb4, 0, 1, 1, 1})},
		{"mss truncated", setOpts([]byte{1, 1, 1, 1, 1, 1, 2, 4})},
		{"mss after eol", setOpts([]byte{0, 0, 0, 0, 2, 4, 0x05, 0xb4})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := bytes.Clone(tc.pkt)
			if Clamp(tc.pkt, 1400, 1400) {
				t.Error("Clamp returned true")
			}
			if !bytes.Equal(before, tc.pkt) {
				t.Error("packet changed")
			}
		})
	}
}

func TestGarbageAfterEOL(t *testing.T) {
	// Bytes after End of Option List are padding, whatever their value.
	pkt := syn4(segment{flags: header.TCPFlagSyn, opts: []byte{2, 4, 0x05, 0xb4, 0, 8, 0xff, 2}}, nil)
	before := bytes.Clone(pkt)
	if !Clamp(pkt, 1400, 1400) {
		t.Fatal("not clamped")
	}
	checkClamped(t, before, pkt, 20, 0, 1400, src4, dst4)
}

func TestTrailingBytesIgnored(t *testing.T) {
	// Link-layer padding after the IP packet is not part of the segment.
	pkt := syn4(segment{flags: header.TCPFlagSyn, opts: optMSS(1460)}, nil)
	n := len(pkt)
	pkt = append(pkt, 2, 4, 0xff, 0xff)
	before := bytes.Clone(pkt)
	if !Clamp(pkt, 1400, 1400) {
		t.Fatal("not clamped")
	}
	checkClamped(t, before[:n], pkt[:n], 20, 0, 1400, src4, dst4)
	if !bytes.Equal(before[n:], pkt[n:]) {
		t.Error("trailing bytes changed")
	}
}

func TestFamilyLimits(t *testing.T) {
	v4 := syn4(segment{flags: header.TCPFlagSyn, opts: optMSS(1460)}, nil)
	v6 := syn6(segment{flags: header.TCPFlagSyn, opts: optMSS(1460)})
	// Each family uses its own limit; zero turns it off.
	if Clamp(bytes.Clone(v4), 0, 1000) {
		t.Error("v4 clamped with max4 = 0")
	}
	if Clamp(bytes.Clone(v6), 1000, 0) {
		t.Error("v6 clamped with max6 = 0")
	}
	if Clamp(bytes.Clone(v4), 1460, 1000) {
		t.Error("v4 clamped by max6")
	}
	if Clamp(bytes.Clone(v6), 1000, 1460) {
		t.Error("v6 clamped by max4")
	}
}

func fragmentHdr() []byte {
	b := make([]byte, header.IPv6FragmentExtHdrLength)
	b[0] = uint8(header.IPv6FragmentExtHdrIdentifier)
	b[3] = 1 // offset 0, M set
	b[7] = 9 // Identification
	return b
}

// ahHdr is an Authentication Header (RFC 4302 §2) with a 12-byte ICV.
func ahHdr() []byte {
	b := make([]byte, 24)
	b[0] = 51
	b[1] = 4 // Payload Len: length in 4-octet units, minus 2
	return b
}

// TestTruncated cuts SYNs at every length: Clamp must return false and leave
// the bytes alone.
func TestTruncated(t *testing.T) {
	for _, pkt := range [][]byte{
		syn4(segment{flags: header.TCPFlagSyn, opts: linuxSYNOptions(1460), payload: []byte("x")}, nil),
		syn4(segment{flags: header.TCPFlagSyn, opts: oddMSSOptions(1460)},
			header.IPv4OptionsSerializer{&header.IPv4SerializableRouterAlertOption{}}),
		syn6(segment{flags: header.TCPFlagSyn, opts: linuxSYNOptions(1460)},
			extHdr(header.IPv6HopByHopOptionsExtHdrIdentifier, 0),
			extHdr(header.IPv6RoutingExtHdrIdentifier, 1)),
	} {
		if !Clamp(bytes.Clone(pkt), 1400, 1400) {
			t.Fatal("whole packet not clamped")
		}
		for n := range len(pkt) {
			b := bytes.Clone(pkt[:n])
			if Clamp(b, 1400, 1400) {
				t.Errorf("length %d of %d: clamped", n, len(pkt))
			}
			if !bytes.Equal(b, pkt[:n]) {
				t.Errorf("length %d of %d: changed", n, len(pkt))
			}
		}
	}
}

func TestAllocs(t *testing.T) {
	v4 := syn4(segment{flags: header.TCPFlagSyn, opts: linuxSYNOptions(1460)}, nil)
	v6 := syn6(segment{flags: header.TCPFlagSyn, opts: oddMSSOptions(1460)},
		extHdr(header.IPv6HopByHopOptionsExtHdrIdentifier, 0))
	orig4, orig6 := bytes.Clone(v4), bytes.Clone(v6)
	// Restore the packets so that every run really rewrites the option.
	if n := testing.AllocsPerRun(100, func() {
		copy(v4, orig4)
		copy(v6, orig6)
		if !Clamp(v4, 1400, 1400) || !Clamp(v6, 1400, 1400) {
			t.Fatal("not clamped")
		}
	}); n != 0 {
		t.Errorf("Clamp allocates %v times", n)
	}
}

// FuzzClamp checks that Clamp never panics, leaves what it rejects
// unchanged, keeps the one's complement sum of the packet (which holds the
// TCP checksum's correctness) and never needs a second pass.
func FuzzClamp(f *testing.F) {
	f.Add(syn4(segment{flags: header.TCPFlagSyn, opts: linuxSYNOptions(1460)}, nil), uint16(1400), uint16(1380))
	f.Add(syn4(segment{flags: header.TCPFlagSyn | header.TCPFlagAck, opts: oddMSSOptions(8960), payload: []byte("abc")},
		header.IPv4OptionsSerializer{&header.IPv4SerializableRouterAlertOption{}}), uint16(1400), uint16(1380))
	f.Add(syn6(segment{flags: header.TCPFlagSyn, opts: tsFirstOptions(1440)},
		extHdr(header.IPv6HopByHopOptionsExtHdrIdentifier, 0), extHdr(header.IPv6RoutingExtHdrIdentifier, 1)), uint16(1400), uint16(1380))
	f.Add(syn6(segment{flags: header.TCPFlagSyn, opts: optMSS(1460)}, fragmentHdr()), uint16(1400), uint16(1380))
	f.Add([]byte{0x45}, uint16(1), uint16(1))
	f.Fuzz(func(t *testing.T, pkt []byte, max4, max6 uint16) {
		before := bytes.Clone(pkt)
		if !Clamp(pkt, max4, max6) {
			if !bytes.Equal(before, pkt) {
				t.Fatal("Clamp returned false but changed the packet")
			}
			return
		}
		if len(pkt) != len(before) {
			t.Fatal("length changed")
		}
		// The TCP header starts at an even offset (IHL and IPv6 extension
		// header lengths are multiples of 4 and 8), so the packet-wide sum
		// moves with the TCP sum, which an RFC 1624 update keeps constant
		// (0x0000 and 0xffff are the same number in one's complement).
		norm := func(s uint16) uint16 {
			if s == 0xffff {
				return 0
			}
			return s
		}
		if a, b := norm(checksum.Checksum(before, 0)), norm(checksum.Checksum(pkt, 0)); a != b {
			t.Fatalf("one's complement sum moved: %#04x -> %#04x", a, b)
		}
		changed := 0
		for i := range pkt {
			if pkt[i] != before[i] {
				changed++
			}
		}
		if changed == 0 {
			t.Fatal("Clamp returned true but changed nothing")
		}
		if Clamp(pkt, max4, max6) {
			t.Fatal("second Clamp changed the packet again")
		}
	})
}
