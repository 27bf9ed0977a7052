package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/greipsec/greipsec/cmd/greipsec/config"
	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/esp/seqstate"
)

// stateSyncInterval is how often the window tops of manual inbound SAs are
// written: after a crash, packets accepted since the last write can be
// replayed once (see package seqstate).
const stateSyncInterval = time.Second

// manualState keeps the sequence numbers of a gateway's manual SAs in its
// state file while it runs.
type manualState struct {
	file   *seqstate.File
	log    *slog.Logger
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// openManualState loads cfg's state file and prepares every manual SA to
// resume from it (esp/seqstate): outbound above every sequence number
// reserved under its key, inbound dropping what it accepted before. It
// returns nil when no tunnel has manual SAs. It fails when an SA that is
// not new has no record, or the file cannot be read.
func openManualState(cfg *config.Config, log *slog.Logger) (*manualState, error) {
	var f *seqstate.File
	for _, tc := range cfg.Tunnels {
		dc := &tc.Dataplane
		if dc.Outbound == nil && dc.Inbound == nil {
			continue
		}
		if f == nil {
			var err error
			if f, err = seqstate.Load(cfg.StateFile); err != nil {
				return nil, fmt.Errorf("%s: state-file: %w", cfg.Path, err)
			}
		}
		if dc.Outbound != nil {
			if err := f.Outbound(dc.Outbound, tc.OutNew); err != nil {
				return nil, fmt.Errorf("%s: tunnel %q: sa.out: %w", cfg.Path, dc.Name, err)
			}
		}
		if dc.Inbound != nil {
			if err := f.Inbound(dc.Inbound, tc.InNew); err != nil {
				return nil, fmt.Errorf("%s: tunnel %q: sa.in: %w", cfg.Path, dc.Name, err)
			}
		}
	}
	if f == nil {
		return nil, nil
	}
	return &manualState{file: f, log: log}, nil
}

// track records the window tops of t's inbound SAs, which were made from
// configurations openManualState prepared.
func (m *manualState) track(t *dataplane.Tunnel) {
	for _, sa := range t.InboundSAs() {
		m.file.Track(sa)
	}
}

// start writes the inbound tops every stateSyncInterval until stop.
func (m *manualState) start() {
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.done.Add(1)
	go func() {
		defer m.done.Done()
		m.file.Run(ctx, stateSyncInterval, func(err error) {
			m.log.Warn("writing the state file of manual SAs failed", "file", m.file.Path(), "err", err)
		})
	}()
}

// stop writes the final state at a clean stop, after the dataplane has
// stopped: outbound reservations that still run finish, and the inbound
// tops are written exactly.
func (m *manualState) stop(device *dataplane.Device) error {
	for _, t := range device.Tunnels() {
		if sa := t.OutboundSA(); sa != nil {
			sa.WaitReservation()
		}
	}
	if m.cancel != nil {
		m.cancel()
		m.done.Wait()
	}
	return m.file.Close()
}
