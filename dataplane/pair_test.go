package dataplane

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
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

// The tests in this file run two whole gateways in one process: two Devices
// joined by an in-memory link, each with an in-memory TUN device.

var (
	outerA  = netip.MustParseAddr("192.0.2.1")
	outerB  = netip.MustParseAddr("192.0.2.2")
	innerA  = netip.MustParseAddr("10.255.0.1")
	innerB  = netip.MustParseAddr("10.255.0.2")
	inner6A = netip.MustParseAddr("fd00:255::1")
	inner6B = netip.MustParseAddr("fd00:255::2")
)

// pair is two gateways, A and B, with one tunnel between them.
type pair struct {
	a, b       *Device
	ta, tb     *Tunnel
	tunA, tunB *tun.Memory
	linkA      *link.Memory
	lb         *link.Memory
}

func testKey(alg esp.Algorithm, seed byte) []byte {
	k := make([]byte, alg.KeyLen())
	for i := range k {
		k[i] = seed + byte(i)
	}
	return k
}

// tunnelConfigs returns the configurations of both sides of a tunnel.
func tunnelConfigs(mode Mode, transport Transport, alg esp.Algorithm, esn bool) (TunnelConfig, TunnelConfig) {
	ab := esp.Config{SPI: 0x1001, Algorithm: alg, Key: testKey(alg, 1), ESN: esn}
	ba := esp.Config{SPI: 0x1002, Algorithm: alg, Key: testKey(alg, 100), ESN: esn}
	a := TunnelConfig{Name: "gre0", Mode: mode, Transport: transport, Local: outerA, Peer: outerB,
		MSSClamp: true, Outbound: &ab, Inbound: &ba, Interface: "gre0"}
	b := a
	b.Local, b.Peer = outerB, outerA
	abIn, baOut := ab, ba
	b.Outbound, b.Inbound = &baOut, &abIn
	return a, b
}

func newPair(t testing.TB, a, b TunnelConfig) *pair { return newPairWith(t, a, b, nil) }

// newPairWith is newPair, calling before (if not nil) with the TUN devices
// made and the tunnels not yet started: to give them a source or sink.
func newPairWith(t testing.TB, a, b TunnelConfig, before func(p *pair)) *pair {
	t.Helper()
	portA, portB := a.UDPPort, b.UDPPort
	if portA == 0 {
		portA = DefaultUDPPort
	}
	if portB == 0 {
		portB = DefaultUDPPort
	}
	la, lb := link.NewMemoryPair(netip.AddrPortFrom(a.Local, portA), netip.AddrPortFrom(b.Local, portB))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := &pair{linkA: la, lb: lb}
	p.a = NewDevice(Options{Logger: log, Bind: func(Transport, netip.Addr, uint16) (conn.Bind, error) { return la, nil }})
	p.b = NewDevice(Options{Logger: log, Bind: func(Transport, netip.Addr, uint16) (conn.Bind, error) { return lb, nil }})
	mtu, err := ResolveMTU(&a)
	if err != nil {
		t.Fatal(err)
	}
	p.tunA = tun.NewMemory("a", mtu, maxBatchSize)
	p.tunB = tun.NewMemory("b", mtu, maxBatchSize)
	if before != nil {
		before(p)
	}
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
	return p
}

// udpPacket builds an IPv4 or IPv6 UDP packet with n payload bytes.
func udpPacket(src, dst netip.Addr, n int) []byte {
	payload := make([]byte, n)
	for i := range payload {
		payload[i] = byte(i*7 + n)
	}
	var pkt []byte
	if src.Is4() {
		pkt = make([]byte, header.IPv4MinimumSize+header.UDPMinimumSize+n)
		ip := header.IPv4(pkt)
		ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(pkt)), TTL: 64, Protocol: uint8(header.UDPProtocolNumber),
			SrcAddr: tcpip.AddrFrom4(src.As4()), DstAddr: tcpip.AddrFrom4(dst.As4())})
		ip.SetChecksum(^ip.CalculateChecksum())
	} else {
		pkt = make([]byte, header.IPv6MinimumSize+header.UDPMinimumSize+n)
		header.IPv6(pkt).Encode(&header.IPv6Fields{PayloadLength: uint16(header.UDPMinimumSize + n),
			TransportProtocol: header.UDPProtocolNumber, HopLimit: 64,
			SrcAddr: tcpip.AddrFrom16(src.As16()), DstAddr: tcpip.AddrFrom16(dst.As16())})
	}
	udp := header.UDP(pkt[len(pkt)-n-header.UDPMinimumSize:])
	udp.Encode(&header.UDPFields{SrcPort: 4000, DstPort: 5000, Length: uint16(header.UDPMinimumSize + n)})
	copy(udp.Payload(), payload)
	return pkt
}

// exchange sends pkts into from's TUN device and checks they come out of
// to's TUN device unchanged and in order. It keeps at most exchangeWindow
// packets in flight, as a transport with flow control would: the receiving
// gateway drops what exceeds a tunnel's inbound share rather than hold up
// its socket (inboundBudget).
func exchange(t *testing.T, from, to *tun.Memory, pkts [][]byte) {
	t.Helper()
	const exchangeWindow = 256
	credit := make(chan struct{}, exchangeWindow)
	for range exchangeWindow {
		credit <- struct{}{}
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for _, p := range pkts {
			select {
			case <-credit:
			case <-done:
				return
			}
			from.Inject(p)
		}
	}()
	for i, want := range pkts {
		select {
		case got := <-to.Output():
			if !bytes.Equal(got, want) {
				t.Fatalf("packet %d (%d bytes): got %d bytes %x..., want %x...", i, len(want), len(got), head(got), head(want))
			}
			credit <- struct{}{}
		case <-time.After(5 * time.Second):
			t.Fatalf("packet %d of %d (%d bytes) did not arrive", i, len(pkts), len(want))
		}
	}
}

func head(b []byte) []byte { return b[:min(len(b), 48)] }

// TestPairAllSizes sends IPv4 and IPv6 packets of every size from a 1-byte
// UDP payload up to the MTU, both ways, for every mode and transport.
func TestPairAllSizes(t *testing.T) {
	for _, mode := range []Mode{ModeGRETransport, ModeGRETunnel, ModeRoute} {
		for _, transport := range []Transport{TransportESP, TransportUDP} {
			t.Run(fmt.Sprintf("%v/%v", mode, transport), func(t *testing.T) {
				a, b := tunnelConfigs(mode, transport, esp.AES256GCM16, true)
				p := newPair(t, a, b)
				mtu := p.ta.MTU()
				for _, fam := range []struct{ a, b netip.Addr }{{innerA, innerB}, {inner6A, inner6B}} {
					hdr := header.IPv4MinimumSize + header.UDPMinimumSize
					if fam.a.Is6() {
						hdr = header.IPv6MinimumSize + header.UDPMinimumSize
					}
					var ab, ba [][]byte
					for n := 1; n <= mtu-hdr; n++ {
						ab = append(ab, udpPacket(fam.a, fam.b, n))
						ba = append(ba, udpPacket(fam.b, fam.a, n))
					}
					exchange(t, p.tunA, p.tunB, ab)
					exchange(t, p.tunB, p.tunA, ba)
				}
				if s := p.tb.InboundSAs()[0].Stats(); s.AuthFailures+s.Replays+s.BadGRE+s.BadSelector+s.BadNextHeader != 0 {
					t.Errorf("B counted drops: %+v", s)
				}
			})
		}
	}
}

// TestPairDistinctUDPPorts: a gateway in an unprivileged container uses
// ESP-in-UDP port 14500 and its peer the standard 4500; each sends to the
// other's port (PeerUDPPort), which the memory link enforces.
func TestPairDistinctUDPPorts(t *testing.T) {
	a, b := tunnelConfigs(ModeGRETransport, TransportUDP, esp.AES256GCM16, false)
	a.UDPPort, a.PeerUDPPort = 14500, 4500
	b.UDPPort, b.PeerUDPPort = 4500, 14500
	p := newPair(t, a, b)
	pkts := [][]byte{udpPacket(innerA, innerB, 1), udpPacket(inner6A, inner6B, 1000)}
	exchange(t, p.tunA, p.tunB, pkts)
	exchange(t, p.tunB, p.tunA, pkts)
}

// TestPairAlgorithms checks every AEAD with and without ESN, and GRE keys,
// sequence numbers and checksums.
func TestPairAlgorithms(t *testing.T) {
	for _, alg := range []esp.Algorithm{esp.AES128GCM16, esp.AES256GCM16, esp.ChaCha20Poly1305} {
		for _, esn := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/esn=%v", alg, esn), func(t *testing.T) {
				a, b := tunnelConfigs(ModeGRETransport, TransportUDP, alg, esn)
				a.GRE = GREConfig{Key: 42, HasKey: true, Sequence: true, Checksum: true}
				b.GRE = a.GRE
				p := newPair(t, a, b)
				if got, want := p.ta.MTU(), 1434-12; got != want {
					t.Errorf("MTU with GRE key, seq and checksum over UDP = %d, want %d", got, want)
				}
				pkts := [][]byte{udpPacket(innerA, innerB, 1), udpPacket(inner6A, inner6B, 1000), udpPacket(innerA, innerB, 1300)}
				exchange(t, p.tunA, p.tunB, pkts)
			})
		}
	}
}

// TestMTUDerivation checks the figures DESIGN.md gives for a 1500-byte path.
func TestMTUDerivation(t *testing.T) {
	for _, tc := range []struct {
		mode      Mode
		transport Transport
		local     string
		mtu, mss4 int
	}{
		{ModeGRETransport, TransportESP, "192.0.2.1", 1442, 1402},
		{ModeGRETransport, TransportUDP, "192.0.2.1", 1434, 1394},
		{ModeGRETunnel, TransportESP, "192.0.2.1", 1422, 1382},
		{ModeRoute, TransportESP, "192.0.2.1", 1446, 1406},
		{ModeGRETransport, TransportESP, "2001:db8::1", 1422, 1382},
	} {
		c := TunnelConfig{Name: "t", Mode: tc.mode, Transport: tc.transport, Local: netip.MustParseAddr(tc.local)}
		o := OverheadOf(&c)
		if o.MTU() != tc.mtu || o.MSS4() != tc.mss4 || o.MSS6() != tc.mtu-60 {
			t.Errorf("%v over %v from %s: MTU %d MSS %d/%d, want %d %d/%d", tc.mode, tc.transport, tc.local,
				o.MTU(), o.MSS4(), o.MSS6(), tc.mtu, tc.mss4, tc.mtu-60)
		}
	}
	c := TunnelConfig{Name: "t", Local: outerA, MTU: 1443}
	if _, err := ResolveMTU(&c); err == nil {
		t.Error("ResolveMTU accepted an MTU larger than the path allows")
	}
}

// TestPairBadInput injects malformed and forged ESP packets into B's socket
// and checks each is dropped and counted and that the tunnel still works.
func TestPairBadInput(t *testing.T) {
	a, b := tunnelConfigs(ModeGRETransport, TransportUDP, esp.AES256GCM16, false)
	p := newPair(t, a, b)
	good := [][]byte{udpPacket(innerA, innerB, 100)}
	exchange(t, p.tunA, p.tunB, good)

	// Capture one genuine ESP packet by sealing with a copy of A's SA.
	sa, _ := esp.NewSA(*a.Outbound)
	buf := make([]byte, 2048)
	gre := []byte{0, 0, 0x08, 0}
	inner := udpPacket(innerA, innerB, 10)
	n := copy(buf[esp.HeadroomLen:], gre)
	n += copy(buf[esp.HeadroomLen+n:], inner)
	genuine := append([]byte(nil), sa.Seal(buf[:esp.HeadroomLen+n], 1, ipProtoGRE)...) // seq 1 was used by A: a replay
	forged := sa.Seal(buf[:esp.HeadroomLen+n], 1000, ipProtoGRE)                       // new seq, bad ICV
	forged[len(forged)-1] ^= 1
	unknown := append([]byte(nil), genuine...)
	binary.BigEndian.PutUint32(unknown, 0xdead)
	bad := [][]byte{
		genuine,         // replay of sequence number 1
		forged,          // bad ICV
		unknown,         // unknown SPI
		genuine[:5],     // shorter than an ESP header
		{0, 0, 0, 0, 1}, // IKE behind the non-ESP marker
		{0xff},          // NAT keepalive
		genuine[:30],    // truncated
	}
	ds := p.b.Stats()
	before := p.tb.InboundSAs()[0].Stats()
	for _, pkt := range bad {
		if err := p.linkA.Send([][]byte{pkt}, p.ta.path.Load().endpoint); err != nil {
			t.Fatal(err)
		}
	}
	exchange(t, p.tunA, p.tunB, good) // still works, and the bad ones were processed first
	after := p.tb.InboundSAs()[0].Stats()
	if got := after.Replays - before.Replays; got != 1 {
		t.Errorf("replays counted %d, want 1", got)
	}
	if got := after.AuthFailures - before.AuthFailures; got != 1 {
		t.Errorf("auth failures counted %d, want 1", got)
	}
	if ds.UnknownSPI.Load() != 1 || ds.IKE.Load() != 1 || ds.Keepalives.Load() != 1 || ds.Malformed.Load() != 2 {
		t.Errorf("device counters: unknown SPI %d, IKE %d, keepalives %d, malformed %d; want 1, 1, 1, 2",
			ds.UnknownSPI.Load(), ds.IKE.Load(), ds.Keepalives.Load(), ds.Malformed.Load())
	}
	if after.RxPackets != before.RxPackets+1 {
		t.Errorf("rx packets went from %d to %d, want +1", before.RxPackets, after.RxPackets)
	}
}

// TestPairMSSClamp sends a TCP SYN with MSS 1460 through the tunnel and
// checks it arrives with the MSS lowered to fit the tunnel and a valid checksum.
func TestPairMSSClamp(t *testing.T) {
	a, b := tunnelConfigs(ModeGRETunnel, TransportESP, esp.AES256GCM16, true)
	p := newPair(t, a, b)
	syn := make([]byte, header.IPv4MinimumSize+header.TCPMinimumSize+4)
	ip := header.IPv4(syn)
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(syn)), TTL: 64, Protocol: uint8(header.TCPProtocolNumber),
		SrcAddr: tcpip.AddrFrom4(innerA.As4()), DstAddr: tcpip.AddrFrom4(innerB.As4())})
	ip.SetChecksum(^ip.CalculateChecksum())
	tcp := header.TCP(syn[header.IPv4MinimumSize:])
	tcp.Encode(&header.TCPFields{SrcPort: 1234, DstPort: 80, SeqNum: 1, DataOffset: header.TCPMinimumSize + 4,
		Flags: header.TCPFlagSyn, WindowSize: 65535})
	copy(tcp[header.TCPMinimumSize:], []byte{2, 4, 0x05, 0xb4}) // MSS 1460
	sum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(), uint16(len(tcp)))
	tcp.SetChecksum(^checksum.Checksum(tcp, sum))

	p.tunA.Inject(syn)
	select {
	case got := <-p.tunB.Output():
		gt := header.TCP(got[header.IPv4MinimumSize:])
		if mss := binary.BigEndian.Uint16(gt[header.TCPMinimumSize+2:]); mss != 1382 {
			t.Errorf("MSS after the tunnel = %d, want 1382", mss)
		}
		gip := header.IPv4(got)
		sum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, gip.SourceAddress(), gip.DestinationAddress(), uint16(len(gt)))
		if checksum.Checksum(gt, sum) != 0xffff {
			t.Error("TCP checksum invalid after clamping")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SYN did not arrive")
	}
}

// TestPairSetOuter starts a GRE transport-mode tunnel over raw ESP, as IKE
// configures it, then moves both sides to ESP-in-UDP and tunnel mode, as
// NAT traversal and a peer that refuses transport mode make IKE do.
func TestPairSetOuter(t *testing.T) {
	a, b := tunnelConfigs(ModeGRETransport, TransportESP, esp.AES256GCM16, true)
	for _, c := range []*TunnelConfig{&a, &b} {
		c.NATTraversal, c.TunnelFallback = true, true
	}
	if o := OverheadOf(&a); o.MTU() != 1414 {
		t.Errorf("MTU with NAT traversal and tunnel fallback = %d, want 1414 (1422 - UDP 8)", o.MTU())
	}
	rawA, rawB := link.NewMemoryPair(netip.AddrPortFrom(outerA, 0), netip.AddrPortFrom(outerB, 0))
	udpA, udpB := link.NewMemoryPair(netip.AddrPortFrom(outerA, 4500), netip.AddrPortFrom(outerB, 4500))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	binds := func(raw, udp conn.Bind) BindFunc {
		return func(tr Transport, _ netip.Addr, _ uint16) (conn.Bind, error) {
			if tr == TransportUDP {
				return udp, nil
			}
			return raw, nil
		}
	}
	da := NewDevice(Options{Logger: log, Bind: binds(rawA, udpA)})
	db := NewDevice(Options{Logger: log, Bind: binds(rawB, udpB)})
	defer da.Close()
	defer db.Close()
	tunA, tunB := tun.NewMemory("a", 1414, maxBatchSize), tun.NewMemory("b", 1414, maxBatchSize)
	ta, err := da.AddTunnel(a, tunA)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := db.AddTunnel(b, tunB)
	if err != nil {
		t.Fatal(err)
	}
	pkts := [][]byte{udpPacket(innerA, innerB, 1), udpPacket(inner6A, inner6B, 1414-48)}
	exchange(t, tunA, tunB, pkts)
	if rawA.Sent() == 0 || udpA.Sent() != 0 {
		t.Fatalf("before SetOuter: raw sent %d, UDP sent %d", rawA.Sent(), udpA.Sent())
	}
	if err := ta.SetOuter(true, netip.AddrPortFrom(outerB, 4500), true); err != nil {
		t.Fatal(err)
	}
	if err := tb.SetOuter(true, netip.AddrPortFrom(outerA, 4500), true); err != nil {
		t.Fatal(err)
	}
	rawSent := rawA.Sent()
	exchange(t, tunA, tunB, pkts)
	exchange(t, tunB, tunA, pkts)
	if rawA.Sent() != rawSent || udpA.Sent() != uint64(len(pkts)) {
		t.Errorf("after SetOuter: raw sent %d more, UDP sent %d; want 0 and %d", rawA.Sent()-rawSent, udpA.Sent(), len(pkts))
	}
}
