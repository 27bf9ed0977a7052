package benchrun

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/greipsec/greipsec/esp"
)

// checkRows checks that rep has exactly one row per transport, transform,
// size and direction, each with non-zero rates, CPU and seal rate.
func checkRows(t *testing.T, rep *Report, transports []string, transforms []esp.Transform, sizes []int) {
	t.Helper()
	want := map[string]bool{}
	for _, tp := range transports {
		for _, tr := range transforms {
			for _, size := range sizes {
				for _, dir := range []string{"a->b", "b->a"} {
					want[fmt.Sprintf("%s %s %d %s", tp, tr, size, dir)] = true
				}
			}
		}
	}
	if len(rep.Rows) != len(want) {
		t.Errorf("%d rows, want %d", len(rep.Rows), len(want))
	}
	for _, r := range rep.Rows {
		k := fmt.Sprintf("%s %s %d %s", r.Transport, r.Transform, r.Size, r.Direction)
		if !want[k] {
			t.Errorf("unexpected or repeated row %s", k)
		}
		delete(want, k)
		if r.Load != LoadUDP || r.Received == 0 || r.Sent == 0 || r.Gbps <= 0 || r.PacketsPS <= 0 || r.SealGbps <= 0 || r.SealPPS <= 0 ||
			r.CPUSender <= 0 || r.Seconds <= 0 {
			t.Errorf("row %s: zero or inconsistent measurement: %+v", k, r)
		}
		if got := r.PacketsPS * float64(r.Size) * 8 / 1e9; got < r.Gbps*0.999 || got > r.Gbps*1.001 {
			t.Errorf("row %s: %v Gbit/s does not match %v packets/s of %d bytes", k, r.Gbps, r.PacketsPS, r.Size)
		}
	}
	for k := range want {
		t.Errorf("no row %s", k)
	}
}

// TestRunMemory runs the unprivileged sweep briefly: the quick sweep over
// both transports, then every transform greipsec has at one size, and
// checks that the table, the JSON and the SVG chart hold every row.
func TestRunMemory(t *testing.T) {
	quick, err := ParseTransforms(strings.Join(QuickTransforms, ","))
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Options{Mode: ModeMemory, Quick: true, Duration: 100 * time.Millisecond, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mode != ModeMemory || rep.NumCPU == 0 || rep.CPU == "" {
		t.Errorf("report header %+v", rep)
	}
	checkRows(t, rep, []string{TransportESP, TransportUDP}, quick, QuickSizes)
	if n := strings.Count(progress.String(), "Gbit/s"); n != len(rep.Rows) {
		t.Errorf("%d progress lines for %d rows:\n%s", n, len(rep.Rows), progress.String())
	}

	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Rows {
		line := fmt.Sprintf("%s  %s  %d  %s  %.3f", r.Transport, r.Transform, r.Size, r.Direction, r.Gbps)
		if !strings.Contains(strings.Join(strings.Fields(table.String()), "  "), line) {
			t.Errorf("table has no line %q:\n%s", line, table.String())
		}
	}

	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Rows) != len(rep.Rows) || back.Rows[0] != rep.Rows[0] {
		t.Errorf("JSON does not round-trip: %s", js.String())
	}

	var svg bytes.Buffer
	if err := rep.WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	checkSVG(t, svg.Bytes(), quick)

	all, err := ParseTransforms(strings.Join(DefaultTransforms, ","))
	if err != nil {
		t.Fatal(err)
	}
	rep, err = Run(context.Background(), Options{Mode: ModeMemory, Transforms: all, Sizes: []int{1400},
		Transports: []string{TransportESP}, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, rep, []string{TransportESP}, all, []int{1400})
}

// checkSVG checks that b is well-formed XML with an svg root that names
// every transform in its legends.
func checkSVG(t *testing.T, b []byte, transforms []esp.Transform) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	root := ""
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Errorf("SVG root element %q", root)
	}
	for _, tr := range transforms {
		if !bytes.Contains(b, []byte(">"+tr.String()+"<")) {
			t.Errorf("SVG has no legend entry %s", tr)
		}
	}
}

// TestOptionsRejected: bad options get one clear error before anything
// runs.
func TestOptionsRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"size too small", func() error { _, err := ParseSizes("64,47"); return err }, `packet size "47": expected a number of bytes from 48 to 1400`},
		{"size too big", func() error { _, err := ParseSizes("1401"); return err }, `packet size "1401"`},
		{"size empty", func() error { _, err := ParseSizes("64,"); return err }, `packet size ""`},
		{"transform", func() error { _, err := ParseTransforms("aes256gcm16,aes256"); return err }, "aes256 needs an integrity algorithm"},
		{"transport", func() error { _, err := ParseTransports("esp,gre"); return err }, `unknown transport "gre"`},
		{"mode", func() error { _, err := ParseMode("fast"); return err }, `unknown mode "fast"`},
		{"duration", func() error {
			_, err := Run(context.Background(), Options{Mode: ModeMemory, Duration: time.Millisecond})
			return err
		}, "duration 1ms: expected 50ms to 1h"},
	} {
		err := tc.err()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "benchrun: ") {
			t.Errorf("%s: error %v, want one starting with benchrun: and containing %q", tc.name, err, tc.want)
		}
	}
}

// TestRunCancelled: a cancelled run stops and returns the context's
// error, with what it measured before.
func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, Options{Mode: ModeMemory, Quick: true, Duration: 100 * time.Millisecond})
	if err != context.Canceled {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

// TestSealRate: the crypto limit is measured for every transform.
func TestSealRate(t *testing.T) {
	all, err := ParseTransforms(strings.Join(DefaultTransforms, ","))
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range all {
		gbps, pps, err := SealRate(tr, 512, 10*time.Millisecond)
		if err != nil || gbps <= 0 || pps <= 0 || gbps != pps*512*8/1e9 {
			t.Errorf("%v: %v Gbit/s %v packets/s, %v", tr, gbps, pps, err)
		}
	}
}
