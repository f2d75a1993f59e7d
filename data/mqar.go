package data

import (
	"fmt"
	"github.com/engramlx/engram/internal/field"
	"math"
	"math/rand/v2"
)

// MQAR is the multi-query associative recall task of Zoology (Arora et al., 2023, "Zoology: Measuring
// and Improving Recall in Efficient Language Models"), with its semantics:
//
//   - keys are drawn from [1, Vocab/2), values from [Vocab/2, Vocab), NumPairs distinct keys per row;
//   - the row opens with the pairs k_1 v_1 ... k_N v_N (the context, 2N tokens);
//   - then every key is queried once, at position 2N + 2*gap, gaps drawn without replacement with
//     P(gap = g) proportional to g^(PowerA - 1), g = 1..(SeqLen - 2N)/2 (short gaps are likelier);
//   - other positions are filler (0, or random keys/values when RandomFiller);
//   - labels[t] is the value that must follow the query key at t; Ignore elsewhere.
type MQAR struct {
	Vocab        int     `yaml:"vocab"`
	SeqLen       int     `yaml:"seq_len"`
	NumPairs     int     `yaml:"num_pairs"`
	PowerA       float64 `yaml:"power_a"`
	RandomFiller bool    `yaml:"random_filler"`
}

// Validate names the field that makes the task impossible.
func (m MQAR) Validate() error {
	switch {
	case m.Vocab < 4:
		return field.Errorf("mqar.vocab", m.Vocab, "need at least 4 (keys and values take half each)")
	case m.NumPairs < 1:
		return field.Errorf("mqar.num_pairs", m.NumPairs, "need at least 1")
	case m.NumPairs > m.Vocab/2-1:
		return field.Errorf("mqar.num_pairs", m.NumPairs, "only %d distinct keys exist below vocab/2 = %d", m.Vocab/2-1, m.Vocab/2)
	case (m.SeqLen-2*m.NumPairs)/2 < m.NumPairs:
		return field.Errorf("mqar.seq_len", m.SeqLen, "too short for %d pairs and their queries (need >= %d)", m.NumPairs, 4*m.NumPairs)
	case m.PowerA <= 0:
		return field.Errorf("mqar.power_a", m.PowerA, "must be > 0")
	}
	return nil
}

// Row writes one example into ids and labels (both SeqLen long), drawing from rng.
func (m MQAR) Row(rng *rand.Rand, ids, labels []int32) {
	half := m.Vocab / 2
	keys := sampleDistinct(rng, m.NumPairs, 1, half)
	values := make([]int32, m.NumPairs)
	for i := range values {
		values[i] = int32(half + rng.IntN(m.Vocab-half))
	}
	for t := range ids {
		ids[t] = 0
		if m.RandomFiller {
			ids[t] = int32(1 + rng.IntN(m.Vocab-1))
		}
		labels[t] = Ignore
	}
	context := 2 * m.NumPairs
	for i := range keys {
		ids[2*i], ids[2*i+1] = keys[i], values[i]
	}
	space := (m.SeqLen - context) / 2
	gaps := samplePowerLawGaps(rng, m.NumPairs, space, m.PowerA)
	for i, gap := range gaps {
		pos := context + 2*gap
		ids[pos] = keys[i]
		labels[pos] = values[i]
	}
}

// sampleDistinct draws n distinct ints from [lo, hi).
func sampleDistinct(rng *rand.Rand, n, lo, hi int) []int32 {
	seen := make(map[int32]bool, n)
	out := make([]int32, 0, n)
	for len(out) < n {
		k := int32(lo + rng.IntN(hi-lo))
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// samplePowerLawGaps draws n distinct gaps from 0..space-1 with P(g) proportional to (g+1)^(a-1),
// without replacement (Zoology's np.random.choice(space, n, replace=False, p)).
func samplePowerLawGaps(rng *rand.Rand, n, space int, a float64) []int {
	weights := make([]float64, space)
	total := 0.0
	for g := range weights {
		weights[g] = a * math.Pow(float64(g+1), a-1)
		total += weights[g]
	}
	gaps := make([]int, n)
	for i := range gaps {
		r := rng.Float64() * total
		g := 0
		for ; g < space-1; g++ {
			if weights[g] == 0 {
				continue
			}
			if r < weights[g] {
				break
			}
			r -= weights[g]
		}
		for weights[g] == 0 { // rounding at the tail: step back to an unused gap
			g--
		}
		gaps[i] = g
		total -= weights[g]
		weights[g] = 0
	}
	return gaps
}

// GeneratorSource turns a row generator into an indexed Source: batch i of split s is drawn from a
// generator seeded by (seed, s, i), so splits never share a random stream and resume is exact.
type GeneratorSource struct {
	Label     string
	BatchSize int
	SeqLen    int
	Seed      uint64
	Split     uint64 // 0 = train, 1 = eval, 2 = test
	Slots     int
	Fill      func(rng *rand.Rand, ids, labels []int32)
}

// Name implements Source.
func (s *GeneratorSource) Name() string { return s.Label }

// LabelSlots implements Source.
func (s *GeneratorSource) LabelSlots() int { return s.Slots }

// BatchAt implements Source.
func (s *GeneratorSource) BatchAt(index int64) (Batch, error) {
	rng := rand.New(rand.NewPCG(s.Seed*0x9e3779b97f4a7c15+s.Split, uint64(index)))
	b := NewBatch(s.BatchSize, s.SeqLen)
	for r := 0; r < s.BatchSize; r++ {
		ids, labels := b.Row(r)
		s.Fill(rng, ids, labels)
	}
	return b, nil
}

// NewMQARSource returns the indexed MQAR source for a split (0 train, 1 eval, 2 test).
func NewMQARSource(task MQAR, batchSize int, seed, split uint64) (*GeneratorSource, error) {
	if err := task.Validate(); err != nil {
		return nil, err
	}
	return &GeneratorSource{
		Label:     fmt.Sprintf("mqar(vocab=%d, seq_len=%d, pairs=%d)", task.Vocab, task.SeqLen, task.NumPairs),
		BatchSize: batchSize, SeqLen: task.SeqLen, Seed: seed, Split: split, Slots: task.NumPairs,
		Fill: task.Row,
	}, nil
}
