package data

import (
	"fmt"
	"math/rand/v2"
)

// Curriculum is a Source whose batch i holds rows of k segments, k drawn uniformly from 1..Segments by
// (Seed, Split, i): the same index always gives the same k and the same rows, so a resumed run sees the
// same data. Task(k) is the task sized for k segments. It is a schedule of the batches (the BABILong
// recipe of training recurrent-memory models on 1..n segments), so it lives with the data: the model
// only sees rows of different lengths, each compiling its own train graph.
type Curriculum struct {
	Segments  int
	Task      func(k int) Task
	BatchSize int
	Seed      uint64
	Split     uint64
	sources   []*GeneratorSource // sources[k-1]
}

// NewCurriculum checks every Task(k) for k in 1..segments and returns the source.
func NewCurriculum(segments int, task func(k int) Task, batchSize int, seed, split uint64) (*Curriculum, error) {
	if segments < 1 {
		return nil, fmt.Errorf("segment curriculum: %d segments: need at least 1", segments)
	}
	c := &Curriculum{Segments: segments, Task: task, BatchSize: batchSize, Seed: seed, Split: split}
	for k := 1; k <= segments; k++ {
		src, err := NewTaskSource(task(k), batchSize, seed, split)
		if err != nil {
			return nil, fmt.Errorf("segment curriculum, %d of %d segments: %w", k, segments, err)
		}
		c.sources = append(c.sources, src)
	}
	return c, nil
}

// SegmentsAt is the segment count of batch index.
func (c *Curriculum) SegmentsAt(index int64) int {
	rng := rand.New(rand.NewPCG(c.Seed^0x5eed0fc0ffee, c.Split<<48^uint64(index)))
	return 1 + rng.IntN(c.Segments)
}

// Name implements Source.
func (c *Curriculum) Name() string {
	return fmt.Sprintf("curriculum(1..%d segments of %s)", c.Segments, c.Task(c.Segments))
}

// BatchAt implements Source.
func (c *Curriculum) BatchAt(index int64) (Batch, error) {
	return c.sources[c.SegmentsAt(index)-1].BatchAt(index)
}

// LabelSlots implements Source: the most labelled positions over every k.
func (c *Curriculum) LabelSlots() int {
	slots := 0
	for _, s := range c.sources {
		slots = max(slots, s.LabelSlots())
	}
	return slots
}
