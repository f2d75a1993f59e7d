package eval

import (
	"fmt"

	"github.com/engramlx/engram/data"
)

// defaultCopyLength is how many tokens the copy task asks to reproduce when the run did not train on
// it; the rest of a row is the delay.
const defaultCopyLength = 16

// copyTask is the delayed copy task (data.Copy): length tokens, blanks up to the context length, a
// marker, then the tokens again; scored by the fraction of tokens reproduced. It has no second axis.
type copyTask struct{ vocab, length int }

func newCopyTask(o Options) (Task, error) {
	if o.Vocab < 3 {
		return nil, fmt.Errorf("eval: copy needs a vocabulary of at least 3, the model has %d", o.Vocab)
	}
	length := o.CopyLength
	if length == 0 {
		length = defaultCopyLength
	}
	return copyTask{vocab: o.Vocab, length: length}, nil
}

// Name implements Task.
func (copyTask) Name() string { return "copy" }

// Axis implements Task.
func (copyTask) Axis() string { return "" }

// Points implements Task.
func (copyTask) Points(lengths []int, _ []float64) []Point { return grid(lengths, nil) }

// Rows implements Task.
func (c copyTask) Rows(p Point, rows int, seed uint64) ([]Input, int, error) {
	return generated(data.Copy{Vocab: c.vocab, SeqLen: p.Length, Length: c.length}, rows, seed)
}

// Score implements Task.
func (copyTask) Score(r RowResult) float64 { return tokenAccuracy(r) }
