package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/ikev2"
)

// ikePort is the IKE port (RFC 7296 §2); NAT traversal moves IKE to the
// ESP-in-UDP port, 4500 (RFC 3948), which the dataplane's socket shares.
const ikePort = 500

// The ikeRunner is the thin, I/O-owning shell around the sans-I/O IKE
// sessions (one per tunnel, each owned by its goroutine: session.go): it
// owns the UDP port 500 sockets, gets the IKE messages that arrive on port
// 4500 from the dataplane, hands each message to the session of the peer it
// came from, and sends what the sessions emit from the socket and port they
// name. Peers come and go while it runs (Gateway.Reload).
type ikeRunner struct {
	log    *slog.Logger
	listen ListenFunc
	device *dataplane.Device

	// peers maps a peer address to its session. Receivers load it without
	// locking; addPeer and removePeer copy it under mu.
	peers atomic.Pointer[map[netip.Addr]*ikePeer]
	mu    sync.Mutex                // guards socks and the writers of peers
	socks map[netip.Addr]*ikeSocket // port 500 sockets by local address
	wg    sync.WaitGroup            // socket readers

	stats RunnerStats
	// unknown and sendErrs summarise what may repeat at packet rate: one
	// log line per summaryInterval at most (logsum.go).
	unknown  summary
	sendErrs summary
}

// ikeSocket is a port 500 socket and the number of peers that use it.
type ikeSocket struct {
	conn PacketConn
	refs int
}

// RunnerStats counts what the IKE runner drops or fails to send.
type RunnerStats struct {
	UnknownPeer atomic.Uint64 // IKE messages from an address that is no tunnel's peer
	QueueFull   atomic.Uint64 // IKE messages dropped because their session was behind
	SendErrors  atomic.Uint64 // IKE datagrams the socket refused
}

// ikeMessage is one received IKE message, copied.
type ikeMessage struct {
	data        []byte
	local, peer netip.AddrPort
}

func newIKERunner(log *slog.Logger, listen ListenFunc) *ikeRunner {
	r := &ikeRunner{log: log, listen: listen, socks: make(map[netip.Addr]*ikeSocket)}
	empty := make(map[netip.Addr]*ikePeer)
	r.peers.Store(&empty)
	r.unknown = summary{msg: "dropped IKE messages from addresses that are no tunnel's peer"}
	r.sendErrs = summary{msg: "sending IKE messages failed"}
	return r
}

// addPeer adds the IKE session s of tunnel t and starts it: it opens the
// port 500 socket of cfg.LocalAddr if no peer uses it yet, unless IKE
// starts on the ESP-in-UDP port (cfg.StartNATT). link, if not nil, is
// called on the session's goroutine each time the tunnel gains or loses its
// IKE SA (link-follows-ike).
func (r *ikeRunner) addPeer(cfg *ikev2.Config, s *ikev2.Session, t *dataplane.Tunnel, link func(up bool)) (*ikePeer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := *r.peers.Load()
	if other, dup := cur[cfg.PeerAddr]; dup {
		return nil, fmt.Errorf("a second IKE tunnel to peer %s (tunnel %q has it)", cfg.PeerAddr, other.cfg.Name)
	}
	sock, ok := r.socks[cfg.LocalAddr]
	if !ok && !cfg.StartNATT {
		local := netip.AddrPortFrom(cfg.LocalAddr, ikePort)
		c, err := r.listen(local)
		if err != nil {
			return nil, fmt.Errorf("IKE: listen on %s: %w", local, err)
		}
		sock = &ikeSocket{conn: c}
		r.socks[cfg.LocalAddr] = sock
		r.wg.Add(1)
		go r.routineReceive500(local, c)
	}
	if !cfg.StartNATT {
		sock.refs++ // with StartNATT, no port 500: IKE is on the ESP-in-UDP socket
	}
	p := newIKEPeer(r, cfg, s, t)
	p.link = link
	next := maps.Clone(cur)
	next[cfg.PeerAddr] = p
	r.peers.Store(&next)
	go p.routineSession()
	return p, nil
}

// removePeer deletes p's IKE SA (the DELETE goes out while the sockets are
// open), stops its session and closes the port 500 socket it was the last
// to use.
func (r *ikeRunner) removePeer(p *ikePeer) {
	p.shutdown(time.Now().Add(peerStopTimeout))
	r.mu.Lock()
	defer r.mu.Unlock()
	next := maps.Clone(*r.peers.Load())
	if next[p.cfg.PeerAddr] == p {
		delete(next, p.cfg.PeerAddr)
	}
	r.peers.Store(&next)
	if sock, ok := r.socks[p.cfg.LocalAddr]; ok && !p.cfg.StartNATT {
		if sock.refs--; sock.refs <= 0 {
			sock.conn.Close()
			delete(r.socks, p.cfg.LocalAddr)
		}
	}
}

// peerStopTimeout bounds how long a session may take to send its DELETE
// and stop.
const peerStopTimeout = 3 * time.Second

// close deletes every IKE SA (best effort, all at once), stops the
// sessions and closes the sockets. Call it before closing the dataplane,
// whose socket carries IKE on port 4500.
func (r *ikeRunner) close() {
	deadline := time.Now().Add(peerStopTimeout)
	peers := *r.peers.Load()
	for _, p := range peers {
		p.stopOnce.Do(func() { close(p.stop) })
	}
	for _, p := range peers {
		p.shutdown(deadline)
	}
	r.mu.Lock()
	for _, s := range r.socks {
		s.conn.Close()
	}
	r.socks = make(map[netip.Addr]*ikeSocket)
	empty := make(map[netip.Addr]*ikePeer)
	r.peers.Store(&empty)
	r.mu.Unlock()
	r.wg.Wait()
}

// receive4500 is the dataplane's hook for IKE messages on the ESP-in-UDP
// socket, non-ESP marker removed. pkt is only valid during the call.
func (r *ikeRunner) receive4500(pkt []byte, from netip.AddrPort) {
	r.dispatch(pkt, netip.AddrPort{}, from)
}

func (r *ikeRunner) routineReceive500(local netip.AddrPort, c PacketConn) {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	errs := 0
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A socket that keeps failing must not spin a core.
			errs++
			time.Sleep(time.Duration(min(errs, 100)) * 10 * time.Millisecond)
			continue
		}
		errs = 0
		r.dispatch(buf[:n], local, from)
	}
}

// dispatch hands a copy of an IKE message to the session of its peer:
// local is where it arrived, invalid for the dataplane's port 4500 socket.
// A message from any other address is counted and dropped: such messages
// are logged only as a summary, whatever the log level, since anyone can
// send them at any rate.
func (r *ikeRunner) dispatch(pkt []byte, local, from netip.AddrPort) {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	p, ok := (*r.peers.Load())[from.Addr()]
	if !ok {
		r.stats.UnknownPeer.Add(1)
		r.unknown.add(from, nil)
		return
	}
	if !local.IsValid() {
		port := p.cfg.NATTPort
		if port == 0 {
			port = dataplane.DefaultUDPPort
		}
		local = netip.AddrPortFrom(p.cfg.LocalAddr, port)
	}
	m := ikeMessage{data: append([]byte(nil), pkt...), local: local, peer: from}
	select {
	case p.in <- m:
	default: // the session is behind: drop, the sender retransmits
		r.stats.QueueFull.Add(1)
	}
}

// send sends a datagram of a session from the socket and port it names
// (RFC 7296 §2.11: a response goes back from the address and port the
// request came to, to the address and port it came from): port 500 from
// the port 500 socket, whatever the peer's port (a NAT may have rewritten
// it); any other port from the dataplane's ESP-in-UDP socket, behind the
// non-ESP marker (RFC 3948 §2.2).
func (r *ikeRunner) send(d ikev2.Datagram) error {
	if d.Local.Port() == ikePort {
		r.mu.Lock()
		sock, ok := r.socks[d.Local.Addr()]
		r.mu.Unlock()
		if !ok {
			return fmt.Errorf("no IKE socket on %s", d.Local)
		}
		_, err := sock.conn.WriteToUDPAddrPort(d.Data, d.Peer)
		return err
	}
	msg := make([]byte, esp.NonESPMarkerLen+len(d.Data))
	copy(msg[esp.NonESPMarkerLen:], d.Data)
	return r.device.SendUDP(d.Local.Port(), d.Peer, [][]byte{msg})
}

// sendFailed counts and summarises a datagram that could not be sent.
func (r *ikeRunner) sendFailed(d ikev2.Datagram, err error) {
	r.stats.SendErrors.Add(1)
	r.sendErrs.add(d.Peer, err)
}

// routineSummaries logs the runner's summaries every summaryInterval until
// stop is closed.
func (r *ikeRunner) routineSummaries(stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	t := time.NewTicker(summaryInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.unknown.flush(r.log, slog.LevelWarn)
			r.sendErrs.flush(r.log, slog.LevelWarn)
		case <-stop:
			r.unknown.flush(r.log, slog.LevelWarn)
			r.sendErrs.flush(r.log, slog.LevelWarn)
			return
		}
	}
}
