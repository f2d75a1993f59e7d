package gla_test

import (
	"testing"

	"github.com/engramlx/engram/gla"
	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

var (
	opInNames  = []string{"q", "k", "v", "gk", "h0"}
	opOutNames = []string{"o", "ht"}
)

func naiveFn(scale float64) lt.OpFn {
	return func(in []*Node) []*Node {
		o, ht := gla.Naive(in[0], in[1], in[2], in[3], in[4], scale)
		return []*Node{o, ht}
	}
}

func chunkFn(scale float64, chunk int) lt.OpFn {
	return func(in []*Node) []*Node {
		o, ht := gla.Chunked(in[0], in[1], in[2], in[3], in[4], scale, chunk)
		return []*Node{o, ht}
	}
}

// opInputs draws q, k, v, h0 ~ N(0, 1) and gk = log-decays with per-step decay in
// [exp(gkLow), exp(gkHigh)] per channel.
func opInputs(seed uint64, b, t, h, k, v int, gkLow, gkHigh float64) []*tensors.Tensor {
	rng := lt.NewRand(seed)
	return []*tensors.Tensor{
		lt.RandNormal(rng, 1, b, t, h, k), lt.RandNormal(rng, 1, b, t, h, k), lt.RandNormal(rng, 1, b, t, h, v),
		lt.RandUniform(rng, gkLow, gkHigh, b, t, h, k), lt.RandNormal(rng, 1, b, h, k, v),
	}
}

// TestChunkedEqualsNaive: outputs, final state and the gradients of every input (initial state included)
// agree in float64, at lengths that are not multiples of the chunk, with chunks below, at and above the
// sub-chunk, and with decays from weak to strong (per-step log-decay down to -6: exp(-G) over a chunk of
// 64 would be e^384).
func TestChunkedEqualsNaive(t *testing.T) {
	cases := []struct {
		name        string
		time, chunk int
		gkLow, gkHi float64
	}{
		{"T75_C64_weak", 75, 64, -0.1, 0},
		{"T75_C64_strong", 75, 64, -6, 0},
		{"T75_C32_strong", 75, 32, -6, -0.5},
		{"T40_C16", 40, 16, -1, 0},
		{"T23_C5", 23, 5, -1, 0},
		{"T9_C1", 9, 1, -1, 0},
		{"T1_C64", 1, 64, -1, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := opInputs(1, 2, c.time, 2, 8, 6, c.gkLow, c.gkHi)
			lt.FastVsReference(t, chunkFn(0.3, c.chunk), naiveFn(0.3), in, opOutNames, opInNames, 1e-10)
		})
	}
}

// TestNaiveGradCheck: the naive op's gradients against central finite differences.
func TestNaiveGradCheck(t *testing.T) {
	lt.GradCheck(t, naiveFn(0.3), opInputs(2, 1, 7, 2, 4, 3, -1, 0), nil, 6, 1e-6)
}

// TestChunkedGradCheck: the chunked op's gradients against finite differences (two sub-chunks).
func TestChunkedGradCheck(t *testing.T) {
	lt.GradCheck(t, chunkFn(0.3, 32), opInputs(3, 1, 37, 1, 4, 3, -2, 0), nil, 6, 1e-6)
}
