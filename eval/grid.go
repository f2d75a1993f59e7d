package eval

import (
	"fmt"
	"math"
	"time"
)

// Cell is the result of one grid point for one run.
type Cell struct {
	Run    string  // the run (checkpoint) evaluated
	Task   string  // task name
	Length int     // context length in tokens
	Axis   string  // "depth", "pairs" or ""
	At     float64 // value on Axis
	Rows   int     // rows scored
	// Accuracy is the mean of the task's row score (exact match, recall or query accuracy).
	Accuracy float64
	// TokenAccuracy is the fraction of labelled positions predicted; BitsPerToken their mean
	// -log2 p(target) (bits per byte for byte-level models).
	TokenAccuracy, BitsPerToken float64
	// Status is "ok" or why the cell has no numbers ("exceeds cache").
	Status  string
	Seconds float64
}

// Measured reports whether the cell holds numbers.
func (c Cell) Measured() bool { return c.Status == "ok" }

// Grid is what to measure: context lengths, second-axis values, rows per cell and the rows' seed.
type Grid struct {
	Lengths []int
	Axis    []float64
	Samples int
	Seed    uint64
}

// Run evaluates task over the grid with streamer s and returns one cell per point. A point longer than
// the model's KV cache becomes a cell with Status "exceeds cache"; any other error stops the run.
// log, when non-nil, receives one line per cell.
func Run(s *Streamer, run string, task Task, g Grid, log func(format string, args ...any)) ([]Cell, error) {
	if g.Samples < 1 {
		return nil, fmt.Errorf("eval: samples = %d: must be >= 1", g.Samples)
	}
	var cells []Cell
	for _, p := range task.Points(g.Lengths, g.Axis) {
		cell, err := runPoint(s, task, p, g)
		if err != nil {
			return nil, fmt.Errorf("eval %s at length %d, %s %g: %w", task.Name(), p.Length, task.Axis(), p.At, err)
		}
		cell.Run = run
		if log != nil {
			log("%s %s length %d %s %g: %s", run, task.Name(), p.Length, task.Axis(), p.At, cell.summary())
		}
		cells = append(cells, cell)
	}
	return cells, nil
}

func runPoint(s *Streamer, task Task, p Point, g Grid) (Cell, error) {
	start := time.Now()
	cell := Cell{Task: task.Name(), Length: p.Length, Axis: task.Axis(), At: p.At, Status: "ok"}
	if limit := s.Model.MaxContext(); limit > 0 && p.Length > limit {
		cell.Status = "exceeds cache"
		return cell, nil
	}
	inputs, slots, err := task.Rows(p, g.Samples, g.Seed)
	if err != nil {
		return cell, err
	}
	slots = min(slots, s.Segment)
	var score, nll float64
	var right, positions int
	for _, in := range inputs {
		results, err := Collect(s, in, g.Samples, slots)
		if err != nil {
			return cell, err
		}
		for _, r := range results {
			score += task.Score(r)
			for i := range r.Targets {
				nll -= r.LogProbs[i]
				if r.Argmax[i] == r.Targets[i] {
					right++
				}
			}
			positions += len(r.Targets)
			cell.Rows++
		}
	}
	cell.Accuracy = score / float64(max(cell.Rows, 1))
	cell.TokenAccuracy = float64(right) / float64(max(positions, 1))
	cell.BitsPerToken = nll / float64(max(positions, 1)) / math.Ln2
	cell.Seconds = time.Since(start).Seconds()
	return cell, nil
}

func (c Cell) summary() string {
	if !c.Measured() {
		return c.Status
	}
	return fmt.Sprintf("accuracy %.3f, token accuracy %.3f, %.3f bits/token, %d rows, %.1fs",
		c.Accuracy, c.TokenAccuracy, c.BitsPerToken, c.Rows, c.Seconds)
}
