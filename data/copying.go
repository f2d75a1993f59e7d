package data

import (
	"fmt"
	"github.com/engramlx/engram/internal/field"
	"math/rand/v2"
	"sort"
)

// Token ids of the copying tasks: data tokens are drawn from [2, Vocab).
const (
	CopyBlank  = 0 // noise / empty position
	CopyMarker = 1 // "now reproduce"
)

// Copy is the copy task of the Recurrent Memory Transformer (Bulatov et al., 2022): a sequence to
// copy, a gap of blanks, a marker, then the sequence again:
//
//	x_1 .. x_L, CopyBlank x (SeqLen - 2L), CopyMarker, x_1 .. x_{L-1}
//
// labels: the marker's is x_1 and copy position k's is x_{k+1}, L labelled positions; SeqLen = 2L is
// RMT's setting, a longer SeqLen adds the delay of the classic copy-memory task.
type Copy struct {
	Vocab  int `yaml:"vocab"`
	SeqLen int `yaml:"seq_len"`
	Length int `yaml:"length"` // L, tokens to copy
}

// Validate implements Task.
func (c Copy) Validate() error {
	switch {
	case c.Vocab < 3:
		return field.Errorf("copy.vocab", c.Vocab, "need at least 3 (blank, marker and one data token)")
	case c.Length < 1:
		return field.Errorf("copy.length", c.Length, "need at least 1")
	case c.SeqLen < 2*c.Length:
		return field.Errorf("copy.seq_len", c.SeqLen, "need at least 2 * length = %d", 2*c.Length)
	}
	return nil
}

// Shape implements Task.
func (c Copy) Shape() (int, int) { return c.SeqLen, c.Length }

// String implements Task.
func (c Copy) String() string {
	return fmt.Sprintf("copy(vocab=%d, seq_len=%d, length=%d)", c.Vocab, c.SeqLen, c.Length)
}

// Row implements Task.
func (c Copy) Row(rng *rand.Rand, ids, labels []int32) {
	for i := range ids {
		ids[i], labels[i] = CopyBlank, Ignore
	}
	x := ids[:c.Length]
	for i := range x {
		x[i] = int32(2 + rng.IntN(c.Vocab-2))
	}
	copyOut(ids, labels, c.SeqLen-c.Length, x)
}

// copyOut writes the marker at position at, then data[:len-1] after it, with data as the labels.
func copyOut(ids, labels []int32, at int, data []int32) {
	ids[at] = CopyMarker
	for k, v := range data {
		labels[at+k] = v
		if k+1 < len(data) {
			ids[at+k+1] = v
		}
	}
}

// SelectiveCopy is the selective copying task (Gu & Dao, 2023, "Mamba", after Arjovsky et al.):
// Tokens data tokens are scattered among blanks in the first SeqLen - Tokens positions, in random
// positions but kept in order; then the marker and the data tokens again:
//
//	... d_1 ... d_2 ... d_T ..., CopyMarker, d_1 .. d_{T-1}
//
// labels: the marker's is d_1 and the k-th copied token's is d_{k+1}, Tokens labelled positions.
type SelectiveCopy struct {
	Vocab  int `yaml:"vocab"`
	SeqLen int `yaml:"seq_len"`
	Tokens int `yaml:"tokens"` // data tokens to remember
}

// Validate implements Task.
func (s SelectiveCopy) Validate() error {
	switch {
	case s.Vocab < 3:
		return field.Errorf("selective_copy.vocab", s.Vocab, "need at least 3 (blank, marker and one data token)")
	case s.Tokens < 1:
		return field.Errorf("selective_copy.tokens", s.Tokens, "need at least 1")
	case s.SeqLen < 2*s.Tokens:
		return field.Errorf("selective_copy.seq_len", s.SeqLen, "need at least 2 * tokens = %d", 2*s.Tokens)
	}
	return nil
}

// Shape implements Task.
func (s SelectiveCopy) Shape() (int, int) { return s.SeqLen, s.Tokens }

// String implements Task.
func (s SelectiveCopy) String() string {
	return fmt.Sprintf("selective_copy(vocab=%d, seq_len=%d, tokens=%d)", s.Vocab, s.SeqLen, s.Tokens)
}

// Row implements Task.
func (s SelectiveCopy) Row(rng *rand.Rand, ids, labels []int32) {
	for i := range ids {
		ids[i], labels[i] = CopyBlank, Ignore
	}
	context := s.SeqLen - s.Tokens
	pos := sampleDistinct(rng, s.Tokens, 0, context)
	sort.Slice(pos, func(i, j int) bool { return pos[i] < pos[j] })
	data := make([]int32, s.Tokens)
	for k, p := range pos {
		data[k] = int32(2 + rng.IntN(s.Vocab-2))
		ids[p] = data[k]
	}
	copyOut(ids, labels, context, data)
}
