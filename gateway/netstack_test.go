package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/proxy"
	"golang.zx2c4.com/wireguard/conn"

	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/dataplane/link"
	"github.com/greipsec/greipsec/gateway/config"
	"github.com/greipsec/greipsec/internal/nstest"
)

// The tests in this file run two whole gateways in one process with
// inner = "netstack" on both sides, as an unprivileged container would:
// no TUN device, no port 500 (IKE starts on the ESP-in-UDP ports, 14500
// on A and 4500 on B, over an in-memory link), and local programs reach
// the far site through A's SOCKS5 and HTTP proxies and forwards.

// nsConf is one side of a netstack pair: A (192.0.2.1, 10.255.0.1,
// udp-port 14500, active) or B (192.0.2.2, 10.255.0.2, udp-port 4500,
// passive), with extra appended to the [[tunnel]] table and ike (after
// [tunnel.ike]) appended at the end.
func nsConf(side, extra, ike string) string {
	local, peer, port, peerPort, role := 1, 2, 14500, 4500, "active"
	if side == "b" {
		local, peer, port, peerPort, role = 2, 1, 4500, 14500, "passive"
	}
	return fmt.Sprintf(`[[tunnel]]
name = "ns0"
inner = "netstack"
transport = "udp"
udp-port = %d
peer-udp-port = %d
local = "192.0.2.%d"
peer = "192.0.2.%d"
addresses = ["10.255.0.%d/30"]
%s
[tunnel.ike]
role = %q
port-500 = false
psk = "in-process-netstack-psk-0123456789"
%s
`, port, peerPort, local, peer, local, extra, role, ike)
}

// newNetstackPair makes two sides whose ESP-in-UDP sockets (A's port
// 14500, B's 4500) are joined by an in-memory link. Nothing may open an
// IKE socket on port 500: IKE starts on the ESP-in-UDP ports.
func newNetstackPair(t *testing.T) (a, b *testSide) {
	la, lb := link.NewMemoryPair(netip.AddrPortFrom(outerA, 14500), netip.AddrPortFrom(outerB, 4500))
	side := func(l *link.Memory) *testSide {
		s := &testSide{log: new(syncBuffer)}
		s.opts = Options{
			Logger: slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Inner: func(*config.Tunnel, int) (Inner, error) {
				t.Error("a TUN device was asked for")
				return Inner{}, fmt.Errorf("no TUN here")
			},
			Bind: func(tr dataplane.Transport, _ netip.Addr, port uint16) (conn.Bind, error) {
				if tr != dataplane.TransportUDP {
					t.Errorf("a %v socket was asked for", tr)
				}
				return l, nil
			},
			ListenIKE: func(local netip.AddrPort) (PacketConn, error) {
				t.Errorf("an IKE socket on %v was asked for", local)
				return nil, fmt.Errorf("no port 500 here")
			},
			Workers: 2,
		}
		return s
	}
	return side(la), side(lb)
}

// waitNetstackUp waits until tunnel ns0 is up on both sides.
func waitNetstackUp(t *testing.T, a, b *testSide) (TunnelStatus, TunnelStatus) {
	t.Helper()
	return waitUp(t, &testPair{a: a, b: b}, "ns0")
}

// TestNetstackPair: two netstack gateways with IKEv2 started on the
// ESP-in-UDP ports; HTTP through A's SOCKS5 proxy (a name resolved by B's
// DNS server, through the tunnel) and HTTP proxy to a server on B's stack,
// UDP through a local-to-far forward, TCP from B's side to a service on
// A's host through a far-to-local forward, and the listeners' counters in
// the status.
func TestNetstackPair(t *testing.T) {
	a, b := newNetstackPair(t)
	a.start(t, nsConf("a", `routes = ["10.2.0.0/24"]
dns = ["10.255.0.2"]
[tunnel.socks5]
listen = "127.0.0.1:0"
[tunnel.http-proxy]
listen = "127.0.0.1:0"
[[tunnel.forward]]
proto = "udp"
direction = "local-to-far"
listen = "127.0.0.1:0"
target = "10.255.0.2:7"
[[tunnel.forward]]
proto = "tcp"
direction = "far-to-local"
listen = ":8080"
target = "`+startLocalHTTP(t, "from A's host")+`"`, ""))
	b.start(t, nsConf("b", "", ""))
	sa, sb := waitNetstackUp(t, a, b)
	if sa.Inner != "netstack" || sb.Inner != "netstack" || sa.Netstack == nil || len(sa.Netstack.Listeners) != 4 {
		t.Fatalf("A's inner side: %s %s", sa.Inner, jsonOf(sa.Netstack))
	}
	if sa.IKE.LocalEndpoint != "192.0.2.1:14500" || sa.IKE.PeerEndpoint != "192.0.2.2:4500" || !sa.ChildSAs[0].UDPEncap {
		t.Errorf("A's IKE endpoints %s -> %s, udp encap %v; want 14500 -> 4500 with ESP in UDP",
			sa.IKE.LocalEndpoint, sa.IKE.PeerEndpoint, sa.ChildSAs[0].UDPEncap)
	}

	// B's side: a web server and a DNS server on its stack, through the
	// embedding API.
	netB, err := b.gw.Net("ns0")
	if err != nil {
		t.Fatal(err)
	}
	serveHTTP(t, netB, ":80", "hello from B's stack")
	pc, err := netB.ListenPacket("udp", ":53")
	if err != nil {
		t.Fatal(err)
	}
	zone := &nstest.Zone{Addrs: map[string][]netip.Addr{"web.far.example.": {netip.MustParseAddr("10.255.0.2")}}}
	nstest.ServeDNS(t, zone, pc, nil)
	echo, err := netB.ListenPacket("udp", ":7")
	if err != nil {
		t.Fatal(err)
	}
	go udpEcho(echo)
	t.Cleanup(func() { echo.Close() })

	socks, httpProxy, udpFwd := sa.Netstack.Listeners[0], sa.Netstack.Listeners[1], sa.Netstack.Listeners[2]
	if socks.Kind != "socks5" || httpProxy.Kind != "http-proxy" || udpFwd.Kind != "forward" || socks.Resolve != "far" {
		t.Fatalf("A's listeners: %s", jsonOf(sa.Netstack.Listeners))
	}

	// SOCKS5 with a name that only B's DNS server knows.
	d, err := proxy.SOCKS5("tcp", socks.Listen, nil, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	viaSOCKS := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: d.(proxy.ContextDialer).DialContext,
	}}
	if got := get(t, viaSOCKS, "http://web.far.example/"); got != "hello from B's stack" {
		t.Errorf("GET through SOCKS5: %q", got)
	}
	if zone.Queries.Load() == 0 {
		t.Error("B's DNS server was not asked: the name was not resolved on the far site")
	}
	// The HTTP proxy, with an absolute URI.
	u, _ := url.Parse("http://" + httpProxy.Listen)
	viaHTTP := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(u)}}
	if got := get(t, viaHTTP, "http://10.255.0.2/"); got != "hello from B's stack" {
		t.Errorf("GET through the HTTP proxy: %q", got)
	}
	// UDP through the local-to-far forward to B's echo server.
	c, err := net.Dial("udp", udpFwd.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("ping over udp")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "ping over udp" {
		t.Errorf("UDP echo through the forward: %q, %v", buf[:n], err)
	}
	// From B's stack to A's far-to-local forward, on to A's host.
	viaB := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: netB.DialContext}}
	if got := get(t, viaB, "http://10.255.0.1:8080/"); got != "from A's host" {
		t.Errorf("GET from B through A's far-to-local forward: %q", got)
	}

	st, _ := a.gw.TunnelStatus("ns0")
	for i, want := range []uint64{1, 1, 1, 1} {
		if l := st.Netstack.Listeners[i]; l.Accepted < want || l.Failed != 0 {
			t.Errorf("listener %s %s: accepted %d, failed %d", l.Kind, l.Listen, l.Accepted, l.Failed)
		}
	}
	if _, err := a.gw.Net("nope"); err == nil {
		t.Error("Net of an unknown tunnel: no error")
	}
	rec := httptest.NewRecorder()
	a.gw.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		fmt.Sprintf(`greipsec_listener_connections_total{listen=%q,listener="socks5",result="accepted",tunnel="ns0"} 1`, socks.Listen),
		fmt.Sprintf(`greipsec_listener_active_connections{listen=%q,listener="forward-udp-local-to-far",tunnel="ns0"}`, udpFwd.Listen),
		`greipsec_listener_dropped_datagrams_total{listen=":8080",listener="forward-tcp-far-to-local",tunnel="ns0"} 0`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestNetstackReloadKeepsListeners: a reload that leaves a netstack tunnel
// unchanged keeps its listeners and the connections through them; one
// that changes the tunnel closes them and opens the new ones.
func TestNetstackReloadKeepsListeners(t *testing.T) {
	a, b := newNetstackPair(t)
	confA := nsConf("a", `[tunnel.socks5]
listen = "127.0.0.1:0"`, "")
	a.start(t, confA)
	b.start(t, nsConf("b", "", ""))
	sa, _ := waitNetstackUp(t, a, b)
	socksAddr := sa.Netstack.Listeners[0].Listen

	netB, err := b.gw.Net("ns0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := netB.Listen("tcp", ":9000")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	d, err := proxy.SOCKS5("tcp", socksAddr, nil, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Dial("tcp", "10.255.0.2:9000")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip := func(msg string) error {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(msg)); err != nil {
			return err
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		if string(buf) != msg {
			return fmt.Errorf("echo %q, want %q", buf, msg)
		}
		return nil
	}
	if err := roundTrip("before"); err != nil {
		t.Fatal(err)
	}
	res, err := a.reload(t, confA)
	if err != nil || len(res.Unchanged) != 1 {
		t.Fatalf("reload: %+v, %v", res, err)
	}
	if err := roundTrip("after an unchanged reload"); err != nil {
		t.Errorf("the connection through the SOCKS5 proxy did not survive an unchanged reload: %v", err)
	}
	if st, _ := a.gw.TunnelStatus("ns0"); st.Netstack.Listeners[0].Listen != socksAddr {
		t.Errorf("the SOCKS5 listener moved from %s to %s", socksAddr, st.Netstack.Listeners[0].Listen)
	}

	// A changed tunnel (another keepalive interval) starts again: the old
	// listener and its connections are gone.
	res, err = a.reload(t, nsConf("a", `[tunnel.socks5]
listen = "127.0.0.1:0"`, `nat-keepalive = "15s"`))
	if err != nil || len(res.Changed) != 1 {
		t.Fatalf("reload: %+v, %v", res, err)
	}
	if err := roundTrip("after a changing reload"); err == nil {
		t.Error("a connection through the replaced SOCKS5 proxy still works")
	}
	if _, err := net.DialTimeout("tcp", socksAddr, time.Second); err == nil {
		t.Errorf("the replaced SOCKS5 listener %s still accepts", socksAddr)
	}
	sa, _ = waitNetstackUp(t, a, b)
	if len(sa.Netstack.Listeners) != 1 || sa.Netstack.Listeners[0].Listen == "" {
		t.Errorf("no SOCKS5 listener after the changing reload: %s", jsonOf(sa.Netstack))
	}
}

// TestNetstackListenerInUse: a listener that cannot be opened fails the
// tunnel's start, one line saying which, and leaves nothing behind.
func TestNetstackListenerInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	a, _ := newNetstackPair(t)
	cfg, err := a.parse(t, nsConf("a", fmt.Sprintf(`[tunnel.http-proxy]
listen = "127.0.0.1:0"
[tunnel.socks5]
listen = %q`, busy.Addr()), ""))
	if err != nil {
		t.Fatal(err)
	}
	gw, err := New(cfg, a.opts)
	if err == nil {
		gw.Close()
		t.Fatal("New: no error with the SOCKS5 port in use")
	}
	if !strings.Contains(err.Error(), `tunnel "ns0": socks5: listen tcp `+busy.Addr().String()) ||
		!strings.Contains(err.Error(), "another program holds the port") {
		t.Errorf("error: %v", err)
	}
}

// startLocalHTTP starts an HTTP server on the host's loopback that answers
// body, and returns its address.
func startLocalHTTP(t *testing.T, body string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) })}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// serveHTTP serves body over HTTP on a listener of a stack.
func serveHTTP(t *testing.T, st interface {
	Listen(network, address string) (net.Listener, error)
}, addr, body string) {
	t.Helper()
	l, err := st.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) })}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

// udpEcho sends back every datagram until pc is closed.
func udpEcho(pc net.PacketConn) {
	buf := make([]byte, 2048)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		pc.WriteTo(buf[:n], from)
	}
}

// get fetches url with c and returns the body, failing the test on an error.
func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
