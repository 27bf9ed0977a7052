package dataplane

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/greipsec/greipsec/dataplane/link"
	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/tun"
)

// Queue depths, in batches. What they hold is bounded by each tunnel's
// outbound queue (queueOutboundSize) and the inbound packets in flight
// (inboundBudget); these only need to be deep enough not to make the
// readers wait for the workers. A tunnel's inbound queue that is full
// drops the group that does not fit.
const (
	queueEncryptionSize = 1024
	queueDecryptionSize = 1024
	queueInboundSize    = 1024
	maxBatchSize        = conn.IdealBatchSize
)

// BindFunc opens the outer socket for a transport. Device calls it once per
// distinct (transport, local address, port) and shares the Bind between the
// tunnels that use it.
type BindFunc func(t Transport, local netip.Addr, port uint16) (conn.Bind, error)

// DefaultBind opens raw ESP sockets (link.NewRawESP) for TransportESP and
// wireguard-go's batched UDP sockets (conn.NewStdNetBind, with UDP GSO/GRO)
// for TransportUDP.
func DefaultBind(t Transport, local netip.Addr, port uint16) (conn.Bind, error) {
	switch t {
	case TransportESP:
		return link.NewRawESP(local), nil
	case TransportUDP:
		return conn.NewStdNetBind(), nil
	}
	return nil, fmt.Errorf("dataplane: unknown transport %v", t)
}

// Options configures a Device.
type Options struct {
	Logger  *slog.Logger // nil: slog.Default()
	Workers int          // encryption and decryption workers each; 0: GOMAXPROCS
	Bind    BindFunc     // nil: DefaultBind
	// IKE, when set, receives the IKE messages that arrive behind the
	// non-ESP marker on an ESP-in-UDP socket (RFC 3948 §2.2), marker removed.
	// It must not retain pkt.
	IKE func(pkt []byte, from netip.AddrPort)
	// PathMTU returns the kernel's path MTU towards peer (the port is
	// the UDP port for ESP-in-UDP, else 0). nil: KernelPathMTU. An error
	// leaves the tunnels' path MTU as it is.
	PathMTU func(peer netip.AddrPort) (int, error)
	// PathMTUInterval is how often PathMTU is asked for each peer; 0:
	// DefaultPathMTUInterval.
	PathMTUInterval time.Duration
}

// A Device is the dataplane of one gateway: its tunnels, the outer sockets
// they share, the inbound SA table, and the worker goroutines that encrypt
// and decrypt for all tunnels. It is safe for concurrent use.
type Device struct {
	log  *slog.Logger
	opts Options
	pool pools

	queue struct {
		encryption chan *outboundContainer
		decryption chan *inboundContainer
	}

	// inbound maps an inbound SPI to its SA and tunnel. Readers load it
	// without locking; writers copy it under inboundMu.
	inbound   atomic.Pointer[map[uint32]*inboundSA]
	inboundMu sync.Mutex
	// inboundGate is read-locked by a socket receiver from its SPI lookups
	// until it has queued the batch; RemoveTunnel write-locks it to know
	// that no receiver still holds the removed tunnel (remove.go).
	inboundGate sync.RWMutex

	mu      sync.Mutex // guards binds, tunnels, closed
	binds   map[bindKey]*bindState
	tunnels []*Tunnel
	closed  bool

	readers sync.WaitGroup // TUN readers and socket receivers
	workers sync.WaitGroup // crypto workers and per-tunnel sequential stages

	stats       DeviceStats
	receiveErrs *errorLog

	pmtu       pathMTUWatcher
	kernelPMTU *kernelPathMTU // when opts.PathMTU was nil
	pmtuAll    bool           // opts.PathMTU was given: ask it for every bind's peers
}

// inboundSA is one entry of the inbound SA table: the SA, its tunnel, and
// the policy its inner packets must be within (nil: none). Immutable.
type inboundSA struct {
	sa     *esp.SA
	tunnel *Tunnel
	policy *policy
}

type bindKey struct {
	transport Transport
	local     netip.Addr // raw ESP: the bound address; UDP: invalid (wildcard)
	port      uint16
}

type bindState struct {
	bind conn.Bind
	udp  bool
	// pmtu: the kernel's path MTU applies to the Bind's packets (it is a
	// kernel socket, or Options.PathMTU was given).
	pmtu bool
	// landing is the size of the buffers the receivers read datagrams
	// into. UDP: MaxMessageSize, for UDP GRO and IKE messages of any
	// size. Raw ESP: the largest ESP packet a tunnel on the socket expects,
	// at least smallBufferSize (so a peer whose MTU is somewhat larger than
	// ours still gets through); larger datagrams are truncated and dropped.
	landing atomic.Int64
}

// DeviceStats counts what a Device drops before a packet reaches a tunnel.
type DeviceStats struct {
	UnknownSPI  atomic.Uint64 // ESP for an SPI with no inbound SA
	Malformed   atomic.Uint64 // shorter than an ESP header, or an invalid UDP payload
	Keepalives  atomic.Uint64 // NAT keepalives received (RFC 3948 §2.3)
	IKE         atomic.Uint64 // IKE messages received on ESP-in-UDP sockets
	ReceiveErrs atomic.Uint64 // socket receive errors
	NoBuffer    atomic.Uint64 // ESP dropped because no buffer was free (large datagrams beyond the staging pool)
	ICMPTooBig  atomic.Uint64 // ICMP "too big" errors read for a tunnel's outbound SA (raw ESP error queue)
	ICMPIgnored atomic.Uint64 // other ICMP errors read, or "too big" that matched no tunnel's peer and SPI
}

// LogValue returns every counter, for logging (slog.LogValuer).
func (s *DeviceStats) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Uint64("unknown_spi", s.UnknownSPI.Load()), slog.Uint64("malformed", s.Malformed.Load()),
		slog.Uint64("keepalives", s.Keepalives.Load()), slog.Uint64("ike", s.IKE.Load()),
		slog.Uint64("receive_errors", s.ReceiveErrs.Load()), slog.Uint64("no_buffer", s.NoBuffer.Load()),
		slog.Uint64("icmp_too_big", s.ICMPTooBig.Load()), slog.Uint64("icmp_ignored", s.ICMPIgnored.Load()),
	)
}

// NewDevice starts a Device with no tunnels.
func NewDevice(opts Options) *Device {
	d := &Device{opts: opts, log: opts.Logger, binds: make(map[bindKey]*bindState)}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.opts.Bind == nil {
		d.opts.Bind = DefaultBind
	}
	d.pmtuAll = d.opts.PathMTU != nil
	if d.opts.PathMTU == nil {
		d.kernelPMTU = new(kernelPathMTU)
		d.opts.PathMTU = d.kernelPMTU.query
	}
	d.pmtu = pathMTUWatcher{kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go d.routinePathMTU()
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	d.pool.init(workers)
	d.receiveErrs = newErrorLog(d.log, slog.LevelWarn, "socket receive error")
	empty := make(map[uint32]*inboundSA)
	d.inbound.Store(&empty)
	d.queue.encryption = make(chan *outboundContainer, queueEncryptionSize)
	d.queue.decryption = make(chan *inboundContainer, queueDecryptionSize)
	for range workers {
		d.workers.Add(2)
		go d.RoutineEncryption()
		go d.RoutineDecryption()
	}
	return d
}

// Stats returns the device-wide drop counters.
func (d *Device) Stats() *DeviceStats { return &d.stats }

// Tunnels returns the tunnels added so far.
func (d *Device) Tunnels() []*Tunnel {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*Tunnel(nil), d.tunnels...)
}

// AddTunnel starts a tunnel on the inner device dev. The Device owns dev from
// then on and closes it in Close. Manual SAs in cfg are installed at once.
func (d *Device) AddTunnel(cfg TunnelConfig, dev tun.Device) (*Tunnel, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	mtu, err := ResolveMTU(&cfg)
	if err != nil {
		return nil, err
	}
	if cfg.UDPPort == 0 {
		cfg.UDPPort = DefaultUDPPort
	}
	if cfg.PeerUDPPort == 0 {
		cfg.PeerUDPPort = cfg.UDPPort
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errors.New("dataplane: device closed")
	}
	for _, o := range d.tunnels {
		if o.cfg.Name == cfg.Name {
			return nil, fmt.Errorf("dataplane: tunnel %q already exists", cfg.Name)
		}
	}
	bs, err := d.bindLocked(&cfg, cfg.Transport)
	if err != nil {
		return nil, err
	}
	if cfg.NATTraversal && cfg.Transport != TransportUDP {
		if _, err := d.bindLocked(&cfg, TransportUDP); err != nil {
			return nil, err
		}
	}
	t, err := newTunnel(d, cfg, mtu, dev, bs)
	if err != nil {
		return nil, err
	}
	if cfg.Outbound != nil {
		sa, err := esp.NewSA(*cfg.Outbound)
		if err != nil {
			return nil, fmt.Errorf("dataplane: tunnel %q: outbound SA: %w", cfg.Name, err)
		}
		if err := t.SetOutboundSA(sa, nil); err != nil {
			return nil, err
		}
	}
	if cfg.Inbound != nil {
		sa, err := esp.NewSA(*cfg.Inbound)
		if err != nil {
			return nil, fmt.Errorf("dataplane: tunnel %q: inbound SA: %w", cfg.Name, err)
		}
		if err := t.AddInboundSA(sa, nil); err != nil {
			return nil, err
		}
	}
	d.pool.addTunnel(t)
	d.tunnels = append(d.tunnels, t)
	t.start()
	return t, nil
}

func (d *Device) bindKeyFor(transport Transport, local netip.Addr, port uint16) bindKey {
	if transport == TransportUDP {
		return bindKey{transport: transport, port: port} // one wildcard socket per port
	}
	return bindKey{transport: transport, local: local}
}

// bindLocked returns the shared outer socket for a tunnel, opening it on
// first use.
func (d *Device) bindLocked(cfg *TunnelConfig, transport Transport) (*bindState, error) {
	key := d.bindKeyFor(transport, cfg.Local, cfg.UDPPort)
	landing := int64(MaxMessageSize)
	if transport == TransportESP {
		landing = int64(max(smallBufferSize, OverheadOf(cfg).MaxESPLen))
	}
	if bs, ok := d.binds[key]; ok {
		// The outer DF bit is the socket's: one after-encryption
		// tunnel turns it off for all tunnels sharing the socket.
		if s, ok := bs.bind.(link.DontFragmentSetter); ok && cfg.Fragmentation == FragmentAfterEncryption {
			if err := s.SetDontFragment(false); err != nil {
				return nil, fmt.Errorf("dataplane: tunnel %q: %s socket on %s: %w", cfg.Name, transport, cfg.Local, err)
			}
		}
		if bs.landing.Load() < landing {
			bs.landing.Store(landing) // the receivers grow their buffers
		}
		return bs, nil
	}
	b, err := d.opts.Bind(transport, cfg.Local, cfg.UDPPort)
	if err != nil {
		return nil, fmt.Errorf("dataplane: tunnel %q: %w", cfg.Name, err)
	}
	fns, _, err := b.Open(key.port)
	if err != nil {
		return nil, fmt.Errorf("dataplane: tunnel %q: open %s socket on %s: %w", cfg.Name, transport, cfg.Local, err)
	}
	if r, ok := b.(link.ICMPErrorReporter); ok {
		r.SetICMPErrorHandler(d.onICMPError)
	}
	if s, ok := b.(link.DontFragmentSetter); ok && cfg.Fragmentation == FragmentAfterEncryption {
		if err := s.SetDontFragment(false); err != nil {
			b.Close()
			return nil, fmt.Errorf("dataplane: tunnel %q: %s socket on %s: %w", cfg.Name, transport, cfg.Local, err)
		}
	}
	bs := &bindState{bind: b, udp: transport == TransportUDP, pmtu: d.pmtuAll}
	switch b.(type) {
	case *conn.StdNetBind, link.ICMPErrorReporter:
		bs.pmtu = true // a kernel socket: the kernel knows its path
	}
	bs.landing.Store(landing)
	d.binds[key] = bs
	for _, fn := range fns {
		d.readers.Add(1)
		go d.RoutineReceiveIncoming(bs, fn)
	}
	return bs, nil
}

// SendUDP sends datagrams from the ESP-in-UDP socket on port to dst: IKE
// messages behind the non-ESP marker and NAT keepalives share the socket
// with ESP (RFC 3948). The socket is open when a tunnel uses it.
func (d *Device) SendUDP(port uint16, dst netip.AddrPort, pkts [][]byte) error {
	d.mu.Lock()
	bs, ok := d.binds[d.bindKeyFor(TransportUDP, netip.Addr{}, port)]
	d.mu.Unlock()
	if !ok {
		return fmt.Errorf("dataplane: no UDP socket on port %d", port)
	}
	ep, err := bs.bind.ParseEndpoint(dst.String())
	if err != nil {
		return err
	}
	return bs.bind.Send(pkts, ep)
}

// lookupInbound finds the SA for an inbound SPI without locking.
func (d *Device) lookupInbound(spi uint32) (*inboundSA, bool) {
	in, ok := (*d.inbound.Load())[spi]
	return in, ok
}

// Close stops every tunnel, closes the inner devices and the sockets, and
// waits for the goroutines to finish.
func (d *Device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	tunnels := d.tunnels
	binds := d.binds
	d.mu.Unlock()

	var errs []error
	for _, t := range tunnels {
		t.closing.Store(true)
		errs = append(errs, t.tun.Close())
	}
	for _, bs := range binds {
		errs = append(errs, bs.bind.Close())
	}
	d.pool.close() // a TUN reader waiting for a buffer stops
	d.readers.Wait()
	// The readers are done: nothing more enters the queues.
	close(d.queue.encryption)
	close(d.queue.decryption)
	for _, t := range tunnels {
		close(t.queue.inbound)
	}
	d.workers.Wait()
	close(d.pmtu.stop)
	<-d.pmtu.done
	d.kernelPMTU.close()
	d.receiveErrs.stop()
	for _, t := range tunnels {
		t.stopLogs()
	}
	return errors.Join(errs...)
}
