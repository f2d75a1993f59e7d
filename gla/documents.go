package gla

import (
	"fmt"
	"math"

	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// Document starts in packed rows (issue 20). This file is the layer's layers.DocumentMixer and the ops
// it needs: the state restarts from zero at every document start. It repeats Apply's steps with the
// document masks added (the chunked form takes them in chunked, from documentMasks); the packed ==
// separate test in package model compares ApplyDocuments with Apply (so the two cannot drift apart
// unnoticed), and documents_test.go the chunked form with the per-token one.

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
	o, ht = chunked(headMajor(q), headMajor(k), headMajor(v), headMajor(gk), h0, docStart, scale, chunkSize)
	return headMajor(o), ht
}

// documentMasks returns, for docStart [B, T] and with s_r the number of starts in the chunk up to r, the
// 0/1 factors (dtype) of ChunkedDocuments: headKeep [B, 1, N, C, 1] = [s_r = 0] (the token reads the
// incoming state), tailKeep [B, 1, N, C, 1] = [s_r = s_C] (its write reaches the outgoing state),
// totalKeep [B, 1, N, 1, 1] = [s_C = 0] (the incoming state survives the chunk) and same [B, 1, N, C, C]
// = [s_r = s_i]. chunks is chunked's [B, H', T, D] -> [B, H', N, C, D].
func documentMasks(chunks func(*Node) *Node, docStart *Node, dtype dtypes.DType) (headKeep, tailKeep, totalKeep, same *Node) {
	dims := docStart.Shape().Dimensions
	seg := CumSum(chunks(Reshape(StopGradient(docStart), dims[0], 1, dims[1], 1)), 3) // small integers, exact
	chunkSize := seg.Shape().Dimensions[3]
	segLast := SliceAxis(seg, 3, AxisElem(chunkSize-1)) // [B, 1, N, 1, 1]
	asFloat := func(b *Node) *Node { return ConvertDType(b, dtype) }
	headKeep = asFloat(Equal(seg, ZerosLike(seg)))
	tailKeep = asFloat(Equal(seg, BroadcastToDims(segLast, seg.Shape().Dimensions...)))
	totalKeep = asFloat(Equal(segLast, ZerosLike(segLast)))
	same = asFloat(Equal(seg, TransposeAllAxes(seg, 0, 1, 2, 4, 3)))
	return headKeep, tailKeep, totalKeep, same
}
