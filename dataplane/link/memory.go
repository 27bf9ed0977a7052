package link

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"golang.zx2c4.com/wireguard/conn"
)

const (
	// memorySlots is the number of packets a Memory link holds in each
	// direction before Send blocks.
	memorySlots = 4096
	// memoryMaxPacket is the largest packet a Memory link carries: the
	// largest IP datagram.
	memoryMaxPacket = 65535
	// memoryMinSlot is the smallest buffer a slot is given, so that
	// packets of varying sizes up to a common MTU reuse it.
	memoryMinSlot = 2048
)

// Memory is one end of an in-memory link made by NewMemoryPair. It
// implements conn.Bind and is safe for concurrent use.
//
// Each direction is a bounded queue of memorySlots packets whose buffers are
// allocated on first use and then reused, so a link in steady state
// allocates nothing. A packet is copied on Send and again on receive, as a
// socket would.
//
// A Memory starts closed: both ends must be opened before they exchange
// packets. Packets sent to an end that is closed are discarded, as a cable
// to a host that is down would; nothing else is ever dropped, except by
// SetLoss.
type Memory struct {
	local, peer netip.AddrPort
	peerEP      *Endpoint    // the source of every packet received
	in          *memoryQueue // packets to this end
	out         *memoryQueue // packets to the peer; the peer's in

	sent      atomic.Uint64
	lossEvery atomic.Int64
	lossCount atomic.Uint64
}

var _ conn.Bind = (*Memory)(nil)

// memoryQueue carries one direction of a Memory link.
type memoryQueue struct {
	mu       sync.Mutex
	nonEmpty sync.Cond // signalled when packets are added or receiving stops
	nonFull  sync.Cond // signalled when packets are taken or either end closes

	slots [memorySlots][]byte
	head  int // index of the oldest packet
	count int // number of packets queued

	recvOpen bool   // the receiving end is open
	sendOpen bool   // the sending end is open
	gen      uint64 // counts the receiving end's Opens
}

func newMemoryQueue() *memoryQueue {
	q := new(memoryQueue)
	q.nonEmpty.L = &q.mu
	q.nonFull.L = &q.mu
	return q
}

// NewMemoryPair returns two connected Binds, as if two hosts with addresses
// a and b were joined by a cable: what a's Send sends to b's address is
// received by b with source a, and vice versa. Batched (BatchSize =
// conn.IdealBatchSize), bounded (memorySlots packets each way), zero
// allocation in steady state; Send blocks when the queue is full (never
// silently drops) unless an end is closed.
//
// IPv4-mapped addresses are unmapped. It panics if a or b is not a valid
// address.
func NewMemoryPair(a, b netip.AddrPort) (*Memory, *Memory) {
	if !a.Addr().IsValid() || !b.Addr().IsValid() {
		panic(fmt.Sprintf("link: NewMemoryPair(%v, %v): invalid address", a, b))
	}
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	b = netip.AddrPortFrom(b.Addr().Unmap(), b.Port())
	ab, ba := newMemoryQueue(), newMemoryQueue()
	ma := &Memory{local: a, peer: b, peerEP: &Endpoint{dst: b}, in: ba, out: ab}
	mb := &Memory{local: b, peer: a, peerEP: &Endpoint{dst: a}, in: ab, out: ba}
	return ma, mb
}

// SetLoss makes Send drop every everyN-th packet, counting from this call;
// 0 (or less) drops none. Dropped packets count as sent.
func (m *Memory) SetLoss(everyN int) {
	m.lossEvery.Store(int64(max(everyN, 0)))
	m.lossCount.Store(0)
}

// Sent returns the number of packets Send has accepted, including those
// dropped by SetLoss or discarded because the peer was closed.
func (m *Memory) Sent() uint64 { return m.sent.Load() }

// Open opens this end. The port is ignored; the port of the address this
// end was made with is returned. It returns one ReceiveFunc, which returns
// as many queued packets as fit in its buffers, blocking until there is at
// least one, and an error matching net.ErrClosed once this end is closed.
// A packet longer than its buffer is truncated to fit.
func (m *Memory) Open(uint16) ([]conn.ReceiveFunc, uint16, error) {
	in := m.in
	in.mu.Lock()
	if in.recvOpen {
		in.mu.Unlock()
		return nil, 0, conn.ErrBindAlreadyOpen
	}
	in.recvOpen = true
	in.gen++
	gen := in.gen
	in.mu.Unlock()

	out := m.out
	out.mu.Lock()
	out.sendOpen = true
	out.mu.Unlock()

	recv := func(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		return m.receive(gen, packets, sizes, eps)
	}
	return []conn.ReceiveFunc{recv}, m.local.Port(), nil
}

// Close closes this end: its ReceiveFuncs and any Send blocked on it return
// net.ErrClosed, packets queued for it are discarded, and so are packets the
// peer sends until it is opened again. Closing a closed end does nothing.
func (m *Memory) Close() error {
	in := m.in
	in.mu.Lock()
	in.recvOpen = false
	for in.count > 0 {
		in.slots[in.head] = in.slots[in.head][:0]
		in.head = (in.head + 1) % memorySlots
		in.count--
	}
	in.head = 0
	in.nonEmpty.Broadcast()
	in.nonFull.Broadcast() // the peer's blocked Sends now discard
	in.mu.Unlock()

	out := m.out
	out.mu.Lock()
	out.sendOpen = false
	out.nonFull.Broadcast() // our blocked Sends now fail
	out.mu.Unlock()
	return nil
}

// SetMark does nothing.
func (m *Memory) SetMark(uint32) error { return nil }

// BatchSize returns conn.IdealBatchSize.
func (m *Memory) BatchSize() int { return conn.IdealBatchSize }

// ParseEndpoint parses "addr" or "addr:port" ("[addr]:port" for IPv6). For
// the peer's address it returns the peer's endpoint, the one received
// packets carry.
func (m *Memory) ParseEndpoint(s string) (conn.Endpoint, error) {
	ap, err := parseAddrPort(s)
	if err != nil {
		return nil, err
	}
	if ap == m.peer || (ap.Port() == 0 && ap.Addr() == m.peer.Addr()) {
		return m.peerEP, nil
	}
	return &Endpoint{dst: ap}, nil
}

// routes reports whether the cable leads to dst: the peer's address, with
// the peer's port or port 0 (raw IP has no ports).
func (m *Memory) routes(dst netip.AddrPort) bool {
	return dst.Addr() == m.peer.Addr() &&
		(dst.Port() == 0 || m.peer.Port() == 0 || dst.Port() == m.peer.Port())
}

// Send queues copies of bufs for the peer, in order, blocking while the
// peer's queue is full. ep must be an *Endpoint that routes to the peer.
// It returns net.ErrClosed if this end is closed (also while blocked, with
// the packets before the blocked one already queued). Packets longer than
// 65535 bytes are refused before any is queued.
func (m *Memory) Send(bufs [][]byte, ep conn.Endpoint) error {
	e, ok := ep.(*Endpoint)
	if !ok {
		return conn.ErrWrongEndpointType
	}
	if !m.routes(e.dst) {
		return fmt.Errorf("link: memory link %v has no route to %v", m.local, e.dst)
	}
	for _, b := range bufs {
		if len(b) > memoryMaxPacket {
			return fmt.Errorf("link: memory link: packet of %d bytes is longer than %d", len(b), memoryMaxPacket)
		}
	}
	q := m.out
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.sendOpen {
		return net.ErrClosed
	}
	queued := false
	for _, b := range bufs {
		m.sent.Add(1)
		if n := m.lossEvery.Load(); n > 0 && m.lossCount.Add(1)%uint64(n) == 0 {
			continue
		}
		for q.count == memorySlots && q.sendOpen && q.recvOpen {
			if queued {
				q.nonEmpty.Broadcast()
				queued = false
			}
			q.nonFull.Wait()
		}
		if !q.sendOpen {
			return net.ErrClosed
		}
		if !q.recvOpen {
			continue // the peer is down
		}
		i := (q.head + q.count) % memorySlots
		s := q.slots[i]
		if cap(s) < len(b) {
			s = make([]byte, slotSize(len(b)))
		}
		q.slots[i] = append(s[:0], b...)
		q.count++
		queued = true
	}
	if queued {
		q.nonEmpty.Broadcast()
	}
	return nil
}

// slotSize returns the buffer size for a packet of n bytes: the next power
// of two, at least memoryMinSlot and at most memoryMaxPacket.
func slotSize(n int) int {
	size := memoryMinSlot
	for size < n {
		size <<= 1
	}
	return min(size, memoryMaxPacket)
}

// receive is the ReceiveFunc of the gen-th Open.
func (m *Memory) receive(gen uint64, packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
	if len(packets) == 0 {
		return 0, nil
	}
	q := m.in
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.count == 0 && q.recvOpen && q.gen == gen {
		q.nonEmpty.Wait()
	}
	if !q.recvOpen || q.gen != gen {
		return 0, net.ErrClosed
	}
	n := min(q.count, len(packets))
	for i := range n {
		s := q.slots[q.head]
		sizes[i] = copy(packets[i], s)
		eps[i] = m.peerEP
		q.slots[q.head] = s[:0]
		q.head = (q.head + 1) % memorySlots
	}
	q.count -= n
	q.nonFull.Broadcast()
	return n, nil
}
