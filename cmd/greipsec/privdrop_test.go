//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/greipsec/greipsec/internal/lab"
)

// TestNetnsPrivilegeDrop (review L6): "up --user nobody" drops, after its
// sockets and TUN device exist, to uid/gid 65534 on every thread with only
// CAP_NET_ADMIN, CAP_NET_RAW and CAP_NET_BIND_SERVICE (permitted,
// effective and bounding) and no_new_privs; traffic flows; a reload that
// adds a tunnel (a new TUN device, routes, port 500 on a new address)
// still works; SIGTERM takes everything down.
func TestNetnsPrivilegeDrop(t *testing.T) {
	needRoot(t)
	l, err := lab.New(lab.RandomPrefix("gd"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cfgA, cfgB := exampleConfig(t, "site-a.toml"), exampleConfig(t, "site-b.toml")
	a := startUp(t, l, &l.A, cfgA, "--user", "65534")
	b := startUp(t, l, &l.B, cfgB)
	waitPing(t, l, &l.A, "10.255.0.2")
	// The drop follows the control socket, which startUp waits for.
	if !lab.WaitFor(10*time.Second, func() bool {
		log, _ := os.ReadFile(a.log)
		return strings.Contains(string(log), `msg="privileges dropped"`)
	}) {
		t.Fatal("no privilege drop logged")
	}

	const kept = "0000000000003400" // 1<<12 | 1<<13 | 1<<10
	pid := a.cmd.Process.Pid
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) < 2 {
		t.Fatalf("threads of greipsec: %v %v", tasks, err)
	}
	for _, task := range tasks {
		status, err := os.ReadFile(task)
		if err != nil {
			continue
		}
		for field, want := range map[string]string{
			"Uid": "65534\t65534\t65534\t65534", "Gid": "65534\t65534\t65534\t65534", "Groups": "",
			"CapPrm": kept, "CapEff": kept, "CapBnd": kept, "CapAmb": "0000000000000000", "NoNewPrivs": "1",
		} {
			m := regexp.MustCompile(`(?m)^` + field + `:[ \t]*(.*)$`).FindSubmatch(status)
			if m == nil || strings.TrimSpace(string(m[1])) != want {
				t.Errorf("%s: %s = %q, want %q", task, field, m, want)
			}
		}
	}

	// reload reads the configuration as nobody.
	for _, d := range []string{filepath.Dir(a.config), filepath.Dir(filepath.Dir(a.config))} {
		os.Chmod(d, 0o755)
	}
	os.WriteFile(a.config, []byte(cfgA+fmt.Sprintf(sec1, 1, 2)), 0o600)
	if err := os.Chown(a.config, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(b.config, []byte(cfgB+fmt.Sprintf(sec1, 2, 1)), 0o600)
	if out, err := a.ctl(t, "reload"); err != nil || !strings.Contains(out, "added:     sec1") {
		t.Fatalf("reload as nobody: %q, %v", out, err)
	}
	if out, err := b.ctl(t, "reload"); err != nil {
		t.Fatalf("reload of B: %q, %v", out, err)
	}
	waitPing(t, l, &l.A, "10.255.1.2")

	if err := l.Stop(a.cmd); err != nil && !strings.Contains(err.Error(), "terminated") {
		t.Errorf("stop: %v", err)
	}
	log, _ := os.ReadFile(a.log)
	if !strings.Contains(string(log), `msg="privileges dropped" uid=65534 gid=65534`) || !strings.Contains(string(log), `msg=stopped`) {
		t.Errorf("log:\n%s", log)
	}
	for _, dev := range []string{"gre0", "sec1"} {
		if out, _ := exec.Command("ip", "-n", l.A.Name, "-o", "link", "show", dev).CombinedOutput(); strings.Contains(string(out), dev+":") {
			t.Errorf("%s still exists after the shutdown as nobody", dev)
		}
	}
}
