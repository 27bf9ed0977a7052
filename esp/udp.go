package esp

// ESP-in-UDP framing (RFC 3948 §2): one UDP port (4500) carries ESP
// packets, IKE messages behind a 4-byte zero non-ESP marker, and one-byte
// NAT keepalives.

// NonESPMarkerLen is the length of the all-zero non-ESP marker that
// precedes an IKE message on the ESP-in-UDP port (RFC 3948 §2.2).
const NonESPMarkerLen = 4

// Keepalive is the payload of a NAT keepalive packet (RFC 3948 §2.3).
var Keepalive = [1]byte{0xff}

// UDPKind is what a UDP payload on the ESP-in-UDP port holds.
type UDPKind uint8

const (
	// UDPInvalid is a payload that is none of the others: too short for
	// an ESP packet, or a bare non-ESP marker.
	UDPInvalid UDPKind = iota
	// UDPESP is an ESP packet, starting with its non-zero SPI
	// (RFC 3948 §2.1).
	UDPESP
	// UDPIKE is an IKE message after a non-ESP marker (RFC 3948 §2.2);
	// it starts at b[NonESPMarkerLen:].
	UDPIKE
	// UDPKeepalive is a NAT keepalive, the single byte 0xFF
	// (RFC 3948 §2.3).
	UDPKeepalive
)

var udpKindNames = [...]string{
	UDPInvalid:   "invalid",
	UDPESP:       "esp",
	UDPIKE:       "ike",
	UDPKeepalive: "keepalive",
}

// String returns a lower-case name of k.
func (k UDPKind) String() string {
	if int(k) < len(udpKindNames) {
		return udpKindNames[k]
	}
	return "UDPKind(?)"
}

// ClassifyUDP tells what the UDP payload b holds. An ESP packet must be at
// least as long as the shortest sealed packet (header, IV, trailer, ICV);
// the SPI and everything after it are left to Open.
func ClassifyUDP(b []byte) UDPKind {
	switch {
	case len(b) == 1 && b[0] == Keepalive[0]:
		return UDPKeepalive
	case len(b) < NonESPMarkerLen:
		return UDPInvalid
	case b[0]|b[1]|b[2]|b[3] == 0:
		if len(b) == NonESPMarkerLen {
			return UDPInvalid
		}
		return UDPIKE
	case len(b) < minPacketLen:
		return UDPInvalid
	}
	return UDPESP
}
