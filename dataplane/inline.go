package dataplane

import (
	"sync"
	"sync/atomic"
)

// inlineMax is the largest batch that the goroutine which read it seals
// (stage 1 of send.go) or opens (stage 1 of receive.go) itself, rather
// than handing it to the encryption or decryption workers.
//
// A hand-off costs a wake-up of a parked worker (a futex wake and a
// context switch in the kernel) and later one of the sequential stage,
// which for a batch of one or a few packets is more than the crypto: on a
// busy 2-core host the raw ESP path was bound by wake-ups and context
// switches, not by AES-GCM (issue 10). Small batches are what a reader
// sees when it keeps up with its socket or TUN device; when it does not,
// its batches grow past inlineMax and the workers share the load again, so
// the choice balances itself. Order is kept either way: the batch is on
// the tunnel's queue in the order read, and the sequential stage waits for
// its lock as it does for a worker.
//
// On the way out, the reader also sends a batch it sealed itself when the
// tunnel's outbound queue holds nothing that is not on the wire yet
// (stage3.bypass on Tunnel.sending): the sequential sender is then not
// woken at all. For traffic that arrives a packet at a time
// (UDP, or anything without TSO on the inner side) that is one wake-up
// fewer per packet: `greipsec bench` on the 2-core host, UDP through the
// tunnel, from 62 000 to 78 000 packets/s of 64 bytes with ESP-in-UDP and
// 100 000 to 102 000-114 000 of 1400 bytes with raw ESP, the sending
// gateway using 74% of a core instead of 84%.
//
// On the way in, likewise, a socket receiver writes a group it opened
// itself to the TUN device when nothing of that tunnel is queued before it
// (stage3.bypass on Tunnel.delivering), unless the device's
// Write may wait for a reader (Tunnel.inlineWrite), which would stall the
// socket for every other tunnel: ESP-in-UDP, UDP of 64 bytes through the
// tunnel, 67 000 to 81 000-88 000 packets/s, the receiving gateway using
// 47% of a core instead of 56%.
const inlineMax = 8

// stage3 is the order of one direction's stage 3 for one tunnel. mu is held
// by whoever does the stage's work on a batch: the sequential goroutine, or
// the goroutine that read a small batch and runs it to completion. pending
// counts the batches put on the tunnel's queue and not yet done; the reader
// may do a batch itself only when it is 0, so that batches leave in the
// order they were queued.
type stage3 struct {
	mu      sync.Mutex
	pending atomic.Int64
}

// bypass reports whether the caller may do stage 3's work on its batch
// itself, now: nothing is queued before it, and it holds mu, which it must
// unlock when done.
func (s *stage3) bypass() bool { return s.pending.Load() == 0 && s.mu.TryLock() }
