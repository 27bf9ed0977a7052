package dataplane

import (
	"errors"
	"fmt"
	"slices"
)

// RemoveTunnel stops the tunnel called name and takes it out of a running
// Device, leaving the other tunnels untouched: a reload removes a tunnel
// this way, or replaces it by removing it and adding the new one.
//
// In order, it:
//
//  1. takes the tunnel out of the tunnel list, so AddTunnel may reuse the
//     name at once;
//  2. removes its inbound SAs from the SA table: ESP for them counts as an
//     unknown SPI from then on;
//  3. drops its outbound SA and closes its inner device, which ends its
//     TUN reader (stage 1 of send.go); the batches it queued still go out;
//  4. waits until no socket receiver can still hand it a batch (the
//     receivers read-lock inboundGate from their SPI lookups until the
//     batch is queued), then closes its inbound queue, which ends its
//     sequential receiver once the queued batches are written;
//  5. closes the outer sockets no remaining tunnel uses.
//
// It returns once the tunnel is out of every table; its goroutines end
// shortly after. IKE messages to the peer should be sent before: the
// ESP-in-UDP socket may close in step 5. It returns an error if there is
// no such tunnel or the Device is closed, and the inner device's or a
// socket's error on closing.
func (d *Device) RemoveTunnel(name string) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return errors.New("dataplane: device closed")
	}
	i := slices.IndexFunc(d.tunnels, func(t *Tunnel) bool { return t.cfg.Name == name })
	if i < 0 {
		d.mu.Unlock()
		return fmt.Errorf("dataplane: no tunnel %q", name)
	}
	t := d.tunnels[i]
	d.tunnels = slices.Delete(slices.Clone(d.tunnels), i, i+1)
	unused := d.unusedBindsLocked()
	d.mu.Unlock()

	d.inboundMu.Lock()
	old := *d.inbound.Load()
	next := make(map[uint32]*inboundSA, len(old))
	for spi, in := range old {
		if in.tunnel != t {
			next[spi] = in
		}
	}
	d.inbound.Store(&next)
	d.inboundMu.Unlock()

	t.SetOutboundSA(nil, nil)
	t.closing.Store(true)
	t.stopLogs()
	errs := []error{t.tun.Close()}

	d.inboundGate.Lock()
	close(t.queue.inbound)
	d.inboundGate.Unlock()
	// The tunnel's buffers go back to the pools as its goroutines drain;
	// the pools' limits shrink by its share now (pools.go).
	d.pool.removeTunnel(t)

	for _, bs := range unused {
		errs = append(errs, bs.bind.Close())
	}
	return errors.Join(errs...)
}

// unusedBindsLocked removes from d.binds, and returns, the sockets that no
// tunnel in d.tunnels uses for its configured transport or for the UDP
// encapsulation that NAT traversal may switch it to. d.mu must be held.
func (d *Device) unusedBindsLocked() []*bindState {
	used := make(map[bindKey]bool)
	for _, t := range d.tunnels {
		c := &t.cfg
		used[d.bindKeyFor(c.Transport, c.Local, c.UDPPort)] = true
		if c.NATTraversal {
			used[d.bindKeyFor(TransportUDP, c.Local, c.UDPPort)] = true
		}
	}
	var unused []*bindState
	for k, bs := range d.binds {
		if !used[k] {
			unused = append(unused, bs)
			delete(d.binds, k)
		}
	}
	return unused
}
