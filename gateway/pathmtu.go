package gateway

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/greipsec/greipsec/dataplane"
)

// PathMTUStatus is what a tunnel knows of its outer path
// (dataplane/pathmtu.go).
type PathMTUStatus struct {
	Discovery  bool `json:"discovery"`  // pmtud: the path MTU follows ICMP from the path
	Configured int  `json:"configured"` // path-mtu: the most it uses, and all it uses without ICMP
	Current    int  `json:"current"`    // the path MTU in effect
	InnerMTU   int  `json:"inner_mtu"`  // the largest inner packet sent whole at Current
	// LearnedSeconds is how long ago Current went below Configured; absent
	// while it is not. The kernel forgets a learned value after 10 minutes
	// and the path is probed again.
	LearnedSeconds *int64 `json:"learned_seconds,omitempty"`
	Fragmentation  string `json:"fragmentation"` // before-encryption or after-encryption
	Changes        uint64 `json:"changes"`       // times Current changed
	// Packets too big for the path: answered with ICMP "fragmentation
	// needed" / "packet too big" (or not, over the rate limit), IPv4
	// without DF fragmented before encryption, and sent whole for the
	// kernel to fragment the outer packet (IPv6 up to 1280 bytes,
	// after-encryption).
	ICMPSent         uint64 `json:"icmp_sent"`
	ICMPRateLimited  uint64 `json:"icmp_rate_limited"`
	FragmentedBefore uint64 `json:"fragmented_before_encryption"`
	OuterFragmented  uint64 `json:"outer_fragmented"`
}

// pathMTUStatus reads a tunnel's PathMTUStatus.
func pathMTUStatus(t *dataplane.Tunnel, now time.Time) *PathMTUStatus {
	p := t.PathMTU()
	s := t.Stats()
	ps := &PathMTUStatus{
		Discovery:        p.Discovery,
		Configured:       p.Configured,
		Current:          p.Current,
		InnerMTU:         p.InnerMTU,
		Fragmentation:    t.Config().Fragmentation.String(),
		Changes:          s.PathMTUChanges.Load(),
		ICMPSent:         s.ICMPSent.Load(),
		ICMPRateLimited:  s.ICMPRateLimited.Load(),
		FragmentedBefore: s.FragmentedBefore.Load(),
		OuterFragmented:  s.OuterFragmented.Load(),
	}
	if !p.LearnedAt.IsZero() {
		age := int64(now.Sub(p.LearnedAt) / time.Second)
		ps.LearnedSeconds = &age
	}
	return ps
}

var (
	mPathMTU = prometheus.NewDesc("greipsec_tunnel_path_mtu_bytes",
		"The outer path MTU in effect: learned from ICMP, or the configured path-mtu.", []string{"tunnel"}, nil)
	mPathMTULearned = prometheus.NewDesc("greipsec_tunnel_path_mtu_learned_seconds",
		"How long ago the path MTU went below the configured path-mtu (0 while it is not).", []string{"tunnel"}, nil)
	mPathMTUICMP = prometheus.NewDesc("greipsec_tunnel_icmp_too_big_sent_total",
		"Inner packets too big for the path answered with ICMP fragmentation needed / packet too big.", []string{"tunnel"}, nil)
	mPathMTUFragmented = prometheus.NewDesc("greipsec_tunnel_fragmented_before_encryption_total",
		"IPv4 inner packets without DF fragmented before encryption to fit the path.", []string{"tunnel"}, nil)
	mPathMTUOuterFragmented = prometheus.NewDesc("greipsec_tunnel_outer_fragmented_total",
		"Inner packets sent larger than the path (IPv6 up to 1280 bytes, after-encryption): the kernel fragments the outer packet.", []string{"tunnel"}, nil)
	mICMPReceived = prometheus.NewDesc("greipsec_icmp_errors_received_total",
		"ICMP errors read from the raw ESP sockets' error queues: too_big for a tunnel's peer and SPI, ignored otherwise.", []string{"result"}, nil)
)

var pathMTUDescs = []*prometheus.Desc{mPathMTU, mPathMTULearned, mPathMTUICMP, mPathMTUFragmented, mPathMTUOuterFragmented, mICMPReceived}

// collectPathMTU adds a tunnel's path MTU metrics.
func collectPathMTU(name string, p *PathMTUStatus, counter func(*prometheus.Desc, uint64, ...string), gauge func(*prometheus.Desc, float64, ...string)) {
	if p == nil {
		return
	}
	gauge(mPathMTU, float64(p.Current), name)
	age := 0.0
	if p.LearnedSeconds != nil {
		age = float64(*p.LearnedSeconds)
	}
	gauge(mPathMTULearned, age, name)
	counter(mPathMTUICMP, p.ICMPSent, name)
	counter(mPathMTUFragmented, p.FragmentedBefore, name)
	counter(mPathMTUOuterFragmented, p.OuterFragmented, name)
}
