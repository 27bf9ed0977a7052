package gateway

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/greipsec/greipsec/dataplane"
)

// linkState sets the carrier of a tunnel's inner interface from the two
// things that take a tunnel down: no IKE SA (link-follows-ike) and GRE
// keepalives without replies ([tunnel.gre] keepalive). The interface has
// its carrier while neither says down. Without carrier, routing daemons
// see the interface down and withdraw their routes through it, and the
// kernel skips the static ones (tun.Configure): another tunnel takes over.
// Safe for concurrent use.
type linkState struct {
	g           *Gateway
	name, iface string
	set         func(up bool) error // Inner.SetCarrier; nil: nothing to set

	mu              sync.Mutex
	ikeDown, kaDown bool
	down            bool // as last set
}

// setIKE records whether the tunnel has an IKE SA.
func (l *linkState) setIKE(up bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ikeDown = !up
	l.apply("IKE SA")
}

// setKeepalive records whether the peer answers GRE keepalives.
func (l *linkState) setKeepalive(up bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.kaDown = !up
	l.apply("GRE keepalives")
}

// apply sets the carrier if the state changed; why names what changed.
// l.mu is held.
func (l *linkState) apply(why string) {
	down := l.ikeDown || l.kaDown
	if down == l.down || l.set == nil {
		l.down = down
		return
	}
	l.down = down
	if err := l.set(!down); err != nil {
		l.g.log.Warn("setting the inner interface's carrier failed", "tunnel", l.name, "up", !down, "err", err)
		return
	}
	if down {
		l.g.log.Warn("inner interface down (no carrier)", "tunnel", l.name, "interface", l.iface, "because", why,
			"ike_sa", !l.ikeDown, "keepalives_answered", !l.kaDown)
	} else {
		l.g.log.Info("inner interface up", "tunnel", l.name, "interface", l.iface, "because", why)
	}
}

// keepalive is a tunnel's GRE keepalive sender (routineKeepalive).
type keepalive struct {
	interval time.Duration
	retries  int
	down     atomic.Bool // no reply for retries intervals
	stop     chan struct{}
	done     chan struct{}
}

// routineKeepalive sends a GRE keepalive every interval, as Cisco IOS's
// "keepalive 10 3" and OpenBSD's "ifconfig gre0 keepalive 10 3" do, and
// counts the tunnel down, in the log, in status and metrics, and on the
// interface's carrier, once retries intervals have passed without a reply;
// up again at the next reply.
func (g *Gateway) routineKeepalive(t *tunnel, ka *keepalive, link *linkState) {
	defer g.workers.Done()
	defer close(ka.done)
	name := t.cfg.Dataplane.Name
	stats := t.dp.Stats()
	tick := time.NewTicker(ka.interval)
	defer tick.Stop()
	last := stats.KeepaliveReplies.Load()
	missed := 0
	t.dp.SendKeepalive()
	for {
		select {
		case <-ka.stop:
			return
		case <-g.stop:
			return
		case <-tick.C:
		}
		if n := stats.KeepaliveReplies.Load(); n != last {
			last, missed = n, 0
			if ka.down.Swap(false) {
				g.log.Info("GRE keepalives answered again: tunnel up", "tunnel", name)
				link.setKeepalive(true)
			}
		} else if missed++; missed >= ka.retries && !ka.down.Swap(true) {
			g.log.Warn("GRE keepalives not answered: tunnel down", "tunnel", name,
				"interval", ka.interval, "retries", ka.retries)
			link.setKeepalive(false)
		}
		t.dp.SendKeepalive()
	}
}

// startKeepalive starts t's keepalive sender if the configuration asks for
// one and the mode has GRE.
func (g *Gateway) startKeepalive(t *tunnel, link *linkState) {
	c := &t.cfg
	if c.Keepalive == 0 || c.Dataplane.Mode == dataplane.ModeRoute {
		return
	}
	t.keepalive = &keepalive{interval: c.Keepalive, retries: c.KeepaliveRetries,
		stop: make(chan struct{}), done: make(chan struct{})}
	g.workers.Add(1)
	go g.routineKeepalive(t, t.keepalive, link)
}

// stopKeepalive stops t's keepalive sender, if it has one, and waits for it.
func (t *tunnel) stopKeepalive() {
	if ka := t.keepalive; ka != nil {
		select {
		case <-ka.stop:
		default:
			close(ka.stop)
		}
		<-ka.done
	}
}
