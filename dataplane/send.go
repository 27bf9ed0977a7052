package dataplane

import (
	"errors"
	"os"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/greipsec/greipsec/dataplane/mss"
	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/gre"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

/* Outbound: one packet's path from the TUN device to the wire.
 *
 * 1. RoutineReadFromTUN (sequential, per tunnel). Read a batch from the TUN
 *    device into buffers that leave outboundOffset bytes of headroom, so
 *    that every header goes in front of the packet without a copy. For each
 *    packet: check it is IPv4 or IPv6 and that it fits its buffer with the
 *    ESP trailer (else TooBig), check it against the outbound SA's
 *    selectors in route mode (RFC 4301 §5.1: source on our side,
 *    destination on the peer's; else NoPolicy), clamp the TCP MSS of SYNs,
 *    write the GRE header (and in GRE tunnel mode the IP header from local
 *    to peer) into the headroom, and take the next ESP sequence number
 *    from the outbound SA. Sequence numbers are assigned here, in order.
 *    The batch is locked and put both on the device's encryption queue
 *    and, to keep its place, on the tunnel's outbound queue (which bounds
 *    how far the tunnel runs ahead: the reader waits when it is full).
 *    A batch of at most inlineMax packets the reader seals itself (stage 2
 *    without a hand-off, inline.go), and when no earlier batch is still
 *    waiting for the socket it sends it too (stage 3), without waking
 *    anyone; otherwise it queues it on the tunnel.
 *
 * 1b. Path MTU (in stage 1, pathmtu.go). The batch loads the tunnel's
 *    pathLimits once; a packet no larger than their MTU goes on (one
 *    comparison). A larger IPv4 packet with DF, or IPv6 packet beyond 1280
 *    bytes, is dropped and answered with ICMP "fragmentation needed" /
 *    "packet too big" written into the TUN device (icmp.go, rate-limited);
 *    an IPv4 packet without DF is split into fragments that each become
 *    an ESP packet (RFC 4459 §3), or, with after-encryption, sent whole
 *    like an IPv6 packet of up to 1280 bytes, for the kernel to fragment
 *    the outer packet.
 *
 * 2. RoutineEncryption (parallel, one per core, shared by all tunnels).
 *    Fill in the GRE checksum if the tunnel sends one, then seal each
 *    packet in place with ESP (header, IV, padding, trailer, ICV). Unlock
 *    the batch.
 *
 * 3. RoutineSequentialSender (sequential, per tunnel). Take the next batch
 *    from the outbound queue, wait for its lock (the workers are done with
 *    it), and hand it to the socket in one call: sendmmsg, UDP GSO for
 *    ESP-in-UDP, for which the first packet of each run the socket can
 *    coalesce is copied into a large buffer first (gso.go). The kernel adds
 *    the outer IP (and UDP) header.
 *
 * Buffer layout of one outbound packet:
 *
 *	0 ... start: unused
 *	start          ESP header (8) and IV (8)
 *	               [inner IP header, GRE tunnel mode] [GRE header]
 *	outboundOffset the inner packet as the TUN device gave it
 *	end            ESP padding, pad length, next header, ICV (added by Seal)
 */

// outboundOffset is where the TUN device writes an inner packet in its
// buffer: room for the ESP header and IV, an IPv6 header and the longest
// GRE header.
const outboundOffset = esp.MaxHeadroomLen + ipv6HeaderLen + gre.MaxHeaderLen

type outboundElement struct {
	buffer     []byte // the whole buffer, small or large
	packet     []byte // the sealed ESP packet, once encrypted
	start, end int    // ESP packet (before sealing: headroom + payload) within buffer
	greStart   int    // GRE header within buffer, when a GRE checksum is due; else 0
	seq        uint64
	nextHeader byte
}

// outboundContainer is one batch of one tunnel. Its mutex is held from the
// reader until the encryption worker is done with every element.
type outboundContainer struct {
	sync.Mutex
	tunnel *Tunnel
	path   *outerPath
	out    *outboundSA
	elems  []*outboundElement
}

// newOutboundElement returns an element with a buffer for t's packets,
// waiting for one if t's pool is at its limit, or nil once the Device is
// closed.
func (t *Tunnel) newOutboundElement() *outboundElement {
	d := t.device
	b := d.pool.poolFor(t).Get()
	if b == nil {
		return nil
	}
	e := d.pool.GetOutboundElement()
	e.buffer = b
	return e
}

func (d *Device) putOutboundElement(e *outboundElement) {
	d.pool.PutBuffer(e.buffer)
	d.pool.PutOutboundElement(e)
}

// RoutineReadFromTUN is stage 1 for tunnel t.
func (t *Tunnel) RoutineReadFromTUN() {
	d := t.device
	batch := t.tun.BatchSize()
	elems := make([]*outboundElement, batch)
	bufs := make([][]byte, batch)
	sizes := make([]int, batch)
	defer func() {
		for _, e := range elems {
			if e != nil {
				d.putOutboundElement(e)
			}
		}
		t.sendMu.Lock()
		t.outClosed = true
		close(t.queue.outbound)
		t.sendMu.Unlock()
		d.readers.Done()
	}()
	// fill gives every slot a buffer; false once the Device is closed.
	fill := func() bool {
		for i, e := range elems {
			if e == nil {
				if e = t.newOutboundElement(); e == nil {
					return false
				}
				elems[i], bufs[i] = e, e.buffer
			}
		}
		return true
	}

	var x transmitter // for the batches this goroutine sends itself
	errs := 0         // consecutive read errors
	for fill() {
		n, err := t.tun.Read(bufs, sizes, outboundOffset)
		if n > 0 {
			t.sendMu.Lock() // keepalives (inject) take turns with batches
			c := d.pool.GetOutboundContainer()
			c.tunnel = t
			c.out = t.outbound.Load()
			c.path = t.path.Load()
			lim := t.limits.Load()
			for i := range n {
				size := sizes[i]
				if size == 0 {
					continue
				}
				if size > lim.mtu {
					// Stage 1b, path MTU: the one comparison on the
					// fast path; pathmtu.go has the rest.
					switch t.oversize(c, lim, elems[i], size) {
					case oversizeDrop:
						continue
					case oversizeFragmented:
						elems[i] = nil
						continue
					}
				}
				if !t.prepareOutbound(c.out, c.path.mode, lim, elems[i], size) {
					continue
				}
				c.elems = append(c.elems, elems[i])
				elems[i] = nil
			}
			switch {
			case len(c.elems) == 0:
				d.pool.PutOutboundContainer(c)
			case len(c.elems) <= inlineMax:
				// Run to completion: no worker to wake (inline.go).
				c.seal()
				if t.sending.bypass() {
					// Every earlier batch is on the wire: no
					// need to wake the sequential stage either.
					t.transmit(&x, c)
					t.sending.mu.Unlock()
					d.pool.PutOutboundContainer(c)
					break
				}
				t.sending.pending.Add(1)
				t.queue.outbound <- c
			default:
				c.Lock()
				t.sending.pending.Add(1)
				t.queue.outbound <- c
				d.queue.encryption <- c
			}
			t.sendMu.Unlock()
		}
		if err == nil {
			errs = 0
			continue
		}
		if t.closing.Load() || errors.Is(err, os.ErrClosed) {
			return
		}
		// One bad packet (too large for the buffers, more segments than
		// the batch) or a transient failure: count it, log a summary,
		// and go on reading. Back off if the device keeps failing.
		t.stats.ReadErrors.Add(1)
		t.readErrs.add(err)
		if errors.Is(err, wgtun.ErrTooManySegments) {
			continue
		}
		errs++
		time.Sleep(time.Duration(min(errs, 100)) * time.Millisecond)
	}
}

// prepareOutbound does stage 1's work on one packet of size bytes at
// outboundOffset in e.buffer. It returns false if the packet is dropped.
func (t *Tunnel) prepareOutbound(out *outboundSA, mode Mode, lim *pathLimits, e *outboundElement, size int) bool {
	return t.admitOutbound(out, mode, lim, e.buffer[outboundOffset:outboundOffset+size]) &&
		t.encapsulate(out, mode, e, size)
}

// admitOutbound checks an inner packet from the TUN device: IPv4 or IPv6,
// an outbound SA, within its policy; and clamps the MSS of a TCP SYN. It
// returns false if the packet is dropped.
func (t *Tunnel) admitOutbound(out *outboundSA, mode Mode, lim *pathLimits, pkt []byte) bool {
	switch {
	case header.IPVersion(pkt) == header.IPv4Version && len(pkt) >= header.IPv4MinimumSize:
	case header.IPVersion(pkt) == header.IPv6Version && len(pkt) >= header.IPv6MinimumSize:
	default:
		t.stats.BadInner.Add(1)
		return false
	}
	if out == nil {
		t.stats.NoSA.Add(1)
		return false
	}
	if mode == ModeRoute && !out.policy.outbound(pkt) {
		t.stats.NoPolicy.Add(1)
		return false
	}
	if t.cfg.MSSClamp {
		mss.Clamp(pkt, lim.mss4, lim.mss6)
	}
	return true
}

// encapsulate puts the GRE header (and in GRE tunnel mode the IP header)
// in front of an admitted packet, or a fragment of one, and takes its ESP
// sequence number. It returns false if the packet is dropped.
func (t *Tunnel) encapsulate(out *outboundSA, mode Mode, e *outboundElement, size int) bool {
	protocol := uint16(gre.ProtocolIPv4)
	e.nextHeader = ipProtoIPv4
	if header.IPVersion(e.buffer[outboundOffset:]) == header.IPv6Version {
		protocol = gre.ProtocolIPv6
		e.nextHeader = ipProtoIPv6
	}
	// The ESP trailer must fit behind the packet (RFC 4303 §2.4): a
	// packet that fills the buffer (a TUN MTU set higher than the
	// tunnel's) cannot be sealed.
	encap := 0
	if mode != ModeRoute {
		f := greFields(&t.cfg, protocol)
		encap = f.HeaderLen()
		if mode == ModeGRETunnel {
			encap += t.innerIPLen()
		}
	}
	if outboundOffset+size+out.sa.TrailerLen(encap+size) > len(e.buffer) {
		t.stats.TooBig.Add(1)
		return false
	}

	start := outboundOffset
	e.greStart = 0
	if mode != ModeRoute {
		f := greFields(&t.cfg, protocol)
		if f.SeqPresent {
			t.greSeq++
			f.Seq = t.greSeq
		}
		start -= f.HeaderLen()
		gre.GRE(e.buffer[start:outboundOffset]).Encode(&f)
		if f.Checksum {
			e.greStart = start
		}
		e.nextHeader = ipProtoGRE
		if mode == ModeGRETunnel {
			start -= t.innerIPLen()
			e.nextHeader = t.encodeInnerIPHeader(e.buffer[start:outboundOffset+size], size+outboundOffset-start)
		}
	}

	seq, ok := out.sa.NextSeq()
	if !ok {
		t.stats.SeqExhausted.Add(1)
		return false
	}
	e.seq = seq
	e.start = start - out.sa.Headroom()
	e.end = outboundOffset + size
	return true
}

// IP protocol numbers that appear as ESP next header.
const (
	ipProtoIPv4  = 4
	ipProtoGRE   = 47
	ipProtoIPv6  = 41
	ipProtoDummy = 59 // RFC 4303 §2.6: a dummy packet, to be dropped
)

// innerIPLen is the size of the IP header GRE tunnel mode puts inside ESP.
func (t *Tunnel) innerIPLen() int {
	if t.cfg.Local.Is4() {
		return ipv4HeaderLen
	}
	return ipv6HeaderLen
}

// encodeInnerIPHeader writes the IP header that GRE tunnel mode puts inside
// ESP: local → peer, protocol 47, total length n. It returns the ESP next
// header for it.
func (t *Tunnel) encodeInnerIPHeader(b []byte, n int) byte {
	if t.cfg.Local.Is4() {
		ip := header.IPv4(b)
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(n),
			Flags:       header.IPv4FlagDontFragment,
			TTL:         255,
			Protocol:    ipProtoGRE,
			SrcAddr:     tcpip.AddrFrom4(t.cfg.Local.As4()),
			DstAddr:     tcpip.AddrFrom4(t.cfg.Peer.As4()),
		})
		ip.SetChecksum(^ip.CalculateChecksum())
		return ipProtoIPv4
	}
	header.IPv6(b).Encode(&header.IPv6Fields{
		PayloadLength:     uint16(n - ipv6HeaderLen),
		TransportProtocol: ipProtoGRE,
		HopLimit:          255,
		SrcAddr:           tcpip.AddrFrom16(t.cfg.Local.As16()),
		DstAddr:           tcpip.AddrFrom16(t.cfg.Peer.As16()),
	})
	return ipProtoIPv6
}

// RoutineEncryption is stage 2, for all tunnels.
func (d *Device) RoutineEncryption() {
	defer d.workers.Done()
	for c := range d.queue.encryption {
		c.seal()
		c.Unlock()
	}
}

// seal is stage 2's work on one batch.
func (c *outboundContainer) seal() {
	for _, e := range c.elems {
		if e.greStart != 0 {
			gre.GRE(e.buffer[e.greStart:e.end]).SetChecksum()
		}
		e.packet = c.out.sa.Seal(e.buffer[e.start:e.end], e.seq, e.nextHeader)
	}
}

// RoutineSequentialSender is stage 3 for tunnel t.
func (t *Tunnel) RoutineSequentialSender() {
	defer t.device.workers.Done()
	var x transmitter
	for c := range t.queue.outbound {
		c.Lock() // the workers are done with it
		t.sending.mu.Lock()
		t.transmit(&x, c)
		t.sending.mu.Unlock()
		t.sending.pending.Add(-1)
		c.Unlock()
		t.device.pool.PutOutboundContainer(c)
	}
}

// transmitter is the state of one goroutine that hands batches to the
// socket.
type transmitter struct {
	bufs [][]byte
	gso  gsoStager
}

// transmit is stage 3's work on one sealed batch: it sends the packets and
// returns them to the pool; the caller returns the container. The caller
// holds t.sending.mu.
func (t *Tunnel) transmit(x *transmitter, c *outboundContainer) {
	d := t.device
	bs, ep := c.path.bind, c.path.endpoint
	max := bs.bind.BatchSize()
	var bytes uint64
	bufs := x.bufs[:0]
	for _, e := range c.elems {
		bufs = append(bufs, e.packet)
		bytes += uint64(e.end - outboundOffset)
	}
	for i := 0; i < len(bufs); i += max {
		chunk := bufs[i:min(i+max, len(bufs))]
		if bs.udp {
			x.gso.stage(&d.pool, chunk, ep.DstIP().Is6())
		}
		err := bs.bind.Send(chunk, ep)
		x.gso.release(&d.pool)
		if err != nil {
			// The kernel may have learned a smaller path MTU
			// (a UDP GSO segment beyond it fails the batch):
			// look again now rather than at the next tick.
			d.kickPathMTU()
			t.stats.SendErrors.Add(1)
			if !t.closing.Load() {
				t.sendErrs.add(err)
			}
		}
	}
	c.out.sa.CountTx(uint64(len(c.elems)), bytes)
	t.stats.TxPackets.Add(uint64(len(c.elems)))
	t.stats.TxBytes.Add(bytes)
	clear(bufs)
	x.bufs = bufs[:0]
	for _, e := range c.elems {
		d.putOutboundElement(e)
	}
}
