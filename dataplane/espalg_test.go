package dataplane

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/greipsec/greipsec/esp"
)

// macTunnelConfigs returns both sides of a tunnel keyed by hand with tr,
// an AES-CBC or NULL transform with HMAC integrity.
func macTunnelConfigs(mode Mode, transport Transport, tr esp.Transform, esn bool) (TunnelConfig, TunnelConfig) {
	a, b := tunnelConfigs(mode, transport, esp.AES256GCM16, esn)
	for i, c := range []*esp.Config{a.Outbound, a.Inbound} {
		c.Algorithm, c.Integrity = tr.Algorithm, tr.Integrity
		c.Key = testKey(tr.Algorithm, byte(1+100*i))
		c.AuthKey = make([]byte, tr.Integrity.KeyLen())
		for j := range c.AuthKey {
			c.AuthKey[j] = byte(50 + 100*i + j)
		}
	}
	abIn, baOut := *a.Outbound, *a.Inbound
	b.Outbound, b.Inbound = &baOut, &abIn
	return a, b
}

// TestPairMACAlgorithms runs traffic through two devices with each
// AES-CBC and NULL transform, with and without ESN, and checks that the
// MTU leaves room for exactly the transform's IV, block padding and ICV.
func TestPairMACAlgorithms(t *testing.T) {
	tests := []struct {
		tr  esp.Transform
		mtu int // gre-transport over raw ESP, IPv4, 1500-byte path
	}{
		// 1480 for ESP: header and 16-byte IV 24, ICV; the rest a
		// multiple of 16 holding payload, pad length and next header;
		// then the 4-byte GRE header.
		{esp.Transform{Algorithm: esp.AES128CBC, Integrity: esp.HMACSHA1_96}, 1434},
		{esp.Transform{Algorithm: esp.AES256CBC, Integrity: esp.HMACSHA256_128}, 1434},
		{esp.Transform{Algorithm: esp.AES192CBC, Integrity: esp.HMACSHA384_192}, 1418},
		{esp.Transform{Algorithm: esp.AES256CBC, Integrity: esp.HMACSHA512_256}, 1418},
		// NULL: 8-byte header, no IV, 4-byte alignment.
		{esp.Transform{Algorithm: esp.NullEncryption, Integrity: esp.HMACSHA256_128}, 1450},
	}
	for _, tt := range tests {
		for _, esn := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/esn=%v", tt.tr, esn), func(t *testing.T) {
				a, b := macTunnelConfigs(ModeGRETransport, TransportESP, tt.tr, esn)
				if got := OverheadOf(&a).MTU(); got != tt.mtu {
					t.Errorf("MTU %d, want %d", got, tt.mtu)
				}
				a.Transport, b.Transport = TransportUDP, TransportUDP
				p := newPair(t, a, b)
				pkts := [][]byte{udpPacket(innerA, innerB, 1), udpPacket(inner6A, inner6B, 1000), udpPacket(innerA, innerB, p.ta.MTU()-28)}
				exchange(t, p.tunA, p.tunB, pkts)
			})
		}
	}
}

// TestMTUWorstIKETransform: an IKE tunnel's MTU fits the largest of the
// transforms it may negotiate.
func TestMTUWorstIKETransform(t *testing.T) {
	c := TunnelConfig{Name: "t", Mode: ModeGRETransport, Transport: TransportESP, Local: netip.MustParseAddr("192.0.2.1"),
		ESPTransforms: []esp.Transform{{Algorithm: esp.AES256GCM16}, {Algorithm: esp.AES256CBC, Integrity: esp.HMACSHA512_256}}}
	if got := OverheadOf(&c).MTU(); got != 1418 {
		t.Fatalf("MTU %d, want 1418 (AES-CBC with HMAC-SHA-512)", got)
	}
	c.ESPTransforms = c.ESPTransforms[:1]
	if got := OverheadOf(&c).MTU(); got != 1442 {
		t.Fatalf("MTU %d, want 1442 (AES-GCM)", got)
	}
}
