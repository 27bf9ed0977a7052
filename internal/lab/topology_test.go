//go:build linux

package lab

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"
)

// TestTopology adds a third host joined to A by a second veth pair, with a
// LAN, pings across that pair and from A to the LAN through a route,
// and checks that Close removes the extra namespace too.
func TestTopology(t *testing.T) {
	l := newLab(t)
	if _, err := l.AddHost("a"); err == nil {
		t.Error(`AddHost("a"): no error`)
	}
	c, err := l.AddHost("c")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AddHost("c"); err == nil {
		t.Error(`second AddHost("c"): no error`)
	}
	ac, cc, err := l.Connect(&l.A, c,
		[]netip.Prefix{netip.MustParsePrefix("198.51.100.1/24"), netip.MustParsePrefix("2001:db8:100::1/64")},
		[]netip.Prefix{netip.MustParsePrefix("198.51.100.2/24"), netip.MustParsePrefix("2001:db8:100::2/64")})
	if err != nil {
		t.Fatal(err)
	}
	if ac != l.Prefix+"a1" || cc != l.Prefix+"c0" {
		t.Errorf("link names %s, %s; want %sa1, %sc0", ac, cc, l.Prefix, l.Prefix)
	}
	lan, err := l.AddLAN(c, "lan", netip.MustParsePrefix("10.2.0.1/24"))
	if err != nil {
		t.Fatal(err)
	}
	if lan != l.Prefix+"clan" {
		t.Errorf("LAN %s, want %sclan", lan, l.Prefix)
	}
	for _, dst := range []string{"198.51.100.2", "2001:db8:100::2"} {
		if n, err := l.Ping(&l.A, netip.MustParseAddr(dst), 2, 2*time.Second); err != nil || n != 2 {
			t.Errorf("ping %s from A: %d/2, %v", dst, n, err)
		}
	}
	if err := l.Do(&l.A, func() error {
		return routeAdd("10.2.0.0/24", "198.51.100.2")
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := l.Ping(&l.A, netip.MustParseAddr("10.2.0.1"), 2, 2*time.Second); err != nil || n != 2 {
		t.Errorf("ping the LAN of c from A: %d/2, %v", n, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(NetnsDir, c.Name)) {
		t.Errorf("%s still exists after Close", c.Name)
	}
}
