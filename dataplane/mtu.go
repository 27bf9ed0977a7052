package dataplane

import (
	"fmt"

	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/gre"
)

// Header sizes that enter the overhead.
const (
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
	udpHeaderLen  = 8
	tcpHeaderLen  = 20
)

// Overhead describes what a tunnel adds around each inner packet, derived
// from its mode, transport, address family and GRE options.
type Overhead struct {
	OuterIP   int // outer IP header, built by the kernel
	UDP       int // UDP header for ESP-in-UDP
	InnerIP   int // the IP header inside ESP in GRE tunnel mode
	GRE       int // GRE header with its optional fields
	PathMTU   int // the outer path MTU the figures are derived from
	MaxESPLen int // the largest ESP packet (SPI to ICV) that fits the path
	// ESP is the transform whose IV, block and ICV the MTU leaves room
	// for: the manual SA's, or the largest of those IKE may negotiate.
	ESP esp.Transform
}

// Encap is the number of bytes put between the ESP header and the inner
// packet: the GRE header and, in GRE tunnel mode, an IP header.
func (o Overhead) Encap() int { return o.InnerIP + o.GRE }

// MTU is the largest inner packet that fits the path without fragmenting
// the outer packet.
func (o Overhead) MTU() int { return o.ESP.MaxPayload(o.MaxESPLen) - o.Encap() }

// MSS4 and MSS6 are the TCP MSS values that fit MTU for IPv4 and IPv6 inner
// packets (no options).
func (o Overhead) MSS4() int { return o.MTU() - ipv4HeaderLen - tcpHeaderLen }
func (o Overhead) MSS6() int { return o.MTU() - ipv6HeaderLen - tcpHeaderLen }

// OverheadOf derives the overhead of a tunnel from its configuration.
func OverheadOf(c *TunnelConfig) Overhead {
	o := Overhead{OuterIP: ipv4HeaderLen, PathMTU: c.PathMTU}
	if c.Local.Is6() && !c.Local.Is4In6() {
		o.OuterIP = ipv6HeaderLen
	}
	if o.PathMTU == 0 {
		o.PathMTU = DefaultPathMTU
	}
	if c.Transport == TransportUDP || c.NATTraversal {
		o.UDP = udpHeaderLen
	}
	if c.Mode != ModeRoute {
		f := greFields(c, gre.ProtocolIPv4)
		o.GRE = f.HeaderLen()
	}
	if c.Mode == ModeGRETunnel || (c.Mode == ModeGRETransport && c.TunnelFallback) {
		o.InnerIP = o.OuterIP
	}
	o.MaxESPLen = o.PathMTU - o.OuterIP - o.UDP
	o.ESP = espTransform(c, o.MaxESPLen)
	return o
}

// defaultESP is the transform assumed when a tunnel names none: AES-GCM,
// whose sizes all the AEADs share.
var defaultESP = esp.Transform{Algorithm: esp.AES256GCM16}

// espTransform returns the transform the MTU of c must fit: its manual
// outbound SA's, or of those IKE may negotiate (c.ESPTransforms) the one
// that leaves the least room for the payload in an espLen-byte packet.
func espTransform(c *TunnelConfig, espLen int) esp.Transform {
	if c.Outbound != nil {
		return c.Outbound.Transform()
	}
	if len(c.ESPTransforms) == 0 {
		return defaultESP
	}
	worst := c.ESPTransforms[0]
	for _, t := range c.ESPTransforms[1:] {
		if t.MaxPayload(espLen) < worst.MaxPayload(espLen) {
			worst = t
		}
	}
	return worst
}

// greFields is the GRE header a tunnel sends for an inner packet of the
// given protocol type; the sequence number is filled in per packet.
func greFields(c *TunnelConfig, protocol uint16) gre.Fields {
	return gre.Fields{
		Protocol:   protocol,
		Checksum:   c.GRE.Checksum,
		KeyPresent: c.GRE.HasKey,
		Key:        c.GRE.Key,
		SeqPresent: c.GRE.Sequence,
	}
}

// minInnerMTU is the smallest inner MTU IPv4 allows (RFC 791); IPv6 needs
// 1280 (RFC 8200) and is only enabled on the interface when it fits.
const minInnerMTU = 576

// ResolveMTU returns the inner MTU of a tunnel: the configured one, which
// must fit the path, or the derived one.
func ResolveMTU(c *TunnelConfig) (int, error) {
	o := OverheadOf(c)
	max := o.MTU()
	if max < minInnerMTU {
		return 0, fmt.Errorf("dataplane: tunnel %q: path MTU %d leaves %d bytes for inner packets (need at least %d)", c.Name, o.PathMTU, max, minInnerMTU)
	}
	if c.MTU == 0 {
		return max, nil
	}
	if c.MTU > max {
		return 0, fmt.Errorf("dataplane: tunnel %q: mtu %d does not fit path MTU %d with %s over %s (at most %d)", c.Name, c.MTU, o.PathMTU, c.Mode, c.Transport, max)
	}
	if c.MTU < minInnerMTU {
		return 0, fmt.Errorf("dataplane: tunnel %q: mtu %d is below %d", c.Name, c.MTU, minInnerMTU)
	}
	return c.MTU, nil
}
