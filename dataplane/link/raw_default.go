//go:build !linux

package link

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"

	"golang.zx2c4.com/wireguard/conn"
)

// rawBatchSize is what rawBind.BatchSize reports.
const rawBatchSize = 1

// rawSocket is one raw ESP socket of one address family. Off Linux there is
// no batched receive to gain from, so it reads and writes one packet per
// system call through the net package. It is safe for concurrent use.
type rawSocket struct {
	conn   *net.IPConn
	is6    bool
	onICMP *atomic.Pointer[func(*ICMPError)] // unused: no error queue here
}

func openRawSocket(is6 bool, local netip.Addr) (*rawSocket, error) {
	c, err := listenRaw(is6, local)
	if err != nil {
		return nil, fmt.Errorf("%w (raw ESP on %s needs root or administrator rights, and a kernel that hands ESP to raw sockets; transport = \"udp\" carries ESP in UDP instead, on every OS)", err, runtime.GOOS)
	}
	return &rawSocket{conn: c, is6: is6}, nil
}

// close closes the socket; on a nil socket it does nothing.
func (s *rawSocket) close() error {
	if s == nil {
		return nil
	}
	return s.conn.Close()
}

// setDontFragment does nothing: the OS's default applies.
func (s *rawSocket) setDontFragment(bool) error { return nil }

// setMark does nothing: socket marks are a Linux feature.
func (s *rawSocket) setMark(uint32) error { return nil }

// receive reads one packet into packets[0]. A packet that is dropped
// (truncated, or with a bad IPv4 header) gets size 0 and a nil endpoint.
func (s *rawSocket) receive(cache *endpointCache, packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
	if len(packets) == 0 {
		return 0, nil
	}
	buf := packets[0]
	// ReadMsgIP, unlike ReadFrom, leaves the IPv4 header in place for
	// checkIPv4Header to see.
	n, _, flags, from, err := s.conn.ReadMsgIP(buf, nil)
	if err != nil {
		return 0, err
	}
	sizes[0], eps[0] = 0, nil
	if flags&msgTrunc != 0 || from == nil {
		return 1, nil
	}
	if !s.is6 {
		hlen, ok := checkIPv4Header(buf[:min(n, ipv4HeaderLen)], n)
		if !ok {
			return 1, nil
		}
		n = copy(buf, buf[hlen:n])
	}
	addr, ok := netip.AddrFromSlice(from.IP)
	if !ok {
		return 1, nil
	}
	addr = addr.Unmap()
	if from.Zone != "" && addr.Is6() {
		addr = addr.WithZone(from.Zone)
	}
	sizes[0], eps[0] = n, cache.get(endpointKey{addr: addr})
	return 1, nil
}

// send writes each buffer as one datagram to dst.
func (s *rawSocket) send(bufs [][]byte, dst netip.Addr) error {
	to := &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	for _, b := range bufs {
		if _, err := s.conn.WriteToIP(b, to); err != nil {
			return err
		}
	}
	return nil
}

// listenRaw opens a raw IP socket for protocol 50 of one family, bound to
// local unless it is the zero Addr.
func listenRaw(is6 bool, local netip.Addr) (*net.IPConn, error) {
	network := "ip4:50"
	if is6 {
		network = "ip6:50"
	}
	var laddr string
	if local.IsValid() {
		laddr = local.String()
	}
	pc, err := net.ListenPacket(network, laddr)
	if err != nil {
		return nil, fmt.Errorf("link: raw ESP: %w", err)
	}
	c := pc.(*net.IPConn)
	// Best effort: a smaller buffer only means drops under bursts.
	_ = c.SetReadBuffer(socketBufferSize)
	_ = c.SetWriteBuffer(socketBufferSize)
	return c, nil
}
