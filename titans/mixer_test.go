package titans

import (
	"fmt"
	"strings"
	"testing"

	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

const testDModel = 8

func testConfig(variant string) Config {
	cfg := DefaultConfig()
	cfg.Variant = variant
	cfg.Heads, cfg.HeadDim = 2, 4
	cfg.MemoryDepth, cfg.MemoryExpansion = 2, 2
	cfg.ChunkSize, cfg.ConvKernel = 4, 3
	cfg.MaxLR, cfg.GradClamp = 0.5, 5
	cfg.PersistentTokens, cfg.Window, cfg.SegmentSize = 2, 5, 8
	return cfg
}

func mixerPair(t *testing.T, cfg Config) (fast, ref *lt.MixerCase) {
	t.Helper()
	m, err := New(cfg, testDModel)
	if err != nil {
		t.Fatal(err)
	}
	fast = lt.NewMixerCase(m, 2, testDModel, 5)
	ref = &lt.MixerCase{Mixer: Reference(m), Batch: 2, DModel: testDModel, Store: fast.Store}
	return fast, ref
}

var variants = []string{VariantLMM, VariantMAC, VariantMAG, VariantMAL}

// configFor returns the test configuration of a variant in a mode; in tp mode chunks of 2, so that a
// call of 11 tokens has a short last chunk, with gradients at the learned initial weights (mode "tp",
// titans-pytorch's batch_size None) or at the start of TTT batches of 4 tokens (mode "tp/ttt4", several
// batches per call).
func configFor(variant, mode string) Config {
	cfg := testConfig(variant)
	switch mode {
	case ModeTP:
		cfg.Mode, cfg.ChunkSize, cfg.TTTBatchSize = ModeTP, 2, 0
	case modeTPBatched:
		cfg.Mode, cfg.ChunkSize, cfg.TTTBatchSize = ModeTP, 2, 4
	}
	return cfg
}

const modeTPBatched = "tp/ttt4"

var modes = []string{ModePaper, ModeTP, modeTPBatched}

// Every variant in both modes: the chunked memory equals the token-by-token reference inside the full
// layer (outputs, final state, gradients of x, of the initial state and of every variable), from a
// carried state, at a length that is not a multiple of the chunk, the TTT batch or the segment.
func TestMixerChunkedEqualsReference(t *testing.T) {
	for _, mode := range modes {
		for _, variant := range variants {
			t.Run(mode+"/"+variant, func(t *testing.T) {
				fast, ref := mixerPair(t, configFor(variant, mode))
				lt.MixerFastVsReference(t, fast, ref, 11, 8, 1e-10)
			})
		}
	}
}

// One call equals chained calls with the state carried (cuts at multiples of the chunk, of the TTT
// batch in tp mode, and of the segment for MAC, since all of them start at each call), and appending
// tokens does not change earlier outputs (in tp mode although a partial last chunk's pooled gates change).
func TestMixerChainedAndCausal(t *testing.T) {
	for _, mode := range modes {
		for _, variant := range variants {
			t.Run(mode+"/"+variant, func(t *testing.T) {
				fast, _ := mixerPair(t, configFor(variant, mode))
				splits := []int{4, 12}
				if variant == VariantMAC {
					splits = []int{8}
				}
				lt.ChainedEqualsSingle(t, fast, 19, splits, 1e-12)
				lt.Causal(t, fast, 9, 5, 1e-12)
			})
		}
	}
}

// With chunk size 1 any cut works; a single token equals the first step of a longer call.
func TestMixerChunkOneChained(t *testing.T) {
	cfg := testConfig(VariantLMM)
	cfg.ChunkSize = 1
	fast, _ := mixerPair(t, cfg)
	lt.ChainedEqualsSingle(t, fast, 7, []int{1, 2, 5}, 1e-12)
}

func TestMixerStateSpecsAndNames(t *testing.T) {
	want := map[string]string{
		VariantLMM: "q_conv k_conv v_conv w0 w1 s0 s1",
		VariantMAC: "q_conv k_conv v_conv w0 w1 s0 s1",
		VariantMAG: "memory/q_conv memory/k_conv memory/v_conv memory/w0 memory/w1 memory/s0 memory/s1 attention/k attention/v attention/position",
	}
	for variant, names := range want {
		m, err := New(testConfig(variant), testDModel)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range m.StateSpecs(3, dtypes.Float32) {
			got = append(got, s.Name)
		}
		if strings.Join(got, " ") != names {
			t.Errorf("%s state names %v, want %s", variant, got, names)
		}
		if _, ok := m.(Introspector); !ok {
			t.Errorf("%s does not implement Introspector", variant)
		}
	}
	if s := (&LMM{Config: testConfig(VariantLMM), DModel: 8}).StateSpecs(3, dtypes.Float32); fmt.Sprint(s[3].Shape.Dimensions) != "[3 2 4 8]" {
		t.Errorf("w0 shape %s, want [3 2 4 8] (batch, heads, Dh, 2 Dh)", s[3].Shape)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	bad := map[string]func(*Config){
		"variant":      func(c *Config) { c.Variant = "mat" },
		"memory_depth": func(c *Config) { c.MemoryDepth = 0 },
		"max_lr":       func(c *Config) { c.MaxLR = 0 },
		"grad_clamp":   func(c *Config) { c.GradClamp = -1 },
		"segment_size": func(c *Config) { c.Variant, c.SegmentSize = VariantMAC, 20 },
		"window":       func(c *Config) { c.Variant, c.Window = VariantMAG, 1 },
	}
	for field, mutate := range bad {
		cfg := DefaultConfig()
		mutate(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got error %v, want one naming the field", field, err)
		}
	}
	if _, err := New(DefaultConfig(), 0); err == nil {
		t.Error("d_model 0 accepted")
	}
}

// Float32 stability: 2,048 tokens of random input streamed through the layer in 16 calls of 128 with
// the state carried, default settings and chunks of 16 (the default) and 64: outputs, state and
// introspection stay finite. (With grad_clamp 0 and max_lr 0.1, one call of 1,024 tokens with chunks of
// 64 at H = 4, Dh = 32 diverged to NaN; the defaults clamp the inner gradient.)
func TestFloat32Stability(t *testing.T) {
	for _, chunk := range []int{16, 64} {
		t.Run(fmt.Sprintf("chunk%d", chunk), func(t *testing.T) { float32Stability(t, chunk) })
	}
}

func float32Stability(t *testing.T, chunk int) {
	cfg := DefaultConfig()
	cfg.Heads, cfg.HeadDim, cfg.ChunkSize = 2, 16, chunk
	m, err := NewLMM(cfg, 32)
	if err != nil {
		t.Fatal(err)
	}
	store := model.NewStore()
	store.SetParam(model.ParamInitialSeed, int64(9))
	exec := model.MustNewExec(lt.Backend(), store, func(_ *model.Scope, in []*Node) []*Node {
		var st []*Node
		if len(in) > 1 {
			st = in[1:]
		}
		y, next, stats := m.ApplyWithStats(store.RootScope().In("lmm"), in[0], st)
		_, metrics := stats.Metrics()
		return append(append([]*Node{y}, metrics...), next...)
	})
	defer exec.Finalize()
	rng := lt.NewRand(17)
	var state []*tensors.Tensor
	numMetrics := 5 + cfg.MemoryDepth
	for call := 0; call < 16; call++ {
		x := lt.Floats(lt.RandNormal(rng, 1, 2, 128, 32))
		x32 := make([]float32, len(x))
		for i, v := range x {
			x32[i] = float32(v)
		}
		args := []any{tensors.FromFlatDataAndDimensions(x32, 2, 128, 32)}
		for _, s := range state {
			args = append(args, s)
		}
		outs := exec.MustCall(args...)
		for i, o := range outs {
			lt.AssertFinite(t, fmt.Sprintf("call %d output %d", call, i), o)
		}
		state = outs[1+numMetrics:]
		if call == 15 {
			names := []string{"surprise", "theta", "eta", "alpha", "clamped", "w0 norm", "w1 norm"}
			for i, o := range outs[1 : 1+numMetrics] {
				t.Logf("after 2048 tokens: %s = %.4g", names[i], lt.Floats(o)[0])
			}
		}
	}
	if state[0].DType() != dtypes.Float32 {
		t.Errorf("state dtype %s, want float32", state[0].DType())
	}
}
