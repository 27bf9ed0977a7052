package tun

import (
	"net/netip"
	"testing"
)

func TestAddressString(t *testing.T) {
	for _, tc := range []struct {
		a    Address
		want string
	}{
		{Address{Prefix: netip.MustParsePrefix("10.255.0.1/30")}, "10.255.0.1/30"},
		{Address{Prefix: netip.MustParsePrefix("10.255.0.1/30"), Peer: netip.MustParseAddr("10.255.0.2")}, "10.255.0.1/30 peer 10.255.0.2"},
		{Address{Prefix: netip.MustParsePrefix("fd00::1/64")}, "fd00::1/64"},
	} {
		if got := tc.a.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.a, got, tc.want)
		}
	}
}
