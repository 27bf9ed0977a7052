package gateway

import (
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/greipsec/greipsec/gateway/config"
)

// Live reload: the running set of tunnels becomes the one of a new
// configuration. A tunnel whose configuration is the same keeps running,
// untouched: its SAs stay, it loses no packet. A new one comes up; a
// removed one sends DELETE and goes down; a changed one goes down and comes
// up again with its new configuration (new SAs). A configuration that
// fails the checks changes nothing.

// ReloadPlan says what a reload does with each tunnel, by name.
type ReloadPlan struct {
	Unchanged []string `json:"unchanged"`
	Added     []string `json:"added"`
	Removed   []string `json:"removed"`
	Changed   []string `json:"changed"`
}

// PlanReload compares the tunnels of the running configuration with those
// of a new one. A tunnel is unchanged when every setting of it is the same,
// the pre-shared key read from its file or variable included.
func PlanReload(running, next []config.Tunnel) ReloadPlan {
	plan := ReloadPlan{Unchanged: []string{}, Added: []string{}, Removed: []string{}, Changed: []string{}}
	old := make(map[string]config.Tunnel, len(running))
	for _, t := range running {
		old[t.Dataplane.Name] = t
	}
	seen := make(map[string]bool, len(next))
	for _, t := range next {
		name := t.Dataplane.Name
		seen[name] = true
		o, ok := old[name]
		switch {
		case !ok:
			plan.Added = append(plan.Added, name)
		case reflect.DeepEqual(o, t):
			plan.Unchanged = append(plan.Unchanged, name)
		default:
			plan.Changed = append(plan.Changed, name)
		}
	}
	for _, t := range running {
		if !seen[t.Dataplane.Name] {
			plan.Removed = append(plan.Removed, t.Dataplane.Name)
		}
	}
	return plan
}

// ReloadResult is what a reload did: the plan, and the tunnels that
// failed to come up (the others run).
type ReloadResult struct {
	ReloadPlan
	Failed []TunnelError `json:"failed,omitempty"`
}

// TunnelError is a tunnel that failed, and why.
type TunnelError struct {
	Tunnel string `json:"tunnel"`
	Error  string `json:"error"`
}

// Reload makes the running tunnels those of cfg; see ReloadPlan for what
// happens to each. It first checks the whole new configuration as New does
// (the IKE settings of every tunnel, one IKE tunnel per peer address), and
// on a mistake returns an error having changed nothing. It then takes the
// removed and changed tunnels down (DELETE first), and brings the added
// and changed ones up in the order of the file. A tunnel that fails to
// come up is reported in Failed, and in the error; the others run.
func (g *Gateway) Reload(cfg *config.Config) (ReloadResult, error) {
	g.opMu.Lock()
	defer g.opMu.Unlock()
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return ReloadResult{}, ErrClosed
	}
	running := make([]config.Tunnel, 0, len(g.order))
	for _, name := range g.order {
		running = append(running, g.tunnels[name].cfg)
	}
	g.mu.Unlock()

	next, err := prepareAll(cfg.Tunnels)
	if err != nil {
		return ReloadResult{}, fmt.Errorf("%s: %w", cfg.Path, err)
	}
	res := ReloadResult{ReloadPlan: PlanReload(running, cfg.Tunnels)}
	if g.state != nil && cfg.StateFile != g.state.file.Path() {
		g.log.Warn("state-file changed: it takes effect when greipsec is restarted", "in_use", g.state.file.Path(), "configured", cfg.StateFile)
	}
	g.ready.Store(false)
	defer g.ready.Store(true)

	for _, name := range append(slices.Clone(res.Removed), res.Changed...) {
		g.mu.Lock()
		t := g.tunnels[name]
		delete(g.tunnels, name)
		g.order = slices.DeleteFunc(g.order, func(n string) bool { return n == name })
		g.mu.Unlock()
		if err := g.stopTunnel(t); err != nil {
			g.log.Warn("stopping tunnel", "tunnel", name, "err", err)
		}
	}

	start := append(slices.Clone(res.Added), res.Changed...)
	var errs []error
	for _, p := range next {
		if !slices.Contains(start, p.name()) {
			continue
		}
		// Manual SAs resume from the state file, which holds what the
		// tunnel's earlier SAs did until they stopped above.
		err := g.prepareManual(cfg.StateFile, []*prepared{p})
		var t *tunnel
		if err == nil {
			t, err = g.startTunnel(p)
		}
		if err != nil {
			res.Failed = append(res.Failed, TunnelError{Tunnel: p.name(), Error: err.Error()})
			errs = append(errs, err)
			g.log.Error("reload: tunnel failed to start", "tunnel", p.name(), "err", err)
			continue
		}
		g.mu.Lock()
		g.tunnels[p.name()] = t
		g.mu.Unlock()
	}

	// The order of the new file, for the tunnels that run.
	g.mu.Lock()
	g.order = g.order[:0]
	for _, tc := range cfg.Tunnels {
		if _, ok := g.tunnels[tc.Dataplane.Name]; ok {
			g.order = append(g.order, tc.Dataplane.Name)
		}
	}
	g.mu.Unlock()
	g.log.Info("reloaded", "unchanged", len(res.Unchanged), "added", res.Added, "removed", res.Removed,
		"changed", res.Changed, "failed", len(res.Failed))
	return res, errors.Join(errs...)
}
