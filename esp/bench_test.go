package esp

import (
	"fmt"
	"sync/atomic"
	"testing"
)

var benchSizes = []int{64, 512, 1400}

func BenchmarkSeal(b *testing.B) {
	for _, a := range algorithms {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%v/%d", a, n), func(b *testing.B) {
				sa := newTestSA(b, a, false)
				buf := make([]byte, sa.Headroom()+n+sa.TrailerLen(n))
				b.SetBytes(int64(n))
				b.ReportAllocs()
				seq := uint64(0)
				for b.Loop() {
					seq++
					sa.Seal(buf[:sa.Headroom()+n], seq, 4)
				}
			})
		}
	}
}

// BenchmarkOpen includes copying the sealed packet into the work buffer
// each time, since Open decrypts in place.
func BenchmarkOpen(b *testing.B) {
	for _, a := range algorithms {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%v/%d", a, n), func(b *testing.B) {
				sa := newTestSA(b, a, false)
				pkt := sealPayload(sa, make([]byte, n), 1, 4)
				work := make([]byte, len(pkt))
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					copy(work, pkt)
					if _, _, _, err := sa.Open(work); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkSealParallel shows the cost of the shared scratch areas when
// every core seals with one SA, as the encryption workers do: the AEAD's
// nonce scratch, and the HMAC states of CBC+HMAC.
func BenchmarkSealParallel(b *testing.B) {
	for _, tr := range []Transform{{Algorithm: AES256GCM16}, {Algorithm: AES256CBC, Integrity: HMACSHA256_128}} {
		b.Run(tr.String(), func(b *testing.B) {
			sa := newTestSA(b, tr, false)
			b.SetBytes(1400)
			b.ReportAllocs()
			var seqs atomic.Uint64 // stands in for the sequential stage
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, sa.Headroom()+1400+sa.TrailerLen(1400))
				for pb.Next() {
					sa.Seal(buf[:sa.Headroom()+1400], seqs.Add(1), 4)
				}
			})
		})
	}
}
