//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/greipsec/greipsec/internal/benchrun"
	"github.com/greipsec/greipsec/internal/lab"
)

// TestNetnsBench runs `greipsec bench` as root in network namespaces,
// briefly: two real gateways per transport, UDP through both directions of
// the tunnel, JSON and SVG out, and nothing left behind.
func TestNetnsBench(t *testing.T) {
	needRoot(t)
	exe := greipsecBinary(t)
	svg := filepath.Join(t.TempDir(), "sweep.svg")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "bench", "--mode", "netns", "--alg", "aes256gcm16", "--size", "1400",
		"--duration", "1s", "--json", "--svg", svg)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	// Whatever happened, no namespace of the bench may remain.
	t.Cleanup(func() {
		names, _ := filepath.Glob(filepath.Join(lab.NetnsDir, "gqb*"))
		for _, n := range names {
			t.Errorf("namespace %s left behind", n)
			lab.Cleanup(filepath.Base(n)[:len("gqb")+4])
		}
	})
	if err != nil {
		t.Fatalf("greipsec bench: %v\nstderr:\n%s", err, stderr.String())
	}
	var rep benchrun.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, stdout.String())
	}
	if rep.Mode != benchrun.ModeNetns || len(rep.Rows) != 8 {
		t.Fatalf("mode %s, %d rows, want netns and 8 (esp, udp × UDP 1400 bytes, TCP × a->b, b->a):\n%s", rep.Mode, len(rep.Rows), stdout.String())
	}
	seen := map[string]bool{}
	for _, r := range rep.Rows {
		seen[r.Transport+" "+r.Load+" "+r.Direction] = true
		if r.Transform != "aes256gcm16" || r.Gbps <= 0 || r.CPUSender <= 0 || r.CPUReceive <= 0 || r.SealGbps <= 0 {
			t.Errorf("row %+v: want aes256gcm16, non-zero rates and CPU", r)
		}
		if r.Load == benchrun.LoadTCP && (r.PingVethUs <= 0 || r.PingIdleUs <= 0 || r.PingLoadUs <= 0) {
			t.Errorf("TCP row %+v: want the ping round-trip times", r)
		}
		if r.Load == benchrun.LoadUDP && (r.Size != 1400 || r.Received == 0 || r.PacketsPS <= 0) {
			t.Errorf("UDP row %+v: want 1400 bytes and packets received", r)
		}
	}
	for _, tp := range []string{"esp", "udp"} {
		for _, load := range []string{benchrun.LoadUDP, benchrun.LoadTCP} {
			for _, dir := range []string{"a->b", "b->a"} {
				if k := tp + " " + load + " " + dir; !seen[k] {
					t.Errorf("no row %s", k)
				}
			}
		}
	}
	if n := strings.Count(stderr.String(), "Gbit/s"); n != 8 {
		t.Errorf("%d progress lines on stderr, want 8:\n%s", n, stderr.String())
	}
	b, err := os.ReadFile(svg)
	if err != nil || !bytes.Contains(b, []byte("<svg")) || !bytes.Contains(b, []byte(">aes256gcm16<")) {
		t.Errorf("SVG chart: %v\n%.300s", err, b)
	}
}
