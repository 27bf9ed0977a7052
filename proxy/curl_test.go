package proxy_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/greipsec/greipsec/proxy"
)

// needCurl returns the path of curl, installing Debian's package when it is
// missing and the test runs as root (as CI does).
func needCurl(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("curl"); err == nil {
		return p
	}
	if os.Geteuid() != 0 {
		t.Skip("needs the curl binary, and root to install it with apt-get (CI runs as root)")
	}
	t.Log("curl not found: installing it with apt-get")
	cmd := exec.Command("sh", "-c", "apt-get -o DPkg::Lock::Timeout=300 update -qq && apt-get -o DPkg::Lock::Timeout=300 install -y -qq curl")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("installing curl: %v\n%s", err, out)
	}
	p, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCurl fetches pages from site B with the real curl binary through the
// SOCKS5 proxy (names resolved by the proxy on the far site, and by
// address; with and without a password) and through the HTTP proxy (plain
// requests and CONNECT), all listening on loopback.
func TestCurl(t *testing.T) {
	curl := needCurl(t)
	e := newEnv(t)
	_, socks := e.socks5(t, nil)
	_, socksAuth := e.socks5(t, func(s *proxy.SOCKS5) { s.Users = map[string]string{"alice": "s3cret"} })
	_, httpProxy := e.httpProxy(t, nil)

	for _, tc := range []struct {
		name string
		args []string
		path string
	}{
		{"SOCKS5, name resolved by the proxy", []string{"--socks5-hostname", socks}, "http://" + webName + "/curl-socks5h"},
		{"SOCKS5, address", []string{"--socks5", socks}, "http://10.255.0.2/curl-socks5"},
		{"SOCKS5, IPv6 address", []string{"--socks5", socks}, "http://[fd00:255::2]/curl-socks5-v6"},
		{"SOCKS5 with a password", []string{"-x", "socks5h://alice:s3cret@" + socksAuth}, "http://" + webName + "/curl-auth"},
		{"HTTP proxy, absolute URI", []string{"-x", "http://" + httpProxy}, "http://" + webName + "/curl-http"},
		{"HTTP proxy, CONNECT", []string{"-p", "-x", "http://" + httpProxy}, "http://" + webName + "/curl-connect"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		args := append([]string{"-sS", "--fail", "--max-time", "10"}, tc.args...)
		cmd := exec.CommandContext(ctx, curl, append(args, tc.path)...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()} // no proxy settings from the environment
		out, err := cmd.CombinedOutput()
		cancel()
		want := "hello from site B /" + tc.path[strings.LastIndex(tc.path, "/")+1:]
		if err != nil || string(out) != want {
			t.Errorf("%s: curl %s: %v: %q, want %q", tc.name, strings.Join(cmd.Args[1:], " "), err, out, want)
		}
	}

	// A wrong password, and a closed port (reply 5), as curl reports them.
	cmd := exec.Command(curl, "-sS", "--max-time", "10", "-x", "socks5h://alice:wrong@"+socksAuth, "http://"+webName+"/")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "User was rejected") {
		t.Errorf("wrong password: %v: %s, want the user rejected", err, out)
	}
	cmd = exec.Command(curl, "-sS", "--max-time", "10", "--socks5", socks, "http://10.255.0.2:9/")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "SOCKS5 connection to 10.255.0.2. (5)") {
		t.Errorf("closed port: %v: %s, want reply 5 (connection refused)", err, out)
	}
}
