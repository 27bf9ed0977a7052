package dataplane

import (
	"fmt"
	"net/netip"

	"github.com/greipsec/greipsec/esp"
)

// Mode is how a tunnel's inner packets are carried inside ESP.
type Mode uint8

const (
	// ModeGRETransport is GRE over ESP transport mode: the ESP payload is a
	// GRE header followed by the inner packet, next header 47. This is what
	// Linux setkey/racoon and OpenBSD iked + gre(4) put on the wire.
	ModeGRETransport Mode = iota
	// ModeGRETunnel is GRE over ESP tunnel mode: the ESP payload is an IP
	// header (protocol 47, local → peer), a GRE header and the inner packet,
	// next header 4 or 41. This is Cisco IOS "tunnel protection" with the
	// default "mode tunnel".
	ModeGRETunnel
	// ModeRoute is route-based ESP tunnel mode with no GRE (OpenBSD sec(4),
	// Cisco VTI): the inner packet itself is the ESP payload, next header 4
	// or 41.
	ModeRoute
)

var modeNames = [...]string{
	ModeGRETransport: "gre-transport",
	ModeGRETunnel:    "gre-tunnel",
	ModeRoute:        "route",
}

func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", m)
}

// ParseMode parses the config spelling of a Mode.
func ParseMode(s string) (Mode, error) {
	for m, name := range modeNames {
		if s == name {
			return Mode(m), nil
		}
	}
	return 0, fmt.Errorf("unknown mode %q (expected gre-transport, gre-tunnel or route)", s)
}

// Transport is how ESP packets travel between the gateways.
type Transport uint8

const (
	// TransportESP is raw ESP, IP protocol 50. It needs CAP_NET_RAW.
	TransportESP Transport = iota
	// TransportUDP is ESP-in-UDP (RFC 3948), by default on port 4500.
	TransportUDP
)

var transportNames = [...]string{
	TransportESP: "esp",
	TransportUDP: "udp",
}

func (t Transport) String() string {
	if int(t) < len(transportNames) {
		return transportNames[t]
	}
	return fmt.Sprintf("Transport(%d)", t)
}

// ParseTransport parses the config spelling of a Transport.
func ParseTransport(s string) (Transport, error) {
	for t, name := range transportNames {
		if s == name {
			return Transport(t), nil
		}
	}
	return 0, fmt.Errorf("unknown transport %q (expected esp or udp)", s)
}

// DefaultUDPPort is the IANA port for ESP-in-UDP and IKE behind NAT (RFC 3948).
const DefaultUDPPort = 4500

// DefaultPathMTU is the outer path MTU assumed when the config gives none.
const DefaultPathMTU = 1500

// GREConfig holds the optional GRE header fields (RFC 2784, RFC 2890).
type GREConfig struct {
	Key      uint32 // sent and required on receive when HasKey
	HasKey   bool
	Sequence bool // send sequence numbers (RFC 2890 §2.2)
	Checksum bool // send the GRE checksum (RFC 2784 §2.5)
}

// TunnelConfig describes one tunnel: the outer endpoints, how inner packets
// are encapsulated, and (for manual keying) its two Security Associations.
type TunnelConfig struct {
	Name      string      // tunnel name, used in logs and errors
	Mode      Mode        //
	Transport Transport   //
	Local     netip.Addr  // outer local address
	Peer      netip.Addr  // outer peer address
	UDPPort   uint16      // local UDP port for TransportUDP (and the peer's, unless PeerUDPPort); 0 means DefaultUDPPort
	PathMTU   int         // outer path MTU; 0 means DefaultPathMTU
	MTU       int         // inner MTU; 0 means derived from PathMTU and the overhead
	MSSClamp  bool        // clamp the TCP MSS of SYNs in both directions to fit MTU
	GRE       GREConfig   //
	Outbound  *esp.Config // manual SA for local → peer; nil when IKE keys the tunnel
	Inbound   *esp.Config // manual SA for peer → local
	Interface string      // inner interface name (TUN), e.g. "gre0"

	// Allowed lists the inner addresses that may be on the peer's side of
	// the tunnel, like WireGuard's AllowedIPs; nil means any, an empty
	// list none. Inbound, the source of every inner packet must be in it:
	// in route mode the packet the SA carries (and the SA's negotiated
	// peer selectors are narrowed to it), in the GRE modes the packet GRE
	// carries, whose source the Child SA's selectors (GRE between the two
	// gateways) say nothing about (RFC 4301 §5.2). Outbound, in route mode,
	// the destination must be in it. The config layer sets it from the
	// tunnel's "allowed" key; by default, in route mode, to its routes.
	Allowed []netip.Prefix

	// ESPTransforms are the transforms IKE may negotiate for the tunnel;
	// the MTU fits the largest. Empty: AES-GCM. Unused with manual SAs.
	ESPTransforms []esp.Transform

	// NATTraversal: IKE may move ESP into UDP (RFC 3948) when it sees a
	// NAT, so the UDP socket is opened too and the MTU leaves room for
	// the UDP header.
	NATTraversal bool
	// PeerUDPPort is the peer's UDP port for TransportUDP; 0 means the
	// same as UDPPort. IKE may send ESP elsewhere (Tunnel.SetOuter).
	PeerUDPPort uint16

	// NoPathMTUDiscovery: the configured PathMTU is the path MTU; the
	// kernel's knowledge of the path is not used (pathmtu.go).
	NoPathMTUDiscovery bool
	// Fragmentation: what happens to an IPv4 packet without DF that is
	// larger than the path carries whole.
	Fragmentation Fragmentation

	// TunnelFallback: IKE may settle on tunnel mode for ModeGRETransport
	// (the peer refused transport mode), so the MTU leaves room for the
	// inner IP header.
	TunnelFallback bool
}
