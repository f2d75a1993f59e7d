package titans

import (
	"fmt"
	"strings"
	"testing"

	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// newTPCase is newOpCase for the tp op: eta and alpha become one value per chunk [B, H, C], and the
// state gains gamma [B, H, 1, Dh] after the MLP weights (and its momentum after theirs).
func newTPCase(seed uint64, batch, heads, time, dim, depth, expansion, chunk int) *opCase {
	c := newOpCase(seed, batch, heads, time, dim, depth, expansion)
	rng := lt.NewRand(seed + 1000)
	chunks := len(chunkBounds(time, chunk))
	c.inputs[4] = lt.RandUniform(rng, 0.5, 0.99, batch, heads, chunks)
	c.inputs[5] = lt.RandUniform(rng, 0.01, 0.2, batch, heads, chunks)
	w, s := c.inputs[6:6+depth], c.inputs[6+depth:]
	inputs := append([]*tensors.Tensor(nil), c.inputs[:6]...)
	inputs = append(inputs, w...)
	inputs = append(inputs, lt.RandNormal(rng, 0.3, batch, heads, 1, dim)) // gamma
	inputs = append(inputs, s...)
	inputs = append(inputs, lt.RandNormal(rng, 0.1, batch, heads, 1, dim)) // gamma's momentum
	c.inputs = inputs
	c.dims = append(c.dims, [2]int{1, dim})
	return c
}

type tpOp func(q, k, v *Node, gates Gates, st State, cfg TPConfig) (*Node, State)

func chunkedTP(q, k, v *Node, gates Gates, st State, cfg TPConfig) (*Node, State) {
	y, final, _ := ChunkedTP(q, k, v, gates, st, cfg)
	return y, final
}

// tpFn wraps a tp op as an OpFn over the case's inputs, returning [y, W..., gamma, S..., s_gamma].
func (c *opCase) tpFn(op tpOp, cfg TPConfig) lt.OpFn {
	return c.opFn(func(q, k, v *Node, gates Gates, st State) (*Node, State) { return op(q, k, v, gates, st, cfg) })
}

// ChunkedTP (rank-1 closed-form gradients summed per chunk by matmuls) equals NaiveTP (full per-token
// gradient matrices from graph.Gradient, accumulated token by token, every token read on its own):
// outputs, final state and the gradients of every input, for TTT batches of one and of several chunks,
// lengths that cut a chunk or a batch short, linear and deep memories, with and without the clamp.
func TestTPChunkedEqualsNaive(t *testing.T) {
	cases := []struct {
		depth, time, chunk, batch int
		clamp                     float64
	}{
		{1, 11, 2, 4, 0}, {2, 11, 2, 4, 0}, {2, 9, 3, 3, 0}, {2, 10, 2, 6, 1.5}, {3, 6, 1, 2, 0}, {2, 1, 4, 8, 0},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("depth%d_T%d_C%d_Q%d_clamp%v", tc.depth, tc.time, tc.chunk, tc.batch, tc.clamp)
		t.Run(name, func(t *testing.T) {
			c := newTPCase(uint64(tc.depth*100+tc.time+7), 2, 2, tc.time, 4, tc.depth, 2, tc.chunk)
			cfg := TPConfig{ChunkSize: tc.chunk, TTTBatch: tc.batch, GradClamp: tc.clamp, NormEps: 1e-6}
			worst := compareOps(t, c.tpFn(chunkedTP, cfg), c.tpFn(NaiveTP, cfg), c, 1e-10)
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

// The tp semantics, checked against direct evaluations rather than the reference op:
//   - the first chunk reads the initial weights (read before write): y = ReadTP(W0, q);
//   - with one TTT batch of two chunks, chunk 2 reads W_1 = (1 - alpha_1) W0 + eta_1 S0 - sum theta_t g_t
//     with the gradients of chunk 1 at W0;
//   - a larger TTT batch changes later chunks' reads (gradients at older weights), so Q is not ignored.
func TestTPReadBeforeWrite(t *testing.T) {
	const chunk = 3
	c := newTPCase(77, 1, 2, 9, 4, 2, 2, chunk)
	out := lt.RunOp(func(in []*Node) []*Node {
		q, k, v, theta, eta, alpha := in[0], in[1], in[2], in[3], in[4], in[5]
		st := State{W: in[6:9], S: in[9:12]}
		gates := Gates{Theta: theta, Eta: eta, Alpha: alpha}
		y, _, _ := ChunkedTP(q, k, v, gates, st, TPConfig{ChunkSize: chunk, TTTBatch: 2 * chunk, NormEps: 1e-6})
		yOne, _, _ := ChunkedTP(q, k, v, gates, st, TPConfig{ChunkSize: chunk, TTTBatch: chunk, NormEps: 1e-6})
		first := func(x *Node) *Node { return SliceAxis(x, 2, AxisRange(0, chunk)) }
		second := func(x *Node) *Node { return SliceAxis(x, 2, AxisRange(chunk, 2*chunk)) }
		ps, rs, _ := tpGradFactors(st.W, first(k), first(v), 1e-6, false)
		w1 := make([]*Node, 3)
		for l := range w1 {
			g := Einsum("bhsi,bhso->bhio", Mul(ps[l], InsertAxes(first(theta), -1)), rs[l])
			s1 := Sub(Mul(chunkGate(eta, 0), st.S[l]), g)
			w1[l] = Add(Mul(OneMinus(chunkGate(alpha, 0)), st.W[l]), s1)
		}
		return []*Node{first(y), ReadTP(st.W, first(q), 1e-6), second(y), ReadTP(w1, second(q), 1e-6),
			SliceAxis(y, 2, AxisRange(2*chunk, 3*chunk)), SliceAxis(yOne, 2, AxisRange(2*chunk, 3*chunk)), second(yOne)}
	}, c.inputs)
	lt.AssertClose(t, "chunk 1 reads the initial weights", out[0], out[1], 1e-14)
	lt.AssertClose(t, "chunk 2 reads the weights after chunk 1", out[2], out[3], 1e-13)
	lt.AssertClose(t, "chunk 2 is the same with Q = n (its gradients were at W0 either way)", out[6], out[2], 1e-13)
	if d := lt.RelRMS(lt.Floats(out[4]), lt.Floats(out[5])); d < 1e-3 {
		t.Errorf("chunk 3 with Q = 2n vs Q = n: rel RMS %.3g, want a difference (its gradients come from other weights)", d)
	}
}

// Finite differences of the naive tp op (second order through graph.Gradient) and of the chunked one.
func TestTPGradCheck(t *testing.T) {
	c := newTPCase(501, 1, 2, 5, 3, 2, 2, 2)
	cfg := TPConfig{ChunkSize: 2, TTTBatch: 4, GradClamp: 0.8, NormEps: 1e-6}
	lt.GradCheck(t, c.tpFn(NaiveTP, cfg), c.inputs, nil, 3, 1e-6)
	lt.GradCheck(t, c.tpFn(chunkedTP, cfg), c.inputs, []int{1, 4, 5, 6, 8}, 3, 1e-6)
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
	want := "q_conv[3 2 8] k_conv[3 2 8] v_conv[3 2 8] w0[3 2 4 8] w1[3 2 8 4] w_gamma[3 2 1 4] s0[3 2 4 8] s1[3 2 8 4] s_gamma[3 2 1 4]"
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

// Mean pooling per chunk, with a short last chunk.
func TestPoolChunks(t *testing.T) {
	x := tensors.FromFlatDataAndDimensions([]float64{1, 2, 3, 4, 5, 6, 7, 10, 20, 30, 40, 50, 60, 70}, 2, 7, 1)
	out := lt.RunOp(func(in []*Node) []*Node { return []*Node{poolChunks(in[0], 3)} }, []*tensors.Tensor{x})
	want := []float64{2, 5, 7, 20, 50, 70}
	if got := lt.Floats(out[0]); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("poolChunks = %v, want %v", got, want)
	}
}
