package netstack_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/greipsec/greipsec/internal/nstest"
	"github.com/greipsec/greipsec/tun/netstack"
)

// dnsPair is a netstack pair where B runs a DNS server for zone on port 53
// (UDP and TCP) and A uses it.
func dnsPair(t *testing.T, zone *nstest.Zone, servers ...netip.AddrPort) *nstest.Pair {
	t.Helper()
	if len(servers) == 0 {
		servers = []netip.AddrPort{netip.AddrPortFrom(nstest.InnerB.Addr(), 0)}
	}
	p := nstest.NewPair(t, func(side string, c *netstack.Config) {
		if side == "a" {
			c.DNS = servers
		}
	})
	pc, err := p.B.ListenPacket("udp", ":53")
	if err != nil {
		t.Fatal(err)
	}
	l, err := p.B.Listen("tcp", ":53")
	if err != nil {
		t.Fatal(err)
	}
	nstest.ServeDNS(t, zone, pc, l)
	return p
}

func testZone() *nstest.Zone {
	var big []netip.Addr
	for i := range 100 {
		big = append(big, netip.AddrFrom4([4]byte{10, 9, byte(i / 256), byte(i)}))
	}
	return &nstest.Zone{
		Addrs: map[string][]netip.Addr{
			"host.site-b.example.":   {netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("fd00::1234")},
			"v4only.site-b.example.": {netip.MustParseAddr("10.1.2.4")},
			"big.site-b.example.":    big,
		},
		CNAMEs: map[string]string{
			"alias.site-b.example.":  "alias2.site-b.example.",
			"alias2.site-b.example.": "host.site-b.example.",
		},
		Truncate: map[string]bool{"big.site-b.example.": true},
	}
}

func TestLookup(t *testing.T) {
	zone := testZone()
	p := dnsPair(t, zone)
	ctx := context.Background()
	for _, tc := range []struct {
		network, host string
		want          []string
	}{
		{"ip", "host.site-b.example", []string{"fd00::1234", "10.1.2.3"}},
		{"ip4", "HOST.site-b.example.", []string{"10.1.2.3"}},
		{"ip6", "host.site-b.example", []string{"fd00::1234"}},
		{"ip", "alias.site-b.example", []string{"fd00::1234", "10.1.2.3"}},
		{"ip", "v4only.site-b.example", []string{"10.1.2.4"}},
		{"ip", "192.0.2.77", []string{"192.0.2.77"}},
	} {
		got, err := p.A.LookupNetIP(ctx, tc.network, tc.host)
		if err != nil {
			t.Errorf("LookupNetIP(%s, %s): %v", tc.network, tc.host, err)
			continue
		}
		var gs []string
		for _, a := range got {
			gs = append(gs, a.String())
		}
		if !slices.Equal(gs, tc.want) {
			t.Errorf("LookupNetIP(%s, %s) = %v, want %v", tc.network, tc.host, gs, tc.want)
		}
	}

	// Truncated over UDP: asked again over TCP.
	got, err := p.A.LookupNetIP(ctx, "ip4", "big.site-b.example")
	if err != nil || len(got) != 100 {
		t.Errorf("truncated answer: got %d addresses, %v; want 100 over TCP", len(got), err)
	}

	_, err = p.A.LookupNetIP(ctx, "ip", "nope.site-b.example")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound || de.Name != "nope.site-b.example" {
		t.Errorf("unknown name: %v, want a not-found *net.DNSError", err)
	}
	_, err = p.A.LookupNetIP(ctx, "ip6", "v4only.site-b.example")
	if !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("no AAAA records: %v, want a not-found *net.DNSError", err)
	}

	// Names work for dialing.
	l, err := p.B.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	// host.site-b.example's addresses are not B's: dial a name for B.
	zone.Addrs["b.site-b.example."] = []netip.Addr{nstest.InnerB.Addr()}
	c, err := p.A.DialContext(ctx, "tcp", "b.site-b.example:80")
	if err != nil {
		t.Fatalf("dial by name: %v", err)
	}
	c.Close()
}

// TestLookupStrayResponses checks that answers with the wrong ID are
// ignored, as an off-path spoofer's would be.
func TestLookupStrayResponses(t *testing.T) {
	zone := testZone()
	zone.StrayFirst = true
	p := dnsPair(t, zone)
	got, err := p.A.LookupNetIP(context.Background(), "ip4", "host.site-b.example")
	if err != nil || len(got) != 1 || got[0] != netip.MustParseAddr("10.1.2.3") {
		t.Errorf("got %v, %v; want 10.1.2.3", got, err)
	}
}

// TestLookupFailover checks that a server that fails is passed over.
func TestLookupFailover(t *testing.T) {
	zone := testZone()
	bad := &nstest.Zone{Fail: true}
	p := dnsPair(t, zone, netip.AddrPortFrom(nstest.InnerB.Addr(), 5353), netip.AddrPortFrom(nstest.InnerB.Addr(), 53))
	pc, err := p.B.ListenPacket("udp", ":5353")
	if err != nil {
		t.Fatal(err)
	}
	nstest.ServeDNS(t, bad, pc, nil)
	got, err := p.A.LookupNetIP(context.Background(), "ip4", "host.site-b.example")
	if err != nil || len(got) != 1 {
		t.Errorf("got %v, %v; want the second server's answer", got, err)
	}
	if bad.Queries.Load() == 0 {
		t.Error("the first server was not asked")
	}
}

// TestLookupTimeout checks that a lookup to a server that never answers
// ends with the context, as a timeout.
func TestLookupTimeout(t *testing.T) {
	p := nstest.NewPair(t, func(side string, c *netstack.Config) {
		c.DNS = []netip.AddrPort{netip.MustParseAddrPort("10.255.0.2:53")} // nothing listens
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.A.LookupNetIP(ctx, "ip", "host.site-b.example")
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("got %v after %v, want an error within the context's time", err, time.Since(start))
	}
}
