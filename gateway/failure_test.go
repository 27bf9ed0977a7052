package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/greipsec/greipsec/gateway/config"
	"github.com/greipsec/greipsec/ikev2"
)

// TestStartupFailure: a start-up that fails after the dataplane and the
// first tunnel exist (the second tunnel's TUN device cannot be created, as
// without CAP_NET_ADMIN or /dev/net/tun) returns one error line with what
// to do, and takes down what it built: no panic (the nil gateway the old
// deferred cleanup of cmd/greipsec/up.go dereferenced), the first tunnel's
// device closed and its configuration undone, the IKE socket closed.
func TestStartupFailure(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		hint string
	}{
		{"no permission", &os.PathError{Op: "open", Path: "/dev/net/tun", Err: syscall.EPERM},
			"run as root, or give the container --cap-add NET_ADMIN --device /dev/net/tun"},
		{"no device", errors.New(`CreateTUN("gre1") failed; /dev/net/tun does not exist`),
			"load the tun module (modprobe tun), or give the container --device /dev/net/tun"},
		{"name taken", syscall.EBUSY, "an interface of that name exists already"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPair()
			s := p.a
			var undone []string
			inner := s.opts.Inner
			s.opts.Inner = func(tn *config.Tunnel, mtu int) (Inner, error) {
				if tn.Dataplane.Name == "m1" {
					return Inner{}, fmt.Errorf("create TUN device %s: %w", tn.Dataplane.Interface, tc.err)
				}
				in, err := inner(tn, mtu)
				in.Undo = func() error { undone = append(undone, tn.Dataplane.Name); return nil }
				return in, err
			}
			cfg, err := s.parse(t, ikeConf(1, 2, "active", "")+manualConf("m1", 1, 2, 0x1001))
			if err != nil {
				t.Fatal(err)
			}
			gw, err := New(cfg, s.opts)
			if gw != nil || err == nil {
				t.Fatalf("New = %v, %v; want an error", gw, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, `tunnel "m1": create TUN device m1: `) || !strings.Contains(msg, ": "+tc.hint) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming the tunnel and the device, then %q", msg, tc.hint)
			}
			if _, err := s.tun("gre0").Read(make([][]byte, 1), make([]int, 1), 0); err == nil {
				t.Error("the first tunnel's device is still open")
			}
			if len(undone) != 1 || undone[0] != "gre0" {
				t.Errorf("configuration undone for %v, want [gre0]", undone)
			}
			if l := p.hub.listening(); len(l) != 0 {
				t.Errorf("IKE sockets still open: %v", l)
			}
		})
	}
}

// TestHints: the advice for the failures an operator meets.
func TestHints(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("dataplane: tunnel \"gre0\": open esp socket on 192.0.2.1: %w", syscall.EPERM), "needs CAP_NET_RAW"},
		{fmt.Errorf("IKE: listen on 192.0.2.1:500: %w", syscall.EACCES), "CAP_NET_BIND_SERVICE"},
		{fmt.Errorf("IKE: listen on 192.0.2.9:500: %w", syscall.EADDRNOTAVAIL), "check local in the configuration"},
		{fmt.Errorf("IKE: listen on 192.0.2.1:500: %w", syscall.EADDRINUSE), "another IKE daemon"},
		{fmt.Errorf("configure TUN device gre0: tun: add route 10.2.0.0/24 dev gre0: %w", syscall.EEXIST), "exists already on this host"},
	} {
		if got := withHint(tc.err).Error(); !strings.Contains(got, tc.want) || !errors.Is(withHint(tc.err), tc.err) {
			t.Errorf("%v: got %q, want it to contain %q", tc.err, got, tc.want)
		}
	}
	plain := errors.New("something else")
	if withHint(plain) != plain {
		t.Error("an error with no advice was changed")
	}
}

// TestNATRewritesIKEPort: B is behind a NAT that rewrites its IKE source
// port 500 to 40500. A, the responder, must answer from its port 500 to
// port 40500 (RFC 7296 §2.11); it used to try the ESP-in-UDP socket for
// "port 500" and fail ("no UDP socket on port 500"), so the tunnel never
// came up. Both sides then see the NAT and move to port 4500.
func TestNATRewritesIKEPort(t *testing.T) {
	p := newTestPair()
	p.hub.natPort[outerB] = 40500
	a, b := upPair(t, p, ikeConf(1, 2, "passive", ""), ikeConf(2, 1, "active", ""))
	if a.IKE.NAT != "peer" || b.IKE.NAT != "local" {
		t.Errorf("NAT seen: A %q, B %q; want peer and local", a.IKE.NAT, b.IKE.NAT)
	}
	if a.IKE.PeerEndpoint != "192.0.2.2:4500" || a.IKE.LocalEndpoint != "192.0.2.1:4500" || !a.ChildSAs[0].UDPEncap {
		t.Errorf("A's IKE endpoints %s -> %s, Child SA %s", a.IKE.LocalEndpoint, a.IKE.PeerEndpoint, jsonOf(a.ChildSAs[0]))
	}
	if st := p.a.gw.Status(); st.IKEDrops.SendErrors != 0 {
		t.Errorf("A failed to send %d IKE datagrams", st.IKEDrops.SendErrors)
	}
	sendThrough(t, p.a.tun("gre0"), p.b.tun("gre0"), 10)
	sendThrough(t, p.b.tun("gre0"), p.a.tun("gre0"), 10)
}

// TestUnknownPeerLogging: a flood of IKE messages from addresses that are
// no tunnel's peer is counted and logged as one summary line, whatever the
// log level; it used to log one debug line per message.
func TestUnknownPeerLogging(t *testing.T) {
	p := newTestPair()
	p.a.start(t, ikeConf(1, 2, "passive", ""))
	before := strings.Count(p.a.log.String(), "\n")
	msg := (&ikev2.Message{Header: ikev2.Header{SPIi: 1, Exchange: ikev2.ExchangeIKESAInit, Flags: ikev2.FlagInitiator}}).Encode(nil)
	const n = 5000
	for i := range n {
		from := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), 500)
		p.hub.inject(from, netip.AddrPortFrom(outerA, 500), msg)
	}
	gw := p.a.gw
	if !waitFor(5*time.Second, func() bool { return gw.Status().IKEDrops.UnknownPeer == n }) {
		t.Fatalf("%d of %d messages from unknown peers counted", gw.Status().IKEDrops.UnknownPeer, n)
	}
	gw.ike.unknown.flush(gw.log, slog.LevelWarn)
	log := p.a.log.String()
	if lines := strings.Count(log, "\n") - before; lines != 1 {
		t.Errorf("%d log lines for %d messages from unknown peers, want 1 summary:\n%s", lines, n, log)
	}
	if !strings.Contains(log, `level=WARN msg="dropped IKE messages from addresses that are no tunnel's peer" count=5000 interval=10s last_from=198.51.19.135:500`) {
		t.Errorf("no summary line in:\n%s", log)
	}
}

// TestTraceLimit: per-message debug lines are limited to the burst, then
// the rate; the next line allowed reports how many were suppressed.
func TestTraceLimit(t *testing.T) {
	var l traceLimit
	now := time.Unix(0, 0)
	allowed := 0
	for range 1000 {
		if ok, _ := l.allow(now); ok {
			allowed++
		}
	}
	if allowed != traceBurst {
		t.Errorf("%d lines allowed at once, want %d", allowed, traceBurst)
	}
	ok, suppressed := l.allow(now.Add(time.Second))
	if !ok || suppressed != 1000-traceBurst {
		t.Errorf("a second later: allowed %v, suppressed %d, want %d", ok, suppressed, 1000-traceBurst)
	}
}

// TestMetrics scrapes the metrics handler of a pair during traffic: the
// text parses as the Prometheus exposition format, the counters match the
// traffic, and /healthz and /readyz answer.
func TestMetrics(t *testing.T) {
	p := newTestPair()
	upPair(t, p, ikeConf(1, 2, "active", ""), ikeConf(2, 1, "passive", "")+manualConf("m1", 2, 1, 0x1001))
	sendThrough(t, p.a.tun("gre0"), p.b.tun("gre0"), 25)
	srv := httptest.NewServer(p.b.gw.MetricsHandler())
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, text := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	// The legacy scheme: names as Prometheus before UTF-8, what promtool
	// and older servers accept.
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(bytes.NewBufferString(text))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, text)
	}
	for _, want := range []string{
		`greipsec_tunnel_rx_packets_total{tunnel="gre0"} 25`,
		`greipsec_tunnel_rx_packets_total{tunnel="m1"} 0`,
		`greipsec_ike_sa_up{tunnel="gre0"} 1`,
		`greipsec_ike_sa_state{state="ESTABLISHED",tunnel="gre0"} 1`,
		`greipsec_ike_sa_state{state="CONNECTING",tunnel="gre0"} 0`,
		`greipsec_child_sas{tunnel="gre0"} 1`,
		`greipsec_rekeys_total{sa="child",tunnel="gre0"} 0`,
		`greipsec_tunnel_dropped_packets_total{reason="replay",tunnel="gre0"} 0`,
		`greipsec_tunnel_info{interface="m1",keying="manual",mode="gre-transport",transport="udp",tunnel="m1"} 1`,
		`greipsec_device_dropped_packets_total{reason="unknown_spi"} 0`,
		`greipsec_ike_dropped_messages_total{reason="unknown_peer"} 0`,
		`greipsec_ready 1`,
		`# TYPE greipsec_tunnel_tx_bytes_total counter`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if _, ok := families["greipsec_build_info"]; !ok {
		t.Error("no greipsec_build_info")
	}
	if code, body := get("/healthz"); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz: %d", code)
	}
	p.b.gw.Close()
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("/readyz after Close: %d, want 503", code)
	}
	if code, _ := get("/healthz"); code != 503 {
		t.Errorf("/healthz after Close: %d, want 503", code)
	}
}
