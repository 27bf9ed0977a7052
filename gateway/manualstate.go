package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/esp/seqstate"
)

// stateSyncInterval is how often the window tops of manual inbound SAs are
// written: after a crash, packets accepted since the last write can be
// replayed once (see package seqstate).
const stateSyncInterval = time.Second

// manualState keeps the sequence numbers of a gateway's manual SAs in its
// state file while it runs (review finding C1): outbound SAs resume above
// every sequence number reserved under their key, inbound SAs drop what
// they accepted before. It is loaded with the first manual tunnel, at
// start or at a reload, and written until Close.
type manualState struct {
	file   *seqstate.File
	log    *slog.Logger
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// loadManualState loads the state file at path and starts writing the
// window tops every stateSyncInterval.
func loadManualState(path string, log *slog.Logger) (*manualState, error) {
	f, err := seqstate.Load(path)
	if err != nil {
		return nil, err
	}
	m := &manualState{file: f, log: log}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.done.Add(1)
	go func() {
		defer m.done.Done()
		f.Run(ctx, stateSyncInterval, func(err error) {
			log.Warn("writing the state file of manual SAs failed", "file", f.Path(), "err", err)
		})
	}()
	return m, nil
}

// prepare makes p's runtime SA configurations (p.dp) copies of its
// configured ones that resume from the state file. It fails when an SA that
// is not new has no record. The configuration p.cfg, which Reload
// compares, is not changed.
func (m *manualState) prepare(p *prepared) error {
	dc := &p.cfg.Dataplane
	if dc.Outbound != nil {
		out := *dc.Outbound
		if err := m.file.Outbound(&out, p.cfg.OutNew); err != nil {
			return fmt.Errorf("tunnel %q: sa.out: %w", dc.Name, err)
		}
		p.dp.Outbound = &out
	}
	if dc.Inbound != nil {
		in := *dc.Inbound
		if err := m.file.Inbound(&in, p.cfg.InNew); err != nil {
			return fmt.Errorf("tunnel %q: sa.in: %w", dc.Name, err)
		}
		p.dp.Inbound = &in
	}
	return nil
}

// track records the window tops of the inbound SAs of a started tunnel.
func (m *manualState) track(t *tunnel) {
	for _, sa := range t.dp.InboundSAs() {
		m.file.Track(sa)
	}
}

// removed records the last state of a manual tunnel taken down: its
// outbound reservation finishes, its inbound tops are written, and they are
// not tracked any more.
func (m *manualState) removed(out *esp.SA, in []*esp.SA) {
	if out != nil {
		out.WaitReservation()
	}
	m.sync()
	for _, sa := range in {
		m.file.Untrack(sa)
	}
}

// sync writes the window tops now.
func (m *manualState) sync() {
	if err := m.file.Sync(); err != nil {
		m.log.Warn("writing the state file of manual SAs failed", "file", m.file.Path(), "err", err)
	}
}

// close writes the final state at a clean stop, after the dataplane has
// stopped: the outbound reservations that still run finish first (sas),
// then the inbound tops are written exactly.
func (m *manualState) close(sas []*esp.SA) error {
	for _, sa := range sas {
		sa.WaitReservation()
	}
	m.cancel()
	m.done.Wait()
	return m.file.Close()
}

// isManual reports whether a tunnel is keyed by hand.
func (p *prepared) isManual() bool {
	return p.cfg.Dataplane.Outbound != nil || p.cfg.Dataplane.Inbound != nil
}
