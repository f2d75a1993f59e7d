package gla

import (
	"fmt"
	"math"

	"github.com/engramlx/engram/layers"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// Document starts in packed rows (issue 20). This file is the layer's layers.DocumentMixer and the ops
// it needs: the state restarts from zero at every document start. It repeats Apply's and chunked's
// steps with the document masks added; the packed == separate test in package model compares
// ApplyDocuments with Apply (so the two cannot drift apart unnoticed), and documents_test.go the
// chunked form with the per-token one.

var _ layers.DocumentMixer = (*Layer)(nil)

// ApplyDocuments implements layers.DocumentMixer: Apply over rows packing documents, docStart [B, T]
// (x's dtype, 1 at a document's first token; nil: one document per row, which is Apply). Projections, gates and the output norm are
// per token; the recurrence restarts at each start (NaiveDocuments, ChunkedDocuments).
func (l *Layer) ApplyDocuments(scope *model.Scope, x *Node, state []*Node, docStart *Node) (y *Node, next []*Node) {
	dims := x.Shape().Dimensions
	if len(dims) != 3 || dims[2] != l.dModel {
		panic(fmt.Errorf("gla layer: want x [batch, time, %d], got %s", l.dModel, x.Shape()))
	}
	batch, time, h := dims[0], dims[1], l.cfg.Heads
	state = layers.StateOrZero(x.Graph(), "gla layer", l.StateSpecs(batch, x.DType()), state)
	heads := func(z *Node, width int) *Node { return Reshape(z, batch, time, h, width) }
	q := heads(layers.Dense(scope.In("q_proj"), x, h*l.dk, false), l.dk)
	k := heads(layers.Dense(scope.In("k_proj"), x, h*l.dk, false), l.dk)
	v := heads(layers.Dense(scope.In("v_proj"), x, h*l.dv, false), l.dv)
	gk := heads(l.logDecay(scope, x), l.dk)
	scale := 1 / math.Sqrt(float64(l.dk))
	var o, s *Node
	if time == 1 || l.cfg.Mode == ModeNaive {
		o, s = NaiveDocuments(q, k, v, gk, state[0], docStart, scale)
	} else {
		o, s = ChunkedDocuments(q, k, v, gk, state[0], docStart, scale, l.chunk(time))
	}
	return l.output(scope, x, o), []*Node{s}
}

// NaiveDocuments is Naive over rows packing documents, docStart [B, T] (q's dtype; nil: Naive): the
// state restarts from zero before the step of a document's first token.
func NaiveDocuments(q, k, v, gk, h0, docStart *Node, scale float64) (o, ht *Node) {
	if docStart == nil {
		return Naive(q, k, v, gk, h0, scale)
	}
	h0 = checkInputs("gla.Naive", q, k, v, gk, h0)
	time := q.Shape().Dimensions[1]
	state := h0
	outs := make([]*Node, time)
	for t := range time {
		at := func(x *Node) *Node { return Squeeze(SliceAxis(x, 1, AxisElem(t)), 1) }
		state = Mul(state, InsertAxes(OneMinus(at(docStart)), -1, -1, -1))
		outs[t], state = Step(at(q), at(k), at(v), at(gk), state, scale)
	}
	return Stack(outs, 1), state
}

// ChunkedDocuments is Chunked over rows packing documents, docStart [B, T] (nil: Chunked). With s_r the
// number of starts in the chunk up to r, the intra-chunk scores keep only pairs with s_r = s_i, tokens
// with s_r > 0 do not read the incoming state, and the outgoing state keeps the decayed incoming state
// only when the chunk has no start and the writes of the chunk's last document only. The masks are 0/1
// factors: every exp argument stays what Chunked computes (non-positive), so float32 is as safe.
func ChunkedDocuments(q, k, v, gk, h0, docStart *Node, scale float64, chunkSize int) (o, ht *Node) {
	if docStart == nil {
		return Chunked(q, k, v, gk, h0, scale, chunkSize)
	}
	h0 = checkInputs("gla.Chunked", q, k, v, gk, h0)
	if chunkSize < 1 || (chunkSize > SubChunk && chunkSize%SubChunk != 0) {
		panic(fmt.Errorf("gla.Chunked: chunkSize = %d: want 1..%d or a multiple of %d", chunkSize, SubChunk, SubChunk))
	}
	qd, dd := q.Shape().Dimensions, docStart.Shape().Dimensions
	if len(dd) != 2 || dd[0] != qd[0] || dd[1] != qd[1] || docStart.DType() != q.DType() {
		panic(fmt.Errorf("gla.Chunked: want docStart [B, T] = [%d, %d] %s, got %s", qd[0], qd[1], q.DType(), docStart.Shape()))
	}
	o, ht = chunkedDocuments(headMajor(q), headMajor(k), headMajor(v), headMajor(gk), h0, docStart, scale, chunkSize)
	return headMajor(o), ht
}

// chunkedDocuments is chunked with the document masks; q, k, gk [B, H, T, K], v [B, H, T, V],
// docStart [B, T].
func chunkedDocuments(q, k, v, gk, h0, docStart *Node, scale float64, chunkSize int) (o, ht *Node) {
	dims := q.Shape().Dimensions
	batch, heads, time := dims[0], dims[1], dims[2]
	numChunks := (time + chunkSize - 1) / chunkSize
	chunks := func(x *Node) *Node { // [B, H', T, D] -> [B, H', N, C, D]
		if pad := numChunks*chunkSize - time; pad > 0 {
			padding := make([]PadAxis, x.Rank())
			padding[2] = PadAxis{End: pad}
			x = Pad(x, ScalarZero(x.Graph(), x.DType()), padding...)
		}
		return Reshape(x, batch, x.Shape().Dimensions[1], numChunks, chunkSize, x.Shape().Dimensions[3])
	}
	// s_r [B, 1, N, C, 1]: small integers, exact in any float dtype.
	seg := CumSum(chunks(Reshape(StopGradient(docStart), batch, 1, time, 1)), 3)
	segLast := SliceAxis(seg, 3, AxisElem(chunkSize-1)) // [B, 1, N, 1, 1]
	asFloat := func(b *Node) *Node { return ConvertDType(b, q.DType()) }
	headKeep := asFloat(Equal(seg, ZerosLike(seg)))                                      // before the chunk's first start
	tailKeep := asFloat(Equal(seg, BroadcastToDims(segLast, seg.Shape().Dimensions...))) // in the chunk's last document
	totalKeep := asFloat(Equal(segLast, ZerosLike(segLast)))                             // no start in the chunk
	same := asFloat(Equal(seg, TransposeAllAxes(seg, 0, 1, 2, 4, 3)))                    // [B, 1, N, C(r), C(i)]

	qc, kc, vc := chunks(MulScalar(q, scale)), chunks(k), chunks(v)
	cum := CumSum(chunks(gk), 3)
	last := SliceAxis(cum, 3, AxisElem(chunkSize-1))
	qHead := Mul(Mul(qc, Exp(cum)), headKeep)
	kTail := Mul(Mul(kc, Exp(Sub(last, cum))), tailKeep)
	total := Mul(Reshape(Exp(last), batch, heads, numChunks, -1, 1), totalKeep)

	kParts, vParts, totalParts := layers.SplitAxis(kTail, 2), layers.SplitAxis(vc, 2), layers.SplitAxis(total, 2)
	states := make([]*Node, numChunks)
	state := h0
	for n := range numChunks {
		states[n] = state
		write := DotGeneral(kParts[n], []int{2}, []int{0, 1}, vParts[n], []int{2}, []int{0, 1})
		state = Add(Mul(state, totalParts[n]), write)
	}
	stateStack := layers.StackAxis(states, 2)

	batchAxes := []int{0, 1, 2}
	out := DotGeneral(qHead, []int{4}, batchAxes, stateStack, []int{3}, batchAxes)
	scores := Mul(intraScores(qc, kc, cum), same)
	out = Add(out, DotGeneral(scores, []int{4}, batchAxes, vc, []int{3}, batchAxes))
	out = Reshape(out, batch, heads, numChunks*chunkSize, -1)
	if numChunks*chunkSize != time {
		out = SliceAxis(out, 2, AxisRange(0, time))
	}
	return out, state
}
