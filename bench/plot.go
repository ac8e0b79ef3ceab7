package bench

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Plot draws the report's latency percentile curves into file (.svg or
// .png): one panel per message size, one curve per transport. The x axis is
// the percentile on a scale of nines (50%, 90%, 99%, 99.9%, ...), the y axis
// the latency on a log scale. A curve ends at its largest sample.
func Plot(rep *Report, file string) error {
	sizes := rep.Config.Sizes
	if len(sizes) == 0 {
		return fmt.Errorf("nothing to plot")
	}
	kind := "round trip"
	if rep.Config.Mode == Stream {
		kind = "one-way latency"
	}
	var plots [][]*plot.Plot
	cols := min(2, len(sizes))
	for i, size := range sizes {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s, %s, %s", rep.Config.Mode, FormatSize(size), kind)
		p.X.Label.Text = "percentile"
		p.Y.Label.Text = kind
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = durationTicks{}
		p.X.Tick.Marker = ninesTicks{}
		p.X.Min = 0
		p.Legend.Top = false
		p.Legend.Left = true
		p.Add(plotter.NewGrid())
		for ti, name := range rep.Config.Transports {
			r := find(rep.Results, name, size)
			if r == nil || r.Latency == nil || len(r.Latency.Curve) == 0 {
				continue
			}
			pts := curvePoints(r.Latency)
			if len(pts) == 0 {
				continue
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return err
			}
			l.Color = plotutil.Color(ti)
			l.Width = vg.Points(1.5)
			l.Dashes = plotutil.Dashes(ti / 7)
			p.Add(l)
			p.Legend.Add(name, l)
		}
		if i%cols == 0 {
			plots = append(plots, make([]*plot.Plot, 0, cols))
		}
		plots[len(plots)-1] = append(plots[len(plots)-1], p)
	}
	for len(plots[len(plots)-1]) < cols {
		plots[len(plots)-1] = append(plots[len(plots)-1], nil)
	}
	rows := len(plots)
	w, h := vg.Length(cols)*5*vg.Inch, vg.Length(rows)*3.5*vg.Inch
	var c interface {
		vg.CanvasWriterTo
	}
	switch strings.ToLower(filepath.Ext(file)) {
	case ".svg":
		c = vgsvg.New(w, h)
	case ".png":
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(110))}
	default:
		return fmt.Errorf("%s: want a .svg or .png file", file)
	}
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(plots, tiles, dc)
	for j := range plots {
		for i, p := range plots[j] {
			if p != nil {
				p.Draw(canvases[j][i])
			}
		}
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func find(rs []Result, name string, size int) *Result {
	for i := range rs {
		if rs[i].Transport == name && rs[i].Size == size && rs[i].Error == "" {
			return &rs[i]
		}
	}
	return nil
}

// curvePoints maps a curve to (nines, ns): percentile q goes to
// -log10(1-q/100). Points past the resolution of the sample count are
// dropped, and the maximum is placed at 1-1/samples.
func curvePoints(l *Latency) plotter.XYs {
	limit := math.Log10(float64(max(l.Samples, 2)))
	var pts plotter.XYs
	for _, p := range l.Curve {
		if p.Q >= 100 {
			continue
		}
		x := -math.Log10(1 - p.Q/100)
		if x >= limit {
			break
		}
		pts = append(pts, plotter.XY{X: x, Y: float64(max(p.NS, 1))})
	}
	pts = append(pts, plotter.XY{X: limit, Y: float64(max(l.MaxNS, 1))})
	return pts
}

// ninesTicks labels the nines axis: 0%, 50%, 90%, 99%, 99.9%, ...
type ninesTicks struct{}

func (ninesTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	ts = append(ts, plot.Tick{Value: 0, Label: "0%"}, plot.Tick{Value: math.Log10(2), Label: "50%"})
	for k := 1; float64(k) <= hi+1e-9; k++ {
		label := "90%"
		switch {
		case k == 2:
			label = "99%"
		case k > 2:
			label = "99." + strings.Repeat("9", k-2) + "%"
		}
		ts = append(ts, plot.Tick{Value: float64(k), Label: label})
	}
	return slices.DeleteFunc(ts, func(t plot.Tick) bool { return t.Value < lo-1e-9 })
}

// durationTicks labels a log-scale nanosecond axis: 100 ns, 1 µs, 10 µs.
type durationTicks struct{}

func (durationTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	lo = max(lo, 1)
	for e := math.Floor(math.Log10(lo)); math.Pow(10, e) <= hi*1.0001; e++ {
		v := math.Pow(10, e)
		ts = append(ts, plot.Tick{Value: v, Label: FormatNS(int64(v))})
		for m := 2.0; m < 10; m++ {
			if mv := m * v; mv >= lo && mv <= hi {
				ts = append(ts, plot.Tick{Value: mv})
			}
		}
	}
	if len(ts) < 2 { // a narrow range: label its ends
		ts = []plot.Tick{{Value: lo, Label: FormatNS(int64(lo))}, {Value: hi, Label: FormatNS(int64(hi))}}
	}
	return ts
}
