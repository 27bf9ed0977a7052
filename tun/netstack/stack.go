package netstack

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"

	wgconn "golang.zx2c4.com/wireguard/conn"
	wgtun "golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/greipsec/greipsec/tun"
)

// Defaults for Config.
const (
	// DefaultBatchSize is the most packets Read returns at once: a full
	// batch of the dataplane's outer sockets.
	DefaultBatchSize = wgconn.IdealBatchSize
	// DefaultQueueLen is how many outbound packets wait for Read before
	// the stack's further packets are dropped.
	DefaultQueueLen = 1024
	// DefaultName is what Name reports when Config.Name is empty.
	DefaultName = "netstack"
)

// MTU limits: IPv4 hosts must accept 576-byte datagrams (RFC 791 §3.1,
// RFC 1122 §3.3.3), IPv6 links carry at least 1280 (RFC 8200 §5).
const (
	minMTU4 = 576
	minMTU6 = 1280
	maxMTU  = 1<<16 - 1
)

// nicID is the stack's one network interface.
const nicID tcpip.NICID = 1

// Config describes a Stack.
type Config struct {
	// Name is what the Stack reports as its device name; empty means
	// DefaultName.
	Name string
	// MTU is the largest packet the stack sends, and so the tunnel's inner
	// MTU: TCP's MSS follows from it. At least 576, and at least 1280
	// when there is an IPv6 address.
	MTU int
	// Addresses are the stack's own addresses. Each prefix, and a peer's
	// prefix, is routed into the tunnel, as on a TUN device.
	Addresses []tun.Address
	// Routes are further prefixes routed into the tunnel: the far site's
	// networks. Like a TUN device's routes, and unlike a host's default
	// route, nothing else is reachable: 0.0.0.0/0 and ::/0 route everything.
	Routes []netip.Prefix
	// DNS are the name servers, on the far site, that LookupNetIP and the
	// dialers ask; port 53 unless given. Without any, only IP addresses
	// can be dialed.
	DNS []netip.AddrPort
	// BatchSize is the most packets Read returns at once; 0 means
	// DefaultBatchSize.
	BatchSize int
	// QueueLen is how many outbound packets wait for Read; 0 means
	// DefaultQueueLen.
	QueueLen int
}

// Stats counts the packets a Stack drops at its edge. The stack's own
// counters (TCP retransmissions, ICMP, malformed IP) are in Stack.TCPIPStats.
type Stats struct {
	// QueueDrops are outbound packets dropped because Read did not keep up.
	QueueDrops atomic.Uint64
	// TooBig are outbound packets larger than the buffer Read was given.
	TooBig atomic.Uint64
	// BadInbound are packets written to the Stack that are neither IPv4
	// nor IPv6.
	BadInbound atomic.Uint64
}

// A Stack is a user-space TCP/IP stack (gVisor's) that sits where a TUN
// device would: it is a tun.Device, whose Read returns the packets the stack
// sends into the tunnel and whose Write takes the packets that come out of
// it. It answers ICMP echo requests to its addresses.
//
// Programs reach the far site through its Net-like methods: DialContext,
// Listen, ListenPacket and LookupNetIP.
//
// A Stack is safe for concurrent use. Close it once: that stops the stack,
// aborts its connections and makes Read and Write return os.ErrClosed.
type Stack struct {
	name      string
	mtu       int
	batchSize int
	addrs     []netip.Addr
	has4      bool
	has6      bool

	stack  *stack.Stack
	link   *linkEndpoint
	dns    resolver
	events chan wgtun.Event
	stats  Stats

	closeOnce sync.Once
}

var _ tun.Device = (*Stack)(nil)

// New checks cfg and starts a Stack with it.
func New(cfg Config) (*Stack, error) {
	routes, err := checkConfig(&cfg)
	if err != nil {
		return nil, err
	}
	s := &Stack{
		name:      cfg.Name,
		mtu:       cfg.MTU,
		batchSize: cfg.BatchSize,
		events:    make(chan wgtun.Event, 1),
	}
	if s.name == "" {
		s.name = DefaultName
	}
	if s.batchSize == 0 {
		s.batchSize = DefaultBatchSize
	}
	queueLen := cfg.QueueLen
	if queueLen == 0 {
		queueLen = DefaultQueueLen
	}

	s.stack = stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
		HandleLocal:        true,
	})
	fail := func(what string, terr tcpip.Error) (*Stack, error) {
		s.stack.Close()
		s.stack.Wait()
		return nil, fmt.Errorf("netstack: %s: %s", what, terr)
	}
	for _, opt := range []tcpip.SettableTransportProtocolOption{
		// Selective acknowledgements (RFC 2018) recover from the drops of
		// a full queue without resending a whole window.
		ptr(tcpip.TCPSACKEnabled(true)),
		// Grow the receive window with the measured bandwidth-delay
		// product, as Linux does, rather than fixing it at the default.
		ptr(tcpip.TCPModerateReceiveBufferOption(true)),
	} {
		if terr := s.stack.SetTransportProtocolOption(tcp.ProtocolNumber, opt); terr != nil {
			return fail("set TCP option", terr)
		}
	}

	s.link = newLinkEndpoint(uint32(cfg.MTU), queueLen, &s.stats)
	if terr := s.stack.CreateNICWithOptions(nicID, s.link, stack.NICOptions{Name: s.name}); terr != nil {
		return fail("create NIC", terr)
	}
	for _, a := range cfg.Addresses {
		addr := a.Prefix.Addr()
		pa := tcpip.ProtocolAddress{
			Protocol: protocolOf(addr),
			AddressWithPrefix: tcpip.AddressWithPrefix{
				Address:   tcpipAddr(addr),
				PrefixLen: a.Prefix.Bits(),
			},
		}
		if terr := s.stack.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); terr != nil {
			return fail("add address "+a.String(), terr)
		}
		s.addrs = append(s.addrs, addr)
		s.has4 = s.has4 || addr.Is4()
		s.has6 = s.has6 || addr.Is6()
	}
	table := make([]tcpip.Route, 0, len(routes))
	for _, p := range routes {
		subnet, err := tcpip.NewSubnet(tcpipAddr(p.Addr()), tcpip.MaskFromBytes(netmask(p)))
		if err != nil {
			return fail("route "+p.String(), &tcpip.ErrBadAddress{})
		}
		table = append(table, tcpip.Route{Destination: subnet, NIC: nicID})
	}
	s.stack.SetRouteTable(table)

	s.dns = resolver{stack: s, servers: cfg.DNS}
	s.events <- wgtun.EventUp
	return s, nil
}

// checkConfig checks cfg, fills in DNS ports, and returns the routing table:
// the prefixes of the addresses and their peers, then Routes, each masked
// and listed once.
func checkConfig(cfg *Config) ([]netip.Prefix, error) {
	if cfg.BatchSize < 0 || cfg.QueueLen < 0 {
		return nil, fmt.Errorf("netstack: negative batch size %d or queue length %d", cfg.BatchSize, cfg.QueueLen)
	}
	if len(cfg.Addresses) == 0 {
		return nil, errors.New("netstack: no addresses (expected at least one IPv4 or IPv6 address with its prefix length)")
	}
	minMTU := minMTU4
	var routes []netip.Prefix
	add := func(p netip.Prefix) {
		p = p.Masked()
		for _, r := range routes {
			if r == p {
				return
			}
		}
		routes = append(routes, p)
	}
	for i, a := range cfg.Addresses {
		addr := a.Prefix.Addr()
		switch {
		case !a.Prefix.IsValid():
			return nil, fmt.Errorf("netstack: address %d is not a valid prefix", i)
		case addr.Is4In6():
			return nil, fmt.Errorf("netstack: address %s is IPv4-mapped IPv6; write it as IPv4", a)
		case addr.Zone() != "":
			return nil, fmt.Errorf("netstack: address %s has a zone", a)
		case !addr.IsGlobalUnicast() && !addr.IsLinkLocalUnicast():
			return nil, fmt.Errorf("netstack: address %s is not a unicast address", a)
		case a.Peer.IsValid() && (a.Peer.Is4() != addr.Is4() || a.Peer.Is4In6() || a.Peer.Zone() != ""):
			return nil, fmt.Errorf("netstack: address %s: peer is not an address of the same family", a)
		}
		for _, b := range cfg.Addresses[:i] {
			if b.Prefix.Addr() == addr {
				return nil, fmt.Errorf("netstack: address %s is given twice", addr)
			}
		}
		if addr.Is6() {
			minMTU = minMTU6
		}
		add(a.Prefix)
		if a.Peer.IsValid() {
			add(netip.PrefixFrom(a.Peer, a.Prefix.Bits()))
		}
	}
	for i, p := range cfg.Routes {
		if !p.IsValid() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			return nil, fmt.Errorf("netstack: route %d (%s) is not a valid IPv4 or IPv6 prefix", i, p)
		}
		add(p)
	}
	if cfg.MTU < minMTU || cfg.MTU > maxMTU {
		return nil, fmt.Errorf("netstack: MTU %d is out of range (expected %d to %d)", cfg.MTU, minMTU, maxMTU)
	}
	cfg.DNS = append([]netip.AddrPort(nil), cfg.DNS...)
	for i, d := range cfg.DNS {
		if !d.Addr().IsValid() || d.Addr().Is4In6() || d.Addr().IsUnspecified() {
			return nil, fmt.Errorf("netstack: DNS server %d (%s) is not a valid address", i, d)
		}
		if d.Port() == 0 {
			cfg.DNS[i] = netip.AddrPortFrom(d.Addr(), 53)
		}
	}
	return routes, nil
}

func ptr[T any](v T) *T { return &v }

// netmask returns p's mask as bytes of p's address length.
func netmask(p netip.Prefix) []byte {
	m := make([]byte, p.Addr().BitLen()/8)
	for i := range p.Bits() {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

// Name returns the name given in Config, or DefaultName.
func (s *Stack) Name() (string, error) { return s.name, nil }

// File returns nil: there is no file behind a Stack.
func (s *Stack) File() *os.File { return nil }

// MTU returns the MTU given in Config.
func (s *Stack) MTU() (int, error) { return s.mtu, nil }

// BatchSize returns the most packets Read returns at once.
func (s *Stack) BatchSize() int { return s.batchSize }

// Events returns a channel that carries EventUp once and is closed by Close.
func (s *Stack) Events() <-chan wgtun.Event { return s.events }

// Read blocks until the stack has sent at least one packet, then places up
// to min(len(bufs), BatchSize()) packets at bufs[i][offset:], their lengths
// in sizes[i], and returns how many. No packet is longer than the MTU. After
// Close it returns os.ErrClosed.
func (s *Stack) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	limit := min(len(bufs), len(sizes), s.batchSize)
	if limit == 0 {
		return 0, nil
	}
	return s.link.read(bufs, sizes, offset, limit)
}

// Write hands each bufs[i][offset:], an IPv4 or IPv6 packet from the tunnel,
// to the stack, which copies it. Packets of another version are dropped and
// counted in Stats; malformed IP packets are dropped and counted by the
// stack. It returns len(bufs), or os.ErrClosed after Close.
func (s *Stack) Write(bufs [][]byte, offset int) (int, error) {
	return s.link.deliver(bufs, offset)
}

// Close stops the stack: its connections are aborted, blocked and later
// Reads and Writes return os.ErrClosed, and the Events channel is closed.
// It is idempotent and returns nil.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() {
		s.link.close()
		s.stack.Close()
		s.stack.Wait()
		close(s.events)
	})
	return nil
}

// Stats returns the counters of packets dropped at the Stack's edge.
func (s *Stack) Stats() *Stats { return &s.stats }

// TCPIPStats returns the stack's own counters (gVisor's tcpip.Stats).
func (s *Stack) TCPIPStats() tcpip.Stats { return s.stack.Stats() }

// Addresses returns the stack's own addresses, in the order of Config.
func (s *Stack) Addresses() []netip.Addr { return append([]netip.Addr(nil), s.addrs...) }

func protocolOf(a netip.Addr) tcpip.NetworkProtocolNumber {
	if a.Is4() {
		return ipv4.ProtocolNumber
	}
	return ipv6.ProtocolNumber
}

func tcpipAddr(a netip.Addr) tcpip.Address {
	if a.Is4() {
		return tcpip.AddrFrom4(a.As4())
	}
	return tcpip.AddrFrom16(a.As16())
}
