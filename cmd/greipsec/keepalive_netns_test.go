//go:build linux

package main

import (
	"encoding/json"
	"net/netip"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/greipsec/greipsec/gateway"
	"github.com/greipsec/greipsec/internal/lab"
)

// TestNetnsGREKeepalive runs the IKE example (GRE over ESP transport mode)
// between two greipsec processes, A sending GRE keepalives every second
// with 2 retries and B only answering them, as a Cisco or OpenBSD peer
// would: A sees its keepalives answered and B reflects them; when B's
// greipsec is SIGKILLed, A counts the tunnel down within a few seconds
// (show --json) and its gre0 loses its carrier, well before dead peer
// detection (30 s by default) notices.
func TestNetnsGREKeepalive(t *testing.T) {
	needRoot(t)
	l, cmds, logs := gateways(t, "site-a.toml", "site-b.toml", func(cfg string) string {
		if localB.MatchString(cfg) {
			return cfg
		}
		return ikeSection.ReplaceAllLiteralString(cfg, "[tunnel.gre]\nkeepalive = \"1s\"\nkeepalive-retries = 2\n\n[tunnel.ike]")
	})
	if !lab.WaitFor(20*time.Second, func() bool {
		n, _ := l.Ping(&l.A, netip.MustParseAddr("10.255.0.2"), 1, time.Second)
		return n == 1
	}) {
		t.Fatal("no ping reply through the tunnel within 20 s")
	}
	show := func(i int) *gateway.KeepaliveStatus {
		out, err := exec.Command(greipsecBinary(t), "show", "gre0", "--json", "--control", logs[i][:len(logs[i])-len(".log")]+".sock").Output()
		if err != nil {
			t.Fatalf("show: %v", err)
		}
		var st gateway.TunnelStatus
		if err := json.Unmarshal(out, &st); err != nil || st.Keepalive == nil {
			t.Fatalf("show --json: %v\n%s", err, out)
		}
		return st.Keepalive
	}
	if !lab.WaitFor(10*time.Second, func() bool { k := show(0); return k.Up && k.Replies >= 2 }) {
		t.Fatalf("A's keepalives not answered: A %+v, B %+v", show(0), show(1))
	}
	if k := show(1); k.Reflected < 2 || k.Sent != 0 {
		t.Errorf("B: %+v, want at least 2 reflected, none sent", k)
	}
	oper := func() netlink.LinkOperState {
		var st netlink.LinkOperState
		l.Do(&l.A, func() error {
			link, err := netlink.LinkByName("gre0")
			if err == nil {
				st = link.Attrs().OperState
			}
			return err
		})
		return st
	}
	if st := oper(); st == netlink.OperDown || st == netlink.OperLowerLayerDown {
		t.Errorf("A's gre0 is %s while keepalives are answered", st)
	}

	killed := time.Now()
	cmds[1].Process.Signal(syscall.SIGKILL)
	l.Wait(cmds[1])
	if !lab.WaitFor(15*time.Second, func() bool { return !show(0).Up }) {
		t.Fatalf("A counts the tunnel up 15 s after B was killed: %+v", show(0))
	}
	t.Logf("A counted the tunnel down %v after B was killed (keepalive 1s, retries 2)", time.Since(killed).Round(10*time.Millisecond))
	if !lab.WaitFor(5*time.Second, func() bool { st := oper(); return st == netlink.OperDown || st == netlink.OperLowerLayerDown }) {
		t.Errorf("A's gre0 is %s with the keepalives unanswered, want down (no carrier)", oper())
	}
}
