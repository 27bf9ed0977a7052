package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/greipsec/greipsec/cmd/greipsec/config"
	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/tun"
)

// cmdUp brings up every tunnel of the config file and runs until SIGINT or
// SIGTERM. Whatever it created (TUN devices, addresses, routes) is removed
// on the way out, also when a later tunnel fails to come up.
func cmdUp(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	verbose := fs.Bool("v", false, "log debug messages")
	path, err := configPath(fs, args)
	if err != nil {
		return err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	gw, err := startGateway(cfg, log)
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, append([]os.Signal{os.Interrupt, syscall.SIGTERM}, statsSignals...)...)
	for sig := range sigs {
		if sig != os.Interrupt && sig != syscall.SIGTERM {
			gw.logStats()
			continue
		}
		log.Info("shutting down", "signal", sig.String())
		break
	}
	gw.logStats()
	return gw.close()
}

// gateway is what "up" runs: one dataplane Device with its tunnels, and the
// undo functions for the interface configuration.
type gateway struct {
	log    *slog.Logger
	device *dataplane.Device
	ike    *ikeRunner
	state  *manualState // nil without manual SAs
	undo   []func() error
}

func startGateway(cfg *config.Config, log *slog.Logger) (gw *gateway, err error) {
	// IKE sessions first: a config they refuse fails before anything runs.
	ike := newIKERunner(log)
	peers := make(map[string]*ikePeer)
	for _, tc := range cfg.Tunnels {
		if tc.IKE != nil {
			// transport = "udp" means ESP-in-UDP always, NAT or not:
			// claim a NAT, as swanctl's "encap = yes" does.
			if tc.Dataplane.Transport == dataplane.TransportUDP {
				tc.IKE.ForceEncap = true
			}
			p, err := ike.addPeer(tc.IKE)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", cfg.Path, err)
			}
			peers[tc.Dataplane.Name] = p
		}
	}
	// Manual SAs resume their sequence numbers from the state file.
	state, err := openManualState(cfg, log)
	if err != nil {
		return nil, err
	}
	gw = &gateway{log: log, device: dataplane.NewDevice(dataplane.Options{Logger: log, IKE: ike.receive4500}), state: state}
	ike.device = gw.device
	defer func() {
		if err != nil {
			gw.close()
		}
	}()
	for _, tc := range cfg.Tunnels {
		dc := tc.Dataplane
		mtu, err := dataplane.ResolveMTU(&dc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Path, err)
		}
		dev, err := tun.Create(dc.Interface, mtu)
		if err != nil {
			return nil, fmt.Errorf("tunnel %q: create TUN device %q: %w", dc.Name, dc.Interface, err)
		}
		t, err := gw.device.AddTunnel(dc, dev)
		if err != nil {
			dev.Close()
			return nil, err
		}
		link := tc.Link
		link.MTU = mtu
		undo, err := tun.Configure(dc.Interface, link)
		if err != nil {
			return nil, fmt.Errorf("tunnel %q: %w", dc.Name, err)
		}
		gw.undo = append(gw.undo, undo)
		if p := peers[dc.Name]; p != nil {
			p.tunnel = t
		}
		if state != nil {
			state.track(t)
		}
		o := t.Overhead()
		log.Info("tunnel up", "tunnel", dc.Name, "interface", dc.Interface, "mode", dc.Mode, "transport", dc.Transport,
			"local", dc.Local, "peer", dc.Peer, "mtu", mtu, "mss4", o.MSS4(), "mss6", o.MSS6())
	}
	if len(peers) > 0 {
		if err := ike.listen(); err != nil {
			return nil, err
		}
		gw.ike = ike
		ike.start()
	}
	if state != nil {
		state.start()
	}
	return gw, nil
}

func (gw *gateway) logStats() {
	for _, t := range gw.device.Tunnels() {
		s := t.Stats()
		args := []any{"tunnel", t.Name(),
			"tx_packets", s.TxPackets.Load(), "tx_bytes", s.TxBytes.Load(),
			"rx_packets", s.RxPackets.Load(), "rx_bytes", s.RxBytes.Load(),
			"no_sa", s.NoSA.Load(), "seq_exhausted", s.SeqExhausted.Load(), "bad_inner", s.BadInner.Load(),
			"send_errors", s.SendErrors.Load(), "write_errors", s.WriteErrors.Load()}
		if sa := t.OutboundSA(); sa != nil {
			st := sa.Stats()
			args = append(args, "out_spi", fmt.Sprintf("0x%08x", sa.SPI()),
				"reserve_waits", st.ReserveWaits, "reserve_errors", st.ReserveErrors)
		}
		for _, sa := range t.InboundSAs() {
			st := sa.Stats()
			args = append(args, "in_spi", fmt.Sprintf("0x%08x", sa.SPI()),
				"auth_failures", st.AuthFailures, "replays", st.Replays, "bad_padding", st.BadPadding,
				"bad_next_header", st.BadNextHeader, "bad_gre", st.BadGRE, "bad_selector", st.BadSelector)
		}
		gw.log.Info("counters", args...)
	}
	ds := gw.device.Stats()
	gw.log.Info("device counters", "unknown_spi", ds.UnknownSPI.Load(), "malformed", ds.Malformed.Load(),
		"keepalives", ds.Keepalives.Load(), "ike", ds.IKE.Load())
}

func (gw *gateway) close() error {
	if gw.ike != nil {
		gw.ike.close() // sends DELETE while the sockets are still open
	}
	for i := len(gw.undo) - 1; i >= 0; i-- {
		if err := gw.undo[i](); err != nil {
			gw.log.Warn("removing interface configuration", "err", err)
		}
	}
	err := gw.device.Close()
	if gw.state != nil {
		if serr := gw.state.stop(gw.device); serr != nil && err == nil {
			err = serr
		}
	}
	return err
}
