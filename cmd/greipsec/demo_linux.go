//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/greipsec/greipsec/examples"
	"github.com/greipsec/greipsec/internal/lab"
)

// The inner addresses of the example configs.
var (
	demoInnerA  = netip.MustParseAddr("10.255.0.1")
	demoInnerB  = netip.MustParseAddr("10.255.0.2")
	demoInner6A = netip.MustParseAddr("fd00:255::1")
	demoInner6B = netip.MustParseAddr("fd00:255::2")
)

var transportLine = regexp.MustCompile(`(?m)^transport\s*=\s*"[a-z]+"`)

// runDemo runs the main job on one machine: two gateways, each in its own
// network namespace joined by a veth link, each running "greipsec up" with
// the embedded example configs, and traffic through the tunnel between
// them: ping both ways over IPv4 and IPv6, then a TCP transfer. It does so
// for each of the outer transports in list (raw ESP, ESP-in-UDP), and
// removes everything it created.
func runDemo(list []string, duration time.Duration, stdout, stderr io.Writer) error {
	if os.Geteuid() != 0 {
		return errors.New("demo: needs root to create network namespaces and TUN devices: run it with sudo")
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	dir, err := os.MkdirTemp("", "greipsec-demo")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(dir)

	l, err := lab.New(lab.RandomPrefix("gq"))
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer l.Close()
	// On ^C, remove the namespaces before exiting.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			l.Close()
			os.Exit(1)
		}
	}()

	fmt.Fprintf(stdout, "two gateways: namespace %s (outer %s) and %s (outer %s), joined by a veth link\n",
		l.A.Name, l.A.Addr4.Addr(), l.B.Name, l.B.Addr4.Addr())
	var failed []string
	for _, transport := range list {
		if err := demoTransport(l, exe, dir, transport, duration, stdout, stderr); err != nil {
			fmt.Fprintf(stdout, "  FAILED: %v\n", err)
			failed = append(failed, transport)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("demo: failed for transport %s", strings.Join(failed, ", "))
	}
	fmt.Fprintln(stdout, "demo ok: namespaces and interfaces removed")
	return nil
}

// demoTransport brings up the example tunnel over one transport and sends
// traffic through it.
func demoTransport(l *lab.Lab, exe, dir, transport string, d time.Duration, stdout, stderr io.Writer) error {
	fmt.Fprintf(stdout, "\n== GRE over ESP transport mode keyed by IKEv2, outer transport %q (%s)\n", transport,
		map[string]string{"esp": "raw IP protocol 50", "udp": "ESP-in-UDP, RFC 3948, port 4500"}[transport])
	var cmds []*exec.Cmd
	defer func() {
		for _, c := range cmds {
			l.Stop(c)
		}
	}()
	for _, side := range []struct {
		host *lab.Host
		file string
	}{{&l.A, "site-a.toml"}, {&l.B, "site-b.toml"}} {
		cfg, err := examples.FS.ReadFile(side.file)
		if err != nil {
			return err
		}
		text := transportLine.ReplaceAllLiteralString(string(cfg), fmt.Sprintf("transport = %q", transport))
		path := filepath.Join(dir, transport+"-"+side.file)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			return err
		}
		logPath := filepath.Join(dir, transport+"-"+side.file+".log")
		logFile, err := os.Create(logPath)
		if err != nil {
			return err
		}
		defer logFile.Close()
		// Each gateway has its own control socket: the file system is
		// shared between the namespaces.
		cmd := exec.Command(exe, "up", "--allow-example-psk", "-c", path, "--control", filepath.Join(dir, transport+"-"+side.file+".sock"))
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := l.Start(side.host, cmd); err != nil {
			return fmt.Errorf("start greipsec in %s: %w", side.host.Name, err)
		}
		cmds = append(cmds, cmd)
		fmt.Fprintf(stdout, "  %s: greipsec up -c %s\n", side.host.Name, side.file)
		defer func() {
			if l.Exited(cmd) {
				log, _ := os.ReadFile(logPath)
				fmt.Fprintf(stderr, "greipsec in %s exited:\n%s", side.host.Name, log)
			}
		}()
	}
	for _, h := range []*lab.Host{&l.A, &l.B} {
		if err := l.WaitLink(h, "gre0", 10*time.Second); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
	start := time.Now()
	if !lab.WaitFor(20*time.Second, func() bool {
		n, _ := l.Ping(&l.A, demoInnerB, 1, time.Second)
		return n == 1
	}) {
		return errors.New("IKEv2 did not bring up the Child SA within 20 s")
	}
	fmt.Fprintf(stdout, "  IKEv2 (PSK, aes256-sha384-ecp384 / aes256gcm16) up: first ping through the tunnel after %v\n",
		time.Since(start).Round(10*time.Millisecond))
	for _, p := range []struct {
		from *lab.Host
		dst  netip.Addr
	}{{&l.A, demoInnerB}, {&l.B, demoInnerA}, {&l.A, demoInner6B}, {&l.B, demoInner6A}} {
		rtts, err := l.PingRTTs(p.from, p.dst, 3, 2*time.Second)
		if err != nil {
			return fmt.Errorf("ping %s from %s: %w", p.dst, p.from.Name, err)
		}
		fmt.Fprintf(stdout, "  ping %-12s from %s: %d/3 replies %v\n", p.dst, p.from.Name, len(rtts), rtts)
		if len(rtts) == 0 {
			return fmt.Errorf("no ping replies from %s", p.dst)
		}
	}
	bps, err := l.TCPThroughput(&l.A, &l.B, demoInnerB, d)
	if err != nil {
		return fmt.Errorf("TCP transfer: %w", err)
	}
	fmt.Fprintf(stdout, "  TCP %s -> %s through the tunnel for %v: %.2f Gbit/s\n", l.A.Name, demoInnerB, d, bps/1e9)
	return nil
}
