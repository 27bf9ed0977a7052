package dataplane

import (
	"sync"
	"sync/atomic"
)

/* Buffers: what holds memory, and its bounds.
 *
 * Every packet in flight has one buffer. Go never returns the pages of a
 * buffer to the OS while a free list keeps it, and a page once written
 * stays resident, so the resident memory of the dataplane is the bytes
 * ever written into the buffers it keeps. Three rules bound it:
 *
 *  1. Packets travel in small buffers (smallBufferSize, 2 KiB: one packet
 *     of a tunnel on a path MTU of up to about 1950 bytes). Only a tunnel
 *     whose packets do not fit (a jumbo path or inner MTU) uses large ones
 *     (MaxMessageSize, 64 KiB) for all its packets.
 *
 *  2. Large buffers are used only where coalescing needs them, and only
 *     while it does: each socket receiver owns the batch of buffers it
 *     lands datagrams in (on a UDP socket 64 KiB each, since UDP GRO puts
 *     that much into one and an IKE message may be large; on a raw ESP
 *     socket as large as its tunnels' ESP packets; mapped outside the Go
 *     heap, landing_unix.go) and copies each ESP packet into a small
 *     buffer; the sender copies the first packet of each UDP GSO run into
 *     a large buffer that the socket coalesces the run into (gso.go); the
 *     TUN writer does the same for the first packet of each run that TUN
 *     GRO will coalesce (gro.go). Those staging buffers come from a pool of
 *     largeStagingPerWorker per worker, and go back after the call. When
 *     none is free the packets go out uncoalesced: slower, never stuck.
 *
 *  3. Every pool has a limit that grows with the tunnels and the cores:
 *     each tunnel adds what it can hold at most of its own (tunnelShare):
 *     its TUN reader's batch, its outbound queue, and inboundGuaranteed
 *     packets between the socket receiver and its TUN device; the Device
 *     adds an inbound allowance that the tunnels share, inboundSharedPerWorker
 *     per core (inboundBudget). The receivers never wait for a buffer: a
 *     tunnel over its inbound share, or a full pool, drops the packet and
 *     counts it. So a stalled tunnel never starves the others, and nothing
 *     holds a buffer while idle beyond one batch per TUN reader.
 */

// MaxMessageSize is the size of a large buffer: the largest datagram the
// sockets and the TUN device can coalesce (UDP GRO and GSO, TCP GRO).
const MaxMessageSize = 1<<16 - 1

// smallBufferSize is the size of the buffer one packet travels in. It is a
// Go allocation size class, so no memory is lost to rounding.
const smallBufferSize = 2048

// Bounds on what one tunnel holds, and on the staging buffers.
const (
	// queueOutboundSize is how many batches a tunnel's sender may lag
	// behind its TUN reader; the reader then waits (backpressure on the
	// inner side).
	queueOutboundSize = 8
	// inboundGuaranteed is how many inbound packets a tunnel may always
	// have between the socket receiver and the end of its TUN write;
	// beyond it, it borrows from the shared allowance (inboundBudget), and
	// when that is refused the receiver drops its packets
	// (TunnelStats.QueueFull).
	inboundGuaranteed = 256
	// inboundSharedPerWorker is the shared inbound allowance, per crypto
	// worker (per core). With one busy tunnel on two cores, it may have
	// 256 + 2/3 × 4096 packets in flight, about 6 MiB: enough to absorb
	// the bursts of TCP segmentation offload that a kernel socket buffer
	// would otherwise hold.
	inboundSharedPerWorker = 2048
	// largeStagingPerWorker is how many large buffers the senders and TUN
	// writers may use for coalescing, per crypto worker (per core).
	largeStagingPerWorker = 32
	// maxStagedPerCall bounds the staging buffers of one Write or Send.
	maxStagedPerCall = 8
)

// A bufferPool is a free list of packet buffers of one size with a limit
// on how many exist. Get waits while the limit is reached; TryGet returns
// nil instead, for the receive paths, which must never wait. Unlike
// sync.Pool it keeps its buffers across garbage collections, so a warm
// pipeline allocates nothing; when the limit is lowered (a tunnel goes),
// Put lets the surplus go to the garbage collector. The zero value is not
// usable; see newBufferPool. Safe for concurrent use.
type bufferPool struct {
	size int

	mu     sync.Mutex
	cond   sync.Cond
	free   [][]byte
	count  int // buffers that exist: free and in use
	limit  int
	closed bool
}

func newBufferPool(size, limit int) *bufferPool {
	p := &bufferPool{size: size, limit: limit}
	p.cond.L = &p.mu
	return p
}

// Get returns a buffer of the pool's size, waiting while the limit is
// reached, or nil once the pool is closed.
func (p *bufferPool) Get() []byte {
	p.mu.Lock()
	for len(p.free) == 0 && p.count >= p.limit && !p.closed {
		p.cond.Wait()
	}
	return p.getLocked()
}

// TryGet returns a buffer of the pool's size, or nil if the limit is
// reached or the pool is closed.
func (p *bufferPool) TryGet() []byte {
	p.mu.Lock()
	return p.getLocked()
}

func (p *bufferPool) getLocked() []byte {
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return b
	}
	if p.count >= p.limit {
		p.mu.Unlock()
		return nil
	}
	p.count++
	p.mu.Unlock()
	return make([]byte, p.size)
}

// Put returns b, which Get or TryGet returned, to the pool.
func (p *bufferPool) Put(b []byte) {
	p.mu.Lock()
	if p.count > p.limit {
		p.count-- // the limit was lowered: let the surplus go
	} else {
		p.free = append(p.free, b[:p.size])
	}
	p.mu.Unlock()
	p.cond.Signal()
}

// grow raises the limit by n (lowers it, for n < 0).
func (p *bufferPool) grow(n int) {
	p.mu.Lock()
	p.limit += n
	for p.count > p.limit && len(p.free) > 0 {
		p.free[len(p.free)-1] = nil
		p.free = p.free[:len(p.free)-1]
		p.count--
	}
	p.mu.Unlock()
	p.cond.Broadcast()
}

// close makes Get and TryGet return nil from now on, and wakes waiters.
func (p *bufferPool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cond.Broadcast()
}

// stats returns how many buffers exist and the limit.
func (p *bufferPool) stats() (count, limit int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count, p.limit
}

// A freeList keeps values of type T for reuse, without limit: what bounds
// them is the buffers they carry. Safe for concurrent use.
type freeList[T any] struct {
	mu   sync.Mutex
	free []*T
}

func (l *freeList[T]) Get() *T {
	l.mu.Lock()
	if n := len(l.free); n > 0 {
		x := l.free[n-1]
		l.free[n-1] = nil
		l.free = l.free[:n-1]
		l.mu.Unlock()
		return x
	}
	l.mu.Unlock()
	return new(T)
}

func (l *freeList[T]) Put(x *T) {
	l.mu.Lock()
	l.free = append(l.free, x)
	l.mu.Unlock()
}

// pools holds the buffers and elements of one Device.
type pools struct {
	small, large       *bufferPool
	inbound            inboundBudget
	outboundElements   freeList[outboundElement]
	outboundContainers freeList[outboundContainer]
	inboundElements    freeList[inboundElement]
	inboundContainers  freeList[inboundContainer]
}

func (p *pools) init(workers int) {
	p.inbound.shared = int64(inboundSharedPerWorker * workers)
	p.small = newBufferPool(smallBufferSize, int(p.inbound.shared))
	p.large = newBufferPool(MaxMessageSize, largeStagingPerWorker*workers)
}

// tunnelShare is the most buffers one tunnel holds of its own (see the
// comment at the top of this file): its TUN reader's batch, one more batch
// it has read and waits to queue, the outbound queue, the batch its sender
// is sending, and its guaranteed inbound packets.
func tunnelShare(tunBatch int) int {
	return (queueOutboundSize+3)*tunBatch + inboundGuaranteed
}

// inboundBudget bounds the inbound packets in flight (from the socket
// receiver to the end of the TUN write) of all the tunnels of a Device:
// each tunnel may always have inboundGuaranteed; beyond that it borrows
// from an allowance the tunnels share, as long as it holds at most twice
// what is left of it. This is the dynamic threshold by which shared-memory
// switches share their buffer (Choudhury and Hahne, "Dynamic queue length
// thresholds for shared-memory packet switches", IEEE/ACM Transactions on
// Networking 6(2), 1998): one busy tunnel can take two thirds of the
// allowance to absorb a burst, k busy ones each 2/(2k+1) of it, and a
// stalled one never all of it. The allowance is of small buffers: a tunnel
// whose packets travel in large ones has its guarantee only (256 jumbo
// packets hold as many bytes as the burst of a small one). Safe for
// concurrent use.
type inboundBudget struct {
	shared   int64        // the shared allowance, in packets
	borrowed atomic.Int64 // how much of it the tunnels hold together
}

// admit counts one more inbound packet of t in flight, or reports false if
// t may not have it.
func (b *inboundBudget) admit(t *Tunnel) bool {
	n := t.inFlight.Add(1)
	if n <= inboundGuaranteed {
		return true
	}
	if t.largeBuffers {
		t.inFlight.Add(-1)
		return false
	}
	own := n - inboundGuaranteed
	if all := b.borrowed.Add(1); own <= 2*(b.shared-all) {
		return true
	}
	b.borrowed.Add(-1)
	t.inFlight.Add(-1)
	return false
}

// release counts n inbound packets of t done. What t had borrowed beyond
// inboundGuaranteed goes back to the allowance: the change in
// max(0, inFlight - inboundGuaranteed), which sums up right whatever the
// order of concurrent admits and releases.
func (b *inboundBudget) release(t *Tunnel, n int) {
	after := t.inFlight.Add(-int64(n))
	before := after + int64(n)
	if owed := max(0, before-inboundGuaranteed) - max(0, after-inboundGuaranteed); owed > 0 {
		b.borrowed.Add(-owed)
	}
}

// poolFor returns the pool of the buffers a tunnel's packets travel in.
func (p *pools) poolFor(t *Tunnel) *bufferPool {
	if t.largeBuffers {
		return p.large
	}
	return p.small
}

// addTunnel and removeTunnel grow and shrink the limit of t's pool by its
// share. Device.RemoveTunnel calls removeTunnel once t's goroutines are done.
func (p *pools) addTunnel(t *Tunnel)    { p.poolFor(t).grow(tunnelShare(t.tun.BatchSize())) }
func (p *pools) removeTunnel(t *Tunnel) { p.poolFor(t).grow(-tunnelShare(t.tun.BatchSize())) }

func (p *pools) close() {
	p.small.close()
	p.large.close()
}

// PutBuffer returns a buffer from either pool.
func (p *pools) PutBuffer(b []byte) {
	if cap(b) >= MaxMessageSize {
		p.large.Put(b)
	} else {
		p.small.Put(b)
	}
}

func (p *pools) GetOutboundElement() *outboundElement { return p.outboundElements.Get() }

func (p *pools) PutOutboundElement(e *outboundElement) {
	*e = outboundElement{}
	p.outboundElements.Put(e)
}

func (p *pools) GetOutboundContainer() *outboundContainer {
	c := p.outboundContainers.Get()
	if c.elems == nil {
		c.elems = make([]*outboundElement, 0, maxBatchSize)
	}
	return c
}

func (p *pools) PutOutboundContainer(c *outboundContainer) {
	clear(c.elems)
	c.elems = c.elems[:0]
	c.tunnel, c.out, c.path = nil, nil, nil
	p.outboundContainers.Put(c)
}

func (p *pools) GetInboundElement() *inboundElement { return p.inboundElements.Get() }

func (p *pools) PutInboundElement(e *inboundElement) {
	*e = inboundElement{}
	p.inboundElements.Put(e)
}

func (p *pools) GetInboundContainer() *inboundContainer {
	c := p.inboundContainers.Get()
	if c.elems == nil {
		c.elems = make([]*inboundElement, 0, maxBatchSize)
	}
	return c
}

func (p *pools) PutInboundContainer(c *inboundContainer) {
	clear(c.elems)
	c.elems = c.elems[:0]
	c.tunnel = nil
	p.inboundContainers.Put(c)
}
