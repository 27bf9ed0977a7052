// Command wgnetstack is the baseline of greipsec's netstack mode in
// bench/e2e/run.sh: wireguard-go with its own user-space network stack
// (golang.zx2c4.com/wireguard/tun/netstack) and a TCP port forward, as
// wireproxy and similar tools run it, built from the Go module proxy.
//
// One side forwards a local port to an address on the tunnel
// (-local 127.0.0.1:15201 -to 10.253.0.2:5201); the other forwards a port
// of its tunnel address to a local one (-tunnel-port 5201 -to
// 127.0.0.1:5201). Keys are wg(8)'s base64.
package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

func main() {
	addr := flag.String("addr", "", "this side's tunnel `address`, e.g. 10.253.0.1")
	peerAddr := flag.String("peer-addr", "", "the other side's tunnel `address`")
	mtu := flag.Int("mtu", device.DefaultMTU, "tunnel `MTU`")
	port := flag.Int("port", 51820, "UDP listen `port`")
	endpoint := flag.String("endpoint", "", "the peer's `host:port`")
	key := flag.String("key", "", "this side's private `key` (base64)")
	peerKey := flag.String("peer-key", "", "the peer's public `key` (base64)")
	local := flag.String("local", "", "listen on this host's `host:port` and forward to -to through the tunnel")
	tunnelPort := flag.Int("tunnel-port", 0, "listen on this `port` of the tunnel address and forward to -to on this host")
	to := flag.String("to", "", "the forward's target `host:port`")
	flag.Parse()

	tunDev, tnet, err := netstack.CreateNetTUN([]netip.Addr{netip.MustParseAddr(*addr)}, nil, *mtu)
	if err != nil {
		log.Fatal(err)
	}
	dev := device.NewDevice(tunDev, conn.NewDefaultBind(), device.NewLogger(device.LogLevelError, "wgnetstack: "))
	uapi := fmt.Sprintf("private_key=%s\nlisten_port=%d\npublic_key=%s\nendpoint=%s\nallowed_ip=%s/32\n",
		hexKey(*key), *port, hexKey(*peerKey), *endpoint, *peerAddr)
	if err := dev.IpcSet(uapi); err != nil {
		log.Fatal(err)
	}
	if err := dev.Up(); err != nil {
		log.Fatal(err)
	}
	defer dev.Close()

	var l net.Listener
	var dial func(ctx context.Context, network, address string) (net.Conn, error)
	switch {
	case *local != "":
		l, err = net.Listen("tcp", *local)
		dial = tnet.DialContext
	case *tunnelPort != 0:
		l, err = tnet.ListenTCP(&net.TCPAddr{Port: *tunnelPort})
		dial = (&net.Dialer{}).DialContext
	default:
		log.Fatal("wgnetstack: -local or -tunnel-port is required")
	}
	if err != nil {
		log.Fatal(err)
	}
	go forward(l, dial, *to)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	<-sigs
	l.Close()
}

// forward relays each connection accepted from l to target.
func forward(l net.Listener, dial func(ctx context.Context, network, address string) (net.Conn, error), target string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			t, err := dial(context.Background(), "tcp", target)
			if err != nil {
				log.Print(err)
				return
			}
			defer t.Close()
			done := make(chan struct{}, 2)
			go func() { io.Copy(t, c); closeWrite(t); done <- struct{}{} }()
			go func() { io.Copy(c, t); closeWrite(c); done <- struct{}{} }()
			<-done
			<-done
		}()
	}
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

func hexKey(b64 string) string {
	k, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(k) != 32 {
		log.Fatalf("wgnetstack: %q is not a WireGuard key", b64)
	}
	return hex.EncodeToString(k)
}
