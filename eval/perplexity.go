package eval

import (
	"fmt"
	"strings"

	"github.com/engramlx/engram/data"
)

// perplexity measures next-token prediction on a dataset file: the file's rows are concatenated (as
// data's pack mode does, each document keeping its own labels) and cut into windows of the context
// length, each streamed from an empty state. Cells report bits per token (bits per byte for byte-level
// models) and the next-token accuracy as the score. It has no second axis.
type perplexity struct {
	files string
	rows  *data.Rows
}

// newPerplexityTask reads every file's rows, in order, as one dataset.
func newPerplexityTask(o Options) (Task, error) {
	if len(o.Files) == 0 {
		return nil, fmt.Errorf("eval: perplexity needs a dataset file (eval.file / -file)")
	}
	all := data.NewRows()
	for _, file := range o.Files {
		rows, err := data.ReadRows(data.FileConfig{Path: file, TextColumn: o.TextColumn}, o.Vocab)
		if err != nil {
			return nil, err
		}
		for r := 0; r < rows.Len(); r++ {
			all.Append(rows.Row(r))
		}
	}
	return &perplexity{files: strings.Join(o.Files, ", "), rows: all}, nil
}

// Name implements Task.
func (*perplexity) Name() string { return "perplexity" }

// Axis implements Task.
func (*perplexity) Axis() string { return "" }

// Points implements Task.
func (*perplexity) Points(lengths []int, _ []float64) []Point { return grid(lengths, nil) }

// Rows implements Task: up to rows windows of p.Length tokens from the start of the file.
func (x *perplexity) Rows(p Point, rows int, _ uint64) ([]Input, int, error) {
	windows := min(int(x.rows.Tokens()/int64(p.Length)), rows)
	if windows == 0 {
		return nil, 0, fmt.Errorf("eval: %s holds %d tokens, fewer than one context of %d", x.files, x.rows.Tokens(), p.Length)
	}
	b := data.NewBatch(windows, p.Length)
	copy(b.InputIDs, x.rows.IDs[:windows*p.Length])
	copy(b.Labels, x.rows.Labels[:windows*p.Length])
	return []Input{BatchInput{b}}, p.Length, nil
}

// Score implements Task: next-token accuracy.
func (*perplexity) Score(r RowResult) float64 { return tokenAccuracy(r) }
