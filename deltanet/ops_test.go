package deltanet_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/engramlx/engram/deltanet"
	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

var (
	opOutNames = []string{"o", "ht"}
	opInNames  = []string{"q", "k", "v", "beta", "g", "h0"}
)

// opShape is the size of one op test case.
type opShape struct{ batch, time, heads, dk, dv int }

// opInputs returns q, k (L2-normalised over K, as the layer feeds them), v, beta in [betaLo, betaHi),
// g in [gLo, gHi) and h0, all float64.
func opInputs(seed uint64, s opShape, betaLo, betaHi, gLo, gHi float64) []*tensors.Tensor {
	rng := lt.NewRand(seed)
	return []*tensors.Tensor{
		unitRows(lt.RandNormal(rng, 1, s.batch, s.time, s.heads, s.dk)),
		unitRows(lt.RandNormal(rng, 1, s.batch, s.time, s.heads, s.dk)),
		lt.RandNormal(rng, 1, s.batch, s.time, s.heads, s.dv),
		lt.RandUniform(rng, betaLo, betaHi, s.batch, s.time, s.heads),
		lt.RandUniform(rng, gLo, gHi, s.batch, s.time, s.heads),
		lt.RandNormal(rng, 1, s.batch, s.heads, s.dk, s.dv),
	}
}

// unitRows normalises the last axis of a float64 tensor to unit length.
func unitRows(x *tensors.Tensor) *tensors.Tensor {
	dims := x.Shape().Dimensions
	last := dims[len(dims)-1]
	data := lt.Floats(x)
	for i := 0; i < len(data); i += last {
		var s float64
		for _, v := range data[i : i+last] {
			s += v * v
		}
		for j := i; j < i+last; j++ {
			data[j] /= math.Sqrt(s)
		}
	}
	return tensors.FromFlatDataAndDimensions(data, dims...)
}

func naiveFn(scale float64, opts deltanet.Options) lt.OpFn {
	return func(in []*Node) []*Node {
		o, ht := deltanet.Naive(in[0], in[1], in[2], in[3], in[4], in[5], scale, opts)
		return []*Node{o, ht}
	}
}

func chunkFn(scale float64, chunk int, opts deltanet.Options) lt.OpFn {
	return func(in []*Node) []*Node {
		o, ht := deltanet.Chunked(in[0], in[1], in[2], in[3], in[4], in[5], scale, chunk, opts)
		return []*Node{o, ht}
	}
}

// compareOp checks outputs and the gradients of every input of got against want's (computed once).
func compareOp(t *testing.T, got lt.OpFn, inputs, upstream, wantOut, wantGrad []*tensors.Tensor, tol float64) (worst float64) {
	t.Helper()
	gotOut, gotGrad := lt.OpGradients(got, inputs, upstream)
	for i := range wantOut {
		worst = math.Max(worst, lt.AssertClose(t, "output "+opOutNames[i], gotOut[i], wantOut[i], tol))
	}
	for i := range wantGrad {
		worst = math.Max(worst, lt.AssertClose(t, "gradient of "+opInNames[i], gotGrad[i], wantGrad[i], tol))
	}
	return worst
}

// TestChunkedEqualsNaive: Every T in {1, 63, 64, 75, 200} with every C in {1, 16, 64}:
// lengths that are not multiples of C, a single token, one partial chunk and up to 200 chunks.
func TestChunkedEqualsNaive(t *testing.T) {
	shape := opShape{batch: 2, heads: 2, dk: 4, dv: 3}
	for _, time := range []int{1, 63, 64, 75, 200} {
		shape.time = time
		inputs := opInputs(uint64(time), shape, 0, 1, -0.5, 0)
		scale := 1 / math.Sqrt(float64(shape.dk))
		ref := naiveFn(scale, deltanet.GatedDeltaRule)
		upstream := lt.RandomUpstream(7, lt.RunOp(ref, inputs))
		wantOut, wantGrad := lt.OpGradients(ref, inputs, upstream)
		for _, chunk := range []int{1, 16, 64} {
			t.Run(fmt.Sprintf("T%d_C%d", time, chunk), func(t *testing.T) {
				worst := compareOp(t, chunkFn(scale, chunk, deltanet.GatedDeltaRule), inputs, upstream, wantOut, wantGrad, 1e-10)
				t.Logf("T=%d C=%d: worst relative RMS over o, ht and 6 gradients = %.2g", time, chunk, worst)
			})
		}
	}
}

// TestChunkedEqualsNaiveVariants covers the ablation switches and beta in (0, 2).
func TestChunkedEqualsNaiveVariants(t *testing.T) {
	shape := opShape{batch: 1, time: 37, heads: 2, dk: 4, dv: 5}
	cases := []struct {
		name   string
		opts   deltanet.Options
		betaHi float64
	}{
		{"deltanet", deltanet.DeltaRule, 1},
		{"mamba2_style", deltanet.GatedLinearAttn, 1},
		{"linear_attention", deltanet.LinearAttention, 1},
		{"neg_eigval", deltanet.GatedDeltaRule, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inputs := opInputs(5, shape, 0, c.betaHi, -1, 0)
			ref := naiveFn(0.5, c.opts)
			upstream := lt.RandomUpstream(7, lt.RunOp(ref, inputs))
			wantOut, wantGrad := lt.OpGradients(ref, inputs, upstream)
			worst := compareOp(t, chunkFn(0.5, 16, c.opts), inputs, upstream, wantOut, wantGrad, 1e-10)
			t.Logf("%s: worst relative RMS %.2g", c.name, worst)
			grads := lt.Floats(wantGrad[3]) // the switches must really remove beta's / g's influence
			if c.opts.Delta == (maxAbs(grads) == 0) {
				t.Errorf("gradient of beta max |.| = %g with delta=%v", maxAbs(grads), c.opts.Delta)
			}
			if g := lt.Floats(wantGrad[4]); c.opts.Gate == (maxAbs(g) == 0) {
				t.Errorf("gradient of g max |.| = %g with gate=%v", maxAbs(g), c.opts.Gate)
			}
		})
	}
}

func maxAbs(x []float64) float64 {
	var m float64
	for _, v := range x {
		m = math.Max(m, math.Abs(v))
	}
	return m
}

// TestNaiveGradCheck compares the naive op's gradients with central finite differences.
func TestNaiveGradCheck(t *testing.T) {
	shape := opShape{batch: 1, time: 6, heads: 2, dk: 3, dv: 2}
	inputs := opInputs(3, shape, 0, 2, -1, 0)
	lt.GradCheck(t, naiveFn(0.6, deltanet.GatedDeltaRule), inputs, nil, 6, 1e-7)
}

// TestNaiveMatchesHandComputed checks the recurrence itself on one head against a plain Go loop.
func TestNaiveMatchesHandComputed(t *testing.T) {
	shape := opShape{batch: 1, time: 5, heads: 1, dk: 2, dv: 2}
	inputs := opInputs(9, shape, 0, 1, -1, 0)
	out := lt.RunOp(naiveFn(0.7, deltanet.GatedDeltaRule), inputs)
	q, k, v := lt.Floats(inputs[0]), lt.Floats(inputs[1]), lt.Floats(inputs[2])
	beta, g, s := lt.Floats(inputs[3]), lt.Floats(inputs[4]), lt.Floats(inputs[5])
	var o []float64
	for t := 0; t < shape.time; t++ {
		alpha := math.Exp(g[t])
		for i := range s {
			s[i] *= alpha
		}
		kt, vt, qt := k[2*t:2*t+2], v[2*t:2*t+2], q[2*t:2*t+2]
		for j := 0; j < 2; j++ {
			u := beta[t] * (vt[j] - (kt[0]*s[j] + kt[1]*s[2+j]))
			s[j] += kt[0] * u
			s[2+j] += kt[1] * u
		}
		for j := 0; j < 2; j++ {
			o = append(o, 0.7*(qt[0]*s[j]+qt[1]*s[2+j]))
		}
	}
	lt.AssertClose(t, "o", out[0], tensors.FromFlatDataAndDimensions(o, 1, 5, 1, 2), 1e-14)
	lt.AssertClose(t, "ht", out[1], tensors.FromFlatDataAndDimensions(s, 1, 1, 2, 2), 1e-14)
}

// as32 converts a float64 tensor to float32.
func as32(x *tensors.Tensor) *tensors.Tensor {
	f := lt.Floats(x)
	out := make([]float32, len(f))
	for i, v := range f {
		out[i] = float32(v)
	}
	return tensors.FromFlatDataAndDimensions(out, x.Shape().Dimensions...)
}

// TestChunkedHeadMajor: the head-major entry point is Chunked with time and heads swapped (outputs and
// gradients), on a length that is not a multiple of the chunk.
func TestChunkedHeadMajor(t *testing.T) {
	shape := opShape{batch: 2, time: 37, heads: 3, dk: 4, dv: 5}
	inputs := opInputs(21, shape, 0, 1, -0.5, 0)
	ref := chunkFn(0.5, 16, deltanet.GatedDeltaRule)
	headMajor := func(in []*Node) []*Node {
		swap := func(x *Node) *Node {
			if x.Rank() == 3 {
				return TransposeAllAxes(x, 0, 2, 1)
			}
			return TransposeAllAxes(x, 0, 2, 1, 3)
		}
		o, ht := deltanet.ChunkedHeadMajor(swap(in[0]), swap(in[1]), swap(in[2]), swap(in[3]), swap(in[4]), in[5], 0.5, 16, deltanet.GatedDeltaRule)
		return []*Node{swap(o), ht}
	}
	upstream := lt.RandomUpstream(7, lt.RunOp(ref, inputs))
	wantOut, wantGrad := lt.OpGradients(ref, inputs, upstream)
	compareOp(t, headMajor, inputs, upstream, wantOut, wantGrad, 1e-13)
}
