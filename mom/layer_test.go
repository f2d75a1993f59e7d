package mom_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/engramlx/engram/deltanet"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/mom"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
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

// TestOneMemoryIsGatedDeltaNet: M = 1, k = 1 without the shared memory is the plain
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

// TestLayerChainedEqualsSingle: one call equals calls over pieces (one a single token,
// one spanning a chunk boundary) with every memory's state and the conv caches carried.
func TestLayerChainedEqualsSingle(t *testing.T) {
	lt.ChainedEqualsSingle(t, newCase(t, smallConfig(), 7), 30, []int{1, 11, 12}, 1e-10)
}

// TestDecodeStepEqualsPrefill: tokens fed one at a time (the T = 1 decode step) equal
// the chunk form over the whole sequence.
func TestDecodeStepEqualsPrefill(t *testing.T) {
	const time = 13
	splits := make([]int, 0, time-1)
	for i := 1; i < time; i++ {
		splits = append(splits, i)
	}
	lt.ChainedEqualsSingle(t, newCase(t, smallConfig(), 9), time, splits, 1e-10)
}

// TestLayerCausal: appending tokens does not change earlier outputs.
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

// droppedFraction runs the layer (ApplyWithStats, start of sequence: routing reads x only) on x and
// returns Stats.Dropped, the fraction of top-k assignments the capacity buffers dropped.
func droppedFraction(t *testing.T, c *lt.MixerCase, x *tensors.Tensor) float64 {
	t.Helper()
	exec := model.MustNewExec(lt.Backend(), c.Store, func(scope *model.Scope, x *Node) *Node {
		_, _, stats := c.Mixer.(mom.Introspector).ApplyWithStats(scope.In("mixer"), x, nil)
		return stats.Dropped
	})
	defer exec.Finalize()
	return lt.Floats(exec.MustCall(x)[0])[0]
}

// capacityConfig is smallConfig with chunks of 4 (capacity factor 1.25): a call of 19 tokens gives
// each routed memory a buffer of ceil(1.25 * 2 * 19 / 3) = 16 tokens (4 whole chunks).
func capacityConfig() mom.Config {
	cfg := smallConfig()
	cfg.Memory.ChunkSize = 4
	return cfg
}

// TestLayerCapacityEqualsMasked: the layer with capacity buffers (gathered tokens) equals the masked
// layer (capacity_factor 0) with the same weights when no token overflows: outputs, every state
// tensor, and the gradients of x, of the initial state and of every variable, in float64, after a
// prefix; chunk and naive mode, with and without the shared memory. (They agree to below 1e-14
// relative RMS error; the tolerance is 1e-12.)
func TestLayerCapacityEqualsMasked(t *testing.T) {
	const time = 19
	for _, mode := range []string{deltanet.ModeChunk, deltanet.ModeNaive} {
		for _, shared := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/shared=%v", mode, shared), func(t *testing.T) {
				cfg := capacityConfig()
				cfg.Memory.Mode, cfg.SharedMemory = mode, shared
				capacity := mom.Capacity(cfg.CapacityFactor, cfg.TopK, cfg.Memories, time, cfg.Memory.ChunkSize)
				if capacity >= time {
					t.Fatalf("capacity %d: the buffers are not in use at T = %d", capacity, time)
				}
				fast := newCase(t, cfg, 2)
				if d := droppedFraction(t, fast, fast.RandomInput(43, time)); d != 0 {
					t.Fatalf("%.3g of the assignments overflow: pick another seed", d)
				}
				cfg.CapacityFactor = 0
				masked, err := mom.New(cfg, testDModel)
				if err != nil {
					t.Fatal(err)
				}
				ref := &lt.MixerCase{Mixer: masked, Batch: fast.Batch, DModel: testDModel, Store: fast.Store}
				lt.MixerFastVsReference(t, fast, ref, time, 5, 1e-12)
				t.Logf("T = %d, capacity %d per routed memory, nothing dropped", time, capacity)
			})
		}
	}
}

// TestLayerCapacityChainedEqualsSingle: with capacity buffers in use (in the whole call and in the
// longer pieces) and no overflow in any call, one call equals the pieces with the state carried.
func TestLayerCapacityChainedEqualsSingle(t *testing.T) {
	const time = 30
	splits := []int{1, 11, 12}
	cfg := capacityConfig()
	c := newCase(t, cfg, 7)
	x := c.RandomInput(21, time) // ChainedEqualsSingle's input
	bounds := append(append([]int{0}, splits...), time)
	gathered := 0
	for i := 0; i+1 < len(bounds); i++ {
		n := bounds[i+1] - bounds[i]
		if mom.Capacity(cfg.CapacityFactor, cfg.TopK, cfg.Memories, n, cfg.Memory.ChunkSize) < n {
			gathered++
		}
		if d := droppedFraction(t, c, lt.SliceTime(x, bounds[i], bounds[i+1])); d != 0 {
			t.Fatalf("piece %d: %.3g of the assignments overflow", i, d)
		}
	}
	whole := mom.Capacity(cfg.CapacityFactor, cfg.TopK, cfg.Memories, time, cfg.Memory.ChunkSize)
	if d := droppedFraction(t, c, x); d != 0 || gathered < 1 || whole >= time {
		t.Fatalf("whole call: %.3g overflow, capacity %d of %d; %d pieces use the buffers", d, whole, time, gathered)
	}
	lt.ChainedEqualsSingle(t, c, time, splits, 1e-10)
}

// TestLayerOverflow: a capacity factor small enough that tokens overflow: the layer reports the
// dropped fraction, chunk and naive mode drop the same tokens (equal outputs, states and gradients),
// and the outputs stay causal within a call of fixed length (earlier outputs do not depend on later
// tokens of the same call; see the package doc for calls of different lengths).
func TestLayerOverflow(t *testing.T) {
	const time = 19
	cfg := capacityConfig()
	cfg.CapacityFactor = 0.5
	fast := newCase(t, cfg, 5)
	d := droppedFraction(t, fast, fast.RandomInput(43, time))
	if !(d > 0) {
		t.Fatalf("capacity factor %g drops nothing", cfg.CapacityFactor)
	}
	cfg.Memory.Mode = deltanet.ModeNaive
	naive, err := mom.New(cfg, testDModel)
	if err != nil {
		t.Fatal(err)
	}
	ref := &lt.MixerCase{Mixer: naive, Batch: fast.Batch, DModel: testDModel, Store: fast.Store}
	lt.MixerFastVsReference(t, fast, ref, time, 5, 1e-10)

	// Causality at a fixed length: change the last 6 tokens, the first 13 outputs stay.
	x := fast.RandomInput(43, time)
	other := lt.ConcatTime(lt.SliceTime(x, 0, 13), lt.SliceTime(fast.RandomInput(44, time), 13, time))
	y, _ := fast.Run(x, nil)
	y2, _ := fast.Run(other, nil)
	lt.AssertClose(t, "outputs before the changed tokens", lt.SliceTime(y2, 0, 13), lt.SliceTime(y, 0, 13), 1e-12)
	t.Logf("capacity %d of T = %d: %.3g of the assignments dropped",
		mom.Capacity(cfg.CapacityFactor, cfg.TopK, cfg.Memories, time, cfg.Memory.ChunkSize), time, d)
}
