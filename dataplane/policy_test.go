package dataplane

import (
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/greipsec/greipsec/dataplane/link"
	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/tun"
)

// The tests in this file are the attacks of the security review
// (../shared/reviews/security-2026-11.md) on the data path: H1 and N8
// (traffic selectors in route mode), N1 (allowed inner sources in the GRE
// modes), L4 (outer source before decryption) and N6 (oversize TUN packet).

// ikePair is a pair whose route-mode SAs are installed as IKE installs
// them: with the negotiated selectors, A's side 10.1.0.0/24 and
// fd00:1::/64, B's 10.2.0.0/24 and fd00:2::/64.
func ikePair(t *testing.T, mode Mode, protoA uint8) *pair {
	t.Helper()
	a, b := tunnelConfigs(mode, TransportESP, esp.AES256GCM16, true)
	ab, ba := *a.Outbound, *a.Inbound
	a.Outbound, a.Inbound, b.Outbound, b.Inbound = nil, nil, nil, nil
	p := newPair(t, a, b)
	sideA := []Selector{{Prefix: pfx("10.1.0.0/24"), Protocol: protoA}, {Prefix: pfx("fd00:1::/64"), Protocol: protoA}}
	sideB := []Selector{{Prefix: pfx("10.2.0.0/24")}, {Prefix: pfx("fd00:2::/64")}}
	install := func(tu *Tunnel, out, in esp.Config, sel *Selectors) {
		osa, err := esp.NewSA(out)
		if err != nil {
			t.Fatal(err)
		}
		isa, err := esp.NewSA(in)
		if err != nil {
			t.Fatal(err)
		}
		if err := tu.AddInboundSA(isa, sel); err != nil {
			t.Fatal(err)
		}
		if err := tu.SetOutboundSA(osa, sel); err != nil {
			t.Fatal(err)
		}
	}
	install(p.ta, ab, ba, &Selectors{Local: sideA, Peer: sideB})
	install(p.tb, ba, ab, &Selectors{Local: sideB, Peer: sideA})
	return p
}

// expectNone checks that nothing comes out of dev for a while.
func expectNone(t *testing.T, dev *tun.Memory, what string) {
	t.Helper()
	select {
	case got := <-dev.Output():
		t.Fatalf("%s: a packet came out: %x...", what, head(got))
	case <-time.After(100 * time.Millisecond):
	}
}

// eventually polls cond for up to 5 s, and fails the test if it never holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// sealedFrom returns ESP packets sealed with cfg (a copy of a peer's
// outbound SA) carrying pkts, with sequence numbers from firstSeq, as the
// peer would send them in route mode (next header 4 or 41).
func sealedFrom(t *testing.T, cfg esp.Config, firstSeq uint64, pkts ...[]byte) [][]byte {
	t.Helper()
	sa, err := esp.NewSA(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for i, pkt := range pkts {
		buf := make([]byte, esp.HeadroomLen+len(pkt)+esp.TrailerLen(len(pkt)))
		copy(buf[esp.HeadroomLen:], pkt)
		nh := byte(ipProtoIPv4)
		if pkt[0]>>4 == 6 {
			nh = ipProtoIPv6
		}
		out = append(out, sa.Seal(buf[:esp.HeadroomLen+len(pkt)], firstSeq+uint64(i), nh))
	}
	return out
}

// TestRouteSelectorsInbound is the review's H1 (appendix A.1): a peer that
// holds the keys sends inner packets from addresses outside its traffic
// selectors, or to addresses outside ours, or of a protocol the SA does not
// carry. Each is dropped and counted as a selector drop; the genuine
// packets around them arrive. Before the fix A's TUN received the packet
// from 198.51.100.7 and counted no selector drop.
func TestRouteSelectorsInbound(t *testing.T) {
	p := ikePair(t, ModeRoute, 0)
	inA, inB := addr("10.1.0.5"), addr("10.2.0.7")
	in6A, in6B := addr("fd00:1::5"), addr("fd00:2::7")
	ok := [][]byte{udpPacket(inB, inA, 10), udpPacket(in6B, in6A, 10)}
	exchange(t, p.tunB, p.tunA, ok)

	spoofed := [][]byte{
		udpPacket(addr("198.51.100.7"), inA, 10), // an Internet source
		udpPacket(addr("10.1.0.10"), inA, 10),    // a host on A's own LAN
		udpPacket(inB, addr("10.3.0.1"), 10),     // a destination outside A's side
		udpPacket(addr("fd00:9::1"), in6A, 10),   // IPv6: no rp_filter to save us
	}
	// B's TUN would not send these (see TestRouteSelectorsOutbound), so
	// the peer's packets are forged with B's keys, as a malicious peer
	// holding them would.
	_, b := tunnelConfigs(ModeRoute, TransportESP, esp.AES256GCM16, true)
	forged := sealedFrom(t, *b.Outbound, 1000, spoofed...)
	if err := p.linkB().Send(forged, p.linkB().peerEP(t)); err != nil {
		t.Fatal(err)
	}
	exchange(t, p.tunB, p.tunA, ok)
	expectNone(t, p.tunA, "spoofed inner packets")
	sa := p.ta.InboundSAs()[0]
	if s := sa.Stats(); s.BadSelector != 4 || s.AuthFailures != 0 {
		t.Errorf("A counted %d selector drops and %d authentication failures, want 4 and 0", s.BadSelector, s.AuthFailures)
	}
}

// TestRouteSelectorsProtocol: the SA carries only TCP to A's side.
func TestRouteSelectorsProtocol(t *testing.T) {
	p := ikePair(t, ModeRoute, 6)
	tcp := udpPacket(addr("10.2.0.7"), addr("10.1.0.5"), 10)
	tcp[ipv4ProtocolOffset] = uint8(header.TCPProtocolNumber) // not a valid TCP segment; the selector does not care
	header.IPv4(tcp).SetChecksum(0)
	header.IPv4(tcp).SetChecksum(^header.IPv4(tcp).CalculateChecksum())
	udp := udpPacket(addr("10.2.0.7"), addr("10.1.0.5"), 10)
	_, b := tunnelConfigs(ModeRoute, TransportESP, esp.AES256GCM16, true)
	if err := p.linkB().Send(sealedFrom(t, *b.Outbound, 1, udp, tcp), p.linkB().peerEP(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-p.tunA.Output():
		if header.IPv4(got).Protocol() != uint8(header.TCPProtocolNumber) {
			t.Fatalf("A received protocol %d, want only TCP", header.IPv4(got).Protocol())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the TCP packet did not arrive")
	}
	expectNone(t, p.tunA, "UDP on a TCP-only SA")
	if s := p.ta.InboundSAs()[0].Stats(); s.BadSelector != 1 {
		t.Errorf("selector drops %d, want 1", s.BadSelector)
	}
}

// TestRouteSelectorsOutbound is the review's N8: a packet routed into the
// tunnel whose destination (or source) is outside the Child SA's selectors
// is not sent into the SA, and counted as NoPolicy.
func TestRouteSelectorsOutbound(t *testing.T) {
	p := ikePair(t, ModeRoute, 0)
	good := [][]byte{udpPacket(addr("10.1.0.5"), addr("10.2.0.7"), 10)}
	exchange(t, p.tunA, p.tunB, good)
	sent := p.linkA.Sent()
	for _, pkt := range [][]byte{
		udpPacket(addr("10.1.0.5"), addr("10.9.0.7"), 10),     // the peer narrowed its side to 10.2.0.0/24
		udpPacket(addr("192.168.7.1"), addr("10.2.0.7"), 10),  // not from our side
		udpPacket(addr("fd00:1::5"), addr("2001:db8::7"), 10), // IPv6 outside
	} {
		p.tunA.Inject(pkt)
	}
	eventually(t, "3 NoPolicy drops", func() bool { return p.ta.Stats().NoPolicy.Load() == 3 })
	exchange(t, p.tunA, p.tunB, good)
	if got := p.linkA.Sent() - sent; got != 1 {
		t.Errorf("A sent %d ESP packets, want only the 1 within the selectors", got)
	}
	if n := p.ta.OutboundSA().Stats().TxPackets; n != 2 {
		t.Errorf("outbound SA sealed %d packets, want 2", n)
	}
}

// TestManualRouteAllowed: a manual route tunnel has no negotiated
// selectors; its Allowed list (by default the routes) is what the peer's
// inner sources and our destinations must be in.
func TestManualRouteAllowed(t *testing.T) {
	a, b := tunnelConfigs(ModeRoute, TransportUDP, esp.AES256GCM16, false)
	a.Allowed = []netip.Prefix{pfx("10.2.0.0/24"), pfx("fd00:2::/64")}
	b.Allowed = []netip.Prefix{pfx("10.1.0.0/24")}
	p := newPair(t, a, b)
	exchange(t, p.tunB, p.tunA, [][]byte{udpPacket(addr("10.2.0.1"), addr("10.1.0.200"), 5)})
	exchange(t, p.tunA, p.tunB, [][]byte{udpPacket(addr("10.1.0.1"), addr("10.2.0.50"), 5)})

	p.tunA.Inject(udpPacket(addr("10.2.0.9"), addr("10.3.0.1"), 5)) // A may not send to 10.3.0.1
	eventually(t, "A's NoPolicy drop", func() bool { return p.ta.Stats().NoPolicy.Load() == 1 })
	_, bb := tunnelConfigs(ModeRoute, TransportUDP, esp.AES256GCM16, false)
	forged := sealedFrom(t, *bb.Outbound, 100, udpPacket(addr("10.7.0.1"), addr("10.1.0.1"), 5))
	if err := p.linkB().Send(forged, p.linkB().peerEP(t)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "A's selector drop", func() bool { return p.ta.InboundSAs()[0].Stats().BadSelector == 1 })
	expectNone(t, p.tunA, "a source outside allowed")
}

// TestGREAllowedSources is the review's N1: in the GRE modes the Child
// SA's selectors cover only GRE between the gateways; the optional Allowed
// list restricts the sources of the packets GRE carries.
func TestGREAllowedSources(t *testing.T) {
	for _, mode := range []Mode{ModeGRETransport, ModeGRETunnel} {
		t.Run(mode.String(), func(t *testing.T) {
			a, b := tunnelConfigs(mode, TransportESP, esp.AES256GCM16, true)
			a.Allowed = []netip.Prefix{pfx("10.255.0.2/32"), pfx("10.2.0.0/24")}
			p := newPair(t, a, b)
			exchange(t, p.tunB, p.tunA, [][]byte{udpPacket(innerB, innerA, 20), udpPacket(addr("10.2.0.9"), addr("10.1.0.1"), 20)})
			// GRE outbound is not filtered: routing protocols and
			// multicast go where the routes say.
			exchange(t, p.tunA, p.tunB, [][]byte{udpPacket(innerA, addr("224.0.0.5"), 20)})
			p.tunB.Inject(udpPacket(addr("10.1.0.66"), innerA, 20)) // B claims a host on A's LAN
			eventually(t, "the selector drop", func() bool { return p.ta.InboundSAs()[0].Stats().BadSelector == 1 })
			expectNone(t, p.tunA, "an inner source outside allowed")
		})
	}
}

// TestOuterSourceBeforeDecryption is the review's L4: ESP for a valid SPI
// from an outer address other than the peer's is dropped before the SA
// spends an AEAD Open on it (no authentication failure is counted), in
// every mode and over UDP too. When IKE moves the peer (SetOuter after a
// NAT rebinding, PeerMoved), the new address is accepted.
func TestOuterSourceBeforeDecryption(t *testing.T) {
	for _, tc := range []struct {
		mode      Mode
		transport Transport
	}{{ModeRoute, TransportESP}, {ModeGRETunnel, TransportUDP}, {ModeGRETransport, TransportUDP}} {
		t.Run(tc.mode.String()+"/"+tc.transport.String(), func(t *testing.T) {
			a, b := tunnelConfigs(tc.mode, tc.transport, esp.AES256GCM16, false)
			// B's tunnel expects A at 192.0.2.1; the cable delivers from
			// 192.0.2.99.
			spoof := addr("192.0.2.99")
			lx, lb := link.NewMemoryPair(netip.AddrPortFrom(spoof, 4500), netip.AddrPortFrom(outerB, 4500))
			db := NewDevice(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				Bind: func(Transport, netip.Addr, uint16) (conn.Bind, error) { return lb, nil }})
			defer db.Close()
			tunB := tun.NewMemory("b", 1400, maxBatchSize)
			tb, err := db.AddTunnel(b, tunB)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := lx.Open(0); err != nil {
				t.Fatal(err)
			}
			defer lx.Close()
			ep, err := lx.ParseEndpoint(netip.AddrPortFrom(outerB, 4500).String())
			if err != nil {
				t.Fatal(err)
			}
			sa, err := esp.NewSA(*a.Outbound)
			if err != nil {
				t.Fatal(err)
			}
			// Forged ICVs: decrypting them would count authentication failures.
			var pkts [][]byte
			for i := range 50 {
				buf := make([]byte, 2048)
				n := esp.HeadroomLen + copy(buf[esp.HeadroomLen:], udpPacket(innerA, innerB, 100))
				pkt := sa.Seal(buf[:n], uint64(i+1), ipProtoIPv4)
				pkt[len(pkt)-1] ^= 1
				pkts = append(pkts, pkt)
			}
			if err := lx.Send(pkts, ep); err != nil {
				t.Fatal(err)
			}
			eventually(t, "50 outer-source drops", func() bool { return tb.Stats().BadSource.Load() == 50 })
			if s := tb.InboundSAs()[0].Stats(); s.AuthFailures != 0 {
				t.Errorf("%d authentication failures: the SA decrypted packets from the wrong source", s.AuthFailures)
			}

			// The peer moved there (IKE saw an authenticated message from it).
			if err := tb.SetOuter(tc.transport == TransportUDP, netip.AddrPortFrom(spoof, 4500), tc.mode == ModeGRETunnel); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 2048)
			inner := udpPacket(innerA, innerB, 100)
			payload := inner
			nh := byte(ipProtoIPv4)
			switch tc.mode {
			case ModeGRETransport:
				payload = append([]byte{0, 0, 0x08, 0}, inner...)
				nh = ipProtoGRE
			case ModeGRETunnel:
				// The IP header inside ESP names the gateways as
				// configured, whatever a NAT did to the outer one.
				payload = make([]byte, ipv4HeaderLen, ipv4HeaderLen+4+len(inner))
				payload = append(append(payload, 0, 0, 0x08, 0), inner...)
				ip := header.IPv4(payload)
				ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(payload)), TTL: 64, Protocol: ipProtoGRE,
					SrcAddr: tcpip.AddrFrom4(outerA.As4()), DstAddr: tcpip.AddrFrom4(outerB.As4())})
				ip.SetChecksum(^ip.CalculateChecksum())
			}
			n := esp.HeadroomLen + copy(buf[esp.HeadroomLen:], payload)
			if err := lx.Send([][]byte{sa.Seal(buf[:n], 1000, nh)}, ep); err != nil {
				t.Fatal(err)
			}
			select {
			case got := <-tunB.Output():
				if string(got) != string(inner) {
					t.Fatalf("got %x..., want the sent packet", head(got))
				}
			case <-time.After(5 * time.Second):
				t.Fatal("after SetOuter, ESP from the new address was not accepted")
			}
		})
	}
}

// TestOversizeTUNPacket is the review's N6: a packet from the TUN device
// that fills the whole buffer leaves no room for the ESP trailer. Before
// the fix Seal panicked and took the process down; now it is dropped and
// counted (TooBig). A packet too large for the buffers at all (the TUN
// device's Read fails for it) is counted as a read error, and the tunnel
// goes on, where before its reader stopped for good.
func TestOversizeTUNPacket(t *testing.T) {
	a, b := tunnelConfigs(ModeGRETransport, TransportUDP, esp.AES256GCM16, false)
	// Sent whole, not fragmented before encryption (pathmtu.go), the
	// packet without DF reaches the trailer check.
	a.Fragmentation = FragmentAfterEncryption
	first := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(first) }) }
	p := newPairWith(t, a, b, func(p *pair) {
		var calls int // only A's reader calls the source
		p.tunA.SetSource(func(buf []byte) int {
			switch calls++; calls {
			case 1:
				// A whole-buffer IPv4 packet: its header claims what it can.
				copy(buf, udpPacket(innerA, innerB, 1))
				header.IPv4(buf).SetTotalLength(uint16(min(len(buf), 0xffff)))
				return len(buf)
			case 2:
				return 0 // end the batch
			default:
				<-first // the next Read waits here until the test moves on
				return 0
			}
		})
	})
	t.Cleanup(release) // before the pair's Close, which waits for the reader
	eventually(t, "the TooBig drop", func() bool { return p.ta.Stats().TooBig.Load() == 1 })
	p.tunA.SetSource(nil)
	release()

	huge := make([]byte, MaxMessageSize)
	copy(huge, udpPacket(innerA, innerB, 1))
	p.tunA.Inject(huge)
	eventually(t, "the read error", func() bool { return p.ta.Stats().ReadErrors.Load() == 1 })
	exchange(t, p.tunA, p.tunB, [][]byte{udpPacket(innerA, innerB, 100)})
}

// linkB returns the end of the pair's cable at B, from which tests send
// packets to A as B would.
func (p *pair) linkB() *memoryEnd {
	return &memoryEnd{m: p.lb}
}

type memoryEnd struct{ m *link.Memory }

func (e *memoryEnd) Send(bufs [][]byte, ep conn.Endpoint) error { return e.m.Send(bufs, ep) }

func (e *memoryEnd) peerEP(t *testing.T) conn.Endpoint {
	t.Helper()
	ep, err := e.m.ParseEndpoint(outerA.String())
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// TestRouteIPv4OnlySelectors: a route-mode Child SA whose selectors are
// IPv4 only (0.0.0.0/0 both ways, as a peer without IPv6 negotiates them)
// carries no IPv6: what the host sends into the tunnel of the other family,
// such as a router solicitation from fe80:: to ff02::2, is not sealed but
// counted as NoPolicy (issue 8).
func TestRouteIPv4OnlySelectors(t *testing.T) {
	p := ikePair(t, ModeRoute, 0)
	v4 := &Selectors{Local: []Selector{{Prefix: pfx("0.0.0.0/0")}}, Peer: []Selector{{Prefix: pfx("0.0.0.0/0")}}}
	a, _ := tunnelConfigs(ModeRoute, TransportESP, esp.AES256GCM16, true)
	osa, err := esp.NewSA(*a.Outbound) // nothing was sealed with the one ikePair installed
	if err == nil {
		err = p.ta.SetOutboundSA(osa, v4)
	}
	if err != nil {
		t.Fatal(err)
	}
	good := [][]byte{udpPacket(addr("10.1.0.5"), addr("10.2.0.7"), 10)}
	sent := p.linkA.Sent()
	p.tunA.Inject(udpPacket(addr("fe80::1"), addr("ff02::2"), 8))
	p.tunA.Inject(udpPacket(addr("fd00:1::5"), addr("fd00:2::7"), 8))
	eventually(t, "2 NoPolicy drops", func() bool { return p.ta.Stats().NoPolicy.Load() == 2 })
	exchange(t, p.tunA, p.tunB, good)
	if got := p.linkA.Sent() - sent; got != 1 {
		t.Errorf("A sent %d ESP packets, want only the IPv4 one", got)
	}
}
