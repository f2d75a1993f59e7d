package layers_test

import (
	"fmt"
	"testing"

	"github.com/engramlx/engram/layers"
	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

func TestChunkUnchunkRoundTrip(t *testing.T) {
	x := lt.RandNormal(lt.NewRand(1), 1, 2, 7, 3)
	out := lt.RunOp(func(in []*Node) []*Node {
		chunked := layers.Chunk(in[0], 3) // 7 -> 3 chunks of 3, two zeros of padding
		if got := chunked.Shape().Dimensions; got[1] != 3 || got[2] != 3 {
			t.Fatalf("Chunk shape %v, want [2 3 3 3]", got)
		}
		return []*Node{layers.Unchunk(chunked, 7), ReduceAllSum(Abs(SliceAxis(Reshape(chunked, 2, 9, 3), 1, AxisRange(7, 9))))}
	}, []*tensors.Tensor{x})
	lt.AssertClose(t, "unchunk(chunk(x))", out[0], x, 0)
	if pad := lt.Floats(out[1])[0]; pad != 0 {
		t.Errorf("padding sums to %v, want 0", pad)
	}
}

func TestCausalShiftAndPrefixSums(t *testing.T) {
	x := tensors.FromValue([][]float64{{1, 2, 3, 4}})
	out := lt.RunOp(func(in []*Node) []*Node {
		return []*Node{layers.CausalShift(in[0], 1), layers.PrefixSum(in[0], 1), layers.ExclusivePrefixSum(in[0], 1)}
	}, []*tensors.Tensor{x})
	want := [][]float64{{0, 1, 2, 3}, {1, 3, 6, 10}, {0, 1, 3, 6}}
	for i, w := range want {
		lt.AssertClose(t, []string{"shift", "prefix sum", "exclusive prefix sum"}[i], out[i], tensors.FromValue([][]float64{w}), 0)
	}
	// Gradients of the shift and the prefix sums by finite differences.
	y := lt.RandNormal(lt.NewRand(2), 1, 2, 5, 3)
	lt.GradCheck(t, func(in []*Node) []*Node {
		return []*Node{layers.CausalShift(in[0], 2), layers.PrefixSum(Square(in[0]), 1), layers.ExclusivePrefixSum(in[0], 1)}
	}, []*tensors.Tensor{y}, nil, 8, 1e-7)
}

// One ShortConv over 9 steps equals 4 + 5 steps with the cache carried; the gradient of the op (input,
// weight, cache) agrees with finite differences; the first output only sees the cache and x_0.
func TestShortConvStreamingAndGradient(t *testing.T) {
	rng := lt.NewRand(3)
	x := lt.RandNormal(rng, 1, 2, 9, 4)
	w := lt.RandNormal(rng, 1, 3, 4)
	conv := func(in []*Node) []*Node {
		y, cache := layers.ShortConvWithWeight(in[0], in[1], nil, 2, in[0].Shape().Dimensions[1], 4)
		return []*Node{y, cache}
	}
	full := lt.RunOp(conv, []*tensors.Tensor{x, w})
	first := lt.RunOp(conv, []*tensors.Tensor{lt.SliceTime(x, 0, 4), w})
	second := lt.RunOp(func(in []*Node) []*Node {
		y, cache := layers.ShortConvWithWeight(in[0], in[1], in[2], 2, 5, 4)
		return []*Node{y, cache}
	}, []*tensors.Tensor{lt.SliceTime(x, 4, 9), w, first[1]})
	lt.AssertClose(t, "chained short conv", lt.ConcatTime(first[0], second[0]), full[0], 1e-14)
	lt.AssertClose(t, "chained cache", second[1], full[1], 0)
	// y_0 = w[2] * x_0 with a zero cache.
	xs, ws, ys := lt.Floats(x), lt.Floats(w), lt.Floats(full[0])
	for c := 0; c < 4; c++ {
		if want := ws[2*4+c] * xs[c]; ys[c] != want {
			t.Errorf("y_0[%d] = %v, want w[2]*x_0 = %v", c, ys[c], want)
		}
	}
	cache := lt.RandNormal(rng, 1, 2, 2, 4)
	lt.GradCheck(t, func(in []*Node) []*Node {
		y, next := layers.ShortConvWithWeight(in[0], in[1], in[2], 2, 9, 4)
		return []*Node{y, next}
	}, []*tensors.Tensor{x, w, cache}, nil, 6, 1e-7)
}

// Gradients flow through Chunk/Unchunk (pad + reshape + slice) and the short conv's weight.
func TestChunkAndConvGradients(t *testing.T) {
	x := lt.RandNormal(lt.NewRand(4), 1, 2, 7, 3)
	lt.GradCheck(t, func(in []*Node) []*Node {
		chunked := layers.Chunk(Square(in[0]), 3)
		return []*Node{layers.Unchunk(MulScalar(chunked, 2), 7)}
	}, []*tensors.Tensor{x}, nil, 8, 1e-7)
}

// TestShortConvEqualsSlices: the short convolution (taps gathered as whole rows, written-out gradient)
// computes what its definition written with SliceAxis computes, outputs, next cache and gradients (all
// three inputs, through y and the next cache), with and without an incoming cache and document starts,
// and for a row shorter than the cache.
func TestShortConvEqualsSlices(t *testing.T) {
	const batch, channels, kernel = 2, 3, 4
	for _, time := range []int{7, 2} {
		rng := lt.NewRand(11)
		x := lt.RandNormal(rng, 1, batch, time, channels)
		w := lt.RandNormal(rng, 1, kernel, channels)
		cache := lt.RandNormal(rng, 1, batch, kernel-1, channels)
		starts := make([][]float64, batch) // row 0: one document; row 1: starts at 1 and 4
		for b := range starts {
			starts[b] = make([]float64, time)
		}
		for _, s := range []int{1, 4} {
			if s < time {
				starts[1][s] = 1
			}
		}
		for _, withCache := range []bool{false, true} {
			for _, withDocs := range []bool{false, true} {
				inputs := []*tensors.Tensor{x, w, cache}
				cacheOf := func(in []*Node) *Node {
					if withCache {
						return in[2]
					}
					return Zeros(in[0].Graph(), in[2].Shape())
				}
				docsOf := func(g *Graph) *Node {
					if !withDocs {
						return nil
					}
					return Const(g, starts)
				}
				ref := func(in []*Node) []*Node {
					docStart := docsOf(in[0].Graph())
					padded := Concatenate([]*Node{cacheOf(in), in[0]}, 1)
					var y *Node
					for j := range kernel {
						tap := Mul(SliceAxis(padded, 1, AxisRange(j, j+time)), Reshape(SliceAxis(in[1], 0, AxisElem(j)), 1, 1, channels))
						if docStart != nil {
							tap = Mul(tap, layers.ConvTapKeep(docStart, kernel)[kernel-1-j])
						}
						if y == nil {
							y = tap
						} else {
							y = Add(y, tap)
						}
					}
					next := SliceAxis(padded, 1, AxisRange(time, time+kernel-1))
					if docStart != nil {
						next = Mul(next, layers.ConvCacheKeep(docStart, kernel))
					}
					return []*Node{y, next}
				}
				got := func(in []*Node) []*Node {
					y, next := layers.ShortConvWithWeightDocuments(in[0], in[1], cacheOf(in), docsOf(in[0].Graph()))
					return []*Node{y, next}
				}
				upstream := lt.RandomUpstream(3, lt.RunOp(ref, inputs))
				wantOut, wantGrad := lt.OpGradients(ref, inputs, upstream)
				gotOut, gotGrad := lt.OpGradients(got, inputs, upstream)
				for i := range wantOut {
					lt.AssertClose(t, fmt.Sprintf("T=%d cache=%v docs=%v output %d", time, withCache, withDocs, i), gotOut[i], wantOut[i], 1e-14)
				}
				for i := range wantGrad {
					lt.AssertClose(t, fmt.Sprintf("T=%d cache=%v docs=%v gradient %d", time, withCache, withDocs, i), gotGrad[i], wantGrad[i], 1e-14)
				}
			}
		}
	}
}

// TestSplitSizes: the pieces equal SliceAxis's, and x's gradient (one Concatenate of the pieces'
// adjoints, zeros for a piece the loss does not read) equals autodiff's through the slices, in float64.
func TestSplitSizes(t *testing.T) {
	x := lt.RandNormal(lt.NewRand(3), 1, 2, 5, 9)
	// Pieces 0 and 2 feed the outputs; piece 1 is not read (its adjoint is zeros).
	use := func(pieces []*Node) []*Node {
		return []*Node{Mul(pieces[0], pieces[0]), MulScalar(pieces[2], 3)}
	}
	fast := func(in []*Node) []*Node { return use(layers.SplitSizes(in[0], -1, 2, 3, 4)) }
	ref := func(in []*Node) []*Node {
		return use([]*Node{SliceAxis(in[0], 2, AxisRange(0, 2)), SliceAxis(in[0], 2, AxisRange(2, 5)), SliceAxis(in[0], 2, AxisRange(5, 9))})
	}
	lt.FastVsReference(t, fast, ref, []*tensors.Tensor{x}, []string{"piece 0 squared", "3 piece 2"}, []string{"x"}, 1e-15)
}
