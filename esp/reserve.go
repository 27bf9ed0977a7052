package esp

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultSeqBlock is how many outbound sequence numbers one reservation
// covers when Config.SeqBlock is 0: a write and two fsyncs per 2^20
// packets, and at most 2^20 numbers skipped by a crash.
const DefaultSeqBlock = 1 << 20

// reserveRetry is how long NextSeq waits before it tries a failed
// reservation again: while the disk fails, packets are dropped, and not
// every one of them costs a write.
var reserveRetry = time.Second

// SeqReserver makes outbound sequence numbers durable before an SA uses
// them, so that a restart never sends a number twice under one manual key
// (with AES-GCM or ChaCha20-Poly1305 that would reuse a nonce).
//
// Reserve returns nil only once it is recorded durably (written and
// synced to disk) that every sequence number up to and including upTo may
// have been used; after a crash the SA must start above upTo. upTo grows
// from call to call. An SA calls Reserve from one goroutine at a time,
// not necessarily the sending one: ahead of time, when half of the current
// block is used, so that the send path does not wait for the disk in
// steady state; and on the send path, counted in Stats.ReserveWaits, only
// when the disk is slower than the traffic.
type SeqReserver interface {
	Reserve(upTo uint64) error
}

// reservation is an outbound SA's state of SeqReserver calls.
type reservation struct {
	r     SeqReserver
	block uint64
	top   atomic.Uint64 // highest sequence number reserved
	ahead atomic.Bool   // an asynchronous reservation runs, or failed

	mu         sync.Mutex // held during a Reserve call
	retryAfter atomic.Int64
	errors     atomic.Uint64
}

func (r *reservation) init(rs SeqReserver, block, last uint64) {
	r.r, r.block = rs, block
	r.top.Store(last)
}

// target is the reservation that covers seq and a block beyond it.
func (r *reservation) target(seq uint64) uint64 {
	if seq > math.MaxUint64-r.block {
		return math.MaxUint64
	}
	return seq - 1 + r.block
}

// reserveSync reserves up to a block beyond seq unless seq is already
// covered, waiting for a reservation that runs.
func (r *reservation) reserveSync(seq uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq <= r.top.Load() {
		return nil
	}
	target := r.target(seq)
	if err := r.r.Reserve(target); err != nil {
		r.errors.Add(1)
		return err
	}
	r.top.Store(target)
	r.ahead.Store(false) // a failed asynchronous one may try again
	return nil
}

// reserveAhead extends the reservation by a block beyond top, in the
// background.
func (r *reservation) reserveAhead(top uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.top.Load() != top {
		r.ahead.Store(false)
		return
	}
	target := r.target(top + 1)
	if err := r.r.Reserve(target); err != nil {
		// Leave ahead set: the send path reserves synchronously when it
		// reaches top, and clears ahead when that works.
		r.errors.Add(1)
		return
	}
	r.top.Store(target)
	r.ahead.Store(false)
}

// reserved reports whether seq may be sent: it is covered by a durable
// reservation, or could be covered now. It starts the next reservation in
// the background once half of the current block is used. Called from
// NextSeq only.
func (sa *SA) reserved(seq uint64) bool {
	r := &sa.res
	top := r.top.Load()
	if seq <= top {
		if top-seq < r.block/2 && top != math.MaxUint64 && r.ahead.CompareAndSwap(false, true) {
			go r.reserveAhead(top)
		}
		return true
	}
	if after := r.retryAfter.Load(); after != 0 && time.Now().UnixNano() < after {
		return false
	}
	sa.reserveWaits.Add(1)
	if err := r.reserveSync(seq); err != nil {
		r.retryAfter.Store(time.Now().Add(reserveRetry).UnixNano())
		return false
	}
	r.retryAfter.Store(0)
	return true
}

// WaitReservation waits until no reservation runs in the background: for
// a clean stop, before the reserver's storage goes away.
func (sa *SA) WaitReservation() {
	sa.res.mu.Lock()
	//lint:ignore SA2001 the empty critical section waits for the holder
	sa.res.mu.Unlock()
}
