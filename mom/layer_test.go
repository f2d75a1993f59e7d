package mom_test

import (
	"strings"
	"testing"

	"github.com/engramlx/engram/deltanet"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/mom"
)

const testDModel = 8

// smallConfig is a tiny layer: M = 3 memories, top-2, shared memory, each memory 2 heads, d_k 4,
// d_v 6, chunks of 8.
func smallConfig() mom.Config {
	cfg := mom.DefaultConfig()
	cfg.Memories = 3
	cfg.Memory.Heads, cfg.Memory.HeadDimK, cfg.Memory.ExpandV, cfg.Memory.ChunkSize = 2, 4, 1.5, 8
	return cfg
}

func newCase(t *testing.T, cfg mom.Config, seed int64) *lt.MixerCase {
	t.Helper()
	layer, err := mom.New(cfg, testDModel)
	if err != nil {
		t.Fatal(err)
	}
	return lt.NewMixerCase(layer, 2, testDModel, seed)
}

// TestOneMemoryIsGatedDeltaNet (issue 5, item 2): M = 1, k = 1 without the shared memory is the plain
// Gated DeltaNet layer with the same weights (same store and scope): outputs, every state tensor, and
// the gradients of x, of the initial state and of every variable, after a prefix; chunk and naive mode.
func TestOneMemoryIsGatedDeltaNet(t *testing.T) {
	for _, mode := range []string{deltanet.ModeChunk, deltanet.ModeNaive} {
		t.Run(mode, func(t *testing.T) {
			cfg := smallConfig()
			cfg.Memories, cfg.TopK, cfg.SharedMemory, cfg.Memory.Mode = 1, 1, false, mode
			moe := newCase(t, cfg, 3)
			plain, err := deltanet.New(cfg.Memory, testDModel)
			if err != nil {
				t.Fatal(err)
			}
			ref := &lt.MixerCase{Mixer: plain, Batch: moe.Batch, DModel: testDModel, Store: moe.Store}
			lt.MixerFastVsReference(t, moe, ref, 19, 5, 1e-10)
		})
	}
}

// TestLayerChunkEqualsNaive: the routed layer in chunk mode against naive mode with shared weights,
// with and without the shared memory and the short convolutions, and with every memory chosen (k = M).
// (k = 1 is left out: its renormalised weight is exactly 1, so the router's gradient is 0 up to
// rounding and a relative comparison of it means nothing.)
func TestLayerChunkEqualsNaive(t *testing.T) {
	variants := map[string]func(*mom.Config){
		"default":   nil,
		"no_shared": func(c *mom.Config) { c.SharedMemory = false },
		"all":       func(c *mom.Config) { c.TopK = c.Memories },
		"no_conv":   func(c *mom.Config) { c.Memory.UseShortConv = false },
	}
	for name, edit := range variants {
		t.Run(name, func(t *testing.T) {
			cfg := smallConfig()
			if edit != nil {
				edit(&cfg)
			}
			fast := newCase(t, cfg, 5)
			cfg.Memory.Mode = deltanet.ModeNaive
			naive, err := mom.New(cfg, testDModel)
			if err != nil {
				t.Fatal(err)
			}
			ref := &lt.MixerCase{Mixer: naive, Batch: fast.Batch, DModel: testDModel, Store: fast.Store}
			lt.MixerFastVsReference(t, fast, ref, 19, 5, 1e-10)
		})
	}
}

// TestLayerChainedEqualsSingle (issue 5, item 3): one call equals calls over pieces (one a single token,
// one spanning a chunk boundary) with every memory's state and the conv caches carried.
func TestLayerChainedEqualsSingle(t *testing.T) {
	lt.ChainedEqualsSingle(t, newCase(t, smallConfig(), 7), 30, []int{1, 11, 12}, 1e-10)
}

// TestDecodeStepEqualsPrefill (issue 5, item 3): tokens fed one at a time (the T = 1 decode step) equal
// the chunk form over the whole sequence.
func TestDecodeStepEqualsPrefill(t *testing.T) {
	const time = 13
	splits := make([]int, 0, time-1)
	for i := 1; i < time; i++ {
		splits = append(splits, i)
	}
	lt.ChainedEqualsSingle(t, newCase(t, smallConfig(), 9), time, splits, 1e-10)
}

// TestLayerCausal (issue 5, item 3): appending tokens does not change earlier outputs.
func TestLayerCausal(t *testing.T) {
	lt.Causal(t, newCase(t, smallConfig(), 11), 11, 9, 1e-12)
}

// TestLayerGradCheck: finite differences of the naive layer with respect to x and the initial state
// (the router's gradient included, through x).
func TestLayerGradCheck(t *testing.T) {
	cfg := smallConfig()
	cfg.Memory.Mode = deltanet.ModeNaive
	lt.MixerGradCheck(t, newCase(t, cfg, 13), 5, 3, 6, 1e-6)
}

// TestStateSpecs names the carried state and checks Apply returns it in that order and shape.
func TestStateSpecs(t *testing.T) {
	c := newCase(t, smallConfig(), 1)
	specs := c.Specs()
	var got []string
	for _, s := range specs {
		got = append(got, s.Name+s.Shape.String())
	}
	want := "S(Float64)[2, 8, 4, 6] conv_q(Float64)[2, 3, 8] conv_k(Float64)[2, 3, 32] conv_v(Float64)[2, 3, 48]"
	if strings.Join(got, " ") != want {
		t.Fatalf("state specs %v, want %s", got, want)
	}
	_, state := c.Run(c.RandomInput(1, 3), nil)
	for i, s := range state {
		if !s.Shape().Equal(specs[i].Shape) {
			t.Errorf("state %s: shape %s, want %s", specs[i].Name, s.Shape(), specs[i].Shape)
		}
	}
}

// TestConfigErrors: Validate names the field and the value.
func TestConfigErrors(t *testing.T) {
	cases := map[string]func(*mom.Config){
		"mom.memories = 0": func(c *mom.Config) { c.Memories = 0 },
		"mom.top_k = 5: must be in [1, memories = 4]": func(c *mom.Config) { c.TopK = 5 },
		"mom.top_k = 0":            func(c *mom.Config) { c.TopK = 0 },
		"mom.aux_loss_weight = -1": func(c *mom.Config) { c.AuxLossWeight = -1 },
		"mom.memory.heads = 0":     func(c *mom.Config) { c.Memory.Heads = 0 },
	}
	for want, edit := range cases {
		cfg := mom.DefaultConfig()
		edit(&cfg)
		if _, err := mom.New(cfg, 16); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got error %v, want one containing %q", err, want)
		}
	}
	if _, err := mom.New(mom.DefaultConfig(), 0); err == nil || !strings.Contains(err.Error(), "d_model = 0") {
		t.Errorf("d_model 0: got %v", err)
	}
	if err := mom.DefaultConfig().Validate(); err != nil {
		t.Errorf("default config: %v", err)
	}
}
