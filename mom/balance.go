package mom

import (
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	mltrain "github.com/gomlx/gomlx/ml/train"
)

// balancePoolParam is the graph parameter (GoMLX's per-graph store, like the trainer's losses) that
// holds a graph's router statistics.
const balancePoolParam = "/mom/balance_pools"

// balancePool is the running sum of the router rows of every MoM layer with the same number of
// memories and aux_loss_weight applied in one graph.
type balancePool struct {
	memories int
	weight   float64
	chosen   *Node   // [M]: sum over the pooled rows of the top-k selection
	probs    *Node   // [M]: sum over the pooled rows of the router probabilities
	rows     float64 // pooled rows
	loss     *Node   // M sum_m F_m P_m over the rows pooled so far
}

// balancePools is a graph's pools, in the order they were created.
type balancePools struct{ list []*balancePool }

func graphPools(g *Graph) *balancePools {
	if v, found := model.GetGraphParam(g, balancePoolParam); found {
		if pools, ok := v.(*balancePools); ok {
			return pools
		}
	}
	pools := &balancePools{}
	model.SetGraphParam(g, balancePoolParam, pools)
	return pools
}

// poolRouter adds one call's router rows (probs and chosen [B, T, M]) to the graph's pool for
// (M, weight) and returns the pooled loss before and after (before is nil for the first call).
func poolRouter(probs, chosen *Node, weight float64) (before, after *Node) {
	g := probs.Graph()
	memories := probs.Shape().Dimensions[probs.Rank()-1]
	pools := graphPools(g)
	var pool *balancePool
	for _, p := range pools.list {
		if p.memories == memories && p.weight == weight && p.chosen.DType() == probs.DType() {
			pool = p
		}
	}
	if pool == nil {
		pool = &balancePool{memories: memories, weight: weight}
		pools.list = append(pools.list, pool)
	}
	rows := Reshape(probs, -1, memories)
	chosenSum, probSum := ReduceSum(Reshape(StopGradient(chosen), -1, memories), 0), ReduceSum(rows, 0)
	before = pool.loss
	if pool.chosen == nil {
		pool.chosen, pool.probs = chosenSum, probSum
	} else {
		pool.chosen, pool.probs = Add(pool.chosen, chosenSum), Add(pool.probs, probSum)
	}
	pool.rows += float64(rows.Shape().Dimensions[0])
	// M sum_m (chosen_m / N)(probs_m / N)
	pool.loss = MulScalar(ReduceAllSum(Mul(pool.chosen, pool.probs)), float64(memories)/(pool.rows*pool.rows))
	return before, pool.loss
}

// PooledBalanceLoss is flash-linear-attention's load-balancing loss over every MoM layer applied so far
// in the training graph g: the router rows of all layers (and of every call of a layer, e.g. streamed
// segments) concatenated into one population, as load_balancing_loss_func does with the tuple of all
// layers' router logits; BalanceLoss over those rows. Layers with different numbers of memories or
// aux_loss_weight form separate pools, whose losses are summed. It is nil when no MoM layer with more
// than one memory ran in a training graph of g. The regularization loss the layers add already equals
// aux_loss_weight * PooledBalanceLoss; this is for logging.
func PooledBalanceLoss(g *Graph) *Node {
	var total *Node
	for _, p := range graphPools(g).list {
		if total == nil {
			total = p.loss
		} else {
			total = Add(total, ConvertDType(p.loss, total.DType()))
		}
	}
	return total
}

// addPooledBalanceLoss pools one call's router rows and adds weight * (pooled loss after - before) to
// GoMLX's regularization loss: the terms telescope, so after the last layer the graph's regularization
// loss holds weight * the pooled loss (plus whatever else was added), with its exact gradient, and no
// trainer has to collect the layers' logits.
func addPooledBalanceLoss(probs, chosen *Node, weight float64, lossDType dtypes.DType) {
	before, after := poolRouter(probs, chosen, weight)
	if weight == 0 {
		return
	}
	term := after
	if before != nil {
		term = Sub(after, before)
	}
	mltrain.AddRegularizationLoss(ConvertDType(MulScalar(term, weight), lossDType))
}
