package netstack_test

import (
	"context"
	"fmt"
	"io"
	"net/netip"

	"github.com/greipsec/greipsec/internal/nstest"
	"github.com/greipsec/greipsec/tun"
	"github.com/greipsec/greipsec/tun/netstack"
)

// Two sites, each with a Stack as the tunnel's inner side: a service
// listens on site B's tunnel address and a program on site A reaches it,
// with no TUN device and no privilege.
func Example() {
	_, _, mtu := nstest.TunnelConfigs()
	newStack := func(addr string) *netstack.Stack {
		s, err := netstack.New(netstack.Config{
			MTU:       mtu,
			Addresses: []tun.Address{{Prefix: netip.MustParsePrefix(addr)}},
		})
		if err != nil {
			panic(err)
		}
		return s
	}
	a, b := newStack("10.255.0.1/24"), newStack("10.255.0.2/24")
	// A gateway adds each Stack as a tunnel's inner device
	// (dataplane.Device.AddTunnel); here a test helper joins two.
	ca, cb, _ := nstest.TunnelConfigs()
	_, _, closeAll, err := nstest.JoinDevices(ca, cb, a, b)
	if err != nil {
		panic(err)
	}
	defer closeAll()

	l, err := b.Listen("tcp", ":80")
	if err != nil {
		panic(err)
	}
	go func() {
		c, err := l.Accept()
		if err == nil {
			io.WriteString(c, "hello from site B")
			c.Close()
		}
	}()

	c, err := a.DialContext(context.Background(), "tcp", "10.255.0.2:80")
	if err != nil {
		panic(err)
	}
	msg, _ := io.ReadAll(c)
	fmt.Println(string(msg))
	// Output: hello from site B
}
