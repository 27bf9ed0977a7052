package dataplane

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/greipsec/greipsec/dataplane/mss"
	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/gre"
)

/* Inbound: one packet's path from the wire to the TUN device.
 *
 * 1. RoutineReceiveIncoming (sequential, per socket). Receive a batch
 *    (recvmmsg; UDP GRO for ESP-in-UDP, split back into datagrams) into
 *    the receiver's own landing buffers. On a UDP socket, tell ESP from
 *    IKE (behind the 4-byte non-ESP marker) and NAT keepalives (RFC 3948).
 *    Look up the SPI in the inbound SA table (no lock). Before paying for
 *    decryption, drop a packet whose outer source is not the tunnel's peer
 *    (its current address, any port: a NAT may change the port) and one
 *    for a tunnel that already has its share of packets in flight (its
 *    TUN device is slow: inboundBudget). Copy each remaining packet into a small
 *    buffer and group the batch by tunnel. Each group is locked and put on
 *    its tunnel's inbound queue, without waiting: a full queue drops the
 *    group, so one stalled tunnel never holds up the socket for the others;
 *    then on the device's decryption queue; a group of at most inlineMax
 *    packets the receiver opens itself (stage 2 without a hand-off,
 *    inline.go), and when nothing of its tunnel is queued before it and
 *    the TUN device cannot block, it also writes it (stage 3) without
 *    queuing it at all.
 *
 * 2. RoutineDecryption (parallel, one per core, shared by all tunnels).
 *    Authenticate and decrypt each packet in place, check its padding.
 *    Unlock the group.
 *
 * 3. RoutineSequentialReceiver (sequential, per tunnel). Take the next group
 *    from the inbound queue and wait for its lock. For each packet, in the
 *    order received: the anti-replay check and window update (RFC 4303
 *    §3.4.3) — here, after authentication and in order, so the window only
 *    ever moves for genuine packets — then the next header check, GRE
 *    decapsulation (in GRE tunnel mode after checking the inner IP header),
 *    the inner packet's shape, the selector check (RFC 4301 §5.2: source
 *    on the peer's side, destination on ours, the SA's protocol; in the GRE
 *    modes the tunnel's allowed sources), and MSS clamping. Copy the first
 *    packet of each run that TUN GRO will coalesce into a large buffer
 *    (gro.go), and write the batch to the TUN device in one call.
 *
 * Packets that fail any check are dropped and counted: by the device
 * (unknown SPI, malformed, no buffer), by the tunnel (outer source, queue
 * full), by the SA (authentication, padding, replay, next header, GRE,
 * selector) — never logged one by one. Failing socket receives and TUN
 * writes are logged in summaries (errorLog).
 */

// inboundTUNOffset is the offset passed to the TUN device's Write: every
// inner packet has at least the ESP header and IV in front of it, room for
// the virtio header the Linux TUN device writes there.
const inboundTUNOffset = esp.HeadroomLen

type inboundElement struct {
	buffer     []byte // the whole buffer, small or large
	packet     []byte // the ESP packet as received, then the payload
	in         *inboundSA
	src        netip.Addr
	seq        uint64
	nextHeader byte
	err        error
}

// inboundContainer is one tunnel's share of a received batch. Its mutex is
// held from the receiver until the decryption worker is done with it.
type inboundContainer struct {
	sync.Mutex
	tunnel *Tunnel
	elems  []*inboundElement
}

func (d *Device) putInboundElement(e *inboundElement) {
	d.pool.PutBuffer(e.buffer)
	d.pool.PutInboundElement(e)
}

// inboundBuffer returns a buffer for an inbound packet of n bytes of
// tunnel t, or nil if none is free.
func (d *Device) inboundBuffer(t *Tunnel, n int) []byte {
	if t.largeBuffers || n > smallBufferSize {
		return d.pool.large.TryGet()
	}
	return d.pool.small.TryGet()
}

// RoutineReceiveIncoming is stage 1 for one receive function of a socket.
func (d *Device) RoutineReceiveIncoming(bs *bindState, recv conn.ReceiveFunc) {
	defer d.readers.Done()
	batch := bs.bind.BatchSize()
	// The landing buffers are this receiver's alone: only the bytes
	// written into them become resident, typically one page each, and a
	// whole 64 KiB only where UDP GRO lands a coalesced datagram. Nothing
	// refers to them after a batch (IKE copies what it keeps).
	var bufs [][]byte
	free := func() {}
	defer func() { free() }()
	sizes := make([]int, batch)
	eps := make([]conn.Endpoint, batch)
	groups := make([]*inboundContainer, 0, 8)

	var dl deliverer // for the groups this goroutine writes itself
	errs := 0        // consecutive receive errors
	for {
		if size := int(bs.landing.Load()); bufs == nil || len(bufs[0]) < size {
			free()
			bufs, free = newLanding(batch, size)
		}
		n, err := recv(bufs, sizes, eps)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			d.stats.ReceiveErrs.Add(1)
			d.receiveErrs.add(err)
			// A socket that keeps failing must not spin a core.
			errs++
			time.Sleep(time.Duration(min(errs, 100)) * 10 * time.Millisecond)
			continue
		}
		errs = 0
		d.inboundGate.RLock()
		for i := range n {
			if sizes[i] == 0 {
				continue
			}
			pkt := bufs[i][:sizes[i]]
			if bs.udp {
				switch esp.ClassifyUDP(pkt) {
				case esp.UDPKeepalive:
					d.stats.Keepalives.Add(1)
					continue
				case esp.UDPIKE:
					d.stats.IKE.Add(1)
					if d.opts.IKE != nil {
						d.opts.IKE(pkt[esp.NonESPMarkerLen:], endpointAddrPort(eps[i]))
					}
					continue
				case esp.UDPESP:
				default:
					d.stats.Malformed.Add(1)
					continue
				}
			}
			if len(pkt) < esp.HeaderLen {
				d.stats.Malformed.Add(1)
				continue
			}
			spi := binary.BigEndian.Uint32(pkt)
			in, ok := d.lookupInbound(spi)
			if !ok {
				d.stats.UnknownSPI.Add(1)
				if d.opts.UnknownSPI != nil {
					d.opts.UnknownSPI(spi, sourceAddrPort(eps[i]))
				}
				continue
			}
			t := in.tunnel
			src := eps[i].DstIP().Unmap()
			if src != t.path.Load().peer {
				t.stats.BadSource.Add(1)
				continue
			}
			if !d.pool.inbound.admit(t) {
				t.stats.QueueFull.Add(1)
				continue
			}
			buf := d.inboundBuffer(t, len(pkt))
			if buf == nil {
				d.pool.inbound.release(t, 1)
				d.stats.NoBuffer.Add(1)
				continue
			}
			e := d.pool.GetInboundElement()
			e.buffer = buf
			e.packet = buf[:copy(buf, pkt)]
			e.in = in
			e.src = src
			groups = d.appendToGroup(groups, t, e)
		}
		for i, c := range groups {
			groups[i] = nil
			if t := c.tunnel; len(c.elems) <= inlineMax && t.inlineWrite() &&
				t.delivering.bypass() {
				// Run to completion (inline.go): every earlier
				// group of the tunnel is written.
				c.open()
				t.deliver(&dl, c)
				t.delivering.mu.Unlock()
				d.pool.PutInboundContainer(c)
				continue
			}
			c.Lock()
			c.tunnel.delivering.pending.Add(1)
			select {
			case c.tunnel.queue.inbound <- c:
			default:
				c.tunnel.delivering.pending.Add(-1)
				// The tunnel's stage 3 is behind (its TUN device is slow
				// or stalled): drop rather than wait, so the other tunnels
				// on this socket go on.
				c.tunnel.stats.QueueFull.Add(uint64(len(c.elems)))
				d.dropInboundContainer(c)
				continue
			}
			if len(c.elems) <= inlineMax {
				c.open() // run to completion: no worker to wake (inline.go)
				c.Unlock()
				continue
			}
			d.queue.decryption <- c
		}
		d.inboundGate.RUnlock()
		groups = groups[:0]
	}
}

// dropInboundContainer releases a locked container that never reached
// stage 2, with its packets.
func (d *Device) dropInboundContainer(c *inboundContainer) {
	d.pool.inbound.release(c.tunnel, len(c.elems))
	for _, e := range c.elems {
		d.putInboundElement(e)
	}
	c.Unlock()
	d.pool.PutInboundContainer(c)
}

// heapLanding is newLanding on the Go heap.
func heapLanding(n, size int) ([][]byte, func()) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs, func() {}
}

// appendToGroup adds e to the container of tunnel t in groups, starting one
// if needed. A batch rarely spans more than a few tunnels: a linear search.
func (d *Device) appendToGroup(groups []*inboundContainer, t *Tunnel, e *inboundElement) []*inboundContainer {
	for _, c := range groups {
		if c.tunnel == t {
			c.elems = append(c.elems, e)
			return groups
		}
	}
	c := d.pool.GetInboundContainer()
	c.tunnel = t
	c.elems = append(c.elems, e)
	return append(groups, c)
}

func endpointAddrPort(ep conn.Endpoint) netip.AddrPort {
	if ap, err := netip.ParseAddrPort(ep.DstToString()); err == nil {
		return ap
	}
	return netip.AddrPortFrom(ep.DstIP(), 0)
}

// sourceAddrPort is endpointAddrPort without the allocation of
// DstToString for the endpoints of this module's and wireguard-go's Binds.
func sourceAddrPort(ep conn.Endpoint) netip.AddrPort {
	switch e := ep.(type) {
	case interface{ AddrPort() netip.AddrPort }:
		ap := e.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case *conn.StdNetEndpoint:
		return netip.AddrPortFrom(e.Addr().Unmap(), e.Port())
	}
	return endpointAddrPort(ep)
}

// RoutineDecryption is stage 2, for all tunnels.
func (d *Device) RoutineDecryption() {
	defer d.workers.Done()
	for c := range d.queue.decryption {
		c.open()
		c.Unlock()
	}
}

// open is stage 2's work on one group.
func (c *inboundContainer) open() {
	for _, e := range c.elems {
		e.packet, e.nextHeader, e.seq, e.err = e.in.sa.Open(e.packet)
	}
}

// inlineWrite reports whether a socket receiver may write to t's TUN
// device itself: not when a Write may wait for the device's reader
// (tun.Memory without a sink), which would hold up every tunnel on the
// socket. The kernel's TUN devices and the netstack never wait.
func (t *Tunnel) inlineWrite() bool {
	b, ok := t.tun.(interface{ WriteMayBlock() bool })
	return !ok || !b.WriteMayBlock()
}

// RoutineSequentialReceiver is stage 3 for tunnel t.
func (t *Tunnel) RoutineSequentialReceiver() {
	d := t.device
	defer d.workers.Done()
	var dl deliverer
	for c := range t.queue.inbound {
		c.Lock()
		t.delivering.mu.Lock()
		t.deliver(&dl, c)
		t.delivering.mu.Unlock()
		t.delivering.pending.Add(-1)
		c.Unlock()
		d.pool.PutInboundContainer(c)
	}
}

// deliverer is the state of one goroutine that writes groups to TUN
// devices.
type deliverer struct {
	bufs [][]byte
	gro  groStager
}

// deliver is stage 3's work on one opened group: the checks, in order, and
// one write to the TUN device. It returns the packets to the pool; the
// caller returns the container. The caller holds t.delivering.mu.
func (t *Tunnel) deliver(dl *deliverer, c *inboundContainer) {
	d := t.device
	bufs := dl.bufs[:0]
	path := t.path.Load()
	lim := t.limits.Load()
	var bytes uint64
	for _, e := range c.elems {
		if e.err != nil || !e.in.sa.Accept(e.seq, len(e.packet)) {
			continue
		}
		inner, ok := t.decapsulate(path, e)
		if !ok {
			continue
		}
		if !e.in.policy.inbound(inner) {
			e.in.sa.CountDrop(esp.DropSelector)
			continue
		}
		if t.cfg.MSSClamp {
			mss.Clamp(inner, lim.mss4, lim.mss6)
		}
		start := cap(e.buffer) - cap(inner) // inner's offset in e.buffer
		bufs = append(bufs, e.buffer[start-inboundTUNOffset:start+len(inner)])
		bytes += uint64(len(inner))
	}
	if len(bufs) > 0 {
		dl.gro.stage(&d.pool, bufs, inboundTUNOffset)
		if _, err := t.tun.Write(bufs, inboundTUNOffset); err != nil {
			t.stats.WriteErrors.Add(1)
			if !t.closing.Load() {
				t.writeErrs.add(err)
			}
		}
		dl.gro.release(&d.pool)
		t.stats.RxPackets.Add(uint64(len(bufs)))
		t.stats.RxBytes.Add(bytes)
		clear(bufs)
	}
	dl.bufs = bufs[:0]
	d.pool.inbound.release(t, len(c.elems))
	for _, e := range c.elems {
		d.putInboundElement(e)
	}
}

// decapsulate checks an authenticated ESP payload against the tunnel's mode
// and returns the inner packet, whole, or false after counting the reason
// on the SA.
func (t *Tunnel) decapsulate(path *outerPath, e *inboundElement) ([]byte, bool) {
	p := e.packet
	switch path.mode {
	case ModeRoute:
		return t.checkInner(e, p, e.nextHeader)

	case ModeGRETransport:
		if e.nextHeader != ipProtoGRE {
			return t.dropNextHeader(e)
		}
		// Transport mode: the selector is the outer header, peer → local.
		// Behind a NAT (ESP-in-UDP) the source is the NAT's address.
		if path.transport == TransportESP && e.src != t.cfg.Peer {
			e.in.sa.CountDrop(esp.DropSelector)
			return nil, false
		}

	case ModeGRETunnel:
		var ok bool
		if p, ok = t.stripInnerIPHeader(e, p); !ok {
			return nil, false
		}
	}

	f, n, err := gre.Parse(p)
	if err != nil || (t.cfg.GRE.HasKey && (!f.KeyPresent || f.Key != t.cfg.GRE.Key)) {
		e.in.sa.CountDrop(esp.DropGRE)
		return nil, false
	}
	var nh byte
	switch f.Protocol {
	case gre.ProtocolIPv4:
		nh = ipProtoIPv4
	case gre.ProtocolIPv6:
		nh = ipProtoIPv6
	case gre.ProtocolKeepalive:
		t.stats.KeepaliveReplies.Add(1) // keepalive.go
		return nil, false
	default:
		e.in.sa.CountDrop(esp.DropGRE)
		return nil, false
	}
	inner, ok := t.checkInner(e, p[n:], nh)
	if ok && t.isKeepalive(inner) {
		t.reflect(inner)
		return nil, false
	}
	return inner, ok
}

func (t *Tunnel) dropNextHeader(e *inboundElement) ([]byte, bool) {
	if e.nextHeader != ipProtoDummy { // dummy packets are dropped silently
		e.in.sa.CountDrop(esp.DropNextHeader)
	}
	return nil, false
}

// stripInnerIPHeader checks the IP header that GRE tunnel mode carries
// inside ESP (peer → local, protocol 47, not a fragment) and returns what
// follows it.
func (t *Tunnel) stripInnerIPHeader(e *inboundElement, p []byte) ([]byte, bool) {
	switch e.nextHeader {
	case ipProtoIPv4:
		ip := header.IPv4(p)
		if !ip.IsValid(len(p)) || ip.TransportProtocol() != ipProtoGRE || ip.More() || ip.FragmentOffset() != 0 ||
			netip.AddrFrom4(ip.SourceAddress().As4()) != t.cfg.Peer ||
			netip.AddrFrom4(ip.DestinationAddress().As4()) != t.cfg.Local {
			e.in.sa.CountDrop(esp.DropSelector)
			return nil, false
		}
		return p[ip.HeaderLength():ip.TotalLength()], true
	case ipProtoIPv6:
		ip := header.IPv6(p)
		if !ip.IsValid(len(p)) || ip.NextHeader() != ipProtoGRE ||
			netip.AddrFrom16(ip.SourceAddress().As16()) != t.cfg.Peer ||
			netip.AddrFrom16(ip.DestinationAddress().As16()) != t.cfg.Local {
			e.in.sa.CountDrop(esp.DropSelector)
			return nil, false
		}
		return p[header.IPv6MinimumSize : header.IPv6MinimumSize+int(ip.PayloadLength())], true
	}
	return t.dropNextHeader(e)
}

// checkInner checks that p is a whole IPv4 (nh 4) or IPv6 (nh 41) packet
// and returns it trimmed to its own length. A malformed one counts as
// outside the selectors.
func (t *Tunnel) checkInner(e *inboundElement, p []byte, nh byte) ([]byte, bool) {
	switch nh {
	case ipProtoIPv4:
		ip := header.IPv4(p)
		if len(p) < header.IPv4MinimumSize || ip.HeaderLength() < header.IPv4MinimumSize || header.IPVersion(p) != header.IPv4Version ||
			int(ip.TotalLength()) > len(p) || int(ip.TotalLength()) < int(ip.HeaderLength()) {
			e.in.sa.CountDrop(esp.DropSelector)
			return nil, false
		}
		return p[:ip.TotalLength()], true
	case ipProtoIPv6:
		ip := header.IPv6(p)
		if len(p) < header.IPv6MinimumSize || header.IPVersion(p) != header.IPv6Version ||
			header.IPv6MinimumSize+int(ip.PayloadLength()) > len(p) {
			e.in.sa.CountDrop(esp.DropSelector)
			return nil, false
		}
		return p[:header.IPv6MinimumSize+int(ip.PayloadLength())], true
	}
	return t.dropNextHeader(e)
}
