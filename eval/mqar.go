package eval

import (
	"fmt"

	"github.com/engramlx/engram/data"
)

// mqar is multi-query associative recall (data.MQAR, Zoology), scored by the fraction of queries
// answered. Its grid axis is the number of key-value pairs. Rows are generated from the template, or,
// with files, read from them: the rows are grouped by (length, labelled positions = pairs), and those
// groups are the grid.
type mqar struct {
	template data.MQAR
	pairs    []int
	files    *fileRows // nil: generated rows
}

func newMQARTask(o Options) (Task, error) {
	m := &mqar{template: o.MQAR, pairs: o.Pairs}
	if m.template.Vocab == 0 {
		m.template.Vocab = o.Vocab
	}
	if m.template.PowerA == 0 {
		m.template.PowerA = 0.01
	}
	if len(o.Files) == 0 {
		// Generated rows draw ids up to the template's vocabulary; file rows are checked id by id.
		if m.template.Vocab > o.Vocab {
			return nil, fmt.Errorf("eval: mqar vocab %d exceeds the model's vocabulary %d", m.template.Vocab, o.Vocab)
		}
		if len(o.Pairs) == 0 {
			return nil, fmt.Errorf("eval: mqar needs pair counts (eval.pairs) or a file")
		}
		return m, nil
	}
	var err error
	m.files, err = readFileRows(o.Files, o.Vocab, func(ids, labels []int32, _ float64) (Point, error) {
		return Point{Length: len(ids), At: float64(labelled(labels))}, nil
	})
	return m, err
}

func labelled(labels []int32) int {
	n := 0
	for _, l := range labels {
		if l != data.Ignore {
			n++
		}
	}
	return n
}

// Name implements Task.
func (*mqar) Name() string { return "mqar" }

// Axis implements Task.
func (*mqar) Axis() string { return "pairs" }

// Points implements Task: lengths x pairs, or the (length, pairs) groups of the files.
func (m *mqar) Points(lengths []int, _ []float64) []Point {
	if m.files != nil {
		return m.files.points()
	}
	axis := make([]float64, len(m.pairs))
	for i, p := range m.pairs {
		axis[i] = float64(p)
	}
	return grid(lengths, axis)
}

// Rows implements Task.
func (m *mqar) Rows(p Point, rows int, seed uint64) ([]Input, int, error) {
	if m.files != nil {
		inputs, err := m.files.inputs(p, rows)
		return inputs, int(p.At), err
	}
	t := m.template
	t.SeqLen, t.NumPairs = p.Length, int(p.At)
	return generated(t, rows, seed)
}

// Score implements Task: the fraction of queries answered (Zoology's accuracy).
func (*mqar) Score(r RowResult) float64 { return tokenAccuracy(r) }
