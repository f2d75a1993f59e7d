package titans

import (
	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// tpLayerNormEps is the epsilon of the tp memory's LayerNorm (nn.LayerNorm's default in titans-pytorch).
const tpLayerNormEps = 1e-5

// machineEps is torch.finfo(dtype).eps, the epsilon of titans-pytorch's nn.RMSNorm(dim) (eps=None).
func machineEps(dtype dtypes.DType) float64 {
	if dtype == dtypes.Float64 {
		return 2.220446049250313e-16
	}
	if dtype == dtypes.Float32 {
		return 1.1920928955078125e-07
	}
	return 9.765625e-04 // float16; bfloat16 would be 7.8125e-03
}

// applyTP is the layer of the tp mode, titans-pytorch's NeuralMemory with its default options (the package
// doc lists the order of operations): store- and retrieve-side RMSNorms, linear q, k, v (no conv, no
// activation, no L2 norm), per-token learning rate from the store side, per-chunk momentum and forgetting
// from the mean-pooled store side, the tp op with gradients at the learned initial weights (TTTBatchSize
// 0) or at the TTT batch start, a per-head retrieve gate and the combine-heads projection.
func (m *LMM) applyTP(scope *model.Scope, x *Node, state []*Node) (*Node, []*Node, Stats) {
	cfg := m.Config
	dims := x.Shape().Dimensions
	batch, time := dims[0], dims[1]
	eps := machineEps(x.DType())
	stored := scaleLast(scope.In("store_norm"), rmsNormalize(x, eps))
	retrieved := scaleLast(scope.In("retrieve_norm"), rmsNormalize(x, eps))
	heads := func(p *Node) *Node { // [B, T, H*Dh] -> [B, H, T, Dh]
		return Transpose(Reshape(p, batch, time, cfg.Heads, cfg.HeadDim), 1, 2)
	}
	q := heads(layers.Dense(scope.In("q"), retrieved, m.width(), false))
	k := heads(layers.Dense(scope.In("k"), stored, m.width(), false))
	v := heads(layers.Dense(scope.In("v"), stored, m.width(), false))
	gates := Gates{Theta: MulScalar(m.gate(scope.In("theta"), stored, thetaOffset), cfg.MaxLR)}
	if pooled := poolChunks(stored, cfg.ChunkSize); pooled != nil {
		gates.Eta = m.gate(scope.In("eta"), pooled, etaOffset)
		gates.Alpha = m.gate(scope.In("alpha"), pooled, alphaOffset)
	}
	init := m.initialWeights(scope, x)
	numFast := len(init)
	st := State{W: m.fullWeights(scope, x, state), S: state[numFast : 2*numFast]}
	y, final, stats := m.memoryOp(q, k, v, gates, st, init)
	var next []*Node
	for l := range final.W {
		next = append(next, Sub(final.W[l], init[l]))
	}
	next = append(next, final.S...)
	if cfg.OutputGate { // per head: sigmoid(x^r W_g) [B, T, H] -> [B, H, T, 1]
		gate := layers.FastSigmoid(layers.Dense(scope.In("retrieve_gate"), retrieved, cfg.Heads, false))
		y = Mul(y, InsertAxes(Transpose(gate, 1, 2), -1))
	}
	y = Reshape(Transpose(y, 1, 2), batch, time, m.width())
	return layers.Dense(scope.In("output"), y, m.DModel, false), next, stats
}
