//go:build unix

package control

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/greipsec/greipsec/gateway"
)

// fakeBackend answers as a gateway with one IKE tunnel "gre0" and one
// manual tunnel "m1" would, and records the commands.
type fakeBackend struct {
	calls  []string
	reload error
}

func (f *fakeBackend) Status() gateway.Status {
	return gateway.Status{Ready: true, Tunnels: []gateway.TunnelStatus{{Name: "gre0"}, {Name: "m1"}}}
}

func (f *fakeBackend) TunnelStatus(name string) (gateway.TunnelStatus, error) {
	if name != "gre0" && name != "m1" {
		return gateway.TunnelStatus{}, fmt.Errorf("%w %q", gateway.ErrUnknownTunnel, name)
	}
	return gateway.TunnelStatus{Name: name, MTU: 1434}, nil
}

func (f *fakeBackend) command(verb, name string, t gateway.Target) (string, error) {
	f.calls = append(f.calls, verb+" "+name+" "+t.String())
	switch name {
	case "gre0":
		return verb + " done", nil
	case "m1":
		return "", fmt.Errorf("%w: tunnel %q", gateway.ErrManual, name)
	}
	return "", fmt.Errorf("%w %q", gateway.ErrUnknownTunnel, name)
}

func (f *fakeBackend) Initiate(n string, t gateway.Target) (string, error) {
	return f.command("initiate", n, t)
}
func (f *fakeBackend) Terminate(n string, t gateway.Target) (string, error) {
	return f.command("terminate", n, t)
}
func (f *fakeBackend) Rekey(n string, t gateway.Target) (string, error) {
	return f.command("rekey", n, t)
}
func (f *fakeBackend) Reload() (gateway.ReloadResult, error) {
	return gateway.ReloadResult{ReloadPlan: gateway.ReloadPlan{Unchanged: []string{"gre0"}, Added: []string{}, Removed: []string{"m1"}, Changed: []string{}}}, f.reload
}

// TestAPI runs every call of the client against a served fake backend:
// answers decode, errors map to their status codes and back to messages.
func TestAPI(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl.sock")
	l, err := Listen(path, "")
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeBackend{}
	srv := Serve(l, b)
	defer srv.Close()
	c := NewClient(path, 5*time.Second)

	st, err := c.Status()
	if err != nil || !st.Ready || len(st.Tunnels) != 2 {
		t.Errorf("Status: %+v, %v", st, err)
	}
	ts, err := c.Tunnel("gre0")
	if err != nil || ts.MTU != 1434 {
		t.Errorf("Tunnel: %+v, %v", ts, err)
	}
	_, err = c.Tunnel("nope")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != 404 || !strings.Contains(err.Error(), `no tunnel "nope"`) {
		t.Errorf("unknown tunnel: %v", err)
	}
	if msg, err := c.Rekey("gre0", gateway.TargetIKE); err != nil || msg != "rekey done" {
		t.Errorf("Rekey: %q, %v", msg, err)
	}
	if _, err := c.Initiate("m1", gateway.TargetChild); !errors.As(err, &ae) || ae.Code != 409 || !strings.Contains(err.Error(), "manual keys") {
		t.Errorf("initiate on a manual tunnel: %v", err)
	}
	c.Terminate("gre0", gateway.TargetChild)
	if want := "rekey gre0 ike,initiate m1 child,terminate gre0 child"; strings.Join(b.calls, ",") != want {
		t.Errorf("calls %q, want %q", strings.Join(b.calls, ","), want)
	}
	res, err := c.Reload()
	if err != nil || len(res.Removed) != 1 {
		t.Errorf("Reload: %+v, %v", res, err)
	}
	b.reload = errors.New(`test.toml:3: tunnel "gre0": mode: unknown mode "gre"`)
	res, err = c.Reload()
	if err == nil || err.Error() != b.reload.Error() || len(res.Unchanged) != 1 {
		t.Errorf("a failed Reload: %+v, %v", res, err)
	}
	if v, err := c.Version(); err != nil || v.GoVersion == "" {
		t.Errorf("Version: %+v, %v", v, err)
	}
}

// TestListen: the socket is owner-only from the start, or group-usable
// with a group; a stale socket is replaced, a live one is another greipsec
// and an error, as is a file that is not a socket.
func TestListen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "greipsec") // created by Listen
	path := filepath.Join(dir, "greipsec.sock")
	l, err := Listen(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket mode %v, %v; want a socket with 0600", fi.Mode(), err)
	}
	if _, err := Listen(path, ""); err == nil || !strings.Contains(err.Error(), "another greipsec is running") {
		t.Errorf("a second Listen on a live socket: %v", err)
	}
	// A process that dies leaves the file behind.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	l, err = Listen(path, "")
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	l.Close()

	notSock := filepath.Join(dir, "file")
	os.WriteFile(notSock, nil, 0o600)
	if _, err := Listen(notSock, ""); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("Listen on a regular file: %v", err)
	}
	if _, err := Listen(filepath.Join(dir, strings.Repeat("x", 120)), ""); err == nil || !strings.Contains(err.Error(), "at most 107") {
		t.Errorf("a path too long: %v", err)
	}
	if _, err := Listen(path, "no-such-group-greipsec"); err == nil || !strings.Contains(err.Error(), `group "no-such-group-greipsec"`) {
		t.Errorf("an unknown group: %v", err)
	}

	g, err := user.LookupGroupId(fmt.Sprint(os.Getgid()))
	if err != nil {
		t.Skipf("no name for our group: %v", err)
	}
	l, err = Listen(path, g.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o660 || fi.Sys().(*syscall.Stat_t).Gid != uint32(os.Getgid()) {
		t.Errorf("socket with group %s: mode %v, %v", g.Name, fi.Mode(), err)
	}
}

// TestListenSharedDir: in a directory every user may write to (as /tmp,
// where an unprivileged greipsec keeps its socket by default), the
// socket's directory must be this user's alone: one that another user made
// first, or that others may write to, is refused, since they could put
// their own socket where the commands connect.
func TestListenSharedDir(t *testing.T) {
	shared := t.TempDir()
	if err := os.Chmod(shared, 0o1777); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(shared, "greipsec-me")
	l, err := Listen(filepath.Join(mine, "greipsec.sock"), "")
	if err != nil {
		t.Fatalf("Listen in a new directory of ours: %v", err)
	}
	l.Close()

	loose := filepath.Join(shared, "greipsec-loose")
	os.Mkdir(loose, 0o700)
	os.Chmod(loose, 0o777)
	if _, err := Listen(filepath.Join(loose, "greipsec.sock"), ""); err == nil || !strings.Contains(err.Error(), "may be written by others") {
		t.Errorf("Listen in a directory others may write to: %v", err)
	}

	theirs := filepath.Join(shared, "greipsec-theirs")
	os.Mkdir(theirs, 0o755)
	if err := os.Chown(theirs, 65534, 65534); err != nil {
		t.Skipf("cannot give a directory to another user (not root): %v", err)
	}
	if _, err := Listen(filepath.Join(theirs, "greipsec.sock"), ""); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Errorf("Listen in another user's directory: %v", err)
	}
}
