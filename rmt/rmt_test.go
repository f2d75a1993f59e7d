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
	t.Helper()
	mc := model.DefaultConfig()
	mc.Vocab, mc.DModel, mc.DType, mc.MLPHidden = vocab, 8, "float64", 16
	mc.Attention.Heads, mc.Attention.MaxContext = 2, 64
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
		return []*Node{r.Hidden(scope.ResetVisited(), in[0]), Concatenate(parts, 1), whole}
	}, randomIDs(1, 2, time))
	lt.AssertClose(t, "m=0 vs independent segments", outs[0], outs[1], 1e-14)
	if e := lt.RelRMS(lt.Floats(outs[0]), lt.Floats(outs[2])); e < 1e-3 {
		t.Errorf("m=0 output equals the whole-row backbone (rel RMS %g): segments are not cut", e)
	}
}

// K segments unrolled in one graph equal K executions of the compiled segment step with the memory
// carried, for both variants, with a shorter last segment too.
func TestUnrolledEqualsStreamed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		readOnly bool
		time     int
	}{{"read_write", false, 24}, {"read_write_short_last", false, 22}, {"read_only", true, 24}} {
		t.Run(tc.name, func(t *testing.T) {
			r, _, store := tinyCase(t, rmt.Config{MemorySize: 3, SegmentLen: 6, ReadOnly: tc.readOnly})
			ids := randomIDs(2, 2, tc.time)
			unrolled := run(store, func(scope *mlmodel.Scope, in []*Node) []*Node {
				return []*Node{r.Hidden(scope, in[0])}
			}, ids)[0]
			stream, err := rmt.NewStream(lt.Backend(), store, r, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer stream.Finalize()
			var parts []*tensors.Tensor
			for from := 0; from < tc.time; from += 6 {
				out, err := stream.Next(sliceIDs(ids, from, min(from+6, tc.time)))
				if err != nil {
					t.Fatal(err)
				}
				parts = append(parts, out)
			}
			e := lt.AssertClose(t, "unrolled vs streamed", unrolled, lt.ConcatTime(parts...), 1e-10)
			t.Logf("%s: rel RMS %.3g over %d segments", tc.name, e, len(parts))
			// The carried memory matters: the second segment from the learned initial memory differs.
			stream.Reset()
			fresh, err := stream.Next(sliceIDs(ids, 6, 12))
			if err != nil {
				t.Fatal(err)
			}
			if d := lt.RelRMS(lt.Floats(fresh), lt.Floats(parts[1])); d < 1e-3 {
				t.Errorf("segment 2 with a reset memory equals the carried one (rel RMS %g): no memory is carried", d)
			}
		})
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
		hidden, _ := r.Unroll(scope, embeds, nil)
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
