package mom_test

import (
	"fmt"
	"testing"

	"github.com/engramlx/engram/deltanet"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/mom"
)

// TestPackedEqualsSeparate: a row packing documents of 5, 17 and 42 tokens computes each document's
// outputs and final state (every memory's S and the conv caches) as if run alone, from the start of a
// sequence and from a carried state, in the masked form (capacity_factor 0), through capacity buffers
// (capacity 56 of 64 for the packed call, 40 of 42, 16 of 17: buffers shorter than the call, so a memory sees only its routed tokens
// and must restart at the first of them after a start) and in naive mode.
func TestPackedEqualsSeparate(t *testing.T) {
	variants := map[string]func(*mom.Config){
		"masked":  func(c *mom.Config) { c.CapacityFactor = 0 },
		"buffers": func(c *mom.Config) { c.CapacityFactor = 1.3 },
		"naive":   func(c *mom.Config) { c.CapacityFactor = 1.3; c.Memory.Mode = deltanet.ModeNaive },
	}
	for name, set := range variants {
		for _, prefix := range []int{0, 7} {
			t.Run(fmt.Sprintf("%s_prefix%d", name, prefix), func(t *testing.T) {
				cfg := smallConfig()
				set(&cfg)
				worst := lt.PackedEqualsSeparate(t, newCase(t, cfg, 5), []int{5, 17, 42}, prefix, nil, 1e-10)
				t.Logf("worst relative RMS error %.2g", worst)
			})
		}
	}
}
