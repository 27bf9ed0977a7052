//go:build !unix

package benchrun

import "time"

// processCPU is not measured on this system: CPU use reads 0.
func processCPU() time.Duration { return 0 }
