//go:build !linux

package benchrun

import "time"

// threadCPU is not available here: SealRate falls back to wall time.
func threadCPU() (time.Duration, bool) { return 0, false }
