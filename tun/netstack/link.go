package netstack

import (
	"os"
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/stack/gro"
)

// groBucketSize is how many flows one bucket of gVisor's GRO engine holds
// (gro.groBucketSize, unexported). See linkEndpoint.deliver.
const groBucketSize = 8

// linkEndpoint is the stack's one network interface. It has no link layer:
// packets are bare IPv4 and IPv6, as on a TUN device.
//
// Outbound, the stack calls WritePackets, which queues each packet on out
// without copying it; read copies queued packets into the dataplane's
// buffers, a batch at a time. When the queue is full the packet is dropped
// and counted, as a full TUN queue drops in the kernel; TCP recovers.
//
// Inbound, deliver copies each packet into a new PacketBuffer and hands the
// batch to the stack through gVisor's GRO engine, which merges consecutive
// TCP segments of one flow before the stack sees them.
//
// linkEndpoint is safe for concurrent use.
type linkEndpoint struct {
	mtu   atomic.Uint32
	stats *Stats

	out       chan *stack.PacketBuffer // owns one reference to each packet
	closed    chan struct{}
	closeOnce sync.Once

	mu         sync.RWMutex // guards dispatcher
	dispatcher stack.NetworkDispatcher

	deliverMu sync.Mutex // serialises deliver; guards gro
	gro       gro.GRO
}

var (
	_ stack.LinkEndpoint = (*linkEndpoint)(nil)
	_ stack.GSOEndpoint  = (*linkEndpoint)(nil)
)

func newLinkEndpoint(mtu uint32, queueLen int, stats *Stats) *linkEndpoint {
	e := &linkEndpoint{
		stats:  stats,
		out:    make(chan *stack.PacketBuffer, queueLen),
		closed: make(chan struct{}),
	}
	e.mtu.Store(mtu)
	e.gro.Init(true)
	return e
}

// read blocks until at least one outbound packet is queued, then copies up
// to limit queued packets to bufs[i][offset:], their lengths to sizes[i].
// A packet that does not fit its buffer is dropped and counted; it cannot
// happen when the buffers hold the MTU. After close it returns
// os.ErrClosed.
func (e *linkEndpoint) read(bufs [][]byte, sizes []int, offset, limit int) (int, error) {
	var pkt *stack.PacketBuffer
	select {
	case pkt = <-e.out:
	case <-e.closed:
		return 0, os.ErrClosed
	}
	n := 0
	for {
		size := copyPacket(bufs[n][offset:], pkt)
		pkt.DecRef()
		if size < 0 {
			e.stats.TooBig.Add(1)
		} else {
			sizes[n] = size
			n++
		}
		if n == limit {
			return n, nil
		}
		select {
		case pkt = <-e.out:
		default:
			return n, nil
		}
	}
}

// copyPacket copies the whole of pkt (network header onwards) to dst and
// returns its length, or -1 if it does not fit. It does not allocate.
func copyPacket(dst []byte, pkt *stack.PacketBuffer) int {
	size := pkt.Size()
	if size > len(dst) {
		return -1
	}
	views, skip := pkt.AsViewList()
	n := 0
	for v := views.Front(); v != nil && n < size; v = v.Next() {
		b := v.AsSlice()
		if skip >= len(b) {
			skip -= len(b)
			continue
		}
		n += copy(dst[n:size], b[skip:])
		skip = 0
	}
	return n
}

// deliver hands inbound packets, each bufs[i][offset:], to the stack. The
// stack gets its own copies: bufs may be reused when deliver returns.
func (e *linkEndpoint) deliver(bufs [][]byte, offset int) (int, error) {
	select {
	case <-e.closed:
		return 0, os.ErrClosed
	default:
	}
	e.mu.RLock()
	d := e.dispatcher
	e.mu.RUnlock()
	if d == nil {
		return len(bufs), nil
	}

	e.deliverMu.Lock()
	defer e.deliverMu.Unlock()
	e.gro.Dispatcher = d
	for _, buf := range bufs {
		p := buf[offset:]
		var proto tcpip.NetworkProtocolNumber
		switch header.IPVersion(p) {
		case header.IPv4Version:
			proto = header.IPv4ProtocolNumber
		case header.IPv6Version:
			proto = header.IPv6ProtocolNumber
		default:
			e.stats.BadInbound.Add(1)
			continue
		}
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(p)})
		pkt.NetworkProtocolNumber = proto
		pkt.RXChecksumValidated = true // see Capabilities
		e.gro.Enqueue(pkt)
		pkt.DecRef()
	}
	// GRO.Flush hands the stack only the oldest packet of each bucket: it
	// resets each entry as it removes it, which ends its loop over the
	// bucket. A bucket holds at most groBucketSize packets, so this many
	// calls empty every bucket, and no segment waits for the next batch.
	for range groBucketSize {
		e.gro.Flush()
	}
	return len(bufs), nil
}

// close makes read and deliver return os.ErrClosed and drops the queued
// packets. It is idempotent.
func (e *linkEndpoint) close() {
	e.closeOnce.Do(func() {
		close(e.closed)
		for {
			select {
			case pkt := <-e.out:
				pkt.DecRef()
			default:
				return
			}
		}
	})
}

// WritePackets implements stack.LinkWriter: it queues the packets for read,
// keeping a reference to each.
func (e *linkEndpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	n := 0
	for _, pkt := range pkts.AsSlice() {
		select {
		case <-e.closed:
			if n == 0 {
				return 0, &tcpip.ErrClosedForSend{}
			}
			return n, nil
		default:
		}
		select {
		case e.out <- pkt.IncRef():
			n++
		default:
			pkt.DecRef()
			e.stats.QueueDrops.Add(1)
			if n == 0 {
				return 0, &tcpip.ErrNoBufferSpace{}
			}
			return n, nil
		}
	}
	return n, nil
}

// MTU implements stack.NetworkLinkEndpoint.
func (e *linkEndpoint) MTU() uint32 { return e.mtu.Load() }

// SetMTU implements stack.NetworkLinkEndpoint.
func (e *linkEndpoint) SetMTU(mtu uint32) { e.mtu.Store(mtu) }

// MaxHeaderLength implements stack.NetworkLinkEndpoint: there is no link
// header.
func (*linkEndpoint) MaxHeaderLength() uint16 { return 0 }

// LinkAddress implements stack.NetworkLinkEndpoint: there is no link
// address.
func (*linkEndpoint) LinkAddress() tcpip.LinkAddress { return "" }

// SetLinkAddress implements stack.NetworkLinkEndpoint; it does nothing.
func (*linkEndpoint) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities implements stack.NetworkLinkEndpoint. The stack computes the
// checksums of the packets it sends, but does not check those it receives
// (CapabilityRXChecksumOffload): every inbound packet has passed ESP's
// integrity check, which covers each of its bytes, as the Linux WireGuard
// driver marks decrypted packets CHECKSUM_UNNECESSARY. GRO, which rewrites
// the IP length of the segments it merges, relies on this.
func (*linkEndpoint) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityRXChecksumOffload
}

// Attach implements stack.NetworkLinkEndpoint.
func (e *linkEndpoint) Attach(d stack.NetworkDispatcher) {
	e.mu.Lock()
	e.dispatcher = d
	e.mu.Unlock()
}

// IsAttached implements stack.NetworkLinkEndpoint.
func (e *linkEndpoint) IsAttached() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.dispatcher != nil
}

// Wait implements stack.NetworkLinkEndpoint: there are no goroutines.
func (*linkEndpoint) Wait() {}

// ARPHardwareType implements stack.NetworkLinkEndpoint.
func (*linkEndpoint) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }

// AddHeader implements stack.NetworkLinkEndpoint: there is no link header.
func (*linkEndpoint) AddHeader(*stack.PacketBuffer) {}

// ParseHeader implements stack.NetworkLinkEndpoint: there is no link header.
func (*linkEndpoint) ParseHeader(*stack.PacketBuffer) bool { return true }

// Close implements stack.NetworkLinkEndpoint.
func (e *linkEndpoint) Close() { e.close() }

// SetOnCloseAction implements stack.NetworkLinkEndpoint; the endpoint is
// only closed with its Stack.
func (*linkEndpoint) SetOnCloseAction(func()) {}

// GSOMaxSize implements stack.GSOEndpoint.
func (*linkEndpoint) GSOMaxSize() uint32 { return stack.GVisorGSOMaxSize }

// SupportedGSO implements stack.GSOEndpoint: TCP hands the stack segments of
// up to GSOMaxSize bytes, which gVisor splits into MTU-sized packets before
// WritePackets; this saves TCP's per-segment work on the sending side.
func (*linkEndpoint) SupportedGSO() stack.SupportedGSO { return stack.GVisorGSOSupported }
