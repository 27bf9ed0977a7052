package dataplane

import (
	"fmt"
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/greipsec/greipsec/dataplane/link"
)

/* Path MTU: what fits the real outer path, and what stage 1 does with a
 * packet that does not (RFC 4459; IOS "tunnel path-mtu-discovery").
 *
 * Learning. Outer packets leave with DF set (the raw ESP socket, IPv4 in
 * IP_PMTUDISC_PROBE mode, IPv6 in WANT, link.DontFragmentSetter;
 * wireguard-go's UDP socket in the kernel's default, WANT), so a router whose
 * next hop is too small drops them and answers "fragmentation needed" or
 * "packet too big" (RFC 1191, RFC 8201). The kernel keeps the MTU it
 * learns per destination for net.ipv4.route.mtu_expires and
 * net.ipv6.route.mtu_expires (600 s, the 10 minutes of IOS), then forgets
 * it, and the next large packet probes the path again. The Device reads
 * that value for each tunnel's peer (Options.PathMTU; on Linux IP_MTU of a
 * UDP socket connected to the peer, pathmtu_linux.go) once per
 * Options.PathMTUInterval, and at once when a raw ESP socket reads an ICMP
 * error for one of its tunnels' SAs from its error queue
 * (link.ICMPErrorReporter: the quoted packet's destination must be the
 * tunnel's peer and its SPI the tunnel's outbound SPI). A learned value is
 * kept within [552 (IPv4) or 1280 (IPv6), the configured path-mtu]: the
 * configured value bounds everything when ICMP is filtered (black hole).
 *
 * Acting. Each TUN batch loads the tunnel's pathLimits once; a packet no
 * larger than pathLimits.mtu goes on as before (one comparison). A larger
 * one (oversize):
 *   - IPv6 up to 1280 bytes (RFC 8200 §5 promises that much) is sent whole
 *     and the kernel fragments the outer packet (OuterFragmented): with
 *     IPv6 outer addresses and ESP-in-UDP; not over an IPv4 raw ESP
 *     socket, which never fragments (PROBE), so there such packets are
 *     lost on a path below about 1360 bytes;
 *   - IPv6 beyond, and IPv4 with DF, is dropped and answered with ICMP
 *     (icmp.go) carrying the inner MTU (PathMTUDrops, ICMPSent);
 *   - IPv4 without DF is fragmented before encryption (RFC 4459 §3, IOS's
 *     default), each fragment its own ESP packet (FragmentedBefore), or,
 *     with Fragmentation = FragmentAfterEncryption, sent whole for the
 *     kernel to fragment (the socket's DF is then off).
 * The MSS clamp (both directions) follows pathLimits.
 */

// Fragmentation is what happens to an IPv4 packet without DF that is too
// large for the path.
type Fragmentation uint8

const (
	// FragmentBeforeEncryption splits the inner packet into IPv4
	// fragments that each fit one ESP packet (RFC 4459 §3; IOS's default
	// "crypto ipsec fragmentation before-encryption"): the peer's
	// receiver reassembles, outer packets stay whole.
	FragmentBeforeEncryption Fragmentation = iota
	// FragmentAfterEncryption sends the packet whole and lets the kernel
	// fragment the outer ESP packet; the raw ESP socket then sends
	// without DF ("crypto ipsec fragmentation after-encryption").
	FragmentAfterEncryption
)

var fragmentationNames = [...]string{
	FragmentBeforeEncryption: "before-encryption",
	FragmentAfterEncryption:  "after-encryption",
}

func (f Fragmentation) String() string {
	if int(f) < len(fragmentationNames) {
		return fragmentationNames[f]
	}
	return fmt.Sprintf("Fragmentation(%d)", f)
}

// ParseFragmentation parses the config spelling of a Fragmentation.
func ParseFragmentation(s string) (Fragmentation, error) {
	for f, name := range fragmentationNames {
		if s == name {
			return Fragmentation(f), nil
		}
	}
	return 0, fmt.Errorf("unknown fragmentation %q (expected before-encryption or after-encryption)", s)
}

// The smallest path MTUs a learned value may take: what the kernel
// accepts by default for IPv4 (net.ipv4.route.min_pmtu), the IPv6 minimum
// (RFC 8200 §5).
const (
	minPathMTU4 = 552
	minPathMTU6 = 1280
)

// DefaultPathMTUInterval is how often the Device reads the kernel's path
// MTU for each peer when Options.PathMTUInterval is 0.
const DefaultPathMTUInterval = time.Second

// pathLimits is what a tunnel can carry whole over the outer path it
// knows. Immutable; the Tunnel swaps it.
type pathLimits struct {
	pathMTU    int // the outer path MTU: learned, or the configured one
	mtu        int // the largest inner packet whose ESP packet fits pathMTU (at most the tunnel's MTU)
	mss4, mss6 uint16
}

// newLimits derives the limits for an outer path MTU.
func (t *Tunnel) newLimits(pathMTU int) *pathLimits {
	o := t.overhead
	o.PathMTU = pathMTU
	o.MaxESPLen = pathMTU - o.OuterIP - o.UDP
	mtu := min(t.mtu, o.MTU())
	return &pathLimits{
		pathMTU: pathMTU,
		mtu:     mtu,
		mss4:    uint16(max(mtu-ipv4HeaderLen-tcpHeaderLen, 0)),
		mss6:    uint16(max(mtu-ipv6HeaderLen-tcpHeaderLen, 0)),
	}
}

// PathMTU is a tunnel's view of its outer path.
type PathMTU struct {
	Configured int       // the configured path-mtu (the most it will use)
	Current    int       // the path MTU in effect: learned, or Configured
	InnerMTU   int       // the largest inner packet sent whole at Current
	MSS4, MSS6 int       // the MSS clamp at Current
	LearnedAt  time.Time // when Current went below Configured; zero if it is not
	Discovery  bool      // path MTU discovery is on
}

// PathMTU returns what the tunnel knows of its outer path.
func (t *Tunnel) PathMTU() PathMTU {
	lim := t.limits.Load()
	p := PathMTU{
		Configured: t.overhead.PathMTU,
		Current:    lim.pathMTU,
		InnerMTU:   lim.mtu,
		MSS4:       int(lim.mss4),
		MSS6:       int(lim.mss6),
		Discovery:  !t.cfg.NoPathMTUDiscovery,
	}
	if ns := t.pmtuLearned.Load(); ns != 0 {
		p.LearnedAt = time.Unix(0, ns)
	}
	return p
}

// setPathMTU takes a path MTU the kernel reports for the peer, bounded to
// [minimum, configured], and reports whether it changed the limits. Only
// the Device's path MTU goroutine calls it.
func (t *Tunnel) setPathMTU(v int, now time.Time) bool {
	floor := minPathMTU4
	if t.overhead.OuterIP == ipv6HeaderLen {
		floor = minPathMTU6
	}
	v = min(max(v, floor), t.overhead.PathMTU)
	if v == t.limits.Load().pathMTU {
		return false
	}
	t.limits.Store(t.newLimits(v))
	if v < t.overhead.PathMTU {
		t.pmtuLearned.Store(now.UnixNano())
	} else {
		t.pmtuLearned.Store(0)
	}
	t.stats.PathMTUChanges.Add(1)
	return true
}

// What stage 1b decided for an oversize packet.
type oversizeAction uint8

const (
	oversizeSend       oversizeAction = iota // send it whole (the outer packet is fragmented)
	oversizeDrop                             // dropped (and answered with ICMP)
	oversizeFragmented                       // its fragments are in the container, e is used
)

// oversize is stage 1b for a packet of size bytes in e that is larger
// than lim.mtu.
func (t *Tunnel) oversize(c *outboundContainer, lim *pathLimits, e *outboundElement, size int) oversizeAction {
	pkt := e.buffer[outboundOffset : outboundOffset+size]
	switch header.IPVersion(pkt) {
	case header.IPv4Version:
		if size < header.IPv4MinimumSize {
			return oversizeSend // prepareOutbound drops it
		}
		if header.IPv4(pkt).Flags()&header.IPv4FlagDontFragment == 0 {
			if t.cfg.Fragmentation == FragmentAfterEncryption {
				t.stats.OuterFragmented.Add(1)
				return oversizeSend
			}
			if t.fragment(c, lim, e, size) {
				return oversizeFragmented
			}
			return oversizeDrop
		}
		t.tooBig(pkt, lim.mtu, fragNeeded)
		return oversizeDrop
	case header.IPv6Version:
		if size < header.IPv6MinimumSize {
			return oversizeSend
		}
		if size <= minIPv6MTU {
			t.stats.OuterFragmented.Add(1)
			return oversizeSend
		}
		t.tooBig(pkt, max(lim.mtu, minIPv6MTU), packetTooBig)
		return oversizeDrop
	}
	return oversizeSend // not IP: prepareOutbound drops it
}

// tooBig drops pkt and, within the rate limit, answers it with the ICMP
// error build writes, written into the inner device.
func (t *Tunnel) tooBig(pkt []byte, mtu int, build func(b, pkt []byte, mtu int) int) {
	t.stats.PathMTUDrops.Add(1)
	if !t.icmp.bucket.take(time.Now()) {
		t.stats.ICMPRateLimited.Add(1)
		return
	}
	n := build(t.icmp.buf[inboundTUNOffset:], pkt, mtu)
	if n == 0 {
		return
	}
	t.icmp.bufs[0] = t.icmp.buf[:inboundTUNOffset+n]
	if _, err := t.tun.Write(t.icmp.bufs[:], inboundTUNOffset); err != nil {
		t.stats.WriteErrors.Add(1)
		if !t.closing.Load() {
			t.writeErrs.add(err)
		}
		return
	}
	t.stats.ICMPSent.Add(1)
}

// fragment splits the IPv4 packet of size bytes in e into fragments of at
// most lim.mtu bytes (RFC 791 §3.2, "An Example Fragmentation Procedure"):
// the first stays in e, the others are copied into new elements, and each
// is encapsulated and appended to c. Options whose copied flag is set go
// into every fragment, the others only into the first. It returns false
// if the packet is dropped.
func (t *Tunnel) fragment(c *outboundContainer, lim *pathLimits, e *outboundElement, size int) bool {
	pkt := e.buffer[outboundOffset : outboundOffset+size]
	ip := header.IPv4(pkt)
	if !ip.IsValid(size) || int(ip.TotalLength()) != size {
		t.stats.BadInner.Add(1)
		return false
	}
	mode := c.path.mode
	if !t.admitOutbound(c.out, mode, lim, pkt) {
		return false
	}
	hlen := int(ip.HeaderLength())
	// The other fragments' header: the fixed part and the copied options.
	var rest [header.IPv4MaximumHeaderSize]byte
	rlen := copy(rest[:], pkt[:header.IPv4MinimumSize])
	for opts := pkt[header.IPv4MinimumSize:hlen]; len(opts) > 0; {
		kind := opts[0]
		if kind == 0 { // end of option list
			break
		}
		l := 1
		if kind != 1 { // not no-operation: type, length, data
			if len(opts) < 2 || int(opts[1]) < 2 || int(opts[1]) > len(opts) {
				break
			}
			l = int(opts[1])
		}
		if kind&0x80 != 0 {
			rlen += copy(rest[rlen:], opts[:l])
		}
		opts = opts[l:]
	}
	for rlen%4 != 0 {
		rest[rlen] = 0
		rlen++
	}
	rest[0] = 4<<4 | byte(rlen/4)

	// Each fragment's data is a multiple of 8 bytes, but the last.
	first := (lim.mtu - hlen) &^ 7
	each := (lim.mtu - rlen) &^ 7
	if first < 8 || each < 8 {
		t.stats.PathMTUDrops.Add(1)
		return false
	}
	origOff := int(ip.FragmentOffset()) // a fragment may be fragmented again
	moreAfter := ip.Flags()&header.IPv4FlagMoreFragments != 0
	// The data stays where it is until stage 2 seals the first fragment
	// (its trailer then overwrites what follows): copy the others first.
	data := pkt[hlen:]
	ip.SetTotalLength(uint16(hlen + first))
	ip.SetFlagsFragmentOffset(header.IPv4FlagMoreFragments, uint16(origOff))
	ip.SetChecksum(0)
	ip.SetChecksum(^ip.CalculateChecksum())
	if !t.encapsulate(c.out, mode, e, hlen+first) {
		return false
	}
	c.elems = append(c.elems, e)
	for off := first; off < len(data); off += each {
		n := min(each, len(data)-off)
		f := t.newOutboundElement()
		if f == nil {
			break // the Device is closing
		}
		b := f.buffer[outboundOffset:]
		copy(b, rest[:rlen])
		copy(b[rlen:], data[off:off+n])
		fh := header.IPv4(b[:rlen+n])
		flags := uint8(0)
		if off+n < len(data) || moreAfter {
			flags = header.IPv4FlagMoreFragments
		}
		fh.SetTotalLength(uint16(rlen + n))
		fh.SetFlagsFragmentOffset(flags, uint16(origOff+off))
		fh.SetChecksum(0)
		fh.SetChecksum(^fh.CalculateChecksum())
		if !t.encapsulate(c.out, mode, f, rlen+n) {
			t.device.putOutboundElement(f)
			continue
		}
		c.elems = append(c.elems, f)
	}
	t.stats.FragmentedBefore.Add(1)
	return true
}

// pathMTUWatcher is the Device's goroutine that reads the kernel's path
// MTU for the tunnels' peers.
type pathMTUWatcher struct {
	kick chan struct{} // a raw ESP socket read a "too big" for a tunnel
	stop chan struct{}
	done chan struct{}
}

// routinePathMTU reads the path MTU of every tunnel's peer once per
// interval and when kicked, until the Device closes.
func (d *Device) routinePathMTU() {
	defer close(d.pmtu.done)
	interval := d.opts.PathMTUInterval
	if interval <= 0 {
		interval = DefaultPathMTUInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var last time.Time
	for {
		select {
		case <-d.pmtu.stop:
			return
		case <-tick.C:
		case <-d.pmtu.kick:
			// A flood of ICMP errors (or failing sends) costs at most
			// one round of questions per minKickInterval.
			if wait := minKickInterval - time.Since(last); wait > 0 {
				select {
				case <-d.pmtu.stop:
					return
				case <-time.After(wait):
				}
			}
		}
		d.updatePathMTUs()
		last = time.Now()
	}
}

// minKickInterval is the least time between two rounds of path MTU
// questions that kicks start.
const minKickInterval = 50 * time.Millisecond

// updatePathMTUs asks Options.PathMTU once per peer and updates the
// tunnels. A peer the kernel cannot answer for keeps what it had.
func (d *Device) updatePathMTUs() {
	now := time.Now()
	seen := make(map[netip.AddrPort]int)
	for _, t := range d.Tunnels() {
		if t.cfg.NoPathMTUDiscovery {
			continue
		}
		p := t.path.Load()
		if !p.bind.pmtu {
			continue
		}
		peer := netip.AddrPortFrom(p.peer, 0)
		if p.transport == TransportUDP {
			peer = netip.AddrPortFrom(p.peer, p.endpointPort())
		}
		v, ok := seen[peer]
		if !ok {
			var err error
			if v, err = d.opts.PathMTU(peer); err != nil {
				v = 0
			}
			seen[peer] = v
		}
		if v > 0 {
			t.setPathMTU(v, now)
		}
	}
}

// endpointPort is the UDP port of the path's endpoint.
func (p *outerPath) endpointPort() uint16 {
	if ap, err := netip.ParseAddrPort(p.endpoint.DstToString()); err == nil {
		return ap.Port()
	}
	return 0
}

// onICMPError is the raw ESP sockets' handler of ICMP errors
// (link.ICMPErrorReporter). An error is believed only when it is "too
// big" for a packet to a tunnel's peer over raw ESP that carried the
// tunnel's outbound SPI; then the path MTUs are read again at once.
func (d *Device) onICMPError(e *link.ICMPError) {
	if !e.TooBig() || !e.HasSPI {
		d.stats.ICMPIgnored.Add(1)
		return
	}
	for _, t := range d.Tunnels() {
		p := t.path.Load()
		sa := t.outbound.Load()
		if p.transport != TransportESP || p.peer != e.Dst || sa == nil || sa.sa.SPI() != e.SPI || t.cfg.NoPathMTUDiscovery {
			continue
		}
		d.stats.ICMPTooBig.Add(1)
		d.kickPathMTU()
		return
	}
	d.stats.ICMPIgnored.Add(1)
}

// kickPathMTU makes the path MTU goroutine read the kernel's path MTUs
// now; it never blocks.
func (d *Device) kickPathMTU() {
	select {
	case d.pmtu.kick <- struct{}{}:
	default:
	}
}

// icmpState is what a tunnel's TUN reader needs to answer packets with
// ICMP errors; only that goroutine touches it.
type icmpState struct {
	bucket tokenBucket
	buf    []byte
	bufs   [1][]byte
}
