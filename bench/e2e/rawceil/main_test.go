package main

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

func TestParseArgs(t *testing.T) {
	c, err := parseArgs([]string{"-mode", "recv", "-dst", "2001:db8:255::2", "-size", "64", "-t", "3s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.mode != "recv" || c.proto != "esp" || c.dst.String() != "2001:db8:255::2" || c.size != 64 || c.dur != 3*time.Second || c.port != 4500 {
		t.Errorf("parseArgs = %+v", c)
	}
	c, err = parseArgs([]string{"-mode", "send", "-dst", "::ffff:192.0.2.2"}, io.Discard)
	if err != nil || !c.dst.Is4() {
		t.Errorf("a v4-mapped -dst: %+v, %v (want it unmapped to IPv4)", c.dst, err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-dst", "192.0.2.2"}, `-mode: "" (expected send or recv)`},
		{[]string{"-mode", "sned", "-dst", "192.0.2.2"}, `-mode: "sned"`},
		{[]string{"-mode", "send", "-dst", "192.0.2.2", "-proto", "tcp"}, `-proto: "tcp" (expected esp or udp)`},
		{[]string{"-mode", "send"}, `-dst: "" (expected an IPv4 or IPv6 address)`},
		{[]string{"-mode", "send", "-dst", "b.example"}, `-dst: "b.example"`},
		{[]string{"-mode", "send", "-dst", "fe80::1%eth0"}, `-dst: "fe80::1%eth0"`},
		{[]string{"-mode", "send", "-dst", "192.0.2.2", "-size", "0"}, "-size: 0 (expected 1 to 65507)"},
		{[]string{"-mode", "send", "-dst", "192.0.2.2", "-size", "65508"}, "-size: 65508"},
		{[]string{"-mode", "send", "-dst", "192.0.2.2", "-port", "0"}, "-port: 0 (expected 1 to 65535)"},
		{[]string{"-mode", "send", "-dst", "192.0.2.2", "-t", "0s"}, "-t: 0s (expected a positive duration)"},
		{[]string{"-mode", "recv", "-dst", "192.0.2.2", "-idle", "-1s"}, "-wait and -idle must be positive"},
		{[]string{"-mode", "send", "-dst", "192.0.2.2", "extra"}, `unexpected argument "extra"`},
		{[]string{"-mode", "send", "-dst", "192.0.2.2", "-t", "ten"}, "invalid value"},
		{[]string{"-mode", "send", "-dst", "192.0.2.2", "-tx", "ring"}, `-tx: "ring" (expected socket or packet)`},
		{[]string{"-mode", "send", "-dst", "192.0.2.2", "-tx", "packet", "-dstmac", "02:00:00:00:00:01"}, "needs -dev"},
		{[]string{"-mode", "send", "-dst", "192.0.2.2", "-tx", "packet", "-dev", "veth0", "-dstmac", "02:00"}, `-dstmac: "02:00"`},
		{[]string{"-mode", "send", "-dst", "2001:db8::2", "-tx", "packet", "-dev", "veth0", "-dstmac", "02:00:00:00:00:01"}, "an IPv4 -dst"},
		{[]string{"-mode", "send", "-dst", "192.0.2.2", "-proto", "udp", "-tx", "packet", "-dev", "veth0", "-dstmac", "02:00:00:00:00:01"}, "-proto esp"},
		{[]string{"-mode", "recv", "-dst", "192.0.2.2", "-tx", "packet", "-dev", "veth0", "-dstmac", "02:00:00:00:00:01"}, "-mode send"},
	} {
		_, err := parseArgs(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseArgs(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}

// TestIPv4Header: a known IPv4 header (UDP, 192.168.0.1 -> 192.168.0.199,
// total length 0x73, DF, TTL 64) gets the checksum 0xb861, and then checks
// out (RFC 1071 §1).
func TestIPv4Header(t *testing.T) {
	want := []byte{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61,
		0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7}
	h := make([]byte, 20)
	ipv4Header(h, [4]byte{192, 168, 0, 1}, [4]byte{192, 168, 0, 199}, 17, 0x73)
	if got := binary.BigEndian.Uint16(h[10:]); got != 0xb861 {
		t.Fatalf("checksum = %#04x, want 0xb861", got)
	}
	if !bytes.Equal(h, want) {
		t.Fatalf("header = % x, want % x", h, want)
	}
	if !header.IPv4(h).IsChecksumValid() {
		t.Fatal("the header with its checksum does not check out")
	}
}

// TestUDPLoopback runs a receiver and a sender over UDP on 127.0.0.1 (no
// privilege needed) and checks that the receiver counts what arrived:
// whole datagrams of -size bytes, over a time within -t.
func TestUDPLoopback(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("rawceil needs Linux")
	}
	// A free port: bind, note it, release it.
	l, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.LocalAddr().(*net.UDPAddr).Port
	l.Close()

	args := func(mode string) []string {
		return []string{"-mode", mode, "-proto", "udp", "-dst", "127.0.0.1", "-port", strconv.Itoa(port), "-size", "100", "-t", "200ms", "-wait", "5s", "-idle", "200ms"}
	}
	rc, err := parseArgs(args("recv"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := parseArgs(args("send"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	type out struct {
		r   result
		err error
	}
	done := make(chan out, 1)
	go func() {
		r, err := recv(rc, func() { close(ready) })
		done <- out{r, err}
	}()
	select {
	case <-ready:
	case o := <-done:
		t.Fatalf("recv: %v", o.err)
	}
	s, err := send(sc)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	o := <-done
	if o.err != nil {
		t.Fatalf("recv: %v", o.err)
	}
	r := o.r
	t.Logf("sent %+v, received %+v", s, r)
	if s.Packets == 0 || s.Bytes != s.Packets*100 || s.Seconds < 0.2 {
		t.Errorf("send = %+v, want packets of 100 bytes over at least 0.2 s", s)
	}
	if r.Packets == 0 || r.Packets > s.Packets || r.Bytes != r.Packets*100 {
		t.Errorf("recv = %+v, want 1 to %d packets of 100 bytes", r, s.Packets)
	}
	if r.Seconds <= 0 || r.Seconds > 0.2+5 {
		t.Errorf("recv seconds = %v, want from its first packet to its last (at most -t plus scheduling)", r.Seconds)
	}
}
