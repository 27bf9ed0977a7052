package link

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
)

var netnsSeq atomic.Uint32

// testNetns creates a network namespace, brings its loopback up with the
// extra addresses addrs (CIDR) and MTU mtu (0: unchanged), and runs setup
// inside it on a locked OS thread. Sockets setup opens stay in the
// namespace. The namespace is deleted when the test ends. It skips the test
// unless run as root. It returns the namespace's name.
func testNetns(t *testing.T, addrs []string, mtu int, setup func() error) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: raw ESP tests need root (a network namespace and CAP_NET_RAW)")
	}
	name := fmt.Sprintf("greipsec-link-%d-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6, netnsSeq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})

	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		ns, err := netns.GetFromName(name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		err = func() error {
			lo, err := netlink.LinkByName("lo")
			if err != nil {
				return err
			}
			if mtu != 0 {
				if err := netlink.LinkSetMTU(lo, mtu); err != nil {
					return err
				}
			}
			if err := netlink.LinkSetUp(lo); err != nil {
				return err
			}
			for _, a := range addrs {
				addr, err := netlink.ParseAddr(a)
				if err != nil {
					return err
				}
				addr.Flags = unix.IFA_F_NODAD
				if err := netlink.AddrAdd(lo, addr); err != nil {
					return fmt.Errorf("add %s: %w", a, err)
				}
			}
			// The kernel adds the local route of a new IPv6 address a
			// moment later; until then packets to it are dropped.
			for _, a := range addrs {
				if err := waitLocal(netip.MustParsePrefix(a).Addr()); err != nil {
					return err
				}
			}
			return setup()
		}()
		if e := netns.Set(orig); e != nil {
			// This thread is stuck in the test namespace: keep it
			// locked, so that it exits with the goroutine.
			errc <- errors.Join(err, e)
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return name
}

// waitLocal waits until the kernel routes addr as a local address.
func waitLocal(addr netip.Addr) error {
	for range 200 {
		routes, err := netlink.RouteGet(addr.AsSlice())
		if err == nil && len(routes) > 0 && routes[0].Type == unix.RTN_LOCAL {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("%v did not become a local address", addr)
}

// openRaw opens a raw ESP Bind on local (inside a namespace, from setup),
// checks what Open reports, and closes it when the test ends.
func openRaw(t *testing.T, local string, wantFns ...string) (*rawBind, []conn.ReceiveFunc, error) {
	var addr netip.Addr
	if local != "" {
		addr = netip.MustParseAddr(local)
	}
	b := NewRawESP(addr).(*rawBind)
	fns, port, err := b.Open(4500)
	if err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() { b.Close() })
	if port != 0 {
		return nil, nil, fmt.Errorf("Open on %s: port %d, want 0", local, port)
	}
	var names []string
	for _, fn := range fns {
		names = append(names, fn.PrettyName())
	}
	if fmt.Sprint(names) != fmt.Sprint(wantFns) {
		return nil, nil, fmt.Errorf("Open on %s: ReceiveFuncs %v, want %v", local, names, wantFns)
	}
	return b, fns, nil
}

// receiveN receives until want packets of non-zero size have arrived, and
// returns them and their endpoints. It fails the test after 10 seconds.
func receiveN(t *testing.T, b conn.Bind, fn conn.ReceiveFunc, bufSize, want int) ([][]byte, []conn.Endpoint) {
	t.Helper()
	timer := time.AfterFunc(10*time.Second, func() { b.Close() })
	defer timer.Stop()
	bufs, sizes, eps := buffers(b.BatchSize(), bufSize)
	var got [][]byte
	var from []conn.Endpoint
	for len(got) < want {
		n, err := fn(bufs, sizes, eps)
		if err != nil {
			t.Fatalf("after %d of %d packets: %v", len(got), want, err)
		}
		for i := range n {
			if sizes[i] == 0 {
				t.Errorf("packet %d dropped", len(got))
				continue
			}
			got = append(got, bytes.Clone(bufs[i][:sizes[i]]))
			from = append(from, eps[i])
		}
	}
	return got, from
}

// fakeESP returns n fake ESP packets of assorted sizes.
func fakeESP(n int) [][]byte {
	pkts := make([][]byte, n)
	for i := range pkts {
		pkts[i] = packet(0x1000+uint32(i), uint32(i)+1, 8+(i*97)%1400)
	}
	return pkts
}

// checkReceived checks that got are want, in order, all from src, and that
// they share one endpoint.
func checkReceived(t *testing.T, got [][]byte, from []conn.Endpoint, want [][]byte, src string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("received %d packets, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("packet %d: got %d bytes %x..., want %d bytes %x...", i,
				len(got[i]), got[i][:min(len(got[i]), 8)], len(want[i]), want[i][:8])
		}
		e, ok := from[i].(*Endpoint)
		if !ok || e.DstIP() != netip.MustParseAddr(src) || e.AddrPort().Port() != 0 {
			t.Errorf("packet %d: from %v, want %s", i, from[i], src)
		}
		if from[i] != from[0] {
			t.Errorf("packet %d: endpoint %p, packet 0: %p; want one cached endpoint", i, from[i], from[0])
		}
	}
}

func TestRawESP(t *testing.T) {
	for _, tc := range []struct {
		family     string
		addrs      []string
		a, b       string
		fns        []string
		wildcardAt string // a local address the wildcard Bind receives on
	}{
		{"IPv4", nil, "127.0.0.1", "127.0.0.2", []string{"v4"}, "127.0.0.3"},
		{"IPv4-mapped", nil, "::ffff:127.0.0.1", "::ffff:127.0.0.2", []string{"v4"}, "127.0.0.3"},
		{"IPv6", []string{"fd00::1/128", "fd00::2/128"}, "fd00::1", "fd00::2", []string{"v6"}, "::1"},
	} {
		t.Run(tc.family, func(t *testing.T) {
			var a, b *rawBind
			var recvB []conn.ReceiveFunc
			testNetns(t, tc.addrs, 0, func() (err error) {
				if a, _, err = openRaw(t, tc.a, tc.fns...); err != nil {
					return err
				}
				b, recvB, err = openRaw(t, tc.b, tc.fns...)
				return err
			})
			if got := b.BatchSize(); got != conn.IdealBatchSize {
				t.Errorf("BatchSize = %d, want %d", got, conn.IdealBatchSize)
			}
			want := fakeESP(100) // more than fit in one sendmmsg batch
			ep, err := a.ParseEndpoint(tc.b)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Send(want, ep); err != nil {
				t.Fatal(err)
			}
			got, from := receiveN(t, b, recvB[0], 2048, len(want))
			checkReceived(t, got, from, want, netip.MustParseAddr(tc.a).Unmap().String())

			// Back the other way, to the endpoint b received from.
			if err := b.Send(want[:3], from[0]); err != nil {
				t.Fatal(err)
			}
			a.mu.Lock()
			recvA := a.makeReceiveIPv4(a.ipv4)
			if a.ipv6 != nil {
				recvA = a.makeReceiveIPv6(a.ipv6)
			}
			a.mu.Unlock()
			got, from = receiveN(t, a, recvA, 2048, 3)
			checkReceived(t, got, from, want[:3], netip.MustParseAddr(tc.b).Unmap().String())

			// The other family has no socket.
			other := NewEndpoint(netip.MustParseAddr("2001:db8::1"))
			if netip.MustParseAddr(tc.a).Is6() && !netip.MustParseAddr(tc.a).Is4In6() {
				other = NewEndpoint(netip.MustParseAddr("192.0.2.1"))
			}
			if err := a.Send(want[:1], other); !errors.Is(err, syscall.EAFNOSUPPORT) {
				t.Errorf("Send to %v: %v, want EAFNOSUPPORT", other.DstIP(), err)
			}
		})
	}
}

// TestRawESPWildcard opens a Bind on every address: it has one ReceiveFunc
// per family and receives on each.
func TestRawESPWildcard(t *testing.T) {
	var all, a4, a6 *rawBind
	var fns []conn.ReceiveFunc
	testNetns(t, []string{"fd00::1/128"}, 0, func() (err error) {
		if all, fns, err = openRaw(t, "", "v4", "v6"); err != nil {
			return err
		}
		if a4, _, err = openRaw(t, "127.0.0.1", "v4"); err != nil {
			return err
		}
		a6, _, err = openRaw(t, "fd00::1", "v6")
		return err
	})
	want := fakeESP(5)
	if err := a4.Send(want, NewEndpoint(netip.MustParseAddr("127.0.0.9"))); err != nil {
		t.Fatal(err)
	}
	got, from := receiveN(t, all, fns[0], 2048, len(want))
	checkReceived(t, got, from, want, "127.0.0.1")
	if err := a6.Send(want, NewEndpoint(netip.MustParseAddr("::1"))); err != nil {
		t.Fatal(err)
	}
	got, from = receiveN(t, all, fns[1], 2048, len(want))
	checkReceived(t, got, from, want, "fd00::1")
}

// TestRawESPIPv4Options sends with an IPv4 option, so that the receiver
// must strip a 24-byte header.
func TestRawESPIPv4Options(t *testing.T) {
	var a, b *rawBind
	var recvB []conn.ReceiveFunc
	var plain *net.IPConn
	testNetns(t, nil, 0, func() (err error) {
		if a, _, err = openRaw(t, "127.0.0.1", "v4"); err != nil {
			return err
		}
		if b, recvB, err = openRaw(t, "127.0.0.2", "v4"); err != nil {
			return err
		}
		// A second raw socket on the same address gets a copy of each
		// packet, header included, to show that the option is there.
		pc, err := net.ListenPacket("ip4:50", "127.0.0.2")
		if err != nil {
			return err
		}
		plain = pc.(*net.IPConn)
		t.Cleanup(func() { plain.Close() })
		return nil
	})
	// Router Alert, RFC 2113 §2.1: type 148, length 4, value 0.
	routerAlert := []byte{148, 4, 0, 0}
	if err := a.ipv4.control(func(fd int) error {
		return unix.SetsockoptString(fd, unix.IPPROTO_IP, unix.IP_OPTIONS, string(routerAlert))
	}); err != nil {
		t.Fatalf("setsockopt IP_OPTIONS: %v", err)
	}
	want := fakeESP(4)
	if err := a.Send(want, NewEndpoint(netip.MustParseAddr("127.0.0.2"))); err != nil {
		t.Fatal(err)
	}
	got, from := receiveN(t, b, recvB[0], 2048, len(want))
	checkReceived(t, got, from, want, "127.0.0.1")

	plain.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 2048)
	n, _, _, _, err := plain.ReadMsgIP(buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ihl := int(buf[0]&0x0f) * 4; ihl != 24 || !bytes.Equal(buf[20:24], routerAlert) {
		t.Fatalf("packet on the wire has a %d-byte header %x, want 24 bytes ending in %x", ihl, buf[:ihl], routerAlert)
	}
	if !bytes.Equal(buf[24:n], want[0]) {
		t.Fatalf("packet on the wire carries %x..., want %x...", buf[24:32], want[0][:8])
	}
}

// TestRawESPReassembled sends ESP packets larger than the MTU: the kernel
// fragments them and reassembles them before raw delivery, so the receiver
// sees whole packets and never a fragment.
func TestRawESPReassembled(t *testing.T) {
	var a, b *rawBind
	var recvB []conn.ReceiveFunc
	name := testNetns(t, []string{"fd00::1/128", "fd00::2/128"}, 1280, func() (err error) {
		if a, _, err = openRaw(t, "", "v4", "v6"); err != nil {
			return err
		}
		b, recvB, err = openRaw(t, "", "v4", "v6")
		return err
	})
	if err := a.ipv4.control(func(fd int) error {
		return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DONT)
	}); err != nil {
		t.Fatalf("setsockopt IP_MTU_DISCOVER: %v", err)
	}
	if err := a.ipv6.control(func(fd int) error {
		return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DONT)
	}); err != nil {
		t.Fatalf("setsockopt IPV6_MTU_DISCOVER: %v", err)
	}
	want := [][]byte{packet(1, 1, 4000), packet(1, 2, 3000)}
	for i, dst := range []string{"127.0.0.1", "fd00::2"} {
		if err := a.Send(want, NewEndpoint(netip.MustParseAddr(dst))); err != nil {
			t.Fatal(err)
		}
		// Both Binds listen on every address; b is read, a's copies
		// are left alone. The source of a packet to a local address is
		// that address.
		got, from := receiveN(t, b, recvB[i], 8192, len(want))
		checkReceived(t, got, from, want, dst)
	}
	// The packets did travel as fragments.
	for _, c := range []struct{ file, counter string }{
		{"/proc/net/snmp", "ReasmOKs"},
		{"/proc/net/snmp6", "Ip6ReasmOKs"},
	} {
		if got := netnsCounter(t, name, c.file, c.counter); got != len(want) {
			t.Errorf("%s %s = %d, want %d", c.file, c.counter, got, len(want))
		}
	}
}

// netnsCounter returns a counter from /proc/net/snmp (where a line of
// names is followed by a line of values) or /proc/net/snmp6 (a name and
// a value per line) of the namespace name.
func netnsCounter(t *testing.T, name, file, counter string) int {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", name, "cat", file).Output()
	if err != nil {
		t.Fatalf("reading %s in %s: %v", file, name, err)
	}
	lines := strings.Split(string(out), "\n")
	for i, line := range lines {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == counter {
			v, _ := strconv.Atoi(f[1])
			return v
		}
		if i+1 < len(lines) && strings.HasPrefix(line, "Ip: ") {
			values := strings.Fields(lines[i+1])
			for j, k := range f {
				if k == counter && j < len(values) {
					v, _ := strconv.Atoi(values[j])
					return v
				}
			}
		}
	}
	t.Fatalf("no %s in %s", counter, file)
	return 0
}

// TestRawESPTruncated receives into buffers too small for some packets,
// which are dropped (size 0) rather than delivered cut short.
func TestRawESPTruncated(t *testing.T) {
	for _, tc := range []struct{ family, a, b, fn string }{
		{"IPv4", "127.0.0.1", "127.0.0.2", "v4"},
		{"IPv6", "fd00::1", "fd00::2", "v6"},
	} {
		t.Run(tc.family, func(t *testing.T) {
			var a, b *rawBind
			var recvB []conn.ReceiveFunc
			testNetns(t, []string{"fd00::1/128", "fd00::2/128"}, 0, func() (err error) {
				if a, _, err = openRaw(t, tc.a, tc.fn); err != nil {
					return err
				}
				b, recvB, err = openRaw(t, tc.b, tc.fn)
				return err
			})
			pkts := [][]byte{packet(1, 1, 100), packet(1, 2, 50), packet(1, 3, 51), packet(1, 4, 10)}
			if err := a.Send(pkts, NewEndpoint(netip.MustParseAddr(tc.b))); err != nil {
				t.Fatal(err)
			}
			timer := time.AfterFunc(10*time.Second, func() { b.Close() })
			defer timer.Stop()
			bufs, sizes, eps := buffers(conn.IdealBatchSize, 50)
			var got []int
			for len(got) < len(pkts) {
				n, err := recvB[0](bufs, sizes, eps)
				if err != nil {
					t.Fatal(err)
				}
				for i := range n {
					got = append(got, sizes[i])
					if sizes[i] != 0 && !bytes.Equal(bufs[i][:sizes[i]], pkts[len(got)-1]) {
						t.Errorf("packet %d corrupted", len(got)-1)
					}
					if (sizes[i] == 0) != (eps[i] == nil) {
						t.Errorf("packet %d: size %d with endpoint %v", len(got)-1, sizes[i], eps[i])
					}
				}
			}
			if want := []int{0, 50, 0, 10}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("sizes %v, want %v", got, want)
			}
		})
	}
}

func TestRawESPClose(t *testing.T) {
	var b *rawBind
	var fns []conn.ReceiveFunc
	testNetns(t, nil, 0, func() (err error) {
		b, fns, err = openRaw(t, "127.0.0.1", "v4")
		return err
	})
	if _, _, err := b.Open(0); !errors.Is(err, conn.ErrBindAlreadyOpen) {
		t.Errorf("second Open: %v, want ErrBindAlreadyOpen", err)
	}
	errc := make(chan error, 1)
	go func() {
		bufs, sizes, eps := buffers(conn.IdealBatchSize, 2048)
		_, err := fns[0](bufs, sizes, eps)
		errc <- err
	}()
	select {
	case err := <-errc:
		t.Fatalf("receive returned %v with nothing sent", err)
	case <-time.After(20 * time.Millisecond):
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("receive after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not unblock the ReceiveFunc")
	}
	bufs, sizes, eps := buffers(conn.IdealBatchSize, 2048)
	if _, err := fns[0](bufs, sizes, eps); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("receive on a closed Bind: %v, want net.ErrClosed", err)
	}
	if err := b.Send([][]byte{{1}}, NewEndpoint(netip.MustParseAddr("127.0.0.1"))); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Send on a closed Bind: %v, want net.ErrClosed", err)
	}
}

func TestRawESPSetMark(t *testing.T) {
	var b *rawBind
	testNetns(t, nil, 0, func() (err error) {
		b, _, err = openRaw(t, "127.0.0.1", "v4")
		return err
	})
	mark := func() int {
		t.Helper()
		var m int
		if err := b.ipv4.control(func(fd int) (err error) {
			m, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK)
			return err
		}); err != nil {
			t.Fatalf("getsockopt SO_MARK: %v", err)
		}
		return m
	}
	if err := b.SetMark(0x51); err != nil {
		t.Fatal(err)
	}
	if got := mark(); got != 0x51 {
		t.Errorf("SO_MARK = %#x, want 0x51", got)
	}
	// The mark outlives a Close and Open.
	b.Close()
	testNetns(t, nil, 0, func() error {
		_, _, err := b.Open(0)
		return err
	})
	if got := mark(); got != 0x51 {
		t.Errorf("SO_MARK after reopening = %#x, want 0x51", got)
	}
}

func TestRawESPAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("skipping: sync.Pool (here and in x/net) drops items at random under the race detector; run without -race")
	}
	for _, tc := range []struct{ family, a, b, fn string }{
		{"IPv4", "127.0.0.1", "127.0.0.2", "v4"},
		{"IPv6", "fd00::1", "fd00::2", "v6"},
	} {
		t.Run(tc.family, func(t *testing.T) {
			var a, b *rawBind
			var recvB []conn.ReceiveFunc
			testNetns(t, []string{"fd00::1/128", "fd00::2/128"}, 0, func() (err error) {
				if a, _, err = openRaw(t, tc.a, tc.fn); err != nil {
					return err
				}
				b, recvB, err = openRaw(t, tc.b, tc.fn)
				return err
			})
			send := fakeESP(64)
			ep := NewEndpoint(netip.MustParseAddr(tc.b))
			bufs, sizes, eps := buffers(conn.IdealBatchSize, 2048)
			var failed error
			roundTrip := func() {
				if err := a.Send(send, ep); err != nil {
					failed = err
					return
				}
				for got := 0; got < len(send); {
					n, err := recvB[0](bufs, sizes, eps)
					if err != nil {
						failed = err
						return
					}
					got += n
				}
			}
			timer := time.AfterFunc(20*time.Second, func() { a.Close(); b.Close() })
			defer timer.Stop()
			roundTrip() // fills the pools and the endpoint cache
			allocs := testing.AllocsPerRun(50, roundTrip)
			if failed != nil {
				t.Fatal(failed)
			}
			if allocs != 0 {
				t.Errorf("Send+receive of %d packets: %v allocations, want 0", len(send), allocs)
			}
		})
	}
}
