package train

import (
	"testing"

	"github.com/engramlx/engram/configs"
)

// BenchmarkQuickstartSteps measures training steps (forward, backward, AdamW) of the quickstart
// config, reported in tokens/s.
func BenchmarkQuickstartSteps(b *testing.B) {
	exp, err := configs.Load("quickstart", nil)
	if err != nil {
		b.Fatal(err)
	}
	exp.RunsDir = b.TempDir()
	r, err := NewRunner(exp, quiet())
	if err != nil {
		b.Fatal(err)
	}
	r.graphs()
	src, _, err := Sources(exp)
	if err != nil {
		b.Fatal(err)
	}
	ds := &indexedDataset{src: src, vocab: exp.Model.Vocab, slots: src.LabelSlots(), limit: -1}
	count := 0
	for batch, err := range ds.Iter() {
		if err != nil {
			b.Fatal(err)
		}
		if count == 1 {
			b.ResetTimer() // the first step compiled the graph
		}
		if _, err := r.trainer.TrainStep(batch); err != nil {
			b.Fatal(err)
		}
		count++
		if count > b.N {
			break
		}
	}
	tokens := float64(b.N * exp.Train.BatchSize * exp.Data.MQAR.SeqLen)
	b.ReportMetric(tokens/b.Elapsed().Seconds(), "tok/s")
}
