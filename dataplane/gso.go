package dataplane

// This file lets the UDP socket send a batch of ESP-in-UDP packets as a few
// GSO datagrams although they travel in small buffers. wireguard-go's
// StdNetBind.Send appends each packet that continues a run onto the first
// packet of the run, in that packet's buffer, if the buffer has the
// capacity, and sends the run as one datagram with UDP_SEGMENT; otherwise
// it sends the packets one by one. So only the first packet of each run
// needs a large buffer. gsoStager finds the runs with StdNetBind's rules
// (coalesceMessages in conn/bind_std.go) and copies the first packet of
// each into a large buffer from the staging pool.

// Limits of one UDP GSO datagram, as in wireguard-go's conn package: at
// most udpSegmentMaxDatagrams segments (the kernel's UDP_MAX_SEGMENTS) and
// the largest UDP payload of the family.
const (
	udpSegmentMaxDatagrams = 64
	maxIPv4UDPPayload      = 1<<16 - 1 - ipv4HeaderLen - udpHeaderLen
	maxIPv6UDPPayload      = 1<<16 - 1 - udpHeaderLen
)

// A gsoStager stages the first packets of GSO runs for one sender. The
// zero value is ready to use; not safe for concurrent use.
type gsoStager struct {
	staged [][]byte // large buffers lent out for the current Send
}

// stage replaces, in bufs (one Send's worth of ESP packets to one
// endpoint), the first packet of each run of two or more that the socket
// can coalesce by a copy in a large buffer, as long as staging buffers are
// free. The caller returns them with release after the Send.
func (g *gsoStager) stage(p *pools, bufs [][]byte, ipv6 bool) {
	maxPayload := maxIPv4UDPPayload
	if ipv6 {
		maxPayload = maxIPv6UDPPayload
	}
	for i := 0; i < len(bufs); {
		// The run starting at i: packets no longer than the first, a
		// shorter one ending it, within the datagram limits.
		gsoSize, total, j := len(bufs[i]), len(bufs[i]), i+1
		for ; j < len(bufs) && j-i < udpSegmentMaxDatagrams; j++ {
			n := len(bufs[j])
			if n > gsoSize || total+n > maxPayload {
				break
			}
			total += n
			if n < gsoSize {
				j++
				break
			}
		}
		if j-i > 1 && cap(bufs[i]) < total && len(g.staged) < maxStagedPerCall {
			large := p.large.TryGet()
			if large == nil {
				return
			}
			bufs[i] = large[:copy(large, bufs[i])]
			g.staged = append(g.staged, large)
		}
		i = j
	}
}

// release returns the staging buffers of the last stage.
func (g *gsoStager) release(p *pools) {
	for i, b := range g.staged {
		p.large.Put(b)
		g.staged[i] = nil
	}
	g.staged = g.staged[:0]
}
