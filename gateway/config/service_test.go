package config

import (
	"errors"
	"strings"
	"testing"
)

// service is a [control] and a [metrics] table before base's tunnel: the
// control table is on line 1, the metrics table on line 5.
const service = `[control]
socket = "/run/gq/ctl.sock"
group = "greipsec"

[metrics]
address = "127.0.0.1:9712"

`

// TestServiceTables: [control] and [metrics] are read, with their defaults
// when absent.
func TestServiceTables(t *testing.T) {
	cfg, err := Parse("test.toml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Control != (Control{Socket: DefaultControlSocket}) || cfg.Metrics != (Metrics{}) {
		t.Errorf("defaults: control %+v, metrics %+v", cfg.Control, cfg.Metrics)
	}
	cfg, err = Parse("test.toml", []byte(service+base))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Control != (Control{Socket: "/run/gq/ctl.sock", Group: "greipsec"}) || cfg.Metrics.Address != "127.0.0.1:9712" {
		t.Errorf("control %+v, metrics %+v", cfg.Control, cfg.Metrics)
	}
	// The tables may also follow the tunnels.
	cfg, err = Parse("test.toml", []byte(base+"\n"+service))
	if err != nil || cfg.Metrics.Address != "127.0.0.1:9712" || len(cfg.Tunnels) != 1 {
		t.Errorf("tables after the tunnels: %+v, %v", cfg, err)
	}
}

// TestServiceErrors: each mistake in [control] and [metrics] is one error
// with the file, the line and the key.
func TestServiceErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		line int
		want string
	}{
		{"relative socket", edit(service, `"/run/gq/ctl.sock"`, `"ctl.sock"`), 2, `control.socket: "ctl.sock" is not an absolute path`},
		{"long socket", edit(service, `"/run/gq/ctl.sock"`, `"/`+strings.Repeat("x", 120)+`"`), 2, "control.socket: is 121 bytes long; a Unix socket path holds at most 107"},
		{"socket not a string", edit(service, `"/run/gq/ctl.sock"`, `1`), 2, "control.socket: must be a string, got the integer 1"},
		{"bad group", edit(service, `"greipsec"`, `"-wheel"`), 3, `control.group: "-wheel" is not a group name or ID`},
		{"misspelt key", edit(service, "group =", "grup ="), 3, "control.grup: unknown key (did you mean group?)"},
		{"unknown key", edit(service, "group =", "owner ="), 3, "control.owner: unknown key (expected one of: socket, group)"},
		{"metrics no port", edit(service, `"127.0.0.1:9712"`, `"127.0.0.1"`), 6, `metrics.address: "127.0.0.1": missing port in address`},
		{"metrics bad port", edit(service, `"127.0.0.1:9712"`, `"127.0.0.1:http"`), 6, "the port must be a number from 1 to 65535"},
		{"metrics port 0", edit(service, `"127.0.0.1:9712"`, `"127.0.0.1:0"`), 6, "the port must be a number from 1 to 65535"},
		{"metrics misspelt", edit(service, "address =", "adress ="), 6, "metrics.adress: unknown key (did you mean address?)"},
		{"control not a table", "control = 5\n", 1, "control: must be a table"},
		{"misspelt table", edit(service, "[metrics]", "[metric]"), 5, "metric: unknown key (did you mean metrics?)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("test.toml", []byte(tc.doc+base))
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("more than one error: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.Line != tc.line {
				t.Errorf("error at line %d, want %d: %v", e.Line, tc.line, err)
			}
		})
	}
	// A file with only [control] has no tunnels.
	if _, err := Parse("test.toml", []byte(service)); err == nil || !strings.Contains(err.Error(), "no tunnels: the file needs at least one [[tunnel]] table") {
		t.Errorf("a file without tunnels: %v", err)
	}
}
