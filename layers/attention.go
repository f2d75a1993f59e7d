package layers

import (
	"fmt"
	"github.com/engramlx/engram/internal/field"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
)

// AttentionConfig configures causal softmax attention (Window = 0) or sliding-window attention.
type AttentionConfig struct {
	Heads   int `yaml:"heads"`
	HeadDim int `yaml:"head_dim"` // 0: d_model / heads
	// Window > 0 makes each query see only the last Window positions, itself included (SWA).
	Window int `yaml:"window"`
	// MaxContext is full attention's KV-cache length when streaming (the most tokens a stream may hold).
	MaxContext int     `yaml:"max_context"`
	RoPEBase   float64 `yaml:"rope_base"`
	// ShortConv > 0 passes q, k and v through a causal depthwise convolution of that kernel size before
	// RoPE, as linear-attention layers do (H3, Based, Gated DeltaNet): a key then also carries the token
	// before it, which makes one-hop recall (MQAR) learnable in one layer. 0 = plain attention.
	ShortConv int `yaml:"short_conv"`
	// PersistentTokens > 0 prepends N_p learned tokens (variable "persistent" [N_p, D] ~ N(0, 1)) to the
	// keys and values: the persistent memory of Titans (Behrouz et al. 2024, section 3.3). They pass
	// through the k and v projections only (no short convolution, no RoPE: they have no position), every
	// query sees them, in every document, and they are not part of the state. Set by the Titans variants
	// (titans.persistent_tokens); not a YAML setting of attention layers, whose export does not describe it.
	PersistentTokens int `yaml:"-"`
}

// DefaultAttentionConfig is 4 heads, full causal attention, a 4096-token streaming cache, RoPE base 10000.
func DefaultAttentionConfig() AttentionConfig {
	return AttentionConfig{Heads: 4, MaxContext: 4096, RoPEBase: 10000}
}

// Validate names the field that is wrong for a model of width dModel.
func (c AttentionConfig) Validate(dModel int) error {
	switch {
	case c.Heads < 1:
		return field.Errorf("attention.heads", c.Heads, "must be >= 1")
	case c.HeadDim == 0 && dModel%c.Heads != 0:
		return field.Errorf("attention.heads", c.Heads, "d_model = %d is not divisible by it", dModel)
	case c.HeadDim < 0 || (c.HeadDim > 0 && c.HeadDim%2 != 0) || (c.HeadDim == 0 && (dModel/c.Heads)%2 != 0):
		return fmt.Errorf("attention.head_dim = %d (d_model/heads = %d): RoPE needs an even head dim", c.HeadDim, dModel/c.Heads)
	case c.Window < 0:
		return field.Errorf("attention.window", c.Window, "must be >= 0 (0 = full attention)")
	case c.Window == 0 && c.MaxContext < 1:
		return field.Errorf("attention.max_context", c.MaxContext, "full attention needs a cache length >= 1")
	case c.RoPEBase <= 1:
		return field.Errorf("attention.rope_base", c.RoPEBase, "must be > 1")
	case c.ShortConv < 0 || c.ShortConv == 1:
		return field.Errorf("attention.short_conv", c.ShortConv, "want 0 (off) or a kernel size >= 2")
	case c.PersistentTokens < 0:
		return field.Errorf("attention.persistent_tokens", c.PersistentTokens, "must be >= 0")
	}
	return nil
}

// Attention is multi-head causal softmax attention with RoPE, as a Mixer. Its state is a cache of
// rotated keys and values plus the absolute position of the next token:
//   - full attention: k, v [B, L, H, Dh], position [] int32, with L = MaxContext (StateSpecs) or the
//     positions a stream needs (StateSpecsForContext, at most MaxContext); tokens past L are dropped;
//   - sliding window: k, v [B, Window, H, Dh] (the last Window tokens), position [] int32;
//   - with ShortConv: also q_conv, k_conv, v_conv [B, ShortConv-1, H*Dh], the convolutions' inputs.
//
// With PersistentTokens the keys and values of the persistent tokens come first; they are computed from
// the variables at each call, not cached.
type Attention struct {
	Config    AttentionConfig
	DModel    int
	reference bool // dense masked attention over [cache ; x]: the plain form tests compare against
}

// NewAttention validates cfg and returns the Mixer.
func NewAttention(cfg AttentionConfig, dModel int) (*Attention, error) {
	if err := cfg.Validate(dModel); err != nil {
		return nil, err
	}
	return &Attention{Config: cfg, DModel: dModel}, nil
}

// Reference returns the same layer computed by the plain dense masked form (for tests).
func (a *Attention) Reference() *Attention {
	r := *a
	r.reference = true
	return &r
}

func (a *Attention) headDim() int {
	if a.Config.HeadDim > 0 {
		return a.Config.HeadDim
	}
	return a.DModel / a.Config.Heads
}

func (a *Attention) cacheLen() int {
	if a.Config.Window > 0 {
		return a.Config.Window
	}
	return a.Config.MaxContext
}

// MaxContext implements ContextLimited for full attention (0 for sliding windows: unlimited).
func (a *Attention) MaxContext() int {
	if a.Config.Window > 0 {
		return 0
	}
	return a.Config.MaxContext
}

// StateSpecs implements Mixer: full attention's cache holds MaxContext positions (see
// StateSpecsForContext for a smaller one).
func (a *Attention) StateSpecs(batch int, dtype dtypes.DType) []StateSpec {
	return a.specs(batch, dtype, a.cacheLen())
}

// StateSpecsForContext implements ContextSized: full attention's cache holds min(positions, MaxContext)
// positions (positions <= 0: MaxContext); a sliding window's always holds Window. Apply takes the cache
// length from the state it is given, so a stream started from these specs keeps them.
func (a *Attention) StateSpecsForContext(batch int, dtype dtypes.DType, positions int) []StateSpec {
	length := a.cacheLen()
	if a.Config.Window == 0 && positions > 0 {
		length = min(positions, a.Config.MaxContext)
	}
	return a.specs(batch, dtype, length)
}

func (a *Attention) specs(batch int, dtype dtypes.DType, cacheLen int) []StateSpec {
	kv := shapes.Make(dtype, batch, cacheLen, a.Config.Heads, a.headDim())
	specs := []StateSpec{{Name: "k", Shape: kv}, {Name: "v", Shape: kv}, {Name: "position", Shape: shapes.Make(dtypes.Int32)}}
	if a.Config.ShortConv > 0 {
		conv := shapes.Make(dtype, batch, a.Config.ShortConv-1, a.Config.Heads*a.headDim())
		specs = append(specs, StateSpec{Name: "q_conv", Shape: conv}, StateSpec{Name: "k_conv", Shape: conv}, StateSpec{Name: "v_conv", Shape: conv})
	}
	return specs
}

// Apply implements Mixer: x [B, T, D] -> [B, T, D].
func (a *Attention) Apply(scope *model.Scope, x *Node, state []*Node) (*Node, []*Node) {
	return a.ApplyDocuments(scope, x, state, nil)
}

// ApplyDocuments implements DocumentMixer: Apply over rows packing documents, docStart [B, T] (nil:
// Apply). A query sees only keys of its own document (documents are numbered by DocumentIDs; the cached
// keys before the call count as document 0, so a start at t = 0 hides the whole cache), the short
// convolutions restart at each start, and so do the RoPE positions: a token of a document starting at s
// inside the row is rotated at t - s, as if its document ran alone; tokens before the row's first start
// keep their stream positions (position + t). Positions are then [B, T] (documentPositions) instead of
// Apply's [T]; a row without starts rotates, masks and caches exactly as Apply does.
//
// The returned cache is the row's: it still holds the keys of the row's earlier documents, and a call
// continuing from it (a stream) sees them, because the cache records positions, not documents (and the
// position is one scalar for the batch, so it cannot restart per row; the cached keys of documents that
// started in the row are rotated at their in-document positions, while the next call's queries continue
// from position + T). Outputs inside the call are those of the documents run alone; carrying the state
// across rows that pack documents is not supported. The persistent tokens belong to the layer, not to a
// document: every document sees them, and since its positions restart, sees them as it does alone.
func (a *Attention) ApplyDocuments(scope *model.Scope, x *Node, state []*Node, docStart *Node) (*Node, []*Node) {
	if docStart != nil && a.reference {
		panic(fmt.Errorf("attention: the dense reference form does not take document starts"))
	}
	dims := x.Shape().Dimensions
	batch, time := dims[0], dims[1]
	g := x.Graph()
	heads, headDim := a.Config.Heads, a.headDim()
	fresh := state == nil
	specs := a.StateSpecs(batch, x.DType())
	if !fresh && a.Config.Window == 0 && len(state) > 0 && state[0].Rank() == 4 {
		// A cache sized for the stream (StateSpecsForContext): at most MaxContext positions.
		if length := state[0].Shape().Dimensions[1]; length >= 1 && length <= a.Config.MaxContext {
			specs = a.StateSpecsForContext(batch, x.DType(), length)
		}
	}
	state = StateOrZero(g, "attention", specs, state)
	kCache, vCache, position := state[0], state[1], state[2]

	var convNext []*Node
	// The q, k, v projections read x through one Share and one FeaturesFirst transpose, so their weight
	// gradients need no transposes (autodiff of Dense transposes x and the adjoint per projection: 30% of
	// the quickstart's training step).
	xs, xT := Share(x), FeaturesFirst(x)
	project := func(name string, convIndex int) *Node {
		y := Projection(scope.In("%s", name), xs, xT, heads*headDim)
		if a.Config.ShortConv > 0 {
			var cache *Node
			y, cache = ShortConvDocuments(scope.In("%s_conv", name), y, a.Config.ShortConv, state[3+convIndex], docStart)
			convNext = append(convNext, cache)
		}
		return Reshape(y, batch, time, heads, headDim)
	}
	qRaw, kRaw, vRaw := project("q", 0), project("k", 1), project("v", 2)
	prefix := a.persistentPrefix(scope, g, x.DType())
	scale := 1 / math.Sqrt(float64(headDim))
	output := func(out *Node) *Node { // out [B, T, H, Dh] -> [B, T, D]
		return ProjectionOf(scope.In("output"), Reshape(out, batch, time, heads*headDim), a.DModel)
	}
	if !a.reference {
		// Head-major [B, H, T, Dh] from here on; RoPE in that layout. Time-major rotated keys only for the
		// cache.
		rope := func(x *Node) *Node { return ropeHeadMajor(x, position, a.Config.RoPEBase) }
		if docStart != nil {
			// Positions restart at each document start, so a document's queries meet the persistent keys
			// (which have no position) as they do when it runs alone.
			positions := documentPositions(docStart, position)
			rope = func(x *Node) *Node { return ropeHeadMajorAt(x, positions, a.Config.RoPEBase) }
		}
		q := MulScalar(rope(headMajor(qRaw)), scale)
		kh := rope(headMajor(kRaw))
		vh := headMajor(vRaw)
		k := timeMajor(kh)
		var docID *Node
		if docStart != nil {
			docID = DocumentIDs(docStart)
		}
		var out *Node
		var next []*Node
		switch {
		case a.Config.Window > 0:
			out = slidingWindowAttention(q, kh, vh, headMajor(kCache), headMajor(vCache), position, a.Config.Window, docID, prefix)
			next = a.slideCache(kCache, vCache, k, vRaw, position, time)
		case fresh:
			// Start of sequence: causal attention over x, the cache built by padding (no T x MaxContext work).
			if time > a.Config.MaxContext {
				panic(fmt.Errorf("attention: %d tokens exceed attention.max_context = %d", time, a.Config.MaxContext))
			}
			out = causalAttention(q, kh, vh, docID, prefix)
			next = []*Node{PadTime(k, a.Config.MaxContext-time), PadTime(vRaw, a.Config.MaxContext-time), AddScalar(position, float64(time))}
		default:
			kExt, kNext := writeCache(kCache, k, position)
			vExt, vNext := writeCache(vCache, vRaw, position)
			keyDoc := cacheDocumentIDs(docID, kExt.Shape().Dimensions[1], position)
			out = cachedAttention(q, headMajor(kExt), headMajor(vExt), position, keyDoc, prefix)
			next = []*Node{kNext, vNext, AddScalar(position, float64(time))}
		}
		return output(timeMajor(out)), append(next, convNext...)
	}

	// The reference: time-major, dense masked attention, one-hot cache writes.
	q := MulScalar(RoPE(qRaw, position, a.Config.RoPEBase), scale)
	k := RoPE(kRaw, position, a.Config.RoPEBase)
	v := vRaw
	var out *Node
	var next []*Node
	if a.Config.Window > 0 {
		keyOffset := AddScalar(position, float64(-a.Config.Window))
		out = denseAttention(q, Concatenate([]*Node{kCache, k}, 1), Concatenate([]*Node{vCache, v}, 1), position, keyOffset, a.Config.Window, prefix)
		next = a.slideCache(kCache, vCache, k, v, position, time)
	} else {
		kAll, vAll := writeCacheOneHot(kCache, k, position), writeCacheOneHot(vCache, v, position)
		out = denseAttention(q, kAll, vAll, position, nil, 0, prefix)
		next = []*Node{kAll, vAll, AddScalar(position, float64(time))}
	}
	return output(out), append(next, convNext...)
}

// slideCache returns the state after x for a sliding window: the last Window keys/values of [cache ; x].
func (a *Attention) slideCache(kCache, vCache, k, v, position *Node, time int) []*Node {
	w := a.Config.Window
	kAll := Concatenate([]*Node{kCache, k}, 1)
	vAll := Concatenate([]*Node{vCache, v}, 1)
	return []*Node{
		SliceAxis(kAll, 1, AxisRange(time, time+w)),
		SliceAxis(vAll, 1, AxisRange(time, time+w)),
		AddScalar(position, float64(time)),
	}
}

// persistentPrefix returns the keys and values of the persistent tokens (nil when PersistentTokens = 0):
// the variable "persistent" [N_p, D] ~ N(0, 1) through the k and v projections, head-major [1, H, N_p, Dh].
func (a *Attention) persistentPrefix(scope *model.Scope, g *Graph, dtype dtypes.DType) *kvPrefix {
	n := a.Config.PersistentTokens
	if n == 0 {
		return nil
	}
	heads, headDim := a.Config.Heads, a.headDim()
	p := scope.WithInitializer(initializer.RandomNormalFn(scope, 1)).
		VariableWithShape("persistent", shapes.Make(dtype, n, a.DModel)).NodeValue(g)
	project := func(name string) *Node { // At: the projection's scope is also entered (In) for x
		return headMajor(Reshape(Dense(scope.At("%s", name), p, heads*headDim, false), 1, n, heads, headDim))
	}
	k := project("k")
	return &kvPrefix{k: k, v: project("v")}
}

// ApplyWithContext is attention from the start of a sequence, without state, of x [B, T, D] over the
// keys and values of [persistent tokens ; context ; x], where context [B, T, D] is a second sequence
// aligned with x: context_t takes x_t's position, in RoPE and in the mask, so query t sees context_s and
// x_s for s <= t (and s > t - Window when Window > 0). Titans' MAC runs it on each segment with the
// memory's read-out h as context (titans/arch.go). Returns [B, T, D].
//
// The scores are one block (all T queries over all keys), meant for segments of up to a few hundred
// tokens. Short convolutions are not defined for it (panics when ShortConv > 0).
func (a *Attention) ApplyWithContext(scope *model.Scope, x, context *Node) *Node {
	return a.ApplyWithContextDocuments(scope, x, context, nil)
}

// ApplyWithContextDocuments is ApplyWithContext over rows packing documents, docStart [B, T] (x's dtype,
// 1 at a document's first token; nil: ApplyWithContext): query t sees context_s and x_s only for s of
// its own document (and the persistent tokens), and RoPE positions restart at each start (t - s for a
// document starting at s; t itself before the row's first start), so each document computes what it
// computes alone. Titans' MAC runs it on rows of whole memory segments (titans/documents.go).
func (a *Attention) ApplyWithContextDocuments(scope *model.Scope, x, context, docStart *Node) *Node {
	if docStart != nil && a.reference {
		panic(fmt.Errorf("attention: the dense reference form does not take document starts"))
	}
	if a.Config.ShortConv > 0 {
		panic(fmt.Errorf("attention: ApplyWithContext does not take short convolutions (short_conv = %d)", a.Config.ShortConv))
	}
	dims := x.Shape().Dimensions
	batch, time := dims[0], dims[1]
	g, dtype := x.Graph(), x.DType()
	heads, headDim := a.Config.Heads, a.headDim()
	project := func(name string, in *Node) *Node { // [B, T, D] -> head-major [B, H, T, Dh]
		y := Dense(scope.At("%s", name), Reshape(in, batch*time, a.DModel), heads*headDim, false)
		return headMajor(Reshape(y, batch, time, heads, headDim))
	}
	rope := func(x *Node) *Node { return ropeHeadMajor(x, nil, a.Config.RoPEBase) }
	if docStart != nil {
		positions := documentPositions(docStart, ScalarZero(g, dtypes.Int32))
		rope = func(x *Node) *Node { return ropeHeadMajorAt(x, positions, a.Config.RoPEBase) }
	}
	q := MulScalar(rope(project("q", x)), 1/math.Sqrt(float64(headDim)))
	kc, kx := rope(project("k", context)), rope(project("k", x))
	// The prefix between the k and v projections: the variables are created in the order Titans' MAC
	// created them before it used this layer (q, k, persistent, v, output), so a model built from a seed
	// starts from the same values as before.
	prefix := a.persistentPrefix(scope, g, dtype)
	keys := Concatenate([]*Node{kc, kx}, 2)
	values := Concatenate([]*Node{project("v", context), project("v", x)}, 2)

	queryPos := Iota(g, shapes.Make(dtypes.Int32, time, 1), 0)
	keyPos := Iota(g, shapes.Make(dtypes.Int32, 1, time), 1)
	band := LessOrEqual(keyPos, queryPos)
	if a.Config.Window > 0 {
		band = And(band, GreaterThan(keyPos, AddScalar(queryPos, float64(-a.Config.Window))))
	}
	visible := Concatenate([]*Node{band, band}, 1) // [T, 2T]: context, then x
	var out *Node
	if a.reference {
		out = maskedAttention(q, keys, values, visible, prefix)
	} else {
		bias := Reshape(Where(visible, Zeros(g, shapes.Make(dtype, time, 2*time)), Scalar(g, dtype, maskedOut)), 1, 1, time, 2*time)
		if docStart != nil { // [B, 1, T, 2T]: keys of the query's document only
			docID := DocumentIDs(docStart)
			bias = Add(bias, documentBias(docID, Concatenate([]*Node{docID, docID}, 1), dtype))
		}
		keys, values = prefix.prepend(keys, values)
		out = attendCore(q, keys, values, prefix.padBias(bias))
	}
	y := Dense(scope.In("output"), Reshape(timeMajor(out), batch*time, heads*headDim), a.DModel, false)
	return Reshape(y, batch, time, a.DModel)
}
