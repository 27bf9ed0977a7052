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

// FuzzClassifyUDP: any UDP payload of the ESP-in-UDP port is classified
// without panicking, and the classes keep their contracts: IKE after a
// zero marker with something behind it, ESP with a non-zero SPI and at
// least the shortest sealed packet, a keepalive only as the one byte 0xff.
func FuzzClassifyUDP(f *testing.F) {
	for _, s := range [][]byte{{0xff}, {0, 0, 0, 0}, {0, 0, 0, 0, 1}, {1, 2, 3, 4}, make([]byte, 64), append([]byte{0, 0, 1, 0}, make([]byte, 60)...)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		switch k := ClassifyUDP(b); k {
		case UDPKeepalive:
			if len(b) != 1 || b[0] != 0xff {
				t.Fatalf("%x: keepalive", b)
			}
		case UDPIKE:
			if len(b) <= NonESPMarkerLen || b[0]|b[1]|b[2]|b[3] != 0 {
				t.Fatalf("%x: IKE", b)
			}
		case UDPESP:
			if len(b) < minPacketLen || b[0]|b[1]|b[2]|b[3] == 0 {
				t.Fatalf("%x: ESP", b)
			}
		case UDPInvalid:
		default:
			t.Fatalf("%x: kind %v", b, k)
		}
	})
}
