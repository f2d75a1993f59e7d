package layers_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/engramlx/engram/layers"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

func attentionCase(t *testing.T, cfg layers.AttentionConfig, reference bool) *lt.MixerCase {
	t.Helper()
	a, err := layers.NewAttention(cfg, 16)
	if err != nil {
		t.Fatal(err)
	}
	var m layers.Mixer = a
	if reference {
		m = a.Reference()
	}
	return lt.NewMixerCase(m, 2, 16, 5)
}

// attentionPair returns the fast layer of cfg and its dense reference form, sharing weights.
func attentionPair(t *testing.T, cfg layers.AttentionConfig) (fast, ref *lt.MixerCase) {
	t.Helper()
	fast = attentionCase(t, cfg, false)
	ref = attentionCase(t, cfg, true)
	ref.Store = fast.Store
	return fast, ref
}

// The float64 harness for full causal attention: the fresh-sequence fast path against the cache path,
// chained == single (through the KV cache), causality and a finite-difference check.
func TestAttentionHarness(t *testing.T) {
	cfg := layers.AttentionConfig{Heads: 2, MaxContext: 24, RoPEBase: 10000}
	fast, ref := attentionPair(t, cfg)
	lt.MixerFastVsReference(t, fast, ref, 11, 0, 1e-12)
	lt.ChainedEqualsSingle(t, fast, 17, []int{6, 7}, 1e-12)
	lt.Causal(t, fast, 9, 4, 1e-12)
	// From a carried cache (prefix of 5 tokens), cache path gradients incl. the initial cache.
	lt.MixerFastVsReference(t, fast, ref, 7, 5, 1e-12)
}

// With short convolutions on q, k, v the conv caches stream too.
func TestAttentionShortConvHarness(t *testing.T) {
	for _, window := range []int{0, 3} {
		cfg := layers.AttentionConfig{Heads: 2, Window: window, MaxContext: 20, RoPEBase: 10000, ShortConv: 3}
		fast, ref := attentionPair(t, cfg)
		lt.MixerFastVsReference(t, fast, ref, 7, 4, 1e-12)
		lt.ChainedEqualsSingle(t, fast, 13, []int{1, 6}, 1e-12)
		lt.Causal(t, fast, 6, 3, 1e-12)
		lt.MixerGradCheck(t, fast, 5, 3, 6, 1e-6)
	}
}

// Sliding-window attention: the blockwise form against dense band-masked attention, with and without a
// carried cache, windows that do and do not divide T; chained == single; causality.
func TestSlidingWindowHarness(t *testing.T) {
	for _, window := range []int{1, 4, 5} {
		cfg := layers.AttentionConfig{Heads: 2, Window: window, RoPEBase: 10000}
		fast, ref := attentionPair(t, cfg)
		lt.MixerFastVsReference(t, fast, ref, 13, 0, 1e-12)
		lt.MixerFastVsReference(t, fast, ref, 6, 7, 1e-12)
		lt.ChainedEqualsSingle(t, fast, 14, []int{3, 9}, 1e-12)
		lt.Causal(t, fast, 8, 5, 1e-12)
	}
}

// A window as long as the sequence equals full attention (same weights).
func TestSlidingWindowCoversFullAttention(t *testing.T) {
	full := attentionCase(t, layers.AttentionConfig{Heads: 2, MaxContext: 16, RoPEBase: 10000}, false)
	swa := attentionCase(t, layers.AttentionConfig{Heads: 2, Window: 10, RoPEBase: 10000}, false)
	swa.Store = full.Store
	x := full.RandomInput(3, 10)
	yFull, _ := full.Run(x, nil)
	ySWA, _ := swa.Run(x, nil)
	lt.AssertClose(t, "window 10 == full attention over 10 tokens", ySWA, yFull, 1e-12)
	// And a window shorter than the sequence does differ.
	short := attentionCase(t, layers.AttentionConfig{Heads: 2, Window: 3, RoPEBase: 10000}, false)
	short.Store = full.Store
	yShort, _ := short.Run(x, nil)
	if err := lt.RelRMS(lt.Floats(yShort), lt.Floats(yFull)); err < 1e-3 {
		t.Errorf("window 3 output equals full attention (rel err %.2g): the window is not applied", err)
	}
}

func TestAttentionConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  layers.AttentionConfig
		want string
	}{
		{layers.AttentionConfig{Heads: 3, MaxContext: 8, RoPEBase: 10000}, "heads = 3"},
		{layers.AttentionConfig{Heads: 0, MaxContext: 8, RoPEBase: 10000}, "heads = 0"},
		{layers.AttentionConfig{Heads: 2, Window: -1, RoPEBase: 10000}, "window = -1"},
		{layers.AttentionConfig{Heads: 2, RoPEBase: 10000}, "max_context = 0"},
	} {
		_, err := layers.NewAttention(c.cfg, 16)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one naming %q", c.cfg, err, c.want)
		}
	}
}

// Finite-difference checks of both attention forms, from the start and from a carried cache.
func TestAttentionGradCheck(t *testing.T) {
	full := attentionCase(t, layers.AttentionConfig{Heads: 2, MaxContext: 12, RoPEBase: 10000}, false)
	lt.MixerGradCheck(t, full, 5, 0, 6, 1e-6)
	lt.MixerGradCheck(t, full, 3, 4, 6, 1e-6)
	swa := attentionCase(t, layers.AttentionConfig{Heads: 2, Window: 3, RoPEBase: 10000}, false)
	lt.MixerGradCheck(t, swa, 7, 2, 6, 1e-6)
}

// Causal attention from the start of a sequence runs in query blocks (block i sees keys up to its end):
// blocks that do and do not divide T, against the dense reference, with gradients and finite differences.
func TestCausalBlocks(t *testing.T) {
	defer layers.SetCausalBlock(4)()
	for _, shortConv := range []int{0, 3} {
		cfg := layers.AttentionConfig{Heads: 2, MaxContext: 24, RoPEBase: 10000, ShortConv: shortConv}
		fast, ref := attentionPair(t, cfg)
		lt.MixerFastVsReference(t, fast, ref, 11, 0, 1e-12)
		lt.MixerFastVsReference(t, fast, ref, 12, 0, 1e-12)
		lt.MixerFastVsReference(t, fast, ref, 10, 5, 1e-12) // from a cache: query blocks over the cache
		lt.ChainedEqualsSingle(t, fast, 17, []int{9}, 1e-12)
		lt.Causal(t, fast, 9, 5, 1e-12)
		lt.MixerGradCheck(t, fast, 10, 0, 6, 1e-6)
	}
}

// A cache sized for the stream (StateSpecsForContext) streams exactly as the full-size one: outputs of
// chained calls equal one call, and its size is min(positions, max_context).
func TestAttentionContextSizedCache(t *testing.T) {
	cfg := layers.AttentionConfig{Heads: 2, MaxContext: 64, RoPEBase: 10000, ShortConv: 3}
	a, err := layers.NewAttention(cfg, 16)
	if err != nil {
		t.Fatal(err)
	}
	specs := layers.StateSpecsForContext(a, 2, dtypes.Float64, 12)
	if got := specs[0].Shape.Dimensions[1]; got != 12 {
		t.Fatalf("cache for 12 positions has %d slots", got)
	}
	if got := layers.StateSpecsForContext(a, 2, dtypes.Float64, 1000)[0].Shape.Dimensions[1]; got != 64 {
		t.Errorf("cache for 1000 positions has %d slots, want max_context = 64", got)
	}
	if got := layers.StateSpecsForContext(a, 2, dtypes.Float64, 0)[0].Shape.Dimensions[1]; got != 64 {
		t.Errorf("cache for the default (0) has %d slots, want max_context = 64", got)
	}
	c := lt.NewMixerCase(a, 2, 16, 5)
	x := c.RandomInput(3, 12)
	yFull, _ := c.Run(x, nil)
	state := make([]*tensors.Tensor, len(specs))
	for i, s := range specs {
		state[i] = tensors.FromShape(s.Shape)
	}
	var pieces []*tensors.Tensor
	// The last piece runs past the 12 slots (a padded final segment): the slots past the cache drop.
	for _, r := range [][2]int{{0, 5}, {5, 10}, {10, 12}} {
		y, next := c.Run(lt.SliceTime(x, r[0], r[1]), state)
		pieces = append(pieces, y)
		state = next
	}
	lt.AssertClose(t, "context-sized cache: chained outputs", lt.ConcatTime(pieces...), yFull, 1e-12)
	if got := state[0].Shape().Dimensions[1]; got != 12 {
		t.Errorf("state after streaming has %d slots, want 12", got)
	}
	// A padded final segment: 4 real tokens + 4 padding past the 12 slots.
	padded := lt.ConcatTime(lt.SliceTime(x, 8, 12), lt.SliceTime(x, 0, 4))
	st := make([]*tensors.Tensor, len(specs))
	for i, s := range specs {
		st[i] = tensors.FromShape(s.Shape)
	}
	_, st = c.Run(lt.SliceTime(x, 0, 8), st)
	y, _ := c.Run(padded, st)
	lt.AssertClose(t, "context-sized cache: real tokens of a segment running past it", lt.SliceTime(y, 0, 4), lt.SliceTime(yFull, 8, 12), 1e-12)
}

// Persistent tokens (keys and values of learned tokens before all others, seen by every query): the fast
// paths (sliding window, fresh causal in several blocks, cached) against the dense reference, from the
// start and from a carried cache, with the gradients of the "persistent" variable; chained == single;
// causality; finite differences. And they are used: the output differs from the same layer without them.
func TestAttentionPersistentTokens(t *testing.T) {
	defer layers.SetCausalBlock(4)()
	for _, window := range []int{0, 3} {
		cfg := layers.AttentionConfig{Heads: 2, Window: window, MaxContext: 24, RoPEBase: 10000, PersistentTokens: 2}
		fast, ref := attentionPair(t, cfg)
		lt.MixerFastVsReference(t, fast, ref, 11, 0, 1e-12)
		lt.MixerFastVsReference(t, fast, ref, 7, 5, 1e-12)
		lt.ChainedEqualsSingle(t, fast, 13, []int{4, 9}, 1e-12)
		lt.Causal(t, fast, 6, 3, 1e-12)
		lt.MixerGradCheck(t, fast, 5, 3, 6, 1e-6)

		cfg.PersistentTokens = 0
		without := attentionCase(t, cfg, false)
		without.Store = fast.Store
		x := fast.RandomInput(3, 6)
		y, _ := fast.Run(x, nil)
		yWithout, _ := without.Run(x, nil)
		if err := lt.RelRMS(lt.Floats(y), lt.Floats(yWithout)); err < 1e-3 {
			t.Errorf("window %d: the persistent tokens change nothing (rel diff %.2g)", window, err)
		}
	}
	if _, err := layers.NewAttention(layers.AttentionConfig{Heads: 2, MaxContext: 8, RoPEBase: 10000, PersistentTokens: -1}, 16); err == nil ||
		!strings.Contains(err.Error(), "persistent_tokens = -1") {
		t.Errorf("persistent_tokens = -1: error %v, want one naming the field", err)
	}
}

// contextMixer runs Attention.ApplyWithContext with the context tanh(x) (a token-wise function of x, so
// appending tokens appends context and must not change earlier outputs).
type contextMixer struct{ a *layers.Attention }

func (m contextMixer) StateSpecs(int, dtypes.DType) []layers.StateSpec { return nil }
func (m contextMixer) Apply(scope *model.Scope, x *Node, _ []*Node) (*Node, []*Node) {
	return m.a.ApplyWithContext(scope, x, Tanh(x)), nil
}

// ApplyWithContext (query t over [persistent ; context_{<=t} ; x_{<=t}], context_t at x_t's position):
// the blocked core against the dense masked reference, outputs and gradients of x and every variable;
// causality (the context after t is not seen); finite differences; with and without a window and
// persistent tokens.
func TestAttentionWithContext(t *testing.T) {
	for _, window := range []int{0, 3} {
		for _, persistent := range []int{0, 2} {
			cfg := layers.AttentionConfig{Heads: 2, Window: window, MaxContext: 16, RoPEBase: 10000, PersistentTokens: persistent}
			a, err := layers.NewAttention(cfg, 16)
			if err != nil {
				t.Fatal(err)
			}
			fast := lt.NewMixerCase(contextMixer{a}, 2, 16, 5)
			ref := &lt.MixerCase{Mixer: contextMixer{a.Reference()}, Batch: 2, DModel: 16, Store: fast.Store}
			lt.MixerFastVsReference(t, fast, ref, 9, 0, 1e-12)
			lt.Causal(t, fast, 5, 4, 1e-12)
			lt.MixerGradCheck(t, fast, 6, 0, 6, 1e-6)
		}
	}
}

// With persistent tokens (learned keys without RoPE) a document's scores against them depend on its
// queries' positions, which restart at each document start: packed == separate holds with them too, on
// the fresh (blocked), cached and sliding paths, with short convolutions, and the persistent variable's
// presence matters (TestAttentionPersistentTokens).
func TestAttentionPersistentPackedEqualsSeparate(t *testing.T) {
	defer layers.SetCausalBlock(16)()
	for _, window := range []int{0, 8} {
		for _, conv := range []int{0, 4} {
			for _, prefix := range []int{0, 7} {
				t.Run(fmt.Sprintf("window%d_conv%d_prefix%d", window, conv, prefix), func(t *testing.T) {
					cfg := layers.AttentionConfig{Heads: 2, Window: window, MaxContext: 80, RoPEBase: 10000, ShortConv: conv, PersistentTokens: 3}
					c := attentionCase(t, cfg, false)
					skip := func(name string) bool { return name == "k" || name == "v" || name == "position" }
					worst := lt.PackedEqualsSeparate(t, c, []int{5, 17, 42}, prefix, skip, 1e-12)
					t.Logf("worst relative RMS error %.2g", worst)
				})
			}
		}
	}
}

// Tokens before a row's first document start continue the incoming stream at its positions: a row
// without starts computes bit for bit what Apply (no docStart, RoPE at the stream positions) computes,
// outputs and caches; with a first start at t = 6 the tokens before it are bit-identical to Apply's and
// the tokens from it are those of the document alone (RoPE from position 0). From a carried cache
// (stream position 7) and persistent tokens, so a wrong position shows.
func TestAttentionDocumentPositions(t *testing.T) {
	defer layers.SetCausalBlock(8)()
	for _, window := range []int{0, 5} {
		t.Run(fmt.Sprintf("window%d", window), func(t *testing.T) {
			cfg := layers.AttentionConfig{Heads: 2, Window: window, MaxContext: 40, RoPEBase: 10000, PersistentTokens: 2}
			c := attentionCase(t, cfg, false)
			_, incoming := c.Run(c.RandomInput(43, 7), nil)
			x := c.RandomInput(41, 19)
			y, next := c.Run(x, incoming)

			none := tensors.FromShape(lt.DocumentStarts(c.Batch, []int{19}).Shape())
			yNone, nextNone := c.RunDocuments(x, incoming, none)
			lt.AssertClose(t, "no start: outputs", yNone, y, 0)
			for j, spec := range c.Specs() {
				if spec.Shape.DType.IsFloat() {
					lt.AssertClose(t, "no start: state "+spec.Name, nextNone[j], next[j], 0)
				}
			}

			starts := lt.DocumentStarts(c.Batch, []int{6, 13})
			flat := tensors.MustCopyFlatData[float64](starts)
			for b := 0; b < c.Batch; b++ {
				flat[b*19] = 0 // the row continues the stream up to t = 6
			}
			starts = tensors.FromFlatDataAndDimensions(flat, c.Batch, 19)
			yDocs, _ := c.RunDocuments(x, incoming, starts)
			lt.AssertClose(t, "before the first start", lt.SliceTime(yDocs, 0, 6), lt.SliceTime(y, 0, 6), 0)
			yAlone, _ := c.Run(lt.SliceTime(x, 6, 19), nil)
			lt.AssertClose(t, "the document from t = 6", lt.SliceTime(yDocs, 6, 19), yAlone, 1e-12)
		})
	}
}
