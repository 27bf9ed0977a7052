package dataplane

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/greipsec/greipsec/esp"
)

// TestPairBatchSizes: batches of every size class the TUN device hands
// over, below and above inlineMax (sealed by the reading goroutine, or by
// the encryption workers), arrive whole and in order, for an AEAD and a
// CBC+HMAC transform over both transports.
func TestPairBatchSizes(t *testing.T) {
	const rounds = 6
	for _, tr := range []esp.Transform{{Algorithm: esp.AES256GCM16}, {Algorithm: esp.AES256CBC, Integrity: esp.HMACSHA256_128}} {
		for _, transport := range []Transport{TransportESP, TransportUDP} {
			t.Run(fmt.Sprintf("%v/%v", tr, transport), func(t *testing.T) {
				a, b := macTunnelConfigs(ModeGRETransport, transport, tr, true)
				if tr.Algorithm.IsAEAD() {
					a, b = tunnelConfigs(ModeGRETransport, transport, tr.Algorithm, true)
				}
				batches := make(chan int)
				got := make(chan []byte, 2*maxBatchSize)
				var src batchSource
				p := newPairWith(t, a, b, func(p *pair) {
					src = batchSource{batches: batches}
					p.tunA.SetSource(src.fill)
					p.tunB.SetSink(func(pkt []byte) { got <- bytes.Clone(pkt) })
				})
				defer close(batches)
				seq := uint32(0)
				for _, k := range []int{1, 2, inlineMax, inlineMax + 1, 64, maxBatchSize} {
					for range rounds {
						first := seq
						batches <- k
						for i := range k {
							select {
							case pkt := <-got:
								if n := binary.BigEndian.Uint32(pkt[28:]); n != first+uint32(i) || !bytes.Equal(pkt, batchPacket(n)) {
									t.Fatalf("batch of %d, packet %d: got packet %d, want %d", k, i, n, first+uint32(i))
								}
							case <-time.After(5 * time.Second):
								t.Fatalf("batch of %d: packet %d did not arrive (B: %+v)", k, i, p.tb.Stats())
							}
						}
						seq += uint32(k)
					}
				}
			})
		}
	}
}

// batchSource is the source of a tun.Memory that hands out exactly the
// number of packets received on batches per Read, numbered in order.
type batchSource struct {
	batches <-chan int
	left    int // packets still due in the current batch
	next    uint32
	ended   bool // the current batch has been ended with a 0
}

func (s *batchSource) fill(buf []byte) int {
	if s.left == 0 {
		if !s.ended {
			s.ended = true
			return 0 // end the Read with the batch
		}
		k, ok := <-s.batches
		if !ok {
			return 0
		}
		s.left, s.ended = k, false
	}
	s.left--
	s.next++
	return copy(buf, batchPacket(s.next-1))
}

// batchPacket is the UDP packet numbered n, A to B.
func batchPacket(n uint32) []byte {
	pkt := udpPacket(innerA, innerB, 200)
	binary.BigEndian.PutUint32(pkt[28:], n)
	return pkt
}

// TestPairInlineOrder: batches of mixed sizes handed over back to back,
// without waiting for the earlier ones to arrive, so that small batches
// that the reader seals and sends itself (and that B's socket receiver
// opens and writes itself) overtake nothing queued before them: every
// packet arrives, in the order sent, over both transports.
func TestPairInlineOrder(t *testing.T) {
	sizes := []int{1, 1, 2, inlineMax + 1, 1, 64, 1, 3, maxBatchSize, 1, inlineMax, 2, 1}
	const rounds = 20
	total := 0
	for _, k := range sizes {
		total += k
	}
	total *= rounds
	for _, transport := range []Transport{TransportESP, TransportUDP} {
		t.Run(transport.String(), func(t *testing.T) {
			a, b := tunnelConfigs(ModeGRETransport, transport, esp.AES256GCM16, true)
			batches := make(chan int, len(sizes)*rounds)
			got := make(chan uint32, total)
			var src batchSource
			p := newPairWith(t, a, b, func(p *pair) {
				src = batchSource{batches: batches}
				p.tunA.SetSource(src.fill)
				p.tunB.SetSink(func(pkt []byte) { got <- binary.BigEndian.Uint32(pkt[28:]) })
			})
			defer close(batches)
			for range rounds {
				for _, k := range sizes {
					batches <- k
				}
			}
			for i := range total {
				select {
				case n := <-got:
					if n != uint32(i) { // batchSource numbers from 0
						t.Fatalf("packet %d arrived in place %d (B: %+v)", n, i, p.tb.Stats())
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("%d of %d packets arrived (A: %+v, B: %+v)", i, total, p.ta.Stats(), p.tb.Stats())
				}
			}
		})
	}
}
