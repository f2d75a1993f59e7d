package eval

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/engramlx/engram/data"
	"github.com/engramlx/engram/internal/fsutil"

	"github.com/engramlx/engram/configs"
)

// Request is one cmd/eval invocation: runs to evaluate and what to measure.
type Request struct {
	Runs []string     // run directories (runs/<name>)
	Eval configs.Eval // tasks, lengths, depths, pairs, samples, segment, file, seed
	Out  string       // output directory; "" = <run>/eval (with several runs: Out/<run name>)
	Log  io.Writer
	// PlotOnly re-draws the plots from the <task>.csv files already in the output directories.
	PlotOnly bool
}

// plotMetrics are drawn for every task: <task>_heatmap.png / <task>_curve.png show the accuracy,
// <task>_token_heatmap.png / <task>_token_curve.png the token accuracy.
var plotMetrics = map[string]Metric{"": AccuracyMetric, "_token": TokenAccuracyMetric}

// Evaluate evaluates every run on every task, writing per run <task>.csv, <task>.md and (tasks with an
// axis) <task>_heatmap.png, and per task <task>_curve.png comparing all runs, into each run's output
// directory (plus the same plots of the token accuracy, <task>_token_*.png).
func Evaluate(req Request) error {
	if req.Log == nil {
		req.Log = os.Stderr
	}
	if err := req.Eval.Validate(); err != nil {
		return err
	}
	logf := func(format string, args ...any) { fmt.Fprintf(req.Log, format+"\n", args...) }
	byTask := map[string]map[string][]Cell{}
	var outDirs []string
	for _, dir := range req.Runs {
		name := displayName(dir)
		out := filepath.Join(dir, "eval")
		if req.Out != "" {
			out = req.Out
			if len(req.Runs) > 1 {
				out = filepath.Join(req.Out, name)
			}
		}
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
		outDirs = append(outDirs, out)
		var results map[string][]Cell
		var err error
		if req.PlotOnly {
			results, err = readResults(out, req.Eval.Tasks)
		} else {
			results, err = evalRun(dir, name, out, req.Eval, logf)
		}
		if err == nil {
			err = writeHeatmaps(out, name, results)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		for task, cells := range results {
			if byTask[task] == nil {
				byTask[task] = map[string][]Cell{}
			}
			byTask[task][name] = cells
		}
	}
	for task, byRun := range byTask {
		for suffix, metric := range plotMetrics {
			png, err := Curve(byRun, metric, task+": "+metric.Name+" vs context length")
			if err != nil {
				logf("%s: no curve: %v", task, err)
				continue
			}
			for _, out := range outDirs {
				if err := fsutil.WriteFileAtomic(filepath.Join(out, task+suffix+"_curve.png"), png); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// logWriter turns logf into a writer of lines (the backend's choice line).
type logWriter func(string, ...any)

func (l logWriter) Write(p []byte) (int, error) {
	l("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// readResults reads the cells of earlier runs from out/<task>.csv.
func readResults(out string, tasks []string) (map[string][]Cell, error) {
	results := map[string][]Cell{}
	for _, task := range tasks {
		cells, err := ReadCSV(filepath.Join(out, task+".csv"))
		if err != nil {
			return nil, err
		}
		results[task] = cells
	}
	return results, nil
}

// writeHeatmaps draws the heatmaps of the tasks that have a second axis.
func writeHeatmaps(out, run string, results map[string][]Cell) error {
	for task, cells := range results {
		if len(cells) == 0 || cells[0].Axis == "" {
			continue
		}
		for suffix, metric := range plotMetrics {
			png, err := Heatmap(cells, metric, fmt.Sprintf("%s: %s %s (%%)", run, task, metric.Name))
			if err := WritePNG(filepath.Join(out, task+suffix+"_heatmap.png"), png, err); err != nil {
				return err
			}
		}
	}
	return nil
}

// evalRun opens one run and measures every task, writing its tables and heatmaps into out.
func evalRun(dir, name, out string, e configs.Eval, logf func(string, ...any)) (map[string][]Cell, error) {
	sub, err := open(dir, logWriter(logf))
	if err != nil {
		return nil, err
	}
	seq := sub.seq
	s, err := NewStreamer(seq, sub.vocab, sub.store, sub.backend, e.Segment)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if line := seq.Describe(); line != "" {
		logf("%s: %s", name, line)
	}
	if s.Segment != e.Segment {
		logf("%s: streams segments of %d tokens (eval.segment %d rounded to whole model segments)", name, s.Segment, e.Segment)
	}
	opts := Options{Vocab: sub.vocab, MQAR: sub.data.MQAR, Pairs: e.Pairs, Files: e.Files, TextColumn: e.TextColumn}
	if gen, ok := sub.data.Generator(); ok {
		if c, isCopy := gen.(data.Copy); isCopy {
			opts.CopyLength = c.Length
		}
	}
	results := map[string][]Cell{}
	for _, taskName := range e.Tasks {
		task, err := NewTask(taskName, opts)
		if err != nil {
			return nil, err
		}
		var axis []float64
		if task.Axis() == "depth" {
			axis = e.Depths
		}
		cells, err := Run(s, name, task, Grid{Lengths: e.Lengths, Axis: axis, Samples: e.Samples, Seed: e.Seed}, logf)
		if err != nil {
			return nil, err
		}
		prefix := filepath.Join(out, task.Name())
		if err := WriteTables(prefix, cells); err != nil {
			return nil, err
		}
		results[task.Name()] = cells
	}
	return results, nil
}
