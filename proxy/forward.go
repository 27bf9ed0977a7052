package proxy

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// TCPForward forwards each connection accepted from a listener to Target,
// through Dialer. For a local port forwarded to the far site the listener is
// the host's (net.Listen) and Dialer the tunnel's netstack; for a port of
// the tunnel address forwarded to a local service, the listener is the
// netstack's (Stack.Listen) and Dialer a *net.Dialer.
type TCPForward struct {
	Dialer Dialer
	Target string // "host:port"; Dialer resolves a host name
	Limits Limits
	Logger *slog.Logger

	stats Stats
}

// Stats returns the forward's counters.
func (f *TCPForward) Stats() *Stats { return &f.stats }

// Serve forwards connections from l until ctx ends or l fails. It then
// closes l and every connection, and returns nil for ctx or the error of
// l.Accept.
func (f *TCPForward) Serve(ctx context.Context, l net.Listener) error {
	idle := orDefault(f.Limits.IdleTimeout, DefaultTCPIdleTimeout)
	return serveConns(ctx, l, f.Limits, &f.stats, func(ctx context.Context, c net.Conn) {
		dctx, cancel := context.WithTimeout(ctx, f.Limits.dialTimeout())
		far, err := f.Dialer.DialContext(dctx, "tcp", f.Target)
		cancel()
		if err != nil {
			f.stats.Failed.Add(1)
			orLogger(f.Logger).Debug("forward: dial failed", "from", c.RemoteAddr(), "to", f.Target, "err", err)
			return
		}
		relay(c, far, idle)
	})
}

// UDPForward forwards the datagrams that arrive on a socket to Target,
// through Dialer, one flow per source address: each source gets its own
// connected socket toward Target, and what Target sends back on it goes to
// that source. A flow ends when it has carried nothing for IdleTimeout; at
// most MaxConns flows are open at once.
type UDPForward struct {
	Dialer Dialer
	Target string // "host:port"; Dialer resolves a host name
	Limits Limits
	Logger *slog.Logger

	stats Stats
}

// Stats returns the forward's counters.
func (f *UDPForward) Stats() *Stats { return &f.stats }

// udpFlow is one source's flow.
type udpFlow struct {
	conn net.Conn     // connected to Target
	last atomic.Int64 // time of the last datagram either way, Unix ns
}

// Serve forwards datagrams from pc until ctx ends or reading pc fails. It
// then closes pc and every flow and returns nil for ctx, else the error.
func (f *UDPForward) Serve(ctx context.Context, pc net.PacketConn) error {
	idle := orDefault(f.Limits.IdleTimeout, DefaultUDPIdleTimeout)
	maxFlows := f.Limits.maxConns()
	var (
		mu    sync.Mutex
		flows = make(map[netip.AddrPort]*udpFlow)
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()

	// The janitor ends idle flows.
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(max(idle/4, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			now := time.Now().UnixNano()
			mu.Lock()
			for src, fl := range flows {
				if time.Duration(now-fl.last.Load()) >= idle {
					fl.conn.Close() // its reader removes it
					delete(flows, src)
				}
			}
			mu.Unlock()
		}
	}()
	defer func() {
		cancel()
		pc.Close()
		mu.Lock()
		for _, fl := range flows {
			fl.conn.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()

	buf := make([]byte, maxDatagram)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		src := addrPortOf(addr)
		mu.Lock()
		fl := flows[src]
		mu.Unlock()
		if fl == nil {
			if fl = f.startFlow(ctx, pc, src, addr, &mu, flows, maxFlows, &wg); fl == nil {
				f.stats.Dropped.Add(1)
				continue
			}
		}
		fl.last.Store(time.Now().UnixNano())
		if _, err := fl.conn.Write(buf[:n]); err != nil {
			f.stats.Dropped.Add(1)
		}
	}
}

// startFlow opens the flow of src, or returns nil at the flow limit or when
// the dial fails.
func (f *UDPForward) startFlow(ctx context.Context, pc net.PacketConn, src netip.AddrPort, addr net.Addr,
	mu *sync.Mutex, flows map[netip.AddrPort]*udpFlow, maxFlows int, wg *sync.WaitGroup) *udpFlow {
	mu.Lock()
	full := len(flows) >= maxFlows
	mu.Unlock()
	if full {
		f.stats.Rejected.Add(1)
		return nil
	}
	dctx, cancel := context.WithTimeout(ctx, f.Limits.dialTimeout())
	c, err := f.Dialer.DialContext(dctx, "udp", f.Target)
	cancel()
	if err != nil {
		f.stats.Failed.Add(1)
		orLogger(f.Logger).Debug("forward: UDP dial failed", "from", src, "to", f.Target, "err", err)
		return nil
	}
	fl := &udpFlow{conn: c}
	fl.last.Store(time.Now().UnixNano())
	mu.Lock()
	flows[src] = fl
	mu.Unlock()
	f.stats.Accepted.Add(1)
	f.stats.Active.Add(1)

	wg.Add(1)
	go func() {
		defer wg.Done()
		defer f.stats.Active.Add(-1)
		defer func() {
			c.Close()
			mu.Lock()
			if flows[src] == fl {
				delete(flows, src)
			}
			mu.Unlock()
		}()
		buf := make([]byte, maxDatagram)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			fl.last.Store(time.Now().UnixNano())
			if _, err := pc.WriteTo(buf[:n], addr); err != nil {
				f.stats.Dropped.Add(1)
			}
		}
	}()
	return fl
}
