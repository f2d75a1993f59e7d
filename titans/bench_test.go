package titans

import (
	"fmt"
	"testing"

	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// BenchmarkLMM measures the LMM layer (2-layer memory, chunk 64, B = 8, H = 4, d_model = H * Dh) in
// float32 on the test backend: forward, and forward + backward (gradients of every variable and of x).
// Graphs are compiled before the timer starts. Reported as tokens/s (batch * time per call).
//
//	GOEXPERIMENT=simd go test ./titans/ -run '^$' -bench LMM -benchtime 3x
func BenchmarkLMM(b *testing.B) {
	sizes := []struct{ time, headDim int }{{256, 32}, {1024, 32}, {2048, 32}, {256, 64}, {1024, 64}}
	for _, backward := range []bool{false, true} {
		for _, s := range sizes {
			name := "fwd"
			if backward {
				name = "fwdbwd"
			}
			b.Run(fmt.Sprintf("%s/T=%d/Dh=%d", name, s.time, s.headDim), func(b *testing.B) {
				benchLMM(b, ModePaper, s.time, s.headDim, backward)
			})
		}
	}
}

// BenchmarkLMMTP is BenchmarkLMM in the tp mode (TTT batches of 256 tokens, chunks of 64), at T = 256
// and 2048:
//
//	GOEXPERIMENT=simd go test ./titans/ -run '^$' -bench LMMTP -benchtime 3x
func BenchmarkLMMTP(b *testing.B) {
	for _, backward := range []bool{false, true} {
		for _, time := range []int{256, 2048} {
			name := "fwd"
			if backward {
				name = "fwdbwd"
			}
			b.Run(fmt.Sprintf("%s/T=%d/Dh=32", name, time), func(b *testing.B) {
				benchLMM(b, ModeTP, time, 32, backward)
			})
		}
	}
}

func benchLMM(b *testing.B, mode string, time, headDim int, backward bool) {
	const batch, heads = 8, 4
	cfg := DefaultConfig()
	cfg.Mode, cfg.TTTBatchSize = mode, 256
	cfg.Heads, cfg.HeadDim, cfg.ChunkSize = heads, headDim, 64
	dModel := heads * headDim
	m, err := NewLMM(cfg, dModel)
	if err != nil {
		b.Fatal(err)
	}
	store := model.NewStore()
	exec := model.MustNewExec(lt.Backend(), store, func(scope *model.Scope, x *Node) []*Node {
		y, _ := m.Apply(scope.In("lmm"), x, nil)
		if !backward {
			return []*Node{y}
		}
		loss := ReduceAllMean(Square(y))
		grads := scope.BuildTrainableVariablesGradientsGraph(loss)
		return append([]*Node{loss, Gradient(loss, x)[0]}, grads...)
	})
	defer exec.Finalize()
	data := make([]float32, batch*time*dModel)
	rng := lt.NewRand(1)
	for i := range data {
		data[i] = float32(rng.NormFloat64())
	}
	x := tensors.FromFlatDataAndDimensions(data, batch, time, dModel)
	for _, o := range exec.MustCall(x) { // compile and warm up outside the timer
		o.FinalizeAll()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, o := range exec.MustCall(x) {
			o.FinalizeAll()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(batch*time*b.N)/b.Elapsed().Seconds(), "tok/s")
}
