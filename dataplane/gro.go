package dataplane

import (
	"encoding/binary"
)

// This file lets the TUN device coalesce the inner packets of a batch
// (GRO) although they travel in small buffers. wireguard-go's Linux TUN
// device, given a batch to Write, appends the payload of each TCP segment
// (and, where the kernel allows, UDP datagram) that continues a flow onto
// the first packet of its run, in that packet's buffer, if the buffer has
// the capacity; otherwise it writes the packets one by one. So only the
// first packet of each run needs a large buffer. groStager predicts which
// packets those are, with the same rules, and copies each into a large
// buffer from the staging pool: one copy per run of up to 64 KiB instead
// of a large buffer per packet. A wrong guess costs only coalescing.

// groMaxLen is the longest packet GRO builds in a large buffer, with room
// for the offset in front of it.
const groMaxLen = MaxMessageSize - 2*inboundTUNOffset

// maxGROFlows bounds the flows groStager follows in one batch.
const maxGROFlows = maxStagedPerCall

// groFlow is one run of a flow in the batch being written.
type groFlow struct {
	key     groKey
	nextSeq uint32 // TCP: the sequence number that continues the run
	gso     int    // payload bytes of the run's first packet
	size    int    // bytes of the run's packet so far
	open    bool   // the run can take more: no PSH, no short packet yet
}

// groKey identifies a flow: addresses, ports, protocol.
type groKey struct {
	addrs [32]byte
	ports uint32
	proto byte
	v6    bool
}

// A groStager stages the first packets of GRO runs for one TUN writer. The
// zero value is ready to use; not safe for concurrent use.
type groStager struct {
	flows  [maxGROFlows]groFlow
	nflows int
	staged [][]byte // large buffers lent out for the current Write
}

// stage replaces, in bufs, the first packet of each run that the TUN device
// can coalesce by a copy in a large buffer, as long as staging buffers are
// free. Each bufs[i] is an inner packet at bufs[i][offset:] in a buffer
// that starts at bufs[i][0]. The caller returns the staging buffers with
// release after the Write.
func (g *groStager) stage(p *pools, bufs [][]byte, offset int) {
	g.nflows = 0
	for i, b := range bufs {
		if cap(b) >= MaxMessageSize || len(g.staged) == maxStagedPerCall {
			continue // already large, or the budget is spent
		}
		pkt := b[offset:]
		k, payload, seq, psh, ok := groCandidate(pkt)
		if !ok {
			continue
		}
		f := g.flow(k)
		if f != nil && f.open && payload <= f.gso && f.size+payload <= groMaxLen &&
			(k.proto == ipProtoUDP || seq == f.nextSeq) {
			f.size += payload
			f.nextSeq += uint32(payload)
			f.open = payload == f.gso && !psh
			continue // coalesced into the run's first packet
		}
		if f == nil {
			if g.nflows == maxGROFlows {
				continue
			}
			f = &g.flows[g.nflows]
			g.nflows++
		}
		*f = groFlow{key: k, nextSeq: seq + uint32(payload), gso: payload, size: len(pkt), open: !psh}
		large := p.large.TryGet()
		if large == nil {
			return
		}
		bufs[i] = large[:copy(large, b)]
		g.staged = append(g.staged, large)
	}
}

// release returns the staging buffers of the last stage.
func (g *groStager) release(p *pools) {
	for i, b := range g.staged {
		p.large.Put(b)
		g.staged[i] = nil
	}
	g.staged = g.staged[:0]
}

func (g *groStager) flow(k groKey) *groFlow {
	for i := range g.nflows {
		if g.flows[i].key == k {
			return &g.flows[i]
		}
	}
	return nil
}

// IP protocol numbers of the transports GRO coalesces.
const (
	ipProtoTCP = 6
	ipProtoUDP = 17
)

// groCandidate reports whether the inner packet pkt (whole: checkInner
// trimmed it) is one wireguard-go's TUN GRO may coalesce: IPv4 without
// options and not a fragment, or IPv6 without extension headers, carrying
// TCP with only ACK (and PSH) set or UDP, with a payload. It returns the
// flow, the payload length, and for TCP the sequence number and whether
// PSH is set (nothing may follow a PSH segment in a run).
func groCandidate(pkt []byte) (k groKey, payload int, seq uint32, psh bool, ok bool) {
	var ipLen int
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < ipv4HeaderLen+udpHeaderLen || pkt[0]&0x0f != 5 ||
			binary.BigEndian.Uint16(pkt[6:])&0x3fff != 0 { // MF or a fragment offset
			return k, 0, 0, false, false
		}
		ipLen = ipv4HeaderLen
		k.proto = pkt[ipv4ProtocolOffset]
		copy(k.addrs[:], pkt[ipv4SrcOffset:ipv4SrcOffset+8])
	case 6:
		if len(pkt) < ipv6HeaderLen+udpHeaderLen {
			return k, 0, 0, false, false
		}
		ipLen = ipv6HeaderLen
		k.proto = pkt[ipv6NextHdrOffset]
		k.v6 = true
		copy(k.addrs[:], pkt[ipv6SrcOffset:ipv6SrcOffset+32])
	default:
		return k, 0, 0, false, false
	}
	l4 := pkt[ipLen:]
	k.ports = binary.BigEndian.Uint32(l4)
	switch k.proto {
	case ipProtoTCP:
		if len(l4) < tcpHeaderLen {
			return k, 0, 0, false, false
		}
		hlen := int(l4[12]>>4) * 4
		const ack, pshFlag = 0x10, 0x08
		flags := l4[13]
		if hlen < tcpHeaderLen || hlen > len(l4) || (flags != ack && flags != ack|pshFlag) {
			return k, 0, 0, false, false
		}
		payload = len(l4) - hlen
		return k, payload, binary.BigEndian.Uint32(l4[4:]), flags&pshFlag != 0, payload > 0
	case ipProtoUDP:
		payload = len(l4) - udpHeaderLen
		return k, payload, 0, false, payload > 0
	}
	return k, 0, 0, false, false
}
