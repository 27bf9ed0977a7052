package gateway

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/ikev2"
)

// Status is a snapshot of a running gateway, in the terms of swanctl
// --list-sas: what `greipsec show` prints and the control API's
// /v1/status returns as JSON. Durations are whole seconds at the time of
// the snapshot; counters only ever grow while the gateway runs.
type Status struct {
	Started  time.Time      `json:"started"`
	Ready    bool           `json:"ready"`
	Tunnels  []TunnelStatus `json:"tunnels"`
	Device   DeviceStatus   `json:"device"`
	IKEDrops IKEDrops       `json:"ike_drops"`
}

// DeviceStatus holds the dataplane's device-wide counters: what is dropped
// before a packet reaches a tunnel.
type DeviceStatus struct {
	UnknownSPI    uint64 `json:"unknown_spi"`
	Malformed     uint64 `json:"malformed"`
	ReceiveErrors uint64 `json:"receive_errors"`
	Keepalives    uint64 `json:"nat_keepalives_received"`
	IKEReceived   uint64 `json:"ike_received_4500"`
	NoBuffer      uint64 `json:"no_buffer"`
	// ICMP errors read from the raw ESP sockets' error queues.
	ICMPTooBig  uint64 `json:"icmp_too_big"`
	ICMPIgnored uint64 `json:"icmp_ignored"`
}

// IKEDrops counts what the IKE runner drops or fails to send.
type IKEDrops struct {
	UnknownPeer uint64 `json:"unknown_peer"`
	QueueFull   uint64 `json:"queue_full"`
	SendErrors  uint64 `json:"send_errors"`
}

// TunnelStatus is one tunnel.
type TunnelStatus struct {
	Name      string `json:"name"`
	Interface string `json:"interface"`
	Mode      string `json:"mode"`      // gre-transport, gre-tunnel, route
	Transport string `json:"transport"` // esp or udp, as configured
	Local     string `json:"local"`
	Peer      string `json:"peer"`
	MTU       int    `json:"mtu"`
	MSS4      int    `json:"mss4"`
	MSS6      int    `json:"mss6"`
	Keying    string `json:"keying"` // ike or manual
	// PathMTU is the outer path as the tunnel knows it; MSS4 and MSS6
	// follow its Current value.
	PathMTU *PathMTUStatus `json:"path_mtu"`
	// Inner is "tun" or "netstack"; Netstack holds a netstack tunnel's
	// listeners and counters.
	Inner    string          `json:"inner"`
	Netstack *NetstackStatus `json:"netstack,omitempty"`
	// Traffic and Drops are the tunnel's totals over all its SAs, past ones
	// included. Drops has every reason, zeros too.
	Traffic Traffic           `json:"traffic"`
	Drops   map[string]uint64 `json:"drops"`
	// IKE is the tunnel's IKE SA; nil for manual keys.
	IKE *IKEStatus `json:"ike,omitempty"`
	// ChildSAs are the installed ESP SA pairs: one, or two for a few
	// seconds after a rekey, while the replaced one waits for its DELETE and
	// then catches the packets still on their way. Manual keys show as one.
	ChildSAs []ChildSAStatus `json:"child_sas"`
	// GRE keepalives: the peer's reflected, and, with [tunnel.gre]
	// keepalive, ours sent and answered. Nil in route mode.
	Keepalive *KeepaliveStatus `json:"keepalive,omitempty"`
}

// KeepaliveStatus is a GRE tunnel's keepalives (keepalive.go).
type KeepaliveStatus struct {
	// IntervalSeconds and Retries are the configured sender, 0 for none.
	IntervalSeconds float64 `json:"interval_seconds"`
	Retries         int     `json:"retries"`
	// Up is false once Retries intervals passed without a reply (always
	// true without a sender).
	Up        bool   `json:"up"`
	Sent      uint64 `json:"sent"`
	Replies   uint64 `json:"replies"`
	Reflected uint64 `json:"reflected"`
	Drops     uint64 `json:"drops"`
}

// Traffic counts inner packets and bytes each way.
type Traffic struct {
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
}

// IKEStatus is a tunnel's IKE session and its current IKE SA.
type IKEStatus struct {
	Role string `json:"role"` // active or passive
	// State is ESTABLISHED, CONNECTING, REKEYING, DOWN (no IKE SA; an
	// active session starts again at RestartInSeconds) or HELD (terminated
	// by the operator: down until initiate).
	State string `json:"state"`
	Phase string `json:"phase,omitempty"` // while CONNECTING: "IKE_SA_INIT sent", ...
	// Initiator: this side is the original initiator of the IKE SA.
	Initiator  bool   `json:"initiator"`
	SPIi       string `json:"spi_i"` // 16 hex digits
	SPIr       string `json:"spi_r"`
	Proposal   string `json:"proposal,omitempty"`   // aes256-sha384-ecp384
	Algorithms string `json:"algorithms,omitempty"` // AES_CBC-256/HMAC_SHA2_384_192/PRF_HMAC_SHA2_384/ECP_384
	LocalID    string `json:"local_id"`
	PeerID     string `json:"peer_id"`
	// LocalEndpoint and PeerEndpoint are the addresses and ports IKE uses
	// now: 4500 once a NAT was seen.
	LocalEndpoint string `json:"local_endpoint,omitempty"`
	PeerEndpoint  string `json:"peer_endpoint,omitempty"`
	// NAT is "none", "local" (this side is behind a NAT, or claims to be:
	// encap or transport udp), "peer" or "both".
	NAT                string `json:"nat"`
	EstablishedAt      string `json:"established_at,omitempty"` // RFC 3339
	EstablishedSeconds int64  `json:"established_seconds"`
	// RekeyInSeconds is when this side rekeys the IKE SA; absent when not
	// established. greipsec rekeys and never reauthenticates, so there is
	// no reauth time.
	RekeyInSeconds   *int64 `json:"rekey_in_seconds,omitempty"`
	LastRecvSeconds  *int64 `json:"last_received_seconds,omitempty"`
	RestartInSeconds *int64 `json:"restart_in_seconds,omitempty"`
	// Request is the exchange of our outstanding request, and how often it
	// was retransmitted.
	Request     string `json:"request,omitempty"`
	Retransmits int    `json:"retransmits,omitempty"`
	// Counters over the tunnel's life.
	Establishments uint64 `json:"establishments"`
	Rekeys         uint64 `json:"ike_rekeys"`
	ChildRekeys    uint64 `json:"child_rekeys"`
	Downs          uint64 `json:"downs"`
	InstallFailed  uint64 `json:"child_install_failures"`
	LastDown       string `json:"last_down,omitempty"`
	ChildError     string `json:"child_error,omitempty"`
}

// ChildSAStatus is one ESP SA pair.
type ChildSAStatus struct {
	// State is INSTALLED, or REKEYED for one replaced by a rekey: waiting
	// for its DELETE, then for packets still on their way (5 s).
	State      string   `json:"state"`
	InSPI      string   `json:"spi_in"` // 8 hex digits
	OutSPI     string   `json:"spi_out"`
	Mode       string   `json:"mode"` // TRANSPORT or TUNNEL
	UDPEncap   bool     `json:"udp_encap"`
	Proposal   string   `json:"proposal"`   // aes256gcm16-ecp384; the algorithm for manual keys
	Algorithms string   `json:"algorithms"` // AES_GCM_16-256
	ESN        bool     `json:"esn"`
	LocalTS    []string `json:"local_ts,omitempty"`
	PeerTS     []string `json:"peer_ts,omitempty"`
	BytesIn    uint64   `json:"bytes_in"`
	PacketsIn  uint64   `json:"packets_in"`
	BytesOut   uint64   `json:"bytes_out"`
	PacketsOut uint64   `json:"packets_out"`
	// LastInSeconds and LastOutSeconds are how long ago a packet last
	// moved, sampled once a second; absent if none ever did.
	LastInSeconds    *int64            `json:"last_in_seconds,omitempty"`
	LastOutSeconds   *int64            `json:"last_out_seconds,omitempty"`
	InstalledSeconds int64             `json:"installed_seconds"`
	RekeyInSeconds   *int64            `json:"rekey_in_seconds,omitempty"`
	Drops            map[string]uint64 `json:"drops"`
	// ReserveWaits and ReserveErrors count, for a manual outbound SA whose
	// sequence numbers are reserved in the state file, the packets that
	// waited for a reservation and the reservations that failed.
	ReserveWaits  uint64 `json:"reserve_waits,omitempty"`
	ReserveErrors uint64 `json:"reserve_errors,omitempty"`
}

// statusTimeout bounds how long a snapshot waits for a busy IKE session.
const statusTimeout = 2 * time.Second

// Status returns a snapshot of the gateway and all its tunnels.
func (g *Gateway) Status() Status {
	now := time.Now()
	st := Status{Started: g.started, Ready: g.Ready(), Tunnels: []TunnelStatus{}}
	g.mu.Lock()
	tunnels := make([]*tunnel, 0, len(g.order))
	for _, name := range g.order {
		tunnels = append(tunnels, g.tunnels[name])
	}
	g.mu.Unlock()
	for _, t := range tunnels {
		st.Tunnels = append(st.Tunnels, t.status(now))
	}
	ds := g.device.Stats()
	st.Device = DeviceStatus{
		UnknownSPI:    ds.UnknownSPI.Load(),
		Malformed:     ds.Malformed.Load(),
		ReceiveErrors: ds.ReceiveErrs.Load(),
		Keepalives:    ds.Keepalives.Load(),
		IKEReceived:   ds.IKE.Load(),
		NoBuffer:      ds.NoBuffer.Load(),
		ICMPTooBig:    ds.ICMPTooBig.Load(),
		ICMPIgnored:   ds.ICMPIgnored.Load(),
	}
	rs := &g.ike.stats
	st.IKEDrops = IKEDrops{UnknownPeer: rs.UnknownPeer.Load(), QueueFull: rs.QueueFull.Load(), SendErrors: rs.SendErrors.Load()}
	return st
}

// TunnelStatus returns the snapshot of one tunnel.
func (g *Gateway) TunnelStatus(name string) (TunnelStatus, error) {
	t, err := g.tunnel(name)
	if err != nil {
		return TunnelStatus{}, err
	}
	return t.status(time.Now()), nil
}

// The drop reasons of Drops maps: the tunnel's own, then the SAs'.
var (
	tunnelDropReasons = []string{"no_sa", "seq_exhausted", "bad_inner", "send_errors", "write_errors", "read_errors", "path_mtu"}
	saDropReasons     = []string{"auth_failure", "replay", "bad_padding", "bad_next_header", "bad_gre", "bad_selector", "other"}
)

func saDrops(s esp.Stats) map[string]uint64 {
	return map[string]uint64{
		"auth_failure":    s.AuthFailures,
		"replay":          s.Replays,
		"bad_padding":     s.BadPadding,
		"bad_next_header": s.BadNextHeader,
		"bad_gre":         s.BadGRE,
		"bad_selector":    s.BadSelector,
		"other":           s.Other,
	}
}

func (t *tunnel) status(now time.Time) TunnelStatus {
	dc := t.dp.Config()
	pm := pathMTUStatus(t.dp, now)
	ts := TunnelStatus{
		Name:      dc.Name,
		Interface: dc.Interface,
		Mode:      dc.Mode.String(),
		Transport: dc.Transport.String(),
		Local:     dc.Local.String(),
		Peer:      dc.Peer.String(),
		MTU:       t.dp.MTU(),
		MSS4:      t.dp.PathMTU().MSS4,
		MSS6:      t.dp.PathMTU().MSS6,
		PathMTU:   pm,
		Keying:    "manual",
		ChildSAs:  []ChildSAStatus{},
	}
	ts.Inner, ts.Netstack = t.netstackStatus()
	s := t.dp.Stats()
	ts.Traffic = Traffic{TxPackets: s.TxPackets.Load(), TxBytes: s.TxBytes.Load(), RxPackets: s.RxPackets.Load(), RxBytes: s.RxBytes.Load()}
	var total esp.Stats
	if t.peer != nil {
		ts.Keying = "ike"
		ts.IKE, ts.ChildSAs, total = t.peer.status(now)
	} else {
		ts.ChildSAs, total = t.manualStatus(now)
	}
	ts.Drops = saDrops(total)
	ts.Drops["no_sa"] = s.NoSA.Load()
	ts.Drops["seq_exhausted"] = s.SeqExhausted.Load()
	ts.Drops["bad_inner"] = s.BadInner.Load()
	ts.Drops["send_errors"] = s.SendErrors.Load()
	ts.Drops["write_errors"] = s.WriteErrors.Load()
	ts.Drops["read_errors"] = s.ReadErrors.Load()
	ts.Drops["no_policy"] = s.NoPolicy.Load()
	ts.Drops["too_big"] = s.TooBig.Load()
	ts.Drops["bad_source"] = s.BadSource.Load()
	ts.Drops["queue_full"] = s.QueueFull.Load()
	ts.Drops["path_mtu"] = s.PathMTUDrops.Load()
	if dc.Mode != dataplane.ModeRoute {
		ka := &KeepaliveStatus{Up: true, Sent: s.KeepalivesSent.Load(), Replies: s.KeepaliveReplies.Load(),
			Reflected: s.KeepalivesReflected.Load(), Drops: s.KeepaliveDrops.Load()}
		if k := t.keepalive; k != nil {
			ka.IntervalSeconds, ka.Retries, ka.Up = k.interval.Seconds(), k.retries, !k.down.Load()
		}
		ts.Keepalive = ka
	}
	return ts
}

// manualStatus describes the manual SA pair of a tunnel keyed by hand.
func (t *tunnel) manualStatus(now time.Time) ([]ChildSAStatus, esp.Stats) {
	var total esp.Stats
	in := t.dp.InboundSAs()
	out := t.dp.OutboundSA()
	if len(in) == 0 || out == nil {
		return []ChildSAStatus{}, total
	}
	is, os := in[0].Stats(), out.Stats()
	addStats(&total, is)
	addStats(&total, os)
	c := in[0].Config()
	dc := t.dp.Config()
	mode := "TRANSPORT"
	if dc.Mode != dataplane.ModeGRETransport {
		mode = "TUNNEL"
	}
	lastIn, lastOut := t.manual.last()
	cs := ChildSAStatus{
		State:            "INSTALLED",
		InSPI:            fmt.Sprintf("%08x", in[0].SPI()),
		OutSPI:           fmt.Sprintf("%08x", out.SPI()),
		Mode:             mode,
		UDPEncap:         dc.Transport == dataplane.TransportUDP,
		Proposal:         c.Transform().String(),
		Algorithms:       espAlgName(c.Transform()),
		ESN:              c.ESN,
		BytesIn:          is.RxBytes,
		PacketsIn:        is.RxPackets,
		BytesOut:         os.TxBytes,
		PacketsOut:       os.TxPackets,
		LastInSeconds:    ago(now, lastIn),
		LastOutSeconds:   ago(now, lastOut),
		InstalledSeconds: int64(now.Sub(t.manual.since()).Seconds()),
		Drops:            saDrops(is),
		ReserveWaits:     os.ReserveWaits,
		ReserveErrors:    os.ReserveErrors,
	}
	return []ChildSAStatus{cs}, total
}

// espAlgName names a dataplane transform as swanctl --list-sas does:
// AES_GCM_16-256, AES_CBC-256/HMAC_SHA2_256_128, NULL/HMAC_SHA1_96.
func espAlgName(t esp.Transform) string {
	var s string
	switch t.Algorithm {
	case esp.AES128GCM16:
		s = "AES_GCM_16-128"
	case esp.AES256GCM16:
		s = "AES_GCM_16-256"
	case esp.ChaCha20Poly1305:
		s = "CHACHA20_POLY1305-256"
	case esp.AES128CBC:
		s = "AES_CBC-128"
	case esp.AES192CBC:
		s = "AES_CBC-192"
	case esp.AES256CBC:
		s = "AES_CBC-256"
	case esp.NullEncryption:
		s = "NULL"
	default:
		s = t.Algorithm.String()
	}
	switch t.Integrity {
	case esp.IntegrityNone:
	case esp.HMACSHA1_96:
		s += "/HMAC_SHA1_96"
	case esp.HMACSHA256_128:
		s += "/HMAC_SHA2_256_128"
	case esp.HMACSHA384_192:
		s += "/HMAC_SHA2_384_192"
	case esp.HMACSHA512_256:
		s += "/HMAC_SHA2_512_256"
	default:
		s += "/" + t.Integrity.String()
	}
	return s
}

// peerSnapshot is what a session's goroutine hands out for a status.
type peerSnapshot struct {
	session ikev2.SessionStatus
	pairs   []saPair
	retired esp.Stats
	held    bool
}

// status describes an IKE tunnel's session and Child SAs, and returns the
// totals of its SAs' counters, the retired ones included.
func (p *ikePeer) status(now time.Time) (*IKEStatus, []ChildSAStatus, esp.Stats) {
	var snap peerSnapshot
	err := p.do(statusTimeout, func(time.Time) error {
		snap.session = p.session.Status(now)
		for _, pair := range p.pairs {
			snap.pairs = append(snap.pairs, *pair)
		}
		snap.retired = p.retired
		snap.held = p.held
		return nil
	})
	ike := &IKEStatus{
		Role:           "active",
		LocalID:        p.cfg.LocalID.String(),
		PeerID:         p.cfg.PeerID.String(),
		NAT:            "none",
		Establishments: p.counts.established.Load(),
		Rekeys:         p.counts.ikeRekeys.Load(),
		ChildRekeys:    p.counts.childRekeys.Load(),
		Downs:          p.counts.downs.Load(),
		InstallFailed:  p.counts.installFailed.Load(),
	}
	if p.cfg.Role == ikev2.RolePassive {
		ike.Role = "passive"
	}
	if d := p.counts.lastDown.Load(); d != nil {
		ike.LastDown = *d
	}
	if err != nil {
		ike.State = "UNKNOWN"
		ike.Phase = err.Error()
		return ike, []ChildSAStatus{}, esp.Stats{}
	}
	ss := snap.session
	ike.LocalID, ike.PeerID = ss.LocalID.String(), ss.PeerID.String()
	total := snap.retired
	children := []ChildSAStatus{}
	sa := ss.IKE
	switch {
	case sa == nil && snap.held:
		ike.State = "HELD"
	case sa == nil:
		ike.State = "DOWN"
		if !ss.RestartAt.IsZero() {
			ike.RestartInSeconds = in(now, ss.RestartAt)
		}
	default:
		ike.State = string(sa.State)
		ike.Phase = sa.Phase
		ike.Initiator = sa.Initiator
		ike.SPIi = fmt.Sprintf("%016x", sa.SPIi)
		ike.SPIr = fmt.Sprintf("%016x", sa.SPIr)
		if sa.Proposal != (ikev2.IKEProposal{}) {
			ike.Proposal = sa.Proposal.String()
			ike.Algorithms = ikeAlgorithms(sa.Proposal)
		}
		ike.LocalEndpoint, ike.PeerEndpoint = sa.Local.String(), sa.Peer.String()
		ike.NAT = natString(sa.NATLocal, sa.NATPeer)
		if !sa.Established.IsZero() {
			ike.EstablishedAt = sa.Established.UTC().Format(time.RFC3339)
			ike.EstablishedSeconds = int64(now.Sub(sa.Established).Seconds())
			ike.LastRecvSeconds = ago(now, sa.LastReceived)
		}
		if !sa.RekeyAt.IsZero() {
			ike.RekeyInSeconds = in(now, sa.RekeyAt)
		}
		if sa.Request != 0 {
			ike.Request, ike.Retransmits = sa.Request.String(), sa.Retransmits
		}
		ike.ChildError = sa.ChildError
	}
	// Every installed pair, current first, with what the session knows of
	// it: the current Child SA, or one being retired.
	var childInfo []ikev2.ChildSAStatus
	var retiring []ikev2.ChildSAStatus
	for _, x := range ss.Others {
		retiring = append(retiring, x.Retiring...)
	}
	if sa != nil {
		if sa.Child != nil {
			childInfo = append(childInfo, *sa.Child)
		}
		retiring = append(retiring, sa.Retiring...)
	}
	pairs := slices.Clone(snap.pairs)
	slices.SortStableFunc(pairs, func(a, b saPair) int { return b.installed.Compare(a.installed) })
	for _, pair := range pairs {
		is, os := pair.in.Stats(), pair.out.Stats()
		addStats(&total, is)
		addStats(&total, os)
		c := ChildSAStatus{
			State:            "INSTALLED",
			InSPI:            fmt.Sprintf("%08x", pair.in.SPI()),
			OutSPI:           fmt.Sprintf("%08x", pair.out.SPI()),
			BytesIn:          is.RxBytes,
			PacketsIn:        is.RxPackets,
			BytesOut:         os.TxBytes,
			PacketsOut:       os.TxPackets,
			LastInSeconds:    ago(now, pair.lastIn.at),
			LastOutSeconds:   ago(now, pair.lastOut.at),
			InstalledSeconds: int64(now.Sub(pair.installed).Seconds()),
			Drops:            saDrops(is),
		}
		cfg := pair.in.Config()
		c.ESN = cfg.ESN
		c.Algorithms = espAlgName(cfg.Transform())
		c.Proposal = cfg.Transform().String()
		info, current := findChild(childInfo, pair.in.SPI())
		if !current {
			c.State = "REKEYED"
			info, _ = findChild(retiring, pair.in.SPI())
		}
		if info != nil {
			c.Proposal = info.Proposal.String()
			c.Mode = "TUNNEL"
			if info.Transport {
				c.Mode = "TRANSPORT"
			}
			c.UDPEncap = info.Encap
			c.LocalTS = selectorStrings(info.LocalTS)
			c.PeerTS = selectorStrings(info.PeerTS)
			if current && !info.RekeyAt.IsZero() {
				c.RekeyInSeconds = in(now, info.RekeyAt)
			}
		}
		children = append(children, c)
	}
	return ike, children, total
}

func findChild(list []ikev2.ChildSAStatus, inSPI uint32) (*ikev2.ChildSAStatus, bool) {
	for i := range list {
		if list[i].InSPI == inSPI {
			return &list[i], true
		}
	}
	return nil, false
}

func natString(local, peer bool) string {
	switch {
	case local && peer:
		return "both"
	case local:
		return "local"
	case peer:
		return "peer"
	}
	return "none"
}

// selectorStrings writes selectors as swanctl does: "10.1.0.0/24",
// "192.0.2.1/32[gre]", "10.0.0.0/8[proto 6]".
func selectorStrings(sel []ikev2.Selector) []string {
	out := make([]string, len(sel))
	for i, s := range sel {
		out[i] = s.Prefix.String()
		switch s.Protocol {
		case 0:
		case 47:
			out[i] += "[gre]"
		case 6:
			out[i] += "[tcp]"
		case 17:
			out[i] += "[udp]"
		default:
			out[i] += fmt.Sprintf("[proto %d]", s.Protocol)
		}
	}
	return out
}

// ikeAlgorithms names an IKE proposal's transforms as swanctl --list-sas
// does: AES_CBC-256/HMAC_SHA2_384_192/PRF_HMAC_SHA2_384/ECP_384.
func ikeAlgorithms(p ikev2.IKEProposal) string {
	parts := []string{encrAlgName(p.Encr, p.KeyBits)}
	if p.Integ != 0 {
		parts = append(parts, strings.TrimPrefix(ikev2.TransformID(p.Integ).Name(ikev2.TransformINTEG), "AUTH_"))
	}
	parts = append(parts, ikev2.TransformID(p.PRF).Name(ikev2.TransformPRF))
	parts = append(parts, dhAlgName(p.DH))
	return strings.Join(parts, "/")
}

func encrAlgName(id uint16, bits int) string {
	s := strings.TrimPrefix(ikev2.TransformID(id).Name(ikev2.TransformENCR), "ENCR_")
	if bits == 0 && id == uint16(ikev2.EncrChaCha20Poly1305) {
		bits = 256
	}
	if bits != 0 {
		s += fmt.Sprintf("-%d", bits)
	}
	return s
}

func dhAlgName(id uint16) string {
	if id == uint16(ikev2.DHCurve25519) {
		return "CURVE_25519"
	}
	return ikev2.TransformID(id).Name(ikev2.TransformDH)
}

// ago returns the whole seconds from t to now, or nil for a zero t.
func ago(now, t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	s := int64(now.Sub(t).Seconds())
	return &s
}

// in returns the whole seconds from now to t, at least 0.
func in(now, t time.Time) *int64 {
	s := max(int64(t.Sub(now).Seconds()), 0)
	return &s
}

// manualActivity records when a manually keyed tunnel's SAs last moved a
// packet; routineManualActivity samples it once a second.
type manualActivity struct {
	mu      sync.Mutex
	started time.Time
	in, out activity
}

func (m *manualActivity) last() (in, out time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.in.at, m.out.at
}

func (m *manualActivity) since() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.started
}

// routineManualActivity samples the packet counters of the manually keyed
// tunnels once a second, for the last-packet ages of Status.
func (g *Gateway) routineManualActivity() {
	defer g.workers.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-g.stop:
			return
		case now := <-tick.C:
			g.mu.Lock()
			var manual []*tunnel
			for _, t := range g.tunnels {
				if t.manual != nil {
					manual = append(manual, t)
				}
			}
			g.mu.Unlock()
			for _, t := range manual {
				var rx, tx uint64
				for _, sa := range t.dp.InboundSAs() {
					rx += sa.Stats().RxPackets
				}
				if sa := t.dp.OutboundSA(); sa != nil {
					tx = sa.Stats().TxPackets
				}
				t.manual.mu.Lock()
				t.manual.in.observe(rx, now)
				t.manual.out.observe(tx, now)
				t.manual.mu.Unlock()
			}
		}
	}
}
