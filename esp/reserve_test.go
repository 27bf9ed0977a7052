package esp

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// recordingReserver is a SeqReserver that records what it made durable,
// and can be made to fail or to wait.
type recordingReserver struct {
	mu      sync.Mutex
	durable uint64
	calls   int
	fail    error
	gate    chan struct{} // when set, Reserve waits for a receive
}

func (r *recordingReserver) Reserve(upTo uint64) error {
	r.mu.Lock()
	gate, fail := r.gate, r.fail
	r.mu.Unlock()
	if gate != nil {
		<-gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if fail != nil {
		return fail
	}
	if upTo <= r.durable {
		panic("Reserve went backwards")
	}
	r.durable = upTo
	return nil
}

func (r *recordingReserver) get() (uint64, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.durable, r.calls
}

func reservedSA(t *testing.T, r SeqReserver, first, block uint64) *SA {
	t.Helper()
	cfg := testConfig(Transform{Algorithm: AES256GCM16}, false)
	cfg.FirstSeq, cfg.Reserver, cfg.SeqBlock = first, r, block
	sa, err := NewSA(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sa
}

// TestReserveBeforeUse: no sequence number is handed out before a
// reservation covering it is durable, numbers start at FirstSeq, and the
// next block is reserved in the background before the current one runs
// out, so the send path does not wait.
func TestReserveBeforeUse(t *testing.T) {
	r := &recordingReserver{}
	sa := reservedSA(t, r, 1000, 64)
	if d, _ := r.get(); d != 1063 {
		t.Fatalf("NewSA reserved up to %d, want 1063", d)
	}
	for want := uint64(1000); want < 1000+64*20; want++ {
		seq, ok := sa.NextSeq()
		if !ok || seq != want {
			t.Fatalf("NextSeq = %d, %v; want %d", seq, ok, want)
		}
		if d, _ := r.get(); seq > d {
			t.Fatalf("seq %d handed out, only %d durable", seq, d)
		}
		if seq%16 == 0 {
			time.Sleep(time.Millisecond) // let the background reservation run
		}
	}
	if st := sa.Stats(); st.ReserveErrors != 0 {
		t.Fatalf("stats %+v", st)
	}
	// With the background reservation given time, the send path waited
	// at most rarely: far less than once per block.
	if w := sa.Stats().ReserveWaits; w > 3 {
		t.Fatalf("the send path waited %d times in 20 blocks", w)
	}
}

// TestReserveWaitsForSlowDisk: when the disk is slower than the traffic,
// NextSeq waits for the reservation (counted) instead of running ahead.
func TestReserveWaitsForSlowDisk(t *testing.T) {
	r := &recordingReserver{}
	sa := reservedSA(t, r, 1, 16)
	gate := make(chan struct{})
	r.mu.Lock()
	r.gate = gate
	r.mu.Unlock()
	for range 16 {
		if _, ok := sa.NextSeq(); !ok {
			t.Fatal("NextSeq failed inside the first block")
		}
	}
	done := make(chan uint64)
	go func() {
		seq, _ := sa.NextSeq()
		done <- seq
	}()
	select {
	case seq := <-done:
		t.Fatalf("NextSeq returned %d before the reservation was durable", seq)
	case <-time.After(50 * time.Millisecond):
	}
	close(gate) // the disk catches up
	if seq := <-done; seq != 17 {
		t.Fatalf("NextSeq = %d, want 17", seq)
	}
	if d, _ := r.get(); d < 17 {
		t.Fatalf("durable %d", d)
	}
	if sa.Stats().ReserveWaits == 0 {
		t.Fatal("the wait was not counted")
	}
}

// TestReserveFailure: a reservation that fails stops sending (fail
// closed, counted) until one succeeds; NewSA fails when the first one
// does.
func TestReserveFailure(t *testing.T) {
	old := reserveRetry
	reserveRetry = 0
	defer func() { reserveRetry = old }()

	r := &recordingReserver{fail: errors.New("disk full")}
	cfg := testConfig(Transform{Algorithm: AES256GCM16}, false)
	cfg.Reserver = r
	if _, err := NewSA(cfg); err == nil {
		t.Fatal("NewSA worked without a reservation")
	}

	r = &recordingReserver{}
	sa := reservedSA(t, r, 1, 8)
	r.mu.Lock()
	r.fail = errors.New("disk full")
	r.mu.Unlock()
	sent := 0
	for range 100 {
		if _, ok := sa.NextSeq(); ok {
			sent++
		}
		time.Sleep(100 * time.Microsecond)
	}
	if d, _ := r.get(); sent != 8 || d != 8 {
		t.Fatalf("sent %d with %d durable", sent, d)
	}
	if sa.Stats().ReserveErrors == 0 {
		t.Fatal("failures not counted")
	}
	r.mu.Lock()
	r.fail = nil
	r.mu.Unlock()
	if seq, ok := sa.NextSeq(); !ok || seq != 9 {
		t.Fatalf("after the disk recovered: NextSeq = %d, %v", seq, ok)
	}
}

// TestReplayFloor: an inbound SA restored with the window top of before a
// restart drops every packet up to it as a replay, and accepts the ones
// after it, whatever the floor's position in its bitmap block, with and
// without ESN.
func TestReplayFloor(t *testing.T) {
	for _, esn := range []bool{false, true} {
		for _, floor := range []uint64{1, 63, 64, 65, 1000, 1<<32 - 1, 1<<32 + 70} {
			if !esn && floor >= 1<<32-1 {
				continue
			}
			tr := Transform{Algorithm: AES128CBC, Integrity: HMACSHA256_128}
			tx := newTestSA(t, tr, esn)
			cfg := testConfig(tr, esn)
			cfg.ReplayFloor = floor
			rx, err := NewSA(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, seq := range []uint64{floor, floor - 1, floor / 2} {
				if seq == 0 {
					continue
				}
				_, _, _, err := rx.Open(sealPayload(tx, []byte("old"), seq, 4))
				// Far below the window, ESN infers the next 2^32
				// subspace and the ICV fails instead (RFC 4303 A2.2).
				if err != ErrReplay && (floor-seq < 1024 || err != ErrAuth) {
					t.Fatalf("esn=%v floor %d: seq %d: %v, want ErrReplay", esn, floor, seq, err)
				}
			}
			for _, seq := range []uint64{floor + 2, floor + 1, floor + 64, floor + 65} {
				_, _, got, err := rx.Open(sealPayload(tx, []byte("new"), seq, 4))
				if err != nil || got != seq || !rx.Accept(got, 3) {
					t.Fatalf("esn=%v floor %d: seq %d: %d, %v", esn, floor, seq, got, err)
				}
			}
		}
	}
}

// TestReserveNoAllocs: NextSeq with a reserver allocates nothing while the
// current block lasts.
func TestReserveNoAllocs(t *testing.T) {
	sa := reservedSA(t, &recordingReserver{}, 1, 1<<20)
	if n := testing.AllocsPerRun(1000, func() { sa.NextSeq() }); n != 0 {
		t.Fatalf("NextSeq with a reserver allocates %v", n)
	}
}
