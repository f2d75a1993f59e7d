package eval

import (
	"fmt"
	"sort"

	"github.com/engramlx/engram/data"
)

// mqar is multi-query associative recall (data.MQAR, Zoology), scored by the fraction of queries
// answered. Its grid axis is the number of key-value pairs. Rows are generated from the template, or,
// with a file, read from it: a file's rows are grouped by (length, labelled positions = pairs), and
// those groups are the grid.
type mqar struct {
	template data.MQAR
	pairs    []int
	file     string
	groups   map[Point][]int // file rows of each point
	rows     *data.Rows
}

func newMQARTask(o Options) (Task, error) {
	m := &mqar{template: o.MQAR, pairs: o.Pairs, file: o.File}
	if m.template.Vocab == 0 {
		m.template.Vocab = o.Vocab
	}
	if m.template.PowerA == 0 {
		m.template.PowerA = 0.01
	}
	if m.template.Vocab > o.Vocab {
		return nil, fmt.Errorf("eval: mqar vocab %d exceeds the model's vocabulary %d", m.template.Vocab, o.Vocab)
	}
	if o.File == "" {
		if len(o.Pairs) == 0 {
			return nil, fmt.Errorf("eval: mqar needs pair counts (eval.pairs) or a file")
		}
		return m, nil
	}
	rows, err := data.ReadRows(data.FileConfig{Path: o.File}, o.Vocab)
	if err != nil {
		return nil, err
	}
	m.rows, m.groups = rows, map[Point][]int{}
	for r := 0; r < rows.Len(); r++ {
		ids, labels := rows.Row(r)
		p := Point{Length: len(ids), At: float64(labelled(labels))}
		m.groups[p] = append(m.groups[p], r)
	}
	return m, nil
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

// Points implements Task: lengths x pairs, or the (length, pairs) groups of the file.
func (m *mqar) Points(lengths []int, _ []float64) []Point {
	if m.rows == nil {
		axis := make([]float64, len(m.pairs))
		for i, p := range m.pairs {
			axis[i] = float64(p)
		}
		return grid(lengths, axis)
	}
	points := make([]Point, 0, len(m.groups))
	for p := range m.groups {
		points = append(points, p)
	}
	sort.Slice(points, func(i, j int) bool {
		if points[i].At != points[j].At {
			return points[i].At < points[j].At
		}
		return points[i].Length < points[j].Length
	})
	return points
}

// Rows implements Task.
func (m *mqar) Rows(p Point, rows int, seed uint64) ([]Input, int, error) {
	if m.rows == nil {
		t := m.template
		t.SeqLen, t.NumPairs = p.Length, int(p.At)
		return generated(t, rows, seed)
	}
	group := m.groups[p]
	if len(group) == 0 {
		return nil, 0, fmt.Errorf("eval: %s has no rows of length %d with %g labelled positions", m.file, p.Length, p.At)
	}
	var inputs []Input
	for start := 0; start < len(group); start += rows {
		part := group[start:min(start+rows, len(group))]
		b := data.NewBatch(len(part), p.Length)
		for i, r := range part {
			ids, labels := m.rows.Row(r)
			bi, bl := b.Row(i)
			copy(bi, ids)
			copy(bl, labels)
		}
		inputs = append(inputs, BatchInput{b})
	}
	return inputs, int(p.At), nil
}

// Score implements Task: the fraction of queries answered (Zoology's accuracy).
func (*mqar) Score(r RowResult) float64 { return tokenAccuracy(r) }
