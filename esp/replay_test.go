package esp

import (
	"math"
	"math/rand/v2"
	"testing"
)

func newWindow(size int) *Window {
	w := new(Window)
	w.Init(size)
	return w
}

// mustUpdate runs Update and Check on seq and fails unless both say want.
func mustUpdate(t *testing.T, w *Window, seq uint64, want bool) {
	t.Helper()
	if got := w.Check(seq); got != want {
		t.Fatalf("Check(%d) = %v, want %v (top %d)", seq, got, want, w.Top())
	}
	if got := w.Update(seq); got != want {
		t.Fatalf("Update(%d) = %v, want %v (top %d)", seq, got, want, w.Top())
	}
}

func TestWindowZeroNeverValid(t *testing.T) {
	w := newWindow(64)
	mustUpdate(t, w, 0, false)
	mustUpdate(t, w, 1, true)
	mustUpdate(t, w, 0, false)
}

func TestWindowInOrder(t *testing.T) {
	w := newWindow(1024)
	for seq := uint64(1); seq <= 10000; seq++ {
		mustUpdate(t, w, seq, true)
		if w.Top() != seq {
			t.Fatalf("Top = %d after %d", w.Top(), seq)
		}
	}
	for seq := uint64(10000 - 1023); seq <= 10000; seq++ {
		mustUpdate(t, w, seq, false) // duplicates inside the window
	}
	mustUpdate(t, w, 10000-1024, false) // just below the window
}

func TestWindowOutOfOrderWithinWindow(t *testing.T) {
	for _, size := range []int{1024, 4096} {
		w := newWindow(size)
		mustUpdate(t, w, uint64(size), true)
		// Every number below top inside the window, in reverse, once.
		for seq := uint64(size - 1); seq >= 1; seq-- {
			mustUpdate(t, w, seq, true)
		}
		for seq := uint64(1); seq <= uint64(size); seq++ {
			mustUpdate(t, w, seq, false)
		}
		if w.Top() != uint64(size) {
			t.Fatalf("size %d: Top = %d", size, w.Top())
		}
	}
}

func TestWindowEdges(t *testing.T) {
	for _, size := range []int{64, 1024, 4096, 65536} {
		w := newWindow(size)
		top := uint64(10 * size)
		mustUpdate(t, w, top, true)
		mustUpdate(t, w, top-uint64(size), false)  // too old by one
		mustUpdate(t, w, top-uint64(size)+1, true) // the oldest in the window
		mustUpdate(t, w, top-uint64(size)+1, false)
		mustUpdate(t, w, top, false)
	}
}

func TestWindowFarAheadSlides(t *testing.T) {
	w := newWindow(1024)
	for seq := uint64(1); seq <= 1024; seq++ {
		mustUpdate(t, w, seq, true)
	}
	// A jump of more than the whole ring clears every block: numbers
	// that were seen before but are inside the new window must not be
	// mistaken as seen (they are not: the window moved past them), and
	// numbers below the new window are too old.
	far := uint64(1024 + 1<<20 + 37)
	mustUpdate(t, w, far, true)
	mustUpdate(t, w, far-1, true)
	mustUpdate(t, w, far-1023, true)
	mustUpdate(t, w, far-1024, false)
	mustUpdate(t, w, 1024, false)
	// A jump of a few blocks: the bits of the skipped blocks are clear.
	next := far + 3*64 + 5
	mustUpdate(t, w, next, true)
	for seq := next - 1; seq > far; seq-- {
		mustUpdate(t, w, seq, true)
	}
	mustUpdate(t, w, far, false)
	mustUpdate(t, w, far-1, false)
}

// TestWindowAgainstModel compares the window with a map-based model of
// RFC 4303 §3.4.3 on random sequences that move forward with jitter.
func TestWindowAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{64, 1024, 4096} {
		w := newWindow(size)
		seen := map[uint64]bool{}
		var top uint64
		base := uint64(1)
		for range 200000 {
			base += uint64(rng.IntN(3))
			if rng.IntN(1000) == 0 {
				base += uint64(rng.IntN(4 * size))
			}
			seq := base + uint64(rng.IntN(2*size))
			if rng.IntN(2) == 0 && seq > uint64(size) {
				seq -= uint64(rng.IntN(size + 10))
			}
			want := seq != 0 && !seen[seq] && (seq > top || top-seq < uint64(size))
			if got := w.Check(seq); got != want {
				t.Fatalf("size %d: Check(%d) = %v, want %v (top %d)", size, seq, got, want, top)
			}
			if got := w.Update(seq); got != want {
				t.Fatalf("size %d: Update(%d) = %v, want %v (top %d)", size, seq, got, want, top)
			}
			if want {
				seen[seq] = true
				top = max(top, seq)
			}
		}
	}
}

func TestWindowHighSequenceNumbers(t *testing.T) {
	w := newWindow(1024)
	mustUpdate(t, w, math.MaxUint32, true)
	mustUpdate(t, w, math.MaxUint32+1, true)
	mustUpdate(t, w, math.MaxUint32-5, true)
	mustUpdate(t, w, math.MaxUint64-1, true)
	mustUpdate(t, w, math.MaxUint64, true)
	mustUpdate(t, w, math.MaxUint64-1, false)
	mustUpdate(t, w, math.MaxUint64-1024, false)
	mustUpdate(t, w, math.MaxUint64-1023, true)
}

func TestWindowInitResets(t *testing.T) {
	w := newWindow(64)
	mustUpdate(t, w, 100, true)
	w.Init(128)
	if w.Top() != 0 || w.Size() != 128 {
		t.Fatalf("after Init: Top %d, Size %d", w.Top(), w.Size())
	}
	mustUpdate(t, w, 100, true)
}

func TestWindowInitPanicsOnBadSize(t *testing.T) {
	for _, size := range []int{0, 32, 63, 65, 1000, 131072, -64} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Init(%d) did not panic", size)
				}
			}()
			new(Window).Init(size)
		}()
	}
}
