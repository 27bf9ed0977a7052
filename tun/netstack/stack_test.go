package netstack_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/greipsec/greipsec/tun"
	"github.com/greipsec/greipsec/tun/netstack"
)

func newStack(t testing.TB, cfg netstack.Config) *netstack.Stack {
	t.Helper()
	if cfg.MTU == 0 {
		cfg.MTU = 1400
	}
	if cfg.Addresses == nil {
		cfg.Addresses = []tun.Address{{Prefix: netip.MustParsePrefix("10.0.0.1/24")}}
	}
	s, err := netstack.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestNewErrors(t *testing.T) {
	v4 := []tun.Address{{Prefix: netip.MustParsePrefix("10.0.0.1/24")}}
	v6 := []tun.Address{{Prefix: netip.MustParsePrefix("fd00::1/64")}}
	for _, tc := range []struct {
		cfg  netstack.Config
		want string
	}{
		{netstack.Config{MTU: 1400}, "no addresses"},
		{netstack.Config{MTU: 500, Addresses: v4}, "MTU 500 is out of range (expected 576 to 65535)"},
		{netstack.Config{MTU: 1000, Addresses: v6}, "MTU 1000 is out of range (expected 1280 to 65535)"},
		{netstack.Config{MTU: 70000, Addresses: v4}, "MTU 70000 is out of range"},
		{netstack.Config{MTU: 1400, Addresses: []tun.Address{{}}}, "address 0 is not a valid prefix"},
		{netstack.Config{MTU: 1400, Addresses: []tun.Address{{Prefix: netip.MustParsePrefix("::ffff:10.0.0.1/120")}}}, "IPv4-mapped"},
		{netstack.Config{MTU: 1400, Addresses: []tun.Address{{Prefix: netip.MustParsePrefix("224.0.0.1/4")}}}, "not a unicast address"},
		{netstack.Config{MTU: 1400, Addresses: []tun.Address{{Prefix: netip.MustParsePrefix("10.0.0.1/30"), Peer: netip.MustParseAddr("fd00::2")}}}, "peer is not an address of the same family"},
		{netstack.Config{MTU: 1400, Addresses: append(v4, v4...)}, "given twice"},
		{netstack.Config{MTU: 1400, Addresses: v4, Routes: []netip.Prefix{{}}}, "route 0"},
		{netstack.Config{MTU: 1400, Addresses: v4, DNS: []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:53")}}, "DNS server 0"},
		{netstack.Config{MTU: 1400, Addresses: v4, QueueLen: -1}, "negative"},
	} {
		s, err := netstack.New(tc.cfg)
		if err == nil {
			s.Close()
			t.Errorf("New(%+v) succeeded, want %q", tc.cfg, tc.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), "netstack: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %q, want %q", tc.cfg, err, tc.want)
		}
	}
}

// udpPackets makes s send n UDP datagrams into the tunnel.
func udpPackets(t *testing.T, s *netstack.Stack, n int) {
	t.Helper()
	c, err := s.DialContext(context.Background(), "udp", "10.0.0.2:9")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range n {
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReadBatch checks that one Read returns every queued packet, up to the
// batch size, at the offset asked for.
func TestReadBatch(t *testing.T) {
	s := newStack(t, netstack.Config{BatchSize: 8})
	udpPackets(t, s, 10)
	const offset = 100
	bufs := make([][]byte, 16)
	for i := range bufs {
		bufs[i] = make([]byte, offset+1500)
	}
	sizes := make([]int, 16)
	n, err := s.Read(bufs, sizes, offset)
	if err != nil || n != 8 {
		t.Fatalf("Read = %d, %v; want 8 (the batch size)", n, err)
	}
	for i := range n {
		if sizes[i] != 29 || bufs[i][offset]>>4 != 4 || bufs[i][offset+28] != byte(i) {
			t.Errorf("packet %d: %d bytes %x, want a 29-byte IPv4 UDP packet with payload %d", i, sizes[i], bufs[i][offset:offset+sizes[i]], i)
		}
	}
	if n, err = s.Read(bufs, sizes, offset); err != nil || n != 2 {
		t.Fatalf("second Read = %d, %v; want the 2 left", n, err)
	}
}

// TestQueueBound is the attack of a local program that floods the stack
// while the tunnel is stalled (nothing Reads): the stack must not queue
// more than QueueLen packets, and must count what it drops.
func TestQueueBound(t *testing.T) {
	s := newStack(t, netstack.Config{QueueLen: 4})
	udpPackets(t, s, 100)
	if got := s.Stats().QueueDrops.Load(); got != 96 {
		t.Errorf("QueueDrops = %d, want 96", got)
	}
	bufs := [][]byte{make([]byte, 1500), make([]byte, 1500), make([]byte, 1500), make([]byte, 1500), make([]byte, 1500)}
	if n, err := s.Read(bufs, make([]int, 5), 0); n != 4 || err != nil {
		t.Errorf("Read = %d, %v; want the 4 queued", n, err)
	}
}

// TestClose checks that Close unblocks a blocked Read, that Read and Write
// fail after it, and that the Events channel is closed.
func TestClose(t *testing.T) {
	s := newStack(t, netstack.Config{})
	if ev := <-s.Events(); ev != 1 /* EventUp */ {
		t.Errorf("first event %v, want EventUp", ev)
	}
	done := make(chan error)
	go func() {
		_, err := s.Read([][]byte{make([]byte, 1500)}, []int{0}, 0)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("blocked Read returned %v, want os.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked after Close")
	}
	if _, err := s.Write([][]byte{make([]byte, 40)}, 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: %v, want os.ErrClosed", err)
	}
	if _, ok := <-s.Events(); ok {
		t.Error("Events not closed")
	}
	s.Close() // idempotent
}

// TestWriteBadInbound checks that packets that are not IP are dropped and
// counted.
func TestWriteBadInbound(t *testing.T) {
	s := newStack(t, netstack.Config{})
	n, err := s.Write([][]byte{{0x00, 1, 2}, {}, {0x50, 0, 0, 0}}, 0)
	if n != 3 || err != nil {
		t.Errorf("Write = %d, %v", n, err)
	}
	if got := s.Stats().BadInbound.Load(); got != 3 {
		t.Errorf("BadInbound = %d, want 3", got)
	}
}

// FuzzWrite feeds arbitrary bytes to the stack as packets from the tunnel:
// whatever the far site sends, the stack must not panic.
func FuzzWrite(f *testing.F) {
	f.Add([]byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1})
	f.Add(append([]byte{0x60, 0, 0, 0, 0, 8, 17, 64}, make([]byte, 40)...))
	f.Add([]byte{0x45, 0, 0, 28, 0, 0, 0x20, 0, 64, 17, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1, 0, 1, 0, 2, 0, 8, 0, 0})
	s, err := netstack.New(netstack.Config{MTU: 1400, Addresses: []tun.Address{
		{Prefix: netip.MustParsePrefix("10.0.0.1/24")}, {Prefix: netip.MustParsePrefix("fd00::1/64")}}})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	go func() { // drain what the stack answers
		bufs, sizes := [][]byte{make([]byte, 1500)}, []int{0}
		for {
			if _, err := s.Read(bufs, sizes, 0); err != nil {
				return
			}
		}
	}()
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if _, err := s.Write([][]byte{pkt, pkt}, 0); err != nil {
			t.Fatal(err)
		}
	})
}
