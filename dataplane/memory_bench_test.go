package dataplane

import (
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/tun"
)

// The benchmarks in this file measure what the dataplane holds in memory
// under load. For the resident memory of a real gateway under an iperf3
// stream, see bench/e2e/run.sh (peak RSS column).

// memoryProbe samples the Go heap while a benchmark runs.
type memoryProbe struct {
	stop chan struct{}
	done chan struct{}
	peak atomic.Uint64 // bytes in heap objects
}

func startMemoryProbe() *memoryProbe {
	p := &memoryProbe{stop: make(chan struct{}), done: make(chan struct{})}
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(p.done)
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > p.peak.Load() {
				p.peak.Store(v)
			}
			select {
			case <-p.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return p
}

func (p *memoryProbe) finish() uint64 {
	close(p.stop)
	<-p.done
	return p.peak.Load()
}

// vmKiB returns a field of /proc/self/status in KiB (VmRSS, VmHWM), or 0
// where there is no such file.
func vmKiB(field string) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkPairMemory streams b.N TCP segments of 1400 bytes through a
// pair of gateways (GRE over ESP-in-UDP), as fast as a sender with a 2048
// packet window can (within B's inbound share, so nothing is dropped), and reports the peak of the Go heap, the buffers B
// (the receiver) allocated and the process's resident memory. One op is
// one segment delivered.
func BenchmarkPairMemory(b *testing.B) {
	a, bc := tunnelConfigs(ModeGRETransport, TransportUDP, esp.AES256GCM16, true)
	const window = 2048
	seg := tcpSegment(innerA, innerB, 1000, 1, header.TCPFlagAck, 1400-40)
	var produced, received atomic.Int64
	credit := make(chan struct{}, 1)
	done := make(chan struct{})
	n := int64(b.N)
	p := newPairWith(b, a, bc, func(pp *pair) {
		pp.tunA.SetSource(func(buf []byte) int {
			k := produced.Add(1)
			if k > n {
				if k > n+1 { // the Read after the last batch waits for the end
					<-done
				}
				return 0
			}
			for k-received.Load() > window {
				select {
				case <-credit:
				case <-time.After(time.Millisecond):
				}
			}
			copy(buf, seg)
			header.TCP(buf[header.IPv4MinimumSize:]).SetSequenceNumber(uint32(k) * 1360)
			return len(seg)
		})
		pp.tunB.SetSink(func([]byte) {
			if received.Add(1) == n {
				close(done)
			}
			select {
			case credit <- struct{}{}:
			default:
			}
		})
	})
	runtime.GC()
	probe := startMemoryProbe()
	b.ResetTimer()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("%d of %d segments arrived", received.Load(), n)
	}
	b.StopTimer()
	peak := probe.finish()
	small, _ := p.b.pool.small.stats()
	large, _ := p.b.pool.large.stats()
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(small), "B-small-buffers")
	b.ReportMetric(float64(large), "B-large-buffers")
	b.ReportMetric(float64(vmKiB("VmHWM"))/1024, "process-VmHWM-MiB")
	b.ReportMetric(float64(p.tb.Stats().QueueFull.Load()), "B-queue-full")
}

// BenchmarkManyTunnelsMemory runs 100 tunnels in one process (two
// Devices, one shared socket each) with traffic on all of them at once,
// b.N packets of 1000 bytes in all, each tunnel's sender keeping at most 256
// in flight, and reports the heap and the resident memory per tunnel (per
// pair of tunnel ends, one in each Device).
func BenchmarkManyTunnelsMemory(b *testing.B) {
	const n, window = 100, 256
	runtime.GC()
	before := vmKiB("VmRSS")
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	per := int64(b.N/n + 1)
	pkt := udpPacket(innerA, innerB, 1000)
	var produced, received [n]atomic.Int64
	var finished atomic.Int64
	done := make(chan struct{})
	m := newManyTunnelsWith(b, n, true, func(k int, ta, tb *tun.Memory) {
		ta.SetSource(func(buf []byte) int {
			i := produced[k].Add(1)
			if i > per {
				if i > per+1 {
					<-done
				}
				return 0
			}
			for i-received[k].Load() > window {
				time.Sleep(50 * time.Microsecond)
			}
			return copy(buf, pkt)
		})
		tb.SetSink(func([]byte) {
			if received[k].Add(1) == per && finished.Add(1) == n {
				close(done)
			}
		})
	})
	probe := startMemoryProbe()
	b.ResetTimer()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatal("not all packets arrived")
	}
	b.StopTimer()
	peak := probe.finish()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss := vmKiB("VmRSS")
	b.ReportMetric(float64(peak)/n/(1<<10), "peak-heap-KiB/tunnel")
	b.ReportMetric(float64(ms.HeapInuse-ms0.HeapInuse)/n/(1<<10), "heap-inuse-KiB/tunnel")
	if rss > before {
		b.ReportMetric(float64(rss-before)/n, "RSS-KiB/tunnel")
	}
	var drops uint64
	for _, t := range m.tb {
		drops += t.Stats().QueueFull.Load()
	}
	b.ReportMetric(float64(drops), "queue-full")
}
