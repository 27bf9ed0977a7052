package benchrun

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// WriteTable writes the report as an aligned text table: one row per
// measurement, with the single-core seal rate of the same transform and
// size and the tunnel's rate as a share of it.
func (rep *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "greipsec bench, %s mode, %s, %s: %s, %d CPUs (GOMAXPROCS %d), %s, %.3gs per direction\n",
		rep.Mode, rep.Start.Format("2006-01-02 15:04 MST"), rep.GoVersion, rep.CPU, rep.NumCPU, rep.GOMAXPROCS,
		map[Mode]string{ModeNetns: "two greipsec processes in network namespaces over a veth pair, UDP and TCP through the TUN devices",
			ModeMemory: "two dataplanes in one process over the in-memory link and TUN devices"}[rep.Mode],
		rep.Duration)
	cpuHead := "cpu tx gw\tcpu rx gw"
	if rep.Mode == ModeMemory {
		cpuHead = "cpu (process)\t"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "transport\talgorithm\tsize\tdirection\tGbit/s\tpackets/s\t%s\tseal Gbit/s (1 core)\tof seal\t\n", cpuHead)
	for _, r := range rep.Rows {
		cpu := fmt.Sprintf("%s\t%s", percent(r.CPUSender), percent(r.CPUReceive))
		if rep.Mode == ModeMemory {
			cpu = percent(r.CPUSender) + "\t"
		}
		size, pps := strconv.Itoa(r.Size), strconv.FormatFloat(r.PacketsPS, 'f', 0, 64)
		if r.Load == LoadTCP {
			size, pps = "tcp", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.3f\t%s\t%s\t%.2f\t%s\t\n", r.Transport, r.Transform, size, r.Direction,
			r.Gbps, pps, cpu, r.SealGbps, percent(r.OfLimit()))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := rep.writeLatency(w); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "Rates count inner IP packets delivered to the receiving TUN device (tcp: one TCP stream's goodput);\n"+
		"cpu is cores used (100% = one core); \"of seal\" compares with one core sealing ESP of the same transform\n"+
		"and size (tcp: 1400 bytes) in a loop, the crypto limit.")
	return err
}

// writeLatency writes the ping round-trip times of the TCP rows, if any.
func (rep *Report) writeLatency(w io.Writer) error {
	var tcp []Row
	for _, r := range rep.Rows {
		if r.Load == LoadTCP {
			tcp = append(tcp, r)
		}
	}
	if len(tcp) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nping round-trip time from the sending side, median:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "transport\talgorithm\tdirection\tbare veth\ttunnel, idle\ttunnel, under TCP load\t\n")
	us := func(v float64) string {
		if v == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f µs", v)
	}
	for _, r := range tcp {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Transport, r.Transform, r.Direction,
			us(r.PingVethUs), us(r.PingIdleUs), us(r.PingLoadUs))
	}
	return tw.Flush()
}

func percent(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }

// WriteJSON writes the report as indented JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteSVG draws the sweep as an SVG chart: one row of plots per
// transport, Gbit/s and packets/s against the packet size, one line per
// transform (the mean of the two directions), with gonum.org/v1/plot.
func (rep *Report) WriteSVG(w io.Writer) error {
	var transports, transforms []string
	for _, r := range rep.Rows {
		if !slices.Contains(transports, r.Transport) {
			transports = append(transports, r.Transport)
		}
		if !slices.Contains(transforms, r.Transform) {
			transforms = append(transforms, r.Transform)
		}
	}
	if len(transports) == 0 {
		return fmt.Errorf("benchrun: no measurements to draw")
	}
	grid, err := rep.plots(transports, transforms)
	if err != nil {
		return err
	}
	c := vgsvg.New(chartSize(len(transports)))
	drawGrid(grid, draw.New(c))
	_, err = c.WriteTo(w)
	return err
}

// plots returns the chart's plots: a row per transport, Gbit/s and
// packets/s.
func (rep *Report) plots(transports, transforms []string) ([][]*plot.Plot, error) {
	grid := make([][]*plot.Plot, len(transports))
	for i, transport := range transports {
		name := map[string]string{TransportESP: "raw ESP", TransportUDP: "ESP-in-UDP"}[transport]
		for j, metric := range []string{"Gbit/s", "million packets/s"} {
			p := plot.New()
			p.Title.Text = fmt.Sprintf("%s, %s (%s mode)", name, metric, rep.Mode)
			p.X.Label.Text = "inner packet size (bytes)"
			p.Y.Label.Text = metric
			p.Y.Min = 0
			// Gbit/s rises with the size and packets/s falls: the legend
			// goes in the corner the lines leave free.
			p.Legend.Top = true
			p.Legend.Left = j == 0
			var lines []any
			for _, tr := range transforms {
				xys := rep.series(transport, tr, j == 1)
				if len(xys) > 0 {
					lines = append(lines, tr, xys)
				}
			}
			if err := plotutil.AddLinePoints(p, lines...); err != nil {
				return nil, fmt.Errorf("benchrun: %w", err)
			}
			grid[i] = append(grid[i], p)
		}
	}
	return grid, nil
}

// chartSize is the size of a chart of rows rows of two plots.
func chartSize(rows int) (w, h vg.Length) {
	const tileW, tileH = 6 * vg.Inch, 4 * vg.Inch
	return tileW * 2, tileH * vg.Length(rows)
}

// drawGrid draws the plots, aligned, on dc.
func drawGrid(grid [][]*plot.Plot, dc draw.Canvas) {
	tiles := draw.Tiles{Rows: len(grid), Cols: 2, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(grid, tiles, dc)
	for i := range grid {
		for j := range grid[i] {
			grid[i][j].Draw(canvases[i][j])
		}
	}
}

// series returns the mean of both directions of one transport and
// transform by size, in Gbit/s or millions of packets/s.
func (rep *Report) series(transport, transform string, pps bool) plotter.XYs {
	sum := map[int][2]float64{}
	var sizes []int
	for _, r := range rep.Rows {
		if r.Transport != transport || r.Transform != transform || r.Load != LoadUDP {
			continue
		}
		v := r.Gbps
		if pps {
			v = r.PacketsPS / 1e6
		}
		s := sum[r.Size]
		if s[1] == 0 {
			sizes = append(sizes, r.Size)
		}
		sum[r.Size] = [2]float64{s[0] + v, s[1] + 1}
	}
	slices.Sort(sizes)
	xys := make(plotter.XYs, len(sizes))
	for i, size := range sizes {
		xys[i].X, xys[i].Y = float64(size), sum[size][0]/sum[size][1]
	}
	return xys
}
