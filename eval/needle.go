package eval

import "github.com/engramlx/engram/data"

// needle is one of RULER's needle-in-a-haystack variants at byte level (data.Needle: single needle,
// multi-key, multi-value, multi-query). Its grid axis is the depth of the target needle.
type needle struct {
	name     string
	template data.Needle // Keys, Values, Queries; SeqLen and Depth come from the grid
}

func needleTask(name string, template data.Needle) Task {
	return needle{name: name, template: template}
}

// Name implements Task.
func (n needle) Name() string { return n.name }

// Axis implements Task.
func (needle) Axis() string { return "depth" }

// Points implements Task.
func (needle) Points(lengths []int, depths []float64) []Point { return grid(lengths, depths) }

// Rows implements Task.
func (n needle) Rows(p Point, rows int, seed uint64) ([]Input, int, error) {
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
