package esp

import (
	"bytes"
	"testing"
)

// TestClassifyUDP follows RFC 3948 §2: a keepalive is the single byte
// 0xFF, IKE follows a 4-byte zero non-ESP marker, anything else starts
// with a non-zero SPI.
func TestClassifyUDP(t *testing.T) {
	sa := newTestSA(t, Transform{Algorithm: AES128GCM16}, false)
	esp := sealPayload(sa, nil, 1, 59)
	if len(esp) != minPacketLen {
		t.Fatalf("empty sealed packet is %d bytes, want %d", len(esp), minPacketLen)
	}
	ike := append(make([]byte, NonESPMarkerLen), bytes.Repeat([]byte{0x11}, 28)...)
	tests := []struct {
		name string
		b    []byte
		want UDPKind
	}{
		{"keepalive", Keepalive[:], UDPKeepalive},
		{"empty", nil, UDPInvalid},
		{"one-zero", []byte{0}, UDPInvalid},
		{"two-ff", []byte{0xff, 0xff}, UDPInvalid},
		{"three", []byte{1, 2, 3}, UDPInvalid},
		{"bare-marker", make([]byte, 4), UDPInvalid},
		{"ike", ike, UDPIKE},
		{"ike-short", make([]byte, 5), UDPIKE},
		{"esp", esp, UDPESP},
		{"esp-short", esp[:minPacketLen-1], UDPInvalid},
		{"spi-only", []byte{0, 0, 1, 0}, UDPInvalid},
		{"ff-esp", append([]byte{0xff}, esp[1:]...), UDPESP},
	}
	for _, tt := range tests {
		if got := ClassifyUDP(tt.b); got != tt.want {
			t.Errorf("%s: ClassifyUDP = %v, want %v", tt.name, got, tt.want)
		}
	}
	if Keepalive != [1]byte{0xff} || NonESPMarkerLen != 4 {
		t.Fatal("RFC 3948 constants changed")
	}
	names := map[UDPKind]string{UDPInvalid: "invalid", UDPESP: "esp", UDPIKE: "ike", UDPKeepalive: "keepalive", 9: "UDPKind(?)"}
	for k, s := range names {
		if k.String() != s {
			t.Errorf("%d.String() = %q", k, k.String())
		}
	}
}
