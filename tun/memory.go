package tun

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	wgtun "golang.zx2c4.com/wireguard/tun"
)

// memoryQueueLen is how many packets Memory holds in each direction before
// Inject or Write blocks.
const memoryQueueLen = 1024

// Memory is an in-memory Device. Packets given to Inject come out of Read as
// if the OS had sent them into the tunnel; packets the gateway Writes go to
// Output. For benchmarks that must not allocate, SetSource and SetSink
// replace Inject and Output with functions that Read and Write call
// directly.
//
// Memory is safe for concurrent use. Its Events channel carries EventUp once
// and is closed by Close; File returns nil.
type Memory struct {
	name      string
	mtu       int
	batchSize int

	in     chan []byte // injected packets, copies
	out    chan []byte // written packets, copies; never closed
	events chan wgtun.Event

	source atomic.Pointer[func(buf []byte) int]
	sink   atomic.Pointer[func(pkt []byte)]

	closed    chan struct{}
	closeOnce sync.Once

	readMu      sync.Mutex // readMu serialises queue Reads and guards pending
	pending     []byte     // a packet taken from in that did not fit its batch
	havePending bool
}

var _ Device = (*Memory)(nil)

// NewMemory returns an open Memory device whose MTU, Name and BatchSize
// report mtu, name and batchSize. It panics if batchSize is less than 1.
func NewMemory(name string, mtu, batchSize int) *Memory {
	if batchSize < 1 {
		panic(fmt.Sprintf("tun: NewMemory batch size %d is less than 1", batchSize))
	}
	m := &Memory{
		name:      name,
		mtu:       mtu,
		batchSize: batchSize,
		in:        make(chan []byte, memoryQueueLen),
		out:       make(chan []byte, memoryQueueLen),
		events:    make(chan wgtun.Event, 1),
		closed:    make(chan struct{}),
	}
	m.events <- wgtun.EventUp
	return m
}

// Inject queues a copy of pkt to be returned by Read. It blocks while the
// queue is full, and returns at once, dropping pkt, once m is closed.
func (m *Memory) Inject(pkt []byte) {
	if m.isClosed() {
		return
	}
	p := make([]byte, len(pkt))
	copy(p, pkt)
	select {
	case m.in <- p:
	case <-m.closed:
	}
}

// Output returns the channel on which Write delivers a copy of each packet
// it is given, in order, when no sink is set. The channel holds a bounded
// number of packets, after which Write blocks. It is never closed.
func (m *Memory) Output() <-chan []byte {
	return m.out
}

// SetSource makes Read call fill instead of taking injected packets: once
// for each buffer of a batch, with buf = bufs[i][offset:]. Fill writes a
// packet into buf and returns its length, or returns 0 to end the batch
// early; returning more than len(buf) is a programmer error and panics.
// SetSource(nil) goes back to injected packets. Fill must be safe for
// concurrent use if Read is called concurrently.
func (m *Memory) SetSource(fill func(buf []byte) int) {
	if fill == nil {
		m.source.Store(nil)
		return
	}
	m.source.Store(&fill)
}

// SetSink makes Write call fn with each packet, bufs[i][offset:], instead of
// sending a copy to Output. Fn must not keep pkt after it returns.
// SetSink(nil) goes back to Output. Fn must be safe for concurrent use if
// Write is called concurrently.
func (m *Memory) SetSink(fn func(pkt []byte)) {
	if fn == nil {
		m.sink.Store(nil)
		return
	}
	m.sink.Store(&fn)
}

// WriteMayBlock reports whether Write may wait for a reader of Output:
// true unless a sink is set.
func (m *Memory) WriteMayBlock() bool { return m.sink.Load() == nil }

// File returns nil: there is no file behind a Memory device.
func (m *Memory) File() *os.File {
	return nil
}

// Read reads up to min(len(bufs), BatchSize()) packets, placing packet i at
// bufs[i][offset:] and its length in sizes[i]. Without a source it blocks
// until at least one injected packet is queued, then takes as many more as
// are already queued. An injected packet that does not fit in its buffer
// ends the batch; if it is the first of the batch, it is dropped and Read
// returns an error. After Close, Read returns os.ErrClosed.
func (m *Memory) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if m.isClosed() {
		return 0, os.ErrClosed
	}
	limit := min(len(bufs), len(sizes), m.batchSize)
	if limit == 0 {
		return 0, nil
	}
	if fill := m.source.Load(); fill != nil {
		n := 0
		for ; n < limit; n++ {
			buf := bufs[n][offset:]
			size := (*fill)(buf)
			if size <= 0 {
				break
			}
			if size > len(buf) {
				panic(fmt.Sprintf("tun: source returned %d bytes for a %d-byte buffer", size, len(buf)))
			}
			sizes[n] = size
		}
		return n, nil
	}

	m.readMu.Lock()
	defer m.readMu.Unlock()
	pkt := m.pending
	if m.havePending {
		m.pending, m.havePending = nil, false
	} else {
		select {
		case pkt = <-m.in:
		case <-m.closed:
			return 0, os.ErrClosed
		}
	}
	n := 0
	for {
		buf := bufs[n][offset:]
		if len(pkt) > len(buf) {
			if n == 0 {
				return 0, fmt.Errorf("tun: %s: dropped a %d-byte packet that does not fit in a %d-byte buffer", m.name, len(pkt), len(buf))
			}
			m.pending, m.havePending = pkt, true
			return n, nil
		}
		sizes[n] = copy(buf, pkt)
		n++
		if n == limit {
			return n, nil
		}
		select {
		case pkt = <-m.in:
		default:
			return n, nil
		}
	}
}

// Write delivers each bufs[i][offset:] to the sink or, without one, a copy
// of it to Output, blocking while Output is full. It returns the number of
// packets delivered, and os.ErrClosed if m is or becomes closed first.
func (m *Memory) Write(bufs [][]byte, offset int) (int, error) {
	if m.isClosed() {
		return 0, os.ErrClosed
	}
	if sink := m.sink.Load(); sink != nil {
		for _, buf := range bufs {
			(*sink)(buf[offset:])
		}
		return len(bufs), nil
	}
	for i, buf := range bufs {
		p := make([]byte, len(buf)-offset)
		copy(p, buf[offset:])
		select {
		case m.out <- p:
		case <-m.closed:
			return i, os.ErrClosed
		}
	}
	return len(bufs), nil
}

// MTU returns the MTU given to NewMemory.
func (m *Memory) MTU() (int, error) {
	return m.mtu, nil
}

// Name returns the name given to NewMemory.
func (m *Memory) Name() (string, error) {
	return m.name, nil
}

// Events returns a channel that carries EventUp once and is closed by Close.
func (m *Memory) Events() <-chan wgtun.Event {
	return m.events
}

// Close closes m: blocked and later Reads and Writes return os.ErrClosed,
// blocked and later Injects return at once, and packets still queued are
// dropped. Close is idempotent and always returns nil.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() {
		close(m.closed)
		close(m.events)
	})
	return nil
}

// BatchSize returns the batch size given to NewMemory.
func (m *Memory) BatchSize() int {
	return m.batchSize
}

func (m *Memory) isClosed() bool {
	select {
	case <-m.closed:
		return true
	default:
		return false
	}
}
