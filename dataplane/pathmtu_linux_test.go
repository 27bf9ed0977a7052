package dataplane

import (
	"net/netip"
	"testing"
)

// TestKernelPathMTU asks the kernel for the path MTU towards loopback
// addresses of both families (the loopback's MTU: no namespace needed),
// and towards an address of neither, which fails without a panic.
func TestKernelPathMTU(t *testing.T) {
	var k kernelPathMTU
	defer k.close()
	for _, a := range []string{"127.0.0.1:4500", "[::1]:0", "127.0.0.1:0", "[::1]:4500"} {
		n, err := k.query(netip.MustParseAddrPort(a))
		if err != nil {
			t.Skipf("%s: %v (no loopback of this family here)", a, err)
		}
		if n < 1280 {
			t.Errorf("%s: path MTU %d", a, n)
		}
	}
	if _, err := k.query(netip.AddrPort{}); err == nil {
		t.Error("no error for the zero address")
	}
	if n, err := KernelPathMTU(netip.MustParseAddrPort("127.0.0.1:4500")); err != nil || n < 1280 {
		t.Errorf("KernelPathMTU: %d, %v", n, err)
	}
}
