package main

import (
	"net"
	"os"
	"testing"
)

// freeUDPPort returns a UDP port that nothing listens on now.
func freeUDPPort() int {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// Two gateways in one process, joined by a tunnel on the loopback address;
// an HTTP GET through A's netstack reaches the web server on B's. No root.
func Example() {
	if err := run(os.Stdout, freeUDPPort(), freeUDPPort()); err != nil {
		panic(err)
	}
	// Output: hello through the tunnel, from 10.255.0.2:80 to 10.255.0.1
}

// TestRunTwice: the gateways give their ports back when they stop.
func TestRunTwice(t *testing.T) {
	a, b := freeUDPPort(), freeUDPPort()
	for i := 0; i < 2; i++ {
		if err := run(&testWriter{t}, a, b); err != nil {
			t.Fatal(err)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}
