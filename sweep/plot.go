package sweep

import (
	"bytes"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/engramlx/engram/internal/fsutil"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// plotted are the metrics drawn against every swept key.
var plotted = []string{"eval_accuracy", "eval_loss"}

// writePlots draws, for every swept key and plotted metric, <metric>_vs_<key>.png: the metric's mean
// over seeds (error bars: sample std) against the key's values, one line per setting of the other
// swept keys (one "model").
func writePlots(s *Sweep, groups []Group) error {
	for k := range s.Keys {
		for _, name := range plotted {
			m := metricIndex(name)
			body, err := plotKey(s, groups, k, m)
			if err != nil {
				return fmt.Errorf("plot of %s against %s: %w", name, s.Keys[k], err)
			}
			if body == nil {
				continue
			}
			file := filepath.Join(s.Dir, fmt.Sprintf("%s_vs_%s.png", name, idSafe(s.Short[k])))
			if err := fsutil.WriteFileAtomic(file, body); err != nil {
				return err
			}
		}
	}
	if len(s.Keys) == 0 {
		return nil
	}
	body, err := plotStateBytes(s, groups, metricIndex("eval_accuracy"))
	if err != nil || body == nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(s.Dir, "eval_accuracy_vs_state_bytes.png"), body)
}

// plotStateBytes renders Zoology's figure: a metric's mean over seeds (error bars: sample std) against
// the recurrent state bytes (StateBytes, log scale), one line per value of the sweep's first key (the
// mixer, in a sweep that lists model.layers first); nil when no configuration has finished.
func plotStateBytes(s *Sweep, groups []Group, m int) ([]byte, error) {
	stateIdx := metricIndex("state_bytes")
	var lineNames []string
	lines := map[string]*points{}
	for _, g := range groups {
		if g.OK == 0 || !(g.Mean[stateIdx] > 0) {
			continue
		}
		name := g.Labels[0]
		if lines[name] == nil {
			lines[name] = &points{lo: 0, hi: 1}
			lineNames = append(lineNames, name)
		}
		spread := g.Std[m]
		if math.IsNaN(spread) {
			spread = 0
		}
		l := lines[name]
		l.x, l.y, l.err = append(l.x, g.Mean[stateIdx]), append(l.y, g.Mean[m]), append(l.err, spread)
	}
	if len(lineNames) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: %s vs recurrent state (mean ± std over seeds)", s.Name, metrics[m].name)
	p.X.Label.Text = "state bytes (4 x state elements, all layers; log scale)"
	p.Y.Label.Text = metrics[m].name
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, byteTicks{}
	for i, name := range lineNames {
		sort.Sort(lines[name])
		if err := addLine(p, s.Short[0]+"="+name, lines[name], i, true); err != nil {
			return nil, err
		}
	}
	// Half a factor of 2 of room on each side keeps the end points off the frame.
	p.X.Min, p.X.Max = p.X.Min/1.5, p.X.Max*1.5
	p.Y.Min, p.Y.Max = 0, 1.05
	return pngLegendBeside(p, 9*vg.Inch, 5*vg.Inch)
}

// pngLegendBeside renders p as a PNG of width x height with its legend in a column right of the plot,
// outside the data: with one line per mixer the legend would otherwise cover points wherever it sat.
func pngLegendBeside(p *plot.Plot, width, height vg.Length) ([]byte, error) {
	legend := p.Legend
	p.Legend = plot.NewLegend() // p itself draws none
	img := vgimg.New(width, height)
	dc := draw.New(img)
	box := legend.Rectangle(dc)
	column := box.Max.X - box.Min.X + 0.2*vg.Inch
	p.Draw(draw.Crop(dc, 0, -column, 0, 0))
	legend.Top, legend.Left = true, true
	legend.Draw(draw.Crop(dc, width-column+0.1*vg.Inch, 0, 0, -0.3*vg.Inch)) // top aligned with the plot's title
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func metricIndex(name string) int {
	for i, m := range metrics {
		if m.name == name {
			return i
		}
	}
	panic("sweep: no metric " + name)
}

// points are one line's (x, mean, std) triples; they satisfy plotter.XYer and plotter.YErrorer. Error
// bars are clipped to the metric's range [lo, hi] (an accuracy's mean + std can pass 1).
type points struct {
	x, y, err []float64
	lo, hi    float64
}

func (p points) Len() int                    { return len(p.x) }
func (p points) XY(i int) (float64, float64) { return p.x[i], p.y[i] }
func (p points) YError(i int) (float64, float64) {
	return math.Min(p.err[i], p.y[i]-p.lo), math.Min(p.err[i], p.hi-p.y[i])
}
func (p *points) Less(i, j int) bool { return p.x[i] < p.x[j] }
func (p *points) Swap(i, j int) {
	p.x[i], p.x[j] = p.x[j], p.x[i]
	p.y[i], p.y[j] = p.y[j], p.y[i]
	p.err[i], p.err[j] = p.err[j], p.err[i]
}

// plotKey renders one PNG, or nil when no configuration has finished yet.
func plotKey(s *Sweep, groups []Group, k, m int) ([]byte, error) {
	var categories []string // values of key k in first-appearance order
	position := map[string]int{}
	for _, g := range groups {
		if _, ok := position[g.Labels[k]]; !ok {
			position[g.Labels[k]] = len(categories)
			categories = append(categories, g.Labels[k])
		}
	}
	numeric := allNumeric(categories)
	var lineNames []string
	lines := map[string]*points{}
	for _, g := range groups {
		if g.OK == 0 {
			continue
		}
		name := lineName(s, g.Labels, k)
		if lines[name] == nil {
			lines[name] = &points{lo: 0, hi: math.Inf(1)}
			if strings.HasSuffix(metrics[m].name, "accuracy") {
				lines[name].hi = 1
			}
			lineNames = append(lineNames, name)
		}
		x := float64(position[g.Labels[k]])
		if numeric {
			x, _ = strconv.ParseFloat(g.Labels[k], 64)
		}
		l := lines[name]
		spread := g.Std[m]
		if math.IsNaN(spread) { // one seed: no error bar
			spread = 0
		}
		l.x, l.y, l.err = append(l.x, x), append(l.y, g.Mean[m]), append(l.err, spread)
	}
	if len(lineNames) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: %s vs %s (mean ± std over seeds)", s.Name, metrics[m].name, s.Keys[k])
	p.X.Label.Text = s.Keys[k]
	p.Y.Label.Text = metrics[m].name
	if !numeric {
		ticks := make([]plot.Tick, len(categories))
		for i, c := range categories {
			ticks[i] = plot.Tick{Value: float64(i), Label: c}
		}
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
		p.X.Min, p.X.Max = -0.5, float64(len(categories))-0.5
		p.X.Tick.Label.Rotation = math.Pi / 8
		p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = draw.XRight, draw.YCenter
	}
	for i, name := range lineNames {
		sort.Sort(lines[name]) // a line runs left to right whatever the grid order
		if err := addLine(p, name, lines[name], i, numeric || len(lineNames) > 1); err != nil {
			return nil, err
		}
	}
	p.Legend.Top = true
	if numeric { // keep the end points and their error bars off the frame
		pad := 0.05 * max(p.X.Max-p.X.Min, 1e-9)
		p.X.Min, p.X.Max = p.X.Min-pad, p.X.Max+pad
	}
	w, err := p.WriterTo(8*vg.Inch, 4.5*vg.Inch, "png")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// addLine draws one model's points with error bars, joined when joined is set.
func addLine(p *plot.Plot, name string, pts *points, i int, joined bool) error {
	c := plotutil.Color(i)
	bars, err := plotter.NewYErrorBars(pts)
	if err != nil {
		return err
	}
	bars.Color = c
	scatter, err := plotter.NewScatter(pts)
	if err != nil {
		return err
	}
	scatter.Color, scatter.Shape = c, plotutil.Shape(i)
	p.Add(bars, scatter)
	if joined {
		line, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		line.Color = c
		line.Dashes = plotutil.Dashes(i)
		p.Add(line)
		p.Legend.Add(name, line, scatter)
		return nil
	}
	p.Legend.Add(name, scatter)
	return nil
}

// byteTicks labels a log-scale byte axis at 1, 2 and 5 times the powers of ten ("20K", "5M"), so a
// range narrower than a decade still has labels.
type byteTicks struct{}

// Ticks implements plot.Ticker.
func (byteTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for decade := math.Pow(10, math.Floor(math.Log10(lo))); decade <= hi; decade *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if v := m * decade; v >= lo && v <= hi {
				ticks = append(ticks, plot.Tick{Value: v, Label: byteLabel(v)})
			}
		}
	}
	return ticks
}

// byteLabel prints a byte count as 500, 20K, 5M or 1G (powers of 1000).
func byteLabel(v float64) string {
	for _, u := range []struct {
		div    float64
		suffix string
	}{{1e9, "G"}, {1e6, "M"}, {1e3, "K"}} {
		if v >= u.div {
			return strconv.FormatFloat(v/u.div, 'g', 3, 64) + u.suffix
		}
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// lineName names a configuration by its swept values other than key k.
func lineName(s *Sweep, labels []string, k int) string {
	var parts []string
	for i, l := range labels {
		if i != k {
			parts = append(parts, s.Short[i]+"="+l)
		}
	}
	if len(parts) == 0 {
		return "mean over seeds"
	}
	return strings.Join(parts, ", ")
}

func allNumeric(values []string) bool {
	for _, v := range values {
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return false
		}
	}
	return len(values) > 0
}
