//go:build linux

package benchrun

import (
	"testing"
	"time"
)

// TestParseStatCPU reads utime and stime (proc(5) fields 14 and 15) after a
// command name that holds spaces and parentheses.
func TestParseStatCPU(t *testing.T) {
	for _, tc := range []struct {
		line string
		want time.Duration
	}{
		{"4242 (greipsec) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 130 0 0 20 0 9 0 100 0 0", 3800 * time.Millisecond},
		{"7 (a) b (c) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 0 0", 30 * time.Millisecond},
		{"7 (short) R 1 7", 0},
		{"garbage", 0},
		{"7 (x) R 1 7 7 0 -1 0 0 0 0 0 x 2 0", 0},
	} {
		if got := parseStatCPU(tc.line); got != tc.want {
			t.Errorf("parseStatCPU(%q) = %v, want %v", tc.line, got, tc.want)
		}
	}
	self := (&procStats{pid: 1}).cpu()
	if self < 0 {
		t.Errorf("cpu of pid 1: %v", self)
	}
}
