//go:build !race

package link

// raceEnabled reports whether the race detector is on.
const raceEnabled = false
