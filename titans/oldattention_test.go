package titans

// The Titans attention as it was before layers.Attention took a persistent prefix (titans/attention.go
// and the MAC / MAG / MAL types of arch.go at the commit before the change), kept here only to compare
// the new form against it (TestAttentionOldEqualsNew); deleted once the comparison has been recorded.

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/engramlx/engram/layers"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
)

// oldNew is New of the old code for the variants with attention.
func oldNew(cfg Config, dModel int) (layers.Mixer, error) {
	cfg = cfg.Normalized()
	lmm, err := NewLMM(cfg, dModel)
	if err != nil {
		return nil, err
	}
	attn := oldSWA{heads: cfg.Heads, headDim: cfg.HeadDim, window: cfg.Window, persistent: cfg.PersistentTokens, dModel: dModel}
	switch cfg.Variant {
	case VariantMAC:
		inner := cfg
		inner.CarryPartialChunk = false
		lmm, _ = NewLMM(inner, dModel)
		return &oldMAC{lmm: lmm, attn: attn, carry: cfg.CarryPartialChunk && cfg.SegmentSize > 1}, nil
	case VariantMAG, VariantMAL:
		return &oldMAGOrMAL{lmm: lmm, attn: attn, gated: cfg.Variant == VariantMAG}, nil
	}
	return nil, fmt.Errorf("oldNew: variant %s has no attention", cfg.Variant)
}

// oldRopeBase is the RoPE base of the attention inside the Titans variants.
const oldRopeBase = 10000

// oldMaskedScore is the logit of an invisible key: its exp is exactly 0 and it keeps gradients finite.
const oldMaskedScore = -1e9

// oldSWA is sliding-window softmax attention over [persistent tokens ; x] (paper sections 4.2-4.3):
// query t sees the N_p persistent tokens (learned, position-free, always visible) and the last Window
// tokens up to itself. Queries and keys of x carry RoPE at their absolute positions.
//
// Its state: the keys and values of the last Window-1 tokens, "k" and "v" [B, W-1, H, Dh] (rotated),
// and "position" [] int32, the absolute position of the next token. layers.Attention has no persistent
// tokens, hence this small local version.
type oldSWA struct {
	heads, headDim, window, persistent, dModel int
}

func (a oldSWA) specs(batch int, dtype dtypes.DType) []layers.StateSpec {
	kv := shapes.Make(dtype, batch, a.window-1, a.heads, a.headDim)
	return []layers.StateSpec{{Name: "k", Shape: kv}, {Name: "v", Shape: kv}, {Name: "position", Shape: shapes.Make(dtypes.Int32)}}
}

func (a oldSWA) apply(scope *model.Scope, x *Node, state []*Node) (*Node, []*Node) {
	dims := x.Shape().Dimensions
	batch, time := dims[0], dims[1]
	g := x.Graph()
	state = layers.StateOrZero(g, "titans attention", a.specs(batch, x.DType()), state)
	kCache, vCache, position := state[0], state[1], state[2]
	q := layers.RoPE(a.project(scope, "q", x), position, oldRopeBase)
	k := layers.RoPE(a.project(scope, "k", x), position, oldRopeBase)
	v := a.project(scope, "v", x)
	pk, pv := a.persistentKV(scope, x)
	keys := oldConcat(pk, kCache, k)
	values := oldConcat(pv, vCache, v)

	// Absolute positions: query t at p + t; cache slot j at p - (W-1) + j; x's key s at p + s.
	cacheLen := a.window - 1
	queryPos := Add(Iota(g, shapes.Make(dtypes.Int32, time, 1), 0), position)
	keyPos := AddScalar(Add(Iota(g, shapes.Make(dtypes.Int32, 1, cacheLen+time), 1), position), float64(-cacheLen))
	visible := And(And(LessOrEqual(keyPos, queryPos), GreaterThan(keyPos, AddScalar(queryPos, float64(-a.window)))),
		GreaterOrEqual(keyPos, ScalarZero(g, dtypes.Int32)))
	if a.persistent > 0 {
		visible = Concatenate([]*Node{Ones(g, shapes.Make(dtypes.Bool, time, a.persistent)), visible}, 1)
	}
	out := oldAttend(q, keys, values, visible)
	kAll, vAll := Concatenate([]*Node{kCache, k}, 1), Concatenate([]*Node{vCache, v}, 1)
	next := []*Node{
		SliceAxis(kAll, 1, AxisRange(time, time+cacheLen)),
		SliceAxis(vAll, 1, AxisRange(time, time+cacheLen)),
		AddScalar(position, float64(time)),
	}
	return a.output(scope, out), next
}

// project is the per-head projection "name" of x [B, T, D] -> [B, T, H, Dh].
func (a oldSWA) project(scope *model.Scope, name string, x *Node) *Node {
	dims := x.Shape().Dimensions
	return Reshape(dense(scope.At("%s", name), x, a.heads*a.headDim), dims[0], dims[1], a.heads, a.headDim)
}

// persistentKV returns the keys and values [B, N_p, H, Dh] of the learned persistent tokens (variable
// "persistent" [N_p, D] ~ N(0, 1)), projected by the same k and v weights as x; nil when N_p = 0.
func (a oldSWA) persistentKV(scope *model.Scope, x *Node) (k, v *Node) {
	if a.persistent == 0 {
		return nil, nil
	}
	batch := x.Shape().Dimensions[0]
	p := scope.WithInitializer(initializer.RandomNormalFn(scope, 1)).
		VariableWithShape("persistent", shapes.Make(x.DType(), a.persistent, a.dModel)).NodeValue(x.Graph())
	p = BroadcastToDims(InsertAxes(p, 0), batch, a.persistent, a.dModel)
	return a.project(scope, "k", p), a.project(scope, "v", p)
}

func (a oldSWA) output(scope *model.Scope, out *Node) *Node {
	dims := out.Shape().Dimensions
	return dense(scope.In("output"), Reshape(out, dims[0], dims[1], a.heads*a.headDim), a.dModel)
}

// attend is softmax attention of q [B, T, H, Dh] over keys, values [B, S, H, Dh], where visible [T, S]
// (bool, shared by batch and heads) says which keys each query sees. Scores are scaled by 1/sqrt(Dh).
func oldAttend(q, keys, values, visible *Node) *Node {
	dims := q.Shape().Dimensions
	scores := MulScalar(Einsum("bthd,bshd->bhts", q, keys), 1/math.Sqrt(float64(dims[3])))
	time, numKeys := visible.Shape().Dimensions[0], visible.Shape().Dimensions[1]
	mask := BroadcastToDims(Reshape(visible, 1, 1, time, numKeys), scores.Shape().Dimensions...)
	scores = Where(mask, scores, Scalar(q.Graph(), q.DType(), oldMaskedScore))
	return Einsum("bhts,bshd->bthd", Softmax(scores, -1), values)
}

// oldConcat concatenates the non-nil parts along axis 1.
func oldConcat(parts ...*Node) *Node {
	var nonNil []*Node
	for _, p := range parts {
		if p != nil {
			nonNil = append(nonNil, p)
		}
	}
	if len(nonNil) == 1 {
		return nonNil[0]
	}
	return Concatenate(nonNil, 1)
}

// oldMAC is memory as a context (paper section 4.1). The sequence is cut into segments of
// SegmentSize tokens from the start of the call; for each segment:
//
//	h_t = M_{W0}(q_t)                    retrieval at the segment-start weights W0, q_t = L2(x_t W_Q^r)
//	y   = Attn([p ; h W_h ; x])          causal: token t sees p, h_{<=t} and x_{<=t} of its segment
//	o_t = y_t * sigmoid(LMM(y)_t)        the memory is updated with y and read after token t's write
//
// Its state is the LMM's (the attention never looks beyond its segment).
//
// With CarryPartialChunk the state also holds the stream's partial segment ("pending" [B, S-1, D] and
// "pending_count"), and the memory state is the one at that segment's start: a call re-runs [pending ; x]
// on the stream's segment grid and returns the outputs of x, so one call equals any split.
type oldMAC struct {
	lmm   *LMM
	attn  oldSWA
	carry bool
}

// StateSpecs implements layers.Mixer.
func (m *oldMAC) StateSpecs(batch int, dtype dtypes.DType) []layers.StateSpec {
	specs := m.lmm.StateSpecs(batch, dtype)
	if m.carry {
		specs = append(specs,
			layers.StateSpec{Name: "pending", Shape: shapes.Make(dtype, batch, m.lmm.Config.SegmentSize-1, m.lmm.DModel)},
			layers.StateSpec{Name: "pending_count", Shape: shapes.Make(dtypes.Int32)})
	}
	return specs
}

// Apply implements layers.Mixer.
func (m *oldMAC) Apply(scope *model.Scope, x *Node, state []*Node) (*Node, []*Node) {
	y, next, _ := m.ApplyWithStats(scope, x, state)
	return y, next
}

// ApplyWithStats implements Introspector.
func (m *oldMAC) ApplyWithStats(scope *model.Scope, x *Node, state []*Node) (*Node, []*Node, Stats) {
	dims := x.Shape().Dimensions
	state = layers.StateOrZero(x.Graph(), "titans mac", m.StateSpecs(dims[0], x.DType()), state)
	if m.carry {
		return m.applyCarry(scope, x, state)
	}
	return m.segments(scope, x, state, nil)
}

// applyCarry is ApplyWithStats with the partial segment carried in the state.
func (m *oldMAC) applyCarry(scope *model.Scope, x *Node, state []*Node) (*Node, []*Node, Stats) {
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
func (m *oldMAC) segments(scope *model.Scope, x *Node, state []*Node, bounds *[][]*Node) (*Node, []*Node, Stats) {
	dims := x.Shape().Dimensions
	var outs []*Node
	var all []Stats
	var counts []int
	for _, b := range chunkBounds(dims[1], m.lmm.Config.SegmentSize) {
		xs := SliceAxis(x, 1, AxisRange(b[0], b[1]))
		h := m.retrieve(scope, xs, state)
		y := m.attention(scope.At("attention"), xs, h)
		var mem *Node
		var st Stats
		mem, state, st = m.lmm.ApplyWithStats(scope.At("memory"), y, state)
		if bounds != nil {
			*bounds = append(*bounds, state)
		}
		outs = append(outs, Mul(y, layers.FastSigmoid(mem)))
		all, counts = append(all, st), append(counts, b[1]-b[0])
	}
	return oldConcat(outs...), state, mergeStats(all, counts)
}

// retrieve is h = M_{W0}(q) mapped back to [B, n, D] ("retrieve/q", "retrieve/output").
func (m *oldMAC) retrieve(scope *model.Scope, xs *Node, state []*Node) *Node {
	cfg := m.lmm.Config
	dims := xs.Shape().Dimensions
	q := dense(scope.At("retrieve").In("q"), xs, m.lmm.width())
	q = layers.L2NormLast(Reshape(q, dims[0], dims[1], cfg.Heads, cfg.HeadDim), cfg.NormEps)
	h := m.lmm.read(m.lmm.fullWeights(scope.At("memory"), xs, state), Transpose(q, 1, 2))
	h = Reshape(Transpose(h, 1, 2), dims[0], dims[1], m.lmm.width())
	return dense(scope.At("retrieve").In("output"), h, m.lmm.DModel)
}

// attention is causal softmax attention of the segment over [p ; h ; xs], RoPE at in-segment positions.
func (m *oldMAC) attention(scope *model.Scope, xs, h *Node) *Node {
	a := m.attn
	g := xs.Graph()
	n := xs.Shape().Dimensions[1]
	q := layers.RoPE(a.project(scope, "q", xs), nil, oldRopeBase)
	kh, kx := layers.RoPE(a.project(scope, "k", h), nil, oldRopeBase), layers.RoPE(a.project(scope, "k", xs), nil, oldRopeBase)
	pk, pv := a.persistentKV(scope, xs)
	keys := oldConcat(pk, kh, kx)
	values := oldConcat(pv, a.project(scope, "v", h), a.project(scope, "v", xs))
	causal := LowerTriangular(g, n)
	parts := []*Node{causal, causal}
	if a.persistent > 0 {
		parts = append([]*Node{Ones(g, shapes.Make(dtypes.Bool, n, a.persistent))}, parts...)
	}
	return a.output(scope, oldAttend(q, keys, values, Concatenate(parts, 1)))
}

// oldMAGOrMAL is MAG (memory as a gate, paper section 4.2) or MAL (memory as a layer, section 4.3):
//
//	MAG: o = W_o (RMSNorm(SWA([p ; x])) * sigmoid(RMSNorm(LMM(x))))
//	MAL: o = SWA([p ; LMM(x)])
//
// Persistent tokens are keys/values of the attention only; the memory starts from its learned initial
// weights, which play the role of having read the (data-independent) persistent tokens first.
// State: the LMM's specs prefixed "memory/", then the attention's prefixed "attention/".
type oldMAGOrMAL struct {
	lmm   *LMM
	attn  oldSWA
	gated bool // MAG when set, else MAL
}

// StateSpecs implements layers.Mixer.
func (m *oldMAGOrMAL) StateSpecs(batch int, dtype dtypes.DType) []layers.StateSpec {
	return append(layers.PrefixSpecs("memory", m.lmm.StateSpecs(batch, dtype)),
		layers.PrefixSpecs("attention", m.attn.specs(batch, dtype))...)
}

// Apply implements layers.Mixer.
func (m *oldMAGOrMAL) Apply(scope *model.Scope, x *Node, state []*Node) (*Node, []*Node) {
	y, next, _ := m.ApplyWithStats(scope, x, state)
	return y, next
}

// ApplyWithStats implements Introspector.
func (m *oldMAGOrMAL) ApplyWithStats(scope *model.Scope, x *Node, state []*Node) (*Node, []*Node, Stats) {
	batch := x.Shape().Dimensions[0]
	name := "titans mal"
	if m.gated {
		name = "titans mag"
	}
	state = layers.StateOrZero(x.Graph(), name, m.StateSpecs(batch, x.DType()), state)
	numMem := len(m.lmm.StateSpecs(batch, x.DType()))
	mem, memNext, stats := m.lmm.ApplyWithStats(scope.In("memory"), x, state[:numMem])
	if !m.gated {
		y, attnNext := m.attn.apply(scope.In("attention"), mem, state[numMem:])
		return y, append(memNext, attnNext...), stats
	}
	att, attnNext := m.attn.apply(scope.In("attention"), x, state[numMem:])
	eps := m.lmm.Config.NormEps
	gated := Mul(scaleLast(scope.In("attention_norm"), layers.RMSNormalize(att, eps)),
		layers.FastSigmoid(scaleLast(scope.In("memory_norm"), layers.RMSNormalize(mem, eps))))
	return dense(scope.In("output"), gated, m.lmm.DModel), append(memNext, attnNext...), stats
}

// TestAttentionOldEqualsNew holds the variants on layers.Attention to the old local attention: the
// same variables (names, shapes and initial values from one seed), then, with shared weights, the
// outputs, next state and gradients (of x, of the initial state and of every variable) from the start
// of a sequence and from a carried state. It prints the largest differences.
func TestAttentionOldEqualsNew(t *testing.T) {
	const tol = 1e-12
	overall := 0.0
	for _, mode := range []string{ModePaper, ModeTP} {
		for _, variant := range []string{VariantMAC, "mac/carry", VariantMAG, VariantMAL} {
			t.Run(mode+"/"+variant, func(t *testing.T) {
				cfg := configFor(strings.TrimSuffix(variant, "/carry"), mode)
				cfg.CarryPartialChunk = strings.HasSuffix(variant, "/carry")
				newMixer, err := New(cfg, testDModel)
				if err != nil {
					t.Fatal(err)
				}
				oldMixer, err := oldNew(cfg, testDModel)
				if err != nil {
					t.Fatal(err)
				}
				newCase, oldCase := lt.NewMixerCase(newMixer, 2, testDModel, 5), lt.NewMixerCase(oldMixer, 2, testDModel, 5)
				if got, want := newCase.Specs(), oldCase.Specs(); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("state specs %v, want %v", got, want)
				}
				x := newCase.RandomInput(41, 6)
				_, newState := newCase.Run(x, nil)
				_, oldState := oldCase.Run(x, nil)
				worst, worstForward, worstName := 0.0, 0.0, ""
				report := func(name string, got, want *tensors.Tensor) {
					if !got.Shape().Equal(want.Shape()) {
						t.Fatalf("%s: shape %s, want %s", name, got.Shape(), want.Shape())
					}
					d := maxRelDiff(lt.Floats(got), lt.Floats(want))
					if d > worst {
						worst, worstName = d, name
					}
					if !strings.Contains(name, "gradient") {
						worstForward = math.Max(worstForward, d)
					}
					if !(d <= tol) {
						t.Errorf("%s: max |new - old| / max |old| = %.3g > %.3g", name, d, tol)
					}
				}
				// Initial values from the same seed.
				oldVars := map[string]*tensors.Tensor{}
				for v := range oldCase.Store.IterVariables() {
					oldVars[v.Path()] = v.MustValue()
				}
				n, initDiff := 0, 0.0
				for v := range newCase.Store.IterVariables() {
					want, ok := oldVars[v.Path()]
					if !ok {
						t.Errorf("variable %s is new", v.Path())
						continue
					}
					n++
					if got := v.MustValue(); got.DType().IsFloat() {
						report("initial "+v.Path(), got, want)
						initDiff = math.Max(initDiff, maxRelDiff(lt.Floats(got), lt.Floats(want)))
					} else if got.String() != want.String() {
						t.Errorf("initial %s = %s, want %s", v.Path(), got, want)
					}
				}
				if n != len(oldVars) {
					t.Errorf("%d variables, the old code had %d", n, len(oldVars))
				}
				oldCase.Store = newCase.Store // shared weights from here on
				for i, s := range oldState {
					report("state after 6 tokens "+newCase.Specs()[i].Name, newState[i], s)
				}
				for _, start := range []struct {
					name  string
					state []*tensors.Tensor
				}{{"start", nil}, {"carried", oldState}} {
					xs := newCase.RandomInput(43, 11)
					gotOut, gotGrads, names := gradients(newCase, xs, start.state)
					wantOut, wantGrads, wantNames := gradients(oldCase, xs, start.state)
					if fmt.Sprint(names) != fmt.Sprint(wantNames) {
						t.Fatalf("gradient names %v, want %v", names, wantNames)
					}
					for i := range wantOut {
						report(fmt.Sprintf("%s: output %d", start.name, i), gotOut[i], wantOut[i])
					}
					for i := range wantGrads {
						report(start.name+": gradient of "+names[i], gotGrads[i], wantGrads[i])
					}
				}
				t.Logf("%s %s: max |new - old| / max |old|: initial values of the %d variables %.3g; with outputs and states %.3g; with gradients %.3g (%s)",
					mode, variant, n, initDiff, worstForward, worst, worstName)
				overall = math.Max(overall, worst)
			})
		}
	}
	t.Logf("overall max |new - old| / max |old|: %.3g", overall)
}

// maxRelDiff is max_i |got_i - want_i| / max_i |want_i| (0 when both are all zero).
func maxRelDiff(got, want []float64) float64 {
	var diff, scale float64
	for i := range want {
		diff = math.Max(diff, math.Abs(got[i]-want[i]))
		scale = math.Max(scale, math.Abs(want[i]))
	}
	if diff == 0 {
		return 0
	}
	return diff / scale
}

// gradients returns the outputs (y, next state...) of c on x from state and the gradients of
// <y, u_0> + sum_i <next_i, u_i> (fixed random u) with respect to x, the float initial state and every
// trainable variable, in the store's order.
func gradients(c *lt.MixerCase, x *tensors.Tensor, state []*tensors.Tensor) (outs, grads []*tensors.Tensor, names []string) {
	y, next := c.Run(x, state)
	upstream := lt.RandomUpstream(47, append([]*tensors.Tensor{y}, next...))
	numState, numOut := len(state), 0
	exec := model.MustNewExec(lt.Backend(), c.Store, func(_ *model.Scope, in []*Node) []*Node {
		var st []*Node
		if numState > 0 {
			st = in[1 : 1+numState]
		}
		ups := in[1+numState:]
		y, next := c.Mixer.Apply(c.Store.RootScope().In("mixer"), in[0], st)
		results := append([]*Node{y}, next...)
		numOut = len(results)
		loss := ReduceAllSum(Mul(y, ups[0]))
		for i, s := range next {
			if s.DType().IsFloat() {
				loss = Add(loss, ReduceAllSum(Mul(s, ConvertDType(ups[i+1], s.DType()))))
			}
		}
		wrt := []*Node{in[0]}
		names = []string{"x"}
		for i, s := range st {
			if s.DType().IsFloat() {
				wrt = append(wrt, s)
				names = append(names, fmt.Sprintf("initial state %d", i))
			}
		}
		g := in[0].Graph()
		for v := range c.Store.IterVariables() {
			if v.Trainable && v.InUseByGraph(g) {
				wrt = append(wrt, v.NodeValue(g))
				names = append(names, "variable "+v.Path())
			}
		}
		return append(results, Gradient(loss, wrt...)...)
	})
	defer exec.Finalize()
	args := []any{x}
	for _, s := range state {
		args = append(args, s)
	}
	for _, u := range upstream {
		args = append(args, u)
	}
	all := exec.MustCall(args...)
	return all[:numOut], all[numOut:], names
}
