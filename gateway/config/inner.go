package config

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/greipsec/greipsec/proxy"
)

// The inner side of a tunnel: a kernel TUN device (inner = "tun", the
// default), or a user-space TCP/IP stack in the process (inner =
// "netstack"), which needs no privilege and which local programs reach
// through a SOCKS5 proxy, an HTTP proxy and port forwards:
//
//	[[tunnel]]
//	inner     = "netstack"
//	addresses = ["10.1.0.2/32"]        # the stack's own, on the tunnel
//	routes    = ["10.2.0.0/24"]        # the far site
//	dns       = ["10.2.0.53"]          # the far site's resolvers
//
//	[tunnel.socks5]
//	listen = "127.0.0.1:1080"          # on this host; loopback unless users are set
//	users  = { alice = "..." }         # or users-file; RFC 1929
//	resolve = "far"                    # or "local", or "none"
//
//	[tunnel.http-proxy]
//	listen = "127.0.0.1:8080"
//
//	[[tunnel.forward]]
//	proto     = "tcp"                  # or "udp"
//	direction = "local-to-far"         # listen on this host, connect on the far site
//	listen    = "127.0.0.1:2222"
//	target    = "10.2.0.10:22"
//
//	[[tunnel.forward]]
//	proto     = "tcp"
//	direction = "far-to-local"         # listen on the tunnel address, connect on this host
//	listen    = ":8080"
//	target    = "127.0.0.1:80"
//
// The keys mirror wireproxy's [Socks5], [http] and [TCPClientTunnel] /
// [TCPServerTunnel] sections, in this file's style.

// Inner is what a tunnel's inner packets meet on this host.
type Inner uint8

const (
	// InnerTUN is a kernel TUN device, named by interface; it needs
	// CAP_NET_ADMIN and /dev/net/tun.
	InnerTUN Inner = iota
	// InnerNetstack is a user-space TCP/IP stack (package tun/netstack)
	// that needs no privilege; programs reach the far site through its
	// proxies and forwards, or through the gateway's Go API.
	InnerNetstack
)

var innerNames = [...]string{InnerTUN: "tun", InnerNetstack: "netstack"}

func (i Inner) String() string {
	if int(i) < len(innerNames) {
		return innerNames[i]
	}
	return fmt.Sprintf("Inner(%d)", i)
}

// Netstack is what a tunnel with inner = "netstack" offers local programs.
type Netstack struct {
	// DNS are the far site's name servers, which the stack asks for the
	// names that programs dial through it; port 53 unless given.
	DNS []netip.AddrPort
	// SOCKS5 and HTTP are the proxies; nil when not configured.
	SOCKS5 *Proxy
	HTTP   *Proxy
	// Forwards are the port forwards, in the order of the file.
	Forwards []Forward
}

// Resolve says where a proxy resolves the host names its clients send.
type Resolve uint8

const (
	// ResolveFar asks the far site's DNS servers (dns), through the tunnel.
	ResolveFar Resolve = iota
	// ResolveLocal asks this host's resolver.
	ResolveLocal
	// ResolveNone refuses host names: clients must send addresses.
	ResolveNone
)

var resolveNames = [...]string{ResolveFar: "far", ResolveLocal: "local", ResolveNone: "none"}

func (r Resolve) String() string {
	if int(r) < len(resolveNames) {
		return resolveNames[r]
	}
	return fmt.Sprintf("Resolve(%d)", r)
}

// Proxy is a [tunnel.socks5] or [tunnel.http-proxy] table.
type Proxy struct {
	// Listen is the host:port the proxy listens on, on this host.
	Listen string
	// Users maps user names to passwords (SOCKS5: RFC 1929; HTTP: Basic);
	// empty means no authentication. Passwords never appear in messages.
	Users map[string]string
	// Resolve says where host names are resolved.
	Resolve Resolve
	// Unauthenticated: the file allows the proxy to listen beyond the
	// loopback interface without users (unauthenticated = true).
	Unauthenticated bool
	// Limits bound the proxy's connections (max-connections,
	// idle-timeout); zero fields mean package proxy's defaults.
	Limits proxy.Limits
}

// Direction is which way a forward goes.
type Direction uint8

const (
	// LocalToFar listens on this host and connects on the far site.
	LocalToFar Direction = iota
	// FarToLocal listens on the tunnel's address, in the stack, and
	// connects on this host: a local service reachable from the far site.
	FarToLocal
)

var directionNames = [...]string{LocalToFar: "local-to-far", FarToLocal: "far-to-local"}

func (d Direction) String() string {
	if int(d) < len(directionNames) {
		return directionNames[d]
	}
	return fmt.Sprintf("Direction(%d)", d)
}

// Forward is one [[tunnel.forward]].
type Forward struct {
	Proto     string // "tcp" or "udp"
	Direction Direction
	// Listen is host:port: on this host for LocalToFar; on the stack for
	// FarToLocal, where the host is empty (every address of the tunnel)
	// or one of the tunnel's addresses.
	Listen string
	// Target is host:port: on the far site for LocalToFar (a name is
	// resolved by dns), on this host for FarToLocal.
	Target string
	Limits proxy.Limits
}

// Limits of the netstack keys.
const (
	maxUsersFile    = 1 << 20 // a users-file is a list of names, not a database
	maxUserLen      = 255     // RFC 1929 §2: ULEN and PLEN are one octet
	maxForwards     = 256
	maxDNSServers   = 8
	maxConnsLimit   = 1 << 16
	minProxyIdle    = time.Second
	defaultDNSPort  = 53
	loopbackAdvice  = "listen on 127.0.0.1 or [::1]"
	listenFormatTip = `host:port, e.g. "127.0.0.1:1080" or "[::1]:1080"`
)

// isNetstack reports whether the file sets inner = "netstack", before
// readInnerKind has read it: a netstack tunnel's name is no interface name.
func (ti *tunnelInfo) isNetstack() bool { return ti.t.m["inner"] == "netstack" }

// readInnerKind reads inner.
func (ti *tunnelInfo) readInnerKind() {
	t := ti.t
	s, ok := t.str("inner")
	if !ok {
		return
	}
	switch s {
	case "tun":
		ti.cfg.Inner = InnerTUN
	case "netstack":
		ti.cfg.Inner = InnerNetstack
	default:
		t.errorf("inner", `unknown inner side %q (expected "tun", a kernel TUN device, or "netstack", a user-space TCP/IP stack that needs no privilege)`, s)
	}
}

// netstackKeys are the keys of a tunnel that only inner = "netstack" takes.
var netstackKeys = []string{"dns", "socks5", "http-proxy", "forward"}

// readNetstack reads what a netstack tunnel offers: dns, [tunnel.socks5],
// [tunnel.http-proxy] and [[tunnel.forward]]. A TUN tunnel may set none
// of them.
func (p *parser) readNetstack(ti *tunnelInfo) {
	t := ti.t
	if v, ok := t.m["inner"]; ok && v != "tun" && v != "netstack" {
		// inner is wrong (and reported): whether these keys belong is
		// unknown, so they are neither read nor reported.
		for _, k := range append(netstackKeys, "interface") {
			t.get(k)
		}
		return
	}
	if ti.cfg.Inner != InnerNetstack {
		for _, k := range netstackKeys {
			t.reject(k, `only used with inner = "netstack"; a TUN device routes local programs into the tunnel by itself`)
		}
		return
	}
	t.reject("interface", `only used with inner = "tun": a netstack tunnel has no interface on this host`)
	ti.cfg.Dataplane.Interface, ti.ifaceKey = "", ""
	ns := &Netstack{}
	ti.cfg.Netstack = ns
	if !t.has("addresses") {
		t.errorf("addresses", `missing: a netstack tunnel needs its own address on the tunnel, e.g. addresses = ["10.1.0.2/32"]`)
	} else if len(ti.cfg.Link.Addresses) == 0 && !p.errsFor(t, "addresses") {
		t.errorf("addresses", `must not be empty: a netstack tunnel needs its own address on the tunnel`)
	}
	ns.DNS = ti.readDNS()
	if k, ok := t.sub("socks5"); ok {
		ns.SOCKS5 = ti.readProxy(k, true)
	}
	if k, ok := t.sub("http-proxy"); ok {
		ns.HTTP = ti.readProxy(k, false)
	}
	ns.Forwards = ti.readForwards()
	ti.checkListens(ns)
}

// errsFor reports whether a mistake in key k of t was reported already.
func (p *parser) errsFor(t *table, k string) bool {
	path := t.path(k)
	for _, e := range p.errs {
		if e.Tunnel == t.label() && (e.Key == path || strings.HasPrefix(e.Key, path+"[")) {
			return true
		}
	}
	return false
}

// readDNS reads dns: the far site's name servers, which must be routed
// into the tunnel.
func (ti *tunnelInfo) readDNS() []netip.AddrPort {
	t := ti.t
	list, ok := t.strings("dns")
	if !ok {
		return nil
	}
	if len(list) > maxDNSServers {
		t.errorf("dns", "has %d servers; at most %d are asked", len(list), maxDNSServers)
		return nil
	}
	var out []netip.AddrPort
	for i, s := range list {
		ap, err := parseDNSServer(s)
		if err != nil {
			t.elemErrorf("dns", i, "%v", err)
			continue
		}
		if !ti.routed(ap.Addr()) {
			t.elemErrorf("dns", i, "%s is not routed into the tunnel (addresses and routes cover %s); add a route that covers it",
				ap.Addr(), ti.routedList())
			continue
		}
		if slices.Contains(out, ap) {
			t.elemErrorf("dns", i, "%s is given twice", ap)
			continue
		}
		out = append(out, ap)
	}
	return out
}

// parseDNSServer parses "10.2.0.53", "10.2.0.53:5353", "fd00:2::53" or
// "[fd00:2::53]:5353".
func parseDNSServer(s string) (netip.AddrPort, error) {
	const expected = `expected an IP address such as "10.2.0.53", optionally with a port: "10.2.0.53:5353", "[fd00:2::53]:5353"`
	if a, err := netip.ParseAddr(s); err == nil {
		if err := checkInner(a); err != nil {
			return netip.AddrPort{}, err
		}
		return netip.AddrPortFrom(a, defaultDNSPort), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not a name server address (%s)", s, expected)
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("%q: port 0 (%s)", s, expected)
	}
	if err := checkInner(ap.Addr()); err != nil {
		return netip.AddrPort{}, err
	}
	return ap, nil
}

// routed reports whether a is inside the tunnel's addresses (their
// prefixes and peers) or routes: where the stack sends packets.
func (ti *tunnelInfo) routed(a netip.Addr) bool {
	for _, p := range ti.routedPrefixes() {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (ti *tunnelInfo) routedPrefixes() []netip.Prefix {
	var list []netip.Prefix
	for _, a := range ti.cfg.Link.Addresses {
		list = append(list, a.Prefix.Masked())
		if a.Peer.IsValid() {
			list = append(list, netip.PrefixFrom(a.Peer, a.Peer.BitLen()))
		}
	}
	return append(list, ti.cfg.Link.Routes...)
}

func (ti *tunnelInfo) routedList() string {
	list := ti.routedPrefixes()
	if len(list) == 0 {
		return "nothing"
	}
	return prefixList(list)
}

// proxyKinds name the two proxies in messages.
func proxyKind(socks bool) string {
	if socks {
		return "a SOCKS5 proxy"
	}
	return "an HTTP proxy"
}

// readProxy reads [tunnel.socks5] or [tunnel.http-proxy].
func (ti *tunnelInfo) readProxy(k *table, socks bool) *Proxy {
	nerr := len(k.p.errs)
	px := &Proxy{}
	if k.require("listen", listenFormatTip+" on this host") {
		if s, ok := k.str("listen"); ok {
			if err := checkListen(s, false); err != "" {
				k.errorf("listen", "%q: %s (expected %s)", s, err, listenFormatTip)
			} else {
				px.Listen = s
			}
		}
	}
	px.Users = ti.readUsers(k)
	if b, ok := k.boolean("unauthenticated"); ok {
		px.Unauthenticated = b
	}
	hasDNS := len(ti.cfg.Netstack.DNS) > 0 || ti.t.has("dns")
	px.Resolve = ResolveNone
	if hasDNS {
		px.Resolve = ResolveFar
	}
	if s, ok := k.str("resolve"); ok {
		switch s {
		case "far":
			if !hasDNS {
				k.errorf("resolve", `"far" needs the far site's name servers: set dns = ["..."] in the tunnel, or resolve = "local"`)
			}
			px.Resolve = ResolveFar
		case "local":
			px.Resolve = ResolveLocal
		case "none":
			px.Resolve = ResolveNone
		default:
			k.errorf("resolve", `unknown value %q (expected "far": the far site's dns servers, "local": this host's resolver, or "none": clients send addresses)`, s)
		}
	}
	px.Limits = readLimits(k)
	k.finish()
	if len(k.p.errs) != nerr {
		return nil
	}
	// An open proxy on a reachable address lets anyone who reaches it into
	// the far site, with this gateway's address.
	if len(px.Users) == 0 && !px.Unauthenticated && !isLoopbackListen(px.Listen) {
		k.errorf("listen", "%s is not a loopback address and %s has no users: anyone who can reach it could use it into the far site; "+
			"set users or users-file, %s, or set unauthenticated = true if a firewall already keeps strangers out",
			px.Listen, proxyKind(socks), loopbackAdvice)
		return nil
	}
	if px.Unauthenticated && len(px.Users) > 0 {
		k.errorf("unauthenticated", "users are set, so the proxy asks for a password: remove unauthenticated or the users")
		return nil
	}
	return px
}

// readUsers reads users (a table of user = "password") or users-file (a
// file of user:password lines).
func (ti *tunnelInfo) readUsers(k *table) map[string]string {
	hasUsers, hasFile := k.has("users"), k.has("users-file")
	if hasUsers && hasFile {
		k.errorf("users-file", "users is set too; set only one of users and users-file")
		return nil
	}
	if hasFile {
		name, ok := k.str("users-file")
		if !ok {
			return nil
		}
		if name == "" {
			k.errorf("users-file", "must not be empty (the path of a file of user:password lines)")
			return nil
		}
		if !filepath.IsAbs(name) {
			name = filepath.Join(filepath.Dir(k.p.file), name)
		}
		b, err := readSmallFile(name, maxUsersFile)
		if err != nil {
			k.errorf("users-file", "%v", err)
			return nil
		}
		users, err := parseUsersFile(b)
		if err != nil {
			k.errorf("users-file", "%s: %v", name, err)
			return nil
		}
		return users
	}
	if !hasUsers {
		return nil
	}
	v, _ := k.get("users")
	m, ok := v.(map[string]any)
	if !ok {
		k.errorf("users", `must be a table of user = "password", e.g. users = { alice = "..." }, got %s`, describe(v))
		return nil
	}
	if len(m) == 0 {
		k.errorf("users", "must not be empty; leave it out for no authentication")
		return nil
	}
	users := make(map[string]string, len(m))
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		pw, ok := m[name].(string)
		if !ok {
			k.errorf("users", "%q: the password must be a string in quotes", name)
			continue
		}
		if err := checkUser(name, pw); err != nil {
			k.errorf("users", "%v", err)
			continue
		}
		users[name] = pw
	}
	return users
}

// checkUser checks a user name and password against RFC 1929 and what the
// HTTP proxy's Basic authentication can carry. The message never holds the
// password.
func checkUser(name, pw string) error {
	switch {
	case name == "" || len(name) > maxUserLen:
		return fmt.Errorf("user names must be 1 to %d bytes (RFC 1929), got %d", maxUserLen, len(name))
	case strings.ContainsAny(name, ":\n\r\x00"):
		return fmt.Errorf("user %q: a name may not contain ':', line ends or NUL (HTTP Basic authentication splits at the first ':')", name)
	case pw == "" || len(pw) > maxUserLen:
		return fmt.Errorf("user %q: the password must be 1 to %d bytes (RFC 1929), got %d", name, maxUserLen, len(pw))
	case strings.ContainsAny(pw, "\n\r\x00"):
		return fmt.Errorf("user %q: the password may not contain line ends or NUL", name)
	}
	return nil
}

// parseUsersFile parses "user:password" lines; blank lines and lines
// starting with '#' are skipped. Errors name the line, never a password.
func parseUsersFile(b []byte) (map[string]string, error) {
	users := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxUsersFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, pw, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: expected user:password", n)
		}
		if err := checkUser(name, pw); err != nil {
			return nil, fmt.Errorf("line %d: %v", n, err)
		}
		if _, dup := users[name]; dup {
			return nil, fmt.Errorf("line %d: user %q is given twice", n, name)
		}
		users[name] = pw
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("no user:password lines; leave users-file out for no authentication")
	}
	return users, nil
}

// readLimits reads max-connections and idle-timeout of a proxy or forward.
func readLimits(k *table) proxy.Limits {
	var l proxy.Limits
	if n, ok := k.integer("max-connections", 1, maxConnsLimit, ""); ok {
		l.MaxConns = int(n)
	}
	if k.has("idle-timeout") {
		l.IdleTimeout = readDuration(k, "idle-timeout", proxy.DefaultTCPIdleTimeout, minProxyIdle, 0, false)
	}
	return l
}

// readForwards reads the [[tunnel.forward]] array.
func (ti *tunnelInfo) readForwards() []Forward {
	t := ti.t
	v, present := t.get("forward")
	if !present {
		return nil
	}
	var list []map[string]any
	switch v := v.(type) {
	case []map[string]any:
		list = v
	case []any:
		for i, e := range v {
			m, ok := e.(map[string]any)
			if !ok {
				t.elemErrorf("forward", i, "must be a table, got %s", describe(e))
				return nil
			}
			list = append(list, m)
		}
	case map[string]any:
		t.errorf("forward", "write [[tunnel.forward]] (an array of tables, one per forward), not [tunnel.forward]")
		return nil
	default:
		t.errorf("forward", "must be [[tunnel.forward]] tables, got %s", describe(v))
		return nil
	}
	if len(list) > maxForwards {
		t.errorf("forward", "has %d forwards; at most %d", len(list), maxForwards)
		return nil
	}
	var out []Forward
	for i, m := range list {
		k := t.p.table(t.tunnel, append(slices.Clip(t.base), "forward", index(i)),
			append(slices.Clip(t.rel), "forward", index(i)), m)
		if f, ok := ti.readForward(k); ok {
			out = append(out, f)
		}
	}
	return out
}

// readForward reads one [[tunnel.forward]].
func (ti *tunnelInfo) readForward(k *table) (Forward, bool) {
	nerr := len(k.p.errs)
	var f Forward
	if k.require("proto", `"tcp" or "udp"`) {
		if s, ok := k.str("proto"); ok {
			if s != "tcp" && s != "udp" {
				k.errorf("proto", `unknown protocol %q (expected "tcp" or "udp")`, s)
			}
			f.Proto = s
		}
	}
	dirOK := false
	if k.require("direction", `"local-to-far" (listen here, connect on the far site) or "far-to-local" (listen on the tunnel address, connect here)`) {
		if s, ok := k.str("direction"); ok {
			switch s {
			case "local-to-far":
				f.Direction, dirOK = LocalToFar, true
			case "far-to-local":
				f.Direction, dirOK = FarToLocal, true
			default:
				k.errorf("direction", `unknown direction %q (expected "local-to-far": listen on this host, connect on the far site; or "far-to-local": listen on the tunnel address, connect on this host)`, s)
			}
		}
	}
	if k.require("listen", "host:port") {
		if s, ok := k.str("listen"); ok && dirOK {
			if err := ti.checkForwardListen(s, f.Direction); err != "" {
				k.errorf("listen", "%q: %s", s, err)
			} else {
				f.Listen = s
			}
		}
	}
	if k.require("target", `host:port, e.g. "10.2.0.10:22"`) {
		if s, ok := k.str("target"); ok && dirOK {
			if err := ti.checkTarget(s, f.Direction); err != "" {
				k.errorf("target", "%q: %s", s, err)
			} else {
				f.Target = s
			}
		}
	}
	f.Limits = readLimits(k)
	k.finish()
	return f, len(k.p.errs) == nerr
}

// checkForwardListen checks a forward's listen address: any host:port on
// this host for local-to-far, and ":port" or one of the tunnel's addresses
// for far-to-local.
func (ti *tunnelInfo) checkForwardListen(s string, d Direction) string {
	if d == LocalToFar {
		if err := checkListen(s, false); err != "" {
			return err + " (expected " + listenFormatTip + ")"
		}
		return ""
	}
	if err := checkListen(s, true); err != "" {
		return err + ` (expected ":port" for every address of the tunnel, or "address:port" with one of its addresses)`
	}
	host, _, _ := net.SplitHostPort(s)
	if host == "" {
		return ""
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return "the host must be one of the tunnel's addresses, or empty for all of them"
	}
	for _, own := range ti.cfg.Link.Addresses {
		if own.Prefix.Addr() == a.Unmap() {
			return ""
		}
	}
	return fmt.Sprintf("%s is not an address of the tunnel (addresses: %s); the forward listens in the tunnel's stack", a, ti.addressList())
}

func (ti *tunnelInfo) addressList() string {
	var l []string
	for _, a := range ti.cfg.Link.Addresses {
		l = append(l, a.Prefix.Addr().String())
	}
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// checkTarget checks a forward's target: host:port with a port from 1, a
// far-site address inside the routes for local-to-far.
func (ti *tunnelInfo) checkTarget(s string, d Direction) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return strings.TrimPrefix(err.Error(), "address "+s+": ") + ` (expected host:port, e.g. "10.2.0.10:22" or "db.example:5432")`
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "the port must be a number from 1 to 65535"
	}
	if host == "" {
		return "the host is missing"
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		if !validHostName(host) {
			return "the host is not an address or a name"
		}
		if d == LocalToFar && len(ti.cfg.Netstack.DNS) == 0 {
			return `a host name on the far site needs its name servers: set dns = ["..."] in the tunnel, or give an address`
		}
		return ""
	}
	a = a.Unmap()
	if d == LocalToFar && !ti.routed(a) {
		return fmt.Sprintf("%s is not routed into the tunnel (addresses and routes cover %s); add a route that covers it", a, ti.routedList())
	}
	if a.IsUnspecified() || a.IsMulticast() {
		return fmt.Sprintf("%s is not a unicast address", a)
	}
	return ""
}

// validHostName reports whether s looks like a DNS name (RFC 1123 labels).
func validHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// checkListen returns what is wrong with a listen address, or "". With
// emptyHost, ":port" is allowed (every address).
func checkListen(s string, emptyHost bool) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return strings.TrimPrefix(err.Error(), "address "+s+": ")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "the port must be a number from 0 (any free port, which greipsec show names) to 65535"
	}
	if host == "" {
		if emptyHost {
			return ""
		}
		return "the host is missing: name the address to listen on (\":port\" would listen on every address)"
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		if host == "localhost" {
			return "write the address, 127.0.0.1 or [::1], not localhost"
		}
		return "the host must be an IP address"
	}
	if a.Zone() != "" {
		return "addresses with a zone are not supported"
	}
	if a.IsMulticast() {
		return "not a unicast address"
	}
	return ""
}

// isLoopbackListen reports whether a listen address is on the loopback
// interface only.
func isLoopbackListen(s string) bool {
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// listenRef is one listener of a netstack tunnel, for the checks of
// listeners that collide.
type listenRef struct {
	key   string // "tcp 127.0.0.1:1080"; far-to-local forwards "stack tcp :8080"
	kind  string // "socks5", "http-proxy" or "forward"
	index int    // of the forward
}

// listeners returns the listeners of a netstack tunnel in the order of the
// file.
func (ns *Netstack) listeners() []listenRef {
	var l []listenRef
	if ns.SOCKS5 != nil {
		l = append(l, listenRef{key: "tcp " + ns.SOCKS5.Listen, kind: "socks5"})
	}
	if ns.HTTP != nil {
		l = append(l, listenRef{key: "tcp " + ns.HTTP.Listen, kind: "http-proxy"})
	}
	for i, f := range ns.Forwards {
		k := f.Proto + " " + f.Listen
		if f.Direction == FarToLocal {
			k = "stack " + k
		}
		l = append(l, listenRef{key: k, kind: "forward", index: i})
	}
	return l
}

// report reports a mistake about listener r of tunnel ti.
func (r listenRef) report(ti *tunnelInfo, format string, args ...any) {
	if r.kind == "forward" {
		ti.t.elemErrorf("forward", r.index, format, args...)
		return
	}
	ti.t.errorf(r.kind, format, args...)
}

func (r listenRef) name() string {
	if r.kind == "forward" {
		return fmt.Sprintf("forward[%d]", r.index)
	}
	return r.kind
}

// checkListens reports two listeners of a tunnel on one address and port.
func (ti *tunnelInfo) checkListens(ns *Netstack) {
	seen := make(map[string]listenRef)
	for _, r := range ns.listeners() {
		if strings.HasSuffix(r.key, ":0") {
			continue // any free port: never the same
		}
		if first, dup := seen[r.key]; dup {
			r.report(ti, "listens on %s, as %s does already; each listener needs its own address and port", strings.SplitN(r.key, " ", 2)[1], first.name())
			continue
		}
		seen[r.key] = r
	}
}

// checkHostListeners reports two netstack tunnels listening on the same
// address and port of this host.
func (p *parser) checkHostListeners(infos []*tunnelInfo) {
	seen := make(map[string]*tunnelInfo)
	for _, ti := range infos {
		if ti.cfg.Netstack == nil {
			continue
		}
		for _, r := range ti.cfg.Netstack.listeners() {
			if strings.HasPrefix(r.key, "stack ") || strings.HasSuffix(r.key, ":0") {
				continue // in the tunnel's own stack, or any free port
			}
			if first, dup := seen[r.key]; dup && first != ti {
				r.report(ti, "listens on %s, as %s does already; each listener needs its own address and port", strings.SplitN(r.key, " ", 2)[1], first.ref("name"))
				continue
			}
			seen[r.key] = ti
		}
	}
}
