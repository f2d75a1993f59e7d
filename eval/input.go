package eval

import (
	"fmt"
	"math"

	"github.com/engramlx/engram/data"
)

// BatchInput is an Input over rows held in memory (a data.Batch: generated rows or rows of a file).
type BatchInput struct{ data.Batch }

// Rows implements Input.
func (b BatchInput) Rows() int { return b.Size }

// Len implements Input.
func (b BatchInput) Len() int { return b.SeqLen }

// Read implements Input.
func (b BatchInput) Read(from, n int, ids, labels []int32) error {
	if from < 0 || from+n > b.SeqLen {
		return fmt.Errorf("eval: read [%d, %d) of rows of %d tokens", from, from+n, b.SeqLen)
	}
	for r := 0; r < b.Size; r++ {
		rowIDs, rowLabels := b.Row(r)
		copy(ids[r*n:(r+1)*n], rowIDs[from:from+n])
		copy(labels[r*n:(r+1)*n], rowLabels[from:from+n])
	}
	return nil
}

// RowResult is what the model predicted at the labelled positions of one row, in order.
type RowResult struct {
	Targets  []int32
	Argmax   []int32
	LogProbs []float64 // natural log of the probability of each target
}

// Collect streams in and returns one RowResult per row.
func Collect(s *Streamer, in Input, batch, slots int) ([]RowResult, error) {
	results := make([]RowResult, in.Rows())
	err := s.Stream(in, batch, slots, func(row, _ int, target int32, logits []float64) {
		r := &results[row]
		arg, logp := argmaxLogProb(logits, target)
		r.Targets = append(r.Targets, target)
		r.Argmax = append(r.Argmax, arg)
		r.LogProbs = append(r.LogProbs, logp)
	})
	return results, err
}

// argmaxLogProb returns the argmax of logits and log softmax(logits)[target], computed stably in
// float64: log p_t = l_t - max - log sum_j exp(l_j - max).
func argmaxLogProb(logits []float64, target int32) (int32, float64) {
	arg := 0
	for j, l := range logits {
		if l > logits[arg] {
			arg = j
		}
	}
	maxL := logits[arg]
	sum := 0.0
	for _, l := range logits {
		sum += math.Exp(l - maxL)
	}
	return int32(arg), logits[target] - maxL - math.Log(sum)
}
