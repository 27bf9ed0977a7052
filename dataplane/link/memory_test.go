package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
)

var (
	memA = netip.MustParseAddrPort("192.0.2.1:4500")
	memB = netip.MustParseAddrPort("192.0.2.2:4500")
)

// openPair returns an opened Memory pair with the ReceiveFunc of each end;
// both are closed when the test ends.
func openPair(t *testing.T) (a, b *Memory, recvA, recvB conn.ReceiveFunc) {
	t.Helper()
	a, b = NewMemoryPair(memA, memB)
	for _, m := range []*Memory{a, b} {
		fns, port, err := m.Open(0)
		if err != nil {
			t.Fatal(err)
		}
		if len(fns) != 1 || port != m.local.Port() {
			t.Fatalf("Open: %d ReceiveFuncs, port %d; want 1, %d", len(fns), port, m.local.Port())
		}
		if m == a {
			recvA = fns[0]
		} else {
			recvB = fns[0]
		}
		t.Cleanup(func() { m.Close() })
	}
	return a, b, recvA, recvB
}

// packet returns a fake ESP packet: SPI, sequence number seq, then size-8
// bytes derived from seq.
func packet(spi, seq uint32, size int) []byte {
	p := make([]byte, size)
	binary.BigEndian.PutUint32(p[0:], spi)
	binary.BigEndian.PutUint32(p[4:], seq)
	for i := 8; i < size; i++ {
		p[i] = byte(seq) + byte(i)
	}
	return p
}

// buffers returns n receive buffers of size bytes, with sizes and eps.
func buffers(n, size int) ([][]byte, []int, []conn.Endpoint) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs, make([]int, n), make([]conn.Endpoint, n)
}

func mustParse(t *testing.T, b conn.Bind, s string) conn.Endpoint {
	t.Helper()
	ep, err := b.ParseEndpoint(s)
	if err != nil {
		t.Fatalf("ParseEndpoint(%q): %v", s, err)
	}
	return ep
}

func TestMemoryBothDirections(t *testing.T) {
	a, b, recvA, recvB := openPair(t)
	for _, dir := range []struct {
		name     string
		from     *Memory
		to       netip.AddrPort
		recv     conn.ReceiveFunc
		wantFrom netip.AddrPort
	}{
		{"a→b", a, memB, recvB, memA},
		{"b→a", b, memA, recvA, memB},
	} {
		t.Run(dir.name, func(t *testing.T) {
			want := [][]byte{packet(1, 1, 60), packet(1, 2, 1400), packet(1, 3, 9)}
			if err := dir.from.Send(want, mustParse(t, dir.from, dir.to.String())); err != nil {
				t.Fatal(err)
			}
			bufs, sizes, eps := buffers(conn.IdealBatchSize, 2000)
			n, err := dir.recv(bufs, sizes, eps)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(want) {
				t.Fatalf("received %d packets, want %d", n, len(want))
			}
			for i := range n {
				if !bytes.Equal(bufs[i][:sizes[i]], want[i]) {
					t.Errorf("packet %d: got %x, want %x", i, bufs[i][:sizes[i]], want[i])
				}
				e, ok := eps[i].(*Endpoint)
				if !ok || e.AddrPort() != dir.wantFrom {
					t.Errorf("packet %d: endpoint %v, want %v", i, eps[i], dir.wantFrom)
				}
			}
			if got := dir.from.Sent(); got != uint64(len(want)) {
				t.Errorf("Sent() = %d, want %d", got, len(want))
			}
		})
	}
}

// TestMemoryOrderAndBatches sends 5000 numbered packets in batches of
// varying size while the peer receives into batches of another size, and
// checks that every packet arrives once, intact and in order.
func TestMemoryOrderAndBatches(t *testing.T) {
	a, _, _, recvB := openPair(t)
	const total = 5000
	ep := mustParse(t, a, memB.String())
	errc := make(chan error, 1)
	go func() {
		var batch [][]byte
		seq := uint32(0)
		for seq < total {
			batch = batch[:0]
			for range 1 + int(seq)%conn.IdealBatchSize {
				if seq == total {
					break
				}
				batch = append(batch, packet(7, seq, 16+int(seq)%1500))
				seq++
			}
			if err := a.Send(batch, ep); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	bufs, sizes, eps := buffers(37, 2048)
	var next uint32
	maxBatch := 0
	for next < total {
		n, err := recvB(bufs, sizes, eps)
		if err != nil {
			t.Fatal(err)
		}
		maxBatch = max(maxBatch, n)
		for i := range n {
			if want := packet(7, next, 16+int(next)%1500); !bytes.Equal(bufs[i][:sizes[i]], want) {
				t.Fatalf("packet %d: got %x..., want %x...", next, bufs[i][:min(sizes[i], 8)], want[:8])
			}
			if eps[i].DstIP() != memA.Addr() {
				t.Fatalf("packet %d from %v, want %v", next, eps[i].DstIP(), memA.Addr())
			}
			next++
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if a.Sent() != total {
		t.Errorf("Sent() = %d, want %d", a.Sent(), total)
	}
	t.Logf("largest batch received: %d", maxBatch)
}

func TestMemoryReceiveAsManyAsFit(t *testing.T) {
	a, _, _, recvB := openPair(t)
	var pkts [][]byte
	for i := range 10 {
		pkts = append(pkts, packet(1, uint32(i), 100))
	}
	if err := a.Send(pkts, mustParse(t, a, memB.String())); err != nil {
		t.Fatal(err)
	}
	bufs, sizes, eps := buffers(4, 100)
	seq := 0
	for _, want := range []int{4, 4, 2} {
		n, err := recvB(bufs, sizes, eps)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Fatalf("received %d packets, want %d", n, want)
		}
		for i := range n {
			if !bytes.Equal(bufs[i][:sizes[i]], pkts[seq]) {
				t.Fatalf("packet %d corrupted", seq)
			}
			seq++
		}
	}
}

func TestMemoryTruncates(t *testing.T) {
	a, _, _, recvB := openPair(t)
	p := packet(1, 1, 100)
	if err := a.Send([][]byte{p}, mustParse(t, a, memB.String())); err != nil {
		t.Fatal(err)
	}
	bufs, sizes, eps := buffers(1, 30)
	n, err := recvB(bufs, sizes, eps)
	if err != nil || n != 1 {
		t.Fatalf("receive: %d, %v", n, err)
	}
	if sizes[0] != 30 || !bytes.Equal(bufs[0], p[:30]) {
		t.Errorf("got %d bytes %x, want the first 30 of %x", sizes[0], bufs[0][:sizes[0]], p)
	}
}

func TestMemoryCloseUnblocksReceive(t *testing.T) {
	a, b, _, recvB := openPair(t)
	errc := make(chan error, 1)
	go func() {
		bufs, sizes, eps := buffers(4, 100)
		_, err := recvB(bufs, sizes, eps)
		errc <- err
	}()
	select {
	case err := <-errc:
		t.Fatalf("receive returned %v with nothing sent", err)
	case <-time.After(20 * time.Millisecond):
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("receive after Close: %v, want net.ErrClosed", err)
	}
	// A closed end refuses to send; reopened, it works again, and the
	// ReceiveFunc of the first Open stays closed.
	if err := b.Send([][]byte{{1}}, mustParse(t, b, memA.String())); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Send on closed end: %v, want net.ErrClosed", err)
	}
	fns, _, err := b.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Open(0); !errors.Is(err, conn.ErrBindAlreadyOpen) {
		t.Fatalf("second Open: %v, want ErrBindAlreadyOpen", err)
	}
	bufs, sizes, eps := buffers(4, 100)
	if _, err := recvB(bufs, sizes, eps); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("old ReceiveFunc after reopen: %v, want net.ErrClosed", err)
	}
	if err := a.Send([][]byte{packet(2, 2, 20)}, a.peerEP); err != nil {
		t.Fatal(err)
	}
	n, err := fns[0](bufs, sizes, eps)
	if err != nil || n != 1 || !bytes.Equal(bufs[0][:sizes[0]], packet(2, 2, 20)) {
		t.Fatalf("new ReceiveFunc after reopen: %d packets, %v", n, err)
	}
}

// fill queues memorySlots packets from a to b without receiving them.
func fill(t *testing.T, a *Memory) conn.Endpoint {
	t.Helper()
	ep := mustParse(t, a, memB.String())
	batch := make([][]byte, conn.IdealBatchSize)
	for seq := 0; seq < memorySlots; seq += len(batch) {
		for i := range batch {
			batch[i] = packet(3, uint32(seq+i), 64)
		}
		if err := a.Send(batch, ep); err != nil {
			t.Fatal(err)
		}
	}
	return ep
}

func TestMemoryBlocksWhenFull(t *testing.T) {
	a, _, _, recvB := openPair(t)
	ep := fill(t, a)
	done := make(chan error, 1)
	go func() {
		done <- a.Send([][]byte{packet(3, memorySlots, 64), packet(3, memorySlots+1, 64)}, ep)
	}()
	select {
	case err := <-done:
		t.Fatalf("Send to a full queue returned %v instead of blocking", err)
	case <-time.After(50 * time.Millisecond):
	}
	bufs, sizes, eps := buffers(conn.IdealBatchSize, 100)
	n, err := recvB(bufs, sizes, eps)
	if err != nil || n != conn.IdealBatchSize {
		t.Fatalf("receive: %d, %v", n, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("blocked Send: %v", err)
	}
	// Nothing was dropped: the rest, then the two late packets, in order.
	next := uint32(n)
	for next < memorySlots+2 {
		n, err := recvB(bufs, sizes, eps)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if got := binary.BigEndian.Uint32(bufs[i][4:]); got != next {
				t.Fatalf("got packet %d, want %d", got, next)
			}
			next++
		}
	}
	if a.Sent() != memorySlots+2 {
		t.Errorf("Sent() = %d, want %d", a.Sent(), memorySlots+2)
	}
}

func TestMemoryCloseUnblocksSend(t *testing.T) {
	t.Run("sender closed", func(t *testing.T) {
		a, _, _, _ := openPair(t)
		ep := fill(t, a)
		done := make(chan error, 1)
		go func() { done <- a.Send([][]byte{{1, 2, 3}}, ep) }()
		time.Sleep(20 * time.Millisecond)
		a.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked Send after its end closed: %v, want net.ErrClosed", err)
		}
	})
	t.Run("receiver closed", func(t *testing.T) {
		a, b, _, _ := openPair(t)
		ep := fill(t, a)
		done := make(chan error, 1)
		go func() { done <- a.Send([][]byte{{1, 2, 3}}, ep) }()
		time.Sleep(20 * time.Millisecond)
		b.Close()
		// The peer is down: the packet is discarded, as on a cable.
		if err := <-done; err != nil {
			t.Fatalf("blocked Send after the peer closed: %v, want nil", err)
		}
		// Reopened, the peer starts empty.
		fns, _, err := b.Open(0)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Send([][]byte{packet(9, 9, 30)}, ep); err != nil {
			t.Fatal(err)
		}
		bufs, sizes, eps := buffers(conn.IdealBatchSize, 100)
		n, err := fns[0](bufs, sizes, eps)
		if err != nil || n != 1 || !bytes.Equal(bufs[0][:sizes[0]], packet(9, 9, 30)) {
			t.Fatalf("after reopen: %d packets, %v; want only the new one", n, err)
		}
	})
}

func TestMemoryEndpoints(t *testing.T) {
	a, _, _, _ := openPair(t)
	// The peer's address, with or without its port, is the peer's endpoint.
	for _, s := range []string{"192.0.2.2:4500", "192.0.2.2", "::ffff:192.0.2.2"} {
		if ep := mustParse(t, a, s); ep != conn.Endpoint(a.peerEP) {
			t.Errorf("ParseEndpoint(%q) = %v, want the peer's endpoint", s, ep)
		}
	}
	if err := a.Send([][]byte{{1}}, mustParse(t, a, "192.0.2.2")); err != nil {
		t.Errorf("Send to the peer's address without port: %v", err)
	}
	for _, s := range []string{"192.0.2.3:4500", "192.0.2.2:500", "[2001:db8::2]:4500"} {
		if err := a.Send([][]byte{{1}}, mustParse(t, a, s)); err == nil {
			t.Errorf("Send to %s: no error, want no route", s)
		}
	}
	if err := a.Send([][]byte{{1}}, &conn.StdNetEndpoint{AddrPort: memB}); !errors.Is(err, conn.ErrWrongEndpointType) {
		t.Errorf("Send to a StdNetEndpoint: %v, want ErrWrongEndpointType", err)
	}
	if err := a.Send([][]byte{make([]byte, memoryMaxPacket+1)}, a.peerEP); err == nil {
		t.Error("Send of a 65536-byte packet: no error")
	}
	for _, s := range []string{"", "192.0.2", "host:1", "192.0.2.2:99999"} {
		if _, err := a.ParseEndpoint(s); err == nil {
			t.Errorf("ParseEndpoint(%q): no error", s)
		}
	}
}

func TestMemoryLoss(t *testing.T) {
	a, _, _, recvB := openPair(t)
	a.SetLoss(3)
	var pkts [][]byte
	for i := range 9 {
		pkts = append(pkts, packet(1, uint32(i+1), 20))
	}
	if err := a.Send(pkts, a.peerEP); err != nil {
		t.Fatal(err)
	}
	bufs, sizes, eps := buffers(conn.IdealBatchSize, 100)
	n, err := recvB(bufs, sizes, eps)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint32
	for i := range n {
		got = append(got, binary.BigEndian.Uint32(bufs[i][4:]))
	}
	if want := []uint32{1, 2, 4, 5, 7, 8}; !equalU32(got, want) {
		t.Errorf("received %v, want %v (every 3rd dropped)", got, want)
	}
	if a.Sent() != 9 {
		t.Errorf("Sent() = %d, want 9", a.Sent())
	}
}

func equalU32(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMemoryAllocs(t *testing.T) {
	a, _, _, recvB := openPair(t)
	send := make([][]byte, conn.IdealBatchSize)
	for i := range send {
		send[i] = packet(5, uint32(i), 1400)
	}
	bufs, sizes, eps := buffers(conn.IdealBatchSize, 1500)
	ep := a.peerEP
	roundTrip := func() {
		if err := a.Send(send, ep); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < len(send); {
			n, err := recvB(bufs, sizes, eps)
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	}
	// The first trips through the queue give its slots their buffers.
	for range memorySlots/conn.IdealBatchSize + 1 {
		roundTrip()
	}
	if allocs := testing.AllocsPerRun(100, roundTrip); allocs != 0 {
		t.Errorf("Send+receive of a batch of %d: %v allocations, want 0", len(send), allocs)
	}
}

func BenchmarkMemory(b *testing.B) {
	ma, mb := NewMemoryPair(memA, memB)
	if _, _, err := ma.Open(0); err != nil {
		b.Fatal(err)
	}
	fns, _, err := mb.Open(0)
	if err != nil {
		b.Fatal(err)
	}
	defer ma.Close()
	defer mb.Close()
	send := make([][]byte, conn.IdealBatchSize)
	for i := range send {
		send[i] = packet(5, uint32(i), 1400)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		bufs, sizes, eps := buffers(conn.IdealBatchSize, 1500)
		for {
			if _, err := fns[0](bufs, sizes, eps); err != nil {
				return
			}
		}
	}()
	b.SetBytes(int64(len(send) * 1400))
	b.ReportAllocs()
	for b.Loop() {
		if err := ma.Send(send, ma.peerEP); err != nil {
			b.Fatal(err)
		}
	}
	mb.Close()
	<-done
}

func TestMemoryLargePacket(t *testing.T) {
	a, _, _, recvB := openPair(t)
	if got := a.BatchSize(); got != conn.IdealBatchSize {
		t.Errorf("BatchSize = %d, want %d", got, conn.IdealBatchSize)
	}
	want := [][]byte{packet(1, 1, 100), packet(1, 2, memoryMaxPacket), packet(1, 3, 5000)}
	if err := a.Send(want, a.peerEP); err != nil {
		t.Fatal(err)
	}
	bufs, sizes, eps := buffers(conn.IdealBatchSize, memoryMaxPacket)
	n, err := recvB(bufs, sizes, eps)
	if err != nil || n != len(want) {
		t.Fatalf("receive: %d, %v", n, err)
	}
	for i := range n {
		if !bytes.Equal(bufs[i][:sizes[i]], want[i]) {
			t.Errorf("packet %d (%d bytes) corrupted: got %d bytes", i, len(want[i]), sizes[i])
		}
	}
}
