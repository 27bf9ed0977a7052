package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/greipsec/greipsec/gateway"
)

// TestCommandLine: every bad command line gets one clear error before
// anything starts; usage errors are marked so main prints the usage.
func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[[tunnel]]\nname = \"gre0\"\nmode = \"gre\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{nil, true, "no command given"},
		{[]string{"frobnicate"}, true, `unknown command "frobnicate"`},
		{[]string{"up", "-c", filepath.Join(dir, "missing.toml")}, false, "missing.toml"},
		{[]string{"up", "-x"}, true, "up: flag provided but not defined: -x (flags of up: --allow-example-psk, -c, --control, --log-format, --log-level, --metrics, --state-file, --user, -v)"},
		{[]string{"up", "-c", bad, "extra"}, true, `unexpected argument "extra"`},
		{[]string{"up", "-c", bad, "--log-level", "loud"}, true, `up: --log-level: unknown level "loud" (expected debug, info, warn or error)`},
		{[]string{"up", "-c", bad, "--log-format", "xml"}, true, `--log-format: unknown format "xml"`},
		{[]string{"check", "-c", bad}, false, `bad.toml:3: tunnel "gre0": mode: unknown mode "gre"`},
		{[]string{"check", "-c", filepath.Join(dir, "nothing.toml")}, false, "nothing.toml: no such file"},
		{[]string{"keygen"}, true, "keygen: want one algorithm"},
		{[]string{"keygen", "des"}, true, "des"},
		{[]string{"demo", "-transport", "gre"}, true, `unknown transport "gre"`},
		{[]string{"bench", "--mode", "kernel"}, true, `bench: --mode: unknown mode "kernel" (expected auto, netns or memory)`},
		{[]string{"bench", "--size", "64,20"}, true, `bench: --size: packet size "20": expected a number of bytes from 48 to 1400`},
		{[]string{"bench", "--size", "big"}, true, `bench: --size: packet size "big"`},
		{[]string{"bench", "--alg", "aes256gcm16,des"}, true, `bench: --alg: esp: unknown algorithm "des"`},
		{[]string{"bench", "--transport", "tcp"}, true, `bench: --transport: unknown transport "tcp" (expected esp, udp or esp,udp)`},
		{[]string{"bench", "--duration", "1ms"}, true, "bench: --duration 1ms: expected 50ms to 1h"},
		{[]string{"bench", "--duration", "soon"}, true, "bench: invalid value \"soon\" for flag -duration"},
		{[]string{"bench", "extra"}, true, `bench: unexpected argument "extra"`},
		{[]string{"bench", "--mode", "memory", "--svg", filepath.Join(dir, "no", "such", "dir.svg")}, false, "bench: --svg: open " + filepath.Join(dir, "no", "such", "dir.svg")},
		{[]string{"show", "a", "b"}, true, `show: unexpected argument "b"`},
		{[]string{"show", "--jsn"}, true, "show: flag provided but not defined: -jsn (flags of show: --control, --json)"},
		{[]string{"rekey"}, true, "rekey: want one tunnel name"},
		{[]string{"rekey", "gre0", "--ike", "--child"}, true, "--ike and --child exclude each other"},
		{[]string{"initiate", "gre0", "--control", filepath.Join(dir, "none.sock")}, false, "cannot reach greipsec at " + filepath.Join(dir, "none.sock")},
		{[]string{"reload", "--control", filepath.Join(dir, "none.sock")}, false, "is `greipsec up` running"},
		{[]string{"help", "nothing"}, true, `help: unknown command "nothing"`},
		{[]string{"version", "x"}, true, `version: unexpected argument "x"`},
	} {
		err := run(tc.args, new(bytes.Buffer), new(bytes.Buffer))
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, errUsage) != tc.usage {
			t.Errorf("greipsec %s: error %v (usage %v), want one containing %q (usage %v)",
				strings.Join(tc.args, " "), err, errors.Is(err, errUsage), tc.want, tc.usage)
		}
	}
}

// TestCheckAndKeygen: the examples check clean with their derived MTU, and
// keygen prints a key of the algorithm's length.
func TestCheckAndKeygen(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"check", "-c", "../../examples/manual-a.toml"}, &out, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "1442") || !strings.Contains(out.String(), "manual-a.toml: ok") {
		t.Errorf("check output:\n%s", out.String())
	}
	out.Reset()
	if err := run([]string{"keygen", "aes256gcm16"}, &out, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	if k := strings.TrimSpace(out.String()); len(k) != 2+72 || !strings.HasPrefix(k, "0x") {
		t.Errorf("keygen aes256gcm16 printed %q, want 0x and 72 hex digits", k)
	}
}

// TestHelp: "help CMD", "CMD --help" and "CMD -h" print the command's usage
// and flags and succeed; "help" and "--help" list every command.
func TestHelp(t *testing.T) {
	for _, c := range commands {
		var want bytes.Buffer
		if err := run([]string{"help", c.name}, &want, new(bytes.Buffer)); err != nil {
			t.Fatalf("help %s: %v", c.name, err)
		}
		if !strings.HasPrefix(want.String(), "usage: greipsec "+c.name) {
			t.Errorf("help %s printed %q", c.name, want.String())
		}
		for _, flag := range []string{"--help", "-h"} {
			var out bytes.Buffer
			if err := run([]string{c.name, flag}, &out, new(bytes.Buffer)); err != nil {
				t.Errorf("%s %s: %v", c.name, flag, err)
			}
			if out.String() != want.String() {
				t.Errorf("%s %s printed\n%s\nwant\n%s", c.name, flag, out.String(), want.String())
			}
		}
	}
	var out bytes.Buffer
	if err := run([]string{"help", "up"}, &out, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-c file", "configuration file (default /etc/greipsec/greipsec.toml)", "--log-level level", "--log-format format", "--control path", "--metrics host:port", "SIGHUP"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help up lacks %q:\n%s", want, out.String())
		}
	}
	for _, args := range [][]string{{"help"}, {"--help"}} {
		out.Reset()
		if err := run(args, &out, new(bytes.Buffer)); err != nil {
			t.Fatal(err)
		}
		for _, c := range commands {
			if !strings.Contains(out.String(), "  "+c.name+" ") {
				t.Errorf("%v does not list %s:\n%s", args, c.name, out.String())
			}
		}
	}
}

// TestVersion: version prints the module version and the VCS revision from
// the build information (a test binary has "(devel)" and no revision).
func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"version"}, &out, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	v, rev, gov := gateway.BuildInfo()
	want := fmt.Sprintf("greipsec %s (revision %s, %s)\n", v, rev, gov)
	if out.String() != want || !strings.HasPrefix(gov, "go") {
		t.Errorf("version printed %q, want %q", out.String(), want)
	}
}

// TestSecondSignal: while the shutdown hangs, a second SIGTERM or SIGINT
// exits at once with status 1; SIGHUP does not; a shutdown that finishes
// returns its result.
func TestSecondSignal(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, sig := range []os.Signal{syscall.SIGTERM, os.Interrupt} {
		sigs := make(chan os.Signal, 2)
		hang := make(chan struct{})
		exited := make(chan int, 1)
		sigs <- syscall.SIGHUP // ignored
		sigs <- sig
		stopOrExit(log, sigs, func() error { <-hang; return nil }, func(code int) { exited <- code })
		select {
		case code := <-exited:
			if code != 1 {
				t.Errorf("second %v: exit(%d), want exit(1)", sig, code)
			}
		default:
			t.Errorf("second %v while the shutdown hangs: no exit", sig)
		}
		close(hang)
	}
	want := errors.New("undo failed")
	if err := stopOrExit(log, make(chan os.Signal), func() error { return want }, func(int) { t.Error("exit called") }); err != want {
		t.Errorf("a finished shutdown returned %v, want %v", err, want)
	}
}
