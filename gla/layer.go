package gla

import (
	"fmt"

	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// Layer is a gated linear attention Mixer (fla's GatedLinearAttention). Its carried state is the
// fast-weight matrix S.
type Layer struct {
	cfg            Config
	dModel, dk, dv int
}

var (
	_ layers.Mixer        = (*Layer)(nil)
	_ layers.ChunkCounter = (*Layer)(nil)
)

// New returns a layer for inputs of width dModel, or the error Validate reports.
func New(cfg Config, dModel int) (*Layer, error) {
	if dModel < 1 {
		return nil, fmt.Errorf("gla: d_model = %d: must be >= 1", dModel)
	}
	if err := cfg.Validate(dModel); err != nil {
		return nil, err
	}
	dk, dv := cfg.headDims(dModel)
	return &Layer{cfg: cfg, dModel: dModel, dk: dk, dv: dv}, nil
}

// Config returns the layer's configuration.
func (l *Layer) Config() Config { return l.cfg }

// StateSpecs lists the carried state: "S" [B, H, d_k, d_v].
func (l *Layer) StateSpecs(batch int, dtype dtypes.DType) []layers.StateSpec {
	return []layers.StateSpec{{Name: "S", Shape: shapes.Make(dtype, batch, l.cfg.Heads, l.dk, l.dv)}}
}

// Apply maps x [B, T, dModel] and the state (nil = start of sequence) to y [B, T, dModel] and the next
// state. A single token (T = 1) takes the recurrent step whatever the mode: the decode step.
//
// Variables, under scope: q_proj, k_proj, v_proj, o_proj, g_proj (with the output gate) (Dense, no bias);
// gk_proj/0 (Dense to the low rank, no bias) and gk_proj/1 (Dense with bias); g_norm (RMSNorm per head).
func (l *Layer) Apply(scope *model.Scope, x *Node, state []*Node) (y *Node, next []*Node) {
	return l.ApplyDocuments(scope, x, state, nil)
}

// logDecay is gk = max(logsigmoid(W_2 W_1 x + b) / normalizer, clamp_min) [B, T, H d_k]: per-step decays
// sigmoid(.)^(1/16) by default, close to 1 (Yang et al. 2024, sec. 4.1: alpha_t = sigmoid(x W_a1 W_a2 +
// b)^(1/tau), tau = 16).
func (l *Layer) logDecay(scope *model.Scope, x *Node) *Node {
	gkScope := scope.In("gk_proj")
	low := layers.Dense(gkScope.In("0"), x, l.cfg.GateLowRankDim, false)
	logits := layers.Dense(gkScope.In("1"), low, l.cfg.Heads*l.dk, true)
	gk := DivScalar(Neg(Softplus(Neg(logits))), l.cfg.GateLogitNormalizer) // logsigmoid, stable both ways
	if l.cfg.ClampMin < 0 {
		gk = MaxScalar(gk, l.cfg.ClampMin)
	}
	return gk
}

// output is W_o (RMSNorm_per_head(o) * SiLU(W_g x)) (or W_o RMSNorm(o) without the output gate),
// o: [B, T, H, d_v] -> [B, T, dModel].
func (l *Layer) output(scope *model.Scope, x, o *Node) *Node {
	dims := o.Shape().Dimensions
	o = layers.RMSNorm(scope.In("g_norm"), o, l.cfg.NormEps)
	if l.cfg.UseOutputGate {
		gate := Reshape(layers.Dense(scope.In("g_proj"), x, dims[2]*dims[3], false), dims...)
		o = Mul(o, layers.SiLU(gate))
	}
	o = Reshape(o, dims[0], dims[1], dims[2]*dims[3])
	return layers.Dense(scope.In("o_proj"), o, l.dModel, false)
}

// chunk is the chunk length for an input of time tokens: chunk_size, but no longer than the input
// rounded up to whole sub-chunks (a longer chunk would only add padding).
func (l *Layer) chunk(time int) int {
	if l.cfg.ChunkSize <= SubChunk {
		return min(l.cfg.ChunkSize, time)
	}
	return min(l.cfg.ChunkSize, (time+SubChunk-1)/SubChunk*SubChunk)
}

// ChunksPerGraph is the number of recurrence steps a call over time tokens unrolls at graph-build time.
func (l *Layer) ChunksPerGraph(time int) int {
	if time == 1 || l.cfg.Mode == ModeNaive {
		return time
	}
	c := l.chunk(time)
	return (time + c - 1) / c
}
