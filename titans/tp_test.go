package titans

import (
	"fmt"
	"math"
	"strings"
	"testing"

	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// newTPCase is newOpCase for the tp op: eta and alpha become one value per complete chunk [B, H, T/C],
// the state gains gamma [B, H, 1, Dh] after the MLP weights (and its momentum after theirs), and the base
// weights (MLP weights then gamma, different from the state's) follow the momenta.
func newTPCase(seed uint64, batch, heads, time, dim, depth, expansion, chunk int) *opCase {
	c := newOpCase(seed, batch, heads, time, dim, depth, expansion)
	rng := lt.NewRand(seed + 1000)
	chunks := max(time/chunk, 1) // a call shorter than a chunk has no gates: a stand-in the op is not given
	c.inputs[4] = lt.RandUniform(rng, 0.5, 0.99, batch, heads, chunks)
	c.inputs[5] = lt.RandUniform(rng, 0.01, 0.2, batch, heads, chunks)
	w, s := c.inputs[6:6+depth], c.inputs[6+depth:]
	inputs := append([]*tensors.Tensor(nil), c.inputs[:6]...)
	inputs = append(inputs, w...)
	inputs = append(inputs, lt.RandNormal(rng, 0.3, batch, heads, 1, dim)) // gamma
	inputs = append(inputs, s...)
	inputs = append(inputs, lt.RandNormal(rng, 0.1, batch, heads, 1, dim)) // gamma's momentum
	for _, d := range c.dims {
		inputs = append(inputs, lt.RandNormal(rng, 1/math.Sqrt(float64(d[0])), batch, heads, d[0], d[1]))
	}
	inputs = append(inputs, lt.RandNormal(rng, 0.3, batch, heads, 1, dim)) // base gamma
	c.inputs = inputs
	c.dims = append(c.dims, [2]int{1, dim})
	return c
}

type tpOp func(q, k, v *Node, gates Gates, st State, base []*Node, cfg PyTorchConfig) (*Node, State)

func chunkedTP(q, k, v *Node, gates Gates, st State, base []*Node, cfg PyTorchConfig) (*Node, State) {
	y, final, _ := ChunkedPyTorch(q, k, v, gates, st, base, cfg)
	return y, final
}

// tpFn wraps a tp op as an OpFn over the case's inputs (q, k, v, theta, eta, alpha, W..., gamma,
// S..., s_gamma, base W..., base gamma), returning [y, W..., gamma, S..., s_gamma].
func (c *opCase) tpFn(op tpOp, cfg PyTorchConfig) lt.OpFn {
	fast := len(c.dims)
	return func(in []*Node) []*Node {
		st := State{W: in[6 : 6+fast], S: in[6+fast : 6+2*fast]}
		gates := Gates{Theta: in[3], Eta: in[4], Alpha: in[5]}
		if c.time < cfg.ChunkSize {
			gates.Eta, gates.Alpha = nil, nil
		}
		y, final := op(in[0], in[1], in[2], gates, st, in[6+2*fast:6+3*fast], cfg)
		return append(append([]*Node{y}, final.W...), final.S...)
	}
}

// ChunkedPyTorch (rank-1 closed-form gradients summed per chunk by matmuls, reads grouped by weights) equals
// NaivePyTorch (full per-token gradient matrices from graph.Gradient, accumulated token by token, every token
// t reading W_{floor((t+1)/C)} on its own): outputs, final state and the gradients of every input, with
// gradients at the base weights (TTT batch 0) and at TTT batch starts of one and of several chunks,
// lengths that cut a chunk or a batch short or are shorter than a chunk, chunk 1, linear and deep
// memories, with and without the clamp.
func TestTPChunkedEqualsNaive(t *testing.T) {
	cases := []struct {
		depth, time, chunk, batch int
		clamp                     float64
	}{
		{1, 11, 2, 0, 0}, {2, 11, 3, 0, 0}, {2, 11, 2, 4, 0}, {2, 9, 3, 3, 0}, {2, 10, 2, 6, 1.5}, {2, 10, 2, 0, 1.5},
		{3, 6, 1, 2, 0}, {2, 5, 1, 0, 0}, {2, 1, 4, 8, 0}, {2, 3, 4, 0, 0},
		{2, 21, 2, 0, 0}, {2, 19, 1, 0, 0}, // with maxScanBlock 8: spans of 10 and 19 chunks, in blocks of 5 and whole
	}
	defer func(old int) { maxScanBlock = old }(maxScanBlock)
	maxScanBlock = 8
	for _, tc := range cases {
		name := fmt.Sprintf("depth%d_T%d_C%d_Q%d_clamp%v", tc.depth, tc.time, tc.chunk, tc.batch, tc.clamp)
		t.Run(name, func(t *testing.T) {
			c := newTPCase(uint64(tc.depth*100+tc.time+7), 2, 2, tc.time, 4, tc.depth, 2, tc.chunk)
			cfg := PyTorchConfig{ChunkSize: tc.chunk, TTTBatch: tc.batch, GradClamp: tc.clamp, NormEps: 1e-5}
			worst := compareOps(t, c.tpFn(chunkedTP, cfg), c.tpFn(NaivePyTorch, cfg), c, 1e-10)
			t.Logf("tp chunked vs naive: worst rel RMS over outputs, final state and gradients %.3g", worst)
		})
	}
}

// The closed-form factors of the residual-norm memory (LayerNorm backward included) equal graph.Gradient
// with respect to per-token copies of every weight and of gamma, for L_M = 1, 2, 3.
func TestTPClosedFormInnerGradient(t *testing.T) {
	for depth := 1; depth <= 3; depth++ {
		t.Run(fmt.Sprintf("depth%d", depth), func(t *testing.T) {
			c := newTPCase(uint64(600+depth), 2, 3, 5, 4, depth, 3, 5)
			in := append(c.inputs[1:3], c.inputs[6:6+depth+1]...)
			out := lt.RunOp(func(in []*Node) []*Node {
				k, v, ws := in[0], in[1], in[2:]
				ps, rs, _ := tpGradFactors(ws, k, v, 1e-6, false)
				pa, ra, _ := tpGradFactors(ws, k, v, 1e-6, true)
				auto := perTokenGradientsTP(ws, k, v, 1e-6)
				var res []*Node
				for l := range ws {
					res = append(res, Einsum("bhni,bhno->bhnio", ps[l], rs[l]), auto[l], Einsum("bhni,bhno->bhnio", pa[l], ra[l]))
				}
				return res
			}, in)
			for l := 0; l <= depth; l++ {
				name := fmt.Sprintf("layer %d", l)
				if l == depth {
					name = "gamma"
				}
				err := lt.AssertClose(t, name+" closed form vs graph.Gradient", out[3*l], out[3*l+1], 1e-12)
				lt.AssertClose(t, name+" autodiff factors vs graph.Gradient", out[3*l+2], out[3*l+1], 1e-12)
				t.Logf("depth %d %s: closed form vs graph.Gradient rel RMS %.3g", depth, name, err)
			}
		})
	}
}

// The tp semantics, checked against direct evaluations rather than the reference op (chunks of 3):
//   - tokens 0, 1 read the initial weights W0;
//   - token 2, the last of chunk 0, already reads W_1 = (1 - alpha_0) W0 + eta_0 S0 - sum theta_t g_t with
//     the gradients g_t of chunk 0 at the base weights (TTT batch 0), and so do tokens 3, 4;
//   - with TTT batches of one chunk and base = W0, tokens 2..4 are the same (chunk 0's gradients are at W0
//     either way) but tokens 5..7 differ (chunk 1's gradients at W_1 instead of W0), so the base is used.
func TestTPReadBeforeWrite(t *testing.T) {
	const chunk = 3
	c := newTPCase(77, 1, 2, 9, 4, 2, 2, chunk)
	out := lt.RunOp(func(in []*Node) []*Node {
		q, k, v, theta, eta, alpha := in[0], in[1], in[2], in[3], in[4], in[5]
		st, base := State{W: in[6:9], S: in[9:12]}, in[12:15]
		gates := Gates{Theta: theta, Eta: eta, Alpha: alpha}
		cfg := PyTorchConfig{ChunkSize: chunk, NormEps: 1e-5}
		y, _, _ := ChunkedPyTorch(q, k, v, gates, st, base, cfg)
		yAtW0, _, _ := ChunkedPyTorch(q, k, v, gates, st, st.W, cfg)
		cfg.TTTBatch = chunk
		yRunning, _, _ := ChunkedPyTorch(q, k, v, gates, st, nil, cfg)
		span := func(x *Node, from, to int) *Node { return SliceAxis(x, 2, AxisRange(from, to)) }
		ps, rs, _ := tpGradFactors(base, span(k, 0, chunk), span(v, 0, chunk), 1e-5, false)
		w1 := make([]*Node, 3)
		for l := range w1 {
			g := Einsum("bhsi,bhso->bhio", Mul(ps[l], InsertAxes(span(theta, 0, chunk), -1)), rs[l])
			s1 := Sub(Mul(chunkGate(eta, 0), st.S[l]), g)
			w1[l] = Add(Mul(OneMinus(chunkGate(alpha, 0)), st.W[l]), s1)
		}
		return []*Node{span(y, 0, 2), ReadTP(st.W, span(q, 0, 2), 1e-5), span(y, 2, 5), ReadTP(w1, span(q, 2, 5), 1e-5),
			span(yRunning, 2, 5), span(yAtW0, 2, 5), span(yRunning, 5, 8), span(yAtW0, 5, 8)}
	}, c.inputs)
	lt.AssertClose(t, "tokens 0, 1 read the initial weights", out[0], out[1], 1e-14)
	lt.AssertClose(t, "tokens 2..4 read the weights after chunk 0", out[2], out[3], 1e-13)
	lt.AssertClose(t, "tokens 2..4 with TTT batches of one chunk vs base W0", out[4], out[5], 1e-13)
	if d := lt.RelRMS(lt.Floats(out[6]), lt.Floats(out[7])); d < 1e-3 {
		t.Errorf("tokens 5..7, TTT batches of one chunk vs gradients at W0: rel RMS %.3g, want a difference", d)
	}
}

// Finite differences of the naive tp op (second order through graph.Gradient) and of the chunked one.
func TestTPGradCheck(t *testing.T) {
	c := newTPCase(501, 1, 2, 5, 3, 2, 2, 2)
	cfg := PyTorchConfig{ChunkSize: 2, TTTBatch: 4, GradClamp: 0.8, NormEps: 1e-5}
	lt.GradCheck(t, c.tpFn(NaivePyTorch, cfg), c.inputs, nil, 3, 1e-6)
	cfg.TTTBatch = 0
	lt.GradCheck(t, c.tpFn(chunkedTP, cfg), c.inputs, []int{1, 4, 5, 6, 8, 12, 13, 14}, 3, 1e-6)
}

func TestTPStateAndValidate(t *testing.T) {
	m, err := New(configFor(VariantLMM, ModeTP), testDModel)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range m.StateSpecs(3, dtypes.Float32) {
		names = append(names, s.Name+fmt.Sprint(s.Shape.Dimensions))
	}
	want := "w0[3 2 4 8] w1[3 2 8 4] w_gamma[3 2 1 4] s0[3 2 4 8] s1[3 2 8 4] s_gamma[3 2 1 4]" // no short convs
	if got := strings.Join(names, " "); got != want {
		t.Errorf("tp state specs\n got %s\nwant %s", got, want)
	}
	bad := map[string]func(*Config){
		"mode":           func(c *Config) { c.Mode = "pytorch" },
		"ttt_batch_size": func(c *Config) { c.Mode, c.ChunkSize, c.TTTBatchSize = ModeTP, 16, 40 },
	}
	for field, mutate := range bad {
		cfg := DefaultConfig()
		mutate(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got error %v, want one naming the field", field, err)
		}
	}
	paper := DefaultConfig()
	paper.TTTBatchSize = 40 // ignored in paper mode
	if err := paper.Validate(); err != nil {
		t.Errorf("paper mode with ttt_batch_size 40: %v", err)
	}
}

// Mean pooling per complete chunk (a short last chunk has no gates).
func TestPoolChunks(t *testing.T) {
	x := tensors.FromFlatDataAndDimensions([]float64{1, 2, 3, 4, 5, 6, 7, 10, 20, 30, 40, 50, 60, 70}, 2, 7, 1)
	out := lt.RunOp(func(in []*Node) []*Node { return []*Node{poolChunks(in[0], 3)} }, []*tensors.Tensor{x})
	want := []float64{2, 5, 20, 50}
	if got := lt.Floats(out[0]); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("poolChunks = %v, want %v", got, want)
	}
}

// With CarryPartialChunk the layer keeps the stream's partial chunk in the state (in mode tp as
// titans-pytorch does; in the paper mode with the weights, momentum and conv caches of its start), so one
// call equals any split into chained calls: pieces of 1, 5, 17, chunk+3 and 3 tokens (chunks of 4, MAC
// segments of 8) for all four variants in both modes; and the chunked memory equals the reference from a
// state with pending tokens, gradients included.
func TestCarryPartialChunk(t *testing.T) {
	for _, mode := range []string{ModePaper, ModeTP} {
		for _, variant := range variants {
			t.Run(mode+"/"+variant, func(t *testing.T) {
				cfg := configFor(variant, mode)
				cfg.ChunkSize, cfg.CarryPartialChunk = 4, true // MAC: segments of 8
				fast, ref := mixerPair(t, cfg)
				lt.ChainedEqualsSingle(t, fast, 33, []int{1, 6, 23, 30}, 1e-10)
				if mode == ModeTP && variant == VariantLMM { // 3 pending + 37 tokens: 10 chunks, scanned in blocks of 5
					old := maxScanBlock
					maxScanBlock = 8
					lt.ChainedEqualsSingle(t, fast, 37, []int{1, 6, 23, 30}, 1e-10)
					maxScanBlock = old
				}
				lt.MixerFastVsReference(t, fast, ref, 11, 5, 1e-10)
			})
		}
	}
	bad := configFor(VariantLMM, modeTPBatched)
	bad.CarryPartialChunk = true
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "carry_partial_chunk") {
		t.Errorf("carry_partial_chunk with ttt_batch_size 4: got %v, want an error naming it", err)
	}
}
