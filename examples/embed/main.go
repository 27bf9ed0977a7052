// Command embed is a Go program with a greipsec gateway inside: it reaches
// the far site of a tunnel through the gateway's user-space network stack,
// with no TUN device, no proxy and no privilege.
//
// To be self-contained it runs both ends: gateways A and B in one process,
// joined by a tunnel over ESP-in-UDP on the loopback address (A on UDP
// port -port-a, B on -port-b, IKEv2 started on those ports). B serves a
// web page on its tunnel address, 10.255.0.2; A fetches it with an
// ordinary http.Client whose connections are dialed through A's stack:
//
//	go run ./examples/embed
//	hello through the tunnel, from 10.255.0.2:80 to 10.255.0.1
//
// A real program has only its own side: a configuration (a file, or text
// as here) with inner = "netstack", gateway.New, then Gateway.Net for the
// tunnel's Stack, whose DialContext, Listen, ListenPacket and LookupNetIP
// reach the far site.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/greipsec/greipsec/gateway"
	"github.com/greipsec/greipsec/gateway/config"
)

// conf is one side's configuration: a netstack tunnel on the loopback
// address, told apart from the other side by its ports.
const conf = `
[[tunnel]]
name          = %q
inner         = "netstack"             # a user-space TCP/IP stack: no TUN, no privilege
transport     = "udp"                  # ESP-in-UDP: no raw socket
local         = "127.0.0.1"
peer          = "127.0.0.1"
udp-port      = %d
peer-udp-port = %d
addresses     = [%q]

[tunnel.ike]
role     = %q
port-500 = false                       # IKE on udp-port too: no port below 1024
local-id = "%s.embed.example"
peer-id  = "%s.embed.example"
psk      = "EXAMPLE-PSK-of-the-embed-example"
`

func main() {
	portA := flag.Int("port-a", 14601, "UDP `port` of gateway A")
	portB := flag.Int("port-b", 14602, "UDP `port` of gateway B")
	flag.Parse()
	if err := run(os.Stdout, *portA, *portB); err != nil {
		log.Fatal(err)
	}
}

// run starts A and B, serves a page on B's stack, fetches it through A's,
// prints it to w, and stops both gateways.
func run(w io.Writer, portA, portB int) error {
	a, err := start("a", fmt.Sprintf(conf, "a", portA, portB, "10.255.0.1/30", "active", "a", "b"))
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := start("b", fmt.Sprintf(conf, "b", portB, portA, "10.255.0.2/30", "passive", "b", "a"))
	if err != nil {
		return err
	}
	defer b.Close()

	// B's side: a web server on its tunnel address, in its stack.
	netB, err := b.Net("b")
	if err != nil {
		return err
	}
	l, err := netB.Listen("tcp", ":80")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "hello through the tunnel, from %s to %s\n", r.Host+":80", host)
	})}
	go srv.Serve(l)
	defer srv.Close()

	// A's side: wait for IKE to install the Child SA, then use the stack
	// as the net package is used.
	if err := waitUp(a, "a", 20*time.Second); err != nil {
		return err
	}
	netA, err := a.Net("a")
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: netA.DialContext}}
	resp, err := client.Get("http://10.255.0.2/")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// start starts a gateway from a configuration text, logging nothing.
func start(name, text string) (*gateway.Gateway, error) {
	cfg, err := config.Parse(name+".toml", []byte(text))
	if err != nil {
		return nil, err
	}
	return gateway.New(cfg, gateway.Options{Logger: slog.New(slog.DiscardHandler)})
}

// waitUp waits until the tunnel has an installed Child SA.
func waitUp(gw *gateway.Gateway, tunnel string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		st, err := gw.TunnelStatus(tunnel)
		if err != nil {
			return err
		}
		if len(st.ChildSAs) > 0 && st.ChildSAs[0].State == "INSTALLED" {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("embed: the tunnel did not come up; is another program on the UDP ports?")
		case <-time.After(20 * time.Millisecond):
		}
	}
}
