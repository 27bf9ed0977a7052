package dataplane

import (
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/greipsec/greipsec/gre"
)

/* GRE keepalives, as Cisco IOS ("keepalive" on a tunnel interface) and
 * OpenBSD gre(4) ("ifconfig gre0 keepalive") send them. RFC 2784 says
 * nothing about them; they work by routing alone. The sender S of a tunnel
 * to R builds the GRE packet R would send to S, with Protocol Type 0 (IOS;
 * OpenBSD's carries a SipHash-signed payload but is shaped the same):
 *
 *	IP(S -> R, proto 47) GRE(0x0800) | IP(R -> S, proto 47) GRE(0) [payload]
 *
 * and sends it into the tunnel. R decapsulates it, finds an inner packet
 * addressed to S, and routes it, which sends a GRE packet from R to S:
 * the reply. S sees a GRE packet of Protocol Type 0 come back and counts
 * the tunnel alive. The reply goes where R's policy sends GRE from R to S:
 * with IPsec protecting that GRE (IOS "tunnel protection", iked/racoon's
 * proto gre SAs) it is inside the ESP SA, never in clear.
 *
 * greipsec plays both parts:
 *
 *   - receiving, a decapsulated inner packet from this gateway's outer
 *     address to the peer's, protocol 47, is a keepalive: it is not written
 *     to the TUN device (the kernel would drop it: its source is one of the
 *     host's own addresses) but reflected, sent back into the tunnel's ESP
 *     SA as the GRE packet it is (transport mode: its GRE header and
 *     payload, next header 47; GRE tunnel mode: the whole inner packet,
 *     next header 4 or 41). Counted as KeepalivesReflected;
 *   - sending, SendKeepalive puts such a packet into the tunnel, and a GRE
 *     packet of Protocol Type 0 that arrives is a reply, counted as
 *     KeepaliveReplies; package gateway decides from that counter whether
 *     the peer is alive.
 *
 * Both enter the outbound pipeline as a batch of one packet, in the same
 * order of sequence numbers as the TUN reader's batches: sendMu makes the
 * reader and inject take turns at assigning sequence numbers (esp.SA's
 * NextSeq is for one goroutine at a time) and queueing. A keepalive never
 * waits for a buffer: with none free it is dropped and counted.
 */

// keepaliveTTL is the hop limit of the inner keepalive header: it only has
// to reach the peer.
const keepaliveTTL = 255

// SendKeepalive sends one GRE keepalive request into the tunnel, as Cisco
// IOS and OpenBSD do (see above): the peer reflects it and it comes back as
// a GRE packet of Protocol Type 0, counted as KeepaliveReplies. It returns
// false, having counted why, when the tunnel is in route mode (no GRE), has
// no outbound SA, no free buffer, or is closing.
func (t *Tunnel) SendKeepalive() bool {
	ok := t.inject(func(out *outboundSA, path *outerPath, e *outboundElement) bool {
		n := t.keepaliveRequest(e.buffer[outboundOffset:])
		return t.prepareOutbound(out, path.mode, t.limits.Load(), e, n)
	})
	if ok {
		t.stats.KeepalivesSent.Add(1)
	}
	return ok
}

// keepaliveRequest writes into b the packet the peer is to send back: IP
// from the peer to this gateway, protocol 47, carrying a GRE header of
// Protocol Type 0 with the tunnel's key, if it has one. It returns its
// length.
func (t *Tunnel) keepaliveRequest(b []byte) int {
	f := gre.Fields{KeyPresent: t.cfg.GRE.HasKey, Key: t.cfg.GRE.Key}
	greLen := f.HeaderLen()
	if t.cfg.Local.Is4() {
		n := ipv4HeaderLen + greLen
		ip := header.IPv4(b)
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(n),
			TTL:         keepaliveTTL,
			Protocol:    ipProtoGRE,
			SrcAddr:     tcpip.AddrFrom4(t.cfg.Peer.As4()),
			DstAddr:     tcpip.AddrFrom4(t.cfg.Local.As4()),
		})
		ip.SetChecksum(^ip.CalculateChecksum())
		gre.GRE(b[ipv4HeaderLen:n]).Encode(&f)
		return n
	}
	n := ipv6HeaderLen + greLen
	header.IPv6(b).Encode(&header.IPv6Fields{
		PayloadLength:     uint16(greLen),
		TransportProtocol: ipProtoGRE,
		HopLimit:          keepaliveTTL,
		SrcAddr:           tcpip.AddrFrom16(t.cfg.Peer.As16()),
		DstAddr:           tcpip.AddrFrom16(t.cfg.Local.As16()),
	})
	gre.GRE(b[ipv6HeaderLen:n]).Encode(&f)
	return n
}

// isKeepalive reports whether inner, a whole IPv4 or IPv6 packet GRE
// carried from the peer, is a keepalive request: from this gateway's outer
// address to the peer's, protocol 47, not a fragment.
func (t *Tunnel) isKeepalive(inner []byte) bool {
	switch header.IPVersion(inner) {
	case header.IPv4Version:
		ip := header.IPv4(inner)
		return t.cfg.Local.Is4() && ip.TransportProtocol() == ipProtoGRE && !ip.More() && ip.FragmentOffset() == 0 &&
			netip.AddrFrom4(ip.SourceAddress().As4()) == t.cfg.Local &&
			netip.AddrFrom4(ip.DestinationAddress().As4()) == t.cfg.Peer
	case header.IPv6Version:
		ip := header.IPv6(inner)
		return t.cfg.Local.Is6() && ip.NextHeader() == ipProtoGRE &&
			netip.AddrFrom16(ip.SourceAddress().As16()) == t.cfg.Local &&
			netip.AddrFrom16(ip.DestinationAddress().As16()) == t.cfg.Peer
	}
	return false
}

// reflect sends the keepalive request inner (isKeepalive) back to the peer
// inside the tunnel, as the GRE packet it carries.
func (t *Tunnel) reflect(inner []byte) {
	ok := t.inject(func(out *outboundSA, path *outerPath, e *outboundElement) bool {
		payload, nh := inner, byte(ipProtoIPv4)
		if header.IPVersion(inner) == header.IPv6Version {
			nh = ipProtoIPv6
		}
		if path.mode == ModeGRETransport {
			// The GRE packet itself: what follows the inner IP header.
			if nh == ipProtoIPv4 {
				ip := header.IPv4(inner)
				payload = inner[ip.HeaderLength():]
			} else {
				payload = inner[ipv6HeaderLen:]
			}
			nh = ipProtoGRE
		}
		if outboundOffset+len(payload)+out.sa.TrailerLen(len(payload)) > len(e.buffer) {
			t.stats.TooBig.Add(1)
			return false
		}
		seq, ok := out.sa.NextSeq()
		if !ok {
			t.stats.SeqExhausted.Add(1)
			return false
		}
		copy(e.buffer[outboundOffset:], payload)
		e.seq, e.nextHeader, e.greStart = seq, nh, 0
		e.start = outboundOffset - out.sa.Headroom()
		e.end = outboundOffset + len(payload)
		return true
	})
	if ok {
		t.stats.KeepalivesReflected.Add(1)
	}
}

// inject puts one packet, which build writes into e and gives a sequence
// number of out, into the tunnel's outbound pipeline, between the TUN
// reader's batches. It returns false if the packet was not sent: no GRE
// (route mode), no outbound SA, no free buffer, the tunnel is closing, or
// build refused it (having counted why).
func (t *Tunnel) inject(build func(out *outboundSA, path *outerPath, e *outboundElement) bool) bool {
	d := t.device
	t.sendMu.Lock()
	defer t.sendMu.Unlock()
	if t.outClosed {
		return false
	}
	path := t.path.Load()
	if path.mode == ModeRoute {
		return false
	}
	out := t.outbound.Load()
	if out == nil {
		return false // not counted as NoSA: that asks IKE for an SA
	}
	b := d.pool.poolFor(t).TryGet()
	if b == nil {
		t.stats.KeepaliveDrops.Add(1)
		return false
	}
	e := d.pool.GetOutboundElement()
	e.buffer = b
	if !build(out, path, e) {
		d.putOutboundElement(e)
		return false
	}
	c := d.pool.GetOutboundContainer()
	c.tunnel, c.out, c.path = t, out, path
	c.elems = append(c.elems, e)
	c.Lock()
	t.sending.pending.Add(1)
	t.queue.outbound <- c
	d.queue.encryption <- c
	return true
}
