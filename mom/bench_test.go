package mom_test

import (
	"testing"
	"time"

	"github.com/engramlx/engram/deltanet"
	"github.com/engramlx/engram/layers"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/mom"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// Benchmark sizes: deltanet/bench_test.go's layer benchmark at its smaller point (B = 8, H = 4 heads
// of d_k = d_v = 32, d_model = 128, chunks of 64, T = 256), float32 on the configured backend.
const (
	benchBatch = 8
	benchHeads = 4
	benchDim   = 32
	benchTime  = 256
	benchChunk = 64
)

// layerRunner compiles a mixer over x [B, T, H*d] and runs it once (so compilation is not timed); with
// backward the graph also takes the gradients of sum(y) with respect to x and every variable.
func layerRunner(mixer layers.Mixer, backward bool) func() {
	store := model.NewStore()
	store.SetParam(model.ParamInitialSeed, int64(1))
	exec := model.MustNewExec(lt.Backend(), store, func(scope *model.Scope, x *Node) []*Node {
		y, state := mixer.Apply(scope.In("mixer"), x, nil)
		if !backward {
			return append([]*Node{y}, state...)
		}
		wrt := []*Node{x}
		for v := range store.IterVariables() {
			if v.Trainable && v.InUseByGraph(x.Graph()) {
				wrt = append(wrt, v.NodeValue(x.Graph()))
			}
		}
		return Gradient(ReduceAllSum(y), wrt...)
	})
	x := lt.RandNormal(lt.NewRand(2), 1, benchBatch, benchTime, benchHeads*benchDim)
	x32 := tensors.FromFlatDataAndDimensions(toFloat32(lt.Floats(x)), benchBatch, benchTime, benchHeads*benchDim)
	run := func() {
		for _, t := range exec.MustCall(x32) {
			t.FinalizeAll()
		}
	}
	run()
	return run
}

func toFloat32(xs []float64) []float32 {
	out := make([]float32, len(xs))
	for i, x := range xs {
		out[i] = float32(x)
	}
	return out
}

// BenchmarkMoM (issue 5, item 5): tokens/s of the MoM layer (paper defaults: M = 4, top-2, shared
// memory, so 5 memories of H heads each) next to the Gated DeltaNet layer of the same head size,
// forward and forward+backward. Both run in the same loop, alternating, so the machine's load hits
// them alike; "mom/gdn" is MoM's time over Gated DeltaNet's.
func BenchmarkMoM(b *testing.B) {
	dn := deltanet.DefaultConfig()
	dn.Heads, dn.HeadDimK, dn.ExpandV, dn.ChunkSize = benchHeads, benchDim, 1, benchChunk
	gdn, err := deltanet.New(dn, benchHeads*benchDim)
	if err != nil {
		b.Fatal(err)
	}
	cfg := mom.DefaultConfig()
	cfg.Memory = dn
	moe, err := mom.New(cfg, benchHeads*benchDim)
	if err != nil {
		b.Fatal(err)
	}
	for _, pass := range []string{"fwd", "fwdbwd"} {
		b.Run(pass, func(b *testing.B) {
			runGDN, runMoM := layerRunner(gdn, pass == "fwdbwd"), layerRunner(moe, pass == "fwdbwd")
			b.ResetTimer()
			var tGDN, tMoM time.Duration
			for i := 0; i < b.N; i++ {
				start := time.Now()
				runGDN()
				tGDN += time.Since(start)
				start = time.Now()
				runMoM()
				tMoM += time.Since(start)
			}
			tokens := float64(benchBatch * benchTime * b.N)
			b.ReportMetric(tokens/tMoM.Seconds(), "mom_tok/s")
			b.ReportMetric(tokens/tGDN.Seconds(), "gdn_tok/s")
			b.ReportMetric(float64(tMoM)/float64(tGDN), "mom/gdn")
		})
	}
}
