package data

import (
	"fmt"
	"math/rand/v2"
)

// Task is a seeded synthetic task: every generator in this package (MQAR, Passkey, Needle, Copy,
// SelectiveCopy) is one, so the trainer, eval grids and cmd/datagen can take any of them.
type Task interface {
	// Validate names the field that makes the task impossible.
	Validate() error
	// Row writes one example into ids and labels (both seqLen long), drawing from rng.
	Row(rng *rand.Rand, ids, labels []int32)
	// Shape is the row length and the most labelled positions of a row.
	Shape() (seqLen, labelSlots int)
	// String names the task and its parameters, for logs.
	String() string
}

// NewTaskSource returns the indexed source of a task for a split (0 train, 1 eval, 2 test).
func NewTaskSource(task Task, batchSize int, seed, split uint64) (*GeneratorSource, error) {
	if err := task.Validate(); err != nil {
		return nil, err
	}
	if batchSize < 1 {
		return nil, fmt.Errorf("%s: batch size %d: need at least 1", task, batchSize)
	}
	seqLen, slots := task.Shape()
	return &GeneratorSource{
		Label: task.String(), BatchSize: batchSize, SeqLen: seqLen, Seed: seed, Split: split, Slots: slots,
		Fill: task.Row,
	}, nil
}

// Shape implements Task.
func (m MQAR) Shape() (int, int) { return m.SeqLen, m.NumPairs }

// String implements Task.
func (m MQAR) String() string {
	return fmt.Sprintf("mqar(vocab=%d, seq_len=%d, pairs=%d)", m.Vocab, m.SeqLen, m.NumPairs)
}

// haystack is the filler text of the byte-level retrieval tasks (the noise sentences of the passkey
// task of Mohtashami & Jaggi, 2023, which RULER's needle tasks also use).
const haystack = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "

// byteRow writes text into a row of byte ids from left to right.
type byteRow struct {
	ids, labels []int32
	n           int
}

func newByteRow(ids, labels []int32) *byteRow {
	for i := range ids {
		ids[i], labels[i] = Pad, Ignore
	}
	return &byteRow{ids: ids, labels: labels}
}

// text appends s.
func (w *byteRow) text(s string) {
	for i := 0; i < len(s); i++ {
		w.ids[w.n] = int32(s[i])
		w.n++
	}
}

// filler appends count bytes of the endlessly repeated filler, starting at its byte from.
func (w *byteRow) filler(f string, from, count int) {
	for i := 0; i < count; i++ {
		w.ids[w.n] = int32(f[(from+i)%len(f)])
		w.n++
	}
}

// answer appends s as the answer: the label of the position before each of its bytes is that byte.
func (w *byteRow) answer(s string) {
	for i := 0; i < len(s); i++ {
		w.labels[w.n-1] = int32(s[i])
		w.ids[w.n] = int32(s[i])
		w.n++
	}
}

// digits draws n decimal digits, the first not 0.
func digits(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + rng.IntN(10))
	}
	if n > 0 && b[0] == '0' {
		b[0] = byte('1' + rng.IntN(9))
	}
	return string(b)
}

// letters draws n lowercase letters.
func letters(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + rng.IntN(26))
	}
	return string(b)
}

// depthOf returns the depth of a row: fixed, or uniform in [0, 1] when random.
func depthOf(rng *rand.Rand, depth float64, random bool) float64 {
	if random {
		return rng.Float64()
	}
	return depth
}

func checkDepth(task string, depth float64) error {
	if !(depth >= 0 && depth <= 1) {
		return fmt.Errorf("%s.depth = %g: must be in [0, 1] (0 = start of the haystack, 1 = end)", task, depth)
	}
	return nil
}

// wordStart moves a filler offset forward to the start of a word (just after a space of the
// repeated filler), so inserted sentences do not split words; it never passes limit.
func wordStart(filler string, at, limit int) int {
	for at > 0 && at < limit && filler[(at-1)%len(filler)] != ' ' {
		at++
	}
	return at
}
