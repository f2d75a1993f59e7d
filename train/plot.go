package train

import (
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// plot draws loss.png (train loss and, where logged, eval loss against step) from metrics.jsonl.
// A failure to plot is reported but never fails the run.
func (r *Runner) plot() {
	if err := PlotLoss(filepath.Join(r.Dir, "metrics.jsonl"), filepath.Join(r.Dir, "loss.png"), r.Exp.Name); err != nil {
		r.logf("warning: loss plot not written: %v", err)
	}
}

// PlotLoss renders the loss curves of a metrics.jsonl file to a PNG.
func PlotLoss(metricsFile, pngFile, title string) error {
	lines, err := ReadMetrics(metricsFile)
	if err != nil {
		return err
	}
	var train, eval plotter.XYs
	for _, l := range lines {
		train = append(train, plotter.XY{X: l["step"], Y: l["loss"]})
		if v, ok := l["eval_loss"]; ok {
			eval = append(eval, plotter.XY{X: l["step"], Y: v})
		}
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "step"
	p.Y.Label.Text = "cross-entropy loss"
	args := []any{"train", train}
	if len(eval) > 0 {
		args = append(args, "eval (held-apart)", eval)
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return err
	}
	tmp := pngFile + ".tmp.png"
	if err := p.Save(7*vg.Inch, 4*vg.Inch, tmp); err != nil {
		return err
	}
	return renameOver(tmp, pngFile)
}
