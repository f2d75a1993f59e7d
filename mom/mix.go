package mom

import (
	"fmt"
	"math"

	"github.com/engramlx/engram/deltanet"
	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// Mix runs E memories over one token stream with the chunkwise-parallel gated delta rule
// (deltanet.Chunked) and returns their routed mixture.
//
//	q [B, T, H, K] (shared by the memories); k [B, T, E, H, K]; v [B, T, E, H, V];
//	beta, g [B, T, E, H]; mask, weight [B, T, E]; h0 [B, E*H, K, V] (nil = zeros)
//	-> o [B, T, H, V] = sum_e mask_te weight_te o_te,  ht [B, E*H, K, V]
//
// mask is 1 where the token is routed to memory e and 0 elsewhere. An unrouted token is turned into a
// step that leaves the memory unchanged (g = 0 so alpha = 1, beta = 0, k = 0) and its output is
// dropped, so memory e's outputs and final state equal running the gated delta rule over the
// subsequence of its routed tokens alone (mix_test.go checks this against gather/scatter). The
// memories run side by side as E*H heads of one op (head e*H + h is head h of memory e), which is
// also the layout of the state.
func Mix(q, k, v, beta, g, mask, weight, h0 *Node, scale float64, chunkSize int, opts deltanet.Options) (o, ht *Node) {
	if chunkSize < 1 {
		panic(fmt.Errorf("mom.Mix: chunkSize must be >= 1, got %d", chunkSize))
	}
	return mix("mom.Mix", q, k, v, beta, g, mask, weight, h0, nil, chunkedRecurrence(scale, chunkSize, opts))
}

// MixNaive is Mix with the per-token recurrence (deltanet.Naive): the reference, and the decode step
// for T = 1.
func MixNaive(q, k, v, beta, g, mask, weight, h0 *Node, scale float64, opts deltanet.Options) (o, ht *Node) {
	return mix("mom.MixNaive", q, k, v, beta, g, mask, weight, h0, nil, naiveRecurrence(scale, opts))
}

// recurrence is one memory's op over [B', T', heads, ...] tensors with document starts docStart
// [B', T'] (nil: one document).
type recurrence func(q, k, v, beta, g, h0, docStart *Node) (o, ht *Node)

func chunkedRecurrence(scale float64, chunkSize int, opts deltanet.Options) recurrence {
	return func(q, k, v, beta, g, h0, docStart *Node) (*Node, *Node) {
		return deltanet.ChunkedDocuments(q, k, v, beta, g, h0, docStart, scale, min(chunkSize, q.Shape().Dimensions[1]), opts)
	}
}

func naiveRecurrence(scale float64, opts deltanet.Options) recurrence {
	return func(q, k, v, beta, g, h0, docStart *Node) (*Node, *Node) {
		return deltanet.NaiveDocuments(q, k, v, beta, g, h0, docStart, scale, opts)
	}
}

// mix is Mix with the recurrence given; docStart [B, T] (nil: one document) restarts every memory at
// each document start, routed there or not (an unrouted token is still a step of every memory).
func mix(op string, q, k, v, beta, g, mask, weight, h0, docStart *Node, run recurrence) (o, ht *Node) {
	checkMixInputs(op, q, k, v, beta, g, mask, weight)
	kd, vd := k.Shape().Dimensions, v.Shape().Dimensions
	batch, time, slots, heads, dk, dv := kd[0], kd[1], kd[2], kd[3], kd[4], vd[4]
	maskHead := InsertAxes(mask, -1) // [B, T, E, 1]
	k = Mul(k, InsertAxes(maskHead, -1))
	beta, g = Mul(beta, maskHead), Mul(g, maskHead)
	qAll := BroadcastToDims(InsertAxes(q, 2), batch, time, slots, heads, dk)
	heads2 := func(x *Node, width int) *Node { return Reshape(x, batch, time, slots*heads, width) }
	oAll, ht := run(heads2(qAll, dk), heads2(k, dk), heads2(v, dv),
		Reshape(beta, batch, time, slots*heads), Reshape(g, batch, time, slots*heads), h0, docStart)
	// A memory's output at a token not routed to it is dropped whatever weight says.
	w := InsertAxes(Mul(weight, mask), -1, -1) // [B, T, E, 1, 1]
	o = ReduceSum(Mul(Reshape(oAll, batch, time, slots, heads, dv), w), 2)
	return o, ht
}

// checkMixInputs panics, naming the op and the shapes, when the inputs do not fit together.
func checkMixInputs(op string, q, k, v, beta, g, mask, weight *Node) {
	qd, kd, vd, bd := q.Shape().Dimensions, k.Shape().Dimensions, v.Shape().Dimensions, beta.Shape().Dimensions
	bad := len(qd) != 4 || len(kd) != 5 || len(vd) != 5 || len(bd) != 4 ||
		kd[0] != qd[0] || kd[1] != qd[1] || kd[3] != qd[2] || kd[4] != qd[3] ||
		vd[0] != kd[0] || vd[1] != kd[1] || vd[2] != kd[2] || vd[3] != kd[3] ||
		bd[0] != kd[0] || bd[1] != kd[1] || bd[2] != kd[2] || bd[3] != kd[3] ||
		!g.Shape().Equal(beta.Shape()) || mask.Rank() != 3 || !weight.Shape().Equal(mask.Shape())
	if !bad {
		md := mask.Shape().Dimensions
		bad = md[0] != kd[0] || md[1] != kd[1] || md[2] != kd[2]
	}
	for _, x := range []*Node{k, v, beta, g, mask, weight} {
		bad = bad || x.DType() != q.DType()
	}
	if bad {
		panic(fmt.Errorf("%s: want q [B, T, H, K], k [B, T, E, H, K], v [B, T, E, H, V], beta, g [B, T, E, H], mask, weight [B, T, E] of one dtype; got q %s, k %s, v %s, beta %s, g %s, mask %s, weight %s",
			op, q.Shape(), k.Shape(), v.Shape(), beta.Shape(), g.Shape(), mask.Shape(), weight.Shape()))
	}
}

// Capacity is the number of tokens each routed memory's buffer holds in a call over time tokens:
// ceil(factor * topK * time / memories), at least 1, at most time, and, with chunk > 0, rounded up to
// the whole chunks the buffer is processed in (BufferChunk: the chunked form would pad to them anyway,
// so the extra room costs nothing). factor 0 means time: no token can be dropped.
func Capacity(factor float64, topK, memories, time, chunk int) int {
	if factor <= 0 || time < 1 {
		return time
	}
	c := max(1, int(math.Ceil(factor*float64(topK*time)/float64(memories)-1e-9)))
	if chunk > 0 {
		b := BufferChunk(c, chunk)
		c = (c + b - 1) / b * b
	}
	return min(c, time)
}

// BufferChunk is the chunk length the layer processes a buffer of capacity tokens in: the fewest chunks
// of at most chunk tokens, made as even as possible (rounded up to a multiple of 8 when chunk >= 8, which
// deltanet.InvertUnitLower halves into small blocks), so a buffer of 160 tokens with chunk 64 runs as
// 3 chunks of 56, not 3 of 64 with 32 tokens of padding.
func BufferChunk(capacity, chunk int) int {
	if chunk < 1 || capacity <= chunk {
		return capacity
	}
	n := (capacity + chunk - 1) / chunk
	b := (capacity + n - 1) / n
	if chunk >= 8 {
		b = min(chunk, (b+7)/8*8)
	}
	return b
}

// MixCapacity is Mix with fixed-capacity buffers: each memory's routed tokens are gathered, in time
// order, into a buffer of capacity tokens [B*E, capacity] (padded at the end with steps that leave the
// state unchanged), the chunked gated delta rule runs on the buffers, and the outputs are scattered
// back with their routing weights. The recurrence then costs E*capacity tokens instead of E*T.
//
// Overflow: when more than capacity tokens of a call are routed to memory e, the first capacity of them
// (in time order) are kept and the later ones are dropped from e: e neither decays nor updates at them
// and gives them no output (the token's other memories keep their weights; nothing is renormalised).
// Without overflow the result equals Mix (mix_test.go checks it in float64 with gradients).
func MixCapacity(q, k, v, beta, g, mask, weight, h0 *Node, scale float64, chunkSize, capacity int, opts deltanet.Options) (o, ht *Node) {
	if chunkSize < 1 {
		panic(fmt.Errorf("mom.MixCapacity: chunkSize must be >= 1, got %d", chunkSize))
	}
	o, ht, _ = mixCapacity("mom.MixCapacity", q, k, v, beta, g, mask, weight, h0, capacity, chunkedRecurrence(scale, chunkSize, opts))
	return o, ht
}

// MixCapacityNaive is MixCapacity with the per-token recurrence (deltanet.Naive): the same buffers,
// the same dropped tokens.
func MixCapacityNaive(q, k, v, beta, g, mask, weight, h0 *Node, scale float64, capacity int, opts deltanet.Options) (o, ht *Node) {
	o, ht, _ = mixCapacity("mom.MixCapacityNaive", q, k, v, beta, g, mask, weight, h0, capacity, naiveRecurrence(scale, opts))
	return o, ht
}

// mixCapacity checks the inputs, then gathers, runs and scatters back (see MixCapacity).
func mixCapacity(op string, q, k, v, beta, g, mask, weight, h0 *Node, capacity int, run recurrence) (o, ht, kept *Node) {
	checkMixInputs(op, q, k, v, beta, g, mask, weight)
	return gatherMix(op, q, k, v, beta, g, mask, weight, h0, nil, capacity, run)
}

// gatherMix is MixCapacity for the first E' memories of k, v, beta, g [B, T, E >= E', ...], with mask
// and weight [B, T, E'] and h0 [B, E'*H, K, V] (nil = zeros): the buffers gather straight from the
// wider tensors, so the layer passes every memory's features without slicing out the shared one. kept
// [B, T, E'] (mask's dtype) is 1 where a routed token made it into its memory's buffer. docStart [B, T]
// (nil: one document) restarts the memories at document starts (bufferStarts).
func gatherMix(op string, q, k, v, beta, g, mask, weight, h0, docStart *Node, capacity int, run recurrence) (o, ht, kept *Node) {
	kd, vd := k.Shape().Dimensions, v.Shape().Dimensions
	batch, time, slots, heads, dk, dv := kd[0], kd[1], mask.Shape().Dimensions[2], kd[3], kd[4], vd[4]
	if capacity < 1 || capacity > time {
		panic(fmt.Errorf("%s: capacity must be in [1, T = %d], got %d", op, time, capacity))
	}
	lay := newBuffers(mask, capacity)

	// Gather every memory's tokens: [B, E, capacity, ...]. Padding entries point at token 0 and are
	// made no-op steps (k = beta = g = 0); their outputs are never read.
	valid2 := InsertAxes(lay.valid, -1)
	valid3 := InsertAxes(valid2, -1)
	qb := Gather(q, Stack([]*Node{lay.bufBatch, lay.pos}, -1))
	kIdx := Stack([]*Node{lay.bufBatch, lay.pos, lay.bufSlot}, -1)
	kb := Mul(Gather(k, kIdx), valid3)
	vb := Gather(v, kIdx)
	betab, gb := Mul(Gather(beta, kIdx), valid2), Mul(Gather(g, kIdx), valid2)

	rows := batch * slots
	if h0 != nil {
		h0 = Reshape(h0, rows, heads, dk, dv)
	}
	ob, ht := run(Reshape(qb, rows, capacity, heads, dk), Reshape(kb, rows, capacity, heads, dk),
		Reshape(vb, rows, capacity, heads, dv), Reshape(betab, rows, capacity, heads),
		Reshape(gb, rows, capacity, heads), h0, lay.starts(docStart))
	ht = Reshape(ht, batch, slots*heads, dk, dv)

	// Scatter back: token t reads entry slot[b, t, e] of memory e's buffer, weighted, if it was kept.
	ob = Reshape(ob, batch, slots, capacity, heads, dv)
	ot := Gather(ob, Stack([]*Node{lay.tokBatch, lay.tokSlot, lay.slot}, -1)) // [B, T, E, H, V]
	w := InsertAxes(Mul(weight, lay.kept), -1, -1)
	o = ReduceSum(Mul(ot, w), 2)
	return o, ht, lay.kept
}

// buffers is the layout of the capacity buffers for a routing mask [B, T, E].
type buffers struct {
	kept  *Node // [B, T, E], mask's dtype: 1 where the token is routed to e and is among e's first capacity
	slot  *Node // [B, T, E] int32: the token's entry in e's buffer (clamped to capacity-1 when not kept)
	pos   *Node // [B, E, capacity] int32: the token each entry holds (0 for padding)
	valid *Node // [B, E, capacity], mask's dtype: 1 for entries that hold a token, 0 for the padding

	tokBatch, tokSlot *Node // [B, T, E] int32 iotas over b and e
	bufBatch, bufSlot *Node // [B, E, capacity] int32 iotas over b and e
}

// newBuffers computes the layout: a routed token's entry is the number of tokens routed to the same
// memory before it; the first capacity entries are kept; a scatter of t+1 into [B, E, capacity+1]
// (dropped tokens all land in the extra column) tells each entry its token, 0 meaning padding.
func newBuffers(mask *Node, capacity int) buffers {
	g := mask.Graph()
	d := mask.Shape().Dimensions
	batch, time, slots := d[0], d[1], d[2]
	i32 := dtypes.Int32
	routed := GreaterThan(mask, ScalarZero(g, mask.DType()))
	ri := ConvertDType(routed, i32)
	rank := Sub(CumSum(ri, 1), ri) // routed tokens before t, per memory
	capNode := Scalar(g, i32, capacity)
	keep := LogicalAnd(routed, LessThan(rank, capNode))

	tokShape := shapes.Make(i32, batch, time, slots)
	b := buffers{
		kept:     ConvertDType(keep, mask.DType()),
		slot:     Min(rank, Scalar(g, i32, capacity-1)),
		tokBatch: Iota(g, tokShape, 0),
		tokSlot:  Iota(g, tokShape, 2),
	}
	target := Where(keep, rank, BroadcastToShape(capNode, tokShape))
	tPlus1 := AddScalar(Iota(g, tokShape, 1), 1)
	filled := ScatterMax(Zeros(g, shapes.Make(i32, batch, slots, capacity+1)),
		Stack([]*Node{b.tokBatch, b.tokSlot, target}, -1), tPlus1, false, false)
	filled = Slice(filled, AxisRange(), AxisRange(), AxisRange(0, capacity))
	b.valid = ConvertDType(GreaterThan(filled, ScalarZero(g, i32)), mask.DType())
	b.pos = Max(AddScalar(filled, -1), ScalarZero(g, i32))
	bufShape := shapes.Make(i32, batch, slots, capacity)
	b.bufBatch, b.bufSlot = Iota(g, bufShape, 0), Iota(g, bufShape, 1)
	return b
}

// starts returns the document starts of the buffers [B*E, capacity] for the row's docStart [B, T] (nil
// when docStart is nil). A memory sees only its routed tokens, so it must restart at its first entry
// after a document start, whether or not the start token itself was routed to it: entry j starts when
// its token's document differs from entry j-1's (entry -1 being the incoming state's document, 0). The
// padding entries take the document of the row's last token, so a memory that got no token of the last
// document restarts at its first padding entry (a step that changes nothing else) and ends, as that
// document alone would leave it, at zero.
func (b buffers) starts(docStart *Node) *Node {
	if docStart == nil {
		return nil
	}
	d := b.pos.Shape().Dimensions
	batch, slots, capacity := d[0], d[1], d[2]
	docID := layers.DocumentIDs(docStart) // [B, T]
	time := docID.Shape().Dimensions[1]
	entryDoc := Gather(docID, Stack([]*Node{b.bufBatch, b.pos}, -1)) // [B, E, capacity]
	lastDoc := BroadcastToDims(Reshape(SliceAxis(docID, 1, AxisElem(time-1)), batch, 1, 1), batch, slots, capacity)
	entryDoc = Where(GreaterThan(b.valid, ZerosLike(b.valid)), entryDoc, lastDoc)
	before := Concatenate([]*Node{Zeros(docID.Graph(), shapes.Make(docID.DType(), batch, slots, 1)),
		SliceAxis(entryDoc, 2, AxisRange(0, capacity-1))}, 2)
	return Reshape(ConvertDType(NotEqual(entryDoc, before), docStart.DType()), batch*slots, capacity)
}
