package dataplane

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/tun"
)

// secondTunnel returns the configurations of a second tunnel "gre1" between
// the gateways of a and b, with its own SPIs and keys.
func secondTunnel(a, b TunnelConfig) (TunnelConfig, TunnelConfig) {
	alg := a.Outbound.Algorithm
	ab := esp.Config{SPI: 0x2001, Algorithm: alg, Key: testKey(alg, 50), ESN: true}
	ba := esp.Config{SPI: 0x2002, Algorithm: alg, Key: testKey(alg, 150), ESN: true}
	a.Name, a.Interface = "gre1", "gre1"
	b.Name, b.Interface = "gre1", "gre1"
	abIn, baOut := ab, ba
	a.Outbound, a.Inbound = &ab, &ba
	b.Outbound, b.Inbound = &baOut, &abIn
	return a, b
}

// addTunnel adds a tunnel on a memory TUN device.
func addTunnel(t *testing.T, d *Device, c TunnelConfig) (*Tunnel, *tun.Memory) {
	t.Helper()
	mtu, err := ResolveMTU(&c)
	if err != nil {
		t.Fatal(err)
	}
	dev := tun.NewMemory(c.Name, mtu, maxBatchSize)
	tn, err := d.AddTunnel(c, dev)
	if err != nil {
		t.Fatal(err)
	}
	return tn, dev
}

// TestRemoveTunnel removes one of two tunnels from a running Device: the
// other keeps carrying traffic, ESP for the removed one's SPI counts as
// unknown, the name can be added again at once, and the shared socket
// closes with the last tunnel that uses it.
func TestRemoveTunnel(t *testing.T) {
	a, b := tunnelConfigs(ModeGRETransport, TransportUDP, esp.AES256GCM16, true)
	p := newPair(t, a, b)
	a1, b1 := secondTunnel(a, b)
	_, tunA1 := addTunnel(t, p.a, a1)
	_, tunB1 := addTunnel(t, p.b, b1)
	pkts := [][]byte{udpPacket(innerA, innerB, 100), udpPacket(inner6A, inner6B, 1000)}
	exchange(t, p.tunA, p.tunB, pkts)
	exchange(t, tunA1, tunB1, pkts)

	if err := p.b.RemoveTunnel("gre1"); err != nil {
		t.Fatal(err)
	}
	if err := p.b.RemoveTunnel("gre1"); err == nil {
		t.Error("removing gre1 twice succeeded")
	}
	if got := len(p.b.Tunnels()); got != 1 {
		t.Errorf("B has %d tunnels after removing gre1, want 1", got)
	}
	if _, err := tunB1.Read(make([][]byte, 1), make([]int, 1), 0); err == nil {
		t.Error("the removed tunnel's inner device is still open")
	}

	// A still sends on gre1: B counts unknown SPIs; gre0 is unaffected.
	unknown := p.b.Stats().UnknownSPI.Load()
	tunA1.Inject(udpPacket(innerA, innerB, 10))
	exchange(t, p.tunA, p.tunB, pkts)
	exchange(t, p.tunB, p.tunA, pkts)
	if !waitFor(func() bool { return p.b.Stats().UnknownSPI.Load() > unknown }) {
		t.Error("ESP for the removed tunnel's SPI was not counted as unknown")
	}

	// The same name again, with new SAs, works at once.
	_, tunB1 = addTunnel(t, p.b, b1)
	exchange(t, tunA1, tunB1, pkts)
	exchange(t, tunB1, tunA1, pkts)

	// The UDP socket is shared: it closes with the last tunnel.
	for _, name := range []string{"gre0", "gre1"} {
		if err := p.b.RemoveTunnel(name); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.b.SendUDP(DefaultUDPPort, netip.AddrPortFrom(outerA, DefaultUDPPort), [][]byte{{0xff}}); err == nil {
		t.Error("SendUDP works after the last tunnel using the socket was removed")
	}
}

// TestRemoveTunnelUnderLoad removes and re-adds a tunnel again and again
// while its peer floods it, and the other tunnel carries traffic: a
// receiver that looked up the removed tunnel's SPI just before the removal
// must never queue a batch on its closed queue (a panic), and the other
// tunnel must lose nothing.
func TestRemoveTunnelUnderLoad(t *testing.T) {
	a, b := tunnelConfigs(ModeGRETransport, TransportUDP, esp.AES128GCM16, false)
	p := newPair(t, a, b)
	a1, b1 := secondTunnel(a, b)
	_, tunA1 := addTunnel(t, p.a, a1)
	var delivered atomic.Uint64
	addDiscarding := func() {
		mtu, _ := ResolveMTU(&b1)
		dev := tun.NewMemory("gre1", mtu, maxBatchSize)
		dev.SetSink(func([]byte) { delivered.Add(1) })
		if _, err := p.b.AddTunnel(b1, dev); err != nil {
			t.Fatal(err)
		}
	}
	addDiscarding()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the flood on gre1
		defer wg.Done()
		pkt := udpPacket(innerA, innerB, 200)
		for {
			select {
			case <-stop:
				return
			default:
				tunA1.Inject(pkt)
			}
		}
	}()
	for i := range 200 {
		// Remove gre1 while the flood is being delivered to it.
		n := delivered.Load()
		if !waitFor(func() bool { return delivered.Load() > n }) {
			t.Fatalf("round %d: the flood does not reach gre1", i)
		}
		if err := p.b.RemoveTunnel("gre1"); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		exchange(t, p.tunA, p.tunB, [][]byte{udpPacket(innerA, innerB, 64+i)})
		addDiscarding()
	}
	close(stop)
	wg.Wait()
}

func waitFor(cond func() bool) bool {
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
