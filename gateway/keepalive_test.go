package gateway

import (
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/greipsec/greipsec/gateway/config"
)

// TestGREKeepalives: A sends GRE keepalives every second ([tunnel.gre]
// keepalive = "1s", keepalive-retries = 2) and B, configured without them,
// reflects them inside the ESP SA, as a Cisco or OpenBSD peer would. When B
// stops, A counts the tunnel down after two intervals without a reply: in
// status, in the metrics and by turning its interface's carrier off; when B
// is back, up again, carrier on.
func TestGREKeepalives(t *testing.T) {
	p := newTestPair()
	var (
		mu      sync.Mutex
		carrier []bool // what A's SetCarrier was asked, in order
	)
	inner := p.a.opts.Inner
	p.a.opts.Inner = func(c *config.Tunnel, mtu int) (Inner, error) {
		in, err := inner(c, mtu)
		in.SetCarrier = func(up bool) error {
			mu.Lock()
			defer mu.Unlock()
			carrier = append(carrier, up)
			return nil
		}
		return in, err
	}
	lastCarrier := func() (bool, int) {
		mu.Lock()
		defer mu.Unlock()
		if len(carrier) == 0 {
			return true, 0
		}
		return carrier[len(carrier)-1], len(carrier)
	}
	confA := strings.Replace(manualConf("gre0", 1, 2, 0x2001), "[tunnel.gre]\n", "[tunnel.gre]\nkeepalive = \"1s\"\nkeepalive-retries = 2\n", 1)
	confB := manualConf("gre0", 2, 1, 0x2001)
	p.a.start(t, confA)
	p.b.start(t, confB)

	status := func(s *testSide) *KeepaliveStatus {
		ts, err := s.gw.TunnelStatus("gre0")
		if err != nil || ts.Keepalive == nil {
			t.Fatalf("status: %v, keepalive %v", err, ts.Keepalive)
		}
		return ts.Keepalive
	}
	if !waitFor(10*time.Second, func() bool { k := status(p.a); return k.Replies >= 2 && k.Up }) {
		t.Fatalf("A: no replies to its keepalives: %+v; B: %+v", status(p.a), status(p.b))
	}
	if k := status(p.b); k.Reflected < 2 || k.Sent != 0 || k.IntervalSeconds != 0 {
		t.Errorf("B: %+v, want at least 2 reflected and none sent", k)
	}
	if k := status(p.a); k.IntervalSeconds != 1 || k.Retries != 2 || k.Reflected != 0 {
		t.Errorf("A: %+v", k)
	}
	if up, n := lastCarrier(); !up || n != 0 {
		t.Errorf("A's carrier set %d times, last %v, while keepalives were answered", n, up)
	}

	// B stops answering.
	p.b.gw.Close()
	if !waitFor(10*time.Second, func() bool { return !status(p.a).Up }) {
		t.Fatalf("A still counts the tunnel up 10 s after B stopped: %+v", status(p.a))
	}
	if up, _ := lastCarrier(); up {
		t.Error("A's carrier is on with its keepalives unanswered")
	}
	if !strings.Contains(p.a.log.String(), "GRE keepalives not answered: tunnel down") {
		t.Error("no log line says the tunnel is down")
	}
	metrics := scrape(t, p.a.gw)
	if !strings.Contains(metrics, `greipsec_gre_keepalive_up{tunnel="gre0"} 0`) {
		t.Errorf("metrics do not say the keepalives are down:\n%s", grepLines(metrics, "keepalive"))
	}

	// B is back: A's keepalives are answered again.
	p.b.start(t, confB)
	if !waitFor(10*time.Second, func() bool { return status(p.a).Up }) {
		t.Fatalf("A does not count the tunnel up again after B's return: %+v", status(p.a))
	}
	if up, n := lastCarrier(); !up || n != 2 {
		t.Errorf("A's carrier set %d times, last %v; want off then on", n, up)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// scrape returns gw's metrics as /metrics serves them.
func scrape(t *testing.T, gw *Gateway) string {
	t.Helper()
	rec := httptest.NewRecorder()
	gw.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}
