package mamba2

import (
	"fmt"

	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
)

// Layer is a Mamba2 Mixer. Its carried state is the SSM state and the conv cache (StateSpecs).
type Layer struct {
	cfg    Config
	dModel int
}

var _ layers.Mixer = (*Layer)(nil)

// New returns a layer for inputs of width dModel, or the error Validate reports.
func New(cfg Config, dModel int) (*Layer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dModel < 1 {
		return nil, fmt.Errorf("mamba2: d_model = %d: must be >= 1", dModel)
	}
	return &Layer{cfg: cfg, dModel: dModel}, nil
}

// Config returns the layer's configuration.
func (l *Layer) Config() Config { return l.cfg }

// StateSpecs lists the carried state: "ssm" [B, H, P, N] (fla's and mamba_ssm's layout) and "conv"
// [B, conv_size-1, conv_dim], the last conv_size-1 conv inputs (in_proj's xBC before conv and SiLU).
func (l *Layer) StateSpecs(batch int, dtype dtypes.DType) []layers.StateSpec {
	c := l.cfg
	return []layers.StateSpec{
		{Name: "ssm", Shape: shapes.Make(dtype, batch, c.Heads, c.HeadDim, c.StateSize)},
		{Name: "conv", Shape: shapes.Make(dtype, batch, c.ConvSize-1, c.ConvDim())},
	}
}

// Apply maps x [B, T, dModel] and the state (nil = start of sequence) to y [B, T, dModel] and the next
// state. A single token (T = 1) takes the recurrent step whatever the mode: that is the decode step.
//
// Variables, under scope: in_proj/weight [dModel, d + conv_dim + H], conv1d/weight [K, conv_dim],
// conv1d/bias [conv_dim], dt_bias, A_log, D [H], norm/weight [d], out_proj/weight [d, dModel].
func (l *Layer) Apply(scope *model.Scope, x *Node, state []*Node) (y *Node, next []*Node) {
	return l.ApplyDocuments(scope, x, state, nil)
}

// gatedNorm is fla's RMSNormGated with norm_before_gate = False (mamba_ssm's default too): the gate
// first, u = y * SiLU(z), then RMSNorm over each of the G groups of d/G consecutive channels, then the
// weight "weight" [d] (init 1). y, z: [B, T, d].
func (l *Layer) gatedNorm(scope *model.Scope, y, z *Node) *Node {
	dims := y.Shape().Dimensions
	groups := l.cfg.Groups
	u := Mul(y, layers.SiLU(z))
	u = Reshape(u, dims[0], dims[1], groups, dims[2]/groups)
	u = Reshape(layers.RMSNormalize(u, l.cfg.NormEps), dims...)
	w := scope.WithInitializer(initializer.One).
		VariableWithShape("weight", shapes.Make(y.DType(), dims[2])).NodeValue(y.Graph())
	return Mul(u, ExpandLeftToRank(w, 3))
}

// ALogInit draws A ~ U(1, 16) per head (Mamba2's A_init_range) and returns log A.
func ALogInit(scope *model.Scope) model.VariableInitializer {
	return func(g *Graph, shape shapes.Shape) *Node {
		return Log(AddScalar(MulScalar(scope.RandomUniform(g, shape), 15), 1))
	}
}

// ChunksPerGraph is the number of recurrence steps a call over time tokens unrolls at graph-build time
// (layers.ChunkCounter).
func (l *Layer) ChunksPerGraph(time int) int {
	if time == 1 || l.cfg.Mode == ModeNaive {
		return time
	}
	chunk := min(l.cfg.ChunkSize, time)
	return (time + chunk - 1) / chunk
}

// NoWeightDecay implements layers.DecayExempt: A_log, dt_bias and D, which mamba_ssm's Mamba2 marks
// _no_weight_decay.
func (l *Layer) NoWeightDecay() []string { return []string{"A_log", "dt_bias", "D"} }
