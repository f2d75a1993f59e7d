package titans

import (
	"fmt"

	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// Document starts (layers.DocumentMixer) in the paper-mode memory ops. At a start the weights return to
// their learned initial value and the momentum to zero, and the chunk grid restarts: a document's
// chunks are cut every ChunkSize tokens from its own first token, as when it runs alone. Tokens before
// the row's first start continue the incoming state on the grid the call start anchors (Apply's grid).
//
// The chunked op keeps its fixed grid of chunks from the call start and is still exact. A document's
// chunk (a "segment") that does not sit on the grid is handled by the observation that a grid chunk
// holds at most one segment boundary that is not a document start: such a boundary c lies ChunkSize
// tokens after an earlier segment start, so its document covers the grid chunk's first token, and only
// one document does. A grid chunk's tokens therefore take their gradients at one of three weights:
//
//   - tokens of a document that starts inside the chunk: the learned initial weights (its first segment
//     reaches past the chunk's end);
//   - tokens of the chunk's first document before c: the "anchor", the weights at the start of that
//     document's current segment (the chunk-start weights when the segment starts on the grid, the
//     initial weights when it began at a start inside the previous chunk, else the weights before the
//     previous chunk's boundary c);
//   - tokens from c on: the weights after token c-1, a linear combination of the chunk's earlier
//     rank-1 updates, read off before their own gradients are taken.
//
// Momentum and weights stay linear recurrences within a chunk, with the coefficient matrices masked to
// same-document pairs, the incoming state kept only before the chunk's first start, and the initial
// weights entering at each start decayed from there. The cost is two more gradient passes per chunk
// (initial weights, once per call; and the weights at c) and a few n x n masks.

// docPositions returns each token's position on its document's chunk grid, docStart [B, T] -> [B, T]
// (docStart's dtype): t minus the last start at or before t, or t itself before the row's first start.
// The last start comes from log2(T) shifted maxima (there is no cumulative max op).
func docPositions(docStart *Node) *Node {
	g := docStart.Graph()
	t := Iota(g, shapes.Make(docStart.DType(), docStart.Shape().Dimensions...), 1)
	last := Mul(t, docStart)
	for d := 1; d < docStart.Shape().Dimensions[1]; d *= 2 {
		last = Max(last, layers.CausalShift(last, d))
	}
	return Sub(t, last)
}

// callDocs is the document structure of a call, each [B, 1, T] (the head axis is 1: heads share it).
type callDocs struct {
	start *Node // 1 at a document's first token
	pos   *Node // position on the document's chunk grid (docPositions)
	// bound is 1 at a segment start that is not a document start: pos a positive multiple of ChunkSize.
	bound *Node
}

func newCallDocs(docStart *Node, chunkSize int) callDocs {
	start := StopGradient(docStart)
	pos := docPositions(start)
	isMultiple := Equal(ModScalar(pos, float64(chunkSize)), ZerosLike(pos))
	bound := ConvertDType(And(isMultiple, GreaterThan(pos, ZerosLike(pos))), pos.DType())
	return callDocs{start: InsertAxes(start, 1), pos: InsertAxes(pos, 1), bound: InsertAxes(bound, 1)}
}

// chunkDocs is the document structure of one grid chunk of n tokens, [B, 1, ...].
type chunkDocs struct {
	start *Node // [B, 1, n]
	keep  *Node // [B, 1, n]: 1 before the chunk's first start (tokens that continue the incoming state)
	same  *Node // [B, 1, n, n]: 1 where tokens t and i are in one document
	// renewed [B, 1, n] is 1 from the chunk's inner segment boundary c on (within its first document);
	// beforeRenewal is the one-hot of token c-1 (all 0 when the chunk has no such boundary).
	renewed, beforeRenewal *Node
	// last [B, 1, n] is 1 at position ChunkSize - 1 of a document's grid (a Miras chunk boundary, miras_chunk.go).
	last *Node
	// The anchor of the chunk's first document, one of three [B, 1, 1, 1] 0/1 factors: the chunk-start
	// weights (its segment starts on the grid), the initial weights (it started inside the previous chunk
	// less than ChunkSize tokens ago), or the previous chunk's weights before its boundary c.
	fromStart, fromInit, fromRenewal *Node
}

func newChunkDocs(start, pos, bound *Node, chunkSize int) chunkDocs {
	n := start.Shape().Dimensions[2]
	dtype := start.DType()
	asFloat := func(b *Node) *Node { return ConvertDType(b, dtype) }
	count := CumSum(start, -1)
	d := chunkDocs{start: start, keep: asFloat(Equal(count, ZerosLike(count)))}
	d.last = asFloat(Equal(ModScalar(pos, float64(chunkSize)), Scalar(pos.Graph(), dtype, float64(chunkSize-1))))
	d.same = asFloat(Equal(InsertAxes(count, -1), InsertAxes(count, -2)))
	// The boundary at the chunk's first token is the grid's own (the chunk-start weights): drop it.
	inner, before := ZerosLike(bound), ZerosLike(bound)
	if n > 1 {
		zero := ScalarZero(start.Graph(), dtype)
		inner = Pad(SliceAxis(bound, 2, AxisRange(1, n)), zero, PadAxis{}, PadAxis{}, PadAxis{Start: 1})
		before = Pad(SliceAxis(inner, 2, AxisRange(1, n)), zero, PadAxis{}, PadAxis{}, PadAxis{End: 1})
	}
	d.renewed, d.beforeRenewal = Mul(d.keep, CumSum(inner, -1)), before
	first := InsertAxes(SliceAxis(pos, 2, AxisElem(0)), -1) // [B, 1, 1, 1]
	onGrid := Equal(ModScalar(first, float64(chunkSize)), ZerosLike(first))
	young := LessThan(first, Scalar(first.Graph(), dtype, float64(chunkSize)))
	d.fromStart = asFloat(onGrid)
	d.fromInit = asFloat(And(LogicalNot(onGrid), young))
	d.fromRenewal = asFloat(And(LogicalNot(onGrid), LogicalNot(young)))
	return d
}

// factorSet is a chunk's rank-1 inner-gradient factors (biasGradFactors) and per-token losses.
type factorSet struct {
	ps, rs []*Node
	loss   *Node
}

func newFactorSet(ps, rs []*Node, loss *Node) factorSet { return factorSet{ps: ps, rs: rs, loss: loss} }

// pickTokens returns, per token, a where mask [B, 1, n] is 1 and b elsewhere (exact selection).
func pickTokens(mask *Node, a, b factorSet) factorSet {
	cond := GreaterThan(mask, ScalarZero(mask.Graph(), mask.DType()))
	where := func(x, y *Node) *Node {
		c := cond
		if x.Rank() == 4 {
			c = InsertAxes(c, -1)
		}
		return Where(BroadcastToDims(c, x.Shape().Dimensions...), x, y)
	}
	out := factorSet{loss: where(a.loss, b.loss)}
	for l := range a.ps {
		out.ps, out.rs = append(out.ps, where(a.ps[l], b.ps[l])), append(out.rs, where(a.rs[l], b.rs[l]))
	}
	return out
}

// docCoefs are a chunk's gate coefficients (chunkCoefs) masked to its documents: a and lE [B, H, n, n]
// zero across documents; bt, c, e [B, H, n] zero from the chunk's first start on (the incoming weights
// and momentum reach only the tokens before it); init [B, H, n] the factor of the initial weights in
// W_t, prod_{j=s..t} (1 - alpha_j) from t's document start s in the chunk (0 before the first start).
type docCoefs struct {
	a, lE, bt, c, e, init *Node
}

func newDocCoefs(coefs chunkCoefs, docs chunkDocs) docCoefs {
	keep := docs.keep
	// (L_B)_ts (1 - alpha_s) = B_t / B_{s-1}: the decay of weights reset just before token s.
	fromStart := Mul(coefs.lB, InsertAxes(Mul(docs.start, coefs.gateB), -2))
	return docCoefs{
		a: Mul(coefs.a, docs.same), lE: Mul(coefs.lE, docs.same),
		bt: Mul(coefs.bt, keep), c: Mul(coefs.c, keep), e: Mul(coefs.e, keep),
		init: ReduceSum(Mul(fromStart, docs.same), -1),
	}
}

// stateAt returns the weights (accumulators) and momentum after the token sel [B, 1, n] picks (one-hot;
// all zeros gives zeros), from the chunk's start state st, the initial weights and the chunk's factors
// and (clamped) learning rates theta [B, H, n]:
//
//	W_t = bt_t W0 + c_t S0 + init_t W_init - sum_i a_ti theta_i p_i^T r_i
//	S_t = e_t S0 - sum_i lE_ti theta_i p_i^T r_i
func (m docCoefs) stateAt(sel *Node, st State, init []*Node, f factorSet, theta *Node) State {
	dims := m.a.Shape().Dimensions
	selH := BroadcastToDims(sel, dims[0], dims[1], dims[2])
	pick := func(x *Node) *Node { return InsertAxes(ReduceSum(Mul(selH, x), -1), -1, -1) } // [B, H, 1, 1]
	row := func(x *Node) *Node { return Mul(Squeeze(mm(InsertAxes(selH, 2), x), 2), theta) }
	bt, c, e, in := pick(m.bt), pick(m.c), pick(m.e), pick(m.init)
	wRow, sRow := row(m.a), row(m.lE)
	out := State{W: make([]*Node, len(st.W)), S: make([]*Node, len(st.S))}
	for l := range st.W {
		w := Add(Add(Mul(bt, st.W[l]), Mul(c, st.S[l])), Mul(in, init[l]))
		out.W[l] = Sub(w, tmm(Mul(f.ps[l], InsertAxes(wRow, -1)), f.rs[l]))
		out.S[l] = Sub(Mul(e, st.S[l]), tmm(Mul(f.ps[l], InsertAxes(sRow, -1)), f.rs[l]))
	}
	return out
}

// mixAnchor returns the anchor weights of a chunk (chunkDocs.fromStart/fromInit/fromRenewal): the
// chunk-start weights w0, the initial weights, or the previous chunk's weights before its boundary.
func mixAnchor(d chunkDocs, w0, init, renewal []*Node) []*Node {
	out := make([]*Node, len(w0))
	for l := range w0 {
		out[l] = Add(Add(Mul(d.fromStart, w0[l]), Mul(d.fromInit, init[l])), Mul(d.fromRenewal, renewal[l]))
	}
	return out
}

// ChunkedDocuments is Chunked over rows packing documents: docStart [B, T] (q's dtype) is 1 at a
// document's first token, where the weights return to init (the learned initial weights, or the
// accumulators' initial value, [B, H, in, out] per layer), the momentum to zero and the document's chunk
// grid starts. It equals NaiveDocuments exactly (the comment at the top of this file says how) and, on a
// row without starts, Chunked. The final state is the one after the row's last token.
func ChunkedDocuments(q, k, v *Node, gates Gates, st State, init []*Node, docStart *Node, cfg OpConfig) (y *Node, final State) {
	y, final, _ = chunkedDocumentsWithStats(q, k, v, gates, st, init, docStart, cfg)
	return y, final
}

func chunkedDocumentsWithStats(q, k, v *Node, gates Gates, st State, init []*Node, docStart *Node, cfg OpConfig) (*Node, State, Stats) {
	checkInputs("ChunkedDocuments", q, k, v, perTokenGates(gates), st)
	time := q.Shape().Dimensions[2]
	c := min(cfg.ChunkSize, time)
	docs := newCallDocs(docStart, cfg.ChunkSize)
	ret := cfg.Retention
	initPs, initRs, initLoss := biasGradFactors(ret.weights(init), k, v, cfg.Bias, gates.Delta, cfg.Autodiff)
	cut := func(x *Node) []*Node { return timePieces(x, time, c) }
	qs, ks, vs, thetas, deltas, etas, alphas := cut(q), cut(k), cut(v), cut(gates.Theta), cut(gates.Delta), cut(gates.Eta), cut(gates.Alpha)
	starts, positions, bounds := cut(docs.start), cut(docs.pos), cut(docs.bound)
	initFactors := make([]factorSet, len(qs))
	for j, loss := range cut(initLoss) {
		initFactors[j].loss = loss
	}
	for l := range initPs {
		for j, p := range cut(initPs[l]) {
			initFactors[j].ps = append(initFactors[j].ps, p)
		}
		for j, r := range cut(initRs[l]) {
			initFactors[j].rs = append(initFactors[j].rs, r)
		}
	}
	var ys, losses, clamped []*Node
	var renewal []*Node // the previous chunk's weights before its boundary c
	for j := range qs {
		d := newChunkDocs(starts[j], positions[j], bounds[j], cfg.ChunkSize)
		anchor := st.W // a call's first chunk is on its grid
		if j > 0 {
			anchor = mixAnchor(d, st.W, init, renewal)
		}
		var out chunkOut
		out, st, renewal = chunkStepDocuments(qs[j], ks[j], vs[j], thetas[j], deltas[j], newChunkCoefs(etas[j], alphas[j]), d, st, anchor, init, initFactors[j], cfg)
		ys, losses, thetas[j], clamped = append(ys, out.y), append(losses, out.loss), out.theta, append(clamped, out.clamped)
	}
	final := State{W: ret.weights(st.W), S: st.S}
	return concatTime(ys), st, opStats(losses, thetas, clamped, gates, final)
}

// timePieces cuts x [B, X, T, ...] (nil: a list of nils) into the call's chunks of c tokens along axis 2,
// with layers.SplitAxis when c divides T (one Concatenate in the gradient, not a padded sum per chunk).
func timePieces(x *Node, time, c int) []*Node {
	bounds := chunkBounds(time, c)
	if x == nil {
		return make([]*Node, len(bounds))
	}
	if n := len(bounds); time%c == 0 && n > 1 {
		d := x.Shape().Dimensions
		return layers.SplitAxis(Reshape(x, append([]int{d[0], d[1], n, c}, d[3:]...)...), 2)
	}
	out := make([]*Node, len(bounds))
	for j, b := range bounds {
		out[j] = SliceAxis(x, 2, AxisRange(b[0], b[1]))
	}
	return out
}

// chunkStepDocuments is chunkStep (or chunkStepMapped) for one grid chunk of a row with document starts
// d: the factors of each token at its own weights (anchor, init, or the weights before the chunk's
// boundary, which it also returns), then the masked recurrence.
func chunkStepDocuments(q, k, v, theta, delta *Node, coefs chunkCoefs, d chunkDocs, st State, anchor, init []*Node, initFactors factorSet, cfg OpConfig) (chunkOut, State, []*Node) {
	ret := cfg.Retention
	m := newDocCoefs(coefs, d)
	fromAnchor := newFactorSet(biasGradFactors(ret.weights(anchor), k, v, cfg.Bias, delta, cfg.Autodiff))
	early := pickTokens(d.keep, fromAnchor, initFactors)
	// The weights before the boundary depend on earlier tokens only, whose factors early has right.
	earlyTheta, _ := clampTheta(theta, early.ps, early.rs, cfg.GradClamp)
	renewal := m.stateAt(d.beforeRenewal, st, init, early, earlyTheta).W
	fromRenewal := newFactorSet(biasGradFactors(ret.weights(renewal), k, v, cfg.Bias, delta, cfg.Autodiff))
	f := pickTokens(d.renewed, fromRenewal, early)
	theta, clamped := clampTheta(theta, f.ps, f.rs, cfg.GradClamp)

	n := q.Shape().Dimensions[2]
	aTheta := Mul(m.a, InsertAxes(theta, 2)) // a_ti theta_i
	perToken := func(x *Node) *Node { return InsertAxes(x, -1) }
	var z *Node
	h := q
	for l := range st.W {
		if l > 0 {
			h = silu(z)
		}
		if ret.isL2() {
			z = Add(Add(Mul(perToken(m.bt), mm(h, st.W[l])), Mul(perToken(m.c), mm(h, st.S[l]))), Mul(perToken(m.init), mm(h, init[l])))
			z = Sub(z, mm(Mul(aTheta, mmT(h, f.ps[l])), f.rs[l]))
			continue
		}
		// Each token's accumulator as a matrix [B, H, n, in, out], as chunkStepMapped.
		perMatrix := func(x *Node) *Node { return InsertAxes(x, -1, -1) }
		acc := Add(Add(Mul(perMatrix(m.bt), InsertAxes(st.W[l], 2)), Mul(perMatrix(m.c), InsertAxes(st.S[l], 2))), Mul(perMatrix(m.init), InsertAxes(init[l], 2)))
		scaled := Mul(InsertAxes(aTheta, -1), InsertAxes(f.ps[l], 2))
		acc = Sub(acc, Einsum("bhtij,bhik->bhtjk", scaled, f.rs[l]))
		// Each token's segment-start accumulators: the anchor, the weights before c, or init (miras_chunk.go).
		fromAnchor := Mul(d.keep, OneMinus(d.renewed))
		base := Add(Add(Mul(perMatrix(fromAnchor), InsertAxes(anchor[l], 2)), Mul(perMatrix(d.renewed), InsertAxes(renewal[l], 2))),
			Mul(perMatrix(OneMinus(d.keep)), InsertAxes(init[l], 2)))
		z = Einsum("bhtj,bhtjk->bhtk", h, ret.readWeight(base, acc, perMatrix(d.last)))
	}
	last := OneHot(Const(q.Graph(), []int32{int32(n - 1)}), n, q.DType()) // [1, n]
	next := m.stateAt(Reshape(last, 1, 1, n), st, init, f, theta)
	return chunkOut{y: z, loss: f.loss, theta: theta, clamped: clamped}, next, renewal
}

// NaiveDocuments is the token-by-token reference of ChunkedDocuments: per token t, first the reset at a
// document start (weights to init, momentum to zero), then, at the start of a segment (its position on
// the document's grid a multiple of ChunkSize), the weights its segment's gradients are taken at; then
// Naive's step. Shapes as in ChunkedDocuments.
func NaiveDocuments(q, k, v *Node, gates Gates, st State, init []*Node, docStart *Node, cfg OpConfig) (y *Node, final State) {
	checkInputs("NaiveDocuments", q, k, v, perTokenGates(gates), st)
	time := q.Shape().Dimensions[2]
	start := StopGradient(docStart)
	pos := docPositions(start)
	segment := ConvertDType(Equal(ModScalar(pos, float64(cfg.ChunkSize)), ZerosLike(pos)), pos.DType())
	w := append([]*Node(nil), st.W...)
	s := append([]*Node(nil), st.S...)
	base := append([]*Node(nil), st.W...)
	ret := cfg.Retention
	var ys []*Node
	for t := range time {
		at := func(x *Node) *Node { return Reshape(SliceAxis(x, 1, AxisElem(t)), -1, 1, 1, 1) } // [B, 1, 1, 1]
		token := func(x *Node) *Node { return SliceAxis(x, 2, AxisElem(t)) }
		isStart, isSegment := at(start), at(segment)
		for l := range w {
			w[l] = Add(Mul(isStart, init[l]), Mul(OneMinus(isStart), w[l]))
			s[l] = Mul(OneMinus(isStart), s[l])
			base[l] = Add(Mul(isSegment, w[l]), Mul(OneMinus(isSegment), base[l]))
		}
		var delta *Node
		if gates.Delta != nil {
			delta = token(gates.Delta)
		}
		grads := biasPerTokenGradients(ret.weights(base), token(k), token(v), cfg.Bias, delta)
		th := InsertAxes(clampFullGradients(token(gates.Theta), grads, cfg.GradClamp), -1) // [B, H, 1, 1]
		eta, keep := InsertAxes(token(gates.Eta), -1), OneMinus(InsertAxes(token(gates.Alpha), -1))
		for l := range w {
			s[l] = Sub(Mul(eta, s[l]), Mul(th, Squeeze(grads[l], 2)))
			w[l] = Add(Mul(keep, w[l]), s[l])
		}
		read := w
		if !ret.isL2() { // Miras: base holds the segment-start accumulators (miras_chunk.go)
			isLast := at(ConvertDType(Equal(ModScalar(pos, float64(cfg.ChunkSize)), Scalar(pos.Graph(), pos.DType(), float64(cfg.ChunkSize-1))), pos.DType()))
			read = make([]*Node, len(w))
			for l := range w {
				read[l] = ret.readWeight(base[l], w[l], isLast)
			}
		}
		ys = append(ys, Read(read, token(q)))
	}
	return concatTime(ys), State{W: w, S: s}
}

// ApplyDocuments implements layers.DocumentMixer: Apply over rows packing documents, docStart [B, T] (x's
// dtype, 1 at a document's first token; nil: Apply). At a start the memory weights return to their
// learned initial value, the momentum to zero, the short convolutions restart and the document's chunk
// grid begins (ChunkedDocuments), so each document computes what it computes alone; the returned state is
// the one after the row's last token, that of its last document.
func (m *LMM) ApplyDocuments(scope *model.Scope, x *Node, state []*Node, docStart *Node) (*Node, []*Node) {
	y, next, _ := m.applyDocumentsWithStats(scope, x, state, docStart)
	return y, next
}

// applyDocumentsWithStats is ApplyDocuments with the introspection scalars (ApplyWithStats when docStart
// is nil).
func (m *LMM) applyDocumentsWithStats(scope *model.Scope, x *Node, state []*Node, docStart *Node) (*Node, []*Node, Stats) {
	if docStart == nil {
		return m.ApplyWithStats(scope, x, state)
	}
	batch := x.Shape().Dimensions[0]
	state = layers.StateOrZero(x.Graph(), "titans lmm", m.StateSpecs(batch, x.DType()), state)
	if m.carriesPartialChunk() {
		panic(fmt.Errorf("titans.carry_partial_chunk = true: document starts with a carried partial chunk are not supported (the carried chunk would differ in length from row to row); set reset_at_document_start: false in data.train and data.eval, or carry_partial_chunk: false"))
	}
	if m.Config.Mode == ModeTP {
		return m.applyTPWork(scope, x, state, nil, docStart)
	}
	return m.applyPaper(scope, x, state, docStart)
}

// ApplyDocuments implements layers.DocumentMixer for MAG and MAL: the memory restarts as LMM.ApplyDocuments
// does and the sliding-window attention sees only keys of the query's document
// (layers.Attention.ApplyDocuments; the persistent tokens stay visible to every document). The returned
// window caches are the row's (they still hold the keys of its earlier documents, as layers.Attention's
// do): a call continuing from them is a stream, not a new document.
func (m *MAGOrMAL) ApplyDocuments(scope *model.Scope, x *Node, state []*Node, docStart *Node) (*Node, []*Node) {
	y, next, _ := m.apply(scope, x, state, docStart)
	return y, next
}
