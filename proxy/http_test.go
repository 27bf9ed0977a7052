package proxy_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/greipsec/greipsec/internal/nstest"
	"github.com/greipsec/greipsec/proxy"
)

func (e *env) httpProxy(t *testing.T, edit func(*proxy.HTTP)) (*proxy.HTTP, string) {
	h := &proxy.HTTP{Dialer: e.A, Resolver: e.A}
	if edit != nil {
		edit(h)
	}
	return h, serve(t, h.Serve)
}

// TestHTTPProxyGet fetches a page from site B through the HTTP proxy as an
// absolute-URI request, by name and by address.
func TestHTTPProxyGet(t *testing.T) {
	e := newEnv(t)
	_, addr := e.httpProxy(t, nil)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: addr})}, Timeout: 10 * time.Second}
	get(t, client, "http://"+webName+"/a", "hello from site B /a")
	get(t, client, "http://"+nstest.InnerB.Addr().String()+"/b", "hello from site B /b")
}

// TestHTTPProxyConnect fetches a page over TLS from a server on site B:
// net/http sends CONNECT to the proxy for https URLs.
func TestHTTPProxyConnect(t *testing.T) {
	e := newEnv(t)
	_, addr := e.httpProxy(t, nil)
	l, err := e.B.Listen("tcp", ":443")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "secret from site B %s", r.URL.Path)
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	client := &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: addr}),
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}, Timeout: 10 * time.Second}
	// httptest's certificate names example.com, not B's address.
	client.Transport.(*http.Transport).TLSClientConfig.ServerName = "example.com"
	get(t, client, "https://"+nstest.InnerB.Addr().String()+":443/tls", "secret from site B /tls")
}

// rawRequest sends req to the proxy and returns the status line.
func rawRequest(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, req)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("%q: %v", req, err)
	}
	return strings.TrimSpace(line)
}

// TestHTTPProxyErrors checks the status of each kind of failure.
func TestHTTPProxyErrors(t *testing.T) {
	e := newEnv(t)
	_, addr := e.httpProxy(t, func(h *proxy.HTTP) { h.Limits.DialTimeout = 300 * time.Millisecond })
	_, noNames := e.httpProxy(t, func(h *proxy.HTTP) { h.Resolver = nil })
	_, auth := e.httpProxy(t, func(h *proxy.HTTP) { h.Users = map[string]string{"bob": "pw"} })
	for _, tc := range []struct{ name, addr, req, want string }{
		{"CONNECT to a closed port", addr, "CONNECT 10.255.0.2:9 HTTP/1.1\r\nHost: 10.255.0.2:9\r\n\r\n", "HTTP/1.1 502 Bad Gateway"},
		{"GET of an unknown name", addr, "GET http://nope.site-b.example/ HTTP/1.1\r\nHost: nope.site-b.example\r\n\r\n", "HTTP/1.1 502 Bad Gateway"},
		{"CONNECT to nobody", addr, "CONNECT 10.255.0.3:80 HTTP/1.1\r\nHost: 10.255.0.3:80\r\n\r\n", "HTTP/1.1 504 Gateway Timeout"},
		{"origin-form request", addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"name without a resolver", noNames, "GET http://" + webName + "/ HTTP/1.1\r\nHost: " + webName + "\r\n\r\n", "HTTP/1.1 502 Bad Gateway"},
		{"no credentials", auth, "GET http://10.255.0.2/ HTTP/1.1\r\nHost: 10.255.0.2\r\n\r\n", "HTTP/1.1 407 Proxy Authentication Required"},
		{"wrong credentials", auth, "GET http://10.255.0.2/ HTTP/1.1\r\nHost: 10.255.0.2\r\nProxy-Authorization: Basic Ym9iOnd4\r\n\r\n", "HTTP/1.1 407 Proxy Authentication Required"},
		{"right credentials", auth, "GET http://10.255.0.2/ HTTP/1.1\r\nHost: 10.255.0.2\r\nProxy-Authorization: Basic Ym9iOnB3\r\n\r\n", "HTTP/1.1 200 OK"},
	} {
		if got := rawRequest(t, tc.addr, tc.req); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestHTTPProxyHopByHop checks that the proxy's own headers do not reach the
// destination.
func TestHTTPProxyHopByHop(t *testing.T) {
	e := newEnv(t)
	_, addr := e.httpProxy(t, func(h *proxy.HTTP) { h.Users = map[string]string{"bob": "pw"} })
	l, err := e.B.Listen("tcp", ":8081")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan http.Header, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() })}
	go srv.Serve(l)
	defer srv.Close()
	rawRequest(t, addr, "GET http://10.255.0.2:8081/ HTTP/1.1\r\nHost: 10.255.0.2:8081\r\nProxy-Authorization: Basic Ym9iOnB3\r\nProxy-Connection: keep-alive\r\nX-Keep: yes\r\n\r\n")
	h := <-got
	if h.Get("Proxy-Authorization") != "" || h.Get("Proxy-Connection") != "" || h.Get("X-Forwarded-For") != "" || h.Get("X-Keep") != "yes" {
		t.Errorf("destination saw headers %v", h)
	}
}
