package eval

import (
	"fmt"
	"math"

	"github.com/engramlx/engram/data"
)

// needle is one of RULER's needle-in-a-haystack variants at byte level (data.Needle: single needle,
// multi-key, multi-value, multi-query). Its grid axis is the depth of the target needle. Rows are
// generated, or, with files, read from them and grouped by (length, depth) (needleDepth).
type needle struct {
	name     string
	template data.Needle // Keys, Values, Queries; SeqLen and Depth come from the grid
	files    *fileRows   // nil: generated rows
}

func needleTask(name string, template data.Needle) func(o Options) (Task, error) {
	return func(o Options) (Task, error) {
		n := needle{name: name, template: template}
		if len(o.Files) == 0 {
			return n, nil
		}
		var err error
		n.files, err = readFileRows(o.Files, o.Vocab, needleDepth)
		return n, err
	}
}

// Name implements Task.
func (n needle) Name() string { return n.name }

// Axis implements Task.
func (needle) Axis() string { return "depth" }

// Points implements Task.
func (n needle) Points(lengths []int, depths []float64) []Point {
	if n.files != nil {
		return n.files.points()
	}
	return grid(lengths, depths)
}

// Rows implements Task.
func (n needle) Rows(p Point, rows int, seed uint64) ([]Input, int, error) {
	if n.files != nil {
		inputs, err := n.files.inputs(p, rows)
		return inputs, n.files.mostLabels(p), err
	}
	t := n.template
	t.SeqLen, t.Depth = p.Length, p.At
	return generated(t, rows, seed)
}

// Score implements Task: RULER's recall, the fraction of the asked-for values recalled. A value is a
// run of digit targets in the answer ("V1, V2"); it counts when each of its digits is predicted.
func (needle) Score(r RowResult) float64 {
	values, right := 0, 0
	for i := 0; i < len(r.Targets); {
		if !isDigit(r.Targets[i]) {
			i++
			continue
		}
		ok := true
		for ; i < len(r.Targets) && isDigit(r.Targets[i]); i++ {
			ok = ok && r.Argmax[i] == r.Targets[i]
		}
		values++
		if ok {
			right++
		}
	}
	if values == 0 {
		return 0
	}
	return float64(right) / float64(values)
}

func isDigit(id int32) bool { return id >= '0' && id <= '9' }

// needleDepth places a passkey or needle row of a file on the grid: its length, and its depth column's
// value, or, when the file has none, where the answer's first value (its first run of digits) first
// appears in the row as a fraction of the row's length, to the nearest 0.1: close to the generator's
// depth at long lengths, offset by the prompt's intro and question at short ones.
func needleDepth(ids, labels []int32, depth float64) (Point, error) {
	p := Point{Length: len(ids), At: depth}
	if !math.IsNaN(depth) {
		return p, nil
	}
	value := firstDigitRun(labels)
	if len(value) == 0 {
		return p, fmt.Errorf("no labelled digits: not a passkey or needle row")
	}
	for t := 0; t+len(value) <= len(ids); t++ {
		if equalIDs(ids[t:t+len(value)], value) {
			p.At = math.Round(10*float64(t)/float64(len(ids))) / 10
			return p, nil
		}
	}
	return p, fmt.Errorf("the answer %q does not appear in the row's text", string(bytesOf(value)))
}

// firstDigitRun is the first run of consecutive labelled digits (the answer's first value).
func firstDigitRun(labels []int32) []int32 {
	var run []int32
	for _, l := range labels {
		if l != data.Ignore && isDigit(l) {
			run = append(run, l)
		} else if len(run) > 0 {
			break
		}
	}
	return run
}

func equalIDs(a, b []int32) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func bytesOf(ids []int32) []byte {
	b := make([]byte, len(ids))
	for i, id := range ids {
		b[i] = byte(id)
	}
	return b
}
