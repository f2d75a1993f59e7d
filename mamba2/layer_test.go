package mamba2_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/engramlx/engram/internal/field"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/mamba2"
)

const testDModel = 8

// smallConfig is a tiny layer: 4 heads of 3 in 2 groups, state 5, chunks of 8.
func smallConfig() mamba2.Config {
	cfg := mamba2.DefaultConfig()
	cfg.Heads, cfg.HeadDim, cfg.StateSize, cfg.Groups, cfg.ChunkSize = 4, 3, 5, 2, 8
	return cfg
}

func newCase(t *testing.T, cfg mamba2.Config, seed int64) *lt.MixerCase {
	t.Helper()
	layer, err := mamba2.New(cfg, testDModel)
	if err != nil {
		t.Fatal(err)
	}
	return lt.NewMixerCase(layer, 2, testDModel, seed)
}

// TestLayerChunkEqualsNaive: the layer in chunk mode against naive mode with shared weights: outputs,
// both state tensors, and the gradients of x, of the initial state and of every variable, from a state
// reached after a prefix, at T = 19 (not a multiple of the chunk 8), with chunk 1, and with one group.
func TestLayerChunkEqualsNaive(t *testing.T) {
	for name, edit := range map[string]func(*mamba2.Config){
		"G2_C8":  nil,
		"G2_C1":  func(c *mamba2.Config) { c.ChunkSize = 1 },
		"G1_C8":  func(c *mamba2.Config) { c.Groups = 1 },
		"K2_C64": func(c *mamba2.Config) { c.ConvSize, c.ChunkSize = 2, 64 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := smallConfig()
			if edit != nil {
				edit(&cfg)
			}
			fast := newCase(t, cfg, 3)
			cfg.Mode = mamba2.ModeNaive
			naive, err := mamba2.New(cfg, testDModel)
			if err != nil {
				t.Fatal(err)
			}
			ref := &lt.MixerCase{Mixer: naive, Batch: fast.Batch, DModel: testDModel, Store: fast.Store}
			lt.MixerFastVsReference(t, fast, ref, 19, 5, 1e-10)
		})
	}
}

// TestLayerChainedEqualsSingle: one call equals calls over pieces (one a single token, one spanning a
// chunk boundary) with the state carried.
func TestLayerChainedEqualsSingle(t *testing.T) {
	lt.ChainedEqualsSingle(t, newCase(t, smallConfig(), 5), 30, []int{1, 11, 12}, 1e-10)
}

// TestDecodeStepEqualsChunk: feeding tokens one at a time (T = 1, the recurrent decode step, SSM state
// and conv cache carried) equals the chunk form over the whole sequence.
func TestDecodeStepEqualsChunk(t *testing.T) {
	const time = 13
	splits := make([]int, 0, time-1)
	for i := 1; i < time; i++ {
		splits = append(splits, i)
	}
	lt.ChainedEqualsSingle(t, newCase(t, smallConfig(), 7), time, splits, 1e-10)
}

// TestLayerCausal: appending tokens does not change earlier outputs.
func TestLayerCausal(t *testing.T) {
	lt.Causal(t, newCase(t, smallConfig(), 9), 11, 9, 1e-12)
}

// TestLayerGradCheck: the layer's gradients with respect to x and the initial state (after a prefix)
// against central finite differences.
func TestLayerGradCheck(t *testing.T) {
	lt.MixerGradCheck(t, newCase(t, smallConfig(), 11), 10, 3, 6, 1e-6)
}

// TestLayerStateSpecs names the carried state and checks Apply returns it in that order and shape.
func TestLayerStateSpecs(t *testing.T) {
	c := newCase(t, smallConfig(), 1)
	specs := c.Specs()
	var names []string
	for _, s := range specs {
		names = append(names, s.Name+s.Shape.String())
	}
	if got, want := strings.Join(names, ","), "ssm(Float64)[2, 4, 3, 5],conv(Float64)[2, 3, 32]"; got != want {
		t.Fatalf("state specs %s, want %s", got, want)
	}
	_, state := c.Run(c.RandomInput(1, 3), nil)
	for i, s := range state {
		if !s.Shape().Equal(specs[i].Shape) {
			t.Errorf("state %s: shape %s, want %s", specs[i].Name, s.Shape(), specs[i].Shape)
		}
	}
}

// TestLayerInit checks the initial ranges of A_log (A in [1, 16)), dt_bias (softplus(dt_bias) in
// [1e-3, 1e-1]) and D (ones), on 64 heads.
func TestLayerInit(t *testing.T) {
	cfg := smallConfig()
	cfg.Heads, cfg.Groups = 64, 1
	c := newCase(t, cfg, 13)
	c.Run(c.RandomInput(1, 2), nil)
	check := func(name string, ok func(float64) bool) {
		v := c.Store.GetVariable("/mixer/" + name)
		if v == nil {
			t.Fatalf("no variable %s", name)
		}
		for i, x := range lt.Floats(v.MustValue()) {
			if !ok(x) {
				t.Errorf("%s[%d] = %g out of its initial range", name, i, x)
			}
		}
	}
	check("A_log", func(x float64) bool { return x >= 0 && x < 2.7726 })     // log 1, log 16
	check("dt_bias", func(x float64) bool { return x > -6.91 && x < -2.25 }) // softplus^-1(1e-3), softplus^-1(1e-1)
	check("D", func(x float64) bool { return x == 1 })
	check("norm/weight", func(x float64) bool { return x == 1 })
}

// TestConfigValidate: every bad field gives a field error naming it and the value.
func TestConfigValidate(t *testing.T) {
	for key, edit := range map[string]func(*mamba2.Config){
		"mamba2.heads":      func(c *mamba2.Config) { c.Heads = 0 },
		"mamba2.head_dim":   func(c *mamba2.Config) { c.HeadDim = 0 },
		"mamba2.state_size": func(c *mamba2.Config) { c.StateSize = -1 },
		"mamba2.n_groups":   func(c *mamba2.Config) { c.Groups = 3 },
		"mamba2.conv_size":  func(c *mamba2.Config) { c.ConvSize = 1 },
		"mamba2.chunk_size": func(c *mamba2.Config) { c.ChunkSize = 0 },
		"mamba2.mode":       func(c *mamba2.Config) { c.Mode = "fast" },
		"mamba2.norm_eps":   func(c *mamba2.Config) { c.NormEps = 0 },
	} {
		cfg := mamba2.DefaultConfig()
		edit(&cfg)
		err := cfg.Validate()
		var fe *field.Error
		if !errors.As(err, &fe) || fe.Path != key {
			t.Errorf("%s: got %v, want a field error for it", key, err)
		}
	}
	if err := mamba2.DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig: %v", err)
	}
	if _, err := mamba2.New(mamba2.DefaultConfig(), 0); err == nil {
		t.Error("New with d_model 0: no error")
	}
}
