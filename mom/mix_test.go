package mom_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/engramlx/engram/deltanet"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/mom"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// mixShape is the size of a Mix test: B, T, E memories, H heads, K, V widths.
type mixShape struct{ batch, time, slots, heads, dk, dv int }

// mixInputs returns q, k, v, beta, g, weight, h0 as float64 tensors: L2-normalised q and k (the
// layer's features), beta in (0, 1), g in [-1, 0), positive weights, a random initial state.
func mixInputs(seed uint64, s mixShape) []*tensors.Tensor {
	rng := lt.NewRand(seed)
	normalize := func(t *tensors.Tensor, width int) *tensors.Tensor {
		data := lt.Floats(t)
		for i := 0; i < len(data); i += width {
			var n float64
			for _, x := range data[i : i+width] {
				n += x * x
			}
			for j := i; j < i+width; j++ {
				data[j] /= math.Sqrt(n)
			}
		}
		return tensors.FromFlatDataAndDimensions(data, t.Shape().Dimensions...)
	}
	b, t, e, h := s.batch, s.time, s.slots, s.heads
	return []*tensors.Tensor{
		normalize(lt.RandNormal(rng, 1, b, t, h, s.dk), s.dk),
		normalize(lt.RandNormal(rng, 1, b, t, e, h, s.dk), s.dk),
		lt.RandNormal(rng, 1, b, t, e, h, s.dv),
		lt.RandUniform(rng, 0.05, 0.95, b, t, e, h),
		lt.RandUniform(rng, -1, -0.01, b, t, e, h),
		lt.RandUniform(rng, 0.1, 1, b, t, e),
		lt.RandNormal(rng, 0.5, b, e*h, s.dk, s.dv),
	}
}

// pick returns x[i0, i1, ...] over the leading axes, keeping the remaining ones.
func pick(x *Node, idx ...int) *Node {
	specs := make([]SliceAxisSpec, len(idx))
	for i, j := range idx {
		specs[i] = AxisElem(j)
	}
	return Reshape(Slice(x, specs...), x.Shape().Dimensions[len(idx):]...)
}

// gatheredReference runs each memory's gated delta rule (deltanet.Naive) over the subsequence of the
// tokens routed to it (mask[b][t][e]), in order, and scatters the outputs back: the semantics Mix must
// have, built without any masking. Inputs as mixInputs; outputs o [B, T, H, V] and ht [B, E*H, K, V].
func gatheredReference(s mixShape, mask [][][]bool, scale float64) lt.OpFn {
	return func(in []*Node) []*Node {
		q, k, v, beta, g, weight, h0 := in[0], in[1], in[2], in[3], in[4], in[5], in[6]
		zeros := Zeros(q.Graph(), shapes.Make(q.DType(), s.heads, s.dv))
		var outs, finals []*Node
		for b := 0; b < s.batch; b++ {
			perToken := make([]*Node, s.time)
			var memFinals []*Node
			for e := 0; e < s.slots; e++ {
				h0e := InsertAxes(Slice(pick(h0, b), AxisRange(e*s.heads, (e+1)*s.heads)), 0)
				var pos []int
				var qs, ks, vs, bs, gs []*Node
				for t := 0; t < s.time; t++ {
					if mask[b][t][e] {
						pos = append(pos, t)
						qs, ks, vs = append(qs, pick(q, b, t)), append(ks, pick(k, b, t, e)), append(vs, pick(v, b, t, e))
						bs, gs = append(bs, pick(beta, b, t, e)), append(gs, pick(g, b, t, e))
					}
				}
				if len(pos) == 0 {
					memFinals = append(memFinals, h0e) // never routed: untouched
					continue
				}
				seq := func(xs []*Node) *Node { return InsertAxes(Stack(xs, 0), 0) }
				o, ht := deltanet.Naive(seq(qs), seq(ks), seq(vs), seq(bs), seq(gs), h0e, scale, deltanet.GatedDeltaRule)
				memFinals = append(memFinals, ht)
				for i, t := range pos {
					term := Mul(pick(o, 0, i), pick(weight, b, t, e))
					if perToken[t] == nil {
						perToken[t] = term
					} else {
						perToken[t] = Add(perToken[t], term)
					}
				}
			}
			for t := range perToken {
				if perToken[t] == nil {
					perToken[t] = zeros
				}
			}
			outs = append(outs, Stack(perToken, 0))
			finals = append(finals, Concatenate(memFinals, 1))
		}
		return []*Node{Stack(outs, 0), Concatenate(finals, 0)}
	}
}

// maskTensor turns the routing pattern into the float64 [B, T, E] tensor Mix takes.
func maskTensor(mask [][][]bool) *tensors.Tensor {
	var flat []float64
	for _, bt := range mask {
		for _, te := range bt {
			for _, on := range te {
				if on {
					flat = append(flat, 1)
				} else {
					flat = append(flat, 0)
				}
			}
		}
	}
	return tensors.FromFlatDataAndDimensions(flat, len(mask), len(mask[0]), len(mask[0][0]))
}

// randomMask routes each token to a random subset of the memories; memory 0 of batch 1 gets no token at
// all and the last memory gets every token (a shared memory).
func randomMask(seed uint64, s mixShape) [][][]bool {
	rng := lt.NewRand(seed)
	mask := make([][][]bool, s.batch)
	for b := range mask {
		mask[b] = make([][]bool, s.time)
		for t := range mask[b] {
			mask[b][t] = make([]bool, s.slots)
			for e := range mask[b][t] {
				mask[b][t][e] = rng.Float64() < 0.5
			}
			mask[b][t][s.slots-1] = true
			if b == 1 {
				mask[b][t][0] = false
			}
		}
	}
	return mask
}

// TestMixEqualsGatheredSubsequences: the masked Mix (chunked and naive) equals running
// every memory's gated delta rule on its gathered subsequence and scattering the outputs back: outputs,
// final states, and the gradients of q, k, v, beta, g, the routing weights and the initial state, in
// float64, at a length that is not a multiple of the chunk.
func TestMixEqualsGatheredSubsequences(t *testing.T) {
	s := mixShape{batch: 2, time: 11, slots: 3, heads: 2, dk: 4, dv: 3}
	mask := randomMask(3, s)
	scale := 1 / math.Sqrt(float64(s.dk))
	inputs := mixInputs(5, s)
	names := []string{"q", "k", "v", "beta", "g", "weight", "h0"}
	ref := gatheredReference(s, mask, scale)
	maskT := maskTensor(mask)
	for name, run := range map[string]func(in []*Node, m *Node) (*Node, *Node){
		"chunk4": func(in []*Node, m *Node) (*Node, *Node) {
			return mom.Mix(in[0], in[1], in[2], in[3], in[4], m, in[5], in[6], scale, 4, deltanet.GatedDeltaRule)
		},
		"chunk1": func(in []*Node, m *Node) (*Node, *Node) {
			return mom.Mix(in[0], in[1], in[2], in[3], in[4], m, in[5], in[6], scale, 1, deltanet.GatedDeltaRule)
		},
		"naive": func(in []*Node, m *Node) (*Node, *Node) {
			return mom.MixNaive(in[0], in[1], in[2], in[3], in[4], m, in[5], in[6], scale, deltanet.GatedDeltaRule)
		},
	} {
		t.Run(name, func(t *testing.T) {
			fast := func(in []*Node) []*Node {
				o, ht := run(in, Const(in[0].Graph(), maskT))
				return []*Node{o, ht}
			}
			upstream := lt.RandomUpstream(7, lt.RunOp(ref, inputs))
			wantOut, wantGrad := lt.OpGradients(ref, inputs, upstream)
			gotOut, gotGrad := lt.OpGradients(fast, inputs, upstream)
			worst := 0.0
			for i, name := range []string{"o", "ht"} {
				worst = max(worst, lt.AssertClose(t, "output "+name, gotOut[i], wantOut[i], 1e-10))
			}
			for i, name := range names {
				worst = max(worst, lt.AssertClose(t, "gradient of "+name, gotGrad[i], wantGrad[i], 1e-10))
			}
			t.Logf("largest relative RMS error over o, ht and the 7 gradients: %.2g", worst)
		})
	}
}

// sparseMask routes each token to each memory with probability 1/2 (memory 0 of batch 1 gets no token at
// all), and returns the largest number of tokens any memory of any batch row received.
func sparseMask(seed uint64, s mixShape) (mask [][][]bool, most int) {
	rng := lt.NewRand(seed)
	mask = make([][][]bool, s.batch)
	for b := range mask {
		counts := make([]int, s.slots)
		mask[b] = make([][]bool, s.time)
		for t := range mask[b] {
			mask[b][t] = make([]bool, s.slots)
			for e := range mask[b][t] {
				mask[b][t][e] = rng.Float64() < 0.5 && !(b == 1 && e == 0)
				if mask[b][t][e] {
					counts[e]++
				}
			}
		}
		for _, c := range counts {
			most = max(most, c)
		}
	}
	return mask, most
}

// firstRouted keeps, for every batch row and memory, only the first capacity routed tokens: the
// routing MixCapacity acts on when it overflows.
func firstRouted(mask [][][]bool, capacity int) (kept [][][]bool, dropped int) {
	kept = make([][][]bool, len(mask))
	for b := range mask {
		counts := make([]int, len(mask[b][0]))
		kept[b] = make([][]bool, len(mask[b]))
		for t := range mask[b] {
			kept[b][t] = make([]bool, len(mask[b][t]))
			for e, on := range mask[b][t] {
				if on {
					counts[e]++
					kept[b][t][e] = counts[e] <= capacity
					if !kept[b][t][e] {
						dropped++
					}
				}
			}
		}
	}
	return kept, dropped
}

// TestMixCapacity: the gathered form (fixed-capacity buffers, chunked with chunks of 4 and 1, and naive)
// against references, in float64, with outputs, final states and the gradients of q, k, v, beta, g, the
// routing weights and the initial state:
//   - no overflow (capacity = the busiest memory's token count, and 2 more so buffers end in padding)
//     equals the masked Mix with the same mask;
//   - overflow (capacity 3 below it) equals the gathered-subsequence reference over the routing with
//     each memory's tokens after its first capacity removed: dropped tokens neither decay nor update the
//     memory and get no output from it.
func TestMixCapacity(t *testing.T) {
	s := mixShape{batch: 2, time: 11, slots: 3, heads: 2, dk: 4, dv: 3}
	mask, most := sparseMask(3, s)
	if most >= s.time || most < 4 {
		t.Fatalf("busiest memory has %d of %d tokens: pick another seed", most, s.time)
	}
	scale := 1 / math.Sqrt(float64(s.dk))
	inputs := mixInputs(5, s)
	names := []string{"q", "k", "v", "beta", "g", "weight", "h0"}
	maskT := maskTensor(mask)
	masked := func(in []*Node) []*Node {
		o, ht := mom.Mix(in[0], in[1], in[2], in[3], in[4], Const(in[0].Graph(), maskT), in[5], in[6], scale, 4, deltanet.GatedDeltaRule)
		return []*Node{o, ht}
	}
	gathered := func(capacity, chunk int) lt.OpFn {
		return func(in []*Node) []*Node {
			m := Const(in[0].Graph(), maskT)
			var o, ht *Node
			if chunk == 0 {
				o, ht = mom.MixCapacityNaive(in[0], in[1], in[2], in[3], in[4], m, in[5], in[6], scale, capacity, deltanet.GatedDeltaRule)
			} else {
				o, ht = mom.MixCapacity(in[0], in[1], in[2], in[3], in[4], m, in[5], in[6], scale, chunk, capacity, deltanet.GatedDeltaRule)
			}
			return []*Node{o, ht}
		}
	}
	overflowCap := most - 3
	kept, dropped := firstRouted(mask, overflowCap)
	if dropped == 0 {
		t.Fatal("no token dropped at the overflow capacity")
	}
	cases := []struct {
		name     string
		capacity int
		ref      lt.OpFn
	}{
		{"fit", most, masked},
		{"padded", most + 2, masked},
		{"overflow", overflowCap, gatheredReference(s, kept, scale)},
	}
	for _, c := range cases {
		for _, chunk := range []int{4, 1, 0} {
			t.Run(fmt.Sprintf("%s/cap%d/chunk%d", c.name, c.capacity, chunk), func(t *testing.T) {
				upstream := lt.RandomUpstream(7, lt.RunOp(c.ref, inputs))
				wantOut, wantGrad := lt.OpGradients(c.ref, inputs, upstream)
				gotOut, gotGrad := lt.OpGradients(gathered(c.capacity, chunk), inputs, upstream)
				worst := 0.0
				for i, name := range []string{"o", "ht"} {
					worst = max(worst, lt.AssertClose(t, "output "+name, gotOut[i], wantOut[i], 1e-10))
				}
				for i, name := range names {
					worst = max(worst, lt.AssertClose(t, "gradient of "+name, gotGrad[i], wantGrad[i], 1e-10))
				}
				t.Logf("largest relative RMS error over o, ht and the 7 gradients: %.2g", worst)
			})
		}
	}
	t.Logf("T = %d, busiest memory %d tokens; overflow capacity %d drops %d assignments", s.time, most, overflowCap, dropped)
}

// TestCapacity: the buffer length of the benchmark's sizes and the edge cases.
func TestCapacity(t *testing.T) {
	for _, c := range []struct {
		factor                                          float64
		topK, memories, time, chunk, capacity, bufChunk int
	}{
		{1.25, 2, 4, 256, 64, 168, 56}, // ceil(160) -> 3 chunks of 56
		{1.25, 2, 4, 1024, 64, 640, 64},
		{1.25, 2, 4, 1, 1, 1, 1},    // the decode step: masked
		{0, 2, 4, 256, 64, 256, 64}, // factor 0: no buffers
		{1.25, 2, 3, 19, 4, 16, 4},  // ceil(15.83)
		{1.25, 2, 3, 19, 8, 16, 8},  // 2 chunks of 8
		{4, 2, 4, 100, 64, 100, 56}, // more than T: T
		{1.25, 1, 8, 10, 64, 2, 2},  // ceil(1.5625)
		{0.01, 1, 8, 10, 64, 1, 1},  // at least 1
	} {
		got := mom.Capacity(c.factor, c.topK, c.memories, c.time, c.chunk)
		chunk := mom.BufferChunk(got, c.chunk)
		if got != c.capacity || chunk != c.bufChunk {
			t.Errorf("Capacity(%g, k %d, M %d, T %d, chunk %d) = %d in chunks of %d, want %d in chunks of %d",
				c.factor, c.topK, c.memories, c.time, c.chunk, got, chunk, c.capacity, c.bufChunk)
		}
	}
}
