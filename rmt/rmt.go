package rmt

import (
	"fmt"

	"github.com/engramlx/engram/layers"
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
	// Logits maps hidden states [..., D] to logits [..., vocab].
	Logits(scope *mlmodel.Scope, hidden *Node) *Node
	// StateSpecs is the backbone's own carried state at a batch size.
	StateSpecs(batch int) []layers.StateSpec
	// Width is D, the hidden width, and the dtype of the hidden states.
	Width() (int, dtypes.DType)
}

// memoryState names the memory in the flat state.
const memoryState = "rmt/memory"

// RMT is a backbone with recurrent memory tokens. The backbone runs once per segment with the same
// weights, so every call enters it through scope.ResetVisited(): GoMLX refuses a second In("layer_0")
// from one Scope value unless told that the reuse is meant.
//
// RMT is a sequence model like its backbone (model.Sequence): its carried state is the memory [B, m, D]
// (when m > 0) followed, with CarryState, by the backbone's own state.
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
func (r *RMT) InitialMemory(scope *mlmodel.Scope, g *Graph, batch int) *Node {
	m := r.Config.MemorySize
	if m == 0 {
		return nil
	}
	dModel, dtype := r.Backbone.Width()
	mem := scope.ResetVisited().In("rmt").WithInitializer(initializer.RandomNormalFn(scope, 1)).
		VariableWithShape("memory", shapes.Make(dtype, m, dModel)).NodeValue(g)
	return BroadcastToDims(ExpandAxes(mem, 0), batch, m, dModel)
}

// StateSpecs is the memory [batch, m, D] (when m > 0), then the backbone's state when CarryState.
func (r *RMT) StateSpecs(batch int) []layers.StateSpec {
	var specs []layers.StateSpec
	if m := r.Config.MemorySize; m > 0 {
		dModel, dtype := r.Backbone.Width()
		specs = append(specs, layers.StateSpec{Name: memoryState, Shape: shapes.Make(dtype, batch, m, dModel)})
	}
	if r.Config.CarryState {
		specs = append(specs, r.Backbone.StateSpecs(batch)...)
	}
	return specs
}

// InitialState is the learned memory M_0 and, with CarryState, the backbone's zero state.
func (r *RMT) InitialState(scope *mlmodel.Scope, g *Graph, batch int) []*Node {
	var state []*Node
	if mem := r.InitialMemory(scope, g, batch); mem != nil {
		state = append(state, mem)
	}
	if r.Config.CarryState {
		state = append(state, layers.ZeroState(g, r.Backbone.StateSpecs(batch))...)
	}
	return state
}

// MaxContext is 0: the memory is the only thing carried from segment to segment (with CarryState, the
// backbone's recurrent state too, which configs refuses for attention backbones), so a stream may be of
// any length.
func (r *RMT) MaxContext() int { return 0 }

// SegmentLen is S: streamed calls hold whole segments, so their boundaries are the training ones.
func (r *RMT) SegmentLen() int { return r.Config.SegmentLen }

// Describe says how the model streams.
func (r *RMT) Describe() string {
	carried := "the memory is the only state carried between segments"
	switch {
	case r.Config.MemorySize == 0 && !r.Config.CarryState:
		carried = "nothing is carried between segments"
	case r.Config.MemorySize == 0:
		carried = "the backbone's state is carried between segments"
	case r.Config.CarryState:
		carried = "the memory and the backbone's state are carried between segments"
	}
	return fmt.Sprintf("rmt: segments of %d tokens with %d memory tokens (read-only %v); %s", r.Config.SegmentLen, r.Config.MemorySize, r.Config.ReadOnly, carried)
}

// Logits are the backbone's output head.
func (r *RMT) Logits(scope *mlmodel.Scope, hidden *Node) *Node {
	return r.Backbone.Logits(scope, hidden)
}

// Step runs one segment: embeddings x [B, S, D] with memory [B, m, D] (nil when m = 0) and the
// backbone's state (nil: its start-of-sequence state) to the tokens' hidden states [B, S, D], the next
// memory [B, m, D] (nil when m = 0) and the backbone's next state (nil unless CarryState).
func (r *RMT) Step(scope *mlmodel.Scope, x, memory *Node, backbone []*Node) (hidden, next *Node, nextBackbone []*Node) {
	m := r.Config.MemorySize
	if !r.Config.CarryState {
		backbone = nil
	}
	if m == 0 {
		hidden, nextBackbone = r.Backbone.HiddenFromEmbeddings(scope.ResetVisited(), x, backbone)
		return hidden, nil, r.carried(nextBackbone)
	}
	if memory == nil || memory.Rank() != 3 || memory.Shape().Dimensions[1] != m {
		panic(fmt.Errorf("rmt: memory must be [batch, %d, d_model], got %v", m, memory))
	}
	s := x.Shape().Dimensions[1]
	parts := []*Node{memory, x}
	if !r.Config.ReadOnly {
		parts = append(parts, memory)
	}
	h, nextBackbone := r.Backbone.HiddenFromEmbeddings(scope.ResetVisited(), Concatenate(parts, 1), backbone)
	hidden = Slice(h, AxisRange(), AxisRange(m, m+s), AxisRange())
	if r.Config.ReadOnly {
		next = Slice(h, AxisRange(), AxisRange(0, m), AxisRange())
	} else {
		next = Slice(h, AxisRange(), AxisRange(m+s, 2*m+s), AxisRange())
	}
	return hidden, next, r.carried(nextBackbone)
}

// carried keeps the backbone's next state only when it is carried.
func (r *RMT) carried(state []*Node) []*Node {
	if !r.Config.CarryState {
		return nil
	}
	return state
}

// Unroll runs the segments' embeddings segments[s] [B, S_s, D] in order from memory (nil: the learned
// initial memory) and the backbone's state (nil: its start), and returns each segment's hidden states,
// the final memory and the backbone's final state (nil unless CarryState). The state entering segment s
// is cut with StopGradient for s <= K - BPTTDepth (see the package doc).
func (r *RMT) Unroll(scope *mlmodel.Scope, segments []*Node, memory *Node, backbone []*Node) (hidden []*Node, final *Node, finalBackbone []*Node) {
	if len(segments) == 0 {
		panic(fmt.Errorf("rmt: Unroll needs at least one segment"))
	}
	if memory == nil {
		memory = r.InitialMemory(scope, segments[0].Graph(), segments[0].Shape().Dimensions[0])
	}
	k, d := len(segments), r.Config.BPTTDepth
	for s, x := range segments {
		if s > 0 && d > 0 && s <= k-d {
			if memory != nil {
				memory = StopGradient(memory)
			}
			for i := range backbone {
				backbone[i] = StopGradient(backbone[i])
			}
		}
		var h *Node
		h, memory, backbone = r.Step(scope, x, memory, backbone)
		hidden = append(hidden, h)
	}
	return hidden, memory, backbone
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

// Hidden runs ids [B, T] (int32) through the unrolled segments from state (nil: InitialState) and
// returns the tokens' hidden states [B, T, D], memory positions dropped, and the next state.
func (r *RMT) Hidden(scope *mlmodel.Scope, ids *Node, state []*Node) (*Node, []*Node) {
	memory, backbone, err := r.splitState(state)
	if err != nil {
		panic(err)
	}
	segments := r.Split(r.Backbone.Embed(scope.ResetVisited(), ids))
	hidden, memory, backbone := r.Unroll(scope, segments, memory, backbone)
	var next []*Node
	if memory != nil {
		next = append(next, memory)
	}
	next = append(next, backbone...)
	if len(hidden) == 1 {
		return hidden[0], next
	}
	return Concatenate(hidden, 1), next
}

// splitState separates a flat state into the memory and the backbone's state (both nil for nil).
func (r *RMT) splitState(state []*Node) (memory *Node, backbone []*Node, err error) {
	if state == nil {
		return nil, nil, nil
	}
	batch := 0
	if len(state) > 0 {
		batch = state[0].Shape().Dimensions[0]
	}
	if want := len(r.StateSpecs(batch)); len(state) != want {
		return nil, nil, fmt.Errorf("rmt: state of %d tensors, want %d (memory, then the backbone's state when carried)", len(state), want)
	}
	if r.Config.MemorySize > 0 {
		memory, state = state[0], state[1:]
	}
	if r.Config.CarryState {
		backbone = append([]*Node(nil), state...)
	}
	return memory, backbone, nil
}
