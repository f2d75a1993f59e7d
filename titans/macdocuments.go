package titans

import (
	"fmt"

	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// MAC over rows packing documents (layers.DocumentMixer). A document run alone cuts its segments every
// SegmentSize (S) tokens from its own first token; tokens before the row's first start continue the
// incoming state on the grid the call start anchors. Call these segments of the documents "pieces": a
// piece starts where a token's position on its document's grid (docPositions) is a multiple of S.
//
// A piece's retrieval reads the memory weights left by its document's previous piece (the learned
// initial weights for a document's first piece), so pieces of one document run in order, and the memory
// must be run up to each piece's end before the next piece can read. The pieces do not sit on a fixed grid
// of the row, and their ends differ from row to row. The schedule used here is exact and keeps every
// shape static:
//
//   - Round j (j = 0 .. ceil(T/S)-1) takes the pieces that start in [jS, (j+1)S): a contiguous run of
//     tokens [a_j, a_{j+1}), a_j the first piece start at or after jS, shorter than 2S. At most one of
//     them continues a document from the previous round (the one at a_j, when a_j is no document start),
//     and at most one is continued in the next round (the last, then a whole piece of S tokens): two
//     pieces of one document are S tokens apart and cannot both start inside one grid cell of S.
//   - The round's tokens are gathered per row into a buffer of min(2S-1, T) tokens from a_j (the tokens
//     after a_{j+1} are the next round's: causal masks keep them out). The first piece reads the carried
//     memory weights when it continues a document, every other piece the initial weights; the attention
//     is layers.Attention.ApplyWithContextDocuments with the pieces as its documents (keys of the query's
//     piece only, RoPE positions restarting at each piece, as MAC's per-segment attention has them).
//   - The memory state carried to the next round is the LMM's state after the round's last piece when
//     that one is whole: the LMM (Apply) runs on its S outputs y, gathered per row, from the carried state
//     (it continues a document) or from the zero state (it begins one: a reset at a piece's first token
//     is the start of a sequence).
//   - The rounds' y, gathered back into row order, go through one LMM.ApplyDocuments over the row from
//     the incoming state, which is exact for MAC: a document's per-segment LMM calls chain into one call
//     on the document (S is a multiple of ChunkSize). Its outputs gate y, and its state is the returned one.
//
// The cost against Apply: attention over buffers of up to 2S-1 queries and twice as many keys (about 4x the
// scores), two memory reads per buffer token, the LMM's plain op over the carried pieces and its document
// op over the row, plus the gathers (titans/doc.go gives BenchmarkMAC's numbers).

// ApplyDocuments implements layers.DocumentMixer: Apply over rows packing documents, docStart [B, T] (x's
// dtype, 1 at a document's first token; nil: Apply). At a start the memory returns to its learned
// initial weights with zero momentum, its short convs restart, and the document's segment grid begins,
// so each document computes what it computes alone (the comment at the top of this file says how). The
// returned state is the one after the row's last token. CarryPartialChunk is refused (the carried
// partial segment would differ in length from row to row after a start), and so are titans_pytorch TTT
// batches that do not divide SegmentSize (MAC cuts TTT batches at each segment, one LMM call over a
// document would not).
func (m *MAC) ApplyDocuments(scope *model.Scope, x *Node, state []*Node, docStart *Node) (*Node, []*Node) {
	if docStart == nil {
		return m.Apply(scope, x, state)
	}
	cfg := m.lmm.Config
	if m.carry {
		panic(fmt.Errorf("titans.carry_partial_chunk = true: MAC with document starts and a carried partial segment is not supported (the carried segment would differ in length from row to row); set reset_at_document_start: false in data.train and data.eval, or carry_partial_chunk: false"))
	}
	if cfg.Mode == ModeTP && cfg.TTTBatchSize > 0 && cfg.SegmentSize%cfg.TTTBatchSize != 0 {
		panic(fmt.Errorf("titans.ttt_batch_size = %d: MAC with document starts needs TTT batches that divide segment_size %d", cfg.TTTBatchSize, cfg.SegmentSize))
	}
	batch := x.Shape().Dimensions[0]
	state = layers.StateOrZero(x.Graph(), "titans mac", m.StateSpecs(batch, x.DType()), state)
	y := m.documentRounds(scope, x, state, docStart)
	mem, next, _ := m.lmm.applyDocumentsWithStats(scope.At("memory"), y, state, docStart)
	return Mul(y, Sigmoid(mem)), next
}

// documentRounds returns MAC's attention outputs y [B, T, D] over a row packing documents, round by round
// (the comment at the top of this file).
func (m *MAC) documentRounds(scope *model.Scope, x *Node, state []*Node, docStart *Node) *Node {
	g := x.Graph()
	dims := x.Shape().Dimensions
	batch, time := dims[0], dims[1]
	seg := m.lmm.Config.SegmentSize
	rounds := (time + seg - 1) / seg
	width := min(2*seg-1, time)
	start := StopGradient(docStart)
	pos := ConvertDType(docPositions(start), dtypes.Int32)                    // position on the document's grid
	inPiece := ModScalar(pos, float64(seg))                                   // position in the token's piece
	pieceStart := ConvertDType(Equal(inPiece, ZerosLike(inPiece)), x.DType()) // 1 at a piece's first token
	first := firstPieceStarts(pieceStart, seg, rounds)                        // [B, rounds+1]: a_0 .. a_rounds (= T)

	index := func(n int) *Node { return Iota(g, shapes.Make(dtypes.Int32, batch, n), 1) }
	clampTo := func(i *Node, hi int) *Node {
		return MinScalar(MaxScalar(i, int32(0)), int32(hi))
	}
	init := m.lmm.initialWeights(scope.At("memory"), x)
	carried := state
	var ys []*Node
	for j := range rounds {
		from, to := SliceAxis(first, 1, AxisElem(j)), SliceAxis(first, 1, AxisElem(j+1)) // [B, 1]
		idx := clampTo(Add(index(width), from), time-1)
		xs := gatherTime(x, idx)
		starts, pieces := gatherTime(start, idx), gatherTime(pieceStart, idx)
		// The buffer's first piece continues the carried memory unless it begins a document.
		ids := CumSum(pieces, 1)
		startsFirst := SliceAxis(starts, 1, AxisElem(0))
		continues := And(Equal(ids, SliceAxis(ids, 1, AxisElem(0))), Equal(startsFirst, ZerosLike(startsFirst)))
		q := m.retrieveQuery(scope, xs)
		read := func(ws []*Node) *Node { return m.lmm.read(ws, q) }
		hCarried, hInit := read(m.lmm.fullWeights(scope.At("memory"), xs, carried)), read(init)
		choose := BroadcastToDims(Reshape(continues, batch, 1, width, 1), hInit.Shape().Dimensions...)
		h := m.retrieveOutput(scope, Where(choose, hCarried, hInit))
		y := m.attn.ApplyWithContextDocuments(scope.At("attention"), xs, h, pieces)
		ys = append(ys, y)
		if j == rounds-1 {
			break
		}
		// The memory after the round's last piece [a_{j+1} - S, a_{j+1}), from the carried state when
		// that piece is the buffer's first and continues its document, else from a reset.
		lastFrom := AddScalar(to, float64(-seg))
		offset := clampTo(Sub(lastFrom, from), width-seg)
		lastY := gatherTime(y, Add(index(seg), offset))
		// A reset at the piece's first token is the zero state (the start of a sequence), so the plain
		// LMM runs it.
		reset := GreaterThan(gatherTime(start, clampTo(lastFrom, time-1)), ScalarZero(g, x.DType())) // [B, 1]
		restart := make([]*Node, len(carried))
		for i, s := range carried {
			cond := BroadcastToDims(Reshape(reset, append([]int{batch}, ones(s.Rank()-1)...)...), s.Shape().Dimensions...)
			restart[i] = Where(cond, ZerosLike(s), s)
		}
		_, carried, _ = m.lmm.ApplyWithStats(scope.At("memory"), lastY, restart)
	}
	// Token t of round r(t) = floor(s / S), s its piece's start, sits at r(t) * width + t - a_r(t).
	t := index(time)
	round := DivScalar(Sub(t, inPiece), float64(seg))
	slot := Sub(Add(MulScalar(round, float64(width)), t), gatherTime(first, round))
	return gatherTime(Concatenate(ys, 1), slot)
}

// firstPieceStarts returns, per row, a_j = the first piece start at or after j*seg (T when none), for
// j = 0 .. rounds (a_rounds = T), [B, rounds+1] int32, from pieceStart [B, T] (1 at a piece's first
// token). The next start at or after t is a running minimum from the right, in log2(T) doubling steps.
func firstPieceStarts(pieceStart *Node, seg, rounds int) *Node {
	g := pieceStart.Graph()
	dims := pieceStart.Shape().Dimensions
	batch, time := dims[0], dims[1]
	none := Scalar(g, dtypes.Int32, time)
	t := Iota(g, shapes.Make(dtypes.Int32, batch, time), 1)
	next := Where(GreaterThan(pieceStart, ZerosLike(pieceStart)), t, BroadcastToDims(none, batch, time))
	for shift := 1; shift < time; shift *= 2 {
		later := Pad(SliceAxis(next, 1, AxisRange(shift, time)), none, PadAxis{}, PadAxis{End: shift})
		next = Min(next, later)
	}
	var cols []*Node
	for j := range rounds {
		cols = append(cols, SliceAxis(next, 1, AxisElem(j*seg)))
	}
	cols = append(cols, BroadcastToDims(Reshape(none, 1, 1), batch, 1))
	return Concatenate(cols, 1)
}

// ones returns n ones (the unit axes of a Reshape).
func ones(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = 1
	}
	return out
}

// gatherTime picks x [B, T, ...] at per-row times idx [B, n] (int32, in range) -> [B, n, ...].
func gatherTime(x, idx *Node) *Node {
	dims := idx.Shape().Dimensions
	rows := Iota(x.Graph(), shapes.Make(dtypes.Int32, dims[0], dims[1], 1), 0)
	return Gather(x, Concatenate([]*Node{rows, InsertAxes(idx, -1)}, 2))
}
