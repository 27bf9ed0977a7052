//go:build linux

package benchrun

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/internal/lab"
)

// The inner addresses of the two gateways' TUN devices.
var (
	netnsInnerA = netip.MustParseAddr("10.255.0.1")
	netnsInnerB = netip.MustParseAddr("10.255.0.2")
)

// netnsAvailable reports why ModeNetns cannot run here, or nil.
func netnsAvailable() error {
	if os.Geteuid() != 0 {
		return errors.New("benchrun: netns mode needs root (network namespaces, TUN devices, raw sockets): run as root or use --mode memory")
	}
	return nil
}

// netnsRunner runs two `greipsec up` processes with manual SAs in the two
// namespaces of a lab.Lab.
type netnsRunner struct {
	exe   string
	dir   string // configs, state files, control sockets and logs
	lab   *lab.Lab
	n     int           // setups so far, for unique file names
	cmds  [2]*exec.Cmd  // A's and B's gateway while set up
	logs  [2]string     // their log files
	stats [2]*procStats // their /proc/PID/stat
}

func newNetnsRunner(exe string) (*netnsRunner, error) {
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("benchrun: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "greipsec-bench")
	if err != nil {
		return nil, fmt.Errorf("benchrun: %w", err)
	}
	l, err := lab.New(lab.RandomPrefix("gqb"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("benchrun: %w", err)
	}
	return &netnsRunner{exe: exe, dir: dir, lab: l}, nil
}

// saTable returns the [tunnel.sa.NAME] table of one SA with fresh keys.
func saTable(name string, spi uint32, tr esp.Transform, key, authKey []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[tunnel.sa.%s]\nspi = 0x%08x\nalgorithm = %q\nnew = true\nesn = true\n", name, spi, tr.String())
	if len(key) > 0 {
		fmt.Fprintf(&b, "key = \"0x%s\"\n", hex.EncodeToString(key))
	}
	if len(authKey) > 0 {
		fmt.Fprintf(&b, "auth-key = \"0x%s\"\n", hex.EncodeToString(authKey))
	}
	if name == "in" {
		b.WriteString("replay-window = 4096\n")
	}
	return b.String()
}

func (r *netnsRunner) setup(ctx context.Context, transport string, tr esp.Transform) error {
	r.n++
	random := func(n int) []byte {
		if n == 0 {
			return nil
		}
		k := make([]byte, n)
		rand.Read(k)
		return k
	}
	var keys [2][2][]byte // per direction a->b, b->a: key, auth key
	for i := range keys {
		keys[i] = [2][]byte{random(tr.Algorithm.KeyLen()), random(tr.Integrity.KeyLen())}
	}
	hosts := [2]*lab.Host{&r.lab.A, &r.lab.B}
	inner := [2]netip.Addr{netnsInnerA, netnsInnerB}
	for i, h := range hosts {
		peer := hosts[1-i]
		out, in := keys[i], keys[1-i]
		conf := fmt.Sprintf("[[tunnel]]\nname = \"gre0\"\nmode = \"gre-transport\"\ntransport = %q\nlocal = %q\npeer = %q\naddresses = [%q]\n\n",
			transport, h.Addr4.Addr(), peer.Addr4.Addr(), netip.PrefixFrom(inner[i], 30))
		conf += saTable("out", 0x1001+uint32(i), tr, out[0], out[1]) + "\n" + saTable("in", 0x1001+uint32(1-i), tr, in[0], in[1])
		base := filepath.Join(r.dir, fmt.Sprintf("%d-%c", r.n, 'a'+i))
		if err := os.WriteFile(base+".toml", []byte(conf), 0o600); err != nil {
			return fmt.Errorf("benchrun: %w", err)
		}
		logFile, err := os.Create(base + ".log")
		if err != nil {
			return fmt.Errorf("benchrun: %w", err)
		}
		cmd := exec.Command(r.exe, "up", "-c", base+".toml", "--control", base+".sock")
		cmd.Stdout, cmd.Stderr = logFile, logFile
		err = r.lab.Start(h, cmd)
		logFile.Close()
		if err != nil {
			r.teardown()
			return fmt.Errorf("benchrun: start greipsec in %s: %w", h.Name, err)
		}
		r.cmds[i], r.logs[i] = cmd, base+".log"
		r.stats[i] = &procStats{pid: cmd.Process.Pid}
	}
	fail := func(err error) error {
		msg := r.exitedLogs()
		r.teardown()
		return fmt.Errorf("benchrun: %s %s: %w%s", transport, tr, err, msg)
	}
	for _, h := range hosts {
		if err := r.lab.WaitLink(h, "gre0", 15*time.Second); err != nil {
			return fail(err)
		}
	}
	if !lab.WaitFor(15*time.Second, func() bool {
		n, _ := r.lab.Ping(&r.lab.A, netnsInnerB, 1, 500*time.Millisecond)
		return n == 1 || ctx.Err() != nil
	}) {
		return fail(errors.New("no ping reply through the tunnel within 15 s"))
	}
	return ctx.Err()
}

// exitedLogs returns the logs of the gateways that have exited, for an
// error message.
func (r *netnsRunner) exitedLogs() string {
	var b strings.Builder
	for i, cmd := range r.cmds {
		if cmd != nil && r.lab.Exited(cmd) {
			log, _ := os.ReadFile(r.logs[i])
			fmt.Fprintf(&b, "\ngreipsec in %s exited:\n%s", []string{r.lab.A.Name, r.lab.B.Name}[i], lastLines(string(log), 20))
		}
	}
	return b.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (r *netnsRunner) measure(ctx context.Context, size int, reverse bool, warmup, d time.Duration, row *Row) error {
	from, to, dst := &r.lab.A, &r.lab.B, netnsInnerB
	sender, receiver := r.stats[0], r.stats[1]
	if reverse {
		from, to, dst = to, from, netnsInnerA
		sender, receiver = receiver, sender
	}
	var rc *net.UDPConn
	err := r.lab.Do(to, func() (err error) {
		rc, err = net.ListenUDP("udp4", &net.UDPAddr{IP: dst.AsSlice()})
		return err
	})
	if err != nil {
		return err
	}
	defer rc.Close()
	rc.SetReadBuffer(8 << 20)
	var sc *net.UDPConn
	err = r.lab.Do(from, func() (err error) {
		sc, err = net.DialUDP("udp4", nil, rc.LocalAddr().(*net.UDPAddr))
		return err
	})
	if err != nil {
		return err
	}
	defer sc.Close()
	sc.SetWriteBuffer(4 << 20)

	f := &flow{nudge: make(chan struct{}, 1)}
	received, sent := &f.received, &f.sent
	var wg sync.WaitGroup
	wg.Go(func() { receiveUDP(rc, f) })
	var stop atomic.Bool
	wg.Go(func() { sendUDP(sc, size-28, &stop, f) })
	defer func() {
		stop.Store(true)
		sc.Close()
		rc.Close()
		wg.Wait()
	}()

	if err := sleepCtx(ctx, warmup); err != nil {
		return err
	}
	t0, rx0, tx0 := time.Now(), received.Load(), sent.Load()
	s0, r0 := sender.cpu(), receiver.cpu()
	err = measureWindow(ctx, d, received)
	elapsed, rx, tx := time.Since(t0), received.Load()-rx0, sent.Load()-tx0
	s1, r1 := sender.cpu(), receiver.cpu()
	stop.Store(true)
	if err != nil {
		return err
	}
	waitQuiet(received, 2*time.Second)
	fillRow(row, size, elapsed, tx, rx)
	row.CPUSender = (s1 - s0).Seconds() / elapsed.Seconds()
	row.CPUReceive = (r1 - r0).Seconds() / elapsed.Seconds()
	if msg := r.exitedLogs(); msg != "" {
		return errors.New("a gateway exited" + msg)
	}
	return nil
}

// batch is how many datagrams the load generator sends or receives in one
// sendmmsg or recvmmsg.
const batch = 64

func (r *netnsRunner) measureTCP(ctx context.Context, reverse bool, d time.Duration, row *Row) error {
	from, to, dst := &r.lab.A, &r.lab.B, netnsInnerB
	sender, receiver := r.stats[0], r.stats[1]
	if reverse {
		from, to, dst = to, from, netnsInnerA
		sender, receiver = receiver, sender
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	veth, err := r.lab.PingRTTs(from, to.Addr4.Addr(), 5, time.Second)
	if err != nil {
		return err
	}
	idle, err := r.lab.PingRTTs(from, dst, 5, time.Second)
	if err != nil {
		return err
	}
	// Pings through the tunnel every 20 ms while the stream runs, from a
	// fifth of the way in (the stream has ramped up) to its end.
	var loaded []time.Duration
	pingDone := make(chan struct{})
	streamDone := make(chan struct{})
	go func() {
		defer close(pingDone)
		select {
		case <-time.After(d / 5):
		case <-streamDone:
			return
		}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-streamDone:
				return
			case <-tick.C:
			}
			rtts, err := r.lab.PingRTTs(from, dst, 1, time.Second)
			if err != nil {
				return
			}
			loaded = append(loaded, rtts...)
		}
	}()
	t0, s0, r0 := time.Now(), sender.cpu(), receiver.cpu()
	bps, err := r.lab.TCPThroughput(from, to, dst, d)
	close(streamDone)
	<-pingDone
	if err != nil {
		return err
	}
	elapsed := time.Since(t0)
	row.PingVethUs, row.PingIdleUs, row.PingLoadUs = medianUs(veth), medianUs(idle), medianUs(loaded)
	row.Seconds = elapsed.Seconds()
	row.Gbps = bps / 1e9
	row.CPUSender = (sender.cpu() - s0).Seconds() / elapsed.Seconds()
	row.CPUReceive = (receiver.cpu() - r0).Seconds() / elapsed.Seconds()
	if msg := r.exitedLogs(); msg != "" {
		return errors.New("a gateway exited" + msg)
	}
	return nil
}

// medianUs returns the median of rtts in microseconds, or 0 for none.
func medianUs(rtts []time.Duration) float64 {
	if len(rtts) == 0 {
		return 0
	}
	s := slices.Clone(rtts)
	slices.Sort(s)
	return float64(s[len(s)/2]) / float64(time.Microsecond)
}

// netnsWindow is how many datagrams the load generator keeps in flight
// through the tunnel, as a transport with flow control would: an open-loop
// sender on a small machine spends the CPU the gateways need on packets
// that are dropped at a full TUN queue.
const netnsWindow = 1024

// flow is the load generator's window: the receiver counts and nudges,
// the sender waits while netnsWindow datagrams are unaccounted for.
type flow struct {
	sent, received atomic.Uint64
	lost           atomic.Uint64 // datagrams given up on: the sender waited in vain
	nudge          chan struct{}
}

// receiveUDP counts the datagrams arriving on c until c is closed.
func receiveUDP(c *net.UDPConn, f *flow) {
	pc := ipv4.NewPacketConn(c)
	msgs := make([]ipv4.Message, batch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 2048)}
	}
	for {
		k, err := pc.ReadBatch(msgs, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		f.received.Add(uint64(k))
		select {
		case f.nudge <- struct{}{}:
		default:
		}
	}
}

// sendUDP sends datagrams of payload bytes on the connected c, at most
// netnsWindow ahead of the receiver, until stop is set or c is closed.
// When the receiver does not move for 2 ms, what is in flight is taken as
// lost.
func sendUDP(c *net.UDPConn, payload int, stop *atomic.Bool, f *flow) {
	pc := ipv4.NewPacketConn(c)
	data := make([]byte, payload)
	msgs := make([]ipv4.Message, batch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{data}
	}
	wait := time.NewTimer(time.Hour)
	defer wait.Stop()
	for !stop.Load() {
		for inFlight := func() int64 {
			return int64(f.sent.Load()) - int64(f.received.Load()) - int64(f.lost.Load())
		}; inFlight() > netnsWindow-batch; {
			wait.Reset(2 * time.Millisecond)
			select {
			case <-f.nudge:
			case <-wait.C:
				if n := inFlight(); n > 0 {
					f.lost.Add(uint64(n))
				}
			}
			if stop.Load() {
				return
			}
		}
		k, err := pc.WriteBatch(msgs, 0)
		if k > 0 {
			f.sent.Add(uint64(k))
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return // measure closed c
			}
			time.Sleep(100 * time.Microsecond) // ENOBUFS and the like: let the queue drain
		}
	}
}

func (r *netnsRunner) teardown() {
	for i, cmd := range r.cmds {
		if cmd != nil {
			r.lab.Stop(cmd)
		}
		r.cmds[i], r.stats[i] = nil, nil
	}
}

func (r *netnsRunner) close() error {
	r.teardown()
	err := r.lab.Close()
	os.RemoveAll(r.dir)
	return err
}

// procStats reads a process's CPU time from /proc/PID/stat.
type procStats struct{ pid int }

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpu returns the user and system CPU time of the process, or 0 if it
// cannot be read.
func (p *procStats) cpu() time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/stat")
	if err != nil {
		return 0
	}
	return parseStatCPU(string(b))
}

// parseStatCPU returns utime+stime of a /proc/PID/stat line (proc(5):
// fields 14 and 15, counted after the command name in parentheses, which
// may itself hold spaces and parentheses).
func parseStatCPU(s string) time.Duration {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * time.Second / clockTicks
}
