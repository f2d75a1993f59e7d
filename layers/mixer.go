package layers

import (
	"fmt"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// StateSpec names one tensor of a Mixer's carried state and gives its shape.
//
// Names are stable: they key exported memory states and the flattened state of a model.
type StateSpec struct {
	Name  string
	Shape shapes.Shape
}

// Mixer is a sequence-mixing layer: attention, the gated delta rule, Titans memory, MoM.
//
// It maps x [batch, time, dModel] plus an incoming state to an output of the same shape plus the
// outgoing state. The state is an ordered list of tensors whose shapes StateSpecs gives, so it can be
// threaded through an unrolled graph or returned from one execution and fed into the next.
//
// A nil state means "start of sequence" and equals the zero state of StateSpecs. Processing a sequence
// in one call equals processing it in two parts with the state carried (tested for every Mixer).
type Mixer interface {
	// StateSpecs lists the carried state for a batch size and dtype, in the order Apply uses.
	StateSpecs(batch int, dtype dtypes.DType) []StateSpec

	// Apply maps x [batch, time, dModel] and state (nil = start of sequence) to
	// y [batch, time, dModel] and the outgoing state. Variables live under scope.
	Apply(scope *model.Scope, x *Node, state []*Node) (y *Node, next []*Node)
}

// ContextLimited is implemented by Mixers whose streaming state holds at most MaxContext tokens
// (full attention's KV cache); streaming past it is an error the caller must report.
type ContextLimited interface {
	MaxContext() int
}

// ZeroState returns the zero state for specs, as constants in g.
func ZeroState(g *Graph, specs []StateSpec) []*Node {
	state := make([]*Node, len(specs))
	for i, spec := range specs {
		state[i] = Zeros(g, spec.Shape)
	}
	return state
}

// StateOrZero returns state, or the zero state of specs when state is nil. It panics, naming the layer,
// when a non-nil state does not match specs.
func StateOrZero(g *Graph, layer string, specs []StateSpec, state []*Node) []*Node {
	if state == nil {
		return ZeroState(g, specs)
	}
	if len(state) != len(specs) {
		panic(fmt.Errorf("%s: got %d state tensors, want %d (%s)", layer, len(state), len(specs), specNames(specs)))
	}
	for i, spec := range specs {
		if !state[i].Shape().Equal(spec.Shape) {
			panic(fmt.Errorf("%s: state %q has shape %s, want %s", layer, spec.Name, state[i].Shape(), spec.Shape))
		}
	}
	return state
}

func specNames(specs []StateSpec) string {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}

// PrefixSpecs returns specs with every name prefixed by prefix + "/": the names a stack of layers uses
// for its flattened state (e.g. "layer_3/S").
func PrefixSpecs(prefix string, specs []StateSpec) []StateSpec {
	out := make([]StateSpec, len(specs))
	for i, s := range specs {
		out[i] = StateSpec{Name: prefix + "/" + s.Name, Shape: s.Shape}
	}
	return out
}

// Flatten concatenates per-layer states into one ordered list, with the matching named specs.
// A nil layer state is replaced by its zero state.
func Flatten(g *Graph, perLayer [][]*Node, perLayerSpecs [][]StateSpec, prefixes []string) ([]*Node, []StateSpec) {
	var flat []*Node
	var specs []StateSpec
	for i, state := range perLayer {
		state = StateOrZero(g, prefixes[i], perLayerSpecs[i], state)
		flat = append(flat, state...)
		specs = append(specs, PrefixSpecs(prefixes[i], perLayerSpecs[i])...)
	}
	return flat, specs
}

// Unflatten splits a flat state list back into per-layer states, by the per-layer spec counts.
// A nil flat list gives nil per-layer states (start of sequence).
func Unflatten(flat []*Node, perLayerSpecs [][]StateSpec) ([][]*Node, error) {
	perLayer := make([][]*Node, len(perLayerSpecs))
	if flat == nil {
		return perLayer, nil
	}
	total := 0
	for _, specs := range perLayerSpecs {
		total += len(specs)
	}
	if len(flat) != total {
		return nil, fmt.Errorf("flat state has %d tensors, the layers want %d", len(flat), total)
	}
	offset := 0
	for i, specs := range perLayerSpecs {
		perLayer[i] = flat[offset : offset+len(specs)]
		offset += len(specs)
	}
	return perLayer, nil
}

// StateBytes is the size in bytes of one state.
func StateBytes(specs []StateSpec) int64 {
	var total int64
	for _, s := range specs {
		total += int64(s.Shape.Memory())
	}
	return total
}
