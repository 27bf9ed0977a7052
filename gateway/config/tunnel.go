package config

import (
	"encoding/hex"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/tun"
)

// Limits the file is checked against.
const (
	maxNameLen      = 64    // tunnel names appear in logs and on the control socket
	maxInterfaceLen = 15    // IFNAMSIZ - 1 on Linux
	minMTU4         = 576   // smallest datagram every IPv4 host must accept (RFC 791)
	minMTU6         = 1280  // IPv6 minimum link MTU (RFC 8200 §5)
	maxMTU          = 65535 // largest IP packet
	minSPI          = 256   // 0 to 255 are reserved (RFC 4303 §2.1)
	minReplayWindow = 64
	maxReplayWindow = 65536
)

// tunnelInfo is one tunnel being read, with what the checks across tunnels
// need.
type tunnelInfo struct {
	label    string
	t        *table // the [[tunnel]] table
	in       *table // its sa.in table, or nil
	out      *table // its sa.out table, or nil
	ifaceKey string // "interface", or "name" when the name is the interface name
	routeIdx []int  // index in the routes array of each of cfg.Link.Routes
	cfg      Tunnel // a field whose value was wrong is left zero

	// Whether these keys are absent or valid; the checks that depend on
	// them are skipped otherwise, so one mistake gives one error.
	modeOK, transportOK, greOK bool

	carriesIPv6 bool // an inner address or route is IPv6
}

// ref names the tunnel for a message about another one.
func (ti *tunnelInfo) ref(key string) string {
	if l := ti.t.line(key); l > 0 {
		return fmt.Sprintf("%s (line %d)", ti.label, l)
	}
	return ti.label
}

// tunnel reads the i-th [[tunnel]] table, one group of keys after the
// other; later groups depend on what the earlier ones found valid.
func (p *parser) tunnel(i int, m map[string]any) *tunnelInfo {
	ti := &tunnelInfo{label: fmt.Sprintf("tunnel #%d", i+1)}
	ti.t = p.table(&ti.label, []string{"tunnel", index(i)}, nil, m)
	ti.readNames()
	ti.readEncapsulation()
	ti.readEndpoints()
	ti.readPeerPort()
	ti.readInnerKind()
	ti.readInner()
	p.readNetstack(ti)
	ti.readGRE()
	p.keying(ti) // before the MTUs: IKE may add to the overhead
	ti.checkLinkFollowsIKE()
	ti.readMTUs()
	ti.readPathMTU()
	ti.t.finish()
	return ti
}

// readNames reads name and interface.
func (ti *tunnelInfo) readNames() {
	t, dp := ti.t, &ti.cfg.Dataplane
	if t.require("name", `a short name such as "gre0"`) {
		if s, ok := t.str("name"); ok {
			if err := checkName(s); err != nil {
				t.errorf("name", "%v", err)
			} else {
				dp.Name = s
				ti.label = fmt.Sprintf("tunnel %q", s)
			}
		}
	}
	if s, ok := t.str("interface"); ok {
		if err := checkInterface(s); err != nil {
			t.errorf("interface", "%v", err)
		} else {
			dp.Interface, ti.ifaceKey = s, "interface"
		}
	} else if !t.has("interface") && dp.Name != "" && !ti.isNetstack() {
		if err := checkInterface(dp.Name); err != nil {
			t.errorf("name", "%v; the name is also the interface name unless interface is set", err)
		} else {
			dp.Interface, ti.ifaceKey = dp.Name, "name"
		}
	}
}

// readEncapsulation reads mode and transport.
func (ti *tunnelInfo) readEncapsulation() {
	t, dp := ti.t, &ti.cfg.Dataplane
	ti.modeOK = !t.has("mode")
	if s, ok := t.str("mode"); ok {
		mode, err := dataplane.ParseMode(s)
		if err != nil {
			t.errorf("mode", "%s", trimPkg(err))
		}
		dp.Mode, ti.modeOK = mode, err == nil
	}
	ti.transportOK = !t.has("transport")
	if s, ok := t.str("transport"); ok {
		tr, err := dataplane.ParseTransport(s)
		if err != nil {
			t.errorf("transport", "%s", trimPkg(err))
		}
		dp.Transport, ti.transportOK = tr, err == nil
	}
}

// readEndpoints reads local, peer and udp-port.
func (ti *tunnelInfo) readEndpoints() {
	t, dp := ti.t, &ti.cfg.Dataplane
	local, localOK := outerAddr(t, "local")
	peer, peerOK := outerAddr(t, "peer")
	if localOK && peerOK {
		switch {
		case local.Is4() != peer.Is4():
			t.errorf("peer", "%s is %s but local %s is %s; both ends must be of the same family",
				peer, family(peer), local, family(local))
		case local == peer && !ti.distinctUDPPorts():
			t.errorf("peer", "%s is the same as local", peer)
		default:
			dp.Local, dp.Peer = local, peer
		}
	}

	dp.UDPPort = dataplane.DefaultUDPPort
	if n, ok := t.integer("udp-port", 1, math.MaxUint16, ""); ok {
		if ti.transportOK && dp.Transport != dataplane.TransportUDP {
			t.errorf("udp-port", `only used with transport = "udp"`)
		} else {
			dp.UDPPort = uint16(n)
		}
	}
}

// readInner reads what concerns the inner packets: mss-clamp, addresses
// and routes.
func (ti *tunnelInfo) readInner() {
	t, dp, link := ti.t, &ti.cfg.Dataplane, &ti.cfg.Link
	dp.MSSClamp = true
	if b, ok := t.boolean("mss-clamp"); ok {
		dp.MSSClamp = b
	}
	if b, ok := t.boolean("link-follows-ike"); ok {
		ti.cfg.LinkFollowsIKE = b
	}
	if list, ok := t.strings("addresses"); ok {
		seen := make(map[netip.Addr]int)
		for i, s := range list {
			a, err := parseAddress(s)
			if err != nil {
				t.elemErrorf("addresses", i, "%v", err)
				continue
			}
			if j, dup := seen[a.Prefix.Addr()]; dup {
				t.elemErrorf("addresses", i, "%s is already addresses[%d]", a.Prefix.Addr(), j)
				continue
			}
			seen[a.Prefix.Addr()] = i
			ti.carriesIPv6 = ti.carriesIPv6 || a.Prefix.Addr().Is6()
			link.Addresses = append(link.Addresses, a)
		}
	}
	if list, ok := t.strings("routes"); ok {
		seen := make(map[netip.Prefix]int)
		for i, s := range list {
			r, err := parseRoute(s)
			if err != nil {
				t.elemErrorf("routes", i, "%v", err)
				continue
			}
			if j, dup := seen[r]; dup {
				t.elemErrorf("routes", i, "%s is already routes[%d]", r, j)
				continue
			}
			if peer := dp.Peer; peer.IsValid() && r.Contains(peer) {
				t.elemErrorf("routes", i, "%s contains the peer %s: the tunnel's own ESP and IKE packets would be routed into it (a loop); "+
					"route narrower prefixes, or let a routing daemon (BGP over the tunnel) install the default route", r, peer)
				continue
			}
			seen[r] = i
			ti.carriesIPv6 = ti.carriesIPv6 || r.Addr().Is6()
			link.Routes = append(link.Routes, r)
			ti.routeIdx = append(ti.routeIdx, i)
		}
	}
}

// checkLinkFollowsIKE checks that link-follows-ike has an IKE SA to follow
// and a kernel interface whose carrier it can set.
func (ti *tunnelInfo) checkLinkFollowsIKE() {
	switch {
	case !ti.cfg.LinkFollowsIKE:
	case ti.cfg.Inner == InnerNetstack:
		ti.t.errorf("link-follows-ike", `only with inner = "tun": a netstack has no interface for routing daemons to watch`)
	case ti.cfg.IKE == nil && ti.t.has("sa"):
		ti.t.errorf("link-follows-ike", "only with [tunnel.ike]: manual SAs have no IKE SA to follow")
	}
}

// readGRE reads the optional [tunnel.gre].
func (ti *tunnelInfo) readGRE() {
	t, dp := ti.t, &ti.cfg.Dataplane
	g, ok := t.sub("gre")
	ti.greOK = ok || !t.has("gre")
	if !ok {
		return
	}
	if ti.modeOK && dp.Mode == dataplane.ModeRoute {
		t.errorf("gre", `only used with mode "gre-transport" or "gre-tunnel"; mode "route" sends no GRE header`)
	}
	if n, ok := g.integer("key", 0, math.MaxUint32, ""); ok {
		dp.GRE.Key, dp.GRE.HasKey = uint32(n), true
	} else if g.has("key") {
		ti.greOK = false
	}
	if b, ok := g.boolean("sequence"); ok {
		dp.GRE.Sequence = b
	}
	if b, ok := g.boolean("checksum"); ok {
		dp.GRE.Checksum = b
	}
	ti.cfg.Keepalive = readDuration(g, "keepalive", 0, minKeepalive, maxKeepalive, true)
	if ti.cfg.Keepalive != 0 {
		ti.cfg.KeepaliveRetries = defaultKeepaliveRetries
	}
	if n, ok := g.integer("keepalive-retries", 1, maxKeepaliveRetries, ""); ok {
		if ti.cfg.Keepalive != 0 {
			ti.cfg.KeepaliveRetries = int(n)
		} else if !g.has("keepalive") {
			g.errorf("keepalive-retries", `only with keepalive, e.g. keepalive = "10s"`)
		}
	}
	g.finish()
}

// GRE keepalives ([tunnel.gre] keepalive, keepalive-retries): IOS allows
// 1 to 32767 seconds and 1 to 255 retries, with defaults 10 s and 3.
const (
	minKeepalive            = time.Second
	maxKeepalive            = 32767 * time.Second
	defaultKeepaliveRetries = 3
	maxKeepaliveRetries     = 255
)

// readMTUs reads path-mtu and mtu, and checks them against the overhead
// of the tunnel when everything that goes into it is known.
func (ti *tunnelInfo) readMTUs() {
	t, dp, link := ti.t, &ti.cfg.Dataplane, &ti.cfg.Link
	overheadOK := ti.modeOK && ti.transportOK && dp.Local.IsValid() && ti.greOK

	dp.PathMTU = dataplane.DefaultPathMTU
	pathOK := true
	if t.has("path-mtu") {
		lo, why := int64(minMTU4), " (the smallest IPv4 MTU, RFC 791)"
		if dp.Local.Is6() {
			lo, why = minMTU6, " (the smallest IPv6 MTU, RFC 8200 §5)"
		}
		n, ok := t.integer("path-mtu", lo, maxMTU, why)
		dp.PathMTU, pathOK = int(n), ok
	}
	most := dataplane.OverheadOf(dp).MTU()
	if overheadOK && pathOK {
		switch {
		case most < minMTU4:
			t.errorf("path-mtu", "%d leaves %d bytes for inner packets after the overhead of %s; need at least %d",
				dp.PathMTU, most, encapsulation(dp), minMTU4)
			pathOK = false
		case most < minMTU6 && ti.carriesIPv6 && !t.has("mtu"):
			t.errorf("path-mtu", "%d leaves %d bytes for inner packets after the overhead of %s; the tunnel carries IPv6, which needs %d (RFC 8200 §5)",
				dp.PathMTU, most, encapsulation(dp), minMTU6)
			pathOK = false
		}
	}

	if !t.has("mtu") {
		return
	}
	lo, why := int64(minMTU4), " (the smallest IPv4 MTU, RFC 791)"
	if ti.carriesIPv6 {
		lo, why = minMTU6, " (the tunnel carries IPv6, whose smallest MTU is 1280, RFC 8200 §5)"
	}
	if n, ok := t.integer("mtu", lo, maxMTU, why); ok {
		if overheadOK && pathOK && int(n) > most {
			t.errorf("mtu", "%d does not fit path-mtu %d: %s leaves at most %d; lower mtu, or leave it out to use %d",
				n, dp.PathMTU, encapsulation(dp), most, most)
		} else {
			dp.MTU, link.MTU = int(n), int(n)
		}
	}
}

// encapsulation describes what goes into the overhead of a tunnel, for
// messages about its MTU.
func encapsulation(dp *dataplane.TunnelConfig) string {
	s := fmt.Sprintf("%s over %s", dp.Mode, dp.Transport)
	if dp.TunnelFallback {
		s += " (or tunnel mode, with tunnel-fallback)"
	}
	if dp.NATTraversal && dp.Transport != dataplane.TransportUDP {
		s += " with room for ESP-in-UDP (IKE moves ESP into UDP when it sees a NAT)"
	}
	return s
}

// sas reads [tunnel.sa] with its out and in SAs.
func (p *parser) sas(ti *tunnelInfo) {
	t, dp := ti.t, &ti.cfg.Dataplane
	sa, ok := t.sub("sa")
	if !ok {
		return
	}
	if out, ok := sa.sub("out"); ok {
		dp.Outbound, ti.cfg.OutNew = p.sa(out, false)
		ti.out = out
	} else if !sa.has("out") {
		sa.errorf("out", "missing ([tunnel.sa.out]: the SA for packets sent to the peer)")
	}
	if in, ok := sa.sub("in"); ok {
		dp.Inbound, ti.cfg.InNew = p.sa(in, true)
		ti.in = in
	} else if !sa.has("in") {
		sa.errorf("in", "missing ([tunnel.sa.in]: the SA for packets received from the peer)")
	}
	sa.finish()
}

// encKeyNames are the two spellings of an SA's encryption key: "key" (an
// AEAD's key and salt) and "enc-key" (as ipsecctl's enckey, setkey's -E).
var encKeyNames = []string{"key", "enc-key"}

// sa reads one manually keyed SA, and returns nil after a mistake; isNew
// is its "new" key.
func (p *parser) sa(t *table, inbound bool) (c *esp.Config, isNew bool) {
	c = &esp.Config{}
	nerr := len(p.errs)

	if t.require("spi", "an integer from 0x100 to 0xffffffff, different on each side") {
		n, _ := t.integer("spi", minSPI, math.MaxUint32, " (0 to 255 are reserved, RFC 4303 §2.1)")
		c.SPI = uint32(n)
	}
	algOK := false
	if t.require("algorithm", "aes128gcm16, aes256gcm16, chacha20poly1305, or aes128, aes192, aes256 or null with -sha1, -sha256, -sha384 or -sha512, as in aes256-sha256") {
		if s, ok := t.str("algorithm"); ok {
			tr, err := esp.ParseTransform(s)
			if err != nil {
				t.errorf("algorithm", "%s", trimPkg(err))
			} else {
				c.Algorithm, c.Integrity, algOK = tr.Algorithm, tr.Integrity, true
			}
		}
	}
	encKey := "key"
	if t.has("enc-key") {
		encKey = "enc-key"
		if t.has("key") {
			t.errorf("enc-key", "key is set too; key and enc-key are the same key, set one of them")
		}
	}
	switch {
	case !algOK:
		for _, k := range append(encKeyNames, "auth-key") {
			if s, ok := t.str(k); ok {
				parseKey(t, k, s, 0, "", false)
			}
		}
	case c.Algorithm == esp.NullEncryption:
		t.reject(encKeyNames[0], "NULL encryption has no encryption key; set auth-key")
		t.reject(encKeyNames[1], "NULL encryption has no encryption key; set auth-key")
	default:
		n := c.Algorithm.KeyLen()
		what := fmt.Sprintf("%d bytes: the AES-%d key for %v", n, 8*n, c.Transform())
		if c.Algorithm.IsAEAD() {
			what = fmt.Sprintf("%d bytes: %d-byte key + 4-byte salt for %v", n, n-4, c.Algorithm)
		}
		if t.require(encKey, "hex digits: "+what) {
			if s, ok := t.str(encKey); ok {
				c.Key = parseKey(t, encKey, s, c.Algorithm.KeyLen(), what, true)
			}
		}
	}
	if algOK {
		if c.Integrity == esp.IntegrityNone {
			t.reject("auth-key", "%v is an AEAD: its key authenticates too; set key only", c.Algorithm)
		} else {
			n := c.Integrity.KeyLen()
			what := fmt.Sprintf("%d bytes: the HMAC-%s key for %v", n, strings.ToUpper(c.Integrity.String()), c.Transform())
			if t.require("auth-key", "hex digits: "+what) {
				if s, ok := t.str("auth-key"); ok {
					c.AuthKey = parseKey(t, "auth-key", s, n, what, true)
				}
			}
		}
	}
	if b, ok := t.boolean("esn"); ok {
		c.ESN = b
	}
	if b, ok := t.boolean("new"); ok {
		isNew = b
	}
	if inbound {
		if n, ok := t.integer("replay-window", minReplayWindow, maxReplayWindow, " packets"); ok {
			if n&(n-1) != 0 {
				t.errorf("replay-window", "must be a power of two (64, 128, ..., 65536), got %d", n)
			} else {
				c.ReplayWindow = int(n)
			}
		}
	} else {
		t.reject("replay-window", "only used in sa.in: the window guards against replayed packets received from the peer")
	}
	c.SoftPackets, c.HardPackets = limitPair(t, "soft-packets", "hard-packets", false)
	c.SoftBytes, c.HardBytes = limitPair(t, "soft-bytes", "hard-bytes", true)
	t.finish()

	if len(p.errs) != nerr {
		return nil, false
	}
	if err := c.Validate(); err != nil { // a check this package missed
		p.errs = append(p.errs, &Error{
			File: p.file, Line: t.p.pos.line(t.base), Tunnel: t.label(),
			Key: strings.Join(t.rel, "."), Msg: trimPkg(err),
		})
		return nil, false
	}
	return c, isNew
}

// parseKey decodes the hex key material in key k of an SA, which must be
// n bytes (what says of what) when lenOK. It never puts the key in a
// message.
func parseKey(t *table, k, s string, n int, what string, lenOK bool) []byte {
	digits := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	for i := 0; i < len(digits); i++ {
		if !isHexDigit(digits[i]) {
			t.errorf(k, `must be hex digits ("0x" in front is optional); found %q at digit %d`,
				rune(digits[i]), i+1)
			return nil
		}
	}
	if !lenOK {
		return nil // the length is checked against the algorithm
	}
	if len(digits) != 2*n {
		t.errorf(k, "must be %d hex digits (%s), got %d", 2*n, what, len(digits))
		return nil
	}
	key, err := hex.DecodeString(digits)
	if err != nil { // unreachable after the checks above
		t.errorf(k, "must be hex digits")
		return nil
	}
	return key
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// limitPair reads a soft and a hard lifetime limit (0 or absent: none); the
// soft one must be below the hard one.
func limitPair(t *table, softKey, hardKey string, size bool) (soft, hard uint64) {
	soft, softOK := limit(t, softKey, size)
	hard, hardOK := limit(t, hardKey, size)
	if softOK && hardOK && soft != 0 && hard != 0 && soft >= hard {
		t.errorf(softKey, "%d must be below %s %d", soft, hardKey, hard)
		return 0, 0
	}
	return soft, hard
}

// limit reads a lifetime limit: a non-negative integer or, for byte counts,
// also a string with a K, M, G or T suffix (powers of 1024, as in iked.conf).
func limit(t *table, k string, size bool) (uint64, bool) {
	v, present := t.get(k)
	if !present {
		return 0, true
	}
	if s, ok := v.(string); ok && size {
		n, err := parseSize(s)
		if err != nil {
			t.errorf(k, "%v", err)
			return 0, false
		}
		return n, true
	}
	n, ok := t.integer(k, 0, math.MaxInt64, "")
	return uint64(n), ok
}

// parseSize parses a byte count such as "500M" (K, M, G, T: powers of
// 1024; lower case too).
func parseSize(s string) (uint64, error) {
	num, shift := s, uint(0)
	if s != "" {
		switch s[len(s)-1] {
		case 'K', 'k':
			shift = 10
		case 'M', 'm':
			shift = 20
		case 'G', 'g':
			shift = 30
		case 'T', 't':
			shift = 40
		}
		if shift != 0 {
			num = s[:len(s)-1]
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n > math.MaxUint64>>shift {
		return 0, fmt.Errorf("must be an integer or a size such as \"500M\" (K, M, G, T: powers of 1024), got %q", s)
	}
	return n << shift, nil
}

// outerAddr reads the required outer address at k.
func outerAddr(t *table, k string) (netip.Addr, bool) {
	if !t.require(k, "an IP address, e.g. 192.0.2.1 or 2001:db8::1") {
		return netip.Addr{}, false
	}
	s, ok := t.str(k)
	if !ok {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.errorf(k, "%q is not an IP address (expected e.g. 192.0.2.1 or 2001:db8::1)", s)
		return netip.Addr{}, false
	}
	a = a.Unmap()
	switch {
	case a.Zone() != "":
		t.errorf(k, "%s: addresses with a zone are not supported", a)
	case a.IsUnspecified():
		t.errorf(k, "%s is unspecified; a tunnel needs the real address of each gateway", a)
	case a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		t.errorf(k, "%s is not a unicast address", a)
	default:
		return a, true
	}
	return netip.Addr{}, false
}

// parseAddress parses an inner interface address: "A/len", or "A peer B"
// for a point-to-point address (as `ip addr add A peer B` and OpenBSD's
// "inet A NETMASK B").
func parseAddress(s string) (tun.Address, error) {
	const expected = `expected "A/len" such as "10.255.0.1/30", or "A peer B" such as "10.255.0.1 peer 10.255.0.2"`
	f := strings.Fields(s)
	switch {
	case len(f) == 1 && strings.Contains(s, "/"):
		p, err := netip.ParsePrefix(f[0])
		if err != nil {
			return tun.Address{}, fmt.Errorf("%q is not an address with a prefix length (%s)", s, expected)
		}
		if err := checkInner(p.Addr()); err != nil {
			return tun.Address{}, err
		}
		return tun.Address{Prefix: p}, nil
	case len(f) == 1:
		if _, err := netip.ParseAddr(s); err == nil {
			return tun.Address{}, fmt.Errorf("%q needs a prefix length or a peer (%s)", s, expected)
		}
		return tun.Address{}, fmt.Errorf("%q is not an address (%s)", s, expected)
	case len(f) == 3 && f[1] == "peer":
		a, errA := netip.ParseAddr(f[0])
		b, errB := netip.ParseAddr(f[2])
		switch {
		case strings.Contains(f[0], "/") || strings.Contains(f[2], "/"):
			return tun.Address{}, fmt.Errorf("%q: a point-to-point address takes no prefix length (%s)", s, expected)
		case errA != nil:
			return tun.Address{}, fmt.Errorf("%q: %q is not an IP address", s, f[0])
		case errB != nil:
			return tun.Address{}, fmt.Errorf("%q: peer %q is not an IP address", s, f[2])
		case a.Is4() != b.Is4():
			return tun.Address{}, fmt.Errorf("%q: the address and its peer must be of the same family", s)
		case a == b:
			return tun.Address{}, fmt.Errorf("%q: the peer must differ from the address", s)
		}
		if err := checkInner(a); err != nil {
			return tun.Address{}, err
		}
		if err := checkInner(b); err != nil {
			return tun.Address{}, err
		}
		return tun.Address{Prefix: netip.PrefixFrom(a, a.BitLen()), Peer: b}, nil
	}
	return tun.Address{}, fmt.Errorf("%q is not an address (%s)", s, expected)
}

// checkInner rejects addresses an interface cannot have.
func checkInner(a netip.Addr) error {
	switch {
	case a.Zone() != "":
		return fmt.Errorf("%s: addresses with a zone are not supported", a)
	case a.Is4In6():
		return fmt.Errorf("%s: write IPv4 addresses as IPv4", a)
	case a.IsUnspecified() || a.IsMulticast():
		return fmt.Errorf("%s is not a unicast address", a)
	}
	return nil
}

// parseRoute parses a prefix routed into the tunnel.
func parseRoute(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		if a, err := netip.ParseAddr(s); err == nil {
			return netip.Prefix{}, fmt.Errorf("%q needs a prefix length, e.g. \"%s/%d\"", s, a, a.BitLen())
		}
		return netip.Prefix{}, fmt.Errorf("%q is not a prefix (expected e.g. \"10.2.0.0/24\" or \"fd00:2::/64\")", s)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q: write IPv4 prefixes as IPv4", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q has bits set past the prefix length; the prefix is %s", s, m)
	}
	return p, nil
}

// checkName checks a tunnel name.
func checkName(s string) error {
	if s == "" || len(s) > maxNameLen {
		return fmt.Errorf("must be 1 to %d characters, got %d", maxNameLen, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%q: use only letters, digits, '-', '_' and '.'", s)
		}
	}
	return nil
}

// checkInterface checks a Linux interface name.
func checkInterface(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("must not be empty")
	case len(s) > maxInterfaceLen:
		return fmt.Errorf("%q is longer than %d characters, the limit for interface names", s, maxInterfaceLen)
	case s == "." || s == "..":
		return fmt.Errorf("%q is not a valid interface name", s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '/' || c == ':' {
			return fmt.Errorf("%q: an interface name may not contain spaces, '/', ':' or control characters", s)
		}
	}
	return nil
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// trimPkg removes the "pkg: " prefix of an error from another package,
// which would only repeat what the message's position already says.
func trimPkg(err error) string {
	s := err.Error()
	for _, pkg := range []string{"esp: ", "dataplane: ", "ikev2: "} {
		s = strings.TrimPrefix(s, pkg)
	}
	return s
}

// crossCheck reports what is wrong only between tunnels.
func (p *parser) crossCheck(infos []*tunnelInfo) {
	p.checkKeyReuse(infos)
	p.checkHostListeners(infos)
	type pair struct {
		local, peer netip.Addr
		transport   dataplane.Transport
	}
	names := make(map[string]*tunnelInfo)
	ifaces := make(map[string]*tunnelInfo)
	spis := make(map[uint32]*tunnelInfo)
	pairs := make(map[pair]*tunnelInfo)
	ikePairs := make(map[[2]netip.Addr]*tunnelInfo)
	routes := make(map[netip.Prefix]*tunnelInfo)
	for _, ti := range infos {
		dp := &ti.cfg.Dataplane
		dupName := false
		if dp.Name != "" {
			if first, dup := names[dp.Name]; dup {
				where := first.label
				if l := first.t.line("name"); l > 0 {
					where = fmt.Sprintf("the tunnel at line %d", l)
				}
				ti.t.errorf("name", "%q is already the name of %s", dp.Name, where)
				dupName = true
			} else {
				names[dp.Name] = ti
			}
		}
		// An interface named after a duplicate name is the same mistake.
		if dp.Interface != "" && !(dupName && ti.ifaceKey == "name") {
			if first, dup := ifaces[dp.Interface]; dup {
				ti.t.errorf(ti.ifaceKey, "%q is already the interface of %s; each tunnel needs its own interface",
					dp.Interface, first.ref(first.ifaceKey))
			} else {
				ifaces[dp.Interface] = ti
			}
		}
		if dp.Inbound != nil {
			if first, dup := spis[dp.Inbound.SPI]; dup {
				ti.in.errorf("spi", "%#x is already the inbound SPI of %s; inbound SPIs must be unique, as they pick the SA of each received packet",
					dp.Inbound.SPI, first.ref("name"))
			} else {
				spis[dp.Inbound.SPI] = ti
			}
		}
		if dp.Local.IsValid() {
			k := pair{dp.Local, dp.Peer, dp.Transport}
			if first, dup := pairs[k]; dup {
				ti.t.errorf("peer", "%s already runs between %s and %s over %s; only one tunnel may use each pair of addresses and transport",
					first.ref("peer"), dp.Local, dp.Peer, dp.Transport)
			} else {
				pairs[k] = ti
				if ti.cfg.IKE != nil {
					// IKE tells its peers apart by their addresses only.
					ik := [2]netip.Addr{dp.Local, dp.Peer}
					if first, dup := ikePairs[ik]; dup {
						ti.t.errorf("peer", "%s already runs IKE between %s and %s; only one tunnel with [tunnel.ike] may use each pair of addresses",
							first.ref("peer"), dp.Local, dp.Peer)
					} else {
						ikePairs[ik] = ti
					}
				}
			}
		}
		for i, r := range ti.cfg.Link.Routes {
			if first, dup := routes[r]; dup {
				ti.t.elemErrorf("routes", ti.routeIdx[i], "%s is already routed into %s", r, first.ref("routes"))
			} else {
				routes[r] = ti
			}
		}
	}
}

// checkKeyReuse reports a key used by two manual SAs: in two tunnels, or
// in both directions of one (esp.CheckKeyReuse).
func (p *parser) checkKeyReuse(infos []*tunnelInfo) {
	type use struct {
		ti  *tunnelInfo
		t   *table
		dir string
	}
	var uses []esp.KeyUse
	var where []use
	for _, ti := range infos {
		dp := &ti.cfg.Dataplane
		for _, u := range []struct {
			c   *esp.Config
			t   *table
			dir string
		}{{dp.Outbound, ti.out, "sa.out"}, {dp.Inbound, ti.in, "sa.in"}} {
			if u.c == nil {
				continue
			}
			uses = append(uses, esp.KeyUse{Name: fmt.Sprintf("%s %s", ti.label, u.dir), Config: u.c})
			where = append(where, use{ti, u.t, u.dir})
		}
	}
	// Report the later use of each reused key, against the earlier one.
	for j := range uses {
		for i := range j {
			if err := esp.CheckKeyReuse([]esp.KeyUse{uses[i], uses[j]}); err != nil {
				w := where[j]
				key := "key"
				if w.t.has("enc-key") {
					key = "enc-key"
				}
				if uses[j].Config.Algorithm == esp.NullEncryption {
					key = "auth-key"
				}
				other := fmt.Sprintf("%s %s", where[i].ti.label, where[i].dir)
				if l := where[i].t.line("spi"); l > 0 {
					other += fmt.Sprintf(" (line %d)", l)
				}
				msg := fmt.Sprintf("is the same as a key of %s; every SA needs its own keys: the same key in two SAs repeats nonces and lets packets of one be accepted by the other", other)
				if where[i].ti == w.ti {
					msg = fmt.Sprintf("is the same as %s.key; each direction needs its own key, or packets sent to the peer could be reflected back and accepted", where[i].dir)
				}
				w.t.errorf(key, "%s", msg)
				if w.dir == "sa.in" {
					w.ti.cfg.Dataplane.Inbound = nil
				} else {
					w.ti.cfg.Dataplane.Outbound = nil
				}
				break
			}
		}
	}
}
