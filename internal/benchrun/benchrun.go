// Package benchrun is the engine of `greipsec bench`: it runs two greipsec
// gateways against each other and measures how fast packets go through the
// tunnel between them, for a sweep of ESP transforms, inner packet sizes and
// outer transports (raw ESP, ESP-in-UDP), in both directions.
//
// Two runners:
//
//   - ModeNetns (root, Linux): two `greipsec up` processes with manual SAs,
//     each in its own network namespace (package internal/lab), joined by a
//     veth pair; a built-in UDP load generator (sendmmsg/recvmmsg, no
//     iperf3 needed) sends through the TUN devices, and then one TCP stream
//     (lab.TCPThroughput) per direction. CPU is the gateway processes' own,
//     from /proc/PID/stat.
//   - ModeMemory (anywhere, no privilege): two dataplane.Devices in this
//     process joined by the in-memory link, each with an in-memory TUN
//     device, as bench/pipeline_test.go does; no syscalls on the path. CPU is
//     this process's, from getrusage.
//
// For each row the report also gives this CPU's single-core seal rate of
// the same transform and size (esp.SA.Seal in a loop), the crypto limit the
// tunnel is measured against.
//
// The UDP load is open loop in ModeNetns (the sender sends as fast as its
// socket takes packets; what the tunnel drops is not counted as delivered),
// and window-limited in ModeMemory (at most window packets in flight, as a
// transport with flow control would keep). Rates count delivered inner IP
// bytes and packets, measured at the receiver, after a warm-up.
package benchrun

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/greipsec/greipsec/esp"
)

// Mode selects the runner.
type Mode string

const (
	ModeAuto   Mode = "auto"   // ModeNetns when root on Linux, else ModeMemory
	ModeNetns  Mode = "netns"  // two greipsec processes in network namespaces
	ModeMemory Mode = "memory" // two dataplanes in this process over the memory link
)

// Transports, as the configuration spells them.
const (
	TransportESP = "esp" // raw IP protocol 50
	TransportUDP = "udp" // ESP-in-UDP, RFC 3948
)

// DefaultTransforms is the full sweep: every ESP transform family greipsec
// has (RFC 4106, RFC 7634, RFC 3602 + RFC 4868, RFC 2410).
var DefaultTransforms = []string{
	"aes128gcm16", "aes256gcm16", "chacha20poly1305",
	"aes128-sha256", "aes256-sha256", "aes256-sha512", "null-sha256",
}

// QuickTransforms is the --quick sweep: one of each family.
var QuickTransforms = []string{"aes256gcm16", "chacha20poly1305", "aes256-sha256", "null-sha256"}

// DefaultSizes and QuickSizes are inner IP packet sizes in bytes.
var (
	DefaultSizes = []int{64, 512, 1400}
	QuickSizes   = []int{64, 1400}
)

// MinSize and MaxSize bound a size: an IPv4 + UDP header with a little
// payload, and what fits the inner MTU of every transform on a 1500-byte
// path.
const (
	MinSize = 48
	MaxSize = 1400
)

// Options configures Run. The zero value of a field means its default.
type Options struct {
	Mode       Mode
	Transforms []esp.Transform // default DefaultTransforms (QuickTransforms with Quick)
	Sizes      []int           // default DefaultSizes (QuickSizes with Quick)
	Transports []string        // default esp and udp
	Duration   time.Duration   // measured time per direction; default 2 s (500 ms with Quick)
	Quick      bool
	// Exe is the greipsec binary ModeNetns runs; default os.Executable().
	Exe string
	// Progress receives one line per measurement; nil: none.
	Progress io.Writer
}

// Row is one measurement: one direction of one transform, size and
// transport. Rates count inner IP packets delivered to the receiving TUN
// device.
type Row struct {
	Mode      Mode   `json:"mode"`
	Transport string `json:"transport"`
	Transform string `json:"algorithm"`
	Load      string `json:"load"`      // LoadUDP or LoadTCP
	Size      int    `json:"size"`      // inner IP packet, bytes; 0 with LoadTCP
	Direction string `json:"direction"` // "a->b" or "b->a"

	Seconds    float64 `json:"seconds"`
	Sent       uint64  `json:"sent"`     // packets offered in the measured time (those in flight at its start arrive in it: Received may exceed Sent); 0 with LoadTCP
	Received   uint64  `json:"received"` // packets delivered in the measured time; 0 with LoadTCP
	Gbps       float64 `json:"gbit_per_s"`
	PacketsPS  float64 `json:"packets_per_s"` // 0 with LoadTCP
	CPUSender  float64 `json:"cpu_sender"`    // cores used by the sending gateway (ModeNetns), or by the whole process (ModeMemory)
	CPUReceive float64 `json:"cpu_receiver"`  // cores used by the receiving gateway (ModeNetns); 0 in ModeMemory

	// Round-trip times with LoadTCP, medians in microseconds, of pings
	// from the sending side: over the bare veth link, through the tunnel
	// before the stream, and through the tunnel during the stream.
	PingVethUs float64 `json:"ping_veth_us,omitempty"`
	PingIdleUs float64 `json:"ping_idle_us,omitempty"`
	PingLoadUs float64 `json:"ping_load_us,omitempty"`

	// SealGbps and SealPPS are the single-core esp.SA.Seal rate of the
	// transform for packets of Size bytes (MaxSize with LoadTCP), measured
	// in the same run.
	SealGbps float64 `json:"seal_gbit_per_s"`
	SealPPS  float64 `json:"seal_packets_per_s"`
}

// OfLimit is the tunnel's rate as a fraction of the single-core seal rate.
func (r *Row) OfLimit() float64 {
	if r.SealGbps == 0 {
		return 0
	}
	return r.Gbps / r.SealGbps
}

// The loads a Row measures.
const (
	LoadUDP = "udp" // datagrams of Size bytes, counted at the receiving TUN device
	LoadTCP = "tcp" // one TCP stream (ModeNetns only): goodput counted by the receiving socket
)

// Report is the result of Run.
type Report struct {
	Mode       Mode      `json:"mode"`
	Start      time.Time `json:"start"`
	CPU        string    `json:"cpu"`
	NumCPU     int       `json:"num_cpu"`
	GOMAXPROCS int       `json:"gomaxprocs"`
	GoVersion  string    `json:"go_version"`
	Duration   float64   `json:"duration_s"` // per direction
	Rows       []Row     `json:"rows"`
}

// ParseTransforms parses a comma-separated list of transforms in the
// configuration's spelling ("aes256gcm16,aes256-sha256").
func ParseTransforms(s string) ([]esp.Transform, error) {
	var list []esp.Transform
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		t, err := esp.ParseTransform(f)
		if err != nil {
			return nil, fmt.Errorf("benchrun: %w", err)
		}
		if !slices.Contains(list, t) {
			list = append(list, t)
		}
	}
	return list, nil
}

// ParseSizes parses a comma-separated list of inner packet sizes.
func ParseSizes(s string) ([]int, error) {
	var list []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		n, err := strconv.Atoi(f)
		if err != nil || n < MinSize || n > MaxSize {
			return nil, fmt.Errorf("benchrun: packet size %q: expected a number of bytes from %d to %d", f, MinSize, MaxSize)
		}
		if !slices.Contains(list, n) {
			list = append(list, n)
		}
	}
	return list, nil
}

// ParseTransports parses "esp", "udp" or "esp,udp".
func ParseTransports(s string) ([]string, error) {
	var list []string
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f != TransportESP && f != TransportUDP {
			return nil, fmt.Errorf("benchrun: unknown transport %q (expected esp, udp or esp,udp)", f)
		}
		if !slices.Contains(list, f) {
			list = append(list, f)
		}
	}
	return list, nil
}

// ParseMode parses auto, netns or memory.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeAuto, ModeNetns, ModeMemory:
		return m, nil
	}
	return "", fmt.Errorf("benchrun: unknown mode %q (expected auto, netns or memory)", s)
}

// withDefaults fills in o's defaults and checks it.
func (o Options) withDefaults() (Options, error) {
	if o.Mode == "" {
		o.Mode = ModeAuto
	}
	if o.Mode == ModeAuto {
		o.Mode = ModeMemory
		if netnsAvailable() == nil {
			o.Mode = ModeNetns
		}
	}
	if o.Mode == ModeNetns {
		if err := netnsAvailable(); err != nil {
			return o, err
		}
	}
	if len(o.Transforms) == 0 {
		names := DefaultTransforms
		if o.Quick {
			names = QuickTransforms
		}
		var err error
		if o.Transforms, err = ParseTransforms(strings.Join(names, ",")); err != nil {
			return o, err
		}
	}
	if len(o.Sizes) == 0 {
		o.Sizes = DefaultSizes
		if o.Quick {
			o.Sizes = QuickSizes
		}
	}
	if len(o.Transports) == 0 {
		o.Transports = []string{TransportESP, TransportUDP}
	}
	if o.Duration == 0 {
		o.Duration = 2 * time.Second
		if o.Quick {
			o.Duration = 500 * time.Millisecond
		}
	}
	if o.Duration < 50*time.Millisecond || o.Duration > time.Hour {
		return o, fmt.Errorf("benchrun: duration %v: expected 50ms to 1h", o.Duration)
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o, nil
}

// warmup is the time before each measurement in which the queues and
// buffer pools reach their working size.
func (o *Options) warmup() time.Duration {
	return min(max(o.Duration/5, 50*time.Millisecond), time.Second)
}

// runner measures one transport and transform at a time.
type runner interface {
	// setup brings up the two gateways for tr over transport.
	setup(ctx context.Context, transport string, tr esp.Transform) error
	// measure sends packets of size bytes from a to b (reverse: b to a) for
	// warmup then d, and fills in the measured fields of row.
	measure(ctx context.Context, size int, reverse bool, warmup, d time.Duration, row *Row) error
	// measureTCP sends one TCP stream from a to b (reverse: b to a) for d
	// and fills in the measured fields of row; errNoTCP if the runner
	// has no TCP stack.
	measureTCP(ctx context.Context, reverse bool, d time.Duration, row *Row) error
	// teardown stops what setup started.
	teardown()
	// close releases what the runner holds across setups.
	close() error
}

// Run runs the sweep of o and returns its report. Progress lines go to
// o.Progress as the measurements are made. It stops at the first failed
// measurement, returning the rows measured so far with the error.
func Run(ctx context.Context, o Options) (*Report, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	rep := &Report{Mode: o.Mode, Start: time.Now().UTC(), CPU: cpuModel(), NumCPU: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), Duration: o.Duration.Seconds()}
	var r runner
	switch o.Mode {
	case ModeNetns:
		if r, err = newNetnsRunner(o.Exe); err != nil {
			return nil, err
		}
	default:
		r = newMemoryRunner()
	}
	defer r.close()

	type sealKey struct {
		tr   esp.Transform
		size int
	}
	seals := map[sealKey][2]float64{}
	loads := o.Sizes // UDP sizes, then 0 for TCP
	if o.Mode == ModeNetns {
		loads = append(slices.Clip(loads), 0)
	}
	total := len(o.Transports) * len(o.Transforms) * len(loads) * 2
	n := 0
	fmt.Fprintf(o.Progress, "greipsec bench: %s mode, %d measurements of %v each (+%v warm-up)\n",
		o.Mode, total, o.Duration, o.warmup())
	for _, transport := range o.Transports {
		for _, tr := range o.Transforms {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			if err := r.setup(ctx, transport, tr); err != nil {
				return rep, err
			}
			for _, size := range loads {
				k := sealKey{tr, size}
				if size == 0 {
					k.size = MaxSize
				}
				if _, ok := seals[k]; !ok {
					gbps, pps, err := SealRate(tr, k.size, min(o.Duration/2, 500*time.Millisecond))
					if err != nil {
						r.teardown()
						return rep, err
					}
					seals[k] = [2]float64{gbps, pps}
				}
				for _, reverse := range []bool{false, true} {
					n++
					row := Row{Mode: o.Mode, Transport: transport, Transform: tr.String(), Load: LoadUDP, Size: size, Direction: "a->b",
						SealGbps: seals[k][0], SealPPS: seals[k][1]}
					if reverse {
						row.Direction = "b->a"
					}
					what := fmt.Sprintf("%d B", size)
					var err error
					if size == 0 {
						row.Load, what = LoadTCP, "TCP"
						err = r.measureTCP(ctx, reverse, o.Duration, &row)
					} else {
						err = r.measure(ctx, size, reverse, o.warmup(), o.Duration, &row)
					}
					if err == nil && row.Gbps == 0 {
						err = errors.New("nothing arrived")
					}
					if err != nil {
						r.teardown()
						return rep, fmt.Errorf("benchrun: %s %s %s %s: %w", transport, tr, what, row.Direction, err)
					}
					rep.Rows = append(rep.Rows, row)
					pps := ""
					if row.Load == LoadUDP {
						pps = fmt.Sprintf(" %9.0f packets/s", row.PacketsPS)
					}
					fmt.Fprintf(o.Progress, "[%d/%d] %-4s %-17s %6s %s  %7.3f Gbit/s%s\n",
						n, total, transport, tr, what, row.Direction, row.Gbps, pps)
				}
			}
			r.teardown()
		}
	}
	return rep, nil
}

// SealRate measures this CPU's single-core rate of esp.SA.Seal for tr and
// inner packets of size bytes, for about d of wall time: the crypto limit
// of one encryption worker. It returns inner Gbit/s and packets/s per
// second of the thread's CPU time (on Linux; elsewhere of wall time).
func SealRate(tr esp.Transform, size int, d time.Duration) (gbps, pps float64, err error) {
	c := esp.Config{SPI: 0x100, Algorithm: tr.Algorithm, Integrity: tr.Integrity, ESN: true,
		Key: make([]byte, tr.Algorithm.KeyLen())}
	rand.Read(c.Key)
	if tr.Integrity != esp.IntegrityNone {
		c.AuthKey = make([]byte, tr.Integrity.KeyLen())
		rand.Read(c.AuthKey)
	}
	sa, err := esp.NewSA(c)
	if err != nil {
		return 0, 0, fmt.Errorf("benchrun: %w", err)
	}
	buf := make([]byte, sa.Headroom()+size+sa.TrailerLen(size))
	// The rate is per second of this thread's CPU time where the system
	// tells it, so that other work on a shared host does not lower it;
	// else per second of wall time.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	clock := func() time.Duration {
		if t, ok := threadCPU(); ok {
			return t
		}
		return time.Duration(time.Now().UnixNano())
	}
	var seq uint64
	start, wall := clock(), time.Now()
	var elapsed time.Duration
	for time.Since(wall) < d || elapsed <= 0 {
		for range 256 {
			seq++
			sa.Seal(buf[:sa.Headroom()+size], seq, 4)
		}
		elapsed = clock() - start
	}
	pps = float64(seq) / elapsed.Seconds()
	return pps * float64(size) * 8 / 1e9, pps, nil
}

// cpuModel returns the CPU's model name from /proc/cpuinfo, or GOARCH.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}
