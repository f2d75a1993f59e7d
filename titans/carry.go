package titans

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// applyPaperCarry is the paper-mode layer with CarryPartialChunk. Its state's conv caches, weights and
// momentum are those at the start of the stream's current partial chunk, whose tokens (already answered
// by earlier calls) wait in "pending". The call re-runs [pending ; x] from that chunk start, so chunks stay
// on the stream's grid and every gradient is taken at its chunk's start weights, returns the outputs of x
// alone, and takes the next state at the start of the new last partial chunk: one call equals any split
// into chained calls. The introspection stats include the re-run tokens.
func (m *LMM) applyPaperCarry(scope *model.Scope, x *Node, state []*Node) (*Node, []*Node, Stats) {
	cfg := m.Config
	numConv, numFast := m.numConv(), len(cfg.stateDims())
	pendingAt := numConv + 2*numFast
	time, c := x.Shape().Dimensions[1], cfg.ChunkSize
	work, count := withPending(x, state[pendingAt], state[pendingAt+1]) // [B, C-1+T, D]
	valid := AddScalar(count, time)                                     // real tokens in work
	last := Sub(valid, ModScalar(valid, c))                             // start of the new partial chunk
	q, k, v, _, projections := m.projectQKV(scope, work, state, nil)
	gates := m.paperGates(scope, work)
	init := m.initialWeights(scope, work)
	st := State{W: m.fullWeights(scope, work, state), S: state[numConv+numFast : pendingAt]}
	op := m.paperOp()
	var y *Node
	var bounds []State
	var stats Stats
	if m.naive {
		y, bounds = naiveWithBoundaries(q, k, v, gates, st, op)
	} else {
		y, bounds, stats = chunkedWithBoundaries(q, k, v, gates, st, op)
	}
	// Boundaries up to the new partial chunk's start only depend on real tokens.
	selected := selectBoundary(bounds, DivScalar(valid, c))
	var next []*Node
	for i, p := range projections[:numConv] { // the K-1 conv inputs before the new partial chunk
		next = append(next, timeWindow(Concatenate([]*Node{state[i], p}, 1), last, cfg.ConvKernel-1))
	}
	for l := range selected.W {
		next = append(next, Sub(selected.W[l], init[l]))
	}
	next = append(next, selected.S...)
	out := timeWindow(m.readOut(scope, work, y), count, time)
	dims := work.Shape().Dimensions
	padded := Concatenate([]*Node{Zeros(work.Graph(), shapes.Make(work.DType(), dims[0], c-1, dims[2])), work}, 1)
	next = append(next, timeWindow(padded, valid, c-1), ModScalar(valid, c))
	return out, next, stats
}

// selectBoundary returns bounds[j] for a scalar int32 j known only at run time.
func selectBoundary(bounds []State, j *Node) State {
	var ws, ss [][]*Node
	for _, b := range bounds {
		ws, ss = append(ws, b.W), append(ss, b.S)
	}
	return State{W: selectNodes(ws, j), S: selectNodes(ss, j)}
}

// selectNodes returns lists[j] (lists of nodes of equal shapes) for a scalar int32 j known only at run
// time, by a Gather over the stacked lists.
func selectNodes(lists [][]*Node, j *Node) []*Node {
	idx := Reshape(ConvertDType(j, dtypes.Int32), 1, 1)
	out := make([]*Node, len(lists[0]))
	for l := range out {
		var stacked []*Node
		for _, list := range lists {
			stacked = append(stacked, InsertAxes(list[l], 0))
		}
		out[l] = Squeeze(Gather(Concatenate(stacked, 0), idx), 0)
	}
	return out
}
