package titans

import (
	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
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
//
// With CarryPartialChunk the state also holds the last call's unwritten partial chunk ("pending" [B, C-1,
// D], its count of tokens "pending_count"): the call runs on [pending tokens ; x] so that chunks stay on the
// stream's grid, and returns the outputs of x alone; one call then equals any split into chained calls.
func (m *LMM) applyTP(scope *model.Scope, x *Node, state []*Node) (*Node, []*Node, Stats) {
	cfg := m.Config
	numFast := len(cfg.stateDims())
	carry := m.carriesPartialChunk()
	var pendingCount *Node
	outTime := x.Shape().Dimensions[1]
	if carry {
		x, pendingCount = withPending(x, state[2*numFast], state[2*numFast+1])
	}
	y, next, stats := m.applyTPWork(scope, x, state, pendingCount, nil)
	if !carry {
		return y, next, stats
	}
	g, c1 := x.Graph(), cfg.ChunkSize-1
	dims := y.Shape().Dimensions
	y = timeWindow(y, pendingCount, outTime)
	// The new pending tokens are the last (count + T) mod C real ones, right-aligned in C-1 slots.
	valid := AddScalar(pendingCount, outTime)
	padded := Concatenate([]*Node{Zeros(g, shapes.Make(x.DType(), dims[0], c1, x.Shape().Dimensions[2])), x}, 1)
	pending := timeWindow(padded, valid, c1)
	return y, append(next, pending, ModScalar(valid, cfg.ChunkSize)), stats
}

// carriesPartialChunk reports whether the layer carries its partial last chunk in the state.
func (m *LMM) carriesPartialChunk() bool {
	return m.Config.CarryPartialChunk && m.Config.ChunkSize > 1
}

// withPending returns [pending tokens ; x ; zeros] [B, C-1+T, D], the count of pending tokens leading it
// (pending holds them right-aligned in its C-1 slots) and the count as the start of x in it.
func withPending(x, pending, count *Node) (work, start *Node) {
	dims := x.Shape().Dimensions
	c1 := pending.Shape().Dimensions[1]
	g := x.Graph()
	padded := Concatenate([]*Node{pending, x, Zeros(g, shapes.Make(x.DType(), dims[0], c1, dims[2]))}, 1)
	work = timeWindow(padded, Sub(Const(g, int32(c1)), count), c1+dims[1])
	return work, count
}

// timeWindow is x[:, start:start+length, :] of x [B, N, D] for a scalar int32 start known only at run
// time (a Gather over the time axis: the Go backend has no DynamicSlice).
func timeWindow(x, start *Node, length int) *Node {
	idx := Add(Iota(x.Graph(), shapes.Make(dtypes.Int32, length, 1), 0), start) // [length, 1]
	return TransposeAllAxes(Gather(TransposeAllAxes(x, 1, 0, 2), idx), 1, 0, 2)
}

// applyTPWork is the tp layer on x; with pendingCount set, x is [pending ; input ; zeros] and only its
// first pendingCount + (T - C + 1) tokens are real. With docStart [B, T] set (and no pendingCount) it
// restarts at document starts (tpdocuments.go): the gates of every chunk a document completes are pooled
// over its own C tokens.
func (m *LMM) applyTPWork(scope *model.Scope, x *Node, state []*Node, pendingCount, docStart *Node) (*Node, []*Node, Stats) {
	cfg := m.Config
	dims := x.Shape().Dimensions
	batch, time := dims[0], dims[1]
	eps := machineEps(x.DType())
	stored := scaleLast(scope.In("store_norm"), layers.RMSNormalize(x, eps))
	retrieved := scaleLast(scope.In("retrieve_norm"), layers.RMSNormalize(x, eps))
	heads := func(p *Node) *Node { // [B, T, H*Dh] -> [B, H, T, Dh]
		return Transpose(Reshape(p, batch, time, cfg.Heads, cfg.HeadDim), 1, 2)
	}
	// The variables in the order the layer has always created them; the products share each input's
	// transpose in their gradients (projectAll).
	wq := denseWeight(scope.In("q"), retrieved, m.width())
	wk := denseWeight(scope.In("k"), stored, m.width())
	wv := denseWeight(scope.In("v"), stored, m.width())
	wTheta, bTheta := m.gateParams(scope.In("theta"), stored)
	var gates Gates
	if docStart != nil {
		pooled := windowMeans(stored, cfg.ChunkSize)
		gates.Eta = m.gate(scope.In("eta"), pooled, etaOffset)
		gates.Alpha = m.gate(scope.In("alpha"), pooled, alphaOffset)
	} else if pooled := poolChunks(stored, cfg.ChunkSize); pooled != nil {
		gates.Eta = m.gate(scope.In("eta"), pooled, etaOffset)
		gates.Alpha = m.gate(scope.In("alpha"), pooled, alphaOffset)
	}
	fromStored := projectAll(stored, []*Node{wk, wv, wTheta})
	k, v := heads(fromStored[0]), heads(fromStored[1])
	thetaLogits := AddScalar(Add(Transpose(fromStored[2], 1, 2), Reshape(bTheta, 1, cfg.Heads, 1)), thetaOffset)
	gates.Theta = MulScalar(Sigmoid(thetaLogits), cfg.MaxLR)
	init := m.initialWeights(scope, x)
	numFast := len(init)
	st := State{W: m.fullWeights(scope, x, state), S: state[numFast : 2*numFast]}
	var valid *Node
	if pendingCount != nil {
		valid = AddScalar(pendingCount, time-cfg.ChunkSize+1)
	}
	fromRetrieved := []*Node{wq}
	if cfg.OutputGate {
		fromRetrieved = append(fromRetrieved, denseWeight(scope.In("retrieve_gate"), retrieved, cfg.Heads))
	}
	fromRetrieved = projectAll(retrieved, fromRetrieved)
	q := heads(fromRetrieved[0])
	var y *Node
	var final State
	var stats Stats
	if docStart != nil {
		tp := PyTorchConfig{ChunkSize: cfg.ChunkSize, TTTBatch: cfg.TTTBatchSize, GradClamp: cfg.GradClamp, NormEps: tpLayerNormEps}
		if m.naive {
			y, final = NaivePyTorchDocuments(q, k, v, gates, st, init, docStart, tp)
		} else {
			y, final = ChunkedPyTorchDocuments(q, k, v, gates, st, init, docStart, tp)
		}
		stats = tpStats(nil, nil, nil, gates, final)
	} else {
		y, final, stats = m.memoryOp(q, k, v, gates, st, init, valid)
	}
	var next []*Node
	for l := range final.W {
		next = append(next, Sub(final.W[l], init[l]))
	}
	next = append(next, final.S...)
	if cfg.OutputGate { // per head: sigmoid(x^r W_g) [B, T, H] -> [B, H, T, 1]
		gate := Sigmoid(fromRetrieved[1])
		y = Mul(y, InsertAxes(Transpose(gate, 1, 2), -1))
	}
	y = Reshape(Transpose(y, 1, 2), batch, time, m.width())
	return projectAll(y, []*Node{denseWeight(scope.In("output"), y, m.DModel)})[0], next, stats
}
