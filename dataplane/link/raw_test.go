package link

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"runtime"
	"testing"

	"golang.zx2c4.com/wireguard/conn"
)

// ipv4Header returns an IPv4 header of hlen bytes for a datagram of total
// bytes, with the given protocol and flags/fragment-offset field, in the
// byte order this platform's raw sockets deliver (see checkIPv4Header).
// Fields are laid out as in RFC 791 §3.1.
func ipv4Header(hlen, total int, proto byte, flagsFrag uint16) []byte {
	h := make([]byte, hlen)
	h[0] = 4<<4 | byte(hlen/4)
	switch runtime.GOOS {
	case "darwin", "ios", "dragonfly", "netbsd":
		binary.NativeEndian.PutUint16(h[2:], uint16(total-hlen))
		binary.NativeEndian.PutUint16(h[6:], flagsFrag)
	default:
		binary.BigEndian.PutUint16(h[2:], uint16(total))
		binary.BigEndian.PutUint16(h[6:], flagsFrag)
	}
	h[8] = 64
	h[9] = proto
	copy(h[12:], []byte{192, 0, 2, 1, 192, 0, 2, 2})
	return h
}

func TestCheckIPv4Header(t *testing.T) {
	for _, tc := range []struct {
		name     string
		h        []byte
		n        int
		wantHlen int // 0: rejected
	}{
		{"plain", ipv4Header(20, 120, 50, 0), 120, 20},
		{"DF set", ipv4Header(20, 120, 50, 0x4000), 120, 20},
		{"options", ipv4Header(24, 120, 50, 0), 120, 24},
		{"longest options", ipv4Header(60, 120, 50, 0), 120, 60},
		{"header only", ipv4Header(20, 20, 50, 0), 20, 20},
		{"more fragments", ipv4Header(20, 120, 50, 0x2000), 120, 0},
		{"fragment offset", ipv4Header(20, 120, 50, 0x0001), 120, 0},
		{"last fragment", ipv4Header(20, 120, 50, 0x00b9), 120, 0},
		{"total length longer", ipv4Header(20, 121, 50, 0), 120, 0},
		{"total length shorter", ipv4Header(20, 119, 50, 0), 120, 0},
		{"not ESP", ipv4Header(20, 120, 47, 0), 120, 0},
		{"IHL 4", func() []byte { h := ipv4Header(20, 120, 50, 0); h[0] = 0x44; return h }(), 120, 0},
		{"IHL beyond datagram", ipv4Header(60, 40, 50, 0), 40, 0},
		{"version 6", func() []byte { h := ipv4Header(20, 120, 50, 0); h[0] = 0x65; return h }(), 120, 0},
		{"short", ipv4Header(20, 120, 50, 0)[:19], 120, 0},
		{"datagram shorter than a header", ipv4Header(20, 19, 50, 0), 19, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hlen, ok := checkIPv4Header(tc.h, tc.n)
			if ok != (tc.wantHlen != 0) || hlen != tc.wantHlen {
				t.Errorf("checkIPv4Header = %d, %v; want %d, %v", hlen, ok, tc.wantHlen, tc.wantHlen != 0)
			}
		})
	}
}

func TestEndpoint(t *testing.T) {
	e := NewEndpoint(netip.MustParseAddr("::ffff:198.51.100.7"))
	if got := e.DstIP(); got != netip.MustParseAddr("198.51.100.7") {
		t.Errorf("DstIP = %v, want the unmapped 198.51.100.7", got)
	}
	if got := e.DstToString(); got != "198.51.100.7" {
		t.Errorf("DstToString = %q", got)
	}
	if got := e.AddrPort(); got != netip.MustParseAddrPort("198.51.100.7:0") {
		t.Errorf("AddrPort = %v", got)
	}
	if e.SrcIP().IsValid() || e.SrcToString() != "" {
		t.Errorf("SrcIP, SrcToString = %v, %q; want none", e.SrcIP(), e.SrcToString())
	}
	want, _ := netip.MustParseAddrPort("198.51.100.7:0").MarshalBinary()
	if got := e.DstToBytes(); string(got) != string(want) {
		t.Errorf("DstToBytes = %x, want %x", got, want)
	}
	e6 := &Endpoint{dst: netip.MustParseAddrPort("[2001:db8::1]:4500")}
	if got := e6.DstToString(); got != "[2001:db8::1]:4500" {
		t.Errorf("DstToString = %q", got)
	}
}

func TestRawParseEndpoint(t *testing.T) {
	b := NewRawESP(netip.Addr{})
	for s, want := range map[string]string{
		"192.0.2.1":              "192.0.2.1",
		"192.0.2.1:4500":         "192.0.2.1",
		"::ffff:192.0.2.1":       "192.0.2.1",
		"2001:db8::1":            "2001:db8::1",
		"[2001:db8::1]:0":        "2001:db8::1",
		"fe80::1%eth0":           "fe80::1%eth0",
		"[fe80::1%eth0]:500":     "fe80::1%eth0",
		"[::ffff:192.0.2.1]:500": "192.0.2.1",
	} {
		ep, err := b.ParseEndpoint(s)
		if err != nil {
			t.Errorf("ParseEndpoint(%q): %v", s, err)
			continue
		}
		e := ep.(*Endpoint)
		if e.DstIP().String() != want || e.AddrPort().Port() != 0 {
			t.Errorf("ParseEndpoint(%q) = %v, want %s port 0", s, e.AddrPort(), want)
		}
	}
	for _, s := range []string{"", "192.0.2", "example.com", "192.0.2.1:", "[2001:db8::1"} {
		if _, err := b.ParseEndpoint(s); err == nil {
			t.Errorf("ParseEndpoint(%q): no error", s)
		}
	}
}

func TestRawClosed(t *testing.T) {
	b := NewRawESP(netip.MustParseAddr("127.0.0.1"))
	if err := b.Send([][]byte{{1}}, NewEndpoint(netip.MustParseAddr("127.0.0.1"))); err == nil {
		t.Error("Send on a Bind never opened: no error")
	}
	if err := b.Send([][]byte{{1}}, &conn.StdNetEndpoint{}); !errors.Is(err, conn.ErrWrongEndpointType) {
		t.Errorf("Send to a StdNetEndpoint: %v, want ErrWrongEndpointType", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("Close of a Bind never opened: %v", err)
	}
	if got, want := b.BatchSize(), rawBatchSize; got != want {
		t.Errorf("BatchSize = %d, want %d", got, want)
	}
}

func TestEndpointCache(t *testing.T) {
	var c endpointCache
	k := endpointKey{addr: netip.MustParseAddr("192.0.2.1")}
	e1 := c.get(k)
	if e2 := c.get(k); e1 != e2 {
		t.Error("two lookups of one address gave two endpoints")
	}
	if e1.DstIP() != k.addr {
		t.Errorf("endpoint for %v has address %v", k.addr, e1.DstIP())
	}
	for i := range 3 * maxCachedEndpoints {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if e := c.get(endpointKey{addr: a}); e.DstIP() != a {
			t.Fatalf("endpoint for %v has address %v", a, e.DstIP())
		}
		if len(c.m) > maxCachedEndpoints {
			t.Fatalf("cache holds %d endpoints, more than %d", len(c.m), maxCachedEndpoints)
		}
	}
	// Scoped addresses get a zone: the interface's name, or its index.
	ll := netip.MustParseAddr("fe80::1")
	if e := c.get(endpointKey{addr: ll, scope: 999999}); e.DstIP() != ll.WithZone("999999") {
		t.Errorf("scoped endpoint = %v, want %v", e.DstIP(), ll.WithZone("999999"))
	}
}
