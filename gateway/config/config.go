// Package config reads greipsec's configuration file.
//
// A file is a TOML document with one [[tunnel]] table per tunnel, keyed
// either by IKEv2 ([tunnel.ike]) or by hand ([tunnel.sa.out] and
// [tunnel.sa.in]), and the optional [control] and [metrics] tables of the
// running daemon; see examples/site-a.toml and examples/manual-a.toml for
// every key, with a comment on each, and examples/netstack-a.toml for the
// keys of a tunnel with inner = "netstack" (dns, [tunnel.socks5],
// [tunnel.http-proxy], [[tunnel.forward]]; inner.go). Parse checks the
// whole file before anything starts and reports each mistake once, naming
// the file, the line, the tunnel and the key, and saying what was
// expected:
//
//	site-a.toml:7: tunnel "gre0": mode: unknown mode "gre" (expected gre-transport, gre-tunnel or route)
//
// Unknown keys are mistakes too, so a misspelt key is never silently
// ignored. A pre-shared key is read when the file is (also from psk-file
// or psk-env), and never appears in a message.
package config

import (
	"fmt"
	"os"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/ikev2"
	"github.com/greipsec/greipsec/tun"
)

// Tunnel is one [[tunnel]] of the file: what the dataplane runs, what is
// set on the inner interface, and how the tunnel is keyed. A tunnel keyed
// by IKE has IKE set and no manual SAs (Dataplane.Outbound and Inbound are
// nil); a manually keyed one has both SAs and a nil IKE.
type Tunnel struct {
	Dataplane dataplane.TunnelConfig
	Link      tun.LinkConfig
	IKE       *ikev2.Config // from [tunnel.ike]; nil for manual keys
	Inner     Inner         // inner: a TUN device, or a netstack
	Netstack  *Netstack     // with inner = "netstack": its DNS, proxies and forwards; else nil
	// Keepalive is the interval of GRE keepalives ([tunnel.gre]
	// keepalive), 0 for none; after KeepaliveRetries intervals without a
	// reply the tunnel counts as down.
	Keepalive        time.Duration
	KeepaliveRetries int
	// LinkFollowsIKE: link-follows-ike = true, the inner interface has
	// its carrier only while the tunnel has an IKE SA (tun.SetCarrier).
	LinkFollowsIKE bool
	// OutNew, InNew: the manual SA's "new = true": its key has never been
	// used, so it may start without a record in the state file.
	OutNew, InNew bool
}

// Config is a whole configuration file.
type Config struct {
	Path    string   // the file it was read from
	Tunnels []Tunnel // in the order of the file; at least one
	Control Control  // [control]: the control socket
	Metrics Metrics  // [metrics]: the Prometheus endpoint
	// StateFile is the top-level state-file, absolute: where the sequence
	// numbers of manual SAs are kept across restarts (package
	// esp/seqstate). Default: the configuration file's path + ".state".
	StateFile string
}

// Load reads and parses the configuration file at path. A file that cannot
// be read gives an error wrapping the os error ("config: open ..."); for
// the mistakes in a file see Parse.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse parses a configuration file's contents; path is used in messages,
// and a relative psk-file is relative to its directory. Parse reads the
// files and environment variables that psk-file and psk-env name. On a
// mistake it returns no Config and an error made of one *Error per mistake
// (several are joined with errors.Join), in the order of the file.
func Parse(path string, data []byte) (*Config, error) {
	cfg, _, err := parse(path, data)
	return cfg, err
}

// parse is Parse that also returns the parser, for tests.
func parse(path string, data []byte) (*Config, *parser, error) {
	p := &parser{file: path}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, p, syntaxError(path, data, err)
	}
	p.pos = scanPositions(data)
	top := p.table(nil, nil, nil, raw)
	list := p.tunnelTables(top)
	stateFile := p.stateFile(top)
	control, metrics := p.readControl(top), p.readMetrics(top)
	top.finish()
	if n := p.pos.count([]string{"tunnel"}); n != 0 && n != len(list) {
		// The position scanner lost its way; better no line numbers
		// than wrong ones. Errors found so far have none either.
		p.pos = nil
		for _, e := range p.errs {
			e.Line = 0
		}
	}

	cfg := &Config{Path: path, StateFile: stateFile, Control: control, Metrics: metrics}
	var infos []*tunnelInfo
	for i, m := range list {
		if m == nil {
			continue
		}
		ti := p.tunnel(i, m)
		infos = append(infos, ti)
		cfg.Tunnels = append(cfg.Tunnels, ti.cfg)
	}
	if len(list) == 0 && len(p.errs) == 0 {
		p.errs = append(p.errs, &Error{File: path, Line: top.line("tunnel"), Key: "tunnel",
			Msg: "no tunnels: the array is empty"})
	}
	p.crossCheck(infos)
	if err := joinErrors(p.errs); err != nil {
		return nil, p, err
	}
	return cfg, p, nil
}

// tunnelTables returns the tables of the top-level "tunnel" array.
func (p *parser) tunnelTables(top *table) []map[string]any {
	v, ok := top.get("tunnel")
	if !ok {
		for k := range top.m {
			if k != "control" && k != "metrics" && k != "state-file" {
				return nil // finish reports the keys there are, and says what belongs there
			}
		}
		p.errs = append(p.errs, &Error{
			File: p.file,
			Msg:  "no tunnels: the file needs at least one [[tunnel]] table",
		})
		return nil
	}
	switch v := v.(type) {
	case []map[string]any: // [[tunnel]] tables
		return v
	case []any: // tunnel = [{...}, {...}]
		var list []map[string]any
		for i, e := range v {
			m, ok := e.(map[string]any)
			if !ok {
				top.elemErrorf("tunnel", i, "must be a table, got %s", describe(e))
			}
			list = append(list, m) // nil for a bad element, to keep the indices
		}
		return list
	case map[string]any:
		top.errorf("tunnel", "write [[tunnel]] (an array of tables, one per tunnel), not [tunnel]")
	default:
		top.errorf("tunnel", "must be [[tunnel]] tables, got %s", describe(v))
	}
	return nil
}
