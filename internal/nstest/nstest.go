// Package nstest joins two inner devices with a real in-process dataplane,
// for tests of the netstack inner side and of what runs on it: two
// dataplane.Devices with manually keyed ESP tunnels over an in-memory link
// (package link), no root and no sockets.
package nstest

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/dataplane/link"
	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/tun"
	"github.com/greipsec/greipsec/tun/netstack"
)

// The addresses of the two sides: outer (the gateways) and inner (the
// tunnel's, on the stacks).
var (
	OuterA  = netip.MustParseAddr("192.0.2.1")
	OuterB  = netip.MustParseAddr("192.0.2.2")
	InnerA  = netip.MustParsePrefix("10.255.0.1/24")
	InnerB  = netip.MustParsePrefix("10.255.0.2/24")
	Inner6A = netip.MustParsePrefix("fd00:255::1/64")
	Inner6B = netip.MustParsePrefix("fd00:255::2/64")
)

func key(alg esp.Algorithm, seed byte) []byte {
	k := make([]byte, alg.KeyLen())
	for i := range k {
		k[i] = seed + byte(i)
	}
	return k
}

// TunnelConfigs returns both sides of a GRE transport-mode tunnel over
// ESP-in-UDP with AES-GCM and manual keys, and the inner MTU it leaves.
func TunnelConfigs() (a, b dataplane.TunnelConfig, mtu int) {
	alg := esp.AES256GCM16
	ab := esp.Config{SPI: 0x2001, Algorithm: alg, Key: key(alg, 1)}
	ba := esp.Config{SPI: 0x2002, Algorithm: alg, Key: key(alg, 100)}
	a = dataplane.TunnelConfig{Name: "ns", Mode: dataplane.ModeGRETransport, Transport: dataplane.TransportUDP,
		Local: OuterA, Peer: OuterB, MSSClamp: true, Outbound: &ab, Inbound: &ba}
	b = a
	b.Local, b.Peer = OuterB, OuterA
	abIn, baOut := ab, ba
	b.Outbound, b.Inbound = &baOut, &abIn
	mtu, err := dataplane.ResolveMTU(&a)
	if err != nil {
		panic(err)
	}
	return a, b, mtu
}

// Join starts the tunnels a and b, on devA and devB, in two dataplane
// Devices joined by an in-memory link. The Devices, and with them devA and
// devB, are closed when the test ends.
func Join(t testing.TB, a, b dataplane.TunnelConfig, devA, devB tun.Device) (*dataplane.Tunnel, *dataplane.Tunnel) {
	t.Helper()
	ta, tb, closeAll, err := JoinDevices(a, b, devA, devB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeAll)
	return ta, tb
}

// JoinDevices is Join outside a test: closeAll closes both Devices, and
// with them devA and devB.
func JoinDevices(a, b dataplane.TunnelConfig, devA, devB tun.Device) (ta, tb *dataplane.Tunnel, closeAll func(), err error) {
	port := uint16(dataplane.DefaultUDPPort)
	la, lb := link.NewMemoryPair(netip.AddrPortFrom(a.Local, port), netip.AddrPortFrom(b.Local, port))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	da := dataplane.NewDevice(dataplane.Options{Logger: log, Bind: func(dataplane.Transport, netip.Addr, uint16) (conn.Bind, error) { return la, nil }})
	db := dataplane.NewDevice(dataplane.Options{Logger: log, Bind: func(dataplane.Transport, netip.Addr, uint16) (conn.Bind, error) { return lb, nil }})
	closeAll = func() {
		da.Close()
		db.Close()
	}
	if ta, err = da.AddTunnel(a, devA); err != nil {
		closeAll()
		devA.Close()
		devB.Close()
		return nil, nil, nil, err
	}
	if tb, err = db.AddTunnel(b, devB); err != nil {
		closeAll()
		devB.Close()
		return nil, nil, nil, err
	}
	return ta, tb, closeAll, nil
}

// Pair is two netstacks joined by a tunnel.
type Pair struct {
	A, B   *netstack.Stack
	TA, TB *dataplane.Tunnel
	MTU    int
}

// NewPair returns two Stacks, A (InnerA, Inner6A) and B (InnerB, Inner6B),
// joined by a tunnel. Edit, when not nil, may change either Stack's Config
// (for example to add DNS servers) before it is created.
func NewPair(t testing.TB, edit func(side string, c *netstack.Config)) *Pair {
	t.Helper()
	ca, cb, mtu := TunnelConfigs()
	cfgA := netstack.Config{Name: "a", MTU: mtu, Addresses: []tun.Address{{Prefix: InnerA}, {Prefix: Inner6A}}}
	cfgB := netstack.Config{Name: "b", MTU: mtu, Addresses: []tun.Address{{Prefix: InnerB}, {Prefix: Inner6B}}}
	if edit != nil {
		edit("a", &cfgA)
		edit("b", &cfgB)
	}
	a, err := netstack.New(cfgA)
	if err != nil {
		t.Fatal(err)
	}
	b, err := netstack.New(cfgB)
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	p := &Pair{A: a, B: b, MTU: mtu}
	p.TA, p.TB = Join(t, ca, cb, a, b)
	return p
}

// Counters describes what each layer of the pair counted: the tunnels, their
// inbound SAs, the stacks' edges and gVisor's own drop counters. Tests print
// it when a packet goes missing.
func (p *Pair) Counters() string {
	var b strings.Builder
	for _, side := range []struct {
		name string
		t    *dataplane.Tunnel
		s    *netstack.Stack
	}{{"A", p.TA, p.A}, {"B", p.TB, p.B}} {
		ts := side.t.Stats()
		fmt.Fprintf(&b, "%s: tunnel tx %d rx %d noSA %d badInner %d sendErr %d writeErr %d readErr %d; ", side.name,
			ts.TxPackets.Load(), ts.RxPackets.Load(), ts.NoSA.Load(), ts.BadInner.Load(), ts.SendErrors.Load(), ts.WriteErrors.Load(), ts.ReadErrors.Load())
		for _, sa := range side.t.InboundSAs() {
			fmt.Fprintf(&b, "SA %+v; ", sa.Stats())
		}
		ss := side.s.Stats()
		st := side.s.TCPIPStats()
		fmt.Fprintf(&b, "stack queueDrops %d tooBig %d badInbound %d ip malformed %d invalidDst %d udp unknownPort %d rcvBufErr %d malformed %d checksum %d\n",
			ss.QueueDrops.Load(), ss.TooBig.Load(), ss.BadInbound.Load(),
			st.IP.MalformedPacketsReceived.Value(), st.IP.InvalidDestinationAddressesReceived.Value(),
			st.UDP.UnknownPortErrors.Value(), st.UDP.ReceiveBufferErrors.Value(), st.UDP.MalformedPacketsReceived.Value(), st.UDP.ChecksumErrors.Value())
	}
	return b.String()
}
