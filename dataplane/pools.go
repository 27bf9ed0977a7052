package dataplane

import (
	"sync"
)

// MaxMessageSize is the size of every packet buffer. It holds the largest
// datagram the sockets and the TUN device can coalesce (UDP GRO, TCP GRO).
const MaxMessageSize = 1<<16 - 1

// A waitPool is a free list of items bounded by a maximum count: Get blocks
// while max items are out, which bounds the memory the queues hold. Unlike
// sync.Pool it never drops items at a garbage collection, so once the
// pipeline has warmed up it allocates nothing.
type waitPool struct {
	mu    sync.Mutex
	cond  sync.Cond
	free  []any
	count int // items allocated so far
	max   int // 0: no limit
	new   func() any
}

func newWaitPool(max int, new func() any) *waitPool {
	p := &waitPool{max: max, new: new}
	p.cond.L = &p.mu
	return p
}

func (p *waitPool) Get() any {
	p.mu.Lock()
	for len(p.free) == 0 && p.max != 0 && p.count >= p.max {
		p.cond.Wait()
	}
	if n := len(p.free); n > 0 {
		x := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return x
	}
	p.count++
	p.mu.Unlock()
	return p.new()
}

func (p *waitPool) Put(x any) {
	p.mu.Lock()
	p.free = append(p.free, x)
	p.mu.Unlock()
	p.cond.Signal()
}

// pools holds the buffers and elements of one Device.
type pools struct {
	buffers            *waitPool
	outboundElements   *waitPool
	outboundContainers *waitPool
	inboundElements    *waitPool
	inboundContainers  *waitPool
}

// maxBuffers bounds the packet buffers in flight per Device. 4096 buffers of
// 64 KiB are 256 MiB of address space; only the bytes packets touch are
// resident.
const maxBuffers = 4096

func (p *pools) init() {
	p.buffers = newWaitPool(maxBuffers, func() any { return new([MaxMessageSize]byte) })
	p.outboundElements = newWaitPool(0, func() any { return new(outboundElement) })
	p.outboundContainers = newWaitPool(0, func() any {
		return &outboundContainer{elems: make([]*outboundElement, 0, maxBatchSize)}
	})
	p.inboundElements = newWaitPool(0, func() any { return new(inboundElement) })
	p.inboundContainers = newWaitPool(0, func() any {
		return &inboundContainer{elems: make([]*inboundElement, 0, maxBatchSize)}
	})
}

func (p *pools) GetBuffer() *[MaxMessageSize]byte  { return p.buffers.Get().(*[MaxMessageSize]byte) }
func (p *pools) PutBuffer(b *[MaxMessageSize]byte) { p.buffers.Put(b) }

func (p *pools) GetOutboundElement() *outboundElement {
	return p.outboundElements.Get().(*outboundElement)
}

func (p *pools) PutOutboundElement(e *outboundElement) {
	*e = outboundElement{}
	p.outboundElements.Put(e)
}

func (p *pools) GetOutboundContainer() *outboundContainer {
	return p.outboundContainers.Get().(*outboundContainer)
}

func (p *pools) PutOutboundContainer(c *outboundContainer) {
	clear(c.elems)
	c.elems = c.elems[:0]
	c.tunnel = nil
	p.outboundContainers.Put(c)
}

func (p *pools) GetInboundElement() *inboundElement { return p.inboundElements.Get().(*inboundElement) }

func (p *pools) PutInboundElement(e *inboundElement) {
	*e = inboundElement{}
	p.inboundElements.Put(e)
}

func (p *pools) GetInboundContainer() *inboundContainer {
	return p.inboundContainers.Get().(*inboundContainer)
}

func (p *pools) PutInboundContainer(c *inboundContainer) {
	clear(c.elems)
	c.elems = c.elems[:0]
	c.tunnel = nil
	p.inboundContainers.Put(c)
}
