package layers_test

import (
	"fmt"
	"testing"

	"github.com/engramlx/engram/layers"
	lt "github.com/engramlx/engram/layers/layertest"
)

// Benchmarks: tokens/s of the attention Mixer (projections, RoPE, attention, output projection), forward
// and forward+backward, float32 on the configured backend, at B = 8, H = 4, T in {256, 1024}, head dim d
// in {32, 64} (d_model = H*d). "attention" is full causal softmax attention (max_context = T, so the
// returned KV cache is exactly the tokens seen); "swa" is sliding-window attention with a 128-token
// window. Forward returns y and the carried state; forward+backward returns the gradients of sum(y) with
// respect to x and every variable. Graphs compile once per shape and run once before the timer starts.
//
//	go test ./layers -run '^$' -bench Attention -benchtime 5x

const (
	benchBatch  = 8
	benchHeads  = 4
	benchWindow = 128
)

// benchRunner, cachedRunner and finalizeAll are layertest's shared benchmark scaffolding.
type benchRunner = lt.Runner

var (
	cachedRunner = lt.CachedRunner
	finalizeAll  = lt.FinalizeAll
)

// attentionRunner compiles the attention Mixer (window 0: full causal attention) at T and head dim d.
func attentionRunner(window int, backward bool, steps, d int) benchRunner {
	cfg := layers.AttentionConfig{Heads: benchHeads, Window: window, MaxContext: steps, RoPEBase: 10000}
	dModel := benchHeads * d
	layer, err := layers.NewAttention(cfg, dModel)
	if err != nil {
		panic(err)
	}
	return lt.MixerRunner(layer, benchBatch, steps, dModel, backward)
}

// BenchmarkAttention: causal softmax attention and sliding-window attention (window 128).
func BenchmarkAttention(b *testing.B) {
	for _, kind := range []string{"attention", "swa"} {
		window := 0
		if kind == "swa" {
			window = benchWindow
		}
		for _, pass := range []string{"fwd", "fwdbwd"} {
			for _, d := range []int{32, 64} {
				for _, steps := range []int{256, 1024} {
					name := fmt.Sprintf("%s/%s/T%d_d%d", kind, pass, steps, d)
					b.Run(name, func(b *testing.B) {
						run := cachedRunner(name, func() benchRunner { return attentionRunner(window, pass == "fwdbwd", steps, d) })
						lt.TimeRuns(b, run, benchBatch*steps)
					})
				}
			}
		}
	}
}
