package dataplane

import (
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/greipsec/greipsec/esp"
)

var (
	outerA6 = netip.MustParseAddr("2001:db8:255::1")
	outerB6 = netip.MustParseAddr("2001:db8:255::2")
)

// TestGREKeepalive: a keepalive one side sends (Cisco IOS / OpenBSD gre(4)
// shape: GRE carrying IP from the peer to us with a GRE header of Protocol
// Type 0) is reflected by the other inside the ESP SA and counted as a
// reply by the sender; neither side writes it to its TUN device. Before
// keepalive.go the receiver wrote the inner packet to its TUN device (where
// the kernel drops it: its source is the host's own address) and no reply
// ever came. In GRE transport and GRE tunnel mode, IPv4 and IPv6 outer
// addresses, with a GRE key.
func TestGREKeepalive(t *testing.T) {
	for _, c := range []struct {
		name string
		mode Mode
		v6   bool
	}{{"gre-transport", ModeGRETransport, false}, {"gre-tunnel", ModeGRETunnel, false}, {"gre-transport/ipv6", ModeGRETransport, true}} {
		t.Run(c.name, func(t *testing.T) {
			a, b := tunnelConfigs(c.mode, TransportESP, esp.AES256GCM16, false)
			if c.v6 {
				a.Local, a.Peer, b.Local, b.Peer = outerA6, outerB6, outerB6, outerA6
			}
			a.GRE.HasKey, a.GRE.Key = true, 1001
			b.GRE = a.GRE
			p := newPair(t, a, b)
			for i := 1; i <= 3; i++ {
				if !p.ta.SendKeepalive() {
					t.Fatal("SendKeepalive refused")
				}
				eventually(t, "the reply", func() bool { return p.ta.Stats().KeepaliveReplies.Load() == uint64(i) })
			}
			if n := p.tb.Stats().KeepalivesReflected.Load(); n != 3 {
				t.Errorf("B reflected %d keepalives, want 3", n)
			}
			expectNone(t, p.tunB, "B's TUN")
			expectNone(t, p.tunA, "A's TUN")
			// Traffic still flows both ways around them.
			exchange(t, p.tunA, p.tunB, [][]byte{udpPacket(addr("10.1.0.5"), addr("10.2.0.7"), 100)})
			exchange(t, p.tunB, p.tunA, [][]byte{udpPacket(addr("10.2.0.7"), addr("10.1.0.5"), 100)})
			for _, sa := range append(p.ta.InboundSAs(), p.tb.InboundSAs()...) {
				if s := sa.Stats(); s.BadGRE != 0 || s.BadSelector != 0 || s.AuthFailures != 0 || s.Replays != 0 {
					t.Errorf("SA %08x counted drops: %+v", sa.SPI(), s)
				}
			}
		})
	}
}

// TestGREKeepaliveOnlyToPeer: an inner GRE packet that is not addressed
// from this gateway to its peer is no keepalive and is not reflected (a
// peer cannot make greipsec send GRE elsewhere); in route mode there is no
// GRE and SendKeepalive refuses.
func TestGREKeepaliveOnlyToPeer(t *testing.T) {
	a, b := tunnelConfigs(ModeGRETransport, TransportESP, esp.AES256GCM16, false)
	p := newPair(t, a, b)
	other := udpPacket(outerB, addr("198.51.100.9"), 8)
	other[ipv4ProtocolOffset] = ipProtoGRE
	header.IPv4(other).SetChecksum(0)
	header.IPv4(other).SetChecksum(^header.IPv4(other).CalculateChecksum())
	exchange(t, p.tunA, p.tunB, [][]byte{other})
	if n := p.tb.Stats().KeepalivesReflected.Load(); n != 0 {
		t.Errorf("B reflected %d packets that are no keepalive", n)
	}

	ra, rb := tunnelConfigs(ModeRoute, TransportESP, esp.AES256GCM16, false)
	r := newPair(t, ra, rb)
	if r.ta.SendKeepalive() {
		t.Error("SendKeepalive in route mode: sent")
	}
}
