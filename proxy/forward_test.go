package proxy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/greipsec/greipsec/internal/nstest"
	"github.com/greipsec/greipsec/proxy"
)

// echoOver sends n random bytes over c, half-closes, and checks that the
// echo that comes back is the same.
func echoOver(t *testing.T, c net.Conn, n int) {
	t.Helper()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	msg := make([]byte, n)
	rand.Read(msg)
	go func() {
		c.Write(msg)
		c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	h := sha256.New()
	got, err := io.Copy(h, c)
	if err != nil || got != int64(n) || !bytes.Equal(h.Sum(nil), sum(msg)) {
		t.Fatalf("echo of %d bytes: got %d bytes, %v, intact %v", n, got, err, bytes.Equal(h.Sum(nil), sum(msg)))
	}
}

func sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// localEcho runs a TCP and a UDP echo server on loopback, for the far site
// to reach through a reverse forward.
func localEcho(t *testing.T) (tcp, udp string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	return l.Addr().String(), pc.LocalAddr().String()
}

// TestTCPForward forwards a local port to site B's echo service, and a port
// of site A's tunnel address to a local echo service, and moves data both
// ways through each, a few connections at once.
func TestTCPForward(t *testing.T) {
	e := newEnv(t)
	out := &proxy.TCPForward{Dialer: e.A, Target: "echo.site-b.example:7"}
	outAddr := serve(t, out.Serve)

	localTCP, _ := localEcho(t)
	in := &proxy.TCPForward{Dialer: &net.Dialer{}, Target: localTCP}
	l, err := e.A.Listen("tcp", ":2222")
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, l, in.Serve)

	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", outAddr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			echoOver(t, c, 1<<20+i)
		}()
		go func() {
			defer wg.Done()
			// From site B, to A's tunnel address.
			c, err := e.B.DialContext(context.Background(), "tcp", netip.AddrPortFrom(nstest.InnerA.Addr(), 2222).String())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			echoOver(t, c, 1<<20+i)
		}()
	}
	wg.Wait()
	if got := out.Stats().Accepted.Load(); got != 4 {
		t.Errorf("outbound forward accepted %d, want 4", got)
	}
	waitFor(t, "the connections to close", func() bool { return out.Stats().Active.Load() == 0 && in.Stats().Active.Load() == 0 })
}

// TestTCPForwardLimits checks MaxConns and the idle timeout of a forward.
func TestTCPForwardLimits(t *testing.T) {
	e := newEnv(t)
	f := &proxy.TCPForward{Dialer: e.A, Target: "10.255.0.2:7", Limits: proxy.Limits{MaxConns: 1, IdleTimeout: 300 * time.Millisecond}}
	addr := serve(t, f.Serve)
	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	first.Write([]byte("x"))
	first.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(first, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	second, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	second.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := second.Read(make([]byte, 1)); err == nil {
		t.Error("a connection over MaxConns was served")
	}
	second.Close()
	// Idle: the forward closes the first connection.
	start := time.Now()
	if _, err := first.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("idle connection: read %v, want EOF", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("idle connection closed after %v, want about 300ms", d)
	}
	if f.Stats().Rejected.Load() != 1 {
		t.Errorf("Rejected = %d, want 1", f.Stats().Rejected.Load())
	}
}

// udpEcho sends each message from c and checks its echo.
func udpEcho(t *testing.T, c net.Conn, msgs ...[]byte) {
	t.Helper()
	buf := make([]byte, 65536)
	for _, m := range msgs {
		if _, err := c.Write(m); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		if err != nil || !bytes.Equal(buf[:n], m) {
			t.Fatalf("echo of %d bytes: got %d, %v", len(m), n, err)
		}
	}
}

// TestUDPForward forwards a local UDP port to site B's echo service and a
// UDP port of A's tunnel address to a local echo service, with two sources
// each, which must get their own flows.
func TestUDPForward(t *testing.T) {
	e := newEnv(t)
	out := &proxy.UDPForward{Dialer: e.A, Target: "10.255.0.2:7"}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	servePacket(t, pc, out.Serve)

	_, localUDP := localEcho(t)
	in := &proxy.UDPForward{Dialer: &net.Dialer{}, Target: localUDP}
	fpc, err := e.A.ListenPacket("udp", ":5353")
	if err != nil {
		t.Fatal(err)
	}
	servePacket(t, fpc, in.Serve)

	msgs := [][]byte{[]byte("one"), bytes.Repeat([]byte{7}, 1200), bytes.Repeat([]byte{9}, 8000)}
	for range 2 {
		c, err := net.Dial("udp", pc.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		udpEcho(t, c, msgs...)
		c.Close()
		c, err = e.B.DialContext(context.Background(), "udp", netip.AddrPortFrom(nstest.InnerA.Addr(), 5353).String())
		if err != nil {
			t.Fatal(err)
		}
		udpEcho(t, c, msgs...)
		c.Close()
	}
	if out.Stats().Accepted.Load() != 2 || in.Stats().Accepted.Load() != 2 {
		t.Errorf("flows started: %d out, %d in; want 2 each", out.Stats().Accepted.Load(), in.Stats().Accepted.Load())
	}
}

// TestUDPForwardLimits checks the flow limit and the idle timeout: a second
// source is dropped while the first flow lives, and served once it has
// timed out.
func TestUDPForwardLimits(t *testing.T) {
	e := newEnv(t)
	f := &proxy.UDPForward{Dialer: e.A, Target: "10.255.0.2:7", Limits: proxy.Limits{MaxConns: 1, IdleTimeout: 300 * time.Millisecond}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	servePacket(t, pc, f.Serve)
	a, _ := net.Dial("udp", pc.LocalAddr().String())
	b, _ := net.Dial("udp", pc.LocalAddr().String())
	defer a.Close()
	defer b.Close()
	udpEcho(t, a, []byte("a"))
	b.Write([]byte("b"))
	b.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := b.Read(make([]byte, 10)); err == nil {
		t.Error("a second flow over MaxConns was served")
	}
	if f.Stats().Rejected.Load() != 1 {
		t.Errorf("Rejected = %d, want 1", f.Stats().Rejected.Load())
	}
	waitFor(t, "the idle flow to end", func() bool { return f.Stats().Active.Load() == 0 })
	udpEcho(t, b, []byte("b again"))
}

func servePacket(t *testing.T, pc net.PacketConn, run func(context.Context, net.PacketConn) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, pc) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve returned %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after its context ended")
		}
	})
}
