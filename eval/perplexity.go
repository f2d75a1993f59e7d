package eval

import (
	"fmt"

	"github.com/engramlx/engram/data"
)

// perplexity measures next-token prediction on a dataset file: the file's rows are concatenated (as
// data's pack mode does, each document keeping its own labels) and cut into windows of the context
// length, each streamed from an empty state. Cells report bits per token (bits per byte for byte-level
// models) and the next-token accuracy as the score. It has no second axis.
type perplexity struct {
	file string
	rows *data.Rows
}

func newPerplexityTask(o Options) (Task, error) {
	if o.File == "" {
		return nil, fmt.Errorf("eval: perplexity needs a dataset file (eval.file / -file)")
	}
	rows, err := data.ReadRows(data.FileConfig{Path: o.File, TextColumn: o.TextColumn}, o.Vocab)
	if err != nil {
		return nil, err
	}
	return &perplexity{file: o.File, rows: rows}, nil
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
		return nil, 0, fmt.Errorf("eval: %s holds %d tokens, fewer than one context of %d", x.file, x.rows.Tokens(), p.Length)
	}
	b := data.NewBatch(windows, p.Length)
	copy(b.InputIDs, x.rows.IDs[:windows*p.Length])
	copy(b.Labels, x.rows.Labels[:windows*p.Length])
	return []Input{BatchInput{b}}, p.Length, nil
}

// Score implements Task: next-token accuracy.
func (*perplexity) Score(r RowResult) float64 { return tokenAccuracy(r) }
