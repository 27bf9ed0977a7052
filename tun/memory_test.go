package tun

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	wgtun "golang.zx2c4.com/wireguard/tun"
)

const testOffset = 32

// testBufs returns n buffers of size bytes, each filled with 0xAA so that
// writes outside the packet's place show up.
func testBufs(n, size int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = bytes.Repeat([]byte{0xAA}, size)
	}
	return bufs, make([]int, n)
}

// testPacket returns a packet of n bytes whose contents depend on seed.
func testPacket(seed byte, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = seed + byte(i)
	}
	return p
}

func checkHeadroom(t *testing.T, buf []byte, offset int) {
	t.Helper()
	for i, b := range buf[:offset] {
		if b != 0xAA {
			t.Fatalf("byte %d of the headroom changed to %#x", i, b)
		}
	}
}

func TestMemoryDeviceInfo(t *testing.T) {
	m := NewMemory("mem0", 1422, 8)
	defer m.Close()
	if mtu, err := m.MTU(); mtu != 1422 || err != nil {
		t.Errorf("MTU() = %d, %v; want 1422, nil", mtu, err)
	}
	if name, err := m.Name(); name != "mem0" || err != nil {
		t.Errorf("Name() = %q, %v; want mem0, nil", name, err)
	}
	if got := m.BatchSize(); got != 8 {
		t.Errorf("BatchSize() = %d, want 8", got)
	}
	if f := m.File(); f != nil {
		t.Errorf("File() = %v, want nil", f)
	}
	select {
	case ev := <-m.Events():
		if ev != wgtun.EventUp {
			t.Errorf("first event = %d, want EventUp", ev)
		}
	default:
		t.Fatal("no event queued after NewMemory")
	}
	select {
	case ev := <-m.Events():
		t.Fatalf("second event %d before Close", ev)
	default:
	}
	m.Close()
	if _, ok := <-m.Events(); ok {
		t.Error("Events channel still open after Close")
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
}

func TestMemoryNewPanicsOnZeroBatch(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewMemory with batch size 0 did not panic")
		}
	}()
	NewMemory("mem0", 1500, 0)
}

func TestMemoryInjectRead(t *testing.T) {
	m := NewMemory("mem0", 1500, 4)
	defer m.Close()
	want := [][]byte{testPacket(1, 60), testPacket(2, 1500), testPacket(3, 1), {}}
	for _, p := range want {
		q := bytes.Clone(p)
		m.Inject(q)
		// Inject copies: changing the caller's slice afterwards must not show.
		clear(q)
	}
	bufs, sizes := testBufs(4, testOffset+1500)
	n, err := m.Read(bufs, sizes, testOffset)
	if err != nil || n != 4 {
		t.Fatalf("Read = %d, %v; want 4, nil", n, err)
	}
	for i := range n {
		if got := bufs[i][testOffset : testOffset+sizes[i]]; !bytes.Equal(got, want[i]) {
			t.Errorf("packet %d = %x, want %x", i, got, want[i])
		}
		checkHeadroom(t, bufs[i], testOffset)
	}
}

func TestMemoryReadBatching(t *testing.T) {
	m := NewMemory("mem0", 1500, 4)
	defer m.Close()
	for i := range 7 {
		m.Inject(testPacket(byte(i), 100+i))
	}
	bufs, sizes := testBufs(8, 1600)
	next := 0
	// The batch is capped by BatchSize, by len(bufs), and by what is queued.
	for _, tc := range []struct{ bufs, want int }{{8, 4}, {2, 2}, {8, 1}} {
		n, err := m.Read(bufs[:tc.bufs], sizes, testOffset)
		if err != nil || n != tc.want {
			t.Fatalf("Read of %d buffers = %d, %v; want %d, nil", tc.bufs, n, err, tc.want)
		}
		for i := range n {
			want := testPacket(byte(next), 100+next)
			if got := bufs[i][testOffset : testOffset+sizes[i]]; !bytes.Equal(got, want) {
				t.Fatalf("packet %d out of order or changed: got %d bytes, want packet of %d bytes", next, len(got), len(want))
			}
			next++
		}
	}
}

func TestMemoryReadTooLarge(t *testing.T) {
	m := NewMemory("mem0", 1500, 4)
	defer m.Close()
	small, large := testPacket(1, 100), testPacket(2, 1000)
	m.Inject(small)
	m.Inject(large)
	m.Inject(small)

	// The large packet does not fit the second buffer: it ends the batch
	// and is kept for the next Read.
	bufs := [][]byte{make([]byte, testOffset+2000), make([]byte, testOffset+500)}
	sizes := make([]int, 2)
	n, err := m.Read(bufs, sizes, testOffset)
	if err != nil || n != 1 || sizes[0] != len(small) {
		t.Fatalf("Read = %d, %v (size %d); want 1, nil (size %d)", n, err, sizes[0], len(small))
	}
	n, err = m.Read(bufs, sizes, testOffset)
	if err != nil || n != 2 {
		t.Fatalf("second Read = %d, %v; want 2, nil", n, err)
	}
	if !bytes.Equal(bufs[0][testOffset:testOffset+sizes[0]], large) ||
		!bytes.Equal(bufs[1][testOffset:testOffset+sizes[1]], small) {
		t.Fatal("second Read did not return the kept large packet and then the small one")
	}

	// A packet too large for the first buffer is dropped with an error.
	m.Inject(large)
	m.Inject(small)
	if n, err := m.Read(bufs[1:], sizes, testOffset); err == nil || n != 0 {
		t.Fatalf("Read of an oversized packet = %d, %v; want 0 and an error", n, err)
	}
	n, err = m.Read(bufs[1:], sizes, testOffset)
	if err != nil || n != 1 || !bytes.Equal(bufs[1][testOffset:testOffset+sizes[0]], small) {
		t.Fatalf("Read after the dropped packet = %d, %v; want the small packet", n, err)
	}
}

func TestMemoryWriteOutput(t *testing.T) {
	m := NewMemory("mem0", 1500, 4)
	defer m.Close()
	want := [][]byte{testPacket(7, 40), testPacket(8, 1400), testPacket(9, 20)}
	bufs := make([][]byte, len(want))
	for i, p := range want {
		bufs[i] = append(bytes.Repeat([]byte{0xAA}, testOffset), p...)
	}
	n, err := m.Write(bufs, testOffset)
	if err != nil || n != len(want) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(want))
	}
	// Write copies: the caller may reuse its buffers at once.
	for _, b := range bufs {
		clear(b)
	}
	for i, p := range want {
		select {
		case got := <-m.Output():
			if !bytes.Equal(got, p) {
				t.Errorf("output packet %d = %x, want %x", i, got, p)
			}
		default:
			t.Fatalf("output packet %d missing", i)
		}
	}
	select {
	case got := <-m.Output():
		t.Fatalf("unexpected extra output packet %x", got)
	default:
	}
}

func TestMemoryClose(t *testing.T) {
	m := NewMemory("mem0", 1500, 4)

	// A Read waiting for a packet, an Inject waiting for room and a Write
	// waiting for room are all released by Close.
	for range memoryQueueLen {
		m.Inject([]byte{1})
	}
	for range memoryQueueLen {
		if _, err := m.Write([][]byte{{1}}, 0); err != nil {
			t.Fatal(err)
		}
	}
	reader := NewMemory("mem1", 1500, 4)
	var wg sync.WaitGroup
	results := make(chan error, 3)
	wg.Add(3)
	go func() {
		defer wg.Done()
		bufs, sizes := testBufs(4, 100)
		_, err := reader.Read(bufs, sizes, 0)
		results <- err
	}()
	go func() {
		defer wg.Done()
		m.Inject([]byte{2})
		results <- nil
	}()
	go func() {
		defer wg.Done()
		n, err := m.Write([][]byte{{2}}, 0)
		if n != 0 {
			err = errors.New("blocked Write reported a packet written")
		}
		results <- err
	}()

	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-results:
		t.Fatalf("an operation returned before Close: %v", err)
	default:
	}
	m.Close()
	reader.Close()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release blocked Read, Inject and Write")
	}
	close(results)
	var closedErrs int
	for err := range results {
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				t.Errorf("blocked call returned %v, want os.ErrClosed", err)
			}
			closedErrs++
		}
	}
	if closedErrs != 2 {
		t.Errorf("%d of Read and Write returned os.ErrClosed, want 2", closedErrs)
	}

	// After Close nothing blocks and queued packets are not returned.
	bufs, sizes := testBufs(1, 100)
	if _, err := m.Read(bufs, sizes, 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close = %v, want os.ErrClosed", err)
	}
	if _, err := m.Write(bufs, 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close = %v, want os.ErrClosed", err)
	}
	m.Inject([]byte{3}) // must not block
}

// TestMemoryConcurrent has several goroutines inject and read at once and
// checks that every packet arrives exactly once.
func TestMemoryConcurrent(t *testing.T) {
	const writers, perWriter = 4, 2000
	m := NewMemory("mem0", 1500, 16)
	defer m.Close()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				m.Inject([]byte{byte(w), byte(i >> 8), byte(i)})
			}
		})
	}
	seen := make(map[[3]byte]bool)
	var mu sync.Mutex
	var readers sync.WaitGroup
	total := make(chan struct{})
	for range 2 {
		readers.Go(func() {
			bufs, sizes := testBufs(16, 16)
			for {
				n, err := m.Read(bufs, sizes, 4)
				if err != nil {
					return
				}
				mu.Lock()
				for i := range n {
					var k [3]byte
					copy(k[:], bufs[i][4:4+sizes[i]])
					if seen[k] {
						t.Errorf("packet %x read twice", k)
					}
					seen[k] = true
				}
				if len(seen) == writers*perWriter {
					close(total)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	select {
	case <-total:
	case <-time.After(10 * time.Second):
		t.Fatal("not every injected packet was read")
	}
	m.Close()
	readers.Wait()
}

func TestMemorySourceSink(t *testing.T) {
	m := NewMemory("mem0", 1500, 8)
	defer m.Close()
	var made int
	m.SetSource(func(buf []byte) int {
		if made == 5 {
			return 0
		}
		p := testPacket(byte(made), 50+made)
		made++
		return copy(buf, p)
	})
	bufs, sizes := testBufs(8, 200)
	n, err := m.Read(bufs, sizes, testOffset)
	if err != nil || n != 5 {
		t.Fatalf("Read from source = %d, %v; want 5 (the source ended the batch), nil", n, err)
	}
	for i := range n {
		if got, want := bufs[i][testOffset:testOffset+sizes[i]], testPacket(byte(i), 50+i); !bytes.Equal(got, want) {
			t.Errorf("packet %d = %x, want %x", i, got, want)
		}
		checkHeadroom(t, bufs[i], testOffset)
	}

	var got [][]byte
	m.SetSink(func(pkt []byte) { got = append(got, bytes.Clone(pkt)) })
	if n, err := m.Write(bufs[:n], testOffset); err != nil || n != 5 {
		t.Fatalf("Write to sink = %d, %v; want 5, nil", n, err)
	}
	for i := range got {
		// The sink sees the packet from the offset to the end of the buffer.
		if want := bufs[i][testOffset:]; !bytes.Equal(got[i], want) {
			t.Errorf("sink packet %d = %x, want %x", i, got[i], want)
		}
	}
	select {
	case <-m.Output():
		t.Error("Write with a sink also sent to Output")
	default:
	}

	// Clearing the source and sink goes back to Inject and Output.
	m.SetSource(nil)
	m.SetSink(nil)
	m.Inject([]byte{9, 9})
	if n, err := m.Read(bufs, sizes, 0); err != nil || n != 1 || sizes[0] != 2 {
		t.Fatalf("Read after SetSource(nil) = %d, %v; want the injected packet", n, err)
	}
	if _, err := m.Write(bufs[:1], 190); err != nil {
		t.Fatal(err)
	}
	if p := <-m.Output(); len(p) != 10 {
		t.Fatalf("Output after SetSink(nil) got %d bytes, want 10", len(p))
	}
}

func TestMemorySourceTooLongPanics(t *testing.T) {
	m := NewMemory("mem0", 1500, 1)
	defer m.Close()
	m.SetSource(func(buf []byte) int { return len(buf) + 1 })
	defer func() {
		if recover() == nil {
			t.Error("source returning more than len(buf) did not panic")
		}
	}()
	bufs, sizes := testBufs(1, 100)
	m.Read(bufs, sizes, 0)
}

func TestMemorySourceSinkAllocs(t *testing.T) {
	const batch = 64
	m := NewMemory("mem0", 1500, batch)
	defer m.Close()
	pkt := testPacket(0, 1400)
	m.SetSource(func(buf []byte) int { return copy(buf, pkt) })
	var sunk int
	m.SetSink(func(p []byte) { sunk += len(p) })
	bufs, sizes := testBufs(batch, testOffset+1500)
	out := make([][]byte, batch)
	allocs := testing.AllocsPerRun(100, func() {
		n, err := m.Read(bufs, sizes, testOffset)
		if err != nil || n != batch {
			t.Fatalf("Read = %d, %v", n, err)
		}
		for i := range n {
			out[i] = bufs[i][:testOffset+sizes[i]]
		}
		if _, err := m.Write(out[:n], testOffset); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Read+Write with source and sink allocated %v times per batch, want 0", allocs)
	}
	if sunk == 0 || sunk%len(pkt) != 0 {
		t.Errorf("sink received %d bytes, not a whole number of %d-byte packets", sunk, len(pkt))
	}
}

func BenchmarkMemorySourceSink(b *testing.B) {
	const batch = 128
	m := NewMemory("mem0", 1500, batch)
	defer m.Close()
	pkt := testPacket(0, 1400)
	m.SetSource(func(buf []byte) int { return copy(buf, pkt) })
	m.SetSink(func([]byte) {})
	bufs, sizes := testBufs(batch, testOffset+1500)
	out := make([][]byte, batch)
	b.SetBytes(int64(batch * len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		n, _ := m.Read(bufs, sizes, testOffset)
		for i := range n {
			out[i] = bufs[i][:testOffset+sizes[i]]
		}
		m.Write(out[:n], testOffset)
	}
}
