package gla_test

import (
	"strings"
	"testing"

	"github.com/engramlx/engram/gla"
	lt "github.com/engramlx/engram/layers/layertest"
)

const testDModel = 16

// testConfig is a tiny layer: 2 heads, d_k 4, d_v 8, chunks of 16 (one sub-chunk) or 32 (two).
func testConfig(chunk int, mode string) gla.Config {
	cfg := gla.DefaultConfig()
	cfg.Heads, cfg.GateLowRankDim, cfg.ChunkSize, cfg.Mode = 2, 4, chunk, mode
	// Stronger decays than the default normaliser gives, so decay bugs show at these lengths.
	cfg.GateLogitNormalizer = 2
	return cfg
}

func newCase(t *testing.T, cfg gla.Config) *lt.MixerCase {
	t.Helper()
	l, err := gla.New(cfg, testDModel)
	if err != nil {
		t.Fatal(err)
	}
	return lt.NewMixerCase(l, 2, testDModel, 5)
}

// TestLayerChunkEqualsNaive: the chunked layer equals the naive one (outputs, final state, and the
// gradients of x, the initial state and every variable), from a zero state and after a prefix, at
// lengths that are not multiples of the chunk.
func TestLayerChunkEqualsNaive(t *testing.T) {
	for _, chunk := range []int{16, 32} {
		fast, ref := newCase(t, testConfig(chunk, gla.ModeChunk)), newCase(t, testConfig(chunk, gla.ModeNaive))
		ref.Store = fast.Store
		lt.MixerFastVsReference(t, fast, ref, 45, 0, 1e-10)
		lt.MixerFastVsReference(t, fast, ref, 45, 7, 1e-10)
	}
}

// TestLayerChained: one call equals calls over pieces with the state carried (pieces across chunk
// boundaries), and decoding one token per call (the recurrent step) equals the chunked call.
func TestLayerChained(t *testing.T) {
	c := newCase(t, testConfig(16, gla.ModeChunk))
	lt.ChainedEqualsSingle(t, c, 40, []int{5, 21, 39}, 1e-10)
	var every []int
	for i := 1; i < 20; i++ {
		every = append(every, i)
	}
	lt.ChainedEqualsSingle(t, c, 20, every, 1e-10)
}

// TestLayerCausal: appending tokens does not change earlier outputs.
func TestLayerCausal(t *testing.T) {
	lt.Causal(t, newCase(t, testConfig(16, gla.ModeChunk)), 19, 14, 1e-12)
}

// TestLayerGradCheck: analytic gradients of x and of the initial state against finite differences.
func TestLayerGradCheck(t *testing.T) {
	lt.MixerGradCheck(t, newCase(t, testConfig(16, gla.ModeChunk)), 21, 5, 6, 1e-6)
}

// TestLayerOptions: the options fla exposes that the layer implements (no output gate, clamp_min) run and
// differ from the default.
func TestLayerOptions(t *testing.T) {
	base := newCase(t, testConfig(16, gla.ModeChunk))
	x := base.RandomInput(3, 9)
	y0, _ := base.Run(x, nil)
	for _, edit := range []func(*gla.Config){
		func(c *gla.Config) { c.UseOutputGate = false },
		func(c *gla.Config) { c.ClampMin = -0.01 },
	} {
		cfg := testConfig(16, gla.ModeChunk)
		edit(&cfg)
		c := newCase(t, cfg)
		c.Store = base.Store
		y, _ := c.Run(x, nil)
		lt.AssertFinite(t, "output", y)
		if lt.RelRMS(lt.Floats(y), lt.Floats(y0)) < 1e-3 {
			t.Errorf("%+v: output unchanged by the option", cfg)
		}
	}
}

// TestValidate: each bad field is an error naming it and its value.
func TestValidate(t *testing.T) {
	for _, c := range []struct {
		edit func(*gla.Config)
		want string
	}{
		{func(c *gla.Config) { c.Heads = 0 }, "gla.heads = 0"},
		{func(c *gla.Config) { c.Heads = 3 }, "gla.expand_k = 0.5"},
		{func(c *gla.Config) { c.ExpandV = 0.3 }, "gla.expand_v = 0.3"},
		{func(c *gla.Config) { c.GateLowRankDim = 0 }, "gla.gate_low_rank_dim = 0"},
		{func(c *gla.Config) { c.GateLogitNormalizer = 0 }, "gla.gate_logit_normalizer = 0"},
		{func(c *gla.Config) { c.ClampMin = 0.5 }, "gla.clamp_min = 0.5"},
		{func(c *gla.Config) { c.ChunkSize = 24 }, "gla.chunk_size = 24"},
		{func(c *gla.Config) { c.Mode = "fast" }, `gla.mode = "fast"`},
		{func(c *gla.Config) { c.NormEps = 0 }, "gla.norm_eps = 0"},
	} {
		cfg := gla.DefaultConfig()
		c.edit(&cfg)
		_, err := gla.New(cfg, testDModel)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("want error starting %q, got %v", c.want, err)
		}
	}
	if _, err := gla.New(gla.DefaultConfig(), testDModel); err != nil {
		t.Errorf("default config: %v", err)
	}
}
