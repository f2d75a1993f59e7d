package deltanet_test

import (
	"strings"
	"testing"

	"github.com/engramlx/engram/deltanet"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/mom"
	"github.com/gomlx/compute/dtypes"
)

// gvaConfig is smallConfig with 4 value heads over the 2 q/k heads.
func gvaConfig(preset string) deltanet.Config {
	cfg := smallConfig(preset)
	cfg.VHeads = 4
	return cfg
}

// Grouped value heads in float64: chunk == naive (outputs, every state tensor, gradients of x, the
// initial state and every variable, after a prefix, at a length that is not a multiple of the chunk);
// chained == single (including one token per call, the decode step); finite differences.
func TestGroupedValueHeads(t *testing.T) {
	for _, preset := range []string{"gated_deltanet", "mamba2_style"} {
		t.Run(preset, func(t *testing.T) {
			fast := newCase(t, gvaConfig(preset), 3)
			naive := gvaConfig(preset)
			naive.Mode = deltanet.ModeNaive
			ref := newCase(t, naive, 3)
			ref.Store = fast.Store
			lt.MixerFastVsReference(t, fast, ref, 19, 5, 1e-10)
			lt.ChainedEqualsSingle(t, fast, 20, []int{3, 11, 12, 13}, 1e-10)
			lt.MixerGradCheck(t, fast, 11, 4, 6, 1e-6)
		})
	}
	specs := newCase(t, gvaConfig("gated_deltanet"), 3).Mixer.StateSpecs(2, dtypes.Float32)
	if specs[0].Shape.String() != "(Float32)[2, 4, 4, 6]" || specs[3].Shape.String() != "(Float32)[2, 3, 24]" {
		t.Errorf("state specs %v, want S [2, 4 value heads, 4, 6] and conv_v over 4*6 channels", specs)
	}
}

// v_heads equal to heads is today's layer: the same variables, outputs, state and gradients to the bit.
func TestValueHeadsEqualHeadsIsTheSameLayer(t *testing.T) {
	plain := newCase(t, smallConfig("gated_deltanet"), 7)
	cfg := smallConfig("gated_deltanet")
	cfg.VHeads = cfg.Heads
	same := newCase(t, cfg, 7)
	same.Store = plain.Store
	lt.MixerFastVsReference(t, same, plain, 13, 3, 0)
}

// Bad v_heads values name the field; MoM's memories (which have no grouped value heads) reject it.
func TestValidateValueHeads(t *testing.T) {
	for _, v := range []int{-1, 1, 3, 5} {
		cfg := smallConfig("gated_deltanet")
		cfg.VHeads = v
		if err := cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), "deltanet.v_heads = ") {
			t.Errorf("v_heads %d with heads 2: got %v", v, err)
		}
	}
	cfg := mom.DefaultConfig()
	cfg.Memory.VHeads = 2 * cfg.Memory.Heads
	if err := cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), "mom.memory.v_heads = ") {
		t.Errorf("mom memory with v_heads: got %v", err)
	}
}
