package mamba2_test

import (
	"fmt"
	"testing"

	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/mamba2"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

var (
	opOutNames = []string{"y", "ht"}
	opInNames  = []string{"x", "dt", "a", "b", "c", "h0"}
)

// opShape is the size of one op test case.
type opShape struct{ batch, time, heads, groups, p, n int }

// opInputs returns x, dt in (0.001, 0.5) (softplus outputs of the layer's range), a = -A with A in
// [1, 16) (the layer's init range), b, c and h0, all float64: decays exp(dt A) from 0.0003 to 0.999.
func opInputs(seed uint64, s opShape) []*tensors.Tensor {
	rng := lt.NewRand(seed)
	return []*tensors.Tensor{
		lt.RandNormal(rng, 1, s.batch, s.time, s.heads, s.p),
		lt.RandUniform(rng, 0.001, 0.5, s.batch, s.time, s.heads),
		lt.RandUniform(rng, -16, -1, s.heads),
		lt.RandNormal(rng, 1, s.batch, s.time, s.groups, s.n),
		lt.RandNormal(rng, 1, s.batch, s.time, s.groups, s.n),
		lt.RandNormal(rng, 1, s.batch, s.heads, s.p, s.n),
	}
}

func naiveFn(in []*Node) []*Node {
	y, ht := mamba2.Naive(in[0], in[1], in[2], in[3], in[4], in[5])
	return []*Node{y, ht}
}

func chunkFn(chunk int) lt.OpFn {
	return func(in []*Node) []*Node {
		y, ht := mamba2.Chunked(in[0], in[1], in[2], in[3], in[4], in[5], chunk)
		return []*Node{y, ht}
	}
}

// TestChunkedEqualsNaive: the SSD form through deltanet's gated linear attention against the per-token
// recurrence, in float64: y, the final state and the gradients of x, dt, a, b, c and h0 under random
// upstream gradients, at lengths that are not multiples of the chunk, chunk 1 and a single token, with
// one group and with groups shared by 2 heads.
func TestChunkedEqualsNaive(t *testing.T) {
	for _, tc := range []struct{ time, chunk, groups int }{
		{19, 8, 1}, {19, 8, 2}, {19, 1, 2}, {1, 8, 1}, {16, 16, 4},
	} {
		t.Run(fmt.Sprintf("T%d_C%d_G%d", tc.time, tc.chunk, tc.groups), func(t *testing.T) {
			s := opShape{batch: 2, time: tc.time, heads: 4, groups: tc.groups, p: 3, n: 5}
			lt.FastVsReference(t, chunkFn(tc.chunk), naiveFn, opInputs(1, s), opOutNames, opInNames, 1e-10)
		})
	}
}

// TestNaiveGradCheck: the naive op's gradients against central finite differences, every input.
func TestNaiveGradCheck(t *testing.T) {
	s := opShape{batch: 1, time: 6, heads: 2, groups: 1, p: 2, n: 3}
	lt.GradCheck(t, naiveFn, opInputs(2, s), []int{0, 1, 2, 3, 4, 5}, 6, 1e-6)
}

// TestNaiveByHand checks the recurrence on one head, one step, from a given state, against numbers
// computed by hand: S' = exp(dt A) S + dt x b^T, y = S' c.
func TestNaiveByHand(t *testing.T) {
	x := tensors.FromFlatDataAndDimensions([]float64{1, 2}, 1, 1, 1, 2)
	dt := tensors.FromFlatDataAndDimensions([]float64{0.5}, 1, 1, 1)
	a := tensors.FromFlatDataAndDimensions([]float64{-2}, 1)
	b := tensors.FromFlatDataAndDimensions([]float64{1, -1}, 1, 1, 1, 2)
	c := tensors.FromFlatDataAndDimensions([]float64{2, 3}, 1, 1, 1, 2)
	h0 := tensors.FromFlatDataAndDimensions([]float64{1, 0, 0, 1}, 1, 1, 2, 2)
	out := lt.RunOp(naiveFn, []*tensors.Tensor{x, dt, a, b, c, h0})
	e := 0.36787944117144233 // exp(0.5 * -2)
	// S' = e I + 0.5 [1 2]^T [1 -1] = [[e+0.5, -0.5], [1, e-1]]
	wantS := []float64{e + 0.5, -0.5, 1, e - 1}
	wantY := []float64{2*(e+0.5) - 1.5, 2 + 3*(e-1)}
	lt.AssertClose(t, "y", out[0], tensors.FromFlatDataAndDimensions(wantY, 1, 1, 1, 2), 1e-13)
	lt.AssertClose(t, "ht", out[1], tensors.FromFlatDataAndDimensions(wantS, 1, 1, 2, 2), 1e-13)
}
