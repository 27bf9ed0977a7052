package config

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/ikev2"
)

// Defaults of [tunnel.ike], as examples/site-a.toml documents them.
const (
	defaultIKEProposals      = "aes256-sha384-ecp384"
	defaultESPProposals      = "aes256gcm16-ecp384"
	defaultDPD               = 30 * time.Second
	defaultRetransmitTimeout = 2 * time.Second
	defaultRetransmitTries   = 5
	defaultIKELifetime       = 24 * time.Hour
	defaultChildLifetime     = time.Hour
	defaultNATKeepalive      = 20 * time.Second
)

// Limits [tunnel.ike] is checked against.
const (
	minDPD               = time.Second
	minRetransmitTimeout = 100 * time.Millisecond
	maxRetransmitTimeout = time.Minute
	maxRetransmitTries   = 20
	minLifetime          = 10 * time.Second // shorter would spend more time rekeying than running
	minNATKeepalive      = time.Second
	maxIdentityLen       = 255
)

// protoGRE is the IP protocol number of GRE (RFC 2784), the protocol of the
// traffic selectors of the GRE modes.
const protoGRE = 47

// keying reads how the tunnel is keyed: by IKE ([tunnel.ike]) or by hand
// ([tunnel.sa.out] and [tunnel.sa.in]), exactly one of the two.
func (p *parser) keying(ti *tunnelInfo) {
	t := ti.t
	hasIKE, hasSA := t.has("ike"), t.has("sa")
	switch {
	case hasIKE && hasSA:
		t.errorf("sa", "a tunnel is keyed either by IKE ([tunnel.ike]) or by hand ([tunnel.sa.out] and [tunnel.sa.in]), not both; remove one of them")
		p.ike(ti)
	case hasIKE:
		p.ike(ti)
	case hasSA:
		p.sas(ti)
	default:
		t.errorf("ike", "missing: each tunnel needs [tunnel.ike] to be keyed by IKEv2, or manual keys in [tunnel.sa.out] and [tunnel.sa.in]")
	}
}

// ike reads [tunnel.ike] into ti.cfg.IKE, which stays nil after a mistake.
func (p *parser) ike(ti *tunnelInfo) {
	t, dp := ti.t, &ti.cfg.Dataplane
	k, ok := t.sub("ike")
	if !ok {
		return
	}
	nerr := len(p.errs)
	// IKE moves ESP into UDP when it sees a NAT (RFC 3948): the dataplane
	// opens the UDP socket and leaves room for the header.
	dp.NATTraversal = true
	c := &ikev2.Config{
		Name:      dp.Name,
		LocalAddr: dp.Local,
		PeerAddr:  dp.Peer,
	}

	c.Role = ikev2.RoleActive
	if s, ok := k.str("role"); ok {
		switch s {
		case "active":
			c.Role = ikev2.RoleActive
		case "passive":
			c.Role = ikev2.RolePassive
		default:
			k.errorf("role", "unknown role %q (expected active, which initiates and answers, or passive, which only answers)", s)
		}
	}
	c.LocalID = readIdentity(k, "local-id", dp.Local)
	c.PeerID = readIdentity(k, "peer-id", dp.Peer)

	var opts ikev2.ProposalOptions
	if b, ok := k.boolean("weak-algorithms"); ok {
		opts.AllowWeak = b
	}
	p.readAuth(k, c, opts.AllowWeak) // auth.go
	c.IKEProposals = readProposals(k, "ike-proposals", defaultIKEProposals, opts.ParseIKE)
	c.ESPProposals = readProposals(k, "esp-proposals", defaultESPProposals, opts.ParseESP)
	dp.ESPTransforms = espTransforms(c.ESPProposals) // the MTU fits the largest

	ti.readChildMode(k, c)
	ti.readSelectors(k, c)

	if b, ok := k.boolean("encap"); ok {
		c.ForceEncap = b
	}
	c.Fragmentation = true
	if b, ok := k.boolean("fragmentation"); ok {
		c.Fragmentation = b
	}
	c.DPD = readDuration(k, "dpd", defaultDPD, minDPD, 0, true)
	c.RetransmitTimeout = readDuration(k, "retransmit-timeout", defaultRetransmitTimeout, minRetransmitTimeout, maxRetransmitTimeout, false)
	c.RetransmitTries = defaultRetransmitTries
	if n, ok := k.integer("retransmit-tries", 1, maxRetransmitTries, ""); ok {
		c.RetransmitTries = int(n)
	}
	c.IKELifetime = readDuration(k, "ike-lifetime", defaultIKELifetime, minLifetime, 0, false)
	c.ChildLifetime = readDuration(k, "lifetime", defaultChildLifetime, minLifetime, 0, false)
	c.ChildBytes, _ = limit(k, "lifetime-bytes", true)
	if c.ChildBytes != 0 && c.ChildBytes < minLifetimeBytes {
		// The rekey starts at 80% of it (gateway): below 5 bytes the soft
		// limit is not below the hard one and no Child SA installs; just
		// above, the SA is rekeyed every few packets.
		k.errorf("lifetime-bytes", "%d is below %s: the Child SA would be rekeyed every few packets (or, below 5, never install); use at least 1M, or 0 for no byte limit", c.ChildBytes, "1M")
		c.ChildBytes = 0
	}
	c.NATKeepalive = readDuration(k, "nat-keepalive", defaultNATKeepalive, minNATKeepalive, 0, false)
	ti.readIKEPorts(k, c)
	k.finish()

	if len(p.errs) != nerr || !dp.Local.IsValid() || !ti.modeOK {
		return // the mistakes are reported; a partial Config is of no use
	}
	ti.cfg.IKE = c
}

// readChildMode sets the IPsec mode of the Child SA from the tunnel's mode
// and tunnel-fallback.
func (ti *tunnelInfo) readChildMode(k *table, c *ikev2.Config) {
	mode := ti.cfg.Dataplane.Mode
	fallback, ok := k.boolean("tunnel-fallback")
	if ok && ti.modeOK && mode != dataplane.ModeGRETransport {
		k.errorf("tunnel-fallback", "only used with mode \"gre-transport\"; mode %q always negotiates tunnel mode", mode)
		fallback = false
	}
	switch {
	case mode == dataplane.ModeGRETransport && fallback:
		c.Mode = ikev2.ModeTransportOrTunnel
		ti.cfg.Dataplane.TunnelFallback = true // the MTU leaves room for the inner IP header
	case mode == dataplane.ModeGRETransport:
		c.Mode = ikev2.ModeTransport
	default:
		c.Mode = ikev2.ModeTunnel
	}
}

// readSelectors sets the traffic selectors of the Child SA: the two
// gateways with protocol 47 in the GRE modes, local-ts ↔ peer-ts in route
// mode.
func (ti *tunnelInfo) readSelectors(k *table, c *ikev2.Config) {
	dp := &ti.cfg.Dataplane
	route := ti.modeOK && dp.Mode == dataplane.ModeRoute
	localTS, localOK := readPrefixes(k, "local-ts")
	peerTS, peerOK := readPrefixes(k, "peer-ts")
	narrowing, narrowingOK := k.boolean("narrowing")
	if !route {
		if !ti.modeOK {
			return
		}
		why := fmt.Sprintf("mode %q carries only GRE between the two gateways (%s ↔ %s, IP protocol 47)", dp.Mode, dp.Local, dp.Peer)
		for _, key := range []string{"local-ts", "peer-ts", "narrowing"} {
			if k.has(key) {
				k.errorf(key, "only used with mode \"route\"; %s", why)
			}
		}
		if dp.Local.IsValid() {
			c.LocalTS = []ikev2.Selector{{Prefix: netip.PrefixFrom(dp.Local, dp.Local.BitLen()), Protocol: protoGRE}}
			c.PeerTS = []ikev2.Selector{{Prefix: netip.PrefixFrom(dp.Peer, dp.Peer.BitLen()), Protocol: protoGRE}}
		}
		return
	}
	if narrowingOK {
		c.AllowNarrowing = narrowing
	}
	if !localOK || !peerOK {
		return
	}
	// An absent list covers everything of the families of the other one,
	// or of both families when both are absent.
	switch {
	case !k.has("local-ts") && !k.has("peer-ts"):
		localTS, peerTS = everything(true, true), everything(true, true)
	case !k.has("local-ts"):
		localTS = everything(families(peerTS))
	case !k.has("peer-ts"):
		peerTS = everything(families(localTS))
	default:
		l4, l6 := families(localTS)
		p4, p6 := families(peerTS)
		if l4 != p4 || l6 != p6 {
			k.errorf("peer-ts", "covers %s but local-ts covers %s; both need the same address families, or the Child SA could carry nothing of the others",
				familyNames(p4, p6), familyNames(l4, l6))
			return
		}
	}
	for i, r := range ti.cfg.Link.Routes {
		if !covered(peerTS, r) {
			ti.t.elemErrorf("routes", ti.routeIdx[i], "%s is not inside ike.peer-ts (%s): packets routed there could not be sent; add it to peer-ts",
				r, prefixList(peerTS))
		}
	}
	for _, p := range localTS {
		c.LocalTS = append(c.LocalTS, ikev2.Selector{Prefix: p})
	}
	for _, p := range peerTS {
		c.PeerTS = append(c.PeerTS, ikev2.Selector{Prefix: p})
	}
}

// readPrefixes reads an array of prefixes. ok is false after a mistake.
func readPrefixes(k *table, key string) (list []netip.Prefix, ok bool) {
	strs, present := k.strings(key)
	if !present {
		return nil, !k.has(key)
	}
	if len(strs) == 0 {
		k.errorf(key, "must not be empty; leave it out to cover every address")
		return nil, false
	}
	ok = true
	seen := make(map[netip.Prefix]int)
	for i, s := range strs {
		p, err := parseRoute(s)
		if err != nil {
			k.elemErrorf(key, i, "%v", err)
			ok = false
			continue
		}
		if j, dup := seen[p]; dup {
			k.elemErrorf(key, i, "%s is already %s[%d]", p, key, j)
			ok = false
			continue
		}
		seen[p] = i
		list = append(list, p)
	}
	return list, ok
}

// everything returns the prefixes that cover every address of the given
// families.
func everything(v4, v6 bool) []netip.Prefix {
	var list []netip.Prefix
	if v4 {
		list = append(list, netip.MustParsePrefix("0.0.0.0/0"))
	}
	if v6 {
		list = append(list, netip.MustParsePrefix("::/0"))
	}
	return list
}

// families reports which address families list holds.
func families(list []netip.Prefix) (v4, v6 bool) {
	for _, p := range list {
		if p.Addr().Is4() {
			v4 = true
		} else {
			v6 = true
		}
	}
	return v4, v6
}

func familyNames(v4, v6 bool) string {
	switch {
	case v4 && v6:
		return "IPv4 and IPv6"
	case v4:
		return "only IPv4"
	}
	return "only IPv6"
}

// covered reports whether r lies inside one of list.
func covered(list []netip.Prefix, r netip.Prefix) bool {
	for _, p := range list {
		if p.Addr().Is4() == r.Addr().Is4() && p.Bits() <= r.Bits() && p.Contains(r.Addr()) {
			return true
		}
	}
	return false
}

func prefixList(list []netip.Prefix) string {
	s := make([]string, len(list))
	for i, p := range list {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// readIdentity reads an IKE identity; absent, it is the address addr (when
// valid).
func readIdentity(k *table, key string, addr netip.Addr) ikev2.Identity {
	s, ok := k.str(key)
	if !ok {
		if addr.IsValid() {
			return ikev2.IdentityAddr(addr)
		}
		return ikev2.Identity{}
	}
	id, err := parseIdentity(s)
	if err != nil {
		k.errorf(key, "%v", err)
	}
	return id
}

// identityForms is what an identity may be, for messages.
const identityForms = `an IP address, "fqdn:name" or a name with a dot, "user:name@domain" or an e-mail address, "keyid:0x..." (hex) or "keyid:text", or a distinguished name "dn:C=CH, O=Example, CN=gw" (or "C=CH, O=..., CN=..." or "/C=CH/O=.../CN=...")`

// parseIdentity parses an identity the way iked.conf srcid/dstid and
// swanctl.conf id= spell them:
//
//	192.0.2.1, 2001:db8::1                          ID_IPV4_ADDR, ID_IPV6_ADDR
//	fqdn:gw-b.example.net, gw-b.example.net,
//	@gw-b.example.net (strongSwan's spelling)       ID_FQDN
//	user:admin@example.net, admin@example.net       ID_RFC822_ADDR (USER_FQDN)
//	keyid:0x0102... (or keyid:#0102...), keyid:text ID_KEY_ID: hex octets, or the text's bytes
//	dn:C=CH, O=Example, CN=gw-b, C=CH, O=..., CN=...,
//	/C=CH/O=Example/CN=gw-b (OpenSSL, iked.conf)    ID_DER_ASN1_DN (auth.go)
func parseIdentity(s string) (ikev2.Identity, error) {
	if rest, ok := strings.CutPrefix(s, "dn:"); ok || strings.HasPrefix(s, "/") || looksLikeDN(s) {
		if !ok {
			rest = s
		}
		der, err := parseDN(rest)
		if err != nil {
			return ikev2.Identity{}, err
		}
		return ikev2.Identity{IDType: ikev2.IDDERASN1DN, Data: der}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return ikev2.Identity{}, fmt.Errorf("%q: addresses with a zone are not identities", s)
		}
		return ikev2.IdentityAddr(a), nil
	}
	prefix, rest, hasPrefix := strings.Cut(s, ":")
	if hasPrefix && isWord(prefix) {
		switch strings.ToLower(prefix) {
		case "fqdn":
			return fqdnIdentity(s, rest)
		case "user", "email", "rfc822":
			return userIdentity(s, rest)
		case "keyid":
			return keyIDIdentity(s, rest)
		case "ipv4", "ipv6":
			a, err := netip.ParseAddr(rest)
			if err != nil || a.Is4() != (strings.ToLower(prefix) == "ipv4") || a.Zone() != "" {
				return ikev2.Identity{}, fmt.Errorf("%q: %q is not an %s address", s, rest, strings.ToUpper(prefix[:2])+prefix[2:])
			}
			return ikev2.IdentityAddr(a), nil
		}
		return ikev2.Identity{}, fmt.Errorf("%q: unknown identity type %q (expected %s)", s, prefix, identityForms)
	}
	switch {
	case strings.HasPrefix(s, "@"):
		return fqdnIdentity(s, s[1:])
	case strings.Contains(s, "@"):
		return userIdentity(s, s)
	case strings.Contains(s, "."):
		return fqdnIdentity(s, s)
	}
	return ikev2.Identity{}, fmt.Errorf("%q is not an identity (expected %s)", s, identityForms)
}

// looksLikeDN reports whether s is written as a DN: "C=CH, O=..." (an
// attribute type, '=', before any '@' or ':').
func looksLikeDN(s string) bool {
	typ, _, ok := strings.Cut(s, "=")
	_, known := dnAttributes[strings.ToLower(strings.TrimSpace(typ))]
	return ok && known
}

// isWord reports whether s is an ASCII letter followed by letters and
// digits, as the name of an identity type ("fqdn", "ipv4").
func isWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if !(c >= 'a' && c <= 'z' || i > 0 && s[i] >= '0' && s[i] <= '9') {
			return false
		}
	}
	return s != ""
}

func fqdnIdentity(s, name string) (ikev2.Identity, error) {
	if err := checkIDText(s, name); err != nil {
		return ikev2.Identity{}, err
	}
	if strings.Contains(name, "@") {
		return ikev2.Identity{}, fmt.Errorf("%q: a domain name has no '@'; for an e-mail address write \"user:%s\"", s, name)
	}
	return ikev2.IdentityFQDN(strings.TrimSuffix(name, ".")), nil
}

func userIdentity(s, addr string) (ikev2.Identity, error) {
	if err := checkIDText(s, addr); err != nil {
		return ikev2.Identity{}, err
	}
	local, domain, _ := strings.Cut(addr, "@")
	if local == "" || domain == "" {
		return ikev2.Identity{}, fmt.Errorf("%q: an e-mail address needs a name before and a domain after the '@'", s)
	}
	return ikev2.IdentityRFC822(addr), nil
}

func keyIDIdentity(s, id string) (ikev2.Identity, error) {
	var digits string
	switch {
	case strings.HasPrefix(id, "0x"), strings.HasPrefix(id, "0X"):
		digits = id[2:]
	case strings.HasPrefix(id, "#"):
		digits = id[1:]
	default:
		if err := checkIDText(s, id); err != nil {
			return ikev2.Identity{}, err
		}
		return ikev2.IdentityKeyID([]byte(id)), nil
	}
	b, err := hex.DecodeString(digits)
	if err != nil || len(b) == 0 || len(b) > maxIdentityLen {
		return ikev2.Identity{}, fmt.Errorf("%q: a key ID after 0x (or #) must be 2 to %d hex digits, an even number", s, 2*maxIdentityLen)
	}
	return ikev2.IdentityKeyID(b), nil
}

// checkIDText checks the text of an FQDN, e-mail or key ID identity.
func checkIDText(s, text string) error {
	switch {
	case text == "":
		return fmt.Errorf("%q: the identity is empty", s)
	case len(text) > maxIdentityLen:
		return fmt.Errorf("%q: an identity may be at most %d characters", s, maxIdentityLen)
	}
	for i := 0; i < len(text); i++ {
		if c := text[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%q: an identity may hold only printable ASCII characters without spaces", s)
		}
	}
	return nil
}

// pskKeys are the keys that give the pre-shared key; exactly one is set.
var pskKeys = []string{"psk", "psk-file", "psk-env"}

// readPSK reads the pre-shared key from psk, psk-file or psk-env. No
// message ever shows the key, or any part of it.
func (p *parser) readPSK(k *table) []byte {
	var set []string
	for _, key := range pskKeys {
		if k.has(key) {
			set = append(set, key)
		}
	}
	switch len(set) {
	case 0:
		k.errorf("psk", "missing (the pre-shared key: set one of psk, psk-file or psk-env)")
		return nil
	case 1:
	default:
		k.errorf(set[1], "%s is set too; set only one of psk, psk-file and psk-env", set[0])
		return nil
	}
	var secret []byte
	switch set[0] {
	case "psk":
		v, _ := k.get("psk")
		s, ok := v.(string)
		if !ok {
			// describe would show the value.
			k.errorf("psk", "must be a string in quotes")
			return nil
		}
		secret = []byte(s)
	case "psk-file":
		name, ok := k.str("psk-file")
		if !ok {
			return nil
		}
		if name == "" {
			k.errorf("psk-file", "must not be empty (the path of a file holding the pre-shared key)")
			return nil
		}
		if !filepath.IsAbs(name) {
			// Relative to the configuration file, like an include.
			name = filepath.Join(filepath.Dir(p.file), name)
		}
		b, err := readSmallFile(name, maxPSKFile)
		if err != nil {
			k.errorf("psk-file", "%v", err)
			return nil
		}
		secret = bytes.TrimSpace(b)
	case "psk-env":
		name, ok := k.str("psk-env")
		if !ok {
			return nil
		}
		if name == "" || strings.Contains(name, "=") {
			k.errorf("psk-env", "%q is not the name of an environment variable", name)
			return nil
		}
		v, set := os.LookupEnv(name)
		if !set {
			k.errorf("psk-env", "environment variable %s is not set", name)
			return nil
		}
		secret = []byte(v)
	}
	key, err := decodePSK(secret)
	if err != nil {
		k.errorf(set[0], "%v", err)
		return nil
	}
	// L5: a short key falls to an offline dictionary attack on one
	// captured IKE_AUTH (RFC 7296 §2.15 asks for keys as strong as the
	// PRF's key); the example key is public.
	short, shortSet := k.boolean("allow-short-psk")
	if len(key) < MinPSKLen && !(shortSet && short) {
		k.errorf(set[0], "the pre-shared key is %d bytes; at least %d are needed against offline guessing (e.g. `head -c 32 /dev/urandom | xxd -p -c 64` gives psk = \"0x...\"), or set allow-short-psk = true for a peer you cannot change", len(key), MinPSKLen)
		return nil
	}
	if bytes.HasPrefix(key, []byte(examplePSKPrefix)) {
		p.examplePSK = append(p.examplePSK, k.newError(set[0],
			"this is the example pre-shared key of examples/, which anybody can read: make a key (e.g. `head -c 32 /dev/urandom | xxd -p -c 64`) for both sides; only the demo (up --allow-example-psk) runs with it"))
	}
	switch set[0] {
	case "psk":
		p.inlinePSK = append(p.inlinePSK, k.newError("psk", ""))
	case "psk-file":
		if fi, err := os.Stat(pskFilePath(p.file, k)); err == nil && fi.Mode().Perm()&0o044 != 0 {
			p.warns = append(p.warns, k.newError("psk-file", fmt.Sprintf("%s is readable by its group or by others (mode %04o): chmod 600 it", fi.Name(), fi.Mode().Perm())))
		}
	}
	return key
}

// pskFilePath is the path psk-file names, relative to the configuration
// file's directory.
func pskFilePath(file string, k *table) string {
	name, _ := k.str("psk-file")
	if !filepath.IsAbs(name) {
		name = filepath.Join(filepath.Dir(file), name)
	}
	return name
}

// minLifetimeBytes is the smallest lifetime-bytes accepted: a thousand
// full-size packets.
const minLifetimeBytes = 1 << 20

// MinPSKLen is the shortest pre-shared key accepted without
// allow-short-psk: 16 bytes, 128 bits.
const MinPSKLen = 16

// ExamplePSK is the pre-shared key of the files in examples/: anybody can
// read it, so "up" refuses it, and every key that starts with
// "EXAMPLE-PSK" as the other examples' do, unless told that it runs the
// demo.
const ExamplePSK = "EXAMPLE-PSK-anybody-can-read-this-CHANGE-IT"

const examplePSKPrefix = "EXAMPLE-PSK"

// maxPSKFile is the largest psk-file read: a key, not a document (and not
// /dev/zero).
const maxPSKFile = 4096

// readSmallFile reads the file name, of at most max bytes.
func readSmallFile(name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes; the file must hold only the pre-shared key", name, max)
	}
	return b, nil
}

// decodePSK returns the pre-shared key that s spells: the bytes of s, or,
// when s starts with "0x", the octets of the hex digits after it (as
// iked.conf and swanctl.conf read it). Errors never quote s.
func decodePSK(s []byte) ([]byte, error) {
	if len(s) == 0 {
		return nil, fmt.Errorf("the pre-shared key is empty")
	}
	if len(s) < 2 || s[0] != '0' || s[1] != 'x' && s[1] != 'X' {
		return s, nil
	}
	digits := s[2:]
	for i, c := range digits {
		if !isHexDigit(c) {
			return nil, fmt.Errorf("the pre-shared key starts with 0x, so it must be hex digits after it (as in iked.conf and swanctl.conf); digit %d is not one", i+1)
		}
	}
	if len(digits) == 0 || len(digits)%2 != 0 {
		return nil, fmt.Errorf("the pre-shared key starts with 0x, so it must be hex digits after it, an even number and at least 2; there are %d", len(digits))
	}
	key := make([]byte, len(digits)/2)
	if _, err := hex.Decode(key, digits); err != nil { // unreachable after the checks above
		return nil, fmt.Errorf("the pre-shared key is not valid hex")
	}
	return key, nil
}

// readProposals reads a comma-separated list of proposals, or the default
// def when key is absent.
func readProposals[T any](k *table, key, def string, parse func(string) ([]T, error)) []T {
	s, ok := k.str(key)
	if !ok {
		if k.has(key) {
			return nil
		}
		list, err := parse(def)
		if err != nil || len(list) == 0 {
			panic(fmt.Sprintf("config: default %s %q does not parse: %v", key, def, err))
		}
		return list
	}
	list, err := parse(s)
	switch {
	case err != nil:
		k.errorf(key, "%s", trimPkg(err))
		return nil
	case len(list) == 0:
		k.errorf(key, "names no proposal (expected e.g. %q)", def)
		return nil
	}
	return list
}

// readDuration reads a duration such as "30s" or "24h", at least lo and,
// unless hi is 0, at most hi; "0s" is allowed when zeroOK. Absent, it is
// def.
func readDuration(k *table, key string, def, lo, hi time.Duration, zeroOK bool) time.Duration {
	v, present := k.get(key)
	if !present {
		return def
	}
	s, ok := v.(string)
	if !ok {
		msg := fmt.Sprintf("must be a duration in quotes such as %q, got %s", fmtDuration(def), describe(v))
		if n, isInt := v.(int64); isInt && n >= 0 && n <= math.MaxInt32 {
			msg += fmt.Sprintf("; for %d seconds write %s = \"%ds\"", n, k.rel1(key), n)
		}
		k.errorf(key, "%s", msg)
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		k.errorf(key, "%q is not a duration (expected e.g. %q; units h, m, s, ms)", s, fmtDuration(def))
		return def
	}
	switch {
	case d == 0 && zeroOK:
		return 0
	case d < lo && zeroOK:
		k.errorf(key, "must be \"0s\" (off) or at least %s, got %s", fmtDuration(lo), fmtDuration(d))
	case d < lo:
		k.errorf(key, "must be at least %s, got %s", fmtDuration(lo), fmtDuration(d))
	case hi != 0 && d > hi:
		k.errorf(key, "must be at most %s, got %s", fmtDuration(hi), fmtDuration(d))
	default:
		return d
	}
	return def
}

// fmtDuration writes d the way a person would in the file: "1h" and
// "2m", not "1h0m0s" and "2m0s".
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
