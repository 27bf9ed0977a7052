package tun

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

var netnsSeq atomic.Int32

// enterNetns creates a network namespace with a name unique to this process
// and test, and switches the calling test's goroutine, locked to its thread,
// into it. Cleanup switches back and deletes the namespace. The thread stays
// locked, and so is discarded when the test ends, if switching back fails.
func enterNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace and a TUN device")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("needs /dev/net/tun: %v", err)
	}
	name := fmt.Sprintf("gt%d-%d", os.Getpid(), netnsSeq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})

	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatalf("get current network namespace: %v", err)
	}
	ns, err := netns.GetFromName(name)
	if err != nil {
		orig.Close()
		t.Fatalf("open network namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		defer orig.Close()
		defer ns.Close()
		if err := netns.Set(orig); err != nil {
			t.Errorf("switch back from network namespace %s: %v", name, err)
			return // leave the thread locked: it dies with the test's goroutine
		}
		runtime.UnlockOSThread()
	})
	if err := netns.Set(ns); err != nil {
		t.Fatalf("enter network namespace %s: %v", name, err)
	}
}

// createTUN creates a TUN device in the current namespace, closed in cleanup.
func createTUN(t *testing.T, name string, mtu int) Device {
	t.Helper()
	dev, err := Create(name, mtu)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	return dev
}

// findAddr returns the address in addrs that is a, or nil. For a
// point-to-point address the kernel keeps the prefix length with the peer.
func findAddr(addrs []netlink.Addr, a Address) *netlink.Addr {
	for i := range addrs {
		got := &addrs[i]
		if netip.MustParseAddr(got.IP.String()) != a.Prefix.Addr() || a.Peer.IsValid() != (got.Peer != nil) {
			continue
		}
		withPrefix := got.IPNet
		if got.Peer != nil {
			if netip.MustParseAddr(got.Peer.IP.String()) != a.Peer {
				continue
			}
			withPrefix = got.Peer
		}
		if ones, _ := withPrefix.Mask.Size(); ones == a.Prefix.Bits() {
			return got
		}
	}
	return nil
}

func findRoute(routes []netlink.Route, p netip.Prefix) *netlink.Route {
	for i := range routes {
		if routes[i].Dst != nil && routes[i].Dst.String() == p.String() {
			return &routes[i]
		}
	}
	return nil
}

func TestConfigure(t *testing.T) {
	enterNetns(t)
	const name = "tgre0"
	createTUN(t, name, 1500)

	p2p := Address{Prefix: netip.MustParsePrefix("10.255.0.1/30"), Peer: netip.MustParseAddr("10.255.0.2")}
	v6 := Address{Prefix: netip.MustParsePrefix("fd00:255::1/64")}
	r4, r6 := netip.MustParsePrefix("10.99.0.0/16"), netip.MustParsePrefix("fd00:99::/48")
	undo, err := Configure(name, LinkConfig{
		MTU:       1400,
		Addresses: []Address{p2p, v6},
		Routes:    []netip.Prefix{r4, r6},
	})
	if err != nil {
		t.Fatal(err)
	}

	link, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if link.Attrs().MTU != 1400 {
		t.Errorf("MTU = %d, want 1400", link.Attrs().MTU)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("link is not up: flags %v", link.Attrs().Flags)
	}

	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	if a := findAddr(addrs, p2p); a == nil {
		t.Errorf("no address %s in %v", p2p, addrs)
	} else if a.Broadcast != nil {
		t.Errorf("address %s has broadcast %s, want none", p2p, a.Broadcast)
	}
	if a := findAddr(addrs, v6); a == nil {
		t.Errorf("no address %s in %v", v6, addrs)
	} else if a.Flags&unix.IFA_F_NODAD == 0 || a.Flags&unix.IFA_F_TENTATIVE != 0 {
		t.Errorf("address %s has flags %#x, want nodad and not tentative", v6, a.Flags)
	}

	routes, err := netlink.RouteList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []netip.Prefix{r4, r6} {
		r := findRoute(routes, p)
		if r == nil {
			t.Errorf("no route %s in %v", p, routes)
			continue
		}
		if r.Gw != nil || r.LinkIndex != link.Attrs().Index || r.Table != unix.RT_TABLE_MAIN {
			t.Errorf("route %s = %v, want dev %s, no gateway, main table", p, r, name)
		}
		// IPv6 routes have no scope; the kernel reports them as universe.
		if p.Addr().Is4() && r.Scope != netlink.SCOPE_LINK {
			t.Errorf("route %s has scope %v, want link", p, r.Scope)
		}
	}
	// The kernel's own route to the point-to-point peer's prefix.
	if findRoute(routes, netip.MustParsePrefix("10.255.0.0/30")) == nil {
		t.Errorf("no prefix route to the peer 10.255.0.0/30 in %v", routes)
	}

	if err := undo(); err != nil {
		t.Fatalf("undo: %v", err)
	}
	addrs, err = netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []Address{p2p, v6} {
		if findAddr(addrs, a) != nil {
			t.Errorf("address %s still present after undo", a)
		}
	}
	routes, err = netlink.RouteList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []netip.Prefix{r4, r6} {
		if findRoute(routes, p) != nil {
			t.Errorf("route %s still present after undo", p)
		}
	}
	if err := undo(); err != nil {
		t.Errorf("second undo: %v", err)
	}
}

// TestConfigureRollback checks that a failed Configure names what failed and
// removes what it had already added.
func TestConfigureRollback(t *testing.T) {
	enterNetns(t)
	const name = "tgre0"
	dev := createTUN(t, name, 1500)
	taken := Address{Prefix: netip.MustParsePrefix("10.255.0.1/30"), Peer: netip.MustParseAddr("10.255.0.2")}
	undo, err := Configure(name, LinkConfig{Addresses: []Address{taken}})
	if err != nil {
		t.Fatal(err)
	}

	first := Address{Prefix: netip.MustParsePrefix("192.0.2.1/24")}
	_, err = Configure(name, LinkConfig{
		Addresses: []Address{first, taken},
		Routes:    []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
	})
	want := "tun: add address 10.255.0.1/30 peer 10.255.0.2 to tgre0: file exists"
	if err == nil || err.Error() != want || !errors.Is(err, unix.EEXIST) {
		t.Fatalf("Configure with a duplicate address: %v; want %q", err, want)
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if findAddr(addrs, first) != nil {
		t.Errorf("address %s left behind by the failed Configure", first)
	}
	if findAddr(addrs, taken) == nil {
		t.Errorf("the failed Configure removed %s, which it did not add", taken)
	}

	_, err = Configure("tgre9", LinkConfig{MTU: 1400})
	if err == nil || !strings.HasPrefix(err.Error(), "tun: find interface tgre9: ") {
		t.Errorf("Configure of a missing interface: %v", err)
	}

	// Once the interface is gone, so is what undo would delete.
	dev.Close()
	if err := undo(); err != nil {
		t.Errorf("undo after the interface was removed: %v", err)
	}
}

// TestDeviceTraffic sends a UDP datagram into the TUN and reads it from the
// Device, then writes a UDP datagram to the Device and receives it on a
// socket.
func TestDeviceTraffic(t *testing.T) {
	enterNetns(t)
	const name = "tgre0"
	dev := createTUN(t, name, 1400)
	local, peer := netip.MustParseAddr("10.255.0.1"), netip.MustParseAddr("10.255.0.2")
	undo, err := Configure(name, LinkConfig{
		MTU:       1400,
		Addresses: []Address{{Prefix: netip.PrefixFrom(local, 30), Peer: peer}},
		Routes:    []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16")},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { undo() })

	sock, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	sockAddr := sock.LocalAddr().(*net.UDPAddr).AddrPort()

	// Out of the host, into the tunnel.
	dst := netip.MustParseAddrPort("10.99.0.5:4242")
	payload := []byte("greipsec tun test: into the tunnel")
	if _, err := sock.WriteToUDPAddrPort(payload, dst); err != nil {
		t.Fatal(err)
	}
	pkt := readUDP(t, dev, dst)
	checkIPv4UDP(t, pkt, sockAddr, dst, payload)

	// Out of the tunnel, into the host.
	from := netip.AddrPortFrom(peer, 5353)
	reply := []byte("greipsec tun test: out of the tunnel")
	buf := make([]byte, testOffset, testOffset+1400)
	buf = appendIPv4UDP(buf, from, sockAddr, reply)
	if n, err := dev.Write([][]byte{buf}, testOffset); err != nil || n == 0 {
		t.Fatalf("Write to TUN = %d, %v", n, err)
	}
	sock.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 2000)
	n, src, err := sock.ReadFromUDPAddrPort(got)
	if err != nil {
		t.Fatalf("receive the datagram written to the TUN: %v", err)
	}
	if src != from || !bytes.Equal(got[:n], reply) {
		t.Errorf("received %q from %s, want %q from %s", got[:n], src, reply, from)
	}
}

// readUDP reads from dev, with batches of BatchSize() 65535-byte buffers,
// until it sees a UDP datagram to dst, and returns that packet. Other
// packets the kernel sends into the tunnel are skipped.
func readUDP(t *testing.T, dev Device, dst netip.AddrPort) []byte {
	t.Helper()
	found := make(chan []byte, 1)
	failed := make(chan error, 1)
	go func() {
		bufs := make([][]byte, dev.BatchSize())
		for i := range bufs {
			bufs[i] = make([]byte, testOffset+65535)
		}
		sizes := make([]int, len(bufs))
		for {
			n, err := dev.Read(bufs, sizes, testOffset)
			if err != nil {
				failed <- err
				return
			}
			for i := range n {
				p := bufs[i][testOffset : testOffset+sizes[i]]
				if len(p) >= 28 && p[0]>>4 == 4 && p[9] == unix.IPPROTO_UDP &&
					netip.AddrFrom4([4]byte(p[16:20])) == dst.Addr() &&
					binary.BigEndian.Uint16(p[22:24]) == dst.Port() {
					found <- bytes.Clone(p)
					return
				}
			}
		}
	}()
	select {
	case p := <-found:
		return p
	case err := <-failed:
		t.Fatalf("Read from TUN: %v", err)
	case <-time.After(5 * time.Second):
		dev.Close()
		t.Fatalf("no datagram to %s read from the TUN in 5s", dst)
	}
	return nil
}

// checkIPv4UDP checks that pkt is one well-formed IPv4 packet carrying a UDP
// datagram from src to dst with payload, with valid checksums.
func checkIPv4UDP(t *testing.T, pkt []byte, src, dst netip.AddrPort, payload []byte) {
	t.Helper()
	if len(pkt) < 28 || pkt[0] != 0x45 {
		t.Fatalf("not an IPv4 packet without options: % x", pkt[:min(len(pkt), 20)])
	}
	if tl := int(binary.BigEndian.Uint16(pkt[2:4])); tl != len(pkt) {
		t.Errorf("total length %d, read %d bytes", tl, len(pkt))
	}
	if s := checksum(pkt[:20], 0); s != 0 {
		t.Errorf("IPv4 header checksum does not verify (sum %#04x)", s)
	}
	if pkt[9] != unix.IPPROTO_UDP {
		t.Errorf("protocol %d, want UDP", pkt[9])
	}
	gotSrc := netip.AddrPortFrom(netip.AddrFrom4([4]byte(pkt[12:16])), binary.BigEndian.Uint16(pkt[20:22]))
	gotDst := netip.AddrPortFrom(netip.AddrFrom4([4]byte(pkt[16:20])), binary.BigEndian.Uint16(pkt[22:24]))
	if gotSrc != src || gotDst != dst {
		t.Errorf("datagram %s -> %s, want %s -> %s", gotSrc, gotDst, src, dst)
	}
	udp := pkt[20:]
	if ul := int(binary.BigEndian.Uint16(udp[4:6])); ul != len(udp) {
		t.Errorf("UDP length %d, datagram is %d bytes", ul, len(udp))
	}
	if !bytes.Equal(udp[8:], payload) {
		t.Errorf("payload %q, want %q", udp[8:], payload)
	}
	if binary.BigEndian.Uint16(udp[6:8]) != 0 {
		if s := checksum(udp, pseudoHeaderSum(pkt[12:16], pkt[16:20], len(udp))); s != 0 {
			t.Errorf("UDP checksum does not verify (sum %#04x)", s)
		}
	}
}

// appendIPv4UDP appends to b an IPv4 packet carrying a UDP datagram from src
// to dst with payload, with both checksums computed.
func appendIPv4UDP(b []byte, src, dst netip.AddrPort, payload []byte) []byte {
	start := len(b)
	total := 20 + 8 + len(payload)
	b = append(b, 0x45, 0) // version 4, IHL 5; TOS
	b = binary.BigEndian.AppendUint16(b, uint16(total))
	b = append(b, 0, 0, 0x40, 0, 64, unix.IPPROTO_UDP, 0, 0) // ID; DF; TTL; protocol; checksum
	b = append(b, src.Addr().AsSlice()...)
	b = append(b, dst.Addr().AsSlice()...)
	ip := b[start:]
	binary.BigEndian.PutUint16(ip[10:12], checksum(ip[:20], 0))

	b = binary.BigEndian.AppendUint16(b, src.Port())
	b = binary.BigEndian.AppendUint16(b, dst.Port())
	b = binary.BigEndian.AppendUint16(b, uint16(8+len(payload)))
	b = append(b, 0, 0)
	b = append(b, payload...)
	udp := b[start+20:]
	sum := checksum(udp, pseudoHeaderSum(src.Addr().AsSlice(), dst.Addr().AsSlice(), len(udp)))
	if sum == 0 {
		sum = 0xFFFF // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(udp[6:8], sum)
	return b
}

// pseudoHeaderSum is the running sum of the IPv4 pseudo-header for UDP
// (RFC 768).
func pseudoHeaderSum(src, dst []byte, length int) uint32 {
	var sum uint32
	for _, a := range [][]byte{src, dst} {
		sum += uint32(binary.BigEndian.Uint16(a[0:2])) + uint32(binary.BigEndian.Uint16(a[2:4]))
	}
	return sum + unix.IPPROTO_UDP + uint32(length)
}

// checksum returns the Internet checksum (RFC 1071) of b, starting from the
// running sum initial: the complement of the folded one's complement sum.
// Over data that includes a correct checksum it returns 0.
func checksum(b []byte, initial uint32) uint16 {
	sum := initial
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xFFFF {
		sum = sum>>16 + sum&0xFFFF
	}
	return ^uint16(sum)
}

// TestCheckConfig checks what Configure rejects before touching anything,
// and the netlink form of the addresses it accepts. It needs no privileges.
func TestCheckConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  LinkConfig
		want string
	}{
		{LinkConfig{MTU: -1}, "tun: MTU -1 for tgre0 is negative"},
		{LinkConfig{Addresses: []Address{{}}}, "tun: address 0 for tgre0 is not a valid prefix"},
		{LinkConfig{Addresses: []Address{{Prefix: netip.MustParsePrefix("::ffff:10.0.0.1/128")}}},
			"tun: address ::ffff:10.0.0.1/128 for tgre0 is IPv4-mapped IPv6; write it as IPv4"},
		{LinkConfig{Addresses: []Address{{Prefix: netip.MustParsePrefix("10.0.0.1/30"), Peer: netip.MustParseAddr("fd00::2")}}},
			"tun: address 10.0.0.1/30 peer fd00::2 for tgre0: peer is not an address of the same family"},
		{LinkConfig{Routes: []netip.Prefix{{}}}, "tun: route 0 for tgre0 is not a valid prefix"},
	} {
		_, _, err := checkConfig("tgre0", tc.cfg)
		if err == nil || err.Error() != tc.want {
			t.Errorf("checkConfig(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}

	addrs, routes, err := checkConfig("tgre0", LinkConfig{
		MTU: 1400,
		Addresses: []Address{
			{Prefix: netip.MustParsePrefix("10.255.0.1/30"), Peer: netip.MustParseAddr("10.255.0.2")},
			{Prefix: netip.MustParsePrefix("fd00::1/64")},
		},
		Routes: []netip.Prefix{netip.MustParsePrefix("10.99.1.2/16")},
	})
	if err != nil {
		t.Fatal(err)
	}
	// As `ip addr add 10.255.0.1 peer 10.255.0.2/30`: IFA_LOCAL is the
	// local address and the prefix length goes with the peer.
	p2p := addrs[0]
	if p2p.IPNet.String() != "10.255.0.1/30" || p2p.Peer == nil || p2p.Peer.String() != "10.255.0.2/30" ||
		!p2p.Broadcast.Equal(net.IPv4zero) || p2p.Flags != 0 {
		t.Errorf("point-to-point address = %+v (peer %v), want local 10.255.0.1, peer 10.255.0.2/30, no broadcast", p2p, p2p.Peer)
	}
	if v6 := addrs[1]; v6.IPNet.String() != "fd00::1/64" || v6.Peer != nil || v6.Flags != unix.IFA_F_NODAD {
		t.Errorf("IPv6 address = %+v, want fd00::1/64 with IFA_F_NODAD", v6)
	}
	if r := routes[0]; r.Dst.String() != "10.99.0.0/16" || r.Scope != netlink.SCOPE_LINK || r.Gw != nil {
		t.Errorf("route = %v, want 10.99.0.0/16 scope link without gateway", r)
	}
}

// ipv6Within reads from dev for d and returns the IPv6 packets the kernel
// sent into it (their first 48 bytes), and every read error but the one
// that closing dev at the end causes.
func ipv6Within(t *testing.T, dev Device, d time.Duration) [][]byte {
	t.Helper()
	var (
		got   [][]byte
		done  = make(chan error, 1)
		timer = time.AfterFunc(d, func() { dev.Close() })
	)
	defer timer.Stop()
	go func() {
		bufs := make([][]byte, dev.BatchSize())
		for i := range bufs {
			bufs[i] = make([]byte, testOffset+65535)
		}
		sizes := make([]int, len(bufs))
		for {
			n, err := dev.Read(bufs, sizes, testOffset)
			if err != nil {
				done <- err
				return
			}
			for i := range n {
				if p := bufs[i][testOffset : testOffset+sizes[i]]; len(p) > 0 && p[0]>>4 == 6 {
					got = append(got, bytes.Clone(p[:min(len(p), 48)]))
				}
			}
		}
	}()
	<-done
	return got
}

// TestConfigureIPv4Only checks that an interface given only IPv4 addresses
// and routes has IPv6 switched off: no link-local address, disable_ipv6 set,
// and nothing IPv6 (router solicitations, MLD reports) written into the
// tunnel in the seconds after it comes up. Without the fix the kernel sends
// an MLD report at once and a router solicitation from fe80:: within about
// two seconds (issue 8).
func TestConfigureIPv4Only(t *testing.T) {
	enterNetns(t)
	const name = "tv4only"
	dev := createTUN(t, name, 1400)
	undo, err := Configure(name, LinkConfig{
		Addresses: []Address{{Prefix: netip.MustParsePrefix("10.255.0.1/30")}},
		Routes:    []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16")},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer undo()
	link, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 0 {
		t.Errorf("IPv6 addresses on an IPv4-only interface: %v", addrs)
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + name + "/disable_ipv6"); err != nil || strings.TrimSpace(string(b)) != "1" {
		t.Errorf("disable_ipv6 = %q, %v; want 1", b, err)
	}
	if pkts := ipv6Within(t, dev, 4*time.Second); len(pkts) > 0 {
		t.Errorf("%d IPv6 packets written into an IPv4-only tunnel, the first: % x", len(pkts), pkts[0])
	}
}

// TestConfigureDualStack checks that an interface with an IPv6 address
// keeps IPv6: the switch-off is only for interfaces without any.
func TestConfigureDualStack(t *testing.T) {
	enterNetns(t)
	const name = "tdual"
	createTUN(t, name, 1400)
	undo, err := Configure(name, LinkConfig{
		Addresses: []Address{{Prefix: netip.MustParsePrefix("10.255.0.1/30")}},
		Routes:    []netip.Prefix{netip.MustParsePrefix("fd00:99::/48")},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer undo()
	if b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + name + "/disable_ipv6"); err != nil || strings.TrimSpace(string(b)) != "0" {
		t.Errorf("disable_ipv6 = %q, %v; want 0 with an IPv6 route", b, err)
	}
}

// TestSetCarrier turns the carrier of a configured TUN device off and on:
// off, the interface is operationally down and the kernel ignores the route
// through it (ignore_routes_with_linkdown), so that another path is taken;
// on again, the same route is used, without being added again.
func TestSetCarrier(t *testing.T) {
	enterNetns(t)
	const name = "tcarrier"
	dev := createTUN(t, name, 1400)
	dst := netip.MustParseAddr("10.99.1.1")
	undo, err := Configure(name, LinkConfig{
		Addresses: []Address{{Prefix: netip.MustParsePrefix("10.255.0.1/30")}},
		Routes:    []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16")},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer undo()
	state := func() (netlink.LinkOperState, bool) {
		link, err := netlink.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		routes, err := netlink.RouteGet(dst.AsSlice())
		return link.Attrs().OperState, err == nil && len(routes) == 1 && routes[0].LinkIndex == link.Attrs().Index
	}
	for _, up := range []bool{false, true, false} {
		if err := SetCarrier(dev, up); err != nil {
			t.Fatal(err)
		}
		var oper netlink.LinkOperState
		var routed bool
		if !waitFor(3*time.Second, func() bool {
			oper, routed = state()
			return (oper == netlink.OperUp || oper == netlink.OperUnknown) == up && routed == up
		}) {
			t.Errorf("carrier %v: operational state %s, route to %s through %s: %v", up, oper, dst, name, routed)
		}
	}
	if err := SetCarrier(NewMemory("mem0", 1400, 1), true); err == nil {
		t.Error("SetCarrier on an in-memory device: no error")
	}
}

func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
