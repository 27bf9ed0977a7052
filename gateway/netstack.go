package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/greipsec/greipsec/gateway/config"
	"github.com/greipsec/greipsec/proxy"
	"github.com/greipsec/greipsec/tun/netstack"
)

// The netstack inner side: a tunnel with inner = "netstack" ends in a
// user-space TCP/IP stack (package tun/netstack) instead of a TUN device.
// Local programs reach the far site through the listeners the tunnel runs
// on this host (a SOCKS5 proxy, an HTTP proxy, local-to-far forwards), and
// the far site reaches local services through far-to-local forwards that
// listen in the stack. A Go program that embeds the gateway dials and
// listens through the stack itself (Gateway.Net).
//
// The listeners start once the tunnel is up and stop before it goes down:
// a reload that leaves a tunnel unchanged leaves its listeners and their
// connections alone; one that changes it closes them, and opens the new
// ones once the new tunnel is up.

// NetstackInner is the InnerFunc of tunnels with inner = "netstack": a
// user-space TCP/IP stack with the tunnel's addresses, routes, MTU and far
// site name servers. It needs no privilege and touches nothing on the host.
func NetstackInner(t *config.Tunnel, mtu int) (Inner, error) {
	cfg := netstack.Config{Name: t.Dataplane.Name, MTU: mtu, Addresses: t.Link.Addresses, Routes: t.Link.Routes}
	if t.Netstack != nil {
		cfg.DNS = t.Netstack.DNS
	}
	st, err := netstack.New(cfg)
	if err != nil {
		return Inner{}, err
	}
	return Inner{Device: st}, nil
}

// innerFunc returns the InnerFunc for a tunnel: NetstackInner for inner =
// "netstack", Options.Inner otherwise.
func (g *Gateway) innerFunc(t *config.Tunnel) InnerFunc {
	if t.Inner == config.InnerNetstack {
		return NetstackInner
	}
	return g.opts.Inner
}

// ErrNotNetstack: the tunnel's inner side is a TUN device, which programs
// reach through the host's routes, not through the gateway.
var ErrNotNetstack = errors.New(`gateway: the tunnel's inner side is not a netstack (inner = "netstack")`)

// Net returns the user-space network stack of the running tunnel called
// name, which must have inner = "netstack". Its DialContext, Listen,
// ListenPacket and LookupNetIP reach the far site as the net package
// reaches the host's networks: the stack's addresses are the tunnel's, its
// routes the tunnel's routes, its name servers the tunnel's dns.
//
// The Stack lives as long as the tunnel: Close and a Reload that changes or
// removes the tunnel close it, and with it every connection and listener
// made on it; call Net again after such a reload. A Reload that leaves the
// tunnel unchanged leaves the Stack alone.
func (g *Gateway) Net(name string) (*netstack.Stack, error) {
	t, err := g.tunnel(name)
	if err != nil {
		return nil, err
	}
	st, ok := t.inner.Device.(*netstack.Stack)
	if !ok {
		return nil, fmt.Errorf("%w: tunnel %q", ErrNotNetstack, name)
	}
	return st, nil
}

// services are what a netstack tunnel runs on its stack's behalf: the
// proxies and forwards of its configuration, each on its listener.
type services struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	list   []*service
}

// service is one proxy or forward.
type service struct {
	status ListenerStatus // what it is; the counters are filled from stats
	stats  *proxy.Stats
}

// listener is one opened listener and the server that will serve it.
type listener struct {
	svc   *service
	serve func(ctx context.Context) error
	close func() error
}

// startServices opens every listener of tunnel t's proxies and forwards,
// then serves them. If one cannot be opened, those opened are closed
// again and nothing runs.
func (g *Gateway) startServices(t *tunnel) error {
	ns := t.cfg.Netstack
	st, ok := t.inner.Device.(*netstack.Stack)
	if ns == nil || !ok {
		return nil
	}
	log := g.log.With("tunnel", t.cfg.Dataplane.Name)
	var opened []listener
	fail := func(err error) error {
		for _, l := range opened {
			l.close()
		}
		return err
	}
	if px := ns.SOCKS5; px != nil {
		ln, err := net.Listen("tcp", px.Listen)
		if err != nil {
			return fail(fmt.Errorf("socks5: %w", err))
		}
		s := &proxy.SOCKS5{Dialer: st, PacketListener: st, Resolver: resolverFor(px.Resolve, st), Users: px.Users, Limits: px.Limits, Logger: log}
		opened = append(opened, listener{
			svc:   proxyService("socks5", px, ln.Addr(), s.Stats()),
			serve: func(ctx context.Context) error { return s.Serve(ctx, ln) },
			close: ln.Close,
		})
	}
	if px := ns.HTTP; px != nil {
		ln, err := net.Listen("tcp", px.Listen)
		if err != nil {
			return fail(fmt.Errorf("http-proxy: %w", err))
		}
		h := &proxy.HTTP{Dialer: st, Resolver: resolverFor(px.Resolve, st), Users: px.Users, Limits: px.Limits, Logger: log}
		opened = append(opened, listener{
			svc:   proxyService("http-proxy", px, ln.Addr(), h.Stats()),
			serve: func(ctx context.Context) error { return h.Serve(ctx, ln) },
			close: ln.Close,
		})
	}
	for i, f := range ns.Forwards {
		l, err := openForward(st, f, log)
		if err != nil {
			return fail(fmt.Errorf("forward[%d] (%s %s %s -> %s): %w", i, f.Proto, f.Direction, f.Listen, f.Target, err))
		}
		opened = append(opened, l)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &services{cancel: cancel}
	for _, l := range opened {
		s.list = append(s.list, l.svc)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := l.serve(ctx); err != nil {
				log.Warn("listener stopped", "listener", l.svc.status.Kind, "listen", l.svc.status.Listen, "err", err)
			}
		}()
		log.Info("listening", "listener", l.svc.status.Kind, "proto", l.svc.status.Proto, "listen", l.svc.status.Listen,
			"target", l.svc.status.Target, "auth", l.svc.status.Auth)
	}
	t.services.Store(s)
	return nil
}

// stopServices closes the listeners of tunnel t and every connection they
// carry, and waits until their servers have returned.
func (t *tunnel) stopServices() {
	s := t.services.Swap(nil)
	if s == nil {
		return
	}
	s.cancel()
	s.wg.Wait()
}

// resolverFor returns the proxy.Resolver for a resolve setting: the stack
// (the far site's name servers), the host's resolver, or none (a nil
// interface, never a typed nil pointer, so that the proxies refuse names).
func resolverFor(r config.Resolve, st *netstack.Stack) proxy.Resolver {
	switch r {
	case config.ResolveFar:
		return st
	case config.ResolveLocal:
		return net.DefaultResolver
	}
	return nil
}

func proxyService(kind string, px *config.Proxy, addr net.Addr, stats *proxy.Stats) *service {
	return &service{
		status: ListenerStatus{Kind: kind, Proto: "tcp", Listen: addr.String(), Resolve: px.Resolve.String(), Auth: len(px.Users) > 0},
		stats:  stats,
	}
}

// openForward opens the listener of a forward: on the host for
// local-to-far, whose connections are dialed through the stack; in the
// stack for far-to-local, whose connections are dialed on the host.
func openForward(st *netstack.Stack, f config.Forward, log *slog.Logger) (listener, error) {
	var far proxy.Dialer = st
	if f.Direction == config.FarToLocal {
		far = &net.Dialer{}
	}
	svc := &service{status: ListenerStatus{Kind: "forward", Proto: f.Proto, Direction: f.Direction.String(), Target: f.Target}}
	switch f.Proto {
	case "tcp":
		var ln net.Listener
		var err error
		if f.Direction == config.FarToLocal {
			ln, err = st.Listen("tcp", f.Listen)
		} else {
			ln, err = net.Listen("tcp", f.Listen)
		}
		if err != nil {
			return listener{}, err
		}
		fw := &proxy.TCPForward{Dialer: far, Target: f.Target, Limits: f.Limits, Logger: log}
		svc.status.Listen, svc.stats = ln.Addr().String(), fw.Stats()
		return listener{svc: svc, serve: func(ctx context.Context) error { return fw.Serve(ctx, ln) }, close: ln.Close}, nil
	case "udp":
		var pc net.PacketConn
		var err error
		if f.Direction == config.FarToLocal {
			pc, err = st.ListenPacket("udp", f.Listen)
		} else {
			pc, err = net.ListenPacket("udp", f.Listen)
		}
		if err != nil {
			return listener{}, err
		}
		fw := &proxy.UDPForward{Dialer: far, Target: f.Target, Limits: f.Limits, Logger: log}
		svc.status.Listen, svc.stats = pc.LocalAddr().String(), fw.Stats()
		return listener{svc: svc, serve: func(ctx context.Context) error { return fw.Serve(ctx, pc) }, close: pc.Close}, nil
	}
	return listener{}, fmt.Errorf("unknown protocol %q", f.Proto)
}

// NetstackStatus is what a netstack tunnel shows: its stack's counters and
// its listeners.
type NetstackStatus struct {
	Addresses []string `json:"addresses"`
	DNS       []string `json:"dns,omitempty"`
	// QueueDrops, TooBig and BadInbound are the drops at the stack's edge
	// (netstack.Stats).
	QueueDrops uint64           `json:"queue_drops"`
	TooBig     uint64           `json:"too_big"`
	BadInbound uint64           `json:"bad_inbound"`
	Listeners  []ListenerStatus `json:"listeners"`
}

// ListenerStatus is one proxy or forward of a netstack tunnel, and its
// counters (package proxy's Stats).
type ListenerStatus struct {
	Kind      string `json:"kind"`                // socks5, http-proxy or forward
	Proto     string `json:"proto"`               // tcp or udp
	Direction string `json:"direction,omitempty"` // forwards: local-to-far or far-to-local
	Listen    string `json:"listen"`              // on the host; in the stack for far-to-local
	Target    string `json:"target,omitempty"`    // forwards
	Resolve   string `json:"resolve,omitempty"`   // proxies: far, local or none
	Auth      bool   `json:"auth"`                // proxies: users are required
	Accepted  uint64 `json:"accepted"`
	Rejected  uint64 `json:"rejected"`
	Active    int64  `json:"active"`
	Failed    uint64 `json:"failed"`
	Dropped   uint64 `json:"dropped"`
}

// netstackStatus returns the inner side of t for its status: "tun" and
// nil, or "netstack" and the stack's counters and listeners.
func (t *tunnel) netstackStatus() (string, *NetstackStatus) {
	st, ok := t.inner.Device.(*netstack.Stack)
	if !ok {
		return config.InnerTUN.String(), nil
	}
	ns := &NetstackStatus{Listeners: []ListenerStatus{}}
	for _, a := range st.Addresses() {
		ns.Addresses = append(ns.Addresses, a.String())
	}
	if t.cfg.Netstack != nil {
		for _, d := range t.cfg.Netstack.DNS {
			ns.DNS = append(ns.DNS, d.String())
		}
	}
	s := st.Stats()
	ns.QueueDrops, ns.TooBig, ns.BadInbound = s.QueueDrops.Load(), s.TooBig.Load(), s.BadInbound.Load()
	if svcs := t.services.Load(); svcs != nil {
		for _, svc := range svcs.list {
			ls := svc.status
			ls.Accepted, ls.Rejected, ls.Active = svc.stats.Accepted.Load(), svc.stats.Rejected.Load(), svc.stats.Active.Load()
			ls.Failed, ls.Dropped = svc.stats.Failed.Load(), svc.stats.Dropped.Load()
			ns.Listeners = append(ns.Listeners, ls)
		}
	}
	return config.InnerNetstack.String(), ns
}

// The metrics of a netstack tunnel's listeners (metrics.go), labelled by
// the tunnel, the kind of listener and where it listens.
var (
	mListenerConns = prometheus.NewDesc("greipsec_listener_connections_total",
		"Connections (UDP: flows) of a netstack tunnel's proxy or forward, by result: accepted, rejected (over max-connections), failed (handshake, authentication or dial).",
		[]string{"tunnel", "listener", "listen", "result"}, nil)
	mListenerActive = prometheus.NewDesc("greipsec_listener_active_connections",
		"Connections (UDP: flows) of a netstack tunnel's proxy or forward open now.",
		[]string{"tunnel", "listener", "listen"}, nil)
	mListenerDropped = prometheus.NewDesc("greipsec_listener_dropped_datagrams_total",
		"Datagrams a netstack tunnel's SOCKS5 UDP relay or UDP forward dropped: malformed, from a stranger, over the flow limit.",
		[]string{"tunnel", "listener", "listen"}, nil)
)

// collectListeners emits the metrics of a netstack tunnel's listeners.
func collectListeners(tunnel string, ns *NetstackStatus, counter func(*prometheus.Desc, uint64, ...string), gauge func(*prometheus.Desc, float64, ...string)) {
	if ns == nil {
		return
	}
	for _, l := range ns.Listeners {
		kind := l.Kind
		if kind == "forward" {
			kind = "forward-" + l.Proto + "-" + l.Direction
		}
		counter(mListenerConns, l.Accepted, tunnel, kind, l.Listen, "accepted")
		counter(mListenerConns, l.Rejected, tunnel, kind, l.Listen, "rejected")
		counter(mListenerConns, l.Failed, tunnel, kind, l.Listen, "failed")
		gauge(mListenerActive, float64(l.Active), tunnel, kind, l.Listen)
		counter(mListenerDropped, l.Dropped, tunnel, kind, l.Listen)
	}
}
