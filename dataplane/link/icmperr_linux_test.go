package link

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// TestRawESPICMPError injects the ICMP errors a router on the path sends
// for an ESP packet that does not fit ("fragmentation needed", RFC 1191 §4;
// "packet too big", RFC 4443 §3.2) and checks that the raw ESP Bind reads
// them from its error queue with the MTU, the quoted packet's destination
// and SPI, and the router's address, while the ReceiveFunc goes on
// receiving ESP.
func TestRawESPICMPError(t *testing.T) {
	for _, tc := range []struct {
		family           string
		addrs            []string
		local, peer, rtr string
		mtu              int
	}{
		{"IPv4", []string{"192.0.2.1/32", "192.0.2.2/32", "192.0.2.254/32"}, "192.0.2.1", "192.0.2.2", "192.0.2.254", 1400},
		{"IPv6", []string{"2001:db8::1/128", "2001:db8::2/128", "2001:db8::fe/128"}, "2001:db8::1", "2001:db8::2", "2001:db8::fe", 1280},
	} {
		t.Run(tc.family, func(t *testing.T) {
			var b *rawBind
			var fn func() (int, error)
			var icmpConn net.PacketConn
			var espSender *rawBind
			bufs, sizes, eps := buffers(rawBatchSize, 2048)
			testNetns(t, tc.addrs, 0, func() error {
				var err error
				want := "v4"
				network := "ip4:icmp"
				if tc.family == "IPv6" {
					want, network = "v6", "ip6:ipv6-icmp"
				}
				bb, fns, err := openRaw(t, tc.local, want)
				if err != nil {
					return err
				}
				b = bb
				fn = func() (int, error) { return fns[0](bufs, sizes, eps) }
				s, _, err := openRaw(t, tc.peer, want)
				if err != nil {
					return err
				}
				espSender = s
				icmpConn, err = net.ListenPacket(network, tc.rtr)
				if err != nil {
					return err
				}
				t.Cleanup(func() { icmpConn.Close() })
				return nil
			})
			got := make(chan ICMPError, 4)
			b.SetICMPErrorHandler(func(e *ICMPError) { got <- *e })
			type result struct {
				n   int
				err error
			}
			recv := make(chan result, 1)
			go func() {
				n, err := fn()
				recv <- result{n, err}
			}()
			t.Cleanup(func() { b.Close() })

			local, peer := netip.MustParseAddr(tc.local), netip.MustParseAddr(tc.peer)
			const spi = 0x11223344
			esp := packet(spi, 7, 100)
			var msg []byte
			if tc.family == "IPv4" {
				// The quoted packet: our IPv4 header (local → peer, ESP,
				// DF) and the first bytes of the ESP packet (RFC 792).
				q := make([]byte, 20, 20+8)
				h := ipv4.Header{Version: 4, Len: 20, TotalLen: 20 + tc.mtu + 100, TTL: 63, Protocol: 50,
					Flags: ipv4.DontFragment, Src: local.AsSlice(), Dst: peer.AsSlice()}
				hb, _ := h.Marshal()
				copy(q, hb)
				binary.BigEndian.PutUint16(q[2:], uint16(h.TotalLen))
				q = append(q, esp[:8]...)
				msg = []byte{3, 4, 0, 0, 0, 0, byte(tc.mtu >> 8), byte(tc.mtu)}
				msg = append(msg, q...)
				c := checksum(msg)
				binary.BigEndian.PutUint16(msg[2:], c)
			} else {
				q := make([]byte, 40)
				q[0] = 6 << 4
				binary.BigEndian.PutUint16(q[4:], uint16(tc.mtu+100))
				q[6], q[7] = 50, 64
				copy(q[8:], local.AsSlice())
				copy(q[24:], peer.AsSlice())
				q = append(q, esp[:8]...)
				msg = binary.BigEndian.AppendUint32([]byte{2, 0, 0, 0}, uint32(tc.mtu))
				msg = append(msg, q...) // the kernel fills in the ICMPv6 checksum
			}
			if _, err := icmpConn.WriteTo(msg, &net.IPAddr{IP: local.AsSlice()}); err != nil {
				t.Fatal(err)
			}
			select {
			case e := <-got:
				if !e.TooBig() || e.MTU != tc.mtu || e.Dst != peer || !e.HasSPI || e.SPI != spi ||
					e.From != netip.MustParseAddr(tc.rtr) || e.Is6 != (tc.family == "IPv6") {
					t.Errorf("ICMP error %+v; want too big, MTU %d, to %s, SPI %#x, from %s", e, tc.mtu, peer, spi, tc.rtr)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no ICMP error reported in 10 s")
			}
			// The receiver goes on: an ESP packet still arrives.
			if err := espSender.Send([][]byte{esp}, NewEndpoint(local)); err != nil {
				t.Fatal(err)
			}
			select {
			case r := <-recv:
				if r.err != nil || r.n < 1 || sizes[0] != len(esp) {
					t.Errorf("receive after the ICMP error: n %d, size %d, err %v; want the ESP packet", r.n, sizes[0], r.err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no ESP packet received after the ICMP error")
			}
		})
	}
}

// checksum is the Internet checksum (RFC 1071).
func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// TestRawESPDontFragment checks the path MTU discovery mode the sockets
// are left in: IPv4 PROBE (DF, never fragmented here) and IPv6 WANT by
// default, DONT after SetDontFragment(false).
func TestRawESPDontFragment(t *testing.T) {
	var b *rawBind
	testNetns(t, []string{"192.0.2.1/32", "2001:db8::1/128"}, 0, func() error {
		var err error
		b, _, err = openRaw(t, "", "v4", "v6")
		return err
	})
	mode := func(s *rawSocket) int {
		var v int
		err := s.control(func(fd int) (err error) {
			if s.is6 {
				v, err = unix.GetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER)
			} else {
				v, err = unix.GetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if m4, m6 := mode(b.ipv4), mode(b.ipv6); m4 != unix.IP_PMTUDISC_PROBE || m6 != unix.IPV6_PMTUDISC_WANT {
		t.Errorf("after Open: modes %d, %d; want PROBE (%d), WANT (%d)", m4, m6, unix.IP_PMTUDISC_PROBE, unix.IPV6_PMTUDISC_WANT)
	}
	if err := b.SetDontFragment(false); err != nil {
		t.Fatal(err)
	}
	if m4, m6 := mode(b.ipv4), mode(b.ipv6); m4 != unix.IP_PMTUDISC_DONT || m6 != unix.IPV6_PMTUDISC_DONT {
		t.Errorf("after SetDontFragment(false): modes %d, %d; want DONT (%d)", m4, m6, unix.IP_PMTUDISC_DONT)
	}
}
