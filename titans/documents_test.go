package titans

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/engramlx/engram/layers"
	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// docOp is a memory op over rows with document starts.
type docOp func(q, k, v *Node, gates Gates, st State, init []*Node, docStart *Node, cfg OpConfig) (*Node, State)

// withDocuments appends to c's inputs the initial weights [B, H, in, out] per layer and the document
// starts [B, T] (row b starts documents at starts[b]).
func (c *opCase) withDocuments(seed uint64, starts [][]int) {
	rng := lt.NewRand(seed)
	for _, d := range c.dims {
		c.inputs = append(c.inputs, lt.RandNormal(rng, 1/math.Sqrt(float64(d[0])), c.batch, c.heads, d[0], d[1]))
	}
	mask := make([]float64, c.batch*c.time)
	for b, row := range starts {
		for _, t := range row {
			mask[b*c.time+t] = 1
		}
	}
	c.inputs = append(c.inputs, tensors.FromFlatDataAndDimensions(mask, c.batch, c.time))
}

// docFn wraps a document op as an OpFn over withDocuments' layout: outputs y, final W..., S....
func (c *opCase) docFn(op docOp, cfg OpConfig) lt.OpFn {
	fast := len(c.dims)
	return func(in []*Node) []*Node {
		st := State{W: in[6 : 6+fast], S: in[6+fast : 6+2*fast]}
		init, docStart := in[6+2*fast:6+3*fast], in[6+3*fast]
		y, final := op(in[0], in[1], in[2], Gates{Theta: in[3], Eta: in[4], Alpha: in[5]}, st, init, docStart, cfg)
		return append(append([]*Node{y}, final.W...), final.S...)
	}
}

// ChunkedDocuments equals the token-by-token NaiveDocuments: outputs, final state and every gradient
// (incoming state and initial weights included), with starts mid-chunk, on the grid, at t = 0, on
// adjacent tokens, at the last token, and a segment boundary inside a grid chunk; T not a multiple of the
// chunk, chunk 1, a chunk longer than the row; the clamp; the Miras objectives and retentions.
func TestChunkedDocumentsEqualsNaive(t *testing.T) {
	starts := [][]int{{3, 4, 9, 21, 32, 36}, {0, 8, 14}}
	cases := []struct {
		name               string
		depth, time, chunk int
		cfg                OpConfig
	}{
		{"linear", 1, 37, 5, OpConfig{}},
		{"deep", 2, 37, 5, OpConfig{}},
		{"deep_clamp", 2, 37, 4, OpConfig{GradClamp: 0.5}},
		{"chunk1", 2, 37, 1, OpConfig{GradClamp: 1}}, // without the clamp the per-token recurrence diverges here
		{"chunk_longer_than_row", 2, 37, 64, OpConfig{}},
		{"chunk_8", 2, 37, 8, OpConfig{}},
		{"T_multiple_of_chunk", 2, 40, 5, OpConfig{GradClamp: 1}}, // the chunks from layers.SplitAxis
		{"moneta", 2, 37, 5, OpConfig{Bias: AttentionalBias{Kind: BiasLp, P: 3}, Retention: Retention{Kind: RetentionLq, Q: 4}}},
		{"yaad", 2, 37, 5, OpConfig{Bias: AttentionalBias{Kind: BiasHuber, Delta: 0.3}}},
		{"memora", 2, 37, 5, OpConfig{Retention: Retention{Kind: RetentionKL}}},
		{"elastic_net", 1, 37, 5, OpConfig{Retention: Retention{Kind: RetentionElasticNet, L1: 0.02}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newOpCase(uint64(700+tc.depth*10+tc.chunk), 2, 2, tc.time, 4, tc.depth, 2)
			c.withDocuments(71, starts)
			cfg := tc.cfg
			cfg.ChunkSize = tc.chunk
			worst := compareDocOps(t, c.docFn(ChunkedDocuments, cfg), c.docFn(NaiveDocuments, cfg), c, 1e-10)
			t.Logf("%s: chunked vs naive with document starts, worst rel RMS over outputs, state, gradients %.3g", tc.name, worst)
		})
	}
}

// compareDocOps is compareOps over withDocuments' inputs.
func compareDocOps(t *testing.T, fast, ref lt.OpFn, c *opCase, tol float64) float64 {
	t.Helper()
	outNames, inNames := c.names()
	inNames = inNames[:6+2*len(c.dims)]
	for l := range c.dims {
		inNames = append(inNames, fmt.Sprintf("init W%d", l))
	}
	inNames = append(inNames, "docStart")
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

// Without starts the document ops are the plain ones (the grid the call start anchors).
func TestDocumentOpsWithoutStarts(t *testing.T) {
	c := newOpCase(720, 2, 2, 13, 4, 2, 2)
	c.withDocuments(72, [][]int{{}, {}})
	cfg := OpConfig{ChunkSize: 4, GradClamp: 1}
	plain := func(op memOp) docOp {
		return func(q, k, v *Node, gates Gates, st State, _ []*Node, _ *Node, cfg OpConfig) (*Node, State) {
			return op(q, k, v, gates, st, cfg)
		}
	}
	compareDocOps(t, c.docFn(ChunkedDocuments, cfg), c.docFn(plain(Chunked), cfg), c, 1e-12)
	compareDocOps(t, c.docFn(NaiveDocuments, cfg), c.docFn(plain(Naive), cfg), c, 1e-12)
}

// Each document of a packed row computes what it computes alone (the op from the initial weights and
// zero momentum): outputs, and the final state of the last one.
func TestDocumentOpsPackedEqualsSeparate(t *testing.T) {
	lengths := []int{5, 17, 15}
	c := newOpCase(730, 1, 2, 37, 4, 2, 2)
	c.withDocuments(73, [][]int{{0, 5, 22}})
	cfg := OpConfig{ChunkSize: 8, GradClamp: 1}
	fast := len(c.dims)
	packed := lt.RunOp(c.docFn(ChunkedDocuments, cfg), c.inputs)
	from := 0
	for i, n := range lengths {
		alone := append([]*tensors.Tensor(nil), c.inputs[:6]...)
		for j := range alone {
			alone[j] = lt.SliceTime(transposeHT(alone[j]), from, from+n)
			alone[j] = transposeHT(alone[j])
		}
		alone = append(alone, c.inputs[6+2*fast:6+3*fast]...) // W = the initial weights
		for _, w := range c.inputs[6+2*fast : 6+3*fast] {
			alone = append(alone, tensors.FromShape(w.Shape())) // S = 0
		}
		out := lt.RunOp(c.fn(Chunked, cfg), alone)
		got := transposeHT(lt.SliceTime(transposeHT(packed[0]), from, from+n))
		lt.AssertClose(t, fmt.Sprintf("document %d outputs", i), got, out[0], 1e-12)
		if i == len(lengths)-1 {
			for j := 1; j < len(out); j++ {
				lt.AssertClose(t, fmt.Sprintf("document %d final state %d", i, j), packed[j], out[j], 1e-12)
			}
		}
		from += n
	}
}

// transposeHT swaps axes 1 and 2 of [B, H, T, ...] (so that time is axis 1 for layertest's SliceTime).
func transposeHT(x *tensors.Tensor) *tensors.Tensor {
	return lt.RunOp(func(in []*Node) []*Node { return []*Node{TransposeAllAxes(in[0], transposeAxes(in[0].Rank())...)} }, []*tensors.Tensor{x})[0]
}

func transposeAxes(rank int) []int {
	axes := make([]int, rank)
	for i := range axes {
		axes[i] = i
	}
	axes[1], axes[2] = 2, 1
	return axes
}

// Finite differences of the naive document op: its gradients (through the resets and the per-segment
// weights) are the reference the chunked op is held to.
func TestDocumentsGradCheck(t *testing.T) {
	c := newOpCase(740, 1, 2, 9, 3, 2, 2)
	c.withDocuments(74, [][]int{{2, 7}})
	cfg := OpConfig{ChunkSize: 3, GradClamp: 0.5}
	fast := len(c.dims)
	lt.GradCheck(t, c.docFn(NaiveDocuments, cfg), c.inputs, []int{1, 2, 3, 4, 5, 6, 6 + 2*fast, 6 + 2*fast + 1}, 3, 1e-6)
}

// documentLayers are the mixers of the layer-level document tests: the Titans memory and the Miras models
// (chunks of 4, conv kernel 3), fast and token-by-token.
func documentLayers(t *testing.T) map[string][2]*lt.MixerCase {
	out := map[string][2]*lt.MixerCase{}
	add := func(name string, m layers.Mixer) {
		fast := lt.NewMixerCase(m, 2, testDModel, 5)
		out[name] = [2]*lt.MixerCase{fast, {Mixer: Reference(m), Batch: 2, DModel: testDModel, Store: fast.Store}}
	}
	m, err := New(testConfig(VariantLMM), testDModel)
	if err != nil {
		t.Fatal(err)
	}
	add("titans_lmm", m)
	for _, name := range mirasNames {
		add(name, mirasMixer(t, name, nil))
	}
	return out
}

// A packed row computes what its documents compute alone (outputs and final states, conv caches
// included), in the chunked and the token-by-token layer, from the state a prefix left.
func TestLayerPackedEqualsSeparate(t *testing.T) {
	for name, pair := range documentLayers(t) {
		for i, c := range pair {
			worst := lt.PackedEqualsSeparate(t, c, []int{3, 9, 1, 14}, 6, nil, 1e-10)
			t.Logf("%s (%s): packed == separate, worst rel RMS %.2g", name, []string{"chunked", "naive"}[i], worst)
		}
	}
}

// The chunked layer equals the token-by-token one on rows with different starts (one mid-chunk with a
// segment boundary inside a later chunk, one at t = 0 and on the grid), from a prefix's state.
func TestLayerDocumentsFastVsReference(t *testing.T) {
	starts := tensors.FromFlatDataAndDimensions(func() []float64 {
		mask := make([]float64, 2*19)
		for _, t := range []int{2, 3, 10} {
			mask[t] = 1
		}
		for _, t := range []int{0, 4, 8} {
			mask[19+t] = 1
		}
		return mask
	}(), 2, 19)
	for name, pair := range documentLayers(t) {
		fast, ref := pair[0], pair[1]
		_, state := fast.Run(fast.RandomInput(3, 6), nil)
		x := fast.RandomInput(4, 19)
		yFast, nextFast := fast.RunDocuments(x, state, starts)
		yRef, nextRef := ref.RunDocuments(x, state, starts)
		worst := lt.AssertClose(t, name+" outputs", yFast, yRef, 1e-10)
		for j, spec := range fast.Specs() {
			worst = math.Max(worst, lt.AssertClose(t, name+" state "+spec.Name, nextFast[j], nextRef[j], 1e-10))
		}
		t.Logf("%s: chunked vs naive layer with document starts, worst rel RMS %.2g", name, worst)
	}
}

// MAG and MAL without persistent tokens (with them: TestMAGMALPersistentTokensNoLeak): packed == separate
// for the memory and the attention outputs and the memory state (the window caches are layers.Attention's row caches, not compared), chunked and
// token-by-token memory.
func TestMAGMALPackedEqualsSeparate(t *testing.T) {
	skip := func(s string) bool { return strings.HasPrefix(s, "attention/") }
	for _, variant := range []string{VariantMAG, VariantMAL} {
		cfg := testConfig(variant)
		cfg.PersistentTokens = 0
		fast, ref := mixerPair(t, cfg)
		for i, c := range []*lt.MixerCase{fast, ref} {
			worst := lt.PackedEqualsSeparate(t, c, []int{3, 9, 1, 14}, 6, skip, 1e-10)
			t.Logf("%s (%s): packed == separate, worst rel RMS %.2g", variant, []string{"chunked", "naive"}[i], worst)
		}
	}
}

// With persistent tokens (keys without RoPE, seen by every query) packed == separate holds too, because
// layers.Attention restarts the queries' RoPE positions at each document start: outputs and memory
// state, chunked memory. And nothing of an earlier document's content reaches a later one: changing the
// earlier document's tokens leaves the later document's outputs bit-identical.
func TestMAGMALPersistentTokensNoLeak(t *testing.T) {
	skip := func(s string) bool { return strings.HasPrefix(s, "attention/") }
	for _, variant := range []string{VariantMAG, VariantMAL} {
		fast, _ := mixerPair(t, testConfig(variant)) // PersistentTokens 2
		worst := lt.PackedEqualsSeparate(t, fast, []int{3, 9, 1, 14}, 6, skip, 1e-10)
		t.Logf("%s with persistent tokens: packed == separate, worst rel RMS %.2g", variant, worst)

		starts := lt.DocumentStarts(2, []int{7, 12})
		x := fast.RandomInput(8, 19)
		other := lt.ConcatTime(fast.RandomInput(9, 7), lt.SliceTime(x, 7, 19))
		y1, _ := fast.RunDocuments(x, nil, starts)
		y2, _ := fast.RunDocuments(other, nil, starts)
		lt.AssertClose(t, variant+" second document after different first documents", lt.SliceTime(y2, 7, 19), lt.SliceTime(y1, 7, 19), 0)
	}
}

// tpDocCase is newTPCase with per-token gates (the pooled gates of the chunk ending at each token) and
// document starts appended after the base weights.
func tpDocCase(seed uint64, time, chunk int, starts [][]int) *opCase {
	c := newTPCase(seed, 2, 2, time, 4, 2, 2, chunk)
	rng := lt.NewRand(seed + 2000)
	c.inputs[4] = lt.RandUniform(rng, 0.5, 0.99, 2, 2, time)
	c.inputs[5] = lt.RandUniform(rng, 0.01, 0.2, 2, 2, time)
	mask := make([]float64, 2*time)
	for b, row := range starts {
		for _, t := range row {
			mask[b*time+t] = 1
		}
	}
	c.inputs = append(c.inputs, tensors.FromFlatDataAndDimensions(mask, 2, time))
	return c
}

type tpDocOp func(q, k, v *Node, gates Gates, st State, base []*Node, docStart *Node, cfg PyTorchConfig) (*Node, State)

func (c *opCase) tpDocFn(op tpDocOp, cfg PyTorchConfig) lt.OpFn {
	fast := len(c.dims)
	return func(in []*Node) []*Node {
		st := State{W: in[6 : 6+fast], S: in[6+fast : 6+2*fast]}
		gates := Gates{Theta: in[3], Eta: in[4], Alpha: in[5]}
		y, final := op(in[0], in[1], in[2], gates, st, in[6+2*fast:6+3*fast], in[6+3*fast], cfg)
		return append(append([]*Node{y}, final.W...), final.S...)
	}
}

// The tp document op equals its token-by-token reference (outputs, final state, every gradient), with
// writes whose chunk begins in the previous grid chunk, a document starting on a chunk's first token and
// writing at its last, chunk 1 and a chunk longer than the row.
func TestTPDocumentsChunkedEqualsNaive(t *testing.T) {
	starts := [][]int{{2, 3, 9, 21}, {0, 8, 13}}
	for _, tc := range []struct{ chunk, ttt int }{{1, 0}, {4, 0}, {30, 0}, {2, 4}, {3, 3}} {
		t.Run(fmt.Sprintf("C%d_ttt%d", tc.chunk, tc.ttt), func(t *testing.T) {
			c := tpDocCase(uint64(800+tc.chunk+10*tc.ttt), 27, tc.chunk, starts)
			cfg := PyTorchConfig{ChunkSize: tc.chunk, TTTBatch: tc.ttt, NormEps: tpLayerNormEps, GradClamp: 2}
			worst := compareDocOps(t, c.tpDocFn(ChunkedPyTorchDocuments, cfg), c.tpDocFn(NaivePyTorchDocuments, cfg), c, 1e-10)
			t.Logf("tp C=%d ttt=%d: chunked vs naive with document starts, worst rel RMS %.3g", tc.chunk, tc.ttt, worst)
		})
	}
}

// Every variant in the tp mode (no persistent tokens; chunks of 2; gradients at the initial weights or
// at the start of TTT batches of 4): packed == separate, fast and token-by-token memory.
func TestTPPackedEqualsSeparate(t *testing.T) {
	skip := func(s string) bool { return strings.HasPrefix(s, "attention/") }
	for _, mode := range []string{ModeTP, modeTPBatched} {
		for _, variant := range []string{VariantLMM, VariantMAG, VariantMAL} {
			cfg := configFor(variant, mode)
			cfg.PersistentTokens = 0
			fast, ref := mixerPair(t, cfg)
			for i, c := range []*lt.MixerCase{fast, ref} {
				worst := lt.PackedEqualsSeparate(t, c, []int{3, 9, 1, 14}, 5, skip, 1e-10)
				t.Logf("%s %s (%s): packed == separate, worst rel RMS %.2g", mode, variant, []string{"chunked", "naive"}[i], worst)
			}
		}
	}
}

// Settings documents cannot support are refused at graph build with the field and value: a carried
// partial chunk (LMM, MAC) and, for MAC, TTT batches that do not divide its segment.
func TestDocumentsRefused(t *testing.T) {
	carry := testConfig(VariantLMM)
	carry.CarryPartialChunk = true
	// MAC also refuses TTT batches that do not divide its segment (it cuts them at every segment).
	carryMAC := testConfig(VariantMAC)
	carryMAC.CarryPartialChunk = true
	ttt := configFor(VariantMAC, ModeTP)
	ttt.TTTBatchSize, ttt.SegmentSize = 4, 6
	for _, tc := range []struct {
		cfg  Config
		want string
	}{{carry, "carry_partial_chunk = true"}, {carryMAC, "carry_partial_chunk = true"}, {ttt, "ttt_batch_size = 4"}} {
		m, err := New(tc.cfg, testDModel)
		if err != nil {
			t.Fatal(err)
		}
		c := lt.NewMixerCase(m, 2, testDModel, 5)
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), tc.want) {
					t.Errorf("want a panic naming %q, got %v", tc.want, r)
				}
			}()
			c.RunDocuments(c.RandomInput(1, 6), nil, lt.DocumentStarts(2, []int{2, 4}))
		}()
	}
}

// packedMixer applies a document mixer to rows that start a document every `every` tokens (from t = 0),
// the starts a constant of the graph, so that layertest's runners time ApplyDocuments.
type packedMixer struct {
	layers.DocumentMixer
	every int
}

func (p packedMixer) Apply(scope *model.Scope, x *Node, state []*Node) (*Node, []*Node) {
	dims := x.Shape().Dimensions
	mask := make([]float64, dims[0]*dims[1])
	for b := range dims[0] {
		for t := 0; t < dims[1]; t += p.every {
			mask[b*dims[1]+t] = 1
		}
	}
	docStart := ConvertDType(Const(x.Graph(), tensors.FromFlatDataAndDimensions(mask, dims[0], dims[1])), x.DType())
	return p.ApplyDocuments(scope, x, state, docStart)
}

// BenchmarkLMMDocuments is the paper-mode LMM (B = 8, H = 4, Dh = 32, chunks of 64, float32) over rows
// of T = 256 without starts (Apply) and packing documents of 100 tokens (starts mid-chunk, the grid
// restarting at each), forward and forward + backward, in tokens/s: the price of the exact resets.
//
//	GOEXPERIMENT=simd go test ./titans/ -run '^$' -bench LMMDocuments -benchtime 3x
func BenchmarkLMMDocuments(b *testing.B) {
	const batch, time = 8, 256
	cfg := DefaultConfig()
	cfg.Heads, cfg.HeadDim, cfg.ChunkSize = 4, 32, 64
	for _, backward := range []bool{false, true} {
		for _, packed := range []bool{false, true} {
			name := fmt.Sprintf("fwd/packed=%v", packed)
			if backward {
				name = fmt.Sprintf("fwdbwd/packed=%v", packed)
			}
			b.Run(name, func(b *testing.B) {
				lmm, err := NewLMM(cfg, cfg.Heads*cfg.HeadDim)
				if err != nil {
					b.Fatal(err)
				}
				var mixer layers.Mixer = lmm
				if packed {
					mixer = packedMixer{DocumentMixer: lmm, every: 100}
				}
				run := lt.CachedRunner("titans-docs/"+name, func() lt.Runner {
					return lt.MixerRunner(mixer, batch, time, lmm.DModel, backward)
				})
				b.ResetTimer()
				for range b.N {
					run()
				}
				b.ReportMetric(float64(batch*time*b.N)/b.Elapsed().Seconds(), "tokens/s")
			})
		}
	}
}
