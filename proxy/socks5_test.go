package proxy_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/greipsec/greipsec/internal/nstest"
	"github.com/greipsec/greipsec/proxy"
)

func (e *env) socks5(t *testing.T, edit func(*proxy.SOCKS5)) (*proxy.SOCKS5, string) {
	s := &proxy.SOCKS5{Dialer: e.A, PacketListener: e.A, Resolver: e.A}
	if edit != nil {
		edit(s)
	}
	return s, serve(t, s.Serve)
}

// TestSOCKS5HTTPGet fetches a page from site B's web server through the
// SOCKS5 proxy with net/http's own SOCKS5 client: by name, resolved by the
// far site's DNS server, and by address.
func TestSOCKS5HTTPGet(t *testing.T) {
	e := newEnv(t)
	_, addr := e.socks5(t, nil)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "socks5", Host: addr})}, Timeout: 10 * time.Second}
	for _, host := range []string{webName, nstest.InnerB.Addr().String(), "[" + nstest.Inner6B.Addr().String() + "]"} {
		get(t, client, "http://"+host+"/index.html", "hello from site B /index.html")
	}
}

func get(t *testing.T, c *http.Client, u, want string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != want {
		t.Fatalf("GET %s: %s %q, want 200 %q", u, resp.Status, body, want)
	}
}

// socksRequest connects to the SOCKS5 server at addr, negotiates (with
// user and password when user is not empty), sends req and returns the
// connection and the reply's code and bound address. Messages are written
// out by hand from RFC 1928 and RFC 1929.
func socksRequest(t *testing.T, addr, user, password string, req []byte) (net.Conn, byte, netip.AddrPort) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	method := byte(0)
	if user != "" {
		method = 2
	}
	c.Write([]byte{5, 1, method})
	var sel [2]byte
	if _, err := io.ReadFull(c, sel[:]); err != nil || sel != [2]byte{5, method} {
		c.Close()
		return nil, 0xff, netip.AddrPort{}
	}
	if user != "" {
		c.Write(append(append(append([]byte{1, byte(len(user))}, user...), byte(len(password))), password...))
		var st [2]byte
		if _, err := io.ReadFull(c, st[:]); err != nil || st != [2]byte{1, 0} {
			c.Close()
			return nil, 0xfe, netip.AddrPort{}
		}
	}
	c.Write(req)
	var h [4]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		t.Fatalf("no reply to %x: %v", req, err)
	}
	n := 4
	if h[3] == 4 {
		n = 16
	}
	b := make([]byte, n+2)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	ip, _ := netip.AddrFromSlice(b[:n])
	return c, h[1], netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[n:]))
}

func connectIPv4(ip string, port uint16) []byte {
	a := netip.MustParseAddr(ip).As4()
	return binary.BigEndian.AppendUint16(append([]byte{5, 1, 0, 1}, a[:]...), port)
}

func connectName(name string, port uint16) []byte {
	return binary.BigEndian.AppendUint16(append([]byte{5, 1, 0, 3, byte(len(name))}, name...), port)
}

// TestSOCKS5Connect checks a CONNECT end to end (bound address, data both
// ways) and the reply code of each kind of failure.
func TestSOCKS5Connect(t *testing.T) {
	e := newEnv(t)
	_, addr := e.socks5(t, func(s *proxy.SOCKS5) { s.Limits.DialTimeout = 500 * time.Millisecond })
	_, noNames := e.socks5(t, func(s *proxy.SOCKS5) { s.Resolver = nil })
	_, noUDP := e.socks5(t, func(s *proxy.SOCKS5) { s.PacketListener = nil })

	c, rep, bound := socksRequest(t, addr, "", "", connectName("echo.site-b.example", 7))
	if rep != 0 || bound.Addr() != nstest.InnerA.Addr() || bound.Port() == 0 {
		t.Fatalf("CONNECT echo: reply %d bound %v, want 0 and A's tunnel address", rep, bound)
	}
	msg := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	go c.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo through CONNECT: %v", err)
	}
	c.Close()

	for _, tc := range []struct {
		name string
		addr string
		req  []byte
		want byte
	}{
		{"closed port", addr, connectIPv4("10.255.0.2", 9), 5},
		{"outside the tunnel's routes", addr, connectIPv4("203.0.113.9", 80), 3},
		{"unknown name", addr, connectName("nope.site-b.example", 80), 4},
		{"nobody has the address", addr, connectIPv4("10.255.0.3", 80), 6},
		{"name without a resolver", noNames, connectName(webName, 80), 8},
		{"BIND", addr, []byte{5, 2, 0, 1, 10, 255, 0, 2, 0, 80}, 7},
		{"unknown command", addr, []byte{5, 9, 0, 1, 10, 255, 0, 2, 0, 80}, 7},
		{"unknown address type", addr, []byte{5, 1, 0, 5, 10, 255, 0, 2, 0, 80}, 8},
		{"UDP ASSOCIATE without a packet listener", noUDP, []byte{5, 3, 0, 1, 0, 0, 0, 0, 0, 0}, 7},
		{"UDP ASSOCIATE for another host", addr, []byte{5, 3, 0, 1, 192, 0, 2, 99, 0, 0}, 2},
	} {
		c, rep, _ := socksRequest(t, tc.addr, "", "", tc.req)
		if rep != tc.want {
			t.Errorf("%s: reply %d, want %d", tc.name, rep, tc.want)
		}
		// The server closes the connection after a failure reply.
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("%s: connection still open (read %d bytes)", tc.name, n)
		}
		c.Close()
	}
}

// TestSOCKS5Auth checks RFC 1929 authentication: a client that offers no
// password method is refused, a wrong password is refused, the right one
// works, and so does net/http's client with credentials in the proxy URL.
func TestSOCKS5Auth(t *testing.T) {
	e := newEnv(t)
	s, addr := e.socks5(t, func(s *proxy.SOCKS5) { s.Users = map[string]string{"alice": "s3cret"} })

	if c, rep, _ := socksRequest(t, addr, "", "", connectIPv4("10.255.0.2", 80)); rep != 0xff {
		t.Errorf("no authentication offered: got reply %d, want no acceptable method", rep)
		c.Close()
	}
	if c, rep, _ := socksRequest(t, addr, "alice", "wrong", connectIPv4("10.255.0.2", 80)); rep != 0xfe {
		t.Errorf("wrong password: got reply %d, want authentication failure", rep)
		c.Close()
	}
	c, rep, _ := socksRequest(t, addr, "alice", "s3cret", connectIPv4("10.255.0.2", 80))
	if rep != 0 {
		t.Fatalf("right password: reply %d", rep)
	}
	c.Close()
	if got := s.Stats().Failed.Load(); got != 2 {
		t.Errorf("Failed = %d, want 2", got)
	}
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "socks5", Host: addr, User: url.UserPassword("alice", "s3cret")})}}
	get(t, client, "http://"+webName+"/x", "hello from site B /x")
}

// dnsQuery builds a query for the A record of name.
func dnsQuery(t *testing.T, id uint16, name string) []byte {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, RecursionDesired: true})
	b.StartQuestions()
	b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
	msg, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// TestSOCKS5UDPAssociate asks site B's DNS server for a name through a UDP
// association, to the server's address and to its name; checks that
// datagrams from another local port and replies from a far address the
// client never sent to are dropped; and that closing the control
// connection ends the association.
func TestSOCKS5UDPAssociate(t *testing.T) {
	e := newEnv(t)
	s, addr := e.socks5(t, nil)
	ctrl, rep, relayAddr := socksRequest(t, addr, "", "", []byte{5, 3, 0, 1, 0, 0, 0, 0, 0, 0})
	if rep != 0 || relayAddr.Addr() != netip.MustParseAddr("127.0.0.1") || relayAddr.Port() == 0 {
		t.Fatalf("UDP ASSOCIATE: reply %d, relay %v", rep, relayAddr)
	}
	u, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(relayAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()

	ask := func(hdr []byte, id uint16) (netip.Addr, []byte) {
		t.Helper()
		u.Write(append(append([]byte(nil), hdr...), dnsQuery(t, id, webName+".")...))
		u.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 2048)
		n, err := u.Read(buf)
		if err != nil {
			t.Fatalf("no answer through the relay: %v", err)
		}
		// The reply's header names the DNS server: 10.255.0.2:53.
		wantHdr := []byte{0, 0, 0, 1, 10, 255, 0, 2, 0, 53}
		if !bytes.HasPrefix(buf[:n], wantHdr) {
			t.Fatalf("reply header %x, want %x", buf[:min(n, 10)], wantHdr)
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[10:n])
		if err != nil || h.ID != id {
			t.Fatalf("DNS answer: %v, ID %d", err, h.ID)
		}
		p.SkipAllQuestions()
		a, err := p.AllAnswers()
		if err != nil || len(a) != 1 {
			t.Fatalf("answers %v, %v", a, err)
		}
		return netip.AddrFrom4(a[0].Body.(*dnsmessage.AResource).A), buf[10:n]
	}
	if got, _ := ask([]byte{0, 0, 0, 1, 10, 255, 0, 2, 0, 53}, 1); got != nstest.InnerB.Addr() {
		t.Errorf("%s resolved to %s, want %s", webName, got, nstest.InnerB.Addr())
	}
	nsHdr := append(append([]byte{0, 0, 0, 3, 17}, "ns.site-b.example"...), 0, 53)
	if got, _ := ask(nsHdr, 2); got != nstest.InnerB.Addr() {
		t.Errorf("via the server's name: resolved to %s", got)
	}

	// Another local port may not use the association.
	dropped := s.Stats().Dropped.Load()
	stranger, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(relayAddr))
	if err != nil {
		t.Fatal(err)
	}
	stranger.Write(append([]byte{0, 0, 0, 1, 10, 255, 0, 2, 0, 53}, dnsQuery(t, 3, webName+".")...))
	stranger.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := stranger.Read(make([]byte, 100)); err == nil {
		t.Errorf("a stranger's query was answered (%d bytes)", n)
	}
	stranger.Close()
	// A fragment is dropped.
	u.Write([]byte{0, 0, 1, 1, 10, 255, 0, 2, 0, 53, 1})
	waitFor(t, "the stranger's datagram and the fragment counted as dropped", func() bool { return s.Stats().Dropped.Load() >= dropped+2 })

	// Closing the control connection ends the association: the relay
	// port is closed, so the kernel refuses further datagrams.
	ctrl.Close()
	waitFor(t, "the association to end", func() bool { return s.Stats().Active.Load() == 0 })
	u.Write(append([]byte{0, 0, 0, 1, 10, 255, 0, 2, 0, 53}, dnsQuery(t, 4, webName+".")...))
	u.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, err := u.Read(make([]byte, 100)); err == nil {
		t.Errorf("the relay answered after the control connection closed (%d bytes)", n)
	}
}

// TestSOCKS5UDPUnsolicited is the attack of a far host that sends to an
// association's far-side socket without the client having sent to it: the
// datagram must not reach the client.
func TestSOCKS5UDPUnsolicited(t *testing.T) {
	e := newEnv(t)
	s, addr := e.socks5(t, nil)
	// The control connection must stay open (and referenced: a collected
	// net.Conn is closed) for the association to live.
	ctrl, rep, relayAddr := socksRequest(t, addr, "", "", []byte{5, 3, 0, 1, 0, 0, 0, 0, 0, 0})
	if rep != 0 {
		t.Fatalf("reply %d", rep)
	}
	defer ctrl.Close()
	u, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(relayAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	// The client sends to B's echo port; B's port 9999 learns the
	// association's far address from what arrives there first.
	spy, err := e.B.ListenPacket("udp", ":9999")
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Close()
	u.Write([]byte{0, 0, 0, 1, 10, 255, 0, 2, 0x27, 0x0f, 'h', 'i'}) // to 10.255.0.2:9999
	spy.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, farAddr, err := spy.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "hi" {
		t.Fatalf("the client's datagram did not arrive: %v\n%s", err, e.Counters())
	}
	// A reply from the address the client sent to is relayed...
	spy.WriteTo([]byte("reply"), farAddr)
	u.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err = u.Read(buf); err != nil || string(buf[10:n]) != "reply" {
		t.Fatalf("reply not relayed: %v (dropped %d; far %v)\n%s", err, s.Stats().Dropped.Load(), farAddr, e.Counters())
	}
	// ...one from another port of the same host is not.
	other, err := e.B.ListenPacket("udp", ":9998")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	dropped := s.Stats().Dropped.Load()
	other.WriteTo([]byte("unsolicited"), farAddr)
	waitFor(t, "the unsolicited datagram counted as dropped", func() bool { return s.Stats().Dropped.Load() > dropped })
	u.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := u.Read(buf); err == nil {
		t.Errorf("an unsolicited datagram reached the client: %q", buf[:n])
	}
}

// TestSOCKS5Limits checks that connections beyond MaxConns are closed at
// once, and that a client that stalls in the negotiation is cut off.
func TestSOCKS5Limits(t *testing.T) {
	e := newEnv(t)
	s, addr := e.socks5(t, func(s *proxy.SOCKS5) {
		s.Limits = proxy.Limits{MaxConns: 1, HandshakeTimeout: 200 * time.Millisecond}
	})
	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	waitFor(t, "the first connection to be accepted", func() bool { return s.Stats().Active.Load() == 1 })
	second, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	second.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := second.Read(make([]byte, 1)); err == nil {
		t.Error("second connection over the limit was served")
	}
	second.Close()
	if s.Stats().Rejected.Load() != 1 {
		t.Errorf("Rejected = %d, want 1", s.Stats().Rejected.Load())
	}
	// The first client never speaks: the handshake timeout closes it.
	first.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := first.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("stalled client: read %v, want the server to close it", err)
	}
	waitFor(t, "the slot to be free", func() bool { return s.Stats().Active.Load() == 0 })
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
