package esp

import (
	"fmt"
	"math"
	"sync/atomic"
)

// Limits of the anti-replay window size, in packets.
const (
	// MinReplayWindow is the smallest window: one bitmap block.
	MinReplayWindow = 64
	// MaxReplayWindow is the largest window.
	MaxReplayWindow = 65536
	// DefaultReplayWindow is the window used when Config.ReplayWindow is 0.
	DefaultReplayWindow = 1024
)

// blockBits is the number of sequence numbers one bitmap block covers.
const blockBits = 64

// Window is an anti-replay window over 64-bit sequence numbers (RFC 4303
// §3.4.3) kept as a ring of 64-bit blocks (RFC 6479): sliding the window
// forward clears whole blocks instead of shifting bits. A sequence number
// is accepted once if it is above the highest one accepted so far (Top), or
// within the window below it and not yet seen. Sequence number 0 is never
// valid.
//
// A Window must be set up with Init before use. Update must not be called
// concurrently with itself or with Init. Check and Top may be called
// concurrently with Update (they only load atomically); such a Check may
// answer for the state before or after that Update, so it serves as an
// early filter, and Update gives the final answer.
type Window struct {
	top    atomic.Uint64   // highest accepted sequence number
	size   uint64          // window size in packets, a power of two
	blocks []atomic.Uint64 // ring; len is a power of two ≥ size/64+1
}

// Init sets the window to size packets, which must be a power of two
// between MinReplayWindow and MaxReplayWindow, and forgets every sequence
// number seen. It panics on a bad size (Config.Validate reports those).
func (w *Window) Init(size int) {
	if err := checkWindowSize(size); err != nil {
		panic(err)
	}
	// The window can touch size/64+1 blocks when Top is not on a block
	// boundary; twice size/64 is the next power of two.
	w.blocks = make([]atomic.Uint64, 2*size/blockBits)
	w.size = uint64(size)
	w.top.Store(0)
}

func checkWindowSize(size int) error {
	if size < MinReplayWindow || size > MaxReplayWindow || size&(size-1) != 0 {
		return fmt.Errorf("esp: replay window must be a power of two between %d and %d, got %d",
			MinReplayWindow, MaxReplayWindow, size)
	}
	return nil
}

// SetFloor marks every sequence number up to and including floor as seen
// and makes floor the top: the state of a window that had accepted floor,
// as it is restored after a restart. Not safe for concurrent use with
// Update.
func (w *Window) SetFloor(floor uint64) {
	for i := range w.blocks {
		w.blocks[i].Store(math.MaxUint64)
	}
	// In the top's block only the bits up to floor are seen; the ones
	// above are numbers Update must still accept.
	w.blocks[w.index(floor)].Store(math.MaxUint64 >> (blockBits - 1 - floor%blockBits))
	w.top.Store(floor)
}

// Size returns the window size in packets.
func (w *Window) Size() int { return int(w.size) }

// Top returns the highest sequence number accepted so far, 0 if none.
func (w *Window) Top() uint64 { return w.top.Load() }

// Check reports whether Update would accept seq, without changing the
// window.
func (w *Window) Check(seq uint64) bool {
	if seq == 0 {
		return false
	}
	top := w.top.Load()
	if seq > top {
		return true
	}
	if top-seq >= w.size {
		return false
	}
	return w.blocks[w.index(seq)].Load()&bit(seq) == 0
}

// Update checks seq and, if it is acceptable, marks it seen (moving Top up
// if seq is above it) and returns true. It returns false, changing
// nothing, for a sequence number that is zero, seen or too old.
func (w *Window) Update(seq uint64) bool {
	if seq == 0 {
		return false
	}
	top := w.top.Load()
	if seq > top {
		// Clear the blocks after the old top's up to seq's, at most
		// the whole ring.
		first, last := top/blockBits+1, seq/blockBits
		if ring := uint64(len(w.blocks)); last >= first && last-first >= ring {
			first = last - ring + 1
		}
		for b := first; b <= last; b++ {
			w.blocks[b&uint64(len(w.blocks)-1)].Store(0)
		}
		w.top.Store(seq)
	} else if top-seq >= w.size {
		return false
	}
	blk := &w.blocks[w.index(seq)]
	old := blk.Load()
	if old&bit(seq) != 0 {
		return false
	}
	blk.Store(old | bit(seq))
	return true
}

// index returns the ring index of the block holding seq.
func (w *Window) index(seq uint64) uint64 {
	return (seq / blockBits) & uint64(len(w.blocks)-1)
}

// bit returns seq's bit in its block.
func bit(seq uint64) uint64 {
	return 1 << (seq % blockBits)
}
