package titans

import (
	"fmt"
	"math"
	"testing"

	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// opCase holds random float64 inputs of the memory op: q, k, v [B, H, T, Dh], theta, eta, alpha
// [B, H, T], then W[l], S[l] [B, H, in, out] for every layer.
type opCase struct {
	batch, heads, time, dim int
	dims                    [][2]int
	inputs                  []*tensors.Tensor
}

func newOpCase(seed uint64, batch, heads, time, dim, depth, expansion int) *opCase {
	cfg := Config{HeadDim: dim, MemoryDepth: depth, MemoryExpansion: expansion}
	c := &opCase{batch: batch, heads: heads, time: time, dim: dim, dims: cfg.memoryDims()}
	rng := lt.NewRand(seed)
	unit := func() *tensors.Tensor { // q and k are L2-normalised rows in the layer
		x := lt.Floats(lt.RandNormal(rng, 1, batch, heads, time, dim))
		for i := 0; i < len(x); i += dim {
			var n float64
			for _, v := range x[i : i+dim] {
				n += v * v
			}
			for j := i; j < i+dim; j++ {
				x[j] /= math.Sqrt(n)
			}
		}
		return tensors.FromFlatDataAndDimensions(x, batch, heads, time, dim)
	}
	c.inputs = []*tensors.Tensor{unit(), unit(), lt.RandNormal(rng, 1, batch, heads, time, dim),
		lt.RandUniform(rng, 0.05, 0.5, batch, heads, time), // theta
		lt.RandUniform(rng, 0.5, 0.99, batch, heads, time), // eta
		lt.RandUniform(rng, 0.01, 0.2, batch, heads, time), // alpha
	}
	for _, d := range c.dims {
		c.inputs = append(c.inputs, lt.RandNormal(rng, 1/math.Sqrt(float64(d[0])), batch, heads, d[0], d[1]))
	}
	for _, d := range c.dims {
		c.inputs = append(c.inputs, lt.RandNormal(rng, 0.1, batch, heads, d[0], d[1]))
	}
	return c
}

type memOp func(q, k, v *Node, gates Gates, st State, cfg OpConfig) (*Node, State)

// fn wraps a memory op as an OpFn over the case's input layout, returning [y, W..., S...].
func (c *opCase) fn(op memOp, cfg OpConfig) lt.OpFn {
	return c.opFn(func(q, k, v *Node, gates Gates, st State) (*Node, State) { return op(q, k, v, gates, st, cfg) })
}

// opFn wraps a configured op as an OpFn: inputs q, k, v, theta, eta, alpha, then the fast weights and
// their momenta (one per entry of c.dims); outputs y, then the final weights and momenta.
func (c *opCase) opFn(op func(q, k, v *Node, gates Gates, st State) (*Node, State)) lt.OpFn {
	fast := len(c.dims)
	return func(in []*Node) []*Node {
		st := State{W: in[6 : 6+fast], S: in[6+fast : 6+2*fast]}
		y, final := op(in[0], in[1], in[2], Gates{Theta: in[3], Eta: in[4], Alpha: in[5]}, st)
		return append(append([]*Node{y}, final.W...), final.S...)
	}
}

func (c *opCase) names() (outs, ins []string) {
	outs = []string{"y"}
	ins = []string{"q", "k", "v", "theta", "eta", "alpha"}
	for _, prefix := range []string{"W", "S"} {
		for l := range c.dims {
			outs = append(outs, fmt.Sprintf("final %s%d", prefix, l))
			ins = append(ins, fmt.Sprintf("initial %s%d", prefix, l))
		}
	}
	for l := 0; len(ins) < len(c.inputs); l++ { // the tp op's base weights
		ins = append(ins, fmt.Sprintf("base W%d", l))
	}
	return outs, ins
}

// Chunked equals the token-by-token reference of the same mini-batch semantics: outputs, final state
// and the gradients of every input, for lengths not divisible by the chunk, chunk 1 (the exact
// per-token recurrence), a single token, linear and deep memories, with and without the clamp.
func TestChunkedEqualsNaive(t *testing.T) {
	cases := []struct {
		depth, time, chunk int
		clamp              float64
	}{
		{1, 11, 4, 0}, {2, 11, 4, 0}, {2, 7, 1, 0}, {1, 1, 4, 0}, {2, 10, 5, 2}, {3, 6, 3, 0},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("depth%d_T%d_C%d_clamp%v", tc.depth, tc.time, tc.chunk, tc.clamp), func(t *testing.T) {
			c := newOpCase(uint64(tc.depth*100+tc.time), 2, 2, tc.time, 4, tc.depth, 2)
			cfg := OpConfig{ChunkSize: tc.chunk, GradClamp: tc.clamp}
			worst := compareOps(t, c.fn(Chunked, cfg), c.fn(Naive, cfg), c, 1e-10)
			t.Logf("chunked vs naive: worst rel RMS over outputs, final state and gradients %.3g", worst)
		})
	}
}

// compareOps is layertest.FastVsReference that also returns the worst relative RMS error, for the log.
func compareOps(t *testing.T, fast, ref lt.OpFn, c *opCase, tol float64) float64 {
	t.Helper()
	outNames, inNames := c.names()
	upstream := lt.RandomUpstream(7, lt.RunOp(ref, c.inputs))
	wantOut, wantGrad := lt.OpGradients(ref, c.inputs, upstream)
	gotOut, gotGrad := lt.OpGradients(fast, c.inputs, upstream)
	worst := 0.0
	for i := range wantOut {
		worst = math.Max(worst, lt.AssertClose(t, "output "+outNames[i], gotOut[i], wantOut[i], tol))
	}
	for i := range wantGrad {
		worst = math.Max(worst, lt.AssertClose(t, "gradient of "+inNames[i], gotGrad[i], wantGrad[i], tol))
	}
	return worst
}

// The clamp must be active in the clamped case above, or that case proves nothing.
func TestGradClampIsActive(t *testing.T) {
	c := newOpCase(210, 2, 2, 10, 4, 2, 2)
	out := lt.RunOp(func(in []*Node) []*Node {
		_, _, stats := ChunkedWithStats(in[0], in[1], in[2], Gates{Theta: in[3], Eta: in[4], Alpha: in[5]},
			State{W: in[6:8], S: in[8:10]}, OpConfig{ChunkSize: 5, GradClamp: 2})
		return []*Node{stats.ClampedFraction}
	}, c.inputs)
	if f := lt.Floats(out[0])[0]; f <= 0.2 || f >= 1 {
		t.Errorf("clamped fraction %v: want a mix of clamped and unclamped tokens", f)
	}
}

// The rank-1 closed-form inner gradient p^T r equals graph.Gradient of ||M(k_t) - v_t||^2 with respect
// to per-token copies of the weights, for L_M = 1, 2, 3; the autodiff factor path agrees too.
func TestClosedFormInnerGradient(t *testing.T) {
	for depth := 1; depth <= 3; depth++ {
		t.Run(fmt.Sprintf("depth%d", depth), func(t *testing.T) {
			c := newOpCase(uint64(300+depth), 2, 3, 5, 4, depth, 3)
			in := append(c.inputs[1:3], c.inputs[6:6+depth]...)
			out := lt.RunOp(func(in []*Node) []*Node {
				k, v, ws := in[0], in[1], in[2:]
				ps, rs, _ := gradFactors(ws, k, v, false)
				pa, ra, _ := gradFactors(ws, k, v, true)
				auto := perTokenGradients(ws, k, v)
				var res []*Node
				for l := range ws {
					res = append(res, Einsum("bhni,bhno->bhnio", ps[l], rs[l]), auto[l], ra[l], rs[l], pa[l], ps[l])
				}
				return res
			}, in)
			for l := 0; l < depth; l++ {
				err := lt.AssertClose(t, fmt.Sprintf("layer %d closed form vs graph.Gradient", l), out[6*l], out[6*l+1], 1e-13)
				lt.AssertClose(t, fmt.Sprintf("layer %d autodiff factors", l), out[6*l+2], out[6*l+3], 1e-13)
				lt.AssertClose(t, fmt.Sprintf("layer %d inputs", l), out[6*l+4], out[6*l+5], 0)
				t.Logf("depth %d layer %d: closed form vs graph.Gradient rel RMS %.3g", depth, l, err)
			}
		})
	}
}

// Cross-family: a linear memory (L_M = 1) with eta = 0, alpha = 0 and chunk size 1 is the delta rule
//
//	S_t = S_{t-1} + beta_t k_t^T (v_t - k_t S_{t-1}),  o_t = q_t S_t,
//
// with S = W and beta_t = 2 theta_t (the 2 is d/dW of the squared loss ||k W - v||^2). The delta rule
// here is written directly on the host in float64 and compared with the chunked op.
func TestCrossFamilyDeltaRule(t *testing.T) {
	c := newOpCase(400, 2, 2, 9, 4, 1, 1)
	zero := tensors.FromShape(c.inputs[4].Shape()) // eta = alpha = 0
	c.inputs[4], c.inputs[5] = zero, zero
	out := lt.RunOp(c.fn(Chunked, OpConfig{ChunkSize: 1}), c.inputs)
	q, k, v, theta, w0 := lt.Floats(c.inputs[0]), lt.Floats(c.inputs[1]), lt.Floats(c.inputs[2]), lt.Floats(c.inputs[3]), lt.Floats(c.inputs[6])
	d, T := c.dim, c.time
	var want, wantState []float64
	for bh := 0; bh < c.batch*c.heads; bh++ {
		s := append([]float64(nil), w0[bh*d*d:(bh+1)*d*d]...) // s[i*d+o]
		for step := 0; step < T; step++ {
			row := func(x []float64) []float64 { return x[(bh*T+step)*d : (bh*T+step+1)*d] }
			qt, kt, vt, beta := row(q), row(k), row(v), 2*theta[bh*T+step]
			for o := 0; o < d; o++ {
				var pred float64
				for i := 0; i < d; i++ {
					pred += kt[i] * s[i*d+o]
				}
				for i := 0; i < d; i++ {
					s[i*d+o] += beta * kt[i] * (vt[o] - pred)
				}
			}
			for o := 0; o < d; o++ {
				var y float64
				for i := 0; i < d; i++ {
					y += qt[i] * s[i*d+o]
				}
				want = append(want, y)
			}
		}
		wantState = append(wantState, s...)
	}
	yErr := lt.RelRMS(lt.Floats(out[0]), want)
	sErr := lt.RelRMS(lt.Floats(out[1]), wantState)
	t.Logf("cross-family vs delta rule (beta = 2 theta): outputs rel RMS %.3g, final state rel RMS %.3g", yErr, sErr)
	if !(yErr <= 1e-12 && sErr <= 1e-12) {
		t.Errorf("titans (L_M=1, eta=alpha=0, chunk 1) vs delta rule: outputs %.3g, state %.3g > 1e-12", yErr, sErr)
	}
}

// Finite differences of the naive op (second-order through graph.Gradient) and of the chunked op.
func TestMemoryGradCheck(t *testing.T) {
	c := newOpCase(500, 1, 2, 5, 3, 2, 2)
	cfg := OpConfig{ChunkSize: 2, GradClamp: 0.5}
	lt.GradCheck(t, c.fn(Naive, cfg), c.inputs, nil, 3, 1e-6)
	lt.GradCheck(t, c.fn(Chunked, cfg), c.inputs, []int{1, 4, 5, 6, 7}, 3, 1e-6)
}
