package main

import (
	"strings"
	"testing"

	"github.com/greipsec/greipsec/gateway"
)

// TestPrintPathMTU: show's line for the path MTU says where the value
// comes from, how long ago it was learned, and what was done with packets
// too big for it.
func TestPrintPathMTU(t *testing.T) {
	age := int64(42)
	for _, tc := range []struct {
		p    gateway.PathMTUStatus
		want string
	}{
		{gateway.PathMTUStatus{Discovery: true, Configured: 1500, Current: 1400, InnerMTU: 1342, LearnedSeconds: &age,
			Fragmentation: "before-encryption", ICMPSent: 3, ICMPRateLimited: 1, FragmentedBefore: 5},
			"  path mtu 1400 (learned 42s ago; configured 1500), inner 1342, fragmentation before-encryption: 3 answered with ICMP, 1 over the rate limit, 5 fragmented before encryption, 0 outer fragmented\n"},
		{gateway.PathMTUStatus{Discovery: true, Configured: 1500, Current: 1500, InnerMTU: 1442, Fragmentation: "before-encryption"},
			"  path mtu 1500 (configured; no smaller path learned), inner 1442"},
		{gateway.PathMTUStatus{Configured: 1400, Current: 1400, InnerMTU: 1342, Fragmentation: "after-encryption"},
			"  path mtu 1400 (configured; discovery off), inner 1342, fragmentation after-encryption"},
	} {
		var b strings.Builder
		printPathMTU(&b, &tc.p)
		if !strings.HasPrefix(b.String(), tc.want) {
			t.Errorf("got  %q\nwant %q...", b.String(), tc.want)
		}
	}
}
