package gateway

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/dataplane/link"
	"github.com/greipsec/greipsec/gateway/config"
	"github.com/greipsec/greipsec/tun"
)

// The tests of this package run two gateways in one process: IKE on port
// 500 over udpHub, an in-memory UDP network that can play a NAT, ESP and
// ESP-in-UDP over the dataplane's in-memory links, and memory TUN devices.

var (
	outerA = netip.MustParseAddr("192.0.2.1")
	outerB = netip.MustParseAddr("192.0.2.2")
)

// udpHub is an in-memory UDP network for the IKE sockets. natPort, when
// set for an address, rewrites the source port 500 of what that address
// sends to natPort, and the destination port natPort of what it is sent
// back to 500, as a NAT in front of it would.
type udpHub struct {
	mu      sync.Mutex
	conns   map[netip.AddrPort]*hubConn
	natPort map[netip.Addr]uint16
	sent    int // datagrams delivered
	// delay, when set, says how long a datagram sent from a socket takes
	// to arrive (0: at once).
	delay func(from, to netip.AddrPort, b []byte) time.Duration
	// mute, when set, loses everything sent from that address.
	mute map[netip.Addr]bool
}

func newUDPHub() *udpHub {
	return &udpHub{conns: make(map[netip.AddrPort]*hubConn), natPort: make(map[netip.Addr]uint16)}
}

// listen is a ListenFunc.
func (h *udpHub) listen(local netip.AddrPort) (PacketConn, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.conns[local]; ok {
		return nil, fmt.Errorf("listen %v: address already in use", local)
	}
	c := &hubConn{hub: h, local: local, in: make(chan hubDatagram, 256), closed: make(chan struct{})}
	h.conns[local] = c
	return c, nil
}

// listening returns the addresses with an open socket.
func (h *udpHub) listening() []netip.AddrPort {
	h.mu.Lock()
	defer h.mu.Unlock()
	var l []netip.AddrPort
	for ap := range h.conns {
		l = append(l, ap)
	}
	return l
}

// inject delivers a datagram from an address with no socket, waiting while
// the receiver is behind.
func (h *udpHub) inject(from, to netip.AddrPort, b []byte) {
	h.deliver(from, to, b, true)
}

func (h *udpHub) deliver(from, to netip.AddrPort, b []byte, wait bool) {
	h.mu.Lock()
	if p, ok := h.natPort[from.Addr()]; ok && from.Port() == ikePort {
		from = netip.AddrPortFrom(from.Addr(), p)
	}
	if p, ok := h.natPort[to.Addr()]; ok && to.Port() == p {
		to = netip.AddrPortFrom(to.Addr(), ikePort)
	}
	c, ok := h.conns[to]
	h.sent++
	muted := h.mute[from.Addr()]
	h.mu.Unlock()
	if !ok || muted {
		return // nobody listens: lost, as UDP is
	}
	d := hubDatagram{from: from, data: append([]byte(nil), b...)}
	if wait {
		select {
		case c.in <- d:
		case <-c.closed:
		}
		return
	}
	select {
	case c.in <- d:
	default: // the receiver is behind: lost
	}
}

type hubDatagram struct {
	from netip.AddrPort
	data []byte
}

// hubConn is one socket of a udpHub.
type hubConn struct {
	hub       *udpHub
	local     netip.AddrPort
	in        chan hubDatagram
	closed    chan struct{}
	closeOnce sync.Once
}

func (c *hubConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	select {
	case d := <-c.in:
		return copy(b, d.data), d.from, nil
	case <-c.closed:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

func (c *hubConn) WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	c.hub.mu.Lock()
	delay := c.hub.delay
	c.hub.mu.Unlock()
	if delay != nil {
		if d := delay(c.local, to, b); d > 0 {
			b = append([]byte(nil), b...)
			time.AfterFunc(d, func() { c.hub.deliver(c.local, to, b, false) })
			return len(b), nil
		}
	}
	c.hub.deliver(c.local, to, b, false)
	return len(b), nil
}

func (c *hubConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.hub.mu.Lock()
		delete(c.hub.conns, c.local)
		c.hub.mu.Unlock()
	})
	return nil
}

// testSide is one gateway of a test pair, with what the test needs to
// reach into it.
type testSide struct {
	gw        *Gateway
	opts      Options
	log       *syncBuffer
	stateFile string // of the manual SAs
	mu        sync.Mutex
	tuns      map[string]*tun.Memory // the memory TUN device of each running tunnel
}

// tun returns the memory TUN device of a tunnel.
func (s *testSide) tun(name string) *tun.Memory {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tuns[name]
}

// newTestSide returns the Options of one side of a pair: memory TUN
// devices, the memory links of both outer transports, IKE over hub.
func newTestSide(hub *udpHub, espLink, udpLink *link.Memory) *testSide {
	s := &testSide{tuns: make(map[string]*tun.Memory), log: new(syncBuffer)}
	s.opts = Options{
		Logger: slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Inner: func(t *config.Tunnel, mtu int) (Inner, error) {
			dev := tun.NewMemory(t.Dataplane.Interface, mtu, conn.IdealBatchSize)
			s.mu.Lock()
			s.tuns[t.Dataplane.Name] = dev
			s.mu.Unlock()
			return Inner{Device: dev}, nil
		},
		Bind: func(tr dataplane.Transport, local netip.Addr, port uint16) (conn.Bind, error) {
			if tr == dataplane.TransportUDP {
				return udpLink, nil
			}
			return espLink, nil
		},
		ListenIKE: hub.listen,
		Workers:   2,
	}
	return s
}

// testPair is two gateways A (192.0.2.1) and B (192.0.2.2).
type testPair struct {
	hub  *udpHub
	a, b *testSide
	espA *link.Memory // A's end of the raw ESP link
}

// newTestPair makes the sides of a pair; start them with start.
func newTestPair() *testPair {
	espA, espB := link.NewMemoryPair(netip.AddrPortFrom(outerA, 0), netip.AddrPortFrom(outerB, 0))
	udpA, udpB := link.NewMemoryPair(netip.AddrPortFrom(outerA, 4500), netip.AddrPortFrom(outerB, 4500))
	hub := newUDPHub()
	return &testPair{hub: hub, a: newTestSide(hub, espA, udpA), b: newTestSide(hub, espB, udpB), espA: espA}
}

// parse parses a configuration text of the side, with the state file of
// its manual SAs in a directory of the test.
func (s *testSide) parse(t *testing.T, doc string) (*config.Config, error) {
	t.Helper()
	if s.stateFile == "" {
		s.stateFile = filepath.Join(t.TempDir(), "greipsec.state")
	}
	return config.Parse("test.toml", []byte(fmt.Sprintf("state-file = %q\n", s.stateFile)+doc))
}

// start starts a side with a configuration text.
func (s *testSide) start(t *testing.T, doc string) {
	t.Helper()
	cfg, err := s.parse(t, doc)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := New(cfg, s.opts)
	if err != nil {
		t.Fatal(err)
	}
	s.gw = gw
	t.Cleanup(func() {
		gw.Close()
		if t.Failed() {
			t.Logf("log:\n%s", s.log.String())
		}
	})
}

// reload reloads a side with a configuration text.
func (s *testSide) reload(t *testing.T, doc string) (ReloadResult, error) {
	t.Helper()
	cfg, err := s.parse(t, doc)
	if err != nil {
		t.Fatal(err)
	}
	return s.gw.Reload(cfg)
}

// syncBuffer is a strings.Builder safe for concurrent writes: the log.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitFor calls cond every 10 ms until it returns true or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var _ io.Writer = (*syncBuffer)(nil)
