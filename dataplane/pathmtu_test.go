package dataplane

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"io"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/greipsec/greipsec/dataplane/link"
	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/tun"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFragNeededKnownAnswer checks the ICMPv4 error against one built by
// hand (the header of RFC 791 §3.1 with its RFC 1071 checksum, the ICMP
// message of RFC 792 "Destination Unreachable" code 4 with the next-hop
// MTU in the low 16 bits of the second word, RFC 1191 §4, and the whole
// original datagram quoted, RFC 1812 §4.3.2.3), and parses it with gVisor.
func TestFragNeededKnownAnswer(t *testing.T) {
	inner := unhex(t, "4500002012344000401114970a0000010a0000020fa01388000c0000deadbeef")
	want := unhex(t, "4500003c00000000400166bf0a0000020a000001030436ec0000053e"+
		"4500002012344000401114970a0000010a0000020fa01388000c0000deadbeef")
	b := make([]byte, icmpv4MaxLen)
	n := fragNeeded(b, inner, 1342)
	if !bytes.Equal(b[:n], want) {
		t.Fatalf("got  %x\nwant %x", b[:n], want)
	}
	ip := header.IPv4(b[:n])
	if !ip.IsValid(n) || !ip.IsChecksumValid() || ip.TransportProtocol() != header.ICMPv4ProtocolNumber {
		t.Fatal("gVisor: not a valid IPv4 ICMP packet")
	}
	icmp := header.ICMPv4(ip.Payload())
	if icmp.Type() != header.ICMPv4DstUnreachable || icmp.Code() != header.ICMPv4FragmentationNeeded || icmp.MTU() != 1342 ||
		checksum.Checksum(icmp, 0) != 0xffff || !bytes.Equal(icmp.Payload(), inner) {
		t.Errorf("gVisor: type %d code %d MTU %d, checksum sum %#x", icmp.Type(), icmp.Code(), icmp.MTU(), checksum.Checksum(icmp, 0))
	}
}

// TestPacketTooBigKnownAnswer does the same for ICMPv6 "packet too big"
// (RFC 4443 §3.2; the checksum over the pseudo-header of RFC 8200 §8.1).
func TestPacketTooBigKnownAnswer(t *testing.T) {
	inner := unhex(t, "60000000000c1140fd000000000000000000000000000001fd0000000000000000000000000000020fa01388000c0000deadbeef")
	want := unhex(t, "60000000003c3a40fd000000000000000000000000000002fd000000000000000000000000000001"+
		"0200d26100000500"+
		"60000000000c1140fd000000000000000000000000000001fd0000000000000000000000000000020fa01388000c0000deadbeef")
	b := make([]byte, icmpv6MaxLen)
	n := packetTooBig(b, inner, 1280)
	if !bytes.Equal(b[:n], want) {
		t.Fatalf("got  %x\nwant %x", b[:n], want)
	}
	ip := header.IPv6(b[:n])
	if !ip.IsValid(n) || ip.TransportProtocol() != header.ICMPv6ProtocolNumber {
		t.Fatal("gVisor: not a valid IPv6 ICMPv6 packet")
	}
	icmp := header.ICMPv6(ip.Payload())
	sum := header.ICMPv6Checksum(header.ICMPv6ChecksumParams{Header: icmp[:icmpHeaderLen], Src: ip.SourceAddress(), Dst: ip.DestinationAddress(),
		PayloadCsum: checksum.Checksum(icmp[icmpHeaderLen:], 0), PayloadLen: len(icmp) - icmpHeaderLen})
	if icmp.Type() != header.ICMPv6PacketTooBig || icmp.MTU() != 1280 || sum != icmp.Checksum() {
		t.Errorf("gVisor: type %d MTU %d, checksum %#x want %#x", icmp.Type(), icmp.MTU(), icmp.Checksum(), sum)
	}
}

// TestICMPQuoteLength: a large packet is quoted only as far as the error
// stays within 576 bytes (ICMPv4, RFC 1812 §4.3.2.3) or 1280 (ICMPv6,
// RFC 4443 §2.4 (c)).
func TestICMPQuoteLength(t *testing.T) {
	b := make([]byte, icmpv6MaxLen)
	p4 := dfPacket(udpPacket(innerA, innerB, 1400))
	if n := fragNeeded(b, p4, 1342); n != icmpv4MaxLen || !bytes.Equal(b[28:n], p4[:n-28]) {
		t.Errorf("ICMPv4 error of %d bytes, want %d quoting the start of the packet", n, icmpv4MaxLen)
	}
	p6 := udpPacket(inner6A, inner6B, 1400)
	if n := packetTooBig(b, p6, 1280); n != icmpv6MaxLen || !bytes.Equal(b[48:n], p6[:n-48]) {
		t.Errorf("ICMPv6 error of %d bytes, want %d quoting the start of the packet", n, icmpv6MaxLen)
	}
}

// TestICMPNotSent: no error for an ICMP error, a non-initial fragment, or
// to or from an address that is not one host's (RFC 1122 §3.2.2, RFC 1812
// §4.3.2.7, RFC 4443 §2.4 (e)); queries do get one.
func TestICMPNotSent(t *testing.T) {
	b := make([]byte, icmpv6MaxLen)
	icmp4 := func(typ byte) []byte {
		p := dfPacket(udpPacket(innerA, innerB, 100))
		ip := header.IPv4(p)
		ip.SetChecksum(0)
		p[9] = ipProtoICMPv4
		ip.SetChecksum(^ip.CalculateChecksum())
		p[20] = typ
		return p
	}
	with4 := func(src, dst string, flagsOff uint16) []byte {
		p := udpPacket(netip.MustParseAddr(src), netip.MustParseAddr(dst), 100)
		ip := header.IPv4(p)
		binary.BigEndian.PutUint16(p[6:], flagsOff)
		ip.SetChecksum(0)
		ip.SetChecksum(^ip.CalculateChecksum())
		return p
	}
	for _, tc := range []struct {
		name string
		pkt  []byte
		want bool
	}{
		{"udp", dfPacket(udpPacket(innerA, innerB, 100)), true},
		{"echo request", icmp4(8), true},
		{"echo reply", icmp4(0), true},
		{"dest unreachable", icmp4(3), false},
		{"time exceeded", icmp4(11), false},
		{"non-initial fragment", with4("10.0.0.1", "10.0.0.2", 0x4000|10), false},
		{"multicast destination", with4("10.0.0.1", "224.0.0.5", 0x4000), false},
		{"broadcast destination", with4("10.0.0.1", "255.255.255.255", 0x4000), false},
		{"unspecified source", with4("0.0.0.0", "10.0.0.2", 0x4000), false},
		{"loopback source", with4("127.0.0.1", "10.0.0.2", 0x4000), false},
	} {
		if got := fragNeeded(b, tc.pkt, 1342) != 0; got != tc.want {
			t.Errorf("IPv4 %s: error sent %v, want %v", tc.name, got, tc.want)
		}
	}
	icmp6 := func(typ byte, ext bool) []byte {
		p := udpPacket(inner6A, inner6B, 100)
		if ext { // a destination options header before ICMPv6
			p[6] = 60
			p[40], p[41] = ipProtoICMPv6, 0
			p[48] = typ
		} else {
			p[6] = ipProtoICMPv6
			p[40] = typ
		}
		return p
	}
	for _, tc := range []struct {
		name string
		pkt  []byte
		want bool
	}{
		{"udp", udpPacket(inner6A, inner6B, 100), true},
		{"echo request", icmp6(128, false), true},
		{"echo request after options", icmp6(128, true), true},
		{"packet too big", icmp6(2, false), false},
		{"dest unreachable after options", icmp6(1, true), false},
		{"multicast destination", udpPacket(inner6A, netip.MustParseAddr("ff02::1"), 100), false},
		{"unspecified source", udpPacket(netip.IPv6Unspecified(), inner6B, 100), false},
	} {
		if got := packetTooBig(b, tc.pkt, 1280) != 0; got != tc.want {
			t.Errorf("IPv6 %s: error sent %v, want %v", tc.name, got, tc.want)
		}
	}
}

// FuzzICMPErrors: whatever the inner device sends, building an error for
// it neither panics nor writes beyond the limits of RFC 1812 and RFC 4443.
func FuzzICMPErrors(f *testing.F) {
	f.Add(dfPacket(udpPacket(innerA, innerB, 100)))
	f.Add(udpPacket(inner6A, inner6B, 100))
	f.Add([]byte{0x60, 0, 0, 0, 0, 0, 60, 64})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		b := make([]byte, icmpv6MaxLen)
		if len(pkt) >= header.IPv4MinimumSize && header.IPVersion(pkt) == 4 {
			if n := fragNeeded(b, pkt, 1342); n > icmpv4MaxLen {
				t.Fatalf("ICMPv4 error of %d bytes", n)
			}
		}
		if len(pkt) >= header.IPv6MinimumSize && header.IPVersion(pkt) == 6 {
			if n := packetTooBig(b, pkt, 1280); n > icmpv6MaxLen {
				t.Fatalf("ICMPv6 error of %d bytes", n)
			}
		}
	})
}

// dfPacket sets DF on the IPv4 packet p.
func dfPacket(p []byte) []byte {
	ip := header.IPv4(p)
	ip.SetFlagsFragmentOffset(header.IPv4FlagDontFragment, 0)
	ip.SetChecksum(0)
	ip.SetChecksum(^ip.CalculateChecksum())
	return p
}

func TestTokenBucket(t *testing.T) {
	var b tokenBucket
	now := time.Unix(1000, 0)
	n := 0
	for range 100 {
		if b.take(now) {
			n++
		}
	}
	if n != icmpBurst {
		t.Errorf("%d errors at once, want the burst of %d", n, icmpBurst)
	}
	now = now.Add(3*icmpInterval + icmpInterval/2)
	n = 0
	for range 100 {
		if b.take(now) {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d errors after 3.5 intervals, want 3", n)
	}
}

// sizeBind records the largest packet a Bind is asked to send.
type sizeBind struct {
	conn.Bind
	largest atomic.Int64
}

func (b *sizeBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	for _, p := range bufs {
		if int64(len(p)) > b.largest.Load() {
			b.largest.Store(int64(len(p)))
		}
	}
	return b.Bind.Send(bufs, ep)
}

// pmtuPair is a pair whose Device A reads the path MTU from *pmtu and
// records the size of its outer packets.
type pmtuPair struct {
	*pair
	pmtu atomic.Int64
	out  *sizeBind
}

func newPMTUPair(t *testing.T, a, b TunnelConfig) *pmtuPair {
	t.Helper()
	la, lb := link.NewMemoryPair(netip.AddrPortFrom(a.Local, DefaultUDPPort), netip.AddrPortFrom(b.Local, DefaultUDPPort))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pp := &pmtuPair{pair: &pair{linkA: la, lb: lb}, out: &sizeBind{Bind: la}}
	pp.pmtu.Store(int64(a.PathMTU))
	if a.PathMTU == 0 {
		pp.pmtu.Store(DefaultPathMTU)
	}
	p := pp.pair
	p.a = NewDevice(Options{Logger: log,
		Bind:            func(Transport, netip.Addr, uint16) (conn.Bind, error) { return pp.out, nil },
		PathMTU:         func(netip.AddrPort) (int, error) { return int(pp.pmtu.Load()), nil },
		PathMTUInterval: 5 * time.Millisecond,
	})
	p.b = NewDevice(Options{Logger: log, Bind: func(Transport, netip.Addr, uint16) (conn.Bind, error) { return lb, nil }})
	mtu, err := ResolveMTU(&a)
	if err != nil {
		t.Fatal(err)
	}
	p.tunA = tun.NewMemory("a", mtu, maxBatchSize)
	p.tunB = tun.NewMemory("b", mtu, maxBatchSize)
	if p.ta, err = p.a.AddTunnel(a, p.tunA); err != nil {
		t.Fatal(err)
	}
	if p.tb, err = p.b.AddTunnel(b, p.tunB); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.a.Close()
		p.b.Close()
	})
	return pp
}

// receive returns the next packet from ch, failing after 5 seconds.
func receive(t *testing.T, ch <-chan []byte, what string) []byte {
	t.Helper()
	select {
	case p := <-ch:
		return p
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s within 5 s", what)
		return nil
	}
}

// TestPairPathMTU runs a tunnel whose path shrinks to 1400 bytes and
// grows back: a DF packet that no longer fits gets "fragmentation needed"
// with the inner MTU (1400 minus the overhead, by hand: 20 IPv4, 8 UDP, 8
// ESP header, 8 IV, 16 ICV, 2 trailer and padding to 4, 4 GRE: 1334), an
// IPv6 packet "packet too big" with 1334 raised to 1280's floor... here
// 1334, a packet without DF is fragmented before encryption and arrives
// whole after reassembly, no ESP packet exceeds the path, and the MSS
// clamp follows.
func TestPairPathMTU(t *testing.T) {
	a, b := tunnelConfigs(ModeGRETransport, TransportUDP, esp.AES256GCM16, false)
	p := newPMTUPair(t, a, b)
	if got := p.ta.PathMTU(); got.Current != 1500 || got.InnerMTU != 1434 || !got.LearnedAt.IsZero() {
		t.Fatalf("before: %+v, want path MTU 1500, inner 1434, nothing learned", got)
	}
	p.pmtu.Store(1400)
	eventually(t, "the path MTU of 1400", func() bool { return p.ta.PathMTU().Current == 1400 })
	got := p.ta.PathMTU()
	if got.InnerMTU != 1334 || got.MSS4 != 1294 || got.MSS6 != 1274 || got.LearnedAt.IsZero() {
		t.Fatalf("learned: %+v, want inner MTU 1334, MSS 1294/1274, a time", got)
	}

	// DF: dropped, answered with fragmentation needed (from the inner
	// destination, to the source).
	big := dfPacket(udpPacket(innerA, innerB, 1400-28))
	p.tunA.Inject(big)
	reply := receive(t, p.tunA.Output(), "ICMP fragmentation needed")
	ip := header.IPv4(reply)
	icmp := header.ICMPv4(ip.Payload())
	if !ip.IsChecksumValid() || ip.SourceAddress() != tcpip.AddrFrom4(innerB.As4()) || ip.DestinationAddress() != tcpip.AddrFrom4(innerA.As4()) ||
		icmp.Type() != header.ICMPv4DstUnreachable || icmp.Code() != header.ICMPv4FragmentationNeeded || icmp.MTU() != 1334 ||
		!bytes.Equal(icmp.Payload(), big[:icmpv4MaxLen-28]) {
		t.Errorf("reply %x...: want frag needed, MTU 1334, from %s to %s", head(reply), innerB, innerA)
	}
	// IPv6 beyond 1280: packet too big with the inner MTU.
	big6 := udpPacket(inner6A, inner6B, 1400-48)
	p.tunA.Inject(big6)
	reply = receive(t, p.tunA.Output(), "ICMPv6 packet too big")
	ip6 := header.IPv6(reply)
	icmp6 := header.ICMPv6(ip6.Payload())
	if icmp6.Type() != header.ICMPv6PacketTooBig || icmp6.MTU() != 1334 || ip6.SourceAddress() != tcpip.AddrFrom16(inner6B.As16()) {
		t.Errorf("reply %x...: want packet too big, MTU 1334, from %s", head(reply), inner6B)
	}
	if s := p.ta.Stats(); s.PathMTUDrops.Load() != 2 || s.ICMPSent.Load() != 2 {
		t.Errorf("PathMTUDrops %d, ICMPSent %d; want 2, 2", s.PathMTUDrops.Load(), s.ICMPSent.Load())
	}

	// Without DF: fragmented before encryption; B's side reassembles.
	p.out.largest.Store(0)
	whole := udpPacket(innerA, innerB, 1400-28)
	p.tunA.Inject(bytes.Clone(whole))
	var frags [][]byte
	for covered := 0; covered < len(whole)-20; {
		f := receive(t, p.tunB.Output(), "a fragment")
		frags = append(frags, f)
		covered += len(f) - 20
	}
	if len(frags) != 2 || p.ta.Stats().FragmentedBefore.Load() != 1 {
		t.Errorf("%d fragments, FragmentedBefore %d; want 2, 1", len(frags), p.ta.Stats().FragmentedBefore.Load())
	}
	if got := reassemble(t, frags); !bytes.Equal(got, whole) {
		t.Errorf("reassembled %x..., want %x...", head(got), head(whole))
	}
	if n := p.out.largest.Load(); n > 1400-28 {
		t.Errorf("largest ESP packet %d bytes; the path carries %d", n, 1400-28)
	}

	// The MSS clamp follows: a SYN with MSS 1460 leaves with 1294.
	syn := synPacket(innerA, innerB, 1460)
	p.tunA.Inject(syn)
	if got := tcpMSS(receive(t, p.tunB.Output(), "the SYN")); got != 1294 {
		t.Errorf("SYN's MSS %d, want 1294", got)
	}

	// The path grows back (the kernel's learned value expired).
	p.pmtu.Store(1500)
	eventually(t, "the path MTU of 1500", func() bool { return p.ta.PathMTU().Current == 1500 })
	if !p.ta.PathMTU().LearnedAt.IsZero() {
		t.Error("LearnedAt set after the path MTU returned to the configured one")
	}
	exchange(t, p.tunA, p.tunB, [][]byte{dfPacket(udpPacket(innerA, innerB, 1434-28))})

	// Below the floor and above the configured value, the learned value
	// is bounded.
	p.pmtu.Store(300)
	eventually(t, "the floor of 552", func() bool { return p.ta.PathMTU().Current == minPathMTU4 })
	p.pmtu.Store(9000)
	eventually(t, "the configured 1500", func() bool { return p.ta.PathMTU().Current == 1500 })
}

// TestPairPathMTURateLimit: a flood of too-big packets draws at most the
// burst of errors (and then one per interval); every drop is counted.
func TestPairPathMTURateLimit(t *testing.T) {
	a, b := tunnelConfigs(ModeGRETransport, TransportUDP, esp.AES256GCM16, false)
	p := newPMTUPair(t, a, b)
	p.pmtu.Store(1400)
	eventually(t, "the path MTU of 1400", func() bool { return p.ta.PathMTU().Current == 1400 })
	const n = 200
	for range n {
		p.tunA.Inject(dfPacket(udpPacket(innerA, innerB, 1400-28)))
	}
	s := p.ta.Stats()
	eventually(t, "every drop counted", func() bool { return s.PathMTUDrops.Load() == n })
	sent, limited := s.ICMPSent.Load(), s.ICMPRateLimited.Load()
	if sent+limited != n || sent < icmpBurst || limited == 0 {
		t.Errorf("ICMPSent %d, ICMPRateLimited %d; want the burst of %d or a few more sent, the rest limited", sent, limited, icmpBurst)
	}
}

// TestPairPathMTUDisabled: with discovery off the configured path MTU
// stays, whatever the kernel says.
func TestPairPathMTUDisabled(t *testing.T) {
	a, b := tunnelConfigs(ModeGRETransport, TransportUDP, esp.AES256GCM16, false)
	a.NoPathMTUDiscovery = true
	p := newPMTUPair(t, a, b)
	p.pmtu.Store(1400)
	p.a.updatePathMTUs() // what the watcher does each interval
	if got := p.ta.PathMTU(); got.Current != 1500 || got.Discovery {
		t.Errorf("%+v, want 1500 and discovery off", got)
	}
}

// TestICMPErrorMatching: an ICMP error from the raw ESP socket's error
// queue is believed only for a tunnel's peer and outbound SPI (an attacker
// who guesses neither cannot make the Device look again).
func TestICMPErrorMatching(t *testing.T) {
	a, b := tunnelConfigs(ModeGRETransport, TransportESP, esp.AES256GCM16, false)
	p := newPMTUPair(t, a, b)
	d := p.a
	spi := a.Outbound.SPI
	for _, e := range []link.ICMPError{
		{Dst: outerB, Type: 3, Code: 4, MTU: 1400, SPI: spi + 1, HasSPI: true}, // other SPI
		{Dst: outerA, Type: 3, Code: 4, MTU: 1400, SPI: spi, HasSPI: true},     // other peer
		{Dst: outerB, Type: 3, Code: 1, MTU: 1400, SPI: spi, HasSPI: true},     // host unreachable
		{Dst: outerB, Type: 3, Code: 4, MTU: 1400},                             // no SPI quoted
	} {
		d.onICMPError(&e)
	}
	if d.Stats().ICMPIgnored.Load() != 4 || d.Stats().ICMPTooBig.Load() != 0 {
		t.Errorf("ignored %d, believed %d; want 4, 0", d.Stats().ICMPIgnored.Load(), d.Stats().ICMPTooBig.Load())
	}
	d.onICMPError(&link.ICMPError{Dst: outerB, Type: 3, Code: 4, MTU: 1400, SPI: spi, HasSPI: true})
	if d.Stats().ICMPTooBig.Load() != 1 {
		t.Errorf("believed %d, want 1", d.Stats().ICMPTooBig.Load())
	}
}

// reassemble puts IPv4 fragments back together by hand (RFC 791 §3.2,
// "An Example Reassembly Procedure"), checking each fragment's header.
func reassemble(t *testing.T, frags [][]byte) []byte {
	t.Helper()
	var data []byte
	var hdr []byte
	last := false
	for i, f := range frags {
		ip := header.IPv4(f)
		if !ip.IsValid(len(f)) || !ip.IsChecksumValid() || int(ip.TotalLength()) != len(f) {
			t.Fatalf("fragment %d: invalid header", i)
		}
		off := int(ip.FragmentOffset())
		more := ip.Flags()&header.IPv4FlagMoreFragments != 0
		payload := f[ip.HeaderLength():]
		if more && len(payload)%8 != 0 {
			t.Fatalf("fragment %d: %d bytes of data, not a multiple of 8", i, len(payload))
		}
		if off == 0 {
			hdr = bytes.Clone(f[:ip.HeaderLength()])
		}
		if len(data) < off+len(payload) {
			data = append(data, make([]byte, off+len(payload)-len(data))...)
		}
		copy(data[off:], payload)
		last = last || !more
	}
	if hdr == nil || !last {
		t.Fatal("first or last fragment missing")
	}
	out := append(hdr, data...)
	ip := header.IPv4(out)
	ip.SetTotalLength(uint16(len(out)))
	ip.SetFlagsFragmentOffset(0, 0)
	ip.SetChecksum(0)
	ip.SetChecksum(^ip.CalculateChecksum())
	return out
}

// synPacket returns a TCP SYN from src to dst with the MSS option mss.
func synPacket(src, dst netip.Addr, mss uint16) []byte {
	syn := make([]byte, header.IPv4MinimumSize+header.TCPMinimumSize+4)
	ip := header.IPv4(syn)
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(syn)), TTL: 64, Protocol: uint8(header.TCPProtocolNumber),
		SrcAddr: tcpip.AddrFrom4(src.As4()), DstAddr: tcpip.AddrFrom4(dst.As4())})
	ip.SetChecksum(^ip.CalculateChecksum())
	tcp := header.TCP(syn[header.IPv4MinimumSize:])
	tcp.Encode(&header.TCPFields{SrcPort: 1234, DstPort: 80, SeqNum: 1, DataOffset: header.TCPMinimumSize + 4,
		Flags: header.TCPFlagSyn, WindowSize: 65535})
	copy(tcp[header.TCPMinimumSize:], []byte{2, 4, byte(mss >> 8), byte(mss)})
	sum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(), uint16(len(tcp)))
	tcp.SetChecksum(^checksum.Checksum(tcp, sum))
	return syn
}

// tcpMSS returns the MSS option of the SYN synPacket made.
func tcpMSS(syn []byte) uint16 {
	return binary.BigEndian.Uint16(syn[header.IPv4MinimumSize+header.TCPMinimumSize+2:])
}

// TestPairFragmentOptions: a packet with IPv4 options is fragmented with
// every option in the first fragment and only the copied ones (the copied
// flag, RFC 791 §3.1) in the others; reassembled, it is the original.
func TestPairFragmentOptions(t *testing.T) {
	a, b := tunnelConfigs(ModeGRETransport, TransportESP, esp.AES256GCM16, false)
	p := newPMTUPair(t, a, b)
	p.pmtu.Store(1400)
	eventually(t, "the path MTU of 1400", func() bool { return p.ta.PathMTU().Current == 1400 })

	plain := udpPacket(innerA, innerB, 1400)
	// Router alert (type 148, copied) and record route (type 7, not
	// copied: length 3, pointer 4, then end of options).
	opts := []byte{148, 4, 0, 0, 7, 3, 4, 0}
	pkt := make([]byte, 0, len(plain)+len(opts))
	pkt = append(pkt, plain[:20]...)
	pkt = append(pkt, opts...)
	pkt = append(pkt, plain[20:]...)
	ip := header.IPv4(pkt)
	ip.SetHeaderLength(uint8(20 + len(opts)))
	ip.SetTotalLength(uint16(len(pkt)))
	ip.SetChecksum(0)
	ip.SetChecksum(^ip.CalculateChecksum())

	p.tunA.Inject(bytes.Clone(pkt))
	var frags [][]byte
	for covered := 0; covered < len(pkt)-28; {
		f := receive(t, p.tunB.Output(), "a fragment")
		frags = append(frags, f)
		covered += len(f) - int(header.IPv4(f).HeaderLength())
	}
	if len(frags) != 2 {
		t.Fatalf("%d fragments, want 2", len(frags))
	}
	if h := header.IPv4(frags[0]); h.HeaderLength() != 28 || !bytes.Equal(frags[0][20:28], opts) || len(frags[0]) > 1342 {
		t.Errorf("first fragment: header %d bytes, options %x, %d bytes; want all options, at most 1342", h.HeaderLength(), frags[0][20:h.HeaderLength()], len(frags[0]))
	}
	if h := header.IPv4(frags[1]); h.HeaderLength() != 24 || !bytes.Equal(frags[1][20:24], opts[:4]) {
		t.Errorf("second fragment: header %d bytes, options %x; want only the router alert", h.HeaderLength(), frags[1][20:h.HeaderLength()])
	}
	if got := reassemble(t, frags); !bytes.Equal(got, pkt) {
		t.Errorf("reassembled %x..., want %x...", head(got), head(pkt))
	}
}

// TestOversizeAllocs: stage 1b allocates nothing in steady state, neither
// fragmenting before encryption nor answering with ICMP.
func TestOversizeAllocs(t *testing.T) {
	a, b := tunnelConfigs(ModeGRETransport, TransportESP, esp.AES256GCM16, false)
	p := newPMTUPair(t, a, b)
	p.tunA.SetSink(func([]byte) {}) // ICMP written to the TUN device: no copy kept
	p.pmtu.Store(1400)
	eventually(t, "the path MTU of 1400", func() bool { return p.ta.PathMTU().Current == 1400 })
	tu, d := p.ta, p.a
	// The TUN reader is idle in Read: this goroutine plays stage 1.
	lim := tu.limits.Load()
	frag := udpPacket(innerA, innerB, 1400-28)
	df := dfPacket(udpPacket(innerA, innerB, 1400-28))
	run := func(pkt []byte, want oversizeAction) {
		c := d.pool.GetOutboundContainer()
		c.tunnel, c.out, c.path = tu, tu.outbound.Load(), tu.path.Load()
		e := tu.newOutboundElement()
		n := copy(e.buffer[outboundOffset:], pkt)
		if got := tu.oversize(c, lim, e, n); got != want {
			t.Fatalf("oversize: %d, want %d", got, want)
		}
		if want != oversizeFragmented {
			d.putOutboundElement(e)
		}
		for _, f := range c.elems {
			d.putOutboundElement(f)
		}
		d.pool.PutOutboundContainer(c)
	}
	run(frag, oversizeFragmented) // warm the pools
	if n := testing.AllocsPerRun(100, func() { run(frag, oversizeFragmented) }); n != 0 {
		t.Errorf("fragmenting: %v allocations per packet", n)
	}
	if n := testing.AllocsPerRun(100, func() { run(df, oversizeDrop) }); n != 0 {
		t.Errorf("answering with ICMP: %v allocations per packet", n)
	}
}
