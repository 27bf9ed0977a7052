//go:build race

package link

// raceEnabled reports whether the race detector is on. Under it sync.Pool
// drops items at random, so pooled code allocates and allocation counts
// mean nothing.
const raceEnabled = true
