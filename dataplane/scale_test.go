package dataplane

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/greipsec/greipsec/dataplane/link"
	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/tun"
)

// The tests in this file are the review's M3 and N5: many tunnels in one
// process, and one tunnel whose TUN device stalls.

// manyTunnels is two Devices with n tunnels between them.
type manyTunnels struct {
	a, b       *Device
	ta, tb     []*Tunnel
	tunA, tunB []*tun.Memory
}

// newManyTunnels makes n gre-transport tunnels between two Devices. With
// shared, all use one ESP-in-UDP socket on each side (one in-memory link);
// otherwise tunnel k has its own outer addresses, so its own raw ESP socket
// and receiver on each side, as in the review's appendix A.2.
func newManyTunnels(t testing.TB, n int, shared bool) *manyTunnels {
	return newManyTunnelsWith(t, n, shared, nil)
}

// newManyTunnelsWith is newManyTunnels, calling before (if not nil) for
// each tunnel k with its TUN devices before the tunnel starts.
func newManyTunnelsWith(t testing.TB, n int, shared bool, before func(k int, a, b *tun.Memory)) *manyTunnels {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	outer := func(side, k int) netip.Addr {
		if shared {
			return netip.AddrFrom4([4]byte{192, 0, 2, byte(side)})
		}
		return netip.AddrFrom4([4]byte{10, byte(side), byte(k >> 8), byte(k)})
	}
	links := map[netip.Addr]*link.Memory{}
	for k := range n {
		la, lb := link.NewMemoryPair(netip.AddrPortFrom(outer(1, k), DefaultUDPPort), netip.AddrPortFrom(outer(2, k), DefaultUDPPort))
		links[outer(1, k)], links[outer(2, k)] = la, lb
		if shared {
			break
		}
	}
	bind := func(_ Transport, local netip.Addr, _ uint16) (conn.Bind, error) {
		if l, ok := links[local]; ok {
			return l, nil
		}
		return nil, fmt.Errorf("no link at %v", local)
	}
	bindB := bind
	if shared { // one wildcard UDP socket per side
		bind = func(Transport, netip.Addr, uint16) (conn.Bind, error) { return links[outer(1, 0)], nil }
		bindB = func(Transport, netip.Addr, uint16) (conn.Bind, error) { return links[outer(2, 0)], nil }
	}
	m := &manyTunnels{
		a: NewDevice(Options{Logger: log, Bind: bind}),
		b: NewDevice(Options{Logger: log, Bind: bindB}),
	}
	t.Cleanup(func() {
		m.a.Close()
		m.b.Close()
	})
	transport := TransportESP
	if shared {
		transport = TransportUDP
	}
	for k := range n {
		key := func(seed byte) []byte {
			b := testKey(esp.AES128GCM16, seed)
			b[0], b[1] = byte(k), byte(k>>8)
			return b
		}
		ab := esp.Config{SPI: uint32(0x10000 + 2*k), Algorithm: esp.AES128GCM16, Key: key(1)}
		ba := esp.Config{SPI: uint32(0x10001 + 2*k), Algorithm: esp.AES128GCM16, Key: key(100)}
		ca := TunnelConfig{Name: fmt.Sprintf("t%d", k), Mode: ModeGRETransport, Transport: transport,
			Local: outer(1, k), Peer: outer(2, k), Outbound: &ab, Inbound: &ba}
		cb := ca
		cb.Local, cb.Peer = ca.Peer, ca.Local
		abIn, baOut := ab, ba
		cb.Outbound, cb.Inbound = &baOut, &abIn
		mtu, err := ResolveMTU(&ca)
		if err != nil {
			t.Fatal(err)
		}
		tunA, tunB := tun.NewMemory(ca.Name, mtu, maxBatchSize), tun.NewMemory(cb.Name, mtu, maxBatchSize)
		if before != nil {
			before(k, tunA, tunB)
		}
		ta, err := m.a.AddTunnel(ca, tunA)
		if err != nil {
			t.Fatal(err)
		}
		tb, err := m.b.AddTunnel(cb, tunB)
		if err != nil {
			t.Fatal(err)
		}
		m.ta, m.tb = append(m.ta, ta), append(m.tb, tb)
		m.tunA, m.tunB = append(m.tunA, tunA), append(m.tunB, tunB)
	}
	return m
}

// TestReviewPoolExhaustion is the review's appendix A.2: 20 tunnels with
// distinct local addresses, so 20 raw ESP receivers and 20 TUN readers on
// each side. Before the fix they pre-held all 4096 buffers of the Device's
// pool and a packet injected into tunnel 0 was never sent: the whole
// dataplane stalled. Now every tunnel passes traffic both ways.
func TestReviewPoolExhaustion(t *testing.T) {
	m := newManyTunnels(t, 20, false)
	for k := range m.ta {
		exchange(t, m.tunA[k], m.tunB[k], [][]byte{udpPacket(innerA, innerB, 100+k)})
		exchange(t, m.tunB[k], m.tunA[k], [][]byte{udpPacket(innerB, innerA, 100+k)})
	}
}

// TestManyTunnelsOneStalled: 100 tunnels in one process on one shared
// socket, traffic on all of them, and tunnel 0's TUN device on B stops
// taking packets (its Output is never read, so its Write blocks). Tunnel
// 0 is flooded far beyond what it can hold. Before the fix the socket
// receiver waited on tunnel 0's inbound queue and every tunnel stalled
// (and with 100 tunnels the pool was exhausted before any traffic). Now
// the receiver drops tunnel 0's excess (QueueFull) and the 99 others keep
// passing, in both directions.
func TestManyTunnelsOneStalled(t *testing.T) {
	const n = 100
	m := newManyTunnels(t, n, true)
	for k := range n {
		exchange(t, m.tunA[k], m.tunB[k], [][]byte{udpPacket(innerA, innerB, 50)})
	}

	// Stall: B's tunnel 0 TUN takes 1024 packets, then blocks.
	const flood = 5000
	go func() {
		for i := range flood {
			m.tunA[0].Inject(udpPacket(innerA, innerB, 64+i%512))
		}
	}()
	stalled := m.tb[0]
	eventually(t, "tunnel 0 to drop on its full queue", func() bool { return stalled.Stats().QueueFull.Load() > 0 })

	for round := range 3 {
		for k := 1; k < n; k++ {
			pkts := [][]byte{udpPacket(innerA, innerB, 100+round), udpPacket(inner6A, inner6B, 200+k)}
			exchange(t, m.tunA[k], m.tunB[k], pkts)
			exchange(t, m.tunB[k], m.tunA[k], pkts)
		}
	}
	eventually(t, "tunnel 0's flood to be sent", func() bool { return m.ta[0].Stats().TxPackets.Load() >= flood })
	s := stalled.Stats()
	delivered, dropped := s.RxPackets.Load(), s.QueueFull.Load()
	t.Logf("stalled tunnel: %d written to its TUN (blocked), %d in flight, %d dropped as QueueFull",
		delivered, stalled.inFlight.Load(), dropped)
	budget := &m.b.pool.inbound
	if in, max := stalled.inFlight.Load(), inboundGuaranteed+2*budget.shared/3; in > max {
		t.Errorf("stalled tunnel holds %d inbound packets, more than its share %d", in, max)
	}
	count, limit := m.b.pool.small.stats()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("B's small buffers: %d of at most %d; large: %d; heap in use %d MiB for 2 x %d tunnels",
		count, limit, func() int { c, _ := m.b.pool.large.stats(); return c }(), ms.HeapInuse>>20, n)
	if count > limit {
		t.Errorf("B has %d small buffers, over its limit %d", count, limit)
	}

	// The stalled device recovers when its TUN is read again.
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-m.tunB[0].Output():
			case <-done:
				return
			}
		}
	}()
	exchange2 := func() bool {
		m.tunA[0].Inject(udpPacket(innerA, innerB, 1))
		time.Sleep(10 * time.Millisecond)
		return stalled.inFlight.Load() == 0 && budget.borrowed.Load() == 0
	}
	eventually(t, "the stalled tunnel to drain and give back what it borrowed", exchange2)
}
