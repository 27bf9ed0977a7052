package netstack_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/greipsec/greipsec/internal/nstest"
	"github.com/greipsec/greipsec/tun"
	"github.com/greipsec/greipsec/tun/netstack"
)

// The tests in this file run two netstacks joined by a whole in-process
// dataplane (GRE over ESP-in-UDP over an in-memory link), as a container on
// each site would.

func addrPort(p netip.Prefix, port uint16) string {
	return netip.AddrPortFrom(p.Addr(), port).String()
}

// transfer sends n random bytes from the dialing side to the accepting side
// and n others back, at the same time, over one connection, and checks that
// both arrive intact.
func transfer(t *testing.T, dialer, listener *netstack.Stack, network string, to netip.Prefix, n int) {
	t.Helper()
	l, err := listener.Listen(network, ":8080")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	up, down := make([]byte, n), make([]byte, n)
	rand.Read(up)
	rand.Read(down)
	errs := make(chan error, 2)
	go func() {
		c, err := l.Accept()
		if err != nil {
			errs <- err
			return
		}
		defer c.Close()
		errs <- exchange(c, down, up)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := dialer.DialContext(ctx, network, addrPort(to, 8080))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := exchange(c, up, down); err != nil {
		t.Fatalf("dialing side: %v", err)
	}
	if err := <-errs; err != nil {
		t.Fatalf("accepting side: %v", err)
	}
}

// exchange writes send (then half-closes) while it reads until EOF, and
// checks that it read want.
func exchange(c net.Conn, send, want []byte) error {
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(send)
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		werr <- err
	}()
	h := sha256.New()
	got, err := io.Copy(h, c)
	if err != nil {
		return fmt.Errorf("read after %d bytes: %w", got, err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if got != int64(len(want)) || !bytes.Equal(h.Sum(nil), sha256Sum(want)) {
		return fmt.Errorf("received %d bytes that differ from the %d sent", got, len(want))
	}
	return nil
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// TestPairTCP moves 4 MiB each way at once over TCP, IPv4 and IPv6, with
// either side dialing.
func TestPairTCP(t *testing.T) {
	p := nstest.NewPair(t, nil)
	transfer(t, p.A, p.B, "tcp", nstest.InnerB, 4<<20)
	transfer(t, p.B, p.A, "tcp", nstest.InnerA, 4<<20)
	transfer(t, p.A, p.B, "tcp6", nstest.Inner6B, 1<<20)
	transfer(t, p.B, p.A, "tcp4", nstest.InnerA, 1<<20)
	if s := p.TB.InboundSAs()[0].Stats(); s.AuthFailures+s.Replays+s.BadGRE+s.BadSelector != 0 {
		t.Errorf("B's SA counted drops: %+v", s)
	}
	for _, s := range []*netstack.Stack{p.A, p.B} {
		if st := s.Stats(); st.TooBig.Load()+st.BadInbound.Load() != 0 {
			t.Errorf("stack drops: too big %d, bad inbound %d", st.TooBig.Load(), st.BadInbound.Load())
		}
	}
}

// TestPairManyConnections runs 32 short TCP exchanges at once, so that
// segments of many flows share batches (and GRO buckets).
func TestPairManyConnections(t *testing.T) {
	p := nstest.NewPair(t, nil)
	l, err := p.B.Listen("tcp", ":9000")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := p.A.DialContext(context.Background(), "tcp", addrPort(nstest.InnerB, 9000))
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			msg := bytes.Repeat([]byte{byte(i)}, 1000*(i+1))
			if _, err := c.Write(msg); err != nil {
				errs <- err
				return
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
				errs <- fmt.Errorf("connection %d: echo differs or failed: %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestPairUDP sends datagrams of many sizes, up to ones that IP must
// fragment, and checks each comes back (echoed) unchanged.
func TestPairUDP(t *testing.T) {
	p := nstest.NewPair(t, nil)
	for _, tc := range []struct {
		network string
		to      netip.Prefix
	}{{"udp", nstest.InnerB}, {"udp", nstest.Inner6B}, {"udp4", nstest.InnerB}} {
		t.Run(tc.network+"/"+tc.to.Addr().String(), func(t *testing.T) {
			pc, err := p.B.ListenPacket(tc.network, ":5353")
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
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
			c, err := p.A.DialContext(context.Background(), tc.network, addrPort(tc.to, 5353))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 65536)
			for _, n := range []int{0, 1, 100, 1000, p.MTU - 48, p.MTU - 28, 4000, 20000} {
				msg := make([]byte, n)
				rand.Read(msg)
				if _, err := c.Write(msg); err != nil {
					t.Fatalf("%d bytes: %v", n, err)
				}
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				m, err := c.Read(buf)
				if err != nil {
					t.Fatalf("%d bytes: no echo: %v", n, err)
				}
				if !bytes.Equal(buf[:m], msg) {
					t.Fatalf("%d bytes: echo of %d bytes differs", n, m)
				}
			}
		})
	}
}

// recorder is a tun.Device that passes everything through to dev and
// records the largest packet Read returned.
type recorder struct {
	tun.Device
	largest atomic.Int64
}

func (r *recorder) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := r.Device.Read(bufs, sizes, offset)
	for _, s := range sizes[:n] {
		if int64(s) > r.largest.Load() {
			r.largest.Store(int64(s))
		}
	}
	return n, err
}

// TestPairMTU checks that neither stack sends a packet larger than the
// tunnel's MTU: not in a bulk TCP transfer, whose MSS follows from the MTU,
// and not for a UDP datagram larger than the MTU, which IP fragments.
func TestPairMTU(t *testing.T) {
	ca, cb, mtu := nstest.TunnelConfigs()
	mk := func(p ...netip.Prefix) *recorder {
		var addrs []tun.Address
		for _, a := range p {
			addrs = append(addrs, tun.Address{Prefix: a})
		}
		s, err := netstack.New(netstack.Config{MTU: mtu, Addresses: addrs})
		if err != nil {
			t.Fatal(err)
		}
		return &recorder{Device: s}
	}
	ra, rb := mk(nstest.InnerA, nstest.Inner6A), mk(nstest.InnerB, nstest.Inner6B)
	nstest.Join(t, ca, cb, ra, rb)
	a, b := ra.Device.(*netstack.Stack), rb.Device.(*netstack.Stack)
	transfer(t, a, b, "tcp4", nstest.InnerB, 1<<20)
	transfer(t, a, b, "tcp6", nstest.Inner6B, 1<<20)

	pc, err := b.ListenPacket("udp", ":7")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, to := range []netip.Prefix{nstest.InnerB, nstest.Inner6B} {
		c, err := a.DialContext(context.Background(), "udp", addrPort(to, 7))
		if err != nil {
			t.Fatal(err)
		}
		msg := make([]byte, 3*mtu)
		rand.Read(msg)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 2*len(msg))
		n, _, err := pc.ReadFrom(buf)
		if err != nil || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("%d-byte datagram to %s: got %d bytes, %v", len(msg), to.Addr(), n, err)
		}
		c.Close()
	}
	for name, r := range map[string]*recorder{"A": ra, "B": rb} {
		if got := r.largest.Load(); got > int64(mtu) || got < int64(mtu)-100 {
			t.Errorf("stack %s: largest packet %d bytes, want at most the MTU %d (and near it)", name, got, mtu)
		}
	}
}

// TestPing sends ICMP echo requests, IPv4 and IPv6, from an ordinary TUN
// device on site A (an in-memory one) to the netstack on site B and checks
// that B answers each.
func TestPing(t *testing.T) {
	ca, cb, mtu := nstest.TunnelConfigs()
	tunA := tun.NewMemory("a", mtu, 16)
	b, err := netstack.New(netstack.Config{MTU: mtu, Addresses: []tun.Address{{Prefix: nstest.InnerB}, {Prefix: nstest.Inner6B}}})
	if err != nil {
		t.Fatal(err)
	}
	nstest.Join(t, ca, cb, tunA, b)

	for _, tc := range []struct{ src, dst netip.Prefix }{{nstest.InnerA, nstest.InnerB}, {nstest.Inner6A, nstest.Inner6B}} {
		payload := []byte("greipsec ping payload 0123456789")
		tunA.Inject(echoRequest(tc.src.Addr(), tc.dst.Addr(), 0x4242, 7, payload))
		select {
		case reply := <-tunA.Output():
			if err := checkEchoReply(reply, tc.dst.Addr(), tc.src.Addr(), 0x4242, 7, payload); err != nil {
				t.Errorf("ping %s: %v", tc.dst.Addr(), err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("ping %s: no reply", tc.dst.Addr())
		}
	}
}

// echoRequest builds an ICMP (RFC 792) or ICMPv6 (RFC 4443 §4.1) echo
// request.
func echoRequest(src, dst netip.Addr, id, seq uint16, payload []byte) []byte {
	if src.Is4() {
		pkt := make([]byte, header.IPv4MinimumSize+header.ICMPv4MinimumSize+len(payload))
		ip := header.IPv4(pkt)
		ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(pkt)), TTL: 64, Protocol: uint8(header.ICMPv4ProtocolNumber),
			SrcAddr: tcpip.AddrFrom4(src.As4()), DstAddr: tcpip.AddrFrom4(dst.As4())})
		ip.SetChecksum(^ip.CalculateChecksum())
		icmp := header.ICMPv4(ip.Payload())
		icmp.SetType(header.ICMPv4Echo)
		icmp.SetIdent(id)
		icmp.SetSequence(seq)
		copy(icmp.Payload(), payload)
		icmp.SetChecksum(^checksum.Checksum(icmp, 0))
		return pkt
	}
	pkt := make([]byte, header.IPv6MinimumSize+header.ICMPv6EchoMinimumSize+len(payload))
	ip := header.IPv6(pkt)
	ip.Encode(&header.IPv6Fields{PayloadLength: uint16(len(pkt) - header.IPv6MinimumSize), TransportProtocol: header.ICMPv6ProtocolNumber,
		HopLimit: 64, SrcAddr: tcpip.AddrFrom16(src.As16()), DstAddr: tcpip.AddrFrom16(dst.As16())})
	icmp := header.ICMPv6(ip.Payload())
	icmp.SetType(header.ICMPv6EchoRequest)
	icmp.SetIdent(id)
	icmp.SetSequence(seq)
	copy(icmp.Payload(), payload)
	icmp.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{Header: icmp, Src: ip.SourceAddress(), Dst: ip.DestinationAddress()}))
	return pkt
}

func checkEchoReply(pkt []byte, src, dst netip.Addr, id, seq uint16, payload []byte) error {
	if src.Is4() {
		ip := header.IPv4(pkt)
		if !ip.IsValid(len(pkt)) || ip.TransportProtocol() != header.ICMPv4ProtocolNumber ||
			ip.SourceAddress() != tcpip.AddrFrom4(src.As4()) || ip.DestinationAddress() != tcpip.AddrFrom4(dst.As4()) {
			return fmt.Errorf("not an ICMP packet from %s to %s: %x", src, dst, pkt)
		}
		icmp := header.ICMPv4(ip.Payload())
		if icmp.Type() != header.ICMPv4EchoReply || icmp.Ident() != id || icmp.Sequence() != seq ||
			!bytes.Equal(icmp.Payload(), payload) || checksum.Checksum(icmp, 0) != 0xffff {
			return fmt.Errorf("not the echo reply: %x", icmp)
		}
		return nil
	}
	ip := header.IPv6(pkt)
	if !ip.IsValid(len(pkt)) || ip.TransportProtocol() != header.ICMPv6ProtocolNumber ||
		ip.SourceAddress() != tcpip.AddrFrom16(src.As16()) || ip.DestinationAddress() != tcpip.AddrFrom16(dst.As16()) {
		return fmt.Errorf("not an ICMPv6 packet from %s to %s: %x", src, dst, pkt)
	}
	icmp := header.ICMPv6(ip.Payload())
	if icmp.Type() != header.ICMPv6EchoReply || icmp.Ident() != id || icmp.Sequence() != seq || !bytes.Equal(icmp.Payload(), payload) ||
		header.ICMPv6Checksum(header.ICMPv6ChecksumParams{Header: icmp, Src: ip.SourceAddress(), Dst: ip.DestinationAddress()}) != icmp.Checksum() {
		return fmt.Errorf("not the echo reply: %x", icmp)
	}
	return nil
}

// TestDialErrors checks that dial failures carry the errno a caller (the
// SOCKS5 server) needs to tell them apart.
func TestDialErrors(t *testing.T) {
	p := nstest.NewPair(t, nil)
	ctx := context.Background()

	_, err := p.A.DialContext(ctx, "tcp", addrPort(nstest.InnerB, 1))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial a closed port: %v, want ECONNREFUSED", err)
	}
	_, err = p.A.DialContext(ctx, "tcp", "203.0.113.1:80")
	if !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("dial outside the routes: %v, want ENETUNREACH", err)
	}
	// 10.255.0.3 is routed into the tunnel, but nobody on site B has it.
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = p.A.DialContext(tctx, "tcp", "10.255.0.3:80")
	if !errors.Is(err, syscall.ETIMEDOUT) {
		t.Errorf("dial an address nobody has: %v, want ETIMEDOUT", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("dial an address nobody has: %v is not a net.Error timeout", err)
	}
	if _, err := p.A.DialContext(ctx, "tcp", "intranet.example:80"); !errors.Is(err, netstack.ErrNoDNS) {
		t.Errorf("dial a name without DNS servers: %v, want ErrNoDNS", err)
	}
	if _, err := p.A.DialContext(ctx, "sctp", addrPort(nstest.InnerB, 1)); err == nil {
		t.Error("dial sctp succeeded")
	}
	if _, err := p.A.DialContext(ctx, "tcp", "10.255.0.2:http"); err == nil {
		t.Error("dial with a service name succeeded")
	}
	if _, err := p.A.Listen("tcp", "10.255.0.9:80"); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("listen on another's address: %v, want EADDRNOTAVAIL", err)
	}
}

// TestListenerClose checks that closing a Listener unblocks Accept.
func TestListenerClose(t *testing.T) {
	p := nstest.NewPair(t, nil)
	l, err := p.A.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := l.Accept()
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	l.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Accept succeeded after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still blocked after Close")
	}
}
