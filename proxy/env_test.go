package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/greipsec/greipsec/internal/nstest"
	"github.com/greipsec/greipsec/tun/netstack"
)

// env is site A (this side: a netstack, and the proxies on loopback) and
// site B (the far side: a netstack with services) joined by a tunnel
// through a real in-process dataplane. B runs:
//
//	:53  DNS (UDP and TCP) for the zone below
//	:80  HTTP, answering "hello from site B <path>"
//	:7   TCP and UDP echo
type env struct {
	*nstest.Pair
	zone *nstest.Zone
}

const webName = "web.site-b.example"

func newEnv(t *testing.T) *env {
	t.Helper()
	p := nstest.NewPair(t, func(side string, c *netstack.Config) {
		if side == "a" {
			c.DNS = []netip.AddrPort{netip.AddrPortFrom(nstest.InnerB.Addr(), 53)}
		}
	})
	e := &env{Pair: p, zone: &nstest.Zone{Addrs: map[string][]netip.Addr{
		webName + ".":          {nstest.InnerB.Addr()},
		"ns.site-b.example.":   {nstest.InnerB.Addr()},
		"echo.site-b.example.": {nstest.InnerB.Addr()},
	}}}
	pc, err := p.B.ListenPacket("udp", ":53")
	if err != nil {
		t.Fatal(err)
	}
	l, err := p.B.Listen("tcp", ":53")
	if err != nil {
		t.Fatal(err)
	}
	nstest.ServeDNS(t, e.zone, pc, l)

	web, err := p.B.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from site B %s", r.URL.Path)
	})}
	go srv.Serve(web)
	t.Cleanup(func() { srv.Close() })

	echo, err := p.B.Listen("tcp", ":7")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
				c.(interface{ CloseWrite() error }).CloseWrite()
			}()
		}
	}()
	uecho, err := p.B.ListenPacket("udp", ":7")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uecho.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := uecho.ReadFrom(buf)
			if err != nil {
				return
			}
			uecho.WriteTo(buf[:n], from)
		}
	}()
	return e
}

// serve runs a proxy's Serve on a fresh loopback listener until the test
// ends, and checks that it then returns nil. It returns the listener's
// address.
func serve(t *testing.T, run func(context.Context, net.Listener) error) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, l, run)
}

func serveOn(t *testing.T, l net.Listener, run func(context.Context, net.Listener) error) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve returned %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after its context ended")
		}
	})
	return l.Addr().String()
}
