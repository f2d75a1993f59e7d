package layers_test

import (
	"fmt"
	"testing"

	"github.com/engramlx/engram/layers"
	lt "github.com/engramlx/engram/layers/layertest"
)

// attentionCache names the state attention keeps by position (k, v, position): after a packed row it
// holds every document's keys (see Attention.ApplyDocuments), so only the conv caches are compared.
func attentionCache(name string) bool { return name == "k" || name == "v" || name == "position" }

// TestAttentionPackedEqualsSeparate: full and sliding-window attention, with and without short
// convolutions, on a row packing documents of 5, 17 and 42 tokens compute each document's outputs
// alone, from the start of a sequence (the fresh path and the blocked causal attention, with a block
// shorter than the row) and from a carried cache (the cached path; the start at t = 0 hides the cache).
func TestAttentionPackedEqualsSeparate(t *testing.T) {
	defer layers.SetCausalBlock(16)()
	for _, window := range []int{0, 8} {
		for _, conv := range []int{0, 4} {
			for _, prefix := range []int{0, 7} {
				t.Run(fmt.Sprintf("window%d_conv%d_prefix%d", window, conv, prefix), func(t *testing.T) {
					cfg := layers.AttentionConfig{Heads: 2, Window: window, MaxContext: 80, RoPEBase: 10000, ShortConv: conv}
					c := attentionCase(t, cfg, false)
					worst := lt.PackedEqualsSeparate(t, c, []int{5, 17, 42}, prefix, attentionCache, 1e-12)
					t.Logf("worst relative RMS error %.2g", worst)
				})
			}
		}
	}
}
