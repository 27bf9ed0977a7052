//go:build !unix

package dataplane

// newLanding returns n buffers of size bytes for a socket receiver to land
// datagrams in, and the function that frees them.
func newLanding(n, size int) ([][]byte, func()) { return heapLanding(n, size) }
