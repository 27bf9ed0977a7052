//go:build linux

package lab

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// IANA protocol numbers, for icmp.ParseMessage.
const (
	protoICMP   = 1
	protoICMPv6 = 58
)

// Ping sends count ICMP (dst IPv4) or ICMPv6 (dst IPv6) echo requests from
// inside h to dst, one after the other, waiting up to timeout for each
// reply, and returns how many replies came back. Lost echoes are not an
// error; failing to open the raw socket (it needs CAP_NET_RAW) or to send,
// for example with no route to dst, is.
func (l *Lab) Ping(h *Host, dst netip.Addr, count int, timeout time.Duration) (received int, err error) {
	rtts, err := l.PingRTTs(h, dst, count, timeout)
	return len(rtts), err
}

// PingRTTs is Ping, returning the round-trip time of each reply received,
// in the order the echoes were sent. Lost echoes have no entry.
func (l *Lab) PingRTTs(h *Host, dst netip.Addr, count int, timeout time.Duration) ([]time.Duration, error) {
	dst = dst.Unmap()
	network, laddr, proto := "ip4:icmp", "0.0.0.0", protoICMP
	var reqType, repType icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	if dst.Is6() {
		network, laddr, proto = "ip6:ipv6-icmp", "::", protoICMPv6
		reqType, repType = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
	}
	var c *icmp.PacketConn
	err := l.Do(h, func() (err error) {
		c, err = icmp.ListenPacket(network, laddr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: ping from %s: %w", h.Name, err)
	}
	defer c.Close()
	if dst.Is6() {
		var f ipv6.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv6.ICMPTypeEchoReply)
		c.IPv6PacketConn().SetICMPFilter(&f) // only an optimisation: replies are matched below
	}

	// Raw sockets see every echo reply in the namespace, so a reply must
	// match the ID, the sequence number and a random token in the data.
	var token [18]byte
	rand.Read(token[:])
	id := int(binary.BigEndian.Uint16(token[16:]))
	to := &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	buf := make([]byte, 1500)
	var rtts []time.Duration
	for i := range count {
		seq := (i + 1) & 0xffff
		data := binary.BigEndian.AppendUint16(token[:16:16], uint16(seq))
		msg := icmp.Message{Type: reqType, Body: &icmp.Echo{ID: id, Seq: seq, Data: data}}
		b, err := msg.Marshal(nil) // the kernel fills in the ICMPv6 checksum
		if err != nil {
			return rtts, fmt.Errorf("lab: ping: %w", err)
		}
		start := time.Now()
		if _, err := c.WriteTo(b, to); err != nil {
			return rtts, fmt.Errorf("lab: ping %s from %s: %w", dst, h.Name, err)
		}
		if err := c.SetReadDeadline(start.Add(timeout)); err != nil {
			return rtts, fmt.Errorf("lab: ping: %w", err)
		}
		for {
			n, from, err := c.ReadFrom(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				return rtts, fmt.Errorf("lab: ping %s from %s: %w", dst, h.Name, err)
			}
			if isReply(buf[:n], from, proto, repType, to, id, seq, data) {
				rtts = append(rtts, time.Since(start))
				break
			}
		}
	}
	return rtts, nil
}

// isReply reports whether b, received from from, is the echo reply to the
// request (id, seq, data) sent to to.
func isReply(b []byte, from net.Addr, proto int, typ icmp.Type, to *net.IPAddr, id, seq int, data []byte) bool {
	src, ok := from.(*net.IPAddr)
	if !ok || !src.IP.Equal(to.IP) {
		return false
	}
	m, err := icmp.ParseMessage(proto, b)
	if err != nil || m.Type != typ {
		return false
	}
	echo, ok := m.Body.(*icmp.Echo)
	return ok && echo.ID == id && echo.Seq == seq && bytes.Equal(echo.Data, data)
}

// TCPThroughput measures TCP goodput from host from to host to: a receiver
// in to listens on dst (an address of to, any free port), a sender in from
// connects to it and writes as fast as it can for d, then closes its side.
// The result is the bits per second the receiver counted, from accepting
// the connection to the end of the stream.
func (l *Lab) TCPThroughput(from, to *Host, dst netip.Addr, d time.Duration) (float64, error) {
	var ln *net.TCPListener
	err := l.Do(to, func() (err error) {
		ln, err = net.ListenTCP("tcp", &net.TCPAddr{IP: dst.AsSlice(), Zone: dst.Zone()})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("lab: throughput receiver in %s: %w", to.Name, err)
	}
	defer ln.Close()
	// Generous limits, only so that a dead path cannot hang the caller.
	const setup = 10 * time.Second
	ioLimit := d + 30*time.Second

	type result struct {
		bytes   int64
		elapsed time.Duration
		err     error
	}
	received := make(chan result, 1)
	go func() {
		ln.SetDeadline(time.Now().Add(setup))
		c, err := ln.AcceptTCP()
		if err != nil {
			received <- result{err: err}
			return
		}
		defer c.Close()
		start := time.Now()
		c.SetReadDeadline(start.Add(ioLimit))
		n, err := io.Copy(io.Discard, c)
		received <- result{bytes: n, elapsed: time.Since(start), err: err}
	}()

	var conn net.Conn
	err = l.Do(from, func() (err error) {
		conn, err = (&net.Dialer{Timeout: setup}).Dial("tcp", ln.Addr().String())
		return err
	})
	if err != nil {
		ln.Close() // ends the Accept
		<-received
		return 0, fmt.Errorf("lab: throughput sender in %s: %w", from.Name, err)
	}
	defer conn.Close()
	buf := make([]byte, 128<<10)
	end := time.Now().Add(d)
	conn.SetWriteDeadline(end.Add(ioLimit))
	var werr error
	for time.Now().Before(end) {
		if _, werr = conn.Write(buf); werr != nil {
			break
		}
	}
	if werr == nil {
		werr = conn.(*net.TCPConn).CloseWrite()
	}
	if werr != nil {
		conn.Close() // ends the receiver's Read
	}
	r := <-received
	if werr != nil {
		return 0, fmt.Errorf("lab: throughput sender in %s: %w", from.Name, werr)
	}
	if r.err != nil {
		return 0, fmt.Errorf("lab: throughput receiver in %s: %w", to.Name, r.err)
	}
	if r.bytes == 0 || r.elapsed <= 0 {
		return 0, fmt.Errorf("lab: throughput %s → %s: no data received", from.Name, to.Name)
	}
	return float64(r.bytes) * 8 / r.elapsed.Seconds(), nil
}

// A Pinger sends ICMP echo requests at a fixed interval, whether or not
// replies come, and counts the replies: the "ping -i 0.01" that tests run
// across a rekey or a reload to show that no packet is lost. Start it with
// StartPinger; Stop returns the counts.
type Pinger struct {
	c        *icmp.PacketConn
	to       *net.IPAddr
	proto    int
	repType  icmp.Type
	id       int
	token    [16]byte
	stop     chan struct{}
	sendDone chan struct{}
	recvDone chan struct{}

	mu       sync.Mutex
	sent     int
	replies  map[int]bool // by sequence number (which wraps at 65536)
	sendErrs int
	firstErr error
}

// StartPinger starts sending echo requests from inside h to dst every
// interval.
func (l *Lab) StartPinger(h *Host, dst netip.Addr, interval time.Duration) (*Pinger, error) {
	dst = dst.Unmap()
	network, laddr := "ip4:icmp", "0.0.0.0"
	p := &Pinger{proto: protoICMP, repType: ipv4.ICMPTypeEchoReply, replies: make(map[int]bool),
		stop: make(chan struct{}), sendDone: make(chan struct{}), recvDone: make(chan struct{})}
	var reqType icmp.Type = ipv4.ICMPTypeEcho
	if dst.Is6() {
		network, laddr = "ip6:ipv6-icmp", "::"
		p.proto, p.repType, reqType = protoICMPv6, ipv6.ICMPTypeEchoReply, ipv6.ICMPTypeEchoRequest
	}
	err := l.Do(h, func() (err error) {
		p.c, err = icmp.ListenPacket(network, laddr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: ping from %s: %w", h.Name, err)
	}
	var idb [2]byte
	rand.Read(p.token[:])
	rand.Read(idb[:])
	p.id = int(binary.BigEndian.Uint16(idb[:]))
	p.to = &net.IPAddr{IP: dst.AsSlice()}
	go p.routineReceive()
	go p.routineSend(reqType, interval)
	return p, nil
}

func (p *Pinger) routineSend(reqType icmp.Type, interval time.Duration) {
	defer close(p.sendDone)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for seq := 1; ; seq++ {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		s := seq & 0xffff
		data := binary.BigEndian.AppendUint16(p.token[:16:16], uint16(s))
		b, _ := (&icmp.Message{Type: reqType, Body: &icmp.Echo{ID: p.id, Seq: s, Data: data}}).Marshal(nil)
		_, err := p.c.WriteTo(b, p.to)
		p.mu.Lock()
		p.sent++
		if err != nil {
			p.sendErrs++
			if p.firstErr == nil {
				p.firstErr = err
			}
		}
		p.mu.Unlock()
	}
}

func (p *Pinger) routineReceive() {
	defer close(p.recvDone)
	buf := make([]byte, 1500)
	for {
		n, from, err := p.c.ReadFrom(buf)
		if err != nil {
			return // closed by Stop
		}
		src, ok := from.(*net.IPAddr)
		if !ok || !src.IP.Equal(p.to.IP) {
			continue
		}
		m, err := icmp.ParseMessage(p.proto, buf[:n])
		if err != nil || m.Type != p.repType {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		if !ok || echo.ID != p.id || len(echo.Data) != 18 || !bytes.Equal(echo.Data[:16], p.token[:]) {
			continue
		}
		p.mu.Lock()
		p.replies[echo.Seq] = true
		p.mu.Unlock()
	}
}

// Stop stops sending, waits a second for the last replies, and returns
// how many requests were sent and how many were answered, and the first
// error sending one (a send error counts as a loss).
func (p *Pinger) Stop() (sent, received int, err error) {
	close(p.stop)
	<-p.sendDone
	time.Sleep(time.Second)
	p.c.Close()
	<-p.recvDone
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent, len(p.replies), p.firstErr
}
