package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2EScriptQuick runs bench/e2e/run.sh in its quickest form (QUICK=1:
// one run of 1 s per measurement) as root, and checks that it measured
// everything: exit status 0, every table and row of issue 10's targets
// present, every cell a number (checkReport), and its namespaces gone
// afterwards. It does not judge the numbers: on a shared 2-core machine
// they only show that every path works.
func TestE2EScriptQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs bench/e2e/run.sh (about a minute); not with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: bench/e2e/run.sh creates network namespaces, TUN devices and raw sockets (CI runs as root)")
	}
	for _, p := range []string{"bash", "go", "ip"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("needs %s in PATH", p)
		}
	}
	// run.sh installs iperf3, wireguard-tools and jq with apt-get itself
	// when they are missing.
	ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "e2e/run.sh")
	// Only QUICK from this test: settings in the caller's environment
	// would make the run longer or change its rows.
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "QUICK", "RUNS", "DURATION", "STREAMS", "UDP_DURATION", "UDP_SIZES", "PINGS", "NETSTACK_ONLY", "GREIPSEC":
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, "QUICK=1")
	// On timeout, SIGTERM: the script then stops its processes and deletes
	// its namespaces (its EXIT trap); SIGKILL only 30 s later.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("bench/e2e/run.sh (QUICK=1) took %v", time.Since(start).Round(time.Second))

	// Its namespaces must be gone, whatever happened.
	if m := regexp.MustCompile(`creating namespaces (gqe[0-9a-f]{4})a `).FindStringSubmatch(stderr.String()); m != nil {
		out, _ := exec.Command("ip", "netns", "list").CombinedOutput()
		if strings.Contains(string(out), m[1]) {
			t.Errorf("namespaces %sa/%sb still exist after the script ended:\n%s", m[1], m[1], out)
		}
	}
	if err != nil {
		t.Fatalf("bench/e2e/run.sh: %v\nstdout:\n%s\nstderr (last 4000 bytes):\n%s", err, stdout.String(), tail(stderr.String(), 4000))
	}
	t.Logf("output:\n%s", stdout.String())
	if err := checkReport(stdout.String(), []int{1, 4}, []int{64, 1372}); err != nil {
		t.Error(err)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// The cells run.sh writes: a number, a list of numbers (the runs), "A / B"
// (peak RSS of each side), and the ceiling's runs.
var (
	num          = `[0-9]+(\.[0-9]+)?`
	cellNumber   = regexp.MustCompile(`^` + num + `$`)
	cellRuns     = regexp.MustCompile(`^` + num + `( ` + num + `)*$`)
	cellSides    = regexp.MustCompile(`^[0-9]+ / [0-9]+$`)
	cellCeilRuns = regexp.MustCompile(`^` + num + `( ` + num + `)* Gbit/s; ` + num + `( ` + num + `)* kpps$`)
)

// reportTable is one markdown table of run.sh's output.
type reportTable struct {
	header []string
	rows   map[string][]string // by the first cell
}

func (tb *reportTable) has(col string) bool {
	for _, h := range tb.header {
		if h == col {
			return true
		}
	}
	return false
}

// checkReport checks run.sh's markdown output (all paths, not
// NETSTACK_ONLY) for the given STREAMS and UDP_SIZES: no FAILED line, and
// every row of every table that issue 10 asks for, each cell a number.
func checkReport(out string, streams, udpSizes []int) error {
	var errs []string
	errorf := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }

	var tables []*reportTable
	var cur *reportTable
	for i, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "FAILED") {
			errorf("line %d: %s", i+1, line)
		}
		if !strings.HasPrefix(line, "|") {
			cur = nil
			continue
		}
		cells := strings.Split(strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|"), "|")
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		switch {
		case cur == nil:
			cur = &reportTable{header: cells, rows: map[string][]string{}}
			tables = append(tables, cur)
		case strings.Trim(line, "|-: ") == "":
			// the separator line
		default:
			if len(cells) != len(cur.header) {
				errorf("line %d: %d cells, the header has %d: %s", i+1, len(cells), len(cur.header), line)
				continue
			}
			cur.rows[cells[0]] = cells
			for j, c := range cells[1:] {
				col := cur.header[j+1]
				ok := cellNumber.MatchString(c) || cellSides.MatchString(c) ||
					(strings.HasPrefix(col, "runs") && (cellRuns.MatchString(c) || cellCeilRuns.MatchString(c))) ||
					// The bare veth has no process of its own.
					(strings.HasPrefix(col, "peak RSS") && cells[0] == "bare veth" && c == "n/a")
				if !ok {
					errorf("line %d: column %q of %q is %q, not a number", i+1, col, cells[0], c)
				}
			}
		}
	}

	// want checks the table whose header has the column key (or, with
	// first, whose first header cell is key): it has cols and rows.
	want := func(key string, first bool, cols []string, rows ...string) {
		var tb *reportTable
		for _, t := range tables {
			if (first && t.header[0] == key) || (!first && t.has(key)) {
				tb = t
				break
			}
		}
		if tb == nil {
			errorf("no table with a column %q", key)
			return
		}
		for _, c := range cols {
			if !tb.has(c) {
				errorf("table %q: no column %q", tb.header, c)
			}
		}
		for _, r := range rows {
			if tb.rows[r] == nil {
				errorf("table %q: no row %q", tb.header, r)
			}
		}
	}
	var tcpCols, udpCols, ratioUDP []string
	for _, s := range streams {
		tcpCols = append(tcpCols, fmt.Sprintf("%d stream(s)", s))
	}
	for _, s := range udpSizes {
		udpCols = append(udpCols, fmt.Sprintf("%d B kpps", s), fmt.Sprintf("%d B loss %%", s))
		ratioUDP = append(ratioUDP, fmt.Sprintf("%d B", s))
	}
	v4 := []string{"bare veth", "wireguard-go, IPv4 outer", "greipsec, raw ESP, IPv4 outer", "greipsec, ESP-in-UDP, IPv4 outer"}
	want("inner MTU", false, tcpCols, append(v4,
		"wireguard-go, IPv6 outer", "greipsec, raw ESP, IPv6 outer", "greipsec, ESP-in-UDP, IPv6 outer",
		"wireguard-go netstack, TCP forwards", "greipsec netstack (ESP-in-UDP), TCP forwards")...)
	want(udpCols[0], false, udpCols, v4...)
	want("kpps", false, []string{"Gbit/s"}, "raw IP protocol 50, sendmmsg -> recvmmsg", "UDP datagrams, sendmmsg -> recvmmsg (no GSO/GRO)")
	want("idle median", false, []string{"idle p99", "under load median", "under load p99"}, v4...)
	want("greipsec / wireguard-go, TCP", true, tcpCols, "raw ESP, IPv4 outer", "ESP-in-UDP, IPv4 outer",
		"raw ESP, IPv6 outer", "ESP-in-UDP, IPv6 outer", "netstack / wireguard-go netstack")
	want("greipsec / wireguard-go, UDP packets/s received, IPv4 outer", true, ratioUDP, "raw ESP", "ESP-in-UDP")
	want("greipsec raw ESP, IPv4 outer / raw IP ceiling", true, nil, "TCP 1 stream(s) Gbit/s / ceiling Gbit/s")
	if len(errs) > 0 {
		return fmt.Errorf("bench/e2e/run.sh output:\n%s", strings.Join(errs, "\n"))
	}
	return nil
}

// TestCheckReport checks the checker of TestE2EScriptQuick on the output of
// a real QUICK=1 run (testdata/e2e-quick.md) and on that output broken in
// each way a failed run shows.
func TestCheckReport(t *testing.T) {
	good, err := os.ReadFile("testdata/e2e-quick.md")
	if err != nil {
		t.Fatal(err)
	}
	if err := checkReport(string(good), []int{1, 4}, []int{64, 1372}); err != nil {
		t.Fatalf("the output of a good run: %v", err)
	}
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"a failed cell", "| greipsec, raw ESP, IPv6 outer | 1422 | 0.95 |", "| greipsec, raw ESP, IPv6 outer | 1422 | FAILED |", `column "1 stream(s)" of "greipsec, raw ESP, IPv6 outer" is "FAILED"`},
		{"an empty runs cell", "| 14.1 | 15.4 |", "|  | 15.4 |", `column "runs, 64 B" of "wireguard-go, IPv4 outer" is ""`},
		{"an unread RSS", "| 23 / 25 | 23 / 25 |", "| 23 / 25 | ? / 25 |", `is "? / 25", not a number`},
		{"a ratio without its measurement", "| raw ESP | 1.11 | 1.29 |", "| raw ESP | n/a | 1.29 |", `column "64 B" of "raw ESP" is "n/a"`},
		{"a missing row", "| greipsec, ESP-in-UDP, IPv4 outer | 0.234 | 0.368 | 0 | 3.000 | 5.740 | 0 |\n", "", `no row "greipsec, ESP-in-UDP, IPv4 outer"`},
		{"a missing table", "| path | idle median | idle p99 | idle lost | under load median | under load p99 | under load lost |\n|---|---:|---:|---:|---:|---:|---:|\n", "", `no table with a column "idle median"`},
		{"a short row", "| 1.53 | 136.6 | 1.53 Gbit/s; 136.6 kpps |", "| 1.53 | 136.6 |", "3 cells, the header has 4"},
		{"a FAILED line", "| UDP 1372 B kpps / ceiling kpps | 0.14 |\n", "| UDP 1372 B kpps / ceiling kpps | 0.14 |\n\nFAILED greipsec-esp6: TCP, 4 stream(s), run 1: iperf3 -c 10.255.0.2: timeout\n", "FAILED greipsec-esp6"},
	} {
		bad := strings.Replace(string(good), tc.old, tc.new, 1)
		if bad == string(good) {
			t.Fatalf("%s: %q is not in testdata/e2e-quick.md", tc.name, tc.old)
		}
		err := checkReport(bad, []int{1, 4}, []int{64, 1372})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: checkReport = %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	if err := checkReport(string(good), []int{1, 8}, []int{64, 1372}); err == nil || !strings.Contains(err.Error(), `no column "8 stream(s)"`) {
		t.Errorf("STREAMS 1 8 against a run with 1 4: checkReport = %v, want a missing column", err)
	}
}
