package deltanet_test

import (
	"fmt"
	"testing"

	"github.com/engramlx/engram/deltanet"
	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// docStarts returns a [batch, time] float64 mask with 1 at the given positions of each row.
func docStarts(time int, rows ...[]int) [][]float64 {
	mask := make([][]float64, len(rows))
	for r, starts := range rows {
		mask[r] = make([]float64, time)
		for _, t := range starts {
			mask[r][t] = 1
		}
	}
	return mask
}

func naiveDocFn(scale float64, opts deltanet.Options, starts [][]float64) lt.OpFn {
	return func(in []*Node) []*Node {
		o, ht := deltanet.NaiveDocuments(in[0], in[1], in[2], in[3], in[4], in[5], Const(in[0].Graph(), starts), scale, opts)
		return []*Node{o, ht}
	}
}

func chunkDocFn(scale float64, chunk int, opts deltanet.Options, starts [][]float64) lt.OpFn {
	return func(in []*Node) []*Node {
		o, ht := deltanet.ChunkedDocuments(in[0], in[1], in[2], in[3], in[4], in[5], Const(in[0].Graph(), starts), scale, chunk, opts)
		return []*Node{o, ht}
	}
}

// TestDocumentsChunkedEqualsNaive: with document starts (at t = 0, mid-chunk, on a chunk boundary, two
// in a row, and a row with none before t = 3 so h0 still counts there) the chunked form equals the
// per-token recurrence with resets: outputs, final state and the gradients of q, k, v, beta, g and h0,
// for every member of the family and chunk lengths 1, 16 and 64 at T = 75.
func TestDocumentsChunkedEqualsNaive(t *testing.T) {
	shape := opShape{batch: 2, time: 75, heads: 2, dk: 4, dv: 3}
	starts := docStarts(shape.time, []int{0, 5, 22, 40, 64, 70}, []int{3, 4, 16, 17, 63})
	inputs := opInputs(31, shape, 0, 1, -0.5, 0)
	for name, opts := range map[string]deltanet.Options{"gated_delta": deltanet.GatedDeltaRule, "delta": deltanet.DeltaRule,
		"gated_linear": deltanet.GatedLinearAttn, "linear": deltanet.LinearAttention} {
		ref := naiveDocFn(0.5, opts, starts)
		upstream := lt.RandomUpstream(7, lt.RunOp(ref, inputs))
		wantOut, wantGrad := lt.OpGradients(ref, inputs, upstream)
		for _, chunk := range []int{1, 16, 64} {
			t.Run(fmt.Sprintf("%s_C%d", name, chunk), func(t *testing.T) {
				worst := compareOp(t, chunkDocFn(0.5, chunk, opts, starts), inputs, upstream, wantOut, wantGrad, 1e-10)
				t.Logf("%s C=%d: worst relative RMS over o, ht and 6 gradients = %.2g", name, chunk, worst)
			})
		}
	}
}

// TestDocumentsPackedEqualsSeparate: a row packing documents of lengths 5, 17 and 42 computes, with the
// resets, what each document computes alone from the zero state (Naive, no resets): outputs, and the
// final state of the packed prefix ending at each document's end. Chunked at C = 16, so documents start
// mid-chunk and the last one spans three chunks.
func TestDocumentsPackedEqualsSeparate(t *testing.T) {
	lengths := []int{5, 17, 42}
	shape := opShape{batch: 1, time: 64, heads: 2, dk: 4, dv: 3}
	starts := docStarts(shape.time, []int{0, 5, 22})
	inputs := opInputs(41, shape, 0, 1, -0.5, 0) // h0 is random: the start at t = 0 must drop it
	for name, fn := range map[string]func(end int) lt.OpFn{
		"naive":   func(end int) lt.OpFn { return naiveDocFn(0.5, deltanet.GatedDeltaRule, prefixRows(starts, end)) },
		"chunked": func(end int) lt.OpFn { return chunkDocFn(0.5, 16, deltanet.GatedDeltaRule, prefixRows(starts, end)) },
	} {
		from := 0
		for i, n := range lengths {
			to := from + n
			packed := lt.RunOp(fn(to), timePrefix(inputs, 0, to))
			alone := lt.RunOp(naiveFn(0.5, deltanet.GatedDeltaRule), zeroState(timePrefix(inputs, from, to)))
			lt.AssertClose(t, fmt.Sprintf("%s document %d output", name, i), lt.SliceTime(packed[0], from, to), alone[0], 1e-12)
			lt.AssertClose(t, fmt.Sprintf("%s document %d final state", name, i), packed[1], alone[1], 1e-12)
			from = to
		}
	}
}

// TestDocumentsNaiveGradCheck holds the gradients of the recurrence with resets to finite differences.
func TestDocumentsNaiveGradCheck(t *testing.T) {
	shape := opShape{batch: 1, time: 7, heads: 2, dk: 3, dv: 2}
	inputs := opInputs(3, shape, 0, 2, -1, 0)
	lt.GradCheck(t, naiveDocFn(0.6, deltanet.GatedDeltaRule, docStarts(7, []int{2, 5})), inputs, nil, 6, 1e-7)
}

// TestDocumentsFloat32: in float32 with strong decay (g down to -8) and starts, the chunked form stays as
// close to the float64 recurrence as it is without starts (the masks are exact; nothing like a -1e4
// log-decay enters the cumulative sums).
func TestDocumentsFloat32(t *testing.T) {
	shape := opShape{batch: 1, time: 128, heads: 2, dk: 8, dv: 8}
	starts := docStarts(shape.time, []int{0, 9, 50, 64, 100})
	inputs := opInputs(51, shape, 0, 1, -8, 0)
	want := lt.RunOp(naiveDocFn(0.35, deltanet.GatedDeltaRule, starts), inputs)
	in32 := make([]*tensors.Tensor, len(inputs))
	for i, x := range inputs {
		in32[i] = as32(x)
	}
	got := lt.RunOp(func(in []*Node) []*Node {
		o, ht := deltanet.ChunkedDocuments(in[0], in[1], in[2], in[3], in[4], in[5],
			ConvertDType(Const(in[0].Graph(), starts), in[0].DType()), 0.35, 64, deltanet.GatedDeltaRule)
		return []*Node{ConvertDType(o, want[0].DType()), ConvertDType(ht, want[1].DType())}
	}, in32)
	lt.AssertClose(t, "float32 o", got[0], want[0], 1e-5)
	lt.AssertClose(t, "float32 ht", got[1], want[1], 1e-5)
}

// prefixRows cuts every row of a mask to its first n positions.
func prefixRows(mask [][]float64, n int) [][]float64 {
	out := make([][]float64, len(mask))
	for r, row := range mask {
		out[r] = row[:n]
	}
	return out
}

// timePrefix cuts the op inputs q, k, v, beta, g to time [from, to) and keeps h0.
func timePrefix(inputs []*tensors.Tensor, from, to int) []*tensors.Tensor {
	out := make([]*tensors.Tensor, len(inputs))
	for i, x := range inputs[:5] {
		out[i] = lt.SliceTime(x, from, to)
	}
	out[5] = inputs[5]
	return out
}

// zeroState replaces h0 with zeros.
func zeroState(inputs []*tensors.Tensor) []*tensors.Tensor {
	out := append([]*tensors.Tensor{}, inputs...)
	out[5] = tensors.FromFlatDataAndDimensions(make([]float64, inputs[5].Shape().Size()), inputs[5].Shape().Dimensions...)
	return out
}
