package deltanet_test

import (
	"math"
	"strings"
	"testing"

	"github.com/engramlx/engram/deltanet"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/gomlx/compute/dtypes"
)

const testDModel = 8

// smallConfig is a tiny layer: 2 heads, d_k 4, d_v 6, chunks of 8.
func smallConfig(preset string) deltanet.Config {
	cfg, err := deltanet.Preset(preset)
	if err != nil {
		panic(err)
	}
	cfg.Heads, cfg.HeadDimK, cfg.ExpandV, cfg.ChunkSize = 2, 4, 1.5, 8
	return cfg
}

func newCase(t *testing.T, cfg deltanet.Config, seed int64) *lt.MixerCase {
	t.Helper()
	layer, err := deltanet.New(cfg, testDModel)
	if err != nil {
		t.Fatal(err)
	}
	return lt.NewMixerCase(layer, 2, testDModel, seed)
}

// TestLayerChunkEqualsNaive: the layer in chunk mode against naive mode with shared weights: outputs,
// every state tensor, and the gradients of x, of the initial state and of every variable, starting
// from a state reached after a prefix, for each member of the family and the switches.
func TestLayerChunkEqualsNaive(t *testing.T) {
	variants := map[string]func(*deltanet.Config){
		"gated_deltanet":            nil,
		"deltanet":                  nil,
		"mamba2_style":              nil,
		"linear_attention":          nil,
		"gated_deltanet/neg_eigval": func(c *deltanet.Config) { c.AllowNegEigval = true },
		"gated_deltanet/no_conv":    func(c *deltanet.Config) { c.UseShortConv = false },
	}
	for name, edit := range variants {
		t.Run(name, func(t *testing.T) {
			cfg := smallConfig(strings.Split(name, "/")[0])
			if edit != nil {
				edit(&cfg)
			}
			fast := newCase(t, cfg, 3)
			cfg.Mode = deltanet.ModeNaive
			naive, err := deltanet.New(cfg, testDModel)
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
	lt.ChainedEqualsSingle(t, newCase(t, smallConfig("gated_deltanet"), 5), 30, []int{1, 11, 12}, 1e-10)
}

// TestDecodeStepEqualsChunk: feeding tokens one at a time (T = 1, the recurrent decode step, conv
// caches and S carried) equals the chunk form over the whole sequence.
func TestDecodeStepEqualsChunk(t *testing.T) {
	const time = 13
	splits := make([]int, 0, time-1)
	for i := 1; i < time; i++ {
		splits = append(splits, i)
	}
	lt.ChainedEqualsSingle(t, newCase(t, smallConfig("gated_deltanet"), 7), time, splits, 1e-10)
}

// TestLayerCausal: appending tokens does not change earlier outputs.
func TestLayerCausal(t *testing.T) {
	lt.Causal(t, newCase(t, smallConfig("gated_deltanet"), 9), 11, 9, 1e-12)
}

// TestLayerStateSpecs names the carried state and checks Apply returns it in that order and shape.
func TestLayerStateSpecs(t *testing.T) {
	c := newCase(t, smallConfig("gated_deltanet"), 1)
	specs := c.Specs()
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, ","); got != "S,conv_q,conv_k,conv_v" {
		t.Fatalf("state names %s", got)
	}
	_, state := c.Run(c.RandomInput(1, 3), nil)
	for i, s := range state {
		if !s.Shape().Equal(specs[i].Shape) {
			t.Errorf("state %s: shape %s, want %s", specs[i].Name, s.Shape(), specs[i].Shape)
		}
	}
	noConv := smallConfig("mamba2_style")
	noConv.UseShortConv = false
	layer, _ := deltanet.New(noConv, testDModel)
	if got := layer.StateSpecs(2, dtypes.Float32); len(got) != 1 || got[0].Shape.String() != "(Float32)[2, 2, 4, 6]" {
		t.Errorf("without conv: specs %v", got)
	}
}

// TestLayerInitAndVariables checks the gate parameters' initial ranges, their names (the optimizer
// excludes "A_log" and "dt_bias" from weight decay) and that variables take x's dtype.
func TestLayerInitAndVariables(t *testing.T) {
	cfg := smallConfig("gated_deltanet")
	cfg.Heads = 64 // enough draws to see the ranges
	layer, err := deltanet.New(cfg, testDModel)
	if err != nil {
		t.Fatal(err)
	}
	c := lt.NewMixerCase(layer, 1, testDModel, 11)
	c.Run(as32(c.RandomInput(1, 2)), nil) // float32 input: variables must follow it
	found := map[string]bool{}
	for v := range c.Store.IterVariables() {
		if !v.Trainable {
			continue // the store's random-number state
		}
		if v.Shape().DType != dtypes.Float32 {
			t.Errorf("variable %s has dtype %s, want x's Float32", v.Path(), v.Shape().DType)
		}
		name := v.Path()[strings.LastIndex(v.Path(), "/")+1:]
		found[name] = true
		values := lt.Floats(v.MustValue())
		switch name {
		case "A_log":
			checkRange(t, "exp(A_log)", values, math.Exp, 1e-4, 16)
		case "dt_bias":
			softplus := func(x float64) float64 { return math.Log1p(math.Exp(x)) }
			checkRange(t, "softplus(dt_bias)", values, softplus, 1e-3*(1-1e-9), 1e-1*(1+1e-9))
		}
	}
	for _, want := range []string{"A_log", "dt_bias", "weight"} {
		if !found[want] {
			t.Errorf("no variable named %q; have %v", want, found)
		}
	}
}

func checkRange(t *testing.T, name string, values []float64, f func(float64) float64, lo, hi float64) {
	t.Helper()
	mn, mx := math.Inf(1), math.Inf(-1)
	for _, v := range values {
		mn, mx = math.Min(mn, f(v)), math.Max(mx, f(v))
	}
	// 64 uniform draws span most of the range; a wrong scale or a missing log/exp would not.
	width := hi - lo
	if mn < lo || mx > hi || mx-mn < 0.5*width && width > 1 || math.Log(mx/mn) < 0.5*math.Log(hi/lo) && width <= 1 {
		t.Errorf("%s spans [%g, %g], want inside [%g, %g] and covering most of it", name, mn, mx, lo, hi)
	}
}

// TestConfig checks Validate names the field and value, New validates, and the presets' switches.
func TestConfig(t *testing.T) {
	bad := map[string]func(*deltanet.Config){
		"heads":            func(c *deltanet.Config) { c.Heads = 0 },
		"head_dim_k":       func(c *deltanet.Config) { c.HeadDimK = -1 },
		"expand_v":         func(c *deltanet.Config) { c.HeadDimK, c.ExpandV = 3, 0.5 },
		"conv_size":        func(c *deltanet.Config) { c.ConvSize = 1 },
		"chunk_size":       func(c *deltanet.Config) { c.ChunkSize = 0 },
		"mode":             func(c *deltanet.Config) { c.Mode = "fused" },
		"norm_eps":         func(c *deltanet.Config) { c.NormEps = 0 },
		"allow_neg_eigval": func(c *deltanet.Config) { c.AllowNegEigval, c.Delta = true, false },
	}
	for field, edit := range bad {
		cfg := deltanet.DefaultConfig()
		edit(&cfg)
		if _, err := deltanet.New(cfg, 16); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: New error %v, want one naming %q", field, err, field)
		}
	}
	if err := deltanet.DefaultConfig().Validate(); err != nil {
		t.Errorf("default config: %v", err)
	}
	want := map[string][2]bool{"gated_deltanet": {true, true}, "deltanet": {false, true}, "mamba2_style": {true, false}, "linear_attention": {false, false}}
	for _, name := range deltanet.PresetNames() {
		cfg, err := deltanet.Preset(name)
		if err != nil || [2]bool{cfg.Gate, cfg.Delta} != want[name] {
			t.Errorf("preset %s: gate %v delta %v err %v, want %v", name, cfg.Gate, cfg.Delta, err, want[name])
		}
	}
	if len(deltanet.PresetNames()) != len(want) {
		t.Errorf("presets %v", deltanet.PresetNames())
	}
	if _, err := deltanet.Preset("mamba"); err == nil {
		t.Error("Preset(\"mamba\") gave no error")
	}
}
