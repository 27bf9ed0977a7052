//go:build unix

package dataplane

import (
	"golang.org/x/sys/unix"
)

// newLanding returns n buffers of size bytes for a socket receiver to land
// datagrams in, and the function that frees them once nothing refers to
// them any more.
//
// They are mapped outside the Go heap. Only the pages a datagram is written
// into become resident, as they would on the heap; but the Go heap is what
// the garbage collector paces itself by (GOGC): a heap holding 8 MiB of
// landing buffers per receive function would let as much garbage pile up
// before each collection, and the UDP socket's receive path (wireguard-go's
// StdNetBind and golang.org/x/net) allocates a little per datagram.
func newLanding(n, size int) ([][]byte, func()) {
	page := unix.Getpagesize()
	stride := (size + page - 1) / page * page // each buffer starts on a page
	mem, err := unix.Mmap(-1, 0, n*stride, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return heapLanding(n, size)
	}
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = mem[i*stride : i*stride+size : i*stride+size]
	}
	return bufs, func() { _ = unix.Munmap(mem) }
}
