package eval

import (
	"bytes"
	"fmt"
	"github.com/engramlx/engram/internal/fsutil"
	"image/color"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// heatGrid is the cells of one run and task as a grid: column c = c-th context length, row r = r-th
// axis value (depth), Z = accuracy (NaN where not measured).
type heatGrid struct {
	lengths []int
	ats     []float64
	z       map[[2]int]float64
}

// Metric picks the number a plot shows from a cell.
type Metric struct {
	Name  string // axis / title label
	Value func(Cell) float64
}

// Metrics: the task's accuracy (exact match for passkey) and the fraction of labelled tokens predicted
// (for passkey: the fraction of key digits recalled).
var (
	AccuracyMetric      = Metric{Name: "accuracy", Value: func(c Cell) float64 { return c.Accuracy }}
	TokenAccuracyMetric = Metric{Name: "token accuracy", Value: func(c Cell) float64 { return c.TokenAccuracy }}
)

func newHeatGrid(cells []Cell, metric Metric) heatGrid {
	g := heatGrid{z: map[[2]int]float64{}}
	g.lengths, g.ats = axes(cells)
	col, row := map[int]int{}, map[float64]int{}
	for i, l := range g.lengths {
		col[l] = i
	}
	for i, a := range g.ats {
		row[a] = i
	}
	for _, c := range cells {
		v := math.NaN()
		if c.Measured() {
			v = metric.Value(c)
		}
		g.z[[2]int{col[c.Length], row[c.At]}] = v
	}
	return g
}

func (g heatGrid) Dims() (int, int) { return len(g.lengths), len(g.ats) }
func (g heatGrid) X(c int) float64  { return float64(c) }
func (g heatGrid) Y(r int) float64  { return float64(r) }
func (g heatGrid) Min() float64     { return 0 }
func (g heatGrid) Max() float64     { return 1 }
func (g heatGrid) Z(c, r int) float64 {
	if v, ok := g.z[[2]int{c, r}]; ok {
		return v
	}
	return math.NaN()
}

// accuracyPalette runs from dark purple (0) through teal to yellow (1): viridis-like, readable for the
// colour-blind and in greyscale (lightness rises with accuracy), unlike the red-green NIAH maps.
type accuracyPalette int

// viridisAnchors are five points of the viridis map; colours in between are interpolated linearly.
var viridisAnchors = [][3]float64{{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}}

// accuracyColor is the palette's colour at t in [0, 1].
func accuracyColor(t float64) color.Color {
	t = math.Max(0, math.Min(1, t))
	pos := t * float64(len(viridisAnchors)-1)
	i := min(int(pos), len(viridisAnchors)-2)
	f := pos - float64(i)
	var c [3]uint8
	for k := range c {
		c[k] = uint8(math.Round(viridisAnchors[i][k]*(1-f) + viridisAnchors[i+1][k]*f))
	}
	return color.NRGBA{R: c[0], G: c[1], B: c[2], A: 255}
}

func (n accuracyPalette) Colors() []color.Color {
	out := make([]color.Color, int(n))
	for i := range out {
		out[i] = accuracyColor(float64(i) / float64(int(n)-1))
	}
	return out
}

// accuracyMap is the palette as a palette.ColorMap on [0, 1], for the heatmap's colour bar.
type accuracyMap struct{ alpha float64 }

func (accuracyMap) At(v float64) (color.Color, error) { return accuracyColor(v), nil }
func (accuracyMap) Max() float64                      { return 1 }
func (accuracyMap) Min() float64                      { return 0 }
func (accuracyMap) SetMax(float64)                    {}
func (accuracyMap) SetMin(float64)                    {}
func (m accuracyMap) Alpha() float64                  { return 1 }
func (m accuracyMap) SetAlpha(float64)                {}
func (accuracyMap) Palette(n int) palette.Palette     { return accuracyPalette(n) }

var _ palette.Palette = accuracyPalette(0)

// Heatmap renders the cells of one run and task as a PNG: x = context length, y = depth (or the task's
// axis), colour = accuracy on a viridis-like scale (colour bar beside it); grey cells were not measured
// (exceeds cache). Each cell is labelled with its accuracy in percent; the title gives the rows per cell.
func Heatmap(cells []Cell, metric Metric, title string) ([]byte, error) {
	if len(cells) == 0 {
		return nil, fmt.Errorf("eval: heatmap %q: no cells", title)
	}
	g := newHeatGrid(cells, metric)
	hm := plotter.NewHeatMap(g, accuracyPalette(64))
	hm.NaN = color.Gray{Y: 200}
	p := plot.New()
	rows := cells[0].Rows
	for _, c := range cells {
		rows = min(rows, c.Rows)
	}
	p.Title.Text = fmt.Sprintf("%s, %d rows per cell", title, rows)
	p.X.Label.Text = "context length (tokens)"
	p.Y.Label.Text = orDash(cells[0].Axis)
	p.Add(hm)
	labels := plotter.XYLabels{}
	for c := range g.lengths {
		for r := range g.ats {
			text := "n/a"
			if v := g.Z(c, r); !math.IsNaN(v) {
				text = fmt.Sprintf("%.0f", 100*v)
			}
			labels.XYs = append(labels.XYs, plotter.XY{X: float64(c), Y: float64(r)})
			labels.Labels = append(labels.Labels, text)
		}
	}
	l, err := plotter.NewLabels(labels)
	if err != nil {
		return nil, err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].XAlign, l.TextStyle[i].YAlign = -0.5, -0.5
	}
	p.Add(l)
	p.X.Tick.Marker = indexTicks(len(g.lengths), func(i int) string { return LengthLabel(g.lengths[i]) })
	p.Y.Tick.Marker = indexTicks(len(g.ats), func(i int) string { return fmt.Sprintf("%g", g.ats[i]) })
	p.Y.Scale, p.Y.Min, p.Y.Max = plot.LinearScale{}, -0.5, float64(len(g.ats))-0.5
	p.X.Min, p.X.Max = -0.5, float64(len(g.lengths))-0.5
	// Label contrast: white on the dark end of the scale, black on the light end.
	for i, xy := range labels.XYs {
		if v := g.Z(int(xy.X), int(xy.Y)); !math.IsNaN(v) && v < 0.55 {
			l.TextStyle[i].Color = color.White
		}
	}
	bar := plot.New()
	bar.Add(&plotter.ColorBar{ColorMap: accuracyMap{}, Vertical: true, Colors: 64})
	bar.HideX()
	bar.Y.Label.Text = metric.Name + " (0 to 1)"
	bar.Title.Text = " "
	w, h := 1.1*vg.Inch*vg.Length(len(g.lengths)+2), 0.6*vg.Inch*vg.Length(len(g.ats)+3)
	img := vgimg.New(w+1.1*vg.Inch, h)
	dc := draw.New(img)
	main := draw.Crop(dc, 0, -1.1*vg.Inch, 0, 0)
	side := draw.Crop(dc, w+0.2*vg.Inch, 0, 0, 0)
	p.Draw(main)
	bar.Draw(side)
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// indexTicks labels the integer positions 0..n-1.
func indexTicks(n int, label func(int) string) plot.Ticker {
	return plot.TickerFunc(func(_, _ float64) []plot.Tick {
		ticks := make([]plot.Tick, n)
		for i := range ticks {
			ticks[i] = plot.Tick{Value: float64(i), Label: label(i)}
		}
		return ticks
	})
}

// Curve renders accuracy against context length (log2 axis) for several runs in one PNG: one line per
// run, each point the mean accuracy over the axis values (depths, pairs) measured at that length.
func Curve(byRun map[string][]Cell, metric Metric, title string) ([]byte, error) {
	runs := make([]string, 0, len(byRun))
	for r := range byRun {
		runs = append(runs, r)
	}
	sort.Strings(runs)
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "context length (tokens, log scale)"
	p.Y.Label.Text = metric.Name
	for _, cells := range byRun { // say what each point averages over
		if len(cells) > 0 && cells[0].Axis != "" {
			p.Y.Label.Text = fmt.Sprintf("%s (mean over %ss)", metric.Name, cells[0].Axis)
			break
		}
	}
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, lengthTicks{}
	p.Y.Min, p.Y.Max = 0, 1.05
	var args []any
	for _, run := range runs {
		xys := meanByLength(byRun[run], metric)
		if len(xys) > 0 {
			args = append(args, run, xys)
		}
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("eval: curve %q: no measured cells", title)
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return nil, err
	}
	p.Legend.Top = true
	return render(p, 7*vg.Inch, 4*vg.Inch)
}

// meanByLength averages the measured cells' accuracy per context length.
func meanByLength(cells []Cell, metric Metric) plotter.XYs {
	sum, n := map[int]float64{}, map[int]int{}
	for _, c := range cells {
		if c.Measured() {
			sum[c.Length] += metric.Value(c)
			n[c.Length]++
		}
	}
	var xys plotter.XYs
	for l := range sum {
		xys = append(xys, plotter.XY{X: float64(l), Y: sum[l] / float64(n[l])})
	}
	sort.Slice(xys, func(i, j int) bool { return xys[i].X < xys[j].X })
	return xys
}

// lengthTicks puts a labelled tick at every power of two in range.
type lengthTicks struct{}

func (lengthTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for l := 1; float64(l) <= hi; l *= 2 {
		if float64(l) >= lo {
			ticks = append(ticks, plot.Tick{Value: float64(l), Label: LengthLabel(l)})
		}
	}
	return ticks
}

func render(p *plot.Plot, w, h vg.Length) ([]byte, error) {
	wt, err := p.WriterTo(w, h, "png")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WritePNG renders with f and writes the PNG to file atomically.
func WritePNG(file string, png []byte, err error) error {
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(file, png)
}
