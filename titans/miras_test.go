package titans

import (
	"fmt"
	"testing"

	"github.com/engramlx/engram/layers"
	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// mirasOps are the objectives and retentions the op tests run: the three named models and the other
// retentions, each with a deep (2-layer) memory.
var mirasOps = []struct {
	name         string
	bias         AttentionalBias
	retention    Retention
	learnedDelta bool // a per-token Huber threshold as an extra input (Yaad)
}{
	{"moneta", AttentionalBias{Kind: BiasLp, P: 3}, Retention{Kind: RetentionLq, Q: 4}, false},
	{"yaad", AttentionalBias{Kind: BiasHuber}, Retention{}, true},
	{"memora", AttentionalBias{}, Retention{Kind: RetentionKL}, false},
	{"huber_fixed/elastic_net", AttentionalBias{Kind: BiasHuber, Delta: 1.8}, Retention{Kind: RetentionElasticNet, L1: 0.05}, false},
	{"lp1.5/lq3", AttentionalBias{Kind: BiasLp, P: 1.5}, Retention{Kind: RetentionLq, Q: 3}, false},
}

// withDelta appends a per-token Huber threshold input [B, H, T] in [0.5, 3.5] to c (so that some
// residual norms fall inside and some outside it) and returns the op wrapper reading it.
func (c *opCase) mirasFn(op memOp, cfg OpConfig, learnedDelta bool) lt.OpFn {
	fast := len(c.dims)
	return func(in []*Node) []*Node {
		st := State{W: in[6 : 6+fast], S: in[6+fast : 6+2*fast]}
		gates := Gates{Theta: in[3], Eta: in[4], Alpha: in[5]}
		if learnedDelta {
			gates.Delta = in[6+2*fast]
		}
		y, final := op(in[0], in[1], in[2], gates, st, cfg)
		return append(append([]*Node{y}, final.W...), final.S...)
	}
}

func newMirasCase(seed uint64, time, depth int, learnedDelta bool) *opCase {
	c := newOpCase(seed, 2, 2, time, 4, depth, 2)
	if learnedDelta {
		c.inputs = append(c.inputs, lt.RandUniform(lt.NewRand(seed+1), 0.5, 3.5, 2, 2, time))
	}
	return c
}

// Chunked equals the token-by-token reference for every Miras objective and retention: outputs, final
// state and the gradients of every input (the initial state and the Huber thresholds included), at a
// length that is not a multiple of the chunk, a multiple of it (the batched-coefficient path), and
// chunk size 1.
func TestMirasChunkedEqualsNaive(t *testing.T) {
	for _, mo := range mirasOps {
		for _, tc := range []struct{ time, chunk int }{{11, 4}, {8, 4}, {5, 1}} {
			t.Run(fmt.Sprintf("%s/T%d_C%d", mo.name, tc.time, tc.chunk), func(t *testing.T) {
				c := newMirasCase(uint64(600+tc.time), tc.time, 2, mo.learnedDelta)
				// A clamped token's step theta g / ||g|| does not depend on the Huber threshold, whose
				// gradient would then be roundoff: yaad runs unclamped, the others clamped.
				clamp := 2.0
				if mo.learnedDelta {
					clamp = 0
				}
				cfg := OpConfig{ChunkSize: tc.chunk, GradClamp: clamp, Bias: mo.bias, Retention: mo.retention}
				worst := compareOps(t, c.mirasFn(Chunked, cfg, mo.learnedDelta), c.mirasFn(Naive, cfg, mo.learnedDelta), c, 1e-10)
				t.Logf("chunked vs naive: worst rel RMS %.3g", worst)
			})
		}
	}
}

// mirasConfig is the layer test configuration of a named Miras model (moneta, yaad, memora): the
// titans test configuration with the type's objective and retention, built through its mixer type.
func mirasMixer(t *testing.T, name string, edit func(*Config)) layers.Mixer {
	t.Helper()
	cfg := testConfig(VariantLMM)
	if edit != nil {
		edit(&cfg)
	}
	for _, mt := range mirasTypes() {
		if mt.Name == name {
			m, err := mt.Build(&cfg, testDModel)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	t.Fatalf("no mixer type %q", name)
	return nil
}

var mirasNames = []string{"moneta", "yaad", "memora"}

// The three models inside the full layer: the chunked memory equals the token-by-token reference
// (outputs, final state, gradients of x, of the initial state and of every variable, the learned Huber
// threshold's included) at 11 tokens with chunks of 4 from a carried state; one call equals chained
// calls; appending tokens does not change earlier outputs; with chunks of 1 any cut works.
func TestMirasMixer(t *testing.T) {
	for _, name := range mirasNames {
		t.Run(name, func(t *testing.T) {
			m := mirasMixer(t, name, nil)
			fast := lt.NewMixerCase(m, 2, testDModel, 5)
			ref := &lt.MixerCase{Mixer: Reference(m), Batch: 2, DModel: testDModel, Store: fast.Store}
			lt.MixerFastVsReference(t, fast, ref, 11, 8, 1e-10)
			lt.ChainedEqualsSingle(t, fast, 19, []int{4, 12}, 1e-12)
			lt.Causal(t, fast, 9, 5, 1e-12)
			one := lt.NewMixerCase(mirasMixer(t, name, func(c *Config) { c.ChunkSize = 1 }), 2, testDModel, 5)
			lt.ChainedEqualsSingle(t, one, 7, []int{1, 2, 5}, 1e-12)
		})
	}
}

// With the partial chunk carried (the streaming set-up, ForStreaming), one call equals any split.
func TestMirasCarryPartialChunk(t *testing.T) {
	for _, name := range mirasNames {
		t.Run(name, func(t *testing.T) {
			m := mirasMixer(t, name, func(c *Config) { c.CarryPartialChunk = true })
			fast := lt.NewMixerCase(m, 2, testDModel, 5)
			lt.ChainedEqualsSingle(t, fast, 13, []int{3, 5, 6}, 1e-12)
		})
	}
}

// Finite differences of the naive op and of the chunked op, for each named model's objective and
// retention (the Huber threshold as an input for yaad). Without the gradient clamp: a clamped token's
// step theta g / ||g|| does not depend on the Huber threshold at all. Yaad runs twice, so that no
// difference straddles the switch between its branches (a jump, where differences mean nothing): with
// every residual inside the thresholds (x 20, the l2 branch) and with every residual outside them
// (x 0.05, the l1 branch; there v is not probed: the smooth sign's derivative, eps / |e|^3, makes v's
// gradients about 1e-8, below the differences' noise). Chunk == naive covers the mixed case.
func TestMirasGradCheck(t *testing.T) {
	for _, mo := range mirasOps[:3] {
		scales := []float64{1}
		if mo.learnedDelta {
			scales = []float64{20, 0.05}
		}
		for _, scale := range scales {
			t.Run(fmt.Sprintf("%s/delta_x%v", mo.name, scale), func(t *testing.T) {
				c := newMirasCase(500, 5, 2, mo.learnedDelta)
				var check []int
				if mo.learnedDelta {
					last := len(c.inputs) - 1
					delta := lt.Floats(c.inputs[last])
					for i := range delta {
						delta[i] *= scale
					}
					c.inputs[last] = tensors.FromFlatDataAndDimensions(delta, c.inputs[last].Shape().Dimensions...)
					if scale < 1 {
						check = []int{0, 1, 3, 4, 5, 6, 7, 8, 9, 10}
					}
				}
				cfg := OpConfig{ChunkSize: 2, Bias: mo.bias, Retention: mo.retention}
				lt.GradCheck(t, c.mirasFn(Naive, cfg, mo.learnedDelta), c.inputs, check, 4, 1e-6)
				lt.GradCheck(t, c.mirasFn(Chunked, cfg, mo.learnedDelta), c.inputs, check, 4, 1e-6)
			})
		}
	}
}

// Reductions that pin the equations, in float64 (outputs, final state and every input's gradient):
// lp with p = 2 is the l2 bias; Huber with a threshold above every residual norm is l2 (fixed, and
// per token); lq with q = 2 divides by ||A||_q^0 = 1, so W = A and the accumulator recurrence is
// Titans' (1 - alpha) decay of the weights with the momentum step; elastic_net with l1 weight 0
// thresholds at 0, W = A again. Each non-l2 side runs its own code (the closed-form residual
// gradient with the power (p-2)/2 = 0, the Huber mask, the materialised per-token weights of the
// mapped retentions), so the reductions check those paths against the Titans path.
func TestMirasReductions(t *testing.T) {
	l2 := OpConfig{ChunkSize: 4, GradClamp: 2}
	cases := []struct {
		name         string
		bias         AttentionalBias
		retention    Retention
		learnedDelta bool
	}{
		{"lp_p2", AttentionalBias{Kind: BiasLp, P: 2}, Retention{}, false},
		{"huber_fixed_1e6", AttentionalBias{Kind: BiasHuber, Delta: 1e6}, Retention{}, false},
		{"huber_learned_x1e6", AttentionalBias{Kind: BiasHuber}, Retention{}, true},
		{"lq_q2", AttentionalBias{}, Retention{Kind: RetentionLq, Q: 2}, false},
		{"elastic_net_l1_0", AttentionalBias{}, Retention{Kind: RetentionElasticNet, L1: 0}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newMirasCase(700, 11, 2, tc.learnedDelta)
			if tc.learnedDelta {
				last := len(c.inputs) - 1
				delta := lt.Floats(c.inputs[last])
				for i := range delta {
					delta[i] *= 1e6
				}
				c.inputs[last] = tensors.FromFlatDataAndDimensions(delta, c.inputs[last].Shape().Dimensions...)
			}
			cfg := l2
			cfg.Bias, cfg.Retention = tc.bias, tc.retention
			worst := compareOps(t, c.mirasFn(Chunked, cfg, tc.learnedDelta), c.mirasFn(Chunked, l2, tc.learnedDelta), c, 1e-10)
			t.Logf("%s vs Titans l2: worst rel RMS %.3g", tc.name, worst)
		})
	}
}

// The Huber cases above must mix tokens inside and outside the threshold, or chunk == naive proves
// little about the switch.
func TestMirasHuberMixes(t *testing.T) {
	c := newMirasCase(611, 11, 2, true)
	out := lt.RunOp(func(in []*Node) []*Node {
		_, _, loss := biasGradFactors(in[6:8], in[1], in[2], AttentionalBias{Kind: BiasHuber}, SliceAxis(in[10], 2, AxisRange(0, 11)), false)
		return []*Node{ReduceAllMean(ConvertDType(LessOrEqual(loss, Square(in[10])), loss.DType()))}
	}, c.inputs)
	if f := lt.Floats(out[0])[0]; f <= 0.1 || f >= 0.9 {
		t.Errorf("fraction of tokens inside the Huber threshold %v: want a mix", f)
	}
}

// Two tokens of a linear memory (L_M = 1, Dh = 2, B = H = 1, no momentum: eta = 0), exact recurrence
// (chunk 1), each objective with the l2 retention and each retention with the l2 objective:
//
//	A0 = [[0.5, 0], [0, 0.5]], theta = (0.5, 0.25), alpha = (0.1, 0.2), M(x) = x phi(A)
//	k1 = (1, 0), v1 = (1, 2), q1 = (1, 0);  k2 = (0, 1), v2 = (-1, 1), q2 = (0.6, 0.8)
//	A_t = (1 - alpha_t) A_{t-1} - theta_t k_t^T r_t,  r_t = dl/dM(k_t) at phi(A_{t-1}),  y_t = q_t phi(A_t)
//
// l2/l2 by hand: e1 = k1 A0 - v1 = (-0.5, -2), r1 = 2 e1 = (-1, -4), A1 = 0.9 A0 - 0.5 [[-1, -4], [0, 0]]
// = [[0.95, 2], [0, 0.45]], y1 = (0.95, 2); e2 = (0, 0.45) - (-1, 1) = (1, -0.55), r2 = (2, -1.1),
// A2 = 0.8 A1 - 0.25 [[0, 0], [2, -1.1]] = [[0.76, 1.6], [-0.5, 0.635]], y2 = (0.056, 1.468).
// lp (p = 3): r1 = 3 e1 |e1|_s = (-0.75, -12) (up to eps = 1e-6 in |e|_s), so A1 = [[0.825, 6], [0, 0.45]].
// huber (delta = 1): ||e1|| = 2.06 > 1, r1 = 2 e1 / |e1|_s = (-2, -2): A1 = [[1.45, 1], [0, 0.45]];
// ||e2|| = ||(1, -0.55)|| = 1.14 > 1 again: r2 = (2, -2), A2 = [[1.16, 0.8], [-0.5, 0.86]].
// elastic_net (l1 = 0.3): W0 = S(A0) = [[0.2, 0], [0, 0.2]], e1 = (-0.8, -2), A1 = [[1.25, 2], [0, 0.45]],
// y1 = q1 S(A1) = (0.95, 1.7); e2 = (0, 0.15) - (-1, 1) = (1, -0.85), A2 = [[1, 1.6], [-0.5, 0.785]].
// lq (q = 4) and kl are the same steps through W = A / ||A||_4^2 and W = sqrt(2) softmax_columns(A); their
// numbers (eps included everywhere) come from an independent float64 script of these equations.
func TestMirasTwoTokensByHand(t *testing.T) {
	cases := []struct {
		name      string
		bias      AttentionalBias
		retention Retention
		y, finalA []float64
	}{
		{"l2/l2", AttentionalBias{}, Retention{}, []float64{0.95, 2, 0.056, 1.468}, []float64{0.76, 1.6, -0.5, 0.635}},
		{"lp3/l2", AttentionalBias{Kind: BiasLp, P: 3}, Retention{},
			[]float64{0.82500074999925, 6.00000074999995, -0.203999940000285, 3.34950065999973},
			[]float64{0.6600005999994, 4.80000059999996, -0.750000374999906, 0.58687537499969}},
		{"huber1/l2", AttentionalBias{Kind: BiasHuber, Delta: 1}, Retention{},
			[]float64{1.449998000006, 0.999999875000024, 0.29599924000273, 1.16799927884463},
			[]float64{1.1599984000048, 0.799999900000019, -0.499999750000187, 0.859999173555768}},
		{"l2/lq4", AttentionalBias{}, Retention{Kind: RetentionLq, Q: 4},
			[]float64{0.00893657640881375, 0.499360349886421, -0.144346355591904, 0.604450242776294},
			[]float64{0.0286336755758726, 1.6, -0.5, 0.803821960637778}},
		{"l2/kl", AttentionalBias{}, Retention{Kind: RetentionKL},
			[]float64{0.903252768390394, 1.038326510103, 0.913434966974509, 0.955259260668238},
			[]float64{0.455767657430921, 1.1728614926706, -0.755480396991351, 0.672056473864953}},
		{"l2/elastic_net0.3", AttentionalBias{}, Retention{Kind: RetentionElasticNet, L1: 0.3},
			[]float64{0.95, 1.7, 0.26, 1.168}, []float64{1, 1.6, -0.5, 0.785}},
	}
	in := func(dims []int, v ...float64) *tensors.Tensor { return tensors.FromFlatDataAndDimensions(v, dims...) }
	seq, gate, mat := []int{1, 1, 2, 2}, []int{1, 1, 2}, []int{1, 1, 2, 2}
	inputs := []*tensors.Tensor{
		in(seq, 1, 0, 0.6, 0.8), in(seq, 1, 0, 0, 1), in(seq, 1, 2, -1, 1), // q, k, v
		in(gate, 0.5, 0.25), in(gate, 0, 0), in(gate, 0.1, 0.2), // theta, eta, alpha
		in(mat, 0.5, 0, 0, 0.5), in(mat, 0, 0, 0, 0), // A0, S0
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for name, op := range map[string]memOp{"chunked": Chunked, "naive": Naive} {
				cfg := OpConfig{ChunkSize: 1, Bias: tc.bias, Retention: tc.retention}
				out := lt.RunOp(func(in []*Node) []*Node {
					y, final := op(in[0], in[1], in[2], Gates{Theta: in[3], Eta: in[4], Alpha: in[5]}, State{W: in[6:7], S: in[7:8]}, cfg)
					return []*Node{y, final.W[0]}
				}, inputs)
				if e := lt.RelRMS(lt.Floats(out[0]), tc.y); !(e <= 1e-12) {
					t.Errorf("%s: y %v, want %v (rel RMS %.3g)", name, lt.Floats(out[0]), tc.y, e)
				}
				if e := lt.RelRMS(lt.Floats(out[1]), tc.finalA); !(e <= 1e-12) {
					t.Errorf("%s: final accumulator %v, want %v (rel RMS %.3g)", name, lt.Floats(out[1]), tc.finalA, e)
				}
			}
		})
	}
}
