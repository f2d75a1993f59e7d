package mom

import (
	"fmt"

	"github.com/engramlx/engram/deltanet"
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
	return mix("mom.Mix", q, k, v, beta, g, mask, weight, h0, func(q, k, v, beta, g, h0 *Node) (*Node, *Node) {
		return deltanet.Chunked(q, k, v, beta, g, h0, scale, chunkSize, opts)
	})
}

// MixNaive is Mix with the per-token recurrence (deltanet.Naive): the reference, and the decode step
// for T = 1.
func MixNaive(q, k, v, beta, g, mask, weight, h0 *Node, scale float64, opts deltanet.Options) (o, ht *Node) {
	return mix("mom.MixNaive", q, k, v, beta, g, mask, weight, h0, func(q, k, v, beta, g, h0 *Node) (*Node, *Node) {
		return deltanet.Naive(q, k, v, beta, g, h0, scale, opts)
	})
}

type recurrence func(q, k, v, beta, g, h0 *Node) (o, ht *Node)

func mix(op string, q, k, v, beta, g, mask, weight, h0 *Node, run recurrence) (o, ht *Node) {
	checkMixInputs(op, q, k, v, beta, g, mask, weight)
	kd, vd := k.Shape().Dimensions, v.Shape().Dimensions
	batch, time, slots, heads, dk, dv := kd[0], kd[1], kd[2], kd[3], kd[4], vd[4]
	maskHead := InsertAxes(mask, -1) // [B, T, E, 1]
	k = Mul(k, InsertAxes(maskHead, -1))
	beta, g = Mul(beta, maskHead), Mul(g, maskHead)
	qAll := BroadcastToDims(InsertAxes(q, 2), batch, time, slots, heads, dk)
	heads2 := func(x *Node, width int) *Node { return Reshape(x, batch, time, slots*heads, width) }
	oAll, ht := run(heads2(qAll, dk), heads2(k, dk), heads2(v, dv),
		Reshape(beta, batch, time, slots*heads), Reshape(g, batch, time, slots*heads), h0)
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
