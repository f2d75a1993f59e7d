package train

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"path/filepath"

	"github.com/engramlx/engram/internal/fsutil"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// plot draws loss.png from metrics.jsonl. A failure to plot is reported but never fails the run.
func (r *Runner) plot() {
	if err := PlotLoss(filepath.Join(r.Dir, "metrics.jsonl"), filepath.Join(r.Dir, "loss.png"), r.Exp.Name); err != nil {
		r.logf("warning: loss plot not written: %v", err)
	}
}

// Colour-blind-safe pair (Okabe-Ito blue and vermillion) for train and eval.
var (
	trainColor = color.RGBA{R: 0, G: 114, B: 178, A: 255}
	evalColor  = color.RGBA{R: 213, G: 94, B: 0, A: 255}
)

// PlotLoss renders a metrics.jsonl file as a PNG of two panels: the loss on a log scale (train every
// logged step, eval at the steps it ran, marked) and the accuracy on [0, 1] (train as logged, eval at its
// steps), with legends where the curves are not.
func PlotLoss(metricsFile, pngFile, title string) error {
	lines, err := ReadMetrics(metricsFile)
	if err != nil {
		return err
	}
	var trainLoss, evalLoss, trainAcc, evalAcc plotter.XYs
	for _, l := range lines {
		trainLoss = append(trainLoss, plotter.XY{X: l["step"], Y: math.Max(l["loss"], 1e-6)})
		trainAcc = append(trainAcc, plotter.XY{X: l["step"], Y: l["accuracy"]})
		if v, ok := l["eval_loss"]; ok {
			evalLoss = append(evalLoss, plotter.XY{X: l["step"], Y: math.Max(v, 1e-6)})
			evalAcc = append(evalAcc, plotter.XY{X: l["step"], Y: l["eval_accuracy"]})
		}
	}
	if len(trainLoss) == 0 {
		return fmt.Errorf("%s has no metrics lines", metricsFile)
	}
	loss, err := panel(title+": loss", "cross-entropy loss (log scale)", trainLoss, evalLoss, true)
	if err != nil {
		return err
	}
	loss.Y.Scale = plot.LogScale{}
	loss.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	acc, err := panel(title+": accuracy", "accuracy on labelled tokens", trainAcc, evalAcc, false)
	if err != nil {
		return err
	}
	acc.Y.Min, acc.Y.Max = 0, 1.05

	img := vgimg.New(11*vg.Inch, 4*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Inch / 3, PadY: vg.Inch / 8, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 8}
	loss.Draw(tiles.At(dc, 0, 0))
	acc.Draw(tiles.At(dc, 1, 0))
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(pngFile, buf.Bytes())
}

// panel is one plot of a train curve (a line) and eval points (marked, joined), with the legend in the
// right corner the curves leave empty: the top for a falling curve (loss), the bottom for a rising one.
func panel(title, yLabel string, train, eval plotter.XYs, falling bool) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "optimizer step"
	p.Y.Label.Text = yLabel
	p.Add(plotter.NewGrid())
	line, err := plotter.NewLine(train)
	if err != nil {
		return nil, err
	}
	line.Color, line.Width = trainColor, vg.Points(1.2)
	p.Add(line)
	p.Legend.Add("train (every logged step)", line)
	if len(eval) > 0 {
		evalLine, points, err := plotter.NewLinePoints(eval)
		if err != nil {
			return nil, err
		}
		evalLine.Color, points.Color, points.Shape = evalColor, evalColor, draw.CircleGlyph{}
		evalLine.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
		p.Add(evalLine, points)
		p.Legend.Add(fmt.Sprintf("eval, held-apart (%d points)", len(eval)), evalLine, points)
	}
	p.Legend.Top, p.Legend.Left = falling, false
	return p, nil
}
