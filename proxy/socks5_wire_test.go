package proxy

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

// The byte strings below are written out by hand from the diagrams of
// RFC 1928 §4-§7 and RFC 1929 §2, not produced by the encoders under test.

func TestReadRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		cmd  byte
		want socksAddr
		err  error
	}{
		{"IPv4 CONNECT", []byte{5, 1, 0, 1, 10, 255, 0, 2, 0, 80}, cmdConnect,
			socksAddr{IP: netip.MustParseAddr("10.255.0.2"), Port: 80}, nil},
		{"IPv6 UDP ASSOCIATE", append(append([]byte{5, 3, 0, 4}, netip.MustParseAddr("fd00::2").AsSlice()...), 0x13, 0x88), cmdUDPAssociate,
			socksAddr{IP: netip.MustParseAddr("fd00::2"), Port: 5000}, nil},
		{"domain", append(append([]byte{5, 1, 0, 3, 11}, "example.com"...), 1, 187), cmdConnect,
			socksAddr{Name: "example.com", Port: 443}, nil},
		{"domain that is an address", append(append([]byte{5, 1, 0, 3, 8}, "10.0.0.7"...), 0, 22), cmdConnect,
			socksAddr{IP: netip.MustParseAddr("10.0.0.7"), Port: 22}, nil},
		{"IPv4-mapped IPv6", append(append([]byte{5, 1, 0, 4}, netip.MustParseAddr("::ffff:10.0.0.1").AsSlice()...), 0, 80), cmdConnect,
			socksAddr{IP: netip.MustParseAddr("10.0.0.1"), Port: 80}, nil},
		{"unknown address type", []byte{5, 1, 0, 9, 1, 2, 3, 4}, cmdConnect, socksAddr{}, errAddressType},
	} {
		cmd, got, err := readRequest(bytes.NewReader(tc.in))
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || cmd != tc.cmd || got != tc.want {
			t.Errorf("%s: got %d %+v %v, want %d %+v", tc.name, cmd, got, err, tc.cmd, tc.want)
		}
	}
	for _, bad := range [][]byte{
		{4, 1, 0, 1, 10, 0, 0, 1, 0, 80}, // SOCKS4
		{5, 1, 0, 1, 10, 0},              // truncated address
		{5, 1, 0, 3, 0, 0, 80},           // empty name
		{5, 1, 0, 3, 5, 'a', 'b'},        // truncated name
		{},
	} {
		if _, _, err := readRequest(bytes.NewReader(bad)); err == nil {
			t.Errorf("readRequest(%x) accepted", bad)
		}
	}
}

func TestReadGreetingAndUserPass(t *testing.T) {
	m, err := readGreeting(bytes.NewReader([]byte{5, 2, 0, 2}))
	if err != nil || !bytes.Equal(m, []byte{0, 2}) {
		t.Errorf("greeting: %x %v", m, err)
	}
	for _, bad := range [][]byte{{5, 0}, {4, 1, 0}, {5, 3, 0}} {
		if _, err := readGreeting(bytes.NewReader(bad)); err == nil {
			t.Errorf("readGreeting(%x) accepted", bad)
		}
	}
	u, p, err := readUserPass(bytes.NewReader(append(append([]byte{1, 5}, "alice"...), append([]byte{6}, "s3cret"...)...)))
	if err != nil || u != "alice" || p != "s3cret" {
		t.Errorf("user/pass: %q %q %v", u, p, err)
	}
	if _, _, err := readUserPass(bytes.NewReader([]byte{5, 1, 'a', 1, 'b'})); err == nil {
		t.Error("readUserPass accepted version 5")
	}
}

func TestEncode(t *testing.T) {
	if got, want := appendReply(nil, repSucceeded, netip.MustParseAddrPort("10.255.0.1:4321")), []byte{5, 0, 0, 1, 10, 255, 0, 1, 0x10, 0xe1}; !bytes.Equal(got, want) {
		t.Errorf("reply = %x, want %x", got, want)
	}
	if got, want := appendReply(nil, repConnectionRefused, netip.AddrPort{}), []byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}; !bytes.Equal(got, want) {
		t.Errorf("failure reply = %x, want %x", got, want)
	}
	v6 := netip.MustParseAddrPort("[fd00::1]:53")
	want := append(append([]byte{0, 0, 0, 4}, v6.Addr().AsSlice()...), 0, 53)
	if got := appendUDPHeader(nil, v6); !bytes.Equal(got, want) {
		t.Errorf("UDP header = %x, want %x", got, want)
	}
}

func TestParseUDPHeader(t *testing.T) {
	dst, data, err := parseUDPHeader([]byte{0, 0, 0, 1, 10, 255, 0, 2, 0, 53, 'q', 'u', 'e', 'r', 'y'})
	if err != nil || dst != (socksAddr{IP: netip.MustParseAddr("10.255.0.2"), Port: 53}) || string(data) != "query" {
		t.Errorf("IPv4: %+v %q %v", dst, data, err)
	}
	dst, data, err = parseUDPHeader(append(append([]byte{0, 0, 0, 3, 9}, "ns.site-b"...), 0, 53))
	if err != nil || dst != (socksAddr{Name: "ns.site-b", Port: 53}) || len(data) != 0 {
		t.Errorf("domain: %+v %q %v", dst, data, err)
	}
	for _, tc := range []struct {
		in   []byte
		want string
	}{
		{[]byte{0, 0, 1, 1, 10, 0, 0, 1, 0, 53}, "fragment"},
		{[]byte{0, 1, 0, 1, 10, 0, 0, 1, 0, 53}, "reserved"},
		{[]byte{0, 0, 0, 1, 10, 0, 0}, "shorter"},
		{[]byte{0, 0, 0, 4, 1}, "shorter"},
		{[]byte{0, 0, 0, 3}, "shorter"},
		{[]byte{0, 0, 0, 3, 0, 0, 53}, "empty"},
		{[]byte{0, 0, 0, 7, 0, 0, 53}, "address type"},
		{[]byte{0, 0}, "shorter"},
	} {
		if _, _, err := parseUDPHeader(tc.in); err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
			t.Errorf("parseUDPHeader(%x) = %v, want an error about %q", tc.in, err, tc.want)
		}
	}
}

// FuzzParseUDPHeader feeds arbitrary datagrams, as any local program may
// send to a relay port, to the UDP header parser: it must not panic, and
// what it returns must be a part of its input that re-encodes to it.
func FuzzParseUDPHeader(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 10, 255, 0, 2, 0, 53, 1, 2, 3})
	f.Add(append(append([]byte{0, 0, 0, 4}, make([]byte, 16)...), 0, 53))
	f.Add(append(append([]byte{0, 0, 0, 3, 7}, "example"...), 0, 53, 9))
	f.Add([]byte{0, 0, 1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		dst, data, err := parseUDPHeader(b)
		if err != nil {
			return
		}
		if len(data) > len(b) || (len(data) > 0 && &data[len(data)-1] != &b[len(b)-1]) {
			t.Fatalf("data is not the tail of the datagram")
		}
		hdr := b[:len(b)-len(data)]
		reencoded := appendUDPHeader(nil, netip.AddrPortFrom(dst.IP, dst.Port))
		switch {
		case b[3] == atypDomain:
			if dst.Name == "" && !dst.IP.IsValid() {
				t.Fatalf("%x: a domain datagram with neither a name nor an address", b)
			}
		case b[3] == atypIPv6 && dst.IP.Is4(): // IPv4-mapped, unmapped
		case !bytes.Equal(reencoded, hdr):
			t.Fatalf("%x parsed as %+v, which encodes as %x", b, dst, reencoded)
		}
	})
}

// FuzzReadRequest feeds arbitrary bytes, as any local client may send, to
// the negotiation parsers: they must not panic or read more than a message.
func FuzzReadRequest(f *testing.F) {
	f.Add([]byte{5, 1, 0, 1, 10, 255, 0, 2, 0, 80})
	f.Add(append(append([]byte{5, 1, 0, 3, 11}, "example.com"...), 1, 187))
	f.Add([]byte{1, 1, 'a', 1, 'b'})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		if _, _, err := readRequest(r); err == nil && len(b)-r.Len() > 4+1+255+2 {
			t.Fatalf("read %d bytes for one request", len(b)-r.Len())
		}
		readGreeting(bytes.NewReader(b))
		readUserPass(bytes.NewReader(b))
	})
}
