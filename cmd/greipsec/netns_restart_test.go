//go:build linux

package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/greipsec/greipsec/esp/seqstate"
	"github.com/greipsec/greipsec/internal/lab"
)

// espCapture records the ESP packets on one host's veth with an AF_PACKET
// socket opened in that host's namespace.
type espCapture struct {
	fd   int
	mu   sync.Mutex
	pkts []capturedESP
	done chan struct{}
}

type capturedESP struct {
	at       time.Time
	src, dst netip.Addr
	spi, seq uint32
	esp      []byte // SPI to ICV
}

func startCapture(t *testing.T, l *lab.Lab, h *lab.Host) *espCapture {
	t.Helper()
	c := &espCapture{done: make(chan struct{})}
	err := l.Do(h, func() error {
		ifi, err := net.InterfaceByName(h.Link)
		if err != nil {
			return err
		}
		// ETH_P_ALL: a socket for one protocol does not see the packets
		// the host sends.
		proto := htons(unix.ETH_P_ALL)
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, int(proto))
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return err
		}
		c.fd = fd
		return nil
	})
	if err != nil {
		t.Fatalf("capture on %s: %v", h.Name, err)
	}
	go c.run()
	return c
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *espCapture) run() {
	buf := make([]byte, 65536)
	for {
		select {
		case <-c.done:
			return
		default:
		}
		n, from, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			continue // timeout: look at done again
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); !ok || ll.Protocol != htons(unix.ETH_P_IP) {
			continue
		}
		p := buf[:n]
		if n < 20 || p[0]>>4 != 4 || p[9] != unix.IPPROTO_ESP {
			continue
		}
		hl := int(p[0]&0x0f) * 4
		if n < hl+8 {
			continue
		}
		e := capturedESP{
			at:  time.Now(),
			src: netip.AddrFrom4([4]byte(p[12:16])),
			dst: netip.AddrFrom4([4]byte(p[16:20])),
			spi: binary.BigEndian.Uint32(p[hl:]),
			seq: binary.BigEndian.Uint32(p[hl+4:]),
			esp: append([]byte(nil), p[hl:]...),
		}
		c.mu.Lock()
		c.pkts = append(c.pkts, e)
		c.mu.Unlock()
	}
}

// snapshot returns the packets captured so far.
func (c *espCapture) snapshot() []capturedESP {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]capturedESP(nil), c.pkts...)
}

func (c *espCapture) stop() []capturedESP {
	close(c.done)
	time.Sleep(200 * time.Millisecond)
	unix.Close(c.fd)
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]capturedESP(nil), c.pkts...)
}

// counterRE reads the replay counter of A's inbound SA from its counters
// log line.
var counterRE = regexp.MustCompile(`rx_packets=(\d+) .*in_spi=0x00001002 auth_failures=(\d+) replays=(\d+)`)

// inboundCounters makes A's gateway log its counters (SIGUSR1) and returns
// the tunnel's received packets and the authentication failure and replay
// counts of SA 0x1002.
func inboundCounters(t *testing.T, cmd *exec.Cmd, logPath string) (rx, auth, replays int) {
	t.Helper()
	before, _ := os.ReadFile(logPath)
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	var m []string
	lab.WaitFor(5*time.Second, func() bool {
		log, _ := os.ReadFile(logPath)
		if len(log) <= len(before) {
			return false
		}
		all := counterRE.FindAllStringSubmatch(string(log[len(before):]), -1)
		if len(all) == 0 {
			return false
		}
		m = all[len(all)-1]
		return true
	})
	if m == nil {
		t.Fatal("no counters logged")
	}
	rx, _ = strconv.Atoi(m[1])
	auth, _ = strconv.Atoi(m[2])
	replays, _ = strconv.Atoi(m[3])
	return rx, auth, replays
}

// TestNetnsManualRestart is the restart test of C1 (review finding C1,
// issue 6) with two real "greipsec up" processes and manual AES-GCM keys
// (examples/manual-a.toml and manual-b.toml over raw ESP). Traffic flows
// both ways; gateway A is killed with SIGKILL mid-traffic and started
// again. From a capture of every ESP packet on B's veth it shows:
//   - no sequence number is sent twice under A's outbound key, across the
//     restart (with AES-GCM that would reuse a nonce);
//   - the packets B sent to A before the restart (captured by an attacker)
//     up to the inbound window top A had written to its state file, sent
//     again to the restarted A, are all dropped and none reaches A's TUN
//     device: as replays within the window below that top, and, further
//     below, as authentication failures, because with ESN a number that
//     far below the window is taken for the next 2^32 (RFC 4303 A2.2),
//     exactly as without a restart. The packets B sent after A's last
//     write (at most a second's worth) are the documented exposure of a
//     crash; the test logs how many there were.
func TestNetnsManualRestart(t *testing.T) {
	needRoot(t)
	l, cmds, logs := gateways(t, "manual-a.toml", "manual-b.toml", setTransport("esp"))
	cfgA := strings.TrimSuffix(logs[0], ".log")
	innerB := netip.MustParseAddr("10.255.0.2")
	if !lab.WaitFor(10*time.Second, func() bool { n, _ := l.Ping(&l.A, innerB, 1, time.Second); return n == 1 }) {
		t.Fatal("no ping through the tunnel")
	}
	capture := startCapture(t, l, &l.B)

	// Phase 1: traffic both ways (echo requests A→B, replies B→A).
	if n, err := l.Ping(&l.A, innerB, 200, 10*time.Second); err != nil || n < 190 {
		t.Fatalf("phase 1: %d/200 replies, %v", n, err)
	}
	// A writes its inbound window top every second.
	time.Sleep(2500 * time.Millisecond)

	// Phase 2: traffic while A is killed.
	stopTraffic := make(chan struct{})
	var traffic sync.WaitGroup
	traffic.Add(1)
	go func() {
		defer traffic.Done()
		for {
			select {
			case <-stopTraffic:
				return
			default:
				l.Ping(&l.A, innerB, 1, 50*time.Millisecond)
			}
		}
	}()
	time.Sleep(time.Second)
	if err := cmds[0].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	l.Wait(cmds[0])
	killedAt := time.Now()
	// Stop the traffic, so that B sends nothing newer to the restarted A
	// before the replay below: it must meet the window as restored.
	close(stopTraffic)
	traffic.Wait()

	// The inbound window top A had written before it was killed.
	data, err := os.ReadFile(cfgA + ".state")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := seqstate.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	var top uint64
	for _, r := range recs {
		if r.Dir == seqstate.Inbound && r.SPI == 0x1002 {
			top = r.Mark
		}
	}

	// The restart: the same configuration, and its state file.
	log, err := os.OpenFile(logs[0], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	fmt.Fprintln(log, "=== restart after SIGKILL ===")
	restarted := exec.Command(greipsecBinary(t), "up", "--allow-example-psk", "-c", cfgA, "--control", cfgA+".sock")
	restarted.Stdout, restarted.Stderr = log, log
	if err := l.Start(&l.A, restarted); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitLink(&l.A, "gre0", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// The attacker's capture of B → A up to that top, replayed into the
	// restarted A from B's address.
	var replay [][]byte
	inWindow, exposed := 0, 0
	for _, p := range capture.snapshot() {
		if p.spi != 0x1002 || p.src != netip.MustParseAddr("192.0.2.2") || !p.at.Before(killedAt) {
			continue
		}
		if uint64(p.seq) > top {
			exposed++
			continue
		}
		replay = append(replay, p.esp)
		if top-uint64(p.seq) < 1024 {
			inWindow++
		}
	}
	if len(replay) < 190 || inWindow == 0 {
		t.Fatalf("captured only %d packets of B's up to A's saved top %d (%d in the window)", len(replay), top, inWindow)
	}
	rx0, auth0, replays0 := inboundCounters(t, restarted, logs[0])
	err = l.Do(&l.B, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ESP)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		to := &unix.SockaddrInet4{Addr: [4]byte{192, 0, 2, 1}}
		for _, b := range replay {
			if err := unix.Sendto(fd, b, 0, to); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var rx1, auth1, replays1 int
	if !lab.WaitFor(5*time.Second, func() bool {
		rx1, auth1, replays1 = inboundCounters(t, restarted, logs[0])
		return replays1-replays0+auth1-auth0 >= len(replay)
	}) {
		t.Fatalf("replayed %d captured packets: %d counted as replays, %d authentication failures",
			len(replay), replays1-replays0, auth1-auth0)
	}
	// Every replayed packet is dropped and counted, so none is delivered.
	// B's kernel may send packets of its own into the tunnel meanwhile
	// (IPv6 neighbour discovery, MLD): they are fresh, are delivered, and
	// move the window up to their sequence number, which is above the
	// saved top by as many packets as B sent after A's last write (the
	// pings above run back to back: up to a few thousand a second). The
	// replayed packets below that new window are authentication failures
	// (ESN); those within it must all be replays.
	newTop := top
	for _, p := range capture.snapshot() {
		if p.spi == 0x1002 && p.src == netip.MustParseAddr("192.0.2.2") && !p.at.Before(killedAt) && uint64(p.seq) > newTop {
			newTop = uint64(p.seq)
		}
	}
	stillInWindow := 0
	for _, b := range replay {
		if seq := binary.BigEndian.Uint32(b[4:8]); newTop-uint64(seq) < 1024 {
			stillInWindow++
		}
	}
	if replays1-replays0+auth1-auth0 != len(replay) || replays1-replays0 < stillInWindow {
		t.Errorf("replayed %d captured packets (%d in the saved window, %d in the window after B's fresh packets up to %d): %d delivered, %d replays, %d authentication failures",
			len(replay), inWindow, stillInWindow, newTop, rx1-rx0, replays1-replays0, auth1-auth0)
	}
	t.Logf("A's saved inbound top %d: %d captured packets replayed into the restarted gateway, none delivered: %d dropped as replays (%d within the window), %d as authentication failures (ESN); %d fresh packets from B meanwhile; %d packets were sent after A's last write of the top",
		top, len(replay), replays1-replays0, inWindow, auth1-auth0, rx1-rx0, exposed)

	// Traffic again: the peer accepts A's new sequence numbers.
	restartedAt := time.Now()
	if !lab.WaitFor(5*time.Second, func() bool { n, _ := l.Ping(&l.A, innerB, 1, 200*time.Millisecond); return n == 1 }) {
		t.Fatal("no ping through the tunnel within 5 s of the restart")
	}
	if n, err := l.Ping(&l.A, innerB, 200, 5*time.Second); err != nil || n < 190 {
		t.Fatalf("after the restart: %d/200 replies, %v", n, err)
	}
	pkts := capture.stop()

	// No sequence number twice under A's key (SPI 0x1001, A → B).
	seen := map[uint32]time.Time{}
	var before, after int
	var maxBefore, minAfter uint32 = 0, ^uint32(0)
	for _, p := range pkts {
		if p.spi != 0x1001 || p.src != netip.MustParseAddr("192.0.2.1") {
			continue
		}
		if first, dup := seen[p.seq]; dup {
			t.Fatalf("A sent sequence number %d twice under one key (at %v and %v)", p.seq, first, p.at)
		}
		seen[p.seq] = p.at
		switch {
		case p.at.Before(killedAt):
			before++
			maxBefore = max(maxBefore, p.seq)
		case p.at.After(restartedAt):
			after++
			minAfter = min(minAfter, p.seq)
		}
	}
	if before < 200 || after < 190 {
		t.Fatalf("captured %d packets of A before the kill and %d after the restart", before, after)
	}
	t.Logf("A's key: %d sequence numbers before SIGKILL (highest %d), %d after the restart (lowest %d), none twice",
		before, maxBefore, after, minAfter)
	if minAfter <= maxBefore {
		t.Errorf("after the restart A resumed at %d, not above %d", minAfter, maxBefore)
	}

	if err := l.Stop(restarted); err != nil && !errors.As(err, new(*exec.ExitError)) {
		t.Error(err)
	}
}
