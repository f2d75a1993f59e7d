package gla_test

import (
	"fmt"
	"testing"

	"github.com/engramlx/engram/gla"
	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// TestDocumentsChunkedEqualsNaive: with document starts (t = 0, mid-chunk, on a chunk boundary, two in
// a row; a row whose first start is at t = 3, so h0 counts before it) the chunked form equals the
// per-token recurrence with resets: outputs, final state and the gradients of q, k, v, gk and h0, at
// chunk lengths 1, 16 and 32 (two sub-chunks) and T = 75.
func TestDocumentsChunkedEqualsNaive(t *testing.T) {
	const batch, time, heads, dk, dv = 2, 75, 2, 4, 3
	starts := make([][]float64, batch)
	for r, at := range [][]int{{0, 5, 22, 40, 64, 70}, {3, 4, 16, 17, 63}} {
		starts[r] = make([]float64, time)
		for _, t := range at {
			starts[r][t] = 1
		}
	}
	rng := lt.NewRand(7)
	inputs := []*tensors.Tensor{
		lt.RandNormal(rng, 0.5, batch, time, heads, dk), lt.RandNormal(rng, 0.5, batch, time, heads, dk),
		lt.RandNormal(rng, 1, batch, time, heads, dv), lt.RandUniform(rng, -0.5, 0, batch, time, heads, dk),
		lt.RandNormal(rng, 1, batch, heads, dk, dv),
	}
	naive := func(in []*Node) []*Node {
		o, ht := gla.NaiveDocuments(in[0], in[1], in[2], in[3], in[4], Const(in[0].Graph(), starts), 0.5)
		return []*Node{o, ht}
	}
	for _, chunk := range []int{1, 16, 32} {
		t.Run(fmt.Sprintf("C%d", chunk), func(t *testing.T) {
			chunked := func(in []*Node) []*Node {
				o, ht := gla.ChunkedDocuments(in[0], in[1], in[2], in[3], in[4], Const(in[0].Graph(), starts), 0.5, chunk)
				return []*Node{o, ht}
			}
			lt.FastVsReference(t, chunked, naive, inputs, []string{"o", "ht"}, []string{"q", "k", "v", "gk", "h0"}, 1e-10)
		})
	}
}
