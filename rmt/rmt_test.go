package rmt_test

import (
	"testing"

	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/model"
	"github.com/engramlx/engram/rmt"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

const vocab = 12

// tinyCase is a float64 two-layer attention backbone wrapped with cfg, and a seeded store.
func tinyCase(t *testing.T, cfg rmt.Config) (*rmt.RMT, *model.Model, *mlmodel.Store) {
	return tinyBackbone(t, cfg, "attention")
}

// tinyBackbone is a float64 two-layer backbone of mixer type layer wrapped with cfg, and a seeded store.
func tinyBackbone(t *testing.T, cfg rmt.Config, layer string) (*rmt.RMT, *model.Model, *mlmodel.Store) {
	t.Helper()
	mc := model.DefaultConfig()
	mc.Vocab, mc.DModel, mc.DType, mc.MLPHidden, mc.Layers = vocab, 8, "float64", 16, model.LayerTypes(layer, layer)
	mc.Attention.Heads, mc.Attention.MaxContext = 2, 64
	mc.DeltaNet.Heads, mc.DeltaNet.HeadDimK, mc.DeltaNet.ChunkSize = 2, 4, 4
	mc.Titans.Heads, mc.Titans.HeadDim, mc.Titans.ChunkSize = 2, 4, 4
	m, err := model.New(mc)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Enabled = true
	r, err := rmt.New(cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	store := mlmodel.NewStore()
	store.SetParam(mlmodel.ParamInitialSeed, int64(7))
	return r, m, store
}

// randomIDs returns ids [batch, time] drawn from the vocabulary.
func randomIDs(seed uint64, batch, time int) *tensors.Tensor {
	rng := lt.NewRand(seed)
	ids := make([]int32, batch*time)
	for i := range ids {
		ids[i] = int32(rng.IntN(vocab))
	}
	return tensors.FromFlatDataAndDimensions(ids, batch, time)
}

// run executes fn on the store's variables.
func run(store *mlmodel.Store, fn func(scope *mlmodel.Scope, in []*Node) []*Node, args ...any) []*tensors.Tensor {
	exec := mlmodel.MustNewExec(lt.Backend(), store, fn)
	defer exec.Finalize()
	return exec.MustCall(args...)
}

// Memory size 0 is the backbone applied to each segment on its own (from its zero state), and it is not
// the backbone over the whole row.
func TestMemoryZeroIsIndependentSegments(t *testing.T) {
	r, m, store := tinyCase(t, rmt.Config{MemorySize: 0, SegmentLen: 5})
	const time = 13 // segments of 5, 5 and 3
	outs := run(store, func(scope *mlmodel.Scope, in []*Node) []*Node {
		var parts []*Node
		for from := 0; from < time; from += 5 {
			h, _ := m.Hidden(scope.ResetVisited(), Slice(in[0], AxisRange(), AxisRange(from, min(from+5, time))), nil)
			parts = append(parts, h)
		}
		whole, _ := m.Hidden(scope.ResetVisited(), in[0], nil)
		hidden, _ := r.Hidden(scope.ResetVisited(), in[0], nil)
		return []*Node{hidden, Concatenate(parts, 1), whole}
	}, randomIDs(1, 2, time))
	lt.AssertClose(t, "m=0 vs independent segments", outs[0], outs[1], 1e-14)
	if e := lt.RelRMS(lt.Floats(outs[0]), lt.Floats(outs[2])); e < 1e-3 {
		t.Errorf("m=0 output equals the whole-row backbone (rel RMS %g): segments are not cut", e)
	}
}

// streamSegments runs seq over ids one call per segment of seg tokens through the model.Sequence
// interface (the state from InitialState, then carried), and returns every call's hidden states and the
// final state.
func streamSegments(t *testing.T, seq model.Sequence, store *mlmodel.Store, ids *tensors.Tensor, seg int) ([]*tensors.Tensor, []*tensors.Tensor) {
	t.Helper()
	batch, time := ids.Shape().Dimensions[0], ids.Shape().Dimensions[1]
	initial := mlmodel.MustNewExec(lt.Backend(), store, func(scope *mlmodel.Scope, g *Graph) []*Node {
		return seq.InitialState(scope, g, batch)
	})
	defer initial.Finalize()
	state := initial.MustCall()
	step := mlmodel.MustNewExec(lt.Backend(), store, func(scope *mlmodel.Scope, in []*Node) []*Node {
		hidden, next := seq.Hidden(scope, in[0], in[1:])
		return append([]*Node{hidden}, next...)
	})
	defer step.Finalize()
	var parts []*tensors.Tensor
	for from := 0; from < time; from += seg {
		args := []any{sliceIDs(ids, from, min(from+seg, time))}
		for _, s := range state {
			args = append(args, s)
		}
		outs := step.MustCall(args...)
		parts, state = append(parts, outs[0]), outs[1:]
	}
	return parts, state
}

// K segments unrolled in one graph (one Hidden call) equal K calls of one segment each with the state
// carried, through the model.Sequence interface: outputs and the carried state, for attention, gated
// DeltaNet (with and without carrying its state) and Titans LMM backbones, with a shorter last segment
// and the read-only variant.
func TestUnrolledEqualsStreamed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		layer    string
		readOnly bool
		carry    bool
		time     int
	}{
		{"attention/read_write", "attention", false, false, 24},
		{"attention/read_write_short_last", "attention", false, false, 22},
		{"attention/read_only", "attention", true, false, 24},
		{"gated_deltanet/read_write", "gated_deltanet", false, false, 22},
		{"gated_deltanet/carry_state", "gated_deltanet", false, true, 22},
		{"titans_lmm/read_write", "titans_lmm", false, false, 22},
		{"titans_lmm/carry_state", "titans_lmm", false, true, 22},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _, store := tinyBackbone(t, rmt.Config{MemorySize: 3, SegmentLen: 6, ReadOnly: tc.readOnly, CarryState: tc.carry}, tc.layer)
			ids := randomIDs(2, 2, tc.time)
			unrolled := run(store, func(scope *mlmodel.Scope, in []*Node) []*Node {
				hidden, next := r.Hidden(scope, in[0], nil)
				return append([]*Node{hidden}, next...)
			}, ids)
			if want := len(r.StateSpecs(2)); len(unrolled)-1 != want {
				t.Fatalf("Hidden returned %d state tensors, StateSpecs names %d", len(unrolled)-1, want)
			}
			parts, state := streamSegments(t, r, store, ids, 6)
			e := lt.AssertClose(t, "unrolled vs streamed outputs", unrolled[0], lt.ConcatTime(parts...), 1e-10)
			for i, s := range state {
				e = max(e, lt.AssertClose(t, "unrolled vs streamed state "+r.StateSpecs(2)[i].Name, unrolled[1+i], s, 1e-10))
			}
			t.Logf("%s: worst rel RMS %.3g over %d segments and %d state tensors", tc.name, e, len(parts), len(state))
			// The carried state matters: the second segment from the initial state differs.
			fresh, _ := streamSegments(t, r, store, sliceIDs(ids, 6, 12), 6)
			if d := lt.RelRMS(lt.Floats(fresh[0]), lt.Floats(parts[1])); d < 1e-3 {
				t.Errorf("segment 2 from the initial state equals the carried one (rel RMS %g): nothing is carried", d)
			}
		})
	}
}

// Carrying the backbone's state changes what a segment computes (the memory is then not the only path
// between segments), and the state holds the memory first, then the backbone's state.
func TestCarryStateCarriesTheBackbone(t *testing.T) {
	ids := randomIDs(5, 2, 12)
	var hidden [2]*tensors.Tensor
	for i, carry := range []bool{false, true} {
		r, m, store := tinyBackbone(t, rmt.Config{MemorySize: 2, SegmentLen: 6, CarryState: carry}, "gated_deltanet")
		specs := r.StateSpecs(2)
		want := 1
		if carry {
			want += len(m.StateSpecs(2))
		}
		if len(specs) != want || specs[0].Name != "rmt/memory" {
			t.Fatalf("carry %v: state %v, want rmt/memory then %d backbone tensors", carry, specs, want-1)
		}
		hidden[i] = run(store, func(scope *mlmodel.Scope, in []*Node) []*Node {
			h, _ := r.Hidden(scope, in[0], nil)
			return []*Node{h}
		}, ids)[0]
	}
	first, second := lt.Floats(hidden[0]), lt.Floats(hidden[1])
	if d := lt.RelRMS(second, first); d < 1e-3 {
		t.Errorf("carry_state made no difference to the outputs (rel RMS %g)", d)
	}
}

// sliceIDs returns ids[:, from:to] of an int32 [batch, time] tensor.
func sliceIDs(ids *tensors.Tensor, from, to int) *tensors.Tensor {
	dims := ids.Shape().Dimensions
	flat := tensors.MustCopyFlatData[int32](ids)
	out := make([]int32, 0, dims[0]*(to-from))
	for b := 0; b < dims[0]; b++ {
		out = append(out, flat[b*dims[1]+from:b*dims[1]+to]...)
	}
	return tensors.FromFlatDataAndDimensions(out, dims[0], to-from)
}

// segmentGradients returns max |d loss_last / d E_i| for each segment i, where loss_last is a random
// projection of the last segment's hidden states and E_i segment i's input embeddings.
func segmentGradients(t *testing.T, cfg rmt.Config, segments int) []float64 {
	t.Helper()
	r, m, store := tinyCase(t, cfg)
	seg := cfg.SegmentLen
	upstream := lt.RandNormal(lt.NewRand(3), 1, 2, seg, m.Config.DModel)
	outs := run(store, func(scope *mlmodel.Scope, in []*Node) []*Node {
		embeds := r.Split(m.Embed(scope.ResetVisited(), in[0]))
		hidden, _, _ := r.Unroll(scope, embeds, nil, nil)
		loss := ReduceAllSum(Mul(hidden[len(hidden)-1], in[1]))
		var maxAbs []*Node
		for _, g := range Gradient(loss, embeds...) {
			maxAbs = append(maxAbs, ReduceAllMax(Abs(g)))
		}
		return maxAbs
	}, randomIDs(4, 2, segments*seg), upstream)
	grads := make([]float64, len(outs))
	for i, o := range outs {
		grads[i] = lt.Floats(o)[0]
	}
	return grads
}

// With bptt_depth = d the last segment's loss has exactly zero gradient for segments i < K - d and a
// non-zero one for the others; d = 0 reaches every segment.
func TestBPTTDepthTruncates(t *testing.T) {
	const k = 4
	for _, depth := range []int{0, 1, 2, 3, 4} {
		grads := segmentGradients(t, rmt.Config{MemorySize: 2, SegmentLen: 3, BPTTDepth: depth}, k)
		for i, g := range grads {
			cut := depth > 0 && i < k-depth
			if cut && g != 0 {
				t.Errorf("bptt_depth=%d: segment %d gradient max|g| = %g, want exactly 0", depth, i, g)
			}
			if !cut && !(g > 1e-8) {
				t.Errorf("bptt_depth=%d: segment %d gradient max|g| = %g, want > 0", depth, i, g)
			}
		}
		t.Logf("bptt_depth=%d: max|dL_last/dE_i| = %.3g", depth, grads)
	}
}

// A read-only memory is refreshed from positions that, under causal attention, see only the memory:
// no gradient reaches earlier segments even with full BPTT (what the paper's ablation lacks).
func TestReadOnlyCarriesNoSegmentContent(t *testing.T) {
	const k = 3
	grads := segmentGradients(t, rmt.Config{MemorySize: 2, SegmentLen: 3, ReadOnly: true}, k)
	for i, g := range grads {
		if (i < k-1) != (g == 0) {
			t.Errorf("read-only: segment %d gradient max|g| = %g; want 0 exactly for earlier segments, > 0 for the last", i, g)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  rmt.Config
		want string
	}{
		{rmt.Config{Enabled: true, MemorySize: -1, SegmentLen: 4}, "rmt.memory_size = -1: must be >= 0"},
		{rmt.Config{Enabled: true, MemorySize: 2, SegmentLen: 0}, "rmt.segment_len = 0: must be >= 1"},
		{rmt.Config{Enabled: true, MemorySize: 2, SegmentLen: 4, BPTTDepth: -2}, "rmt.bptt_depth = -2: must be >= 0 (0 = through every segment)"},
		{rmt.Config{Enabled: true, SegmentLen: 4, ReadOnly: true}, "rmt.read_only = true with rmt.memory_size = 0: a read-only memory needs memory_size >= 1"},
		{rmt.Config{Enabled: false, SegmentLen: -5}, ""},
	} {
		err := tc.cfg.Validate()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.cfg, got, tc.want)
		}
	}
}
