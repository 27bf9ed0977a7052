//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/greipsec/greipsec/internal/lab"
)

// TestNetnsCheckRoutes: check and up against a host's routes, in a
// namespace. A route to the peer's own address would carry the tunnel's
// ESP into the tunnel: check fails and up refuses before creating
// anything. A route that exists on the host already is a warning of check
// (up would fail to add it).
func TestNetnsCheckRoutes(t *testing.T) {
	needRoot(t)
	l, err := lab.New(lab.RandomPrefix("gc"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	dir := t.TempDir()
	run := func(name string, cfg string, args ...string) (string, error) {
		path := filepath.Join(dir, name+".toml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(greipsecBinary(t), append(args, "-c", path)...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := l.Start(&l.A, cmd); err != nil {
			t.Fatal(err)
		}
		err := l.Wait(cmd)
		return out.String(), err
	}
	routes := `routes = ["10.2.0.0/24", "fd00:2::/64"]`
	loop := exampleConfig(t, "site-a.toml", routes, `routes = ["10.2.0.0/24", "192.0.2.2/32"]`)
	out, err := run("loop", loop, "check")
	if err == nil || !strings.Contains(out, `routes[1]: 192.0.2.2/32 contains the peer 192.0.2.2`) {
		t.Errorf("check of a looping route: %v\n%s", err, out)
	}
	out, err = run("loop", loop, "up", "--allow-example-psk", "--control", filepath.Join(dir, "ctl.sock"))
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(out, "contains the peer") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("up with a looping route: %v\n%s", err, out)
	}
	if ifaces, _ := exec.Command("ip", "-n", l.A.Name, "-o", "link", "show", "gre0").CombinedOutput(); strings.Contains(string(ifaces), "gre0:") {
		t.Errorf("up created gre0 before refusing")
	}

	if out, err := exec.Command("ip", "-n", l.A.Name, "route", "add", "10.2.0.0/24", "via", "192.0.2.2").CombinedOutput(); err != nil {
		t.Fatalf("ip route add: %v: %s", err, out)
	}
	out, err = run("exists", exampleConfig(t, "site-a.toml"), "check")
	if err != nil || !strings.Contains(out, `warning: `) || !strings.Contains(out, `routes[0]: 10.2.0.0/24 already exists on this host (via 192.0.2.2 dev `+l.A.Link+`)`) {
		t.Errorf("check of a route the host has: %v\n%s", err, out)
	}
}
