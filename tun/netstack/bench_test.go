package netstack_test

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"

	wgnetstack "golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/greipsec/greipsec/internal/nstest"
	"github.com/greipsec/greipsec/tun"
	"github.com/greipsec/greipsec/tun/netstack"
)

// The benchmarks move one TCP stream from side A to side B through the same
// in-process dataplane (GRE over ESP-in-UDP, AES-256-GCM, in-memory link),
// with this package's Stack on both sides, and with wireguard-go's netstack
// (golang.zx2c4.com/wireguard/tun/netstack, the inner side of wireproxy and
// similar tools) on both sides for comparison. Run them with
//
//	go test -run '^$' -bench Pair -benchtime 2s ./tun/netstack/

const benchChunk = 64 << 10

func BenchmarkPairTCPStack(b *testing.B) {
	p := nstest.NewPair(b, nil)
	benchStream(b,
		func() (net.Listener, error) { return p.B.Listen("tcp", ":5001") },
		func() (net.Conn, error) {
			return p.A.DialContext(context.Background(), "tcp", netip.AddrPortFrom(nstest.InnerB.Addr(), 5001).String())
		})
}

func BenchmarkPairTCPWireGuardNetstack(b *testing.B) {
	ca, cb, mtu := nstest.TunnelConfigs()
	devA, netA, err := wgnetstack.CreateNetTUN([]netip.Addr{nstest.InnerA.Addr()}, nil, mtu)
	if err != nil {
		b.Fatal(err)
	}
	devB, netB, err := wgnetstack.CreateNetTUN([]netip.Addr{nstest.InnerB.Addr()}, nil, mtu)
	if err != nil {
		b.Fatal(err)
	}
	nstest.Join(b, ca, cb, devA, devB)
	dst := netip.AddrPortFrom(nstest.InnerB.Addr(), 5001)
	benchStream(b,
		func() (net.Listener, error) { return netB.ListenTCPAddrPort(netip.AddrPortFrom(netip.Addr{}, 5001)) },
		func() (net.Conn, error) { return netA.DialContextTCPAddrPort(context.Background(), dst) })
}

var _ tun.Device = (*netstack.Stack)(nil)

// benchStream writes b.N chunks into one connection and waits until the
// other end has read them all.
func benchStream(b *testing.B, listen func() (net.Listener, error), dial func() (net.Conn, error)) {
	l, err := listen()
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	total := int64(b.N) * benchChunk
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = io.CopyN(io.Discard, c, total)
		done <- err
	}()
	c, err := dial()
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	chunk := make([]byte, benchChunk)
	b.SetBytes(benchChunk)
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
