package titans

import (
	"fmt"

	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// Introspector is implemented by every Titans mixer: ApplyWithStats is Apply plus the memory's
// introspection scalars (Stats.Metrics names them for a trainer's log).
type Introspector interface {
	ApplyWithStats(scope *model.Scope, x *Node, state []*Node) (y *Node, next []*Node, stats Stats)
}

// New returns the mixer of cfg.Variant (lmm, mac, mag, mal) for a model of width dModel.
func New(cfg Config, dModel int) (layers.Mixer, error) {
	cfg = cfg.Normalized()
	lmm, err := NewLMM(cfg, dModel)
	if err != nil {
		return nil, err
	}
	if cfg.Variant == VariantLMM {
		return lmm, nil
	}
	if cfg.HeadDim%2 != 0 {
		return nil, fmt.Errorf("titans: head_dim = %d: the attention's RoPE needs an even head dim", cfg.HeadDim)
	}
	// MAC attends within a segment (full causal, no window); MaxContext only satisfies Validate.
	attnCfg := layers.AttentionConfig{Heads: cfg.Heads, HeadDim: cfg.HeadDim, Window: cfg.Window, MaxContext: cfg.SegmentSize,
		RoPEBase: ropeBase, PersistentTokens: cfg.PersistentTokens}
	if cfg.Variant == VariantMAC {
		attnCfg.Window = 0
	}
	attn, err := layers.NewAttention(attnCfg, dModel)
	if err != nil {
		return nil, fmt.Errorf("titans: %w", err)
	}
	if cfg.Variant == VariantMAC {
		// With CarryPartialChunk MAC carries its partial segment itself; its memory runs whole segments.
		inner := cfg
		inner.CarryPartialChunk = false
		lmm, _ = NewLMM(inner, dModel)
		return &MAC{lmm: lmm, attn: attn, carry: cfg.CarryPartialChunk && cfg.SegmentSize > 1}, nil
	}
	return &MAGOrMAL{lmm: lmm, attn: attn, gated: cfg.Variant == VariantMAG}, nil
}

// ropeBase is the RoPE base of the attention inside the Titans variants.
const ropeBase = 10000

// MAC is memory as a context (paper section 4.1). The sequence is cut into segments of
// SegmentSize tokens from the start of the call; for each segment:
//
//	h_t = M_{W0}(q_t)                    retrieval at the segment-start weights W0, q_t = L2(x_t W_Q^r)
//	y   = Attn([p ; h W_h ; x])          causal: token t sees p, h_{<=t} and x_{<=t} of its segment
//	o_t = y_t * sigmoid(LMM(y)_t)        the memory is updated with y and read after token t's write
//
// Its state is the LMM's (the attention never looks beyond its segment). ApplyDocuments
// (macdocuments.go) runs rows packing documents, each document on its own segment grid.
//
// With CarryPartialChunk the state also holds the stream's partial segment ("pending" [B, S-1, D] and
// "pending_count"), and the memory state is the one at that segment's start: a call re-runs [pending ; x]
// on the stream's segment grid and returns the outputs of x, so one call equals any split.
type MAC struct {
	lmm   *LMM
	attn  *layers.Attention // run by ApplyWithContext: [p ; h ; segment], h_t at x_t's position
	carry bool
}

// StateSpecs implements layers.Mixer.
func (m *MAC) StateSpecs(batch int, dtype dtypes.DType) []layers.StateSpec {
	specs := m.lmm.StateSpecs(batch, dtype)
	if m.carry {
		specs = append(specs,
			layers.StateSpec{Name: "pending", Shape: shapes.Make(dtype, batch, m.lmm.Config.SegmentSize-1, m.lmm.DModel)},
			layers.StateSpec{Name: "pending_count", Shape: shapes.Make(dtypes.Int32)})
	}
	return specs
}

// Apply implements layers.Mixer.
func (m *MAC) Apply(scope *model.Scope, x *Node, state []*Node) (*Node, []*Node) {
	y, next, _ := m.ApplyWithStats(scope, x, state)
	return y, next
}

// ApplyWithStats implements Introspector.
func (m *MAC) ApplyWithStats(scope *model.Scope, x *Node, state []*Node) (*Node, []*Node, Stats) {
	dims := x.Shape().Dimensions
	state = layers.StateOrZero(x.Graph(), "titans mac", m.StateSpecs(dims[0], x.DType()), state)
	if m.carry {
		return m.applyCarry(scope, x, state)
	}
	return m.segments(scope, x, state, nil)
}

// applyCarry is ApplyWithStats with the partial segment carried in the state.
func (m *MAC) applyCarry(scope *model.Scope, x *Node, state []*Node) (*Node, []*Node, Stats) {
	n, seg, time := len(state)-2, m.lmm.Config.SegmentSize, x.Shape().Dimensions[1]
	work, count := withPending(x, state[n], state[n+1])
	valid := AddScalar(count, time)
	bounds := [][]*Node{state[:n]}
	y, _, stats := m.segments(scope, work, state[:n], &bounds)
	next := selectNodes(bounds, DivScalar(valid, seg)) // the memory state at the new partial segment's start
	dims := work.Shape().Dimensions
	padded := Concatenate([]*Node{Zeros(work.Graph(), shapes.Make(work.DType(), dims[0], seg-1, dims[2])), work}, 1)
	next = append(next, timeWindow(padded, valid, seg-1), ModScalar(valid, seg))
	return timeWindow(y, count, time), next, stats
}

// segments runs the segments of x from the memory state, appending the state after each segment to
// bounds when it is set.
func (m *MAC) segments(scope *model.Scope, x *Node, state []*Node, bounds *[][]*Node) (*Node, []*Node, Stats) {
	dims := x.Shape().Dimensions
	var outs []*Node
	var all []Stats
	var counts []int
	for _, b := range chunkBounds(dims[1], m.lmm.Config.SegmentSize) {
		xs := SliceAxis(x, 1, AxisRange(b[0], b[1]))
		h := m.retrieve(scope, xs, state)
		y := m.attn.ApplyWithContext(scope.At("attention"), xs, h)
		var mem *Node
		var st Stats
		mem, state, st = m.lmm.ApplyWithStats(scope.At("memory"), y, state)
		if bounds != nil {
			*bounds = append(*bounds, state)
		}
		outs = append(outs, Mul(y, Sigmoid(mem)))
		all, counts = append(all, st), append(counts, b[1]-b[0])
	}
	return Concatenate(outs, 1), state, mergeStats(all, counts)
}

// retrieve is h = M_{W0}(q) mapped back to [B, n, D] ("retrieve/q", "retrieve/output").
func (m *MAC) retrieve(scope *model.Scope, xs *Node, state []*Node) *Node {
	q := m.retrieveQuery(scope, xs)
	return m.retrieveOutput(scope, m.lmm.read(m.lmm.fullWeights(scope.At("memory"), xs, state), q))
}

// retrieveQuery is the retrieval's q = L2(x W_Q^r) per head, [B, H, n, Dh].
func (m *MAC) retrieveQuery(scope *model.Scope, xs *Node) *Node {
	cfg := m.lmm.Config
	dims := xs.Shape().Dimensions
	q := dense(scope.At("retrieve").In("q"), xs, m.lmm.width())
	q = layers.L2NormLast(Reshape(q, dims[0], dims[1], cfg.Heads, cfg.HeadDim), cfg.NormEps)
	return Transpose(q, 1, 2)
}

// retrieveOutput maps the memory's read-out h [B, H, n, Dh] back to [B, n, D].
func (m *MAC) retrieveOutput(scope *model.Scope, h *Node) *Node {
	dims := h.Shape().Dimensions
	h = Reshape(Transpose(h, 1, 2), dims[0], dims[2], m.lmm.width())
	return dense(scope.At("retrieve").In("output"), h, m.lmm.DModel)
}

// MAGOrMAL is MAG (memory as a gate, paper section 4.2) or MAL (memory as a layer, section 4.3):
//
//	MAG: o = W_o (RMSNorm(SWA([p ; x])) * sigmoid(RMSNorm(LMM(x))))
//	MAL: o = SWA([p ; LMM(x)])
//
// Persistent tokens are keys/values of the attention only; the memory starts from its learned initial
// weights, which play the role of having read the (data-independent) persistent tokens first.
// State: the LMM's specs prefixed "memory/", then the attention's prefixed "attention/": "k", "v"
// [B, W-1, H, Dh] and "position" (see attentionSpecs).
type MAGOrMAL struct {
	lmm   *LMM
	attn  *layers.Attention // sliding window of Window tokens, persistent tokens
	gated bool              // MAG when set, else MAL
}

// StateSpecs implements layers.Mixer.
func (m *MAGOrMAL) StateSpecs(batch int, dtype dtypes.DType) []layers.StateSpec {
	return append(layers.PrefixSpecs("memory", m.lmm.StateSpecs(batch, dtype)),
		layers.PrefixSpecs("attention", m.attentionSpecs(batch, dtype))...)
}

// attentionSpecs are layers.Attention's state specs with the key and value caches one slot shorter:
// W-1 tokens, the most a window of W tokens (self included) reaches back. layers.Attention keeps W, the
// oldest never visible; keeping W-1 keeps the state Titans saved before it used layers.Attention, so
// exported memory states still load. attend pads and cuts that slot.
func (m *MAGOrMAL) attentionSpecs(batch int, dtype dtypes.DType) []layers.StateSpec {
	specs := m.attn.StateSpecs(batch, dtype)
	for i := range specs[:2] { // k, v [B, W, H, Dh]
		dims := append([]int{}, specs[i].Shape.Dimensions...)
		dims[1]--
		specs[i].Shape = shapes.Make(dtype, dims...)
	}
	return specs
}

// attend runs the sliding-window attention on x from state (the W-1 slot caches of attentionSpecs): a
// zero slot, which no query sees, goes before each cache, and the oldest slot of the returned caches is
// cut. docStart [B, T] (nil: one sequence) hides other documents' keys.
func (m *MAGOrMAL) attend(scope *model.Scope, x *Node, state []*Node, docStart *Node) (*Node, []*Node) {
	padFront := func(cache *Node) *Node { // every axis named: GoMLX's Pad gradient wants them all
		return Pad(cache, ScalarZero(cache.Graph(), cache.DType()), PadAxis{}, PadAxis{Start: 1}, PadAxis{}, PadAxis{})
	}
	padded := append([]*Node{padFront(state[0]), padFront(state[1])}, state[2:]...)
	y, next := m.attn.ApplyDocuments(scope, x, padded, docStart)
	window := next[0].Shape().Dimensions[1]
	cut := func(cache *Node) *Node { return SliceAxis(cache, 1, AxisRange(1, window)) }
	return y, append([]*Node{cut(next[0]), cut(next[1])}, next[2:]...)
}

// Apply implements layers.Mixer.
func (m *MAGOrMAL) Apply(scope *model.Scope, x *Node, state []*Node) (*Node, []*Node) {
	y, next, _ := m.ApplyWithStats(scope, x, state)
	return y, next
}

// ApplyWithStats implements Introspector.
func (m *MAGOrMAL) ApplyWithStats(scope *model.Scope, x *Node, state []*Node) (*Node, []*Node, Stats) {
	return m.apply(scope, x, state, nil)
}

// apply is ApplyWithStats over rows packing documents when docStart [B, T] is set (documents.go).
func (m *MAGOrMAL) apply(scope *model.Scope, x *Node, state []*Node, docStart *Node) (*Node, []*Node, Stats) {
	batch := x.Shape().Dimensions[0]
	name := "titans mal"
	if m.gated {
		name = "titans mag"
	}
	state = layers.StateOrZero(x.Graph(), name, m.StateSpecs(batch, x.DType()), state)
	numMem := len(m.lmm.StateSpecs(batch, x.DType()))
	mem, memNext, stats := m.lmm.applyDocumentsWithStats(scope.In("memory"), x, state[:numMem], docStart)
	if !m.gated {
		y, attnNext := m.attend(scope.In("attention"), mem, state[numMem:], docStart)
		return y, append(memNext, attnNext...), stats
	}
	att, attnNext := m.attend(scope.In("attention"), x, state[numMem:], docStart)
	eps := m.lmm.Config.NormEps
	gated := Mul(scaleLast(scope.In("attention_norm"), layers.RMSNormalize(att, eps)),
		Sigmoid(scaleLast(scope.In("memory_norm"), layers.RMSNormalize(mem, eps))))
	return dense(scope.In("output"), gated, m.lmm.DModel), append(memNext, attnNext...), stats
}

// Reference returns the mixer m with its memory computed by the token-by-token op (for tests).
func Reference(m layers.Mixer) layers.Mixer {
	switch v := m.(type) {
	case *LMM:
		return v.Reference()
	case *MAC:
		return &MAC{lmm: v.lmm.Reference(), attn: v.attn, carry: v.carry}
	case *MAGOrMAL:
		return &MAGOrMAL{lmm: v.lmm.Reference(), attn: v.attn, gated: v.gated}
	}
	panic(fmt.Errorf("titans.Reference: not a Titans mixer: %T", m))
}
