package benchrun

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/dataplane/link"
	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/tun"
)

// memoryWindow is how many packets the memory runner keeps in flight, as
// bench/pipeline_test.go does: a gateway drops what is beyond a tunnel's
// inbound share rather than hold up its socket.
const memoryWindow = 2048

// Outer and inner addresses of the in-process pair.
var (
	memOuterA = netip.MustParseAddr("192.0.2.1")
	memOuterB = netip.MustParseAddr("192.0.2.2")
	memInnerA = [4]byte{10, 255, 0, 1}
	memInnerB = [4]byte{10, 255, 0, 2}
)

// memoryRunner runs two dataplane.Devices in this process joined by
// link.NewMemoryPair, each tunnel on a tun.Memory whose source is a
// memSource and whose sink counts.
type memoryRunner struct {
	da, db     *dataplane.Device
	ta, tb     *dataplane.Tunnel
	tunA, tunB *tun.Memory
	srcA, srcB *memSource
	rxA, rxB   atomic.Uint64 // packets delivered to A's and B's TUN device
	credit     chan struct{} // the sinks' nudge to a source waiting for its window
	quit       chan struct{} // closed by teardown: idle sources return
}

func newMemoryRunner() *memoryRunner { return &memoryRunner{} }

// memSource is the source function of one tun.Memory: it blocks until a
// phase starts, then produces copies of the phase's packet, at most
// memoryWindow ahead of what the receiver counted, until the phase is
// stopped. fill is only called by the device's TUN reader goroutine.
type memSource struct {
	phases chan *memPhase
	quit   <-chan struct{}
	cur    *memPhase
}

// memPhase is one direction's measurement as its source sees it.
type memPhase struct {
	pkt     []byte
	stop    atomic.Bool // set by measure when the measurement is over
	sent    atomic.Uint64
	done    chan struct{} // closed by the source when the phase ends
	settled func() uint64 // packets delivered or dropped at the receiver
	credit  chan struct{} // a nudge that the window may have moved
}

func (s *memSource) fill(buf []byte) int {
	if s.cur == nil {
		select {
		case s.cur = <-s.phases:
		case <-s.quit:
			return 0
		}
	}
	p := s.cur
	for {
		if p.stop.Load() {
			s.cur = nil
			close(p.done)
			return 0
		}
		if int64(p.sent.Load())-int64(p.settled()) <= memoryWindow {
			break
		}
		select {
		case <-p.credit:
		case <-time.After(time.Millisecond):
		case <-s.quit:
			return 0
		}
	}
	p.sent.Add(1)
	return copy(buf, p.pkt)
}

func (r *memoryRunner) setup(_ context.Context, transport string, tr esp.Transform) error {
	key := func(n int) []byte {
		k := make([]byte, n)
		rand.Read(k)
		return k
	}
	ab := esp.Config{SPI: 0x1001, Algorithm: tr.Algorithm, Integrity: tr.Integrity, Key: key(tr.Algorithm.KeyLen()), ESN: true}
	ba := esp.Config{SPI: 0x1002, Algorithm: tr.Algorithm, Integrity: tr.Integrity, Key: key(tr.Algorithm.KeyLen()), ESN: true}
	if tr.Integrity != esp.IntegrityNone {
		ab.AuthKey, ba.AuthKey = key(tr.Integrity.KeyLen()), key(tr.Integrity.KeyLen())
	}
	dt := dataplane.TransportESP
	if transport == TransportUDP {
		dt = dataplane.TransportUDP
	}
	abIn, baIn := ab, ba
	ca := dataplane.TunnelConfig{Name: "a", Mode: dataplane.ModeGRETransport, Transport: dt, Local: memOuterA, Peer: memOuterB,
		MSSClamp: true, Outbound: &ab, Inbound: &baIn}
	cb := dataplane.TunnelConfig{Name: "b", Mode: dataplane.ModeGRETransport, Transport: dt, Local: memOuterB, Peer: memOuterA,
		MSSClamp: true, Outbound: &ba, Inbound: &abIn}
	mtu, err := dataplane.ResolveMTU(&ca)
	if err != nil {
		return fmt.Errorf("benchrun: %w", err)
	}
	if _, err := dataplane.ResolveMTU(&cb); err != nil {
		return fmt.Errorf("benchrun: %w", err)
	}

	la, lb := link.NewMemoryPair(netip.AddrPortFrom(memOuterA, 4500), netip.AddrPortFrom(memOuterB, 4500))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r.da = dataplane.NewDevice(dataplane.Options{Logger: log, Bind: func(dataplane.Transport, netip.Addr, uint16) (conn.Bind, error) { return la, nil }})
	r.db = dataplane.NewDevice(dataplane.Options{Logger: log, Bind: func(dataplane.Transport, netip.Addr, uint16) (conn.Bind, error) { return lb, nil }})
	r.quit = make(chan struct{})
	r.srcA = &memSource{phases: make(chan *memPhase), quit: r.quit}
	r.srcB = &memSource{phases: make(chan *memPhase), quit: r.quit}
	r.rxA.Store(0)
	r.rxB.Store(0)
	r.tunA = tun.NewMemory("a", mtu, conn.IdealBatchSize)
	r.tunB = tun.NewMemory("b", mtu, conn.IdealBatchSize)
	r.tunA.SetSource(r.srcA.fill)
	r.tunB.SetSource(r.srcB.fill)
	r.credit = make(chan struct{}, 1)
	sink := func(rx *atomic.Uint64) func([]byte) {
		return func([]byte) {
			if rx.Add(1)%64 == 0 {
				select {
				case r.credit <- struct{}{}:
				default:
				}
			}
		}
	}
	r.tunA.SetSink(sink(&r.rxA))
	r.tunB.SetSink(sink(&r.rxB))
	if r.tb, err = r.db.AddTunnel(cb, r.tunB); err != nil {
		r.teardown()
		return fmt.Errorf("benchrun: %w", err)
	}
	if r.ta, err = r.da.AddTunnel(ca, r.tunA); err != nil {
		r.teardown()
		return fmt.Errorf("benchrun: %w", err)
	}
	return nil
}

func (r *memoryRunner) measure(ctx context.Context, size int, reverse bool, warmup, d time.Duration, row *Row) error {
	src, rx, dst, dstDev := r.srcA, &r.rxB, r.tb, r.db
	from, to := memInnerA, memInnerB
	if reverse {
		src, rx, dst, dstDev = r.srcB, &r.rxA, r.ta, r.da
		from, to = to, from
	}
	dropped := func() uint64 { return dst.Stats().QueueFull.Load() + dstDev.Stats().NoBuffer.Load() }
	rx0, drop0 := rx.Load(), dropped()
	p := &memPhase{
		pkt:    udpPacket(size, from, to),
		done:   make(chan struct{}),
		credit: r.credit,
	}
	p.settled = func() uint64 { return rx.Load() - rx0 + dropped() - drop0 }
	select {
	case src.phases <- p:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := sleepCtx(ctx, warmup); err != nil {
		return err
	}
	t0, rxStart, sentStart, cpu0 := time.Now(), rx.Load(), p.sent.Load(), processCPU()
	err := measureWindow(ctx, d, rx)
	elapsed, received, sent, cpu := time.Since(t0), rx.Load()-rxStart, p.sent.Load()-sentStart, processCPU()-cpu0
	p.stop.Store(true)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("the in-memory source did not stop")
	case <-ctx.Done():
		return ctx.Err()
	}
	// Let the packets in flight land before the next phase counts.
	waitQuiet(rx, 2*time.Second)
	fillRow(row, size, elapsed, sent, received)
	if received == 0 {
		srcT := r.ta
		if reverse {
			srcT = r.tb
		}
		return fmt.Errorf("nothing arrived: %d packets offered in the phase, %d settled; sender %v; receiver %v",
			p.sent.Load(), p.settled(), srcT.Stats(), dst.Stats())
	}
	row.CPUSender = cpu.Seconds() / elapsed.Seconds()
	return nil
}

// maxStretch bounds how long a measurement waits for its first packet.
const maxStretch = 30 * time.Second

// measureWindow waits d; if by then no packet has been counted in c since
// it was called (the process starved by other work on a loaded host), it
// waits on in steps of d, up to maxStretch, so that a measurement never
// reads zero only for want of CPU time. The load runs until the caller
// stops it after measureWindow returns.
func measureWindow(ctx context.Context, d time.Duration, c *atomic.Uint64) error {
	start, c0 := time.Now(), c.Load()
	for {
		if err := sleepCtx(ctx, d); err != nil {
			return err
		}
		if c.Load() != c0 || time.Since(start) > maxStretch {
			return nil
		}
	}
}

// waitQuiet waits until c has not changed for 20 ms, or timeout.
func waitQuiet(c *atomic.Uint64, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	last := c.Load()
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n := c.Load()
		if n == last {
			return
		}
		last = n
	}
}

// measureTCP is not possible in memory mode: there is no TCP stack on the
// in-memory TUN devices.
func (r *memoryRunner) measureTCP(context.Context, bool, time.Duration, *Row) error {
	return errors.New("benchrun: no TCP in memory mode")
}

func (r *memoryRunner) teardown() {
	for _, t := range []*tun.Memory{r.tunA, r.tunB} {
		if t != nil {
			t.Close()
		}
	}
	if r.quit != nil {
		close(r.quit)
		r.quit = nil
	}
	for _, d := range []*dataplane.Device{r.da, r.db} {
		if d != nil {
			d.Close()
		}
	}
	*r = memoryRunner{}
}

func (r *memoryRunner) close() error { return nil }

// fillRow fills in the rates of row.
func fillRow(row *Row, size int, elapsed time.Duration, sent, received uint64) {
	row.Seconds = elapsed.Seconds()
	row.Sent, row.Received = sent, received
	row.PacketsPS = float64(received) / elapsed.Seconds()
	row.Gbps = row.PacketsPS * float64(size) * 8 / 1e9
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// udpPacket returns an IPv4 UDP packet of size bytes from src to dst.
func udpPacket(size int, src, dst [4]byte) []byte {
	pkt := make([]byte, size)
	ip := header.IPv4(pkt)
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(size), TTL: 64, Protocol: uint8(header.UDPProtocolNumber),
		SrcAddr: tcpip.AddrFrom4(src), DstAddr: tcpip.AddrFrom4(dst)})
	ip.SetChecksum(^ip.CalculateChecksum())
	header.UDP(pkt[header.IPv4MinimumSize:]).Encode(&header.UDPFields{SrcPort: 4000, DstPort: 5000,
		Length: uint16(size - header.IPv4MinimumSize)})
	return pkt
}
