package bench

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/dataplane/link"
	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/tun"
)

var (
	outerA = netip.MustParseAddr("192.0.2.1")
	outerB = netip.MustParseAddr("192.0.2.2")
)

// BenchmarkPipeline sends b.N inner packets from gateway A's TUN device
// through GRE, ESP and the in-memory link to gateway B's TUN device. One
// op is one packet delivered; Gbit/s counts inner bytes.
func BenchmarkPipeline(b *testing.B) {
	aead := func(a esp.Algorithm) esp.Transform { return esp.Transform{Algorithm: a} }
	for _, tr := range []esp.Transform{aead(esp.AES128GCM16), aead(esp.AES256GCM16), aead(esp.ChaCha20Poly1305)} {
		for _, size := range []int{64, 512, 1400} {
			b.Run(fmt.Sprintf("%v/%d", tr, size), func(b *testing.B) {
				benchmarkPipeline(b, tr, size, dataplane.ModeGRETransport, dataplane.TransportUDP)
			})
		}
	}
	// The classic transforms (RFC 3602 + RFC 2404/4868, RFC 2410), at the
	// size that matters for throughput.
	for _, tr := range []esp.Transform{
		{Algorithm: esp.AES128CBC, Integrity: esp.HMACSHA1_96},
		{Algorithm: esp.AES128CBC, Integrity: esp.HMACSHA256_128},
		{Algorithm: esp.AES192CBC, Integrity: esp.HMACSHA256_128},
		{Algorithm: esp.AES256CBC, Integrity: esp.HMACSHA256_128},
		{Algorithm: esp.AES256CBC, Integrity: esp.HMACSHA384_192},
		{Algorithm: esp.AES256CBC, Integrity: esp.HMACSHA512_256},
		{Algorithm: esp.NullEncryption, Integrity: esp.HMACSHA256_128},
	} {
		b.Run(fmt.Sprintf("%v/1400", tr), func(b *testing.B) {
			benchmarkPipeline(b, tr, 1400, dataplane.ModeGRETransport, dataplane.TransportUDP)
		})
	}
	for _, mode := range []dataplane.Mode{dataplane.ModeGRETunnel, dataplane.ModeRoute} {
		b.Run(fmt.Sprintf("%v/%v/1400", esp.AES256GCM16, mode), func(b *testing.B) {
			benchmarkPipeline(b, aead(esp.AES256GCM16), 1400, mode, dataplane.TransportESP)
		})
	}
	// Route mode with the SAs installed as IKE installs them, with traffic
	// selectors that every packet is checked against on both sides (four
	// prefix lookups per packet): compare with route/1400.
	b.Run(fmt.Sprintf("%v/route+ts/1400", esp.AES256GCM16), func(b *testing.B) {
		benchmarkPipeline(b, aead(esp.AES256GCM16), 1400, modeRouteSelectors, dataplane.TransportESP)
	})
}

// modeRouteSelectors is route mode with SAs installed with selectors.
const modeRouteSelectors = dataplane.ModeRoute + 100

// window is how many packets the benchmark keeps in flight, as a transport
// with flow control would: a gateway drops what is beyond a tunnel's
// inbound share rather than hold up its socket (on two cores a lone
// tunnel may have about 3000 in flight). Drops, if any, are reported.
const window = 2048

func benchmarkPipeline(b *testing.B, tr esp.Transform, size int, mode dataplane.Mode, transport dataplane.Transport) {
	key := func(seed byte, n int) []byte {
		k := make([]byte, n)
		for i := range k {
			k[i] = seed + byte(i)
		}
		return k
	}
	ab := esp.Config{SPI: 0x1001, Algorithm: tr.Algorithm, Integrity: tr.Integrity, Key: key(1, tr.Algorithm.KeyLen()), ESN: true}
	ba := esp.Config{SPI: 0x1002, Algorithm: tr.Algorithm, Integrity: tr.Integrity, Key: key(2, tr.Algorithm.KeyLen()), ESN: true}
	if tr.Integrity != esp.IntegrityNone {
		ab.AuthKey, ba.AuthKey = key(3, tr.Integrity.KeyLen()), key(4, tr.Integrity.KeyLen())
	}
	selectors := mode == modeRouteSelectors
	if selectors {
		mode = dataplane.ModeRoute
	}
	ca := dataplane.TunnelConfig{Name: "a", Mode: mode, Transport: transport, Local: outerA, Peer: outerB,
		MSSClamp: true, Outbound: &ab, Inbound: &ba}
	cb := ca
	cb.Local, cb.Peer = outerB, outerA
	abIn, baOut := ab, ba
	cb.Outbound, cb.Inbound = &baOut, &abIn
	if selectors {
		ca.Outbound, ca.Inbound, cb.Outbound, cb.Inbound = nil, nil, nil, nil
	}

	la, lb := link.NewMemoryPair(netip.AddrPortFrom(outerA, 4500), netip.AddrPortFrom(outerB, 4500))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	da := dataplane.NewDevice(dataplane.Options{Logger: log, Bind: func(dataplane.Transport, netip.Addr, uint16) (conn.Bind, error) { return la, nil }})
	db := dataplane.NewDevice(dataplane.Options{Logger: log, Bind: func(dataplane.Transport, netip.Addr, uint16) (conn.Bind, error) { return lb, nil }})
	defer da.Close()
	defer db.Close()

	mtu, err := dataplane.ResolveMTU(&ca)
	if err != nil {
		b.Fatal(err)
	}
	pkt := udpPacket(size)
	// The first warmup packets fill the queues and the buffer pools to
	// their working size; the timer starts after them.
	const warmup = 20000
	stop := make(chan struct{})
	warmed := make(chan struct{})
	done := make(chan struct{})
	credit := make(chan struct{}, 1)
	ready := make(chan struct{}) // the SAs are installed
	var produced, received atomic.Int64
	var tbp atomic.Pointer[dataplane.Tunnel]
	dropped := func() uint64 { // by B, for lack of room
		if t := tbp.Load(); t != nil {
			return t.Stats().QueueFull.Load() + db.Stats().NoBuffer.Load()
		}
		return 0
	}
	n := int64(b.N) + warmup
	tunA := tun.NewMemory("a", mtu, conn.IdealBatchSize)
	tunB := tun.NewMemory("b", mtu, conn.IdealBatchSize)
	tunA.SetSource(func(buf []byte) int {
		switch k := produced.Add(1); {
		case k == 1:
			<-ready
			return copy(buf, pkt)
		case k <= n:
			for k-received.Load()-int64(dropped()) > window {
				select {
				case <-credit:
				case <-time.After(time.Millisecond):
				}
			}
			return copy(buf, pkt)
		case k == n+1:
			return 0 // end the last batch
		default:
			<-stop // the next Read waits for the end
			return 0
		}
	})
	var warmOnce, endOnce sync.Once
	warm := func() { warmOnce.Do(func() { close(warmed) }) }
	end := func() { endOnce.Do(func() { close(done) }) }
	tunB.SetSink(func([]byte) {
		r := received.Add(1)
		switch r {
		case warmup:
			warm()
		case n:
			end()
		}
		if r%64 == 0 {
			select {
			case credit <- struct{}{}:
			default:
			}
		}
	})
	tb, err := db.AddTunnel(cb, tunB)
	if err != nil {
		b.Fatal(err)
	}
	tbp.Store(tb)
	ta, err := da.AddTunnel(ca, tunA)
	if err != nil {
		b.Fatal(err)
	}
	if selectors {
		install(b, tb, ba, ab, "10.255.0.2/32", "10.255.0.1/32")
		install(b, ta, ab, ba, "10.255.0.1/32", "10.255.0.2/32")
	}
	close(ready)
	go func() { // with drops, not all packets arrive: count them in
		for {
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
				r := received.Load() + int64(dropped())
				if r >= warmup {
					warm()
				}
				if r >= n {
					end()
				}
			}
		}
	}()
	<-warmed
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("%d of %d packets arrived", received.Load(), n)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	close(stop)
	b.SetBytes(int64(size))
	b.ReportMetric(float64(b.N)*float64(size)*8/elapsed.Seconds()/1e9, "Gbit/s")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "packets/s")
	b.ReportMetric(float64(dropped()), "dropped")
}

// install installs SAs on t as IKE does, with the selectors of a Child
// SA between local and peer (several prefixes each, so that a lookup is a
// real search) and the protocol UDP.
func install(b *testing.B, t *dataplane.Tunnel, out, in esp.Config, local, peer string) {
	b.Helper()
	osa, err := esp.NewSA(out)
	if err != nil {
		b.Fatal(err)
	}
	isa, err := esp.NewSA(in)
	if err != nil {
		b.Fatal(err)
	}
	side := func(p string) []dataplane.Selector {
		sel := []dataplane.Selector{{Prefix: netip.MustParsePrefix(p), Protocol: 17}}
		for i := range 7 { // more prefixes around it
			sel = append(sel, dataplane.Selector{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 100 + byte(i), 0, 0}), 16)},
				dataplane.Selector{Prefix: netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, byte(i)}), 48)})
		}
		return sel
	}
	sel := &dataplane.Selectors{Local: side(local), Peer: side(peer)}
	if err := t.AddInboundSA(isa, sel); err != nil {
		b.Fatal(err)
	}
	if err := t.SetOutboundSA(osa, sel); err != nil {
		b.Fatal(err)
	}
}

// udpPacket returns an IPv4 UDP packet of size bytes from 10.255.0.1 to 10.255.0.2.
func udpPacket(size int) []byte {
	pkt := make([]byte, size)
	ip := header.IPv4(pkt)
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(size), TTL: 64, Protocol: uint8(header.UDPProtocolNumber),
		SrcAddr: tcpip.AddrFrom4([4]byte{10, 255, 0, 1}), DstAddr: tcpip.AddrFrom4([4]byte{10, 255, 0, 2})})
	ip.SetChecksum(^ip.CalculateChecksum())
	header.UDP(pkt[header.IPv4MinimumSize:]).Encode(&header.UDPFields{SrcPort: 4000, DstPort: 5000,
		Length: uint16(size - header.IPv4MinimumSize)})
	return pkt
}

// BenchmarkSealOneCore is the crypto limit BenchmarkPipeline is measured
// against: one goroutine sealing ESP packets of 1400 bytes (GRE-sized
// payloads, as the pipeline's) with one SA in a loop, whatever -cpu says.
// bench/pipeline.sh divides the pipeline's Gbit/s by this one's.
func BenchmarkSealOneCore(b *testing.B) {
	for _, tr := range []esp.Transform{
		{Algorithm: esp.AES128GCM16},
		{Algorithm: esp.AES256GCM16},
		{Algorithm: esp.ChaCha20Poly1305},
		{Algorithm: esp.AES128CBC, Integrity: esp.HMACSHA1_96},
		{Algorithm: esp.AES256CBC, Integrity: esp.HMACSHA256_128},
	} {
		b.Run(fmt.Sprintf("%v/1400", tr), func(b *testing.B) {
			cfg := esp.Config{SPI: 0x1001, Algorithm: tr.Algorithm, Integrity: tr.Integrity, Key: make([]byte, tr.Algorithm.KeyLen())}
			if tr.Integrity != esp.IntegrityNone {
				cfg.AuthKey = make([]byte, tr.Integrity.KeyLen())
			}
			sa, err := esp.NewSA(cfg)
			if err != nil {
				b.Fatal(err)
			}
			const size = 1400
			buf := make([]byte, sa.Headroom()+size+sa.TrailerLen(size))
			b.SetBytes(size)
			b.ReportAllocs()
			start := time.Now()
			seq := uint64(0)
			for b.Loop() {
				seq++
				sa.Seal(buf[:sa.Headroom()+size], seq, 47)
			}
			b.ReportMetric(float64(seq)*size*8/time.Since(start).Seconds()/1e9, "Gbit/s")
		})
	}
}
