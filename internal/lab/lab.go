//go:build linux

// Package lab builds a two-host test bed out of Linux network namespaces,
// for the greipsec demo, the end-to-end tests and benchmarks.
//
// A Lab is two named network namespaces, <prefix>a and <prefix>b, joined by
// one veth pair, <prefix>a0 in a and <prefix>b0 in b:
//
//	namespace <prefix>a                        namespace <prefix>b
//	  <prefix>a0 192.0.2.1/24  ------veth------  <prefix>b0 192.0.2.2/24
//	             2001:db8:255::1/64                        2001:db8:255::2/64
//
// These are the outer addresses of the example configurations in
// examples/. The namespaces are bind-mounted under /run/netns like
// `ip netns add` does, so `ip netns exec <prefix>a ...` works on them too.
//
// Everything is done with netlink from Go: the lab needs root (or
// CAP_SYS_ADMIN and CAP_NET_ADMIN, and CAP_NET_RAW for Ping) but no
// iproute2, ping or iperf3. Nothing is created in the caller's namespace,
// and no traffic leaves the two lab namespaces.
package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetnsDir is where named network namespaces are bind-mounted, as by
// iproute2.
const NetnsDir = "/run/netns"

// MaxPrefixLen is the longest prefix New accepts: a link name is the prefix
// plus two characters and Linux allows at most 15 (IFNAMSIZ-1).
const MaxPrefixLen = unix.IFNAMSIZ - 1 - 2

// Host is one end of a Lab: a named network namespace with one end of the
// veth pair. Its fields are set by New and must not be changed.
type Host struct {
	// Name is the name of the network namespace, as `ip netns` shows it.
	Name string
	// Link is the name of the host's end of the veth pair.
	Link string
	// Addr4 and Addr6 are the host's outer addresses on Link, with
	// prefix lengths 24 and 64.
	Addr4, Addr6 netip.Prefix

	ns      netns.NsHandle  // open handle on the namespace, or -1
	nl      *netlink.Handle // netlink socket inside the namespace, or nil
	created bool            // the namespace was created by this lab
	links   int             // veth ends Connect made, to name the next one
}

// Lab is a two-host test bed; see the package documentation. Its methods are
// safe for concurrent use, except that Close must not be called while other
// methods are running.
type Lab struct {
	// Prefix is the prefix of every name the lab creates.
	Prefix string
	// A and B are the two hosts. A has the .1 addresses, B the .2 ones.
	A, B Host
	// R is the router between A and B in a lab made by NewRouted (nil
	// otherwise); its Link faces A, RLinkB faces B.
	R      *Host
	RLinkB string

	mu      sync.Mutex
	closed  bool
	procs   []*proc
	extra   []*Host // hosts made by AddHost
	closeMu sync.Mutex
	done    bool
	err     error
}

// The outer addresses of the two hosts, matching examples/site-a.toml and
// examples/site-b.toml.
var (
	addrA4 = netip.MustParsePrefix("192.0.2.1/24")
	addrB4 = netip.MustParsePrefix("192.0.2.2/24")
	addrA6 = netip.MustParsePrefix("2001:db8:255::1/64")
	addrB6 = netip.MustParsePrefix("2001:db8:255::2/64")
)

// New creates the namespaces <prefix>a and <prefix>b, the veth pair
// <prefix>a0/<prefix>b0 between them, the outer addresses 192.0.2.1/24 and
// 2001:db8:255::1/64 on a0 and 192.0.2.2/24 and 2001:db8:255::2/64 on b0
// (IPv6 without duplicate address detection, so usable at once), and brings
// all links including lo up in both namespaces.
//
// prefix must be 1 to MaxPrefixLen letters, digits, '-' or '_', and should
// be unique per run (see RandomPrefix). New fails, without touching it, if a
// namespace of either name already exists. On any error everything New
// created so far is removed again.
func New(prefix string) (*Lab, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	l := twoHosts(prefix)
	if err := l.setup(); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// setup creates what New promises, in order; Close removes what it made.
func (l *Lab) setup() error {
	for _, h := range []*Host{&l.A, &l.B} {
		if err := h.create(); err != nil {
			return err
		}
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: l.A.Link},
		PeerName:      l.B.Link,
		PeerNamespace: netlink.NsFd(l.B.ns),
	}
	if err := l.A.nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("lab: create veth pair %s/%s: %w", l.A.Link, l.B.Link, err)
	}
	for _, h := range []*Host{&l.A, &l.B} {
		if err := h.configure(); err != nil {
			return err
		}
	}
	// Until the kernel's link watcher has seen the carrier come up, which
	// it may delay by a second, the veth drops what it is given to send.
	for _, h := range []*Host{&l.A, &l.B} {
		if err := h.waitOperUp(5 * time.Second); err != nil {
			return err
		}
	}
	return nil
}

// waitOperUp waits until the operational state of h's veth end is up.
func (h *Host) waitOperUp(timeout time.Duration) error {
	var state netlink.LinkOperState
	if WaitFor(timeout, func() bool {
		link, err := h.nl.LinkByName(h.Link)
		if err == nil {
			state = link.Attrs().OperState
		}
		return state == netlink.OperUp
	}) {
		return nil
	}
	return fmt.Errorf("lab: %s: %s not up within %v (operational state %s)", h.Name, h.Link, timeout, state)
}

// checkPrefix reports whether prefix is usable in namespace and link names.
func checkPrefix(prefix string) error {
	if prefix == "" || len(prefix) > MaxPrefixLen {
		return fmt.Errorf("lab: prefix %q must be 1 to %d characters long", prefix, MaxPrefixLen)
	}
	for _, c := range prefix {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("lab: prefix %q: only letters, digits, '-' and '_' are allowed", prefix)
		}
	}
	return nil
}

// create creates h's named namespace and opens a netlink handle inside it.
func (h *Host) create() error {
	ns, err := newNamedNS(h.Name)
	if err != nil {
		return fmt.Errorf("lab: create network namespace %s: %w", h.Name, err)
	}
	h.ns, h.created = ns, true
	h.nl, err = netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("lab: netlink in namespace %s: %w", h.Name, err)
	}
	return nil
}

// configure brings lo and h's veth end up and adds the outer addresses.
func (h *Host) configure() error {
	lo, err := h.nl.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("lab: %s: %w", h.Name, err)
	}
	if err := h.nl.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lab: %s: set lo up: %w", h.Name, err)
	}
	if err := h.addAddrs(h.Link, []netip.Prefix{h.Addr4, h.Addr6}); err != nil {
		return err
	}
	return h.linkUp(h.Link)
}

func prefixIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// Close stops the processes started with Start that are still running
// (SIGTERM, then SIGKILL after 5 s), deletes the veth pair and the two
// namespaces. It removes only what this lab created, and is idempotent:
// later calls return the first call's result.
func (l *Lab) Close() error {
	l.closeMu.Lock()
	defer l.closeMu.Unlock()
	if l.done {
		return l.err
	}
	l.done = true

	l.mu.Lock()
	l.closed = true
	procs := l.procs
	extra := l.extra
	l.mu.Unlock()

	var errs []error
	stopAll(procs)
	if l.A.nl != nil {
		if link, err := l.A.nl.LinkByName(l.A.Link); err == nil {
			if err := l.A.nl.LinkDel(link); err != nil {
				errs = append(errs, fmt.Errorf("lab: delete veth %s: %w", l.A.Link, err))
			}
		} else if !isLinkNotFound(err) {
			errs = append(errs, fmt.Errorf("lab: %s: %w", l.A.Name, err))
		}
	}
	hosts := append([]*Host{&l.A, &l.B}, extra...)
	if l.R != nil {
		hosts = append(hosts, l.R)
	}
	for _, h := range hosts {
		if err := h.destroy(); err != nil {
			errs = append(errs, err)
		}
	}
	l.err = errors.Join(errs...)
	return l.err
}

// destroy closes h's handles and deletes its namespace if h created it.
func (h *Host) destroy() error {
	if h.nl != nil {
		h.nl.Close()
		h.nl = nil
	}
	if h.ns.IsOpen() {
		h.ns.Close()
	}
	if h.created {
		h.created = false
		if err := netns.DeleteNamed(h.Name); err != nil {
			return fmt.Errorf("lab: delete network namespace %s: %w", h.Name, err)
		}
	}
	return nil
}

func isLinkNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

// Cleanup removes what an earlier lab with this prefix left behind, for
// example after the process running it was killed: it kills the processes
// still running in the namespaces /run/netns/<prefix>*, unmounts and removes
// those namespaces, and deletes links named <prefix>* in the caller's own
// namespace. It returns the errors it met; what does not exist is no error.
// Cleanup must not be called for the prefix of a lab that is still in use.
func Cleanup(prefix string) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	var errs []error
	names, _ := filepath.Glob(filepath.Join(NetnsDir, prefix+"*"))
	for _, path := range names {
		name := filepath.Base(path)
		if err := killNamespace(path); err != nil {
			errs = append(errs, fmt.Errorf("lab: cleanup %s: %w", name, err))
		}
		if err := netns.DeleteNamed(name); err != nil {
			// Not a mount point (a stale file): remove it anyway.
			if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("lab: cleanup %s: %w", name, err))
			}
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		errs = append(errs, fmt.Errorf("lab: cleanup: %w", err))
	}
	for _, link := range links {
		if name := link.Attrs().Name; strings.HasPrefix(name, prefix) {
			if err := netlink.LinkDel(link); err != nil && !isLinkNotFound(err) {
				errs = append(errs, fmt.Errorf("lab: cleanup: delete link %s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// twoHosts returns a Lab with hosts A and B named after prefix, their
// links and addresses, and nothing created yet.
func twoHosts(prefix string) *Lab {
	return &Lab{
		Prefix: prefix,
		A:      Host{Name: prefix + "a", Link: prefix + "a0", Addr4: addrA4, Addr6: addrA6, ns: netns.None()},
		B:      Host{Name: prefix + "b", Link: prefix + "b0", Addr4: addrB4, Addr6: addrB6, ns: netns.None()},
	}
}
