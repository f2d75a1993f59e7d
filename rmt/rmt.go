package rmt

import (
	"fmt"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
)

// Backbone is the decoder stack RMT wraps; model.Model implements it. Embeddings go in rather than ids
// so that memory vectors can sit between the token embeddings.
type Backbone interface {
	// Embed maps ids [B, T] (int32) to input embeddings [B, T, D].
	Embed(scope *mlmodel.Scope, ids *Node) *Node
	// HiddenFromEmbeddings maps embeddings [B, T, D] and a state (nil = start of sequence) to the final
	// normalised hidden states [B, T, D] and the next state.
	HiddenFromEmbeddings(scope *mlmodel.Scope, h0 *Node, state []*Node) (*Node, []*Node)
}

// RMT is a backbone with recurrent memory tokens. The backbone runs once per segment with the same
// weights, so every call enters it through scope.ResetVisited(): GoMLX refuses a second In("layer_0")
// from one Scope value unless told that the reuse is meant.
type RMT struct {
	Config   Config
	Backbone Backbone
}

// New validates cfg (which must be enabled) and wraps backbone.
func New(cfg Config, backbone Backbone) (*RMT, error) {
	if !cfg.Enabled {
		return nil, fmt.Errorf("rmt.enabled = false: nothing to wrap")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &RMT{Config: cfg, Backbone: backbone}, nil
}

// InitialMemory returns the learned first memory M_0 broadcast to [batch, m, dModel], or nil when m = 0.
// Its variable is rmt/memory [m, dModel].
func (r *RMT) InitialMemory(scope *mlmodel.Scope, g *Graph, batch, dModel int, dtype dtypes.DType) *Node {
	m := r.Config.MemorySize
	if m == 0 {
		return nil
	}
	mem := scope.ResetVisited().In("rmt").WithInitializer(initializer.RandomNormalFn(scope, 1)).
		VariableWithShape("memory", shapes.Make(dtype, m, dModel)).NodeValue(g)
	return BroadcastToDims(ExpandAxes(mem, 0), batch, m, dModel)
}

// Step runs one segment: embeddings x [B, S, D] with memory [B, m, D] (nil when m = 0) to the tokens'
// hidden states [B, S, D] and the next memory [B, m, D] (nil when m = 0).
func (r *RMT) Step(scope *mlmodel.Scope, x, memory *Node) (hidden, next *Node) {
	m := r.Config.MemorySize
	if m == 0 {
		hidden, _ = r.Backbone.HiddenFromEmbeddings(scope.ResetVisited(), x, nil)
		return hidden, nil
	}
	if memory == nil || memory.Rank() != 3 || memory.Shape().Dimensions[1] != m {
		panic(fmt.Errorf("rmt: memory must be [batch, %d, d_model], got %v", m, memory))
	}
	s := x.Shape().Dimensions[1]
	parts := []*Node{memory, x}
	if !r.Config.ReadOnly {
		parts = append(parts, memory)
	}
	h, _ := r.Backbone.HiddenFromEmbeddings(scope.ResetVisited(), Concatenate(parts, 1), nil)
	hidden = Slice(h, AxisRange(), AxisRange(m, m+s), AxisRange())
	if r.Config.ReadOnly {
		next = Slice(h, AxisRange(), AxisRange(0, m), AxisRange())
	} else {
		next = Slice(h, AxisRange(), AxisRange(m+s, 2*m+s), AxisRange())
	}
	return hidden, next
}

// Unroll runs the segments' embeddings segments[s] [B, S_s, D] in order from memory (nil: the learned
// initial memory) and returns each segment's hidden states and the final memory. The memory entering
// segment s is cut with StopGradient for s <= K - BPTTDepth (see the package doc).
func (r *RMT) Unroll(scope *mlmodel.Scope, segments []*Node, memory *Node) (hidden []*Node, final *Node) {
	if len(segments) == 0 {
		panic(fmt.Errorf("rmt: Unroll needs at least one segment"))
	}
	dims := segments[0].Shape().Dimensions
	if memory == nil {
		memory = r.InitialMemory(scope, segments[0].Graph(), dims[0], dims[2], segments[0].DType())
	}
	k, d := len(segments), r.Config.BPTTDepth
	for s, x := range segments {
		if memory != nil && s > 0 && d > 0 && s <= k-d {
			memory = StopGradient(memory)
		}
		var h *Node
		h, memory = r.Step(scope, x, memory)
		hidden = append(hidden, h)
	}
	return hidden, memory
}

// Split cuts x [B, T, ...] into segments of SegmentLen along axis 1, the last one shorter when T is not
// a multiple.
func (r *RMT) Split(x *Node) []*Node {
	t, s := x.Shape().Dimensions[1], r.Config.SegmentLen
	var parts []*Node
	for from := 0; from < t; from += s {
		axes := make([]SliceAxisSpec, x.Rank())
		for i := range axes {
			axes[i] = AxisRange()
		}
		axes[1] = AxisRange(from, min(from+s, t))
		parts = append(parts, Slice(x, axes...))
	}
	return parts
}

// Hidden runs ids [B, T] (int32) through the unrolled segments and returns the tokens' hidden states
// [B, T, D], memory positions dropped: the drop-in for the backbone's own Hidden in training graphs.
func (r *RMT) Hidden(scope *mlmodel.Scope, ids *Node) *Node {
	segments := r.Split(r.Backbone.Embed(scope.ResetVisited(), ids))
	hidden, _ := r.Unroll(scope, segments, nil)
	if len(hidden) == 1 {
		return hidden[0]
	}
	return Concatenate(hidden, 1)
}
