package gateway

import (
	"encoding/json"
	"net/http"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics: a Prometheus collector that reads a Status at each scrape, with
// the names and labels of the Prometheus conventions (a greipsec_ prefix,
// _total for counters, base units, a tunnel label, drop reasons and SA
// states as labels), and the HTTP handler that serves it with the probes
// containers use.

var (
	mTunnelInfo = prometheus.NewDesc("greipsec_tunnel_info",
		"A tunnel of the configuration, with how it is carried (always 1).",
		[]string{"tunnel", "interface", "mode", "transport", "keying"}, nil)
	mTxPackets = prometheus.NewDesc("greipsec_tunnel_tx_packets_total",
		"Inner packets sent into the tunnel (sealed and handed to the socket).", []string{"tunnel"}, nil)
	mTxBytes = prometheus.NewDesc("greipsec_tunnel_tx_bytes_total",
		"Bytes of the inner packets sent into the tunnel.", []string{"tunnel"}, nil)
	mRxPackets = prometheus.NewDesc("greipsec_tunnel_rx_packets_total",
		"Inner packets received from the tunnel and written to the inner device.", []string{"tunnel"}, nil)
	mRxBytes = prometheus.NewDesc("greipsec_tunnel_rx_bytes_total",
		"Bytes of the inner packets received from the tunnel.", []string{"tunnel"}, nil)
	mDrops = prometheus.NewDesc("greipsec_tunnel_dropped_packets_total",
		"Packets of a tunnel dropped, by reason (batches for send_errors, write_errors and read_errors).",
		[]string{"tunnel", "reason"}, nil)
	mMTU = prometheus.NewDesc("greipsec_tunnel_mtu_bytes",
		"The inner MTU of the tunnel.", []string{"tunnel"}, nil)
	mIKEUp = prometheus.NewDesc("greipsec_ike_sa_up",
		"1 if the tunnel's IKE SA is established (also while rekeying), else 0.", []string{"tunnel"}, nil)
	mIKEState = prometheus.NewDesc("greipsec_ike_sa_state",
		"The state of the tunnel's IKE SA: 1 for the current state, 0 for the others.", []string{"tunnel", "state"}, nil)
	mChildSAs = prometheus.NewDesc("greipsec_child_sas",
		"Child SAs (ESP SA pairs) installed for the tunnel: 1, or 2 for a few seconds after a rekey (the old inbound SA catches late packets).",
		[]string{"tunnel"}, nil)
	mEstablished = prometheus.NewDesc("greipsec_ike_sa_established_total",
		"IKE SAs established for the tunnel (rekeys not counted).", []string{"tunnel"}, nil)
	mDowns = prometheus.NewDesc("greipsec_ike_sa_down_total",
		"IKE SAs of the tunnel that went down: deleted, failed or timed out.", []string{"tunnel"}, nil)
	mRekeys = prometheus.NewDesc("greipsec_rekeys_total",
		"Rekeys of the tunnel's IKE SA (sa=\"ike\") and Child SA (sa=\"child\").", []string{"tunnel", "sa"}, nil)
	mInstallFailed = prometheus.NewDesc("greipsec_child_sa_install_failures_total",
		"Child SAs negotiated for the tunnel that the dataplane could not install.", []string{"tunnel"}, nil)
	mIKEEstablishedSeconds = prometheus.NewDesc("greipsec_ike_sa_established_seconds",
		"How long the tunnel's IKE SA has been established.", []string{"tunnel"}, nil)
	mDeviceDrops = prometheus.NewDesc("greipsec_device_dropped_packets_total",
		"Packets dropped before they reach a tunnel, by reason.", []string{"reason"}, nil)
	mKeepalives = prometheus.NewDesc("greipsec_nat_keepalives_received_total",
		"NAT keepalives received (RFC 3948).", nil, nil)
	mIKEDrops = prometheus.NewDesc("greipsec_ike_dropped_messages_total",
		"IKE messages dropped before their session, by reason; send_error counts datagrams that could not be sent.",
		[]string{"reason"}, nil)
	mGREKeepaliveUp = prometheus.NewDesc("greipsec_gre_keepalive_up",
		"0 once the peer has not answered GRE keepalives for keepalive-retries intervals, else 1 (GRE tunnels).", []string{"tunnel"}, nil)
	mGREKeepalives = prometheus.NewDesc("greipsec_gre_keepalives_total",
		"GRE keepalives: sent (ours), replies (to ours), reflected (the peer's, sent back), dropped (no buffer).", []string{"tunnel", "kind"}, nil)
	mReady = prometheus.NewDesc("greipsec_ready",
		"1 once every tunnel of the configuration is up and the gateway is not reloading or stopping.", nil, nil)
	mBuild = prometheus.NewDesc("greipsec_build_info",
		"The greipsec build (always 1).", []string{"version", "revision", "goversion"}, nil)
)

// ikeStates are the values of the state label of greipsec_ike_sa_state.
var ikeStates = []string{"DOWN", "HELD", "CONNECTING", "ESTABLISHED", "REKEYING", "UNKNOWN"}

// collector is the gateway's prometheus.Collector.
type collector struct{ g *Gateway }

// Collector returns a prometheus.Collector of the gateway's metrics, for a
// program that serves its own registry; MetricsHandler registers it.
func (g *Gateway) Collector() prometheus.Collector { return collector{g} }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mTunnelInfo, mTxPackets, mTxBytes, mRxPackets, mRxBytes, mDrops, mMTU,
		mIKEUp, mIKEState, mChildSAs, mEstablished, mDowns, mRekeys, mInstallFailed, mIKEEstablishedSeconds,
		mDeviceDrops, mKeepalives, mIKEDrops, mGREKeepaliveUp, mGREKeepalives, mReady, mBuild, mListenerConns, mListenerActive, mListenerDropped} {
		ch <- d
	}
	for _, d := range pathMTUDescs {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.g.Status()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, t := range st.Tunnels {
		gauge(mTunnelInfo, 1, t.Name, t.Interface, t.Mode, t.Transport, t.Keying)
		counter(mTxPackets, t.Traffic.TxPackets, t.Name)
		counter(mTxBytes, t.Traffic.TxBytes, t.Name)
		counter(mRxPackets, t.Traffic.RxPackets, t.Name)
		counter(mRxBytes, t.Traffic.RxBytes, t.Name)
		for _, reason := range append(append([]string{}, tunnelDropReasons...), saDropReasons...) {
			counter(mDrops, t.Drops[reason], t.Name, reason)
		}
		gauge(mMTU, float64(t.MTU), t.Name)
		collectPathMTU(t.Name, t.PathMTU, counter, gauge)
		gauge(mChildSAs, float64(len(t.ChildSAs)), t.Name)
		collectListeners(t.Name, t.Netstack, counter, gauge)
		if ka := t.Keepalive; ka != nil {
			up := 0.0
			if ka.Up {
				up = 1
			}
			gauge(mGREKeepaliveUp, up, t.Name)
			counter(mGREKeepalives, ka.Sent, t.Name, "sent")
			counter(mGREKeepalives, ka.Replies, t.Name, "replies")
			counter(mGREKeepalives, ka.Reflected, t.Name, "reflected")
			counter(mGREKeepalives, ka.Drops, t.Name, "dropped")
		}
		if t.IKE == nil {
			continue
		}
		up := 0.0
		if t.IKE.State == "ESTABLISHED" || t.IKE.State == "REKEYING" {
			up = 1
		}
		gauge(mIKEUp, up, t.Name)
		for _, s := range ikeStates {
			v := 0.0
			if t.IKE.State == s {
				v = 1
			}
			gauge(mIKEState, v, t.Name, s)
		}
		counter(mEstablished, t.IKE.Establishments, t.Name)
		counter(mDowns, t.IKE.Downs, t.Name)
		counter(mRekeys, t.IKE.Rekeys, t.Name, "ike")
		counter(mRekeys, t.IKE.ChildRekeys, t.Name, "child")
		counter(mInstallFailed, t.IKE.InstallFailed, t.Name)
		gauge(mIKEEstablishedSeconds, float64(t.IKE.EstablishedSeconds)*up, t.Name)
	}
	counter(mDeviceDrops, st.Device.UnknownSPI, "unknown_spi")
	counter(mDeviceDrops, st.Device.Malformed, "malformed")
	counter(mDeviceDrops, st.Device.ReceiveErrors, "receive_error")
	counter(mDeviceDrops, st.Device.NoBuffer, "no_buffer")
	counter(mKeepalives, st.Device.Keepalives)
	counter(mICMPReceived, st.Device.ICMPTooBig, "too_big")
	counter(mICMPReceived, st.Device.ICMPIgnored, "ignored")
	counter(mIKEDrops, st.IKEDrops.UnknownPeer, "unknown_peer")
	counter(mIKEDrops, st.IKEDrops.QueueFull, "queue_full")
	counter(mIKEDrops, st.IKEDrops.SendErrors, "send_error")
	ready := 0.0
	if st.Ready {
		ready = 1
	}
	gauge(mReady, ready)
	v, rev, gov := BuildInfo()
	gauge(mBuild, 1, v, rev, gov)
}

// BuildInfo returns the module version, the VCS revision (with "-dirty"
// when the tree had changes) and the Go version the binary was built
// with, from runtime/debug.ReadBuildInfo; "unknown" where it has none.
func BuildInfo() (version, revision, goVersion string) {
	version, revision, goVersion = "unknown", "unknown", "unknown"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	goVersion = bi.GoVersion
	if bi.Main.Version != "" {
		version = bi.Main.Version
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && revision != "unknown" {
		revision += "-dirty"
	}
	return
}

// MetricsHandler serves:
//
//	/metrics  the gateway's metrics and the Go runtime's and process's, in
//	          the Prometheus text format
//	/healthz  200 while the gateway runs (503 once it is closing)
//	/readyz   200 once every tunnel is up and while not reloading (Ready),
//	          else 503; both answer with a small JSON object
func (g *Gateway) MetricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(g.Collector(), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	probe := func(ok func() bool) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			status := "ok"
			if !ok() {
				status = "unavailable"
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			json.NewEncoder(w).Encode(map[string]string{"status": status})
		}
	}
	mux.Handle("GET /healthz", probe(func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return !g.closed
	}))
	mux.Handle("GET /readyz", probe(g.Ready))
	return mux
}
