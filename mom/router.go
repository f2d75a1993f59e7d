package mom

import (
	"fmt"
	"slices"

	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// routing is the router's decision over one call.
type routing struct {
	probs  *Node // p = softmax(W_r x) [B, T, M] in the router dtype (float32 or wider)
	chosen *Node // 1 for the top-k memories of each token, else 0: [B, T, M], router dtype, no gradient
	mask   *Node // chosen in x's dtype, plus a column of ones for the shared memory: [B, T, E]
	weight *Node // renormalised top-k probabilities (0 elsewhere), 1 for the shared memory: [B, T, E]
}

// routerDType is float32 for narrower inputs, else the input's own type: a softmax over M logits in
// half precision loses the small probability differences top-k decides on.
func routerDType(dtype dtypes.DType) dtypes.DType {
	if dtype == dtypes.Float64 {
		return dtypes.Float64
	}
	return dtypes.Float32
}

// route computes p = softmax(W_r x) (variable "r_proj", no bias), keeps each token's top-k memories and
// renormalises their probabilities to sum to 1. With one memory there is nothing to route: p = 1 and no
// router variable is created, which is what makes M = 1 exactly a Gated DeltaNet layer.
func (l *Layer) route(scope *model.Scope, xs *layers.Shared, xT *Node) routing {
	x := xs.Node()
	dims := x.Shape().Dimensions
	batch, time, memories := dims[0], dims[1], l.cfg.Memories
	rdt := routerDType(x.DType())
	var r routing
	if memories == 1 {
		r.probs = Ones(x.Graph(), shapes.Make(rdt, batch, time, 1))
		r.chosen, r.weight = r.probs, r.probs
	} else {
		logits := ConvertDType(layers.Projection(scope.In("r_proj"), xs, xT, memories), rdt)
		r.probs, r.chosen, r.weight = TopKRouting(logits, l.cfg.TopK)
	}
	r.mask, r.weight = ConvertDType(r.chosen, x.DType()), ConvertDType(r.weight, x.DType())
	if l.cfg.SharedMemory {
		ones := Ones(x.Graph(), shapes.Make(x.DType(), batch, time, 1))
		r.mask = Concatenate([]*Node{r.mask, ones}, -1)
		r.weight = Concatenate([]*Node{r.weight, ones}, -1)
	}
	return r
}

// TopKRouting is the router's decision from its logits [..., M]: probs = softmax(logits); chosen is 1
// for the topK largest probabilities of each token and 0 elsewhere (ties go to the lower index, as with
// a stable sort: topKMask); weight is probs restricted to the chosen memories and renormalised to sum to
// 1, which equals a softmax over the chosen logits. chosen carries no gradient, weight does (through
// probs). All three have the logits' shape and dtype.
func TopKRouting(logits *Node, topK int) (probs, chosen, weight *Node) {
	probs = Softmax(logits, -1)
	selected := topKMask(probs, topK)
	chosen = ConvertDType(selected, probs.DType())
	kept := Where(selected, probs, ZerosLike(probs))
	weight = Div(kept, ReduceAndKeep(kept, ReduceSum, -1))
	return probs, chosen, weight
}

// BalanceLoss is flash-linear-attention's MoM load-balancing loss (load_balancing_loss_func in
// fla/models/mom/modeling_mom.py; Switch Transformer's eq. 4 with top-k) over the rows of probs p and
// the top-k selection chosen, both [..., M] (every axis but the last indexes rows), with optional row
// weights rowWeight [...] (nil = every row 1; FLA's attention_mask):
//
//	W = sum_q w_q
//	F_m = tokensFrac_m = (1/W) sum_q w_q chosen_qm     (fraction of rows that chose m: sums to k)
//	P_m = meanProb_m   = (1/W) sum_q w_q p_qm
//	loss = M sum_m F_m P_m
//
// loss is k for a uniform router (not 1: there is no division by k) and grows to k*M as routing
// collapses; only P carries a gradient (the selection is discrete). FLA pools the rows of every layer
// (PooledBalanceLoss); over one layer's rows this is that layer's term alone.
func BalanceLoss(probs, chosen, rowWeight *Node) (loss, tokensFrac, meanProb *Node) {
	memories := probs.Shape().Dimensions[probs.Rank()-1]
	rowDims := probs.Shape().Dimensions[:probs.Rank()-1]
	if !chosen.Shape().Equal(probs.Shape()) || (rowWeight != nil && !slices.Equal(rowWeight.Shape().Dimensions, rowDims)) {
		panic(fmt.Errorf("mom.BalanceLoss: want probs and chosen of one shape [..., M] and rowWeight [...] or nil; got %s, %s, %v",
			probs.Shape(), chosen.Shape(), rowWeight))
	}
	chosen = StopGradient(chosen)
	flat := func(x *Node) *Node { return Reshape(x, -1, memories) }
	var total *Node
	if rowWeight == nil {
		total = Scalar(probs.Graph(), probs.DType(), float64(probs.Shape().Size()/memories))
	} else {
		w := Reshape(StopGradient(ConvertDType(rowWeight, probs.DType())), -1, 1)
		chosen, probs = Mul(flat(chosen), w), Mul(flat(probs), w)
		total = ReduceAllSum(w)
	}
	tokensFrac = Div(ReduceSum(flat(chosen), 0), total)
	meanProb = Div(ReduceSum(flat(probs), 0), total)
	loss = MulScalar(ReduceAllSum(Mul(tokensFrac, meanProb)), float64(memories))
	return loss, tokensFrac, meanProb
}

// Stats are the router's statistics over one call, for a trainer's log.
type Stats struct {
	Load        *Node // [M]: fraction of the call's top-k assignments each memory received (F / k; sums to 1)
	RouterProb  *Node // P [M]: mean router probability of each memory
	BalanceLoss *Node // M * sum(F * P) over this call's rows alone, before aux_loss_weight
	Dropped     *Node // scalar: fraction of the call's top-k assignments dropped by the capacity buffers
}

// Metrics returns the stats as parallel lists of names ("load_0", ..., "router_prob_0", ...,
// "balance_loss", "dropped") and scalar nodes.
func (s Stats) Metrics() (names []string, values []*Node) {
	memories := s.Load.Shape().Dimensions[0]
	for _, series := range []struct {
		name string
		x    *Node
	}{{"load", s.Load}, {"router_prob", s.RouterProb}} {
		for m := 0; m < memories; m++ {
			names = append(names, fmt.Sprintf("%s_%d", series.name, m))
			values = append(values, Reshape(SliceAxis(series.x, 0, AxisElem(m))))
		}
	}
	return append(names, "balance_loss", "dropped"), append(values, s.BalanceLoss, s.Dropped)
}

// topKMask marks the k largest entries of each row of x [..., M] (ties to the lower index): entry e is
// kept when fewer than k entries beat it, an entry beating e when it is larger, or equal with a lower
// index. For the few memories of a router this is M^2 comparisons per token, where GoMLX's TopKMask
// sorts every row (the Go backend's Sort was 7% of the MoM layer's fwd+bwd CPU profile at M = 4).
func topKMask(x *Node, k int) *Node {
	dims := x.Shape().Dimensions
	m := dims[len(dims)-1]
	if k >= m {
		return OnesLike(ConvertDType(x, dtypes.Bool))
	}
	pairs := append(append([]int{}, dims...), m) // [..., M (e), M (e')]
	self := BroadcastToDims(InsertAxes(x, -1), pairs...)
	other := BroadcastToDims(InsertAxes(x, -2), pairs...)
	square := shapes.Make(dtypes.Int32, m, m)
	lowerIndex := LessThan(Iota(x.Graph(), square, 1), Iota(x.Graph(), square, 0)) // e' < e
	lowerIndex = BroadcastToDims(ExpandLeftToRank(lowerIndex, len(pairs)), pairs...)
	beats := LogicalOr(GreaterThan(other, self), LogicalAnd(Equal(other, self), lowerIndex))
	rank := ReduceSum(ConvertDType(beats, dtypes.Int32), -1)
	return LessThan(rank, Scalar(x.Graph(), dtypes.Int32, k))
}
