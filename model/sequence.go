package model

import (
	"fmt"

	"github.com/engramlx/engram/layers"
	"github.com/engramlx/engram/rmt"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// Sequence is a trainable sequence model with a carried state: token ids in, hidden states and logits
// out, a flat state carried from one call to the next. The decoder stack (*Model) is one; the stack
// wrapped in recurrent memory tokens (rmt.RMT) is another. Training, evaluation (every task and the
// streaming path to millions of tokens), checkpoint export and state export use only this interface, so
// a wrapper is trained, evaluated and exported with its memory, never as its bare backbone.
type Sequence interface {
	// Hidden runs ids [B, T] (int32) from state (nil: InitialState) and returns the final normalised
	// hidden states [B, T, D] and the next state. One call on a sequence equals any split of it into
	// calls of multiples of SegmentLen tokens with the state carried.
	Hidden(scope *mlmodel.Scope, ids *Node, state []*Node) (*Node, []*Node)
	// Logits maps hidden states [..., D] to logits [..., vocab].
	Logits(scope *mlmodel.Scope, hidden *Node) *Node
	// StateSpecs names and shapes the flat carried state at a batch size.
	StateSpecs(batch int) []layers.StateSpec
	// InitialState is the state at the start of a sequence: zeros, or learned values (rmt's memory).
	InitialState(scope *mlmodel.Scope, g *Graph, batch int) []*Node
	// MaxContext is the most tokens one stream may hold (full attention's KV cache), 0 if unlimited.
	MaxContext() int
	// SegmentLen is the granularity of streaming: a streamed call holds a multiple of it (1: any length).
	SegmentLen() int
	// Describe says in one line how the model streams (empty when there is nothing to say).
	Describe() string
}

// RMTConfig is the `rmt:` section of an experiment: recurrent memory tokens around the stack.
type RMTConfig = rmt.Config

// DefaultRMTConfig is rmt's default, disabled.
func DefaultRMTConfig() RMTConfig { return rmt.DefaultConfig() }

// NewSequence builds the stack of cfg and, when wrap is enabled, wraps it in recurrent memory tokens.
// It returns the sequence model and the stack (the same value without a wrapper).
func NewSequence(cfg Config, wrap RMTConfig) (Sequence, *Model, error) {
	m, err := New(cfg)
	if err != nil {
		return nil, nil, err
	}
	if !wrap.Enabled {
		return m, m, nil
	}
	r, err := rmt.New(wrap, m)
	if err != nil {
		return nil, nil, err
	}
	return r, m, nil
}

// LabelledLogits runs seq on ids [B, T] from its initial state and returns logits [B, P, vocab] at
// positions [B, P] (int32): the training graph's model.
func LabelledLogits(seq Sequence, scope *mlmodel.Scope, ids, positions *Node) *Node {
	return LabelledLogitsDocuments(seq, scope, ids, positions, nil)
}

// DocumentSequence is a Sequence that restarts at document starts inside a row (packed training rows):
// HiddenDocuments is Hidden with docStart [B, T] (1 at a document's first token; nil: Hidden), and
// computes for each document what Hidden computes for it alone. The decoder stack is one; rmt.RMT is
// not (its memory tokens are written per segment, not per document).
type DocumentSequence interface {
	Sequence
	HiddenDocuments(scope *mlmodel.Scope, ids *Node, state []*Node, docStart *Node) (*Node, []*Node)
}

// LabelledLogitsDocuments is LabelledLogits over rows packing documents, docStart [B, T] (nil:
// LabelledLogits). It panics when seq is not a DocumentSequence; CheckDocuments says so beforehand.
func LabelledLogitsDocuments(seq Sequence, scope *mlmodel.Scope, ids, positions, docStart *Node) *Node {
	var hidden *Node
	if docStart == nil {
		hidden, _ = seq.Hidden(scope, ids, nil)
	} else {
		ds, ok := seq.(DocumentSequence)
		if !ok {
			panic(fmt.Errorf("model: %T cannot restart at document starts", seq))
		}
		hidden, _ = ds.HiddenDocuments(scope, ids, nil, docStart)
	}
	return seq.Logits(scope.ResetVisited(), GatherPositions(hidden, positions))
}

// CheckDocuments returns an error when seq cannot restart at document starts: a wrapper that is not a
// DocumentSequence (rmt), or a layer whose mixer is not a layers.DocumentMixer.
func CheckDocuments(seq Sequence) error {
	if _, ok := seq.(DocumentSequence); !ok {
		return fmt.Errorf("%T cannot restart at document starts inside a row (rmt writes its memory per segment); set reset_at_document_start: false in data.train and data.eval", seq)
	}
	if m, ok := seq.(*Model); ok {
		for i, mixer := range m.Mixers {
			if _, ok := mixer.(layers.DocumentMixer); !ok {
				return fmt.Errorf("model.layers[%d] = %q cannot restart at document starts (no layers.DocumentMixer); set reset_at_document_start: false in data.train and data.eval", i, m.Config.Layers[i].Type)
			}
		}
	}
	return nil
}

// ContextSized is a Sequence whose state can be sized for a stream of at most positions tokens (full
// attention's KV cache holds min(positions, max_context) instead of max_context): InitialStateForContext
// is InitialState at those sizes (positions <= 0: InitialState).
type ContextSized interface {
	InitialStateForContext(scope *mlmodel.Scope, g *Graph, batch, positions int) []*Node
}

// InitialStateForContext implements ContextSized: zeros of StateSpecsForContext.
func (m *Model) InitialStateForContext(_ *mlmodel.Scope, g *Graph, batch, positions int) []*Node {
	return layers.ZeroState(g, m.StateSpecsForContext(batch, positions))
}

// InitialState is the stack's start-of-sequence state: zeros.
func (m *Model) InitialState(_ *mlmodel.Scope, g *Graph, batch int) []*Node {
	return layers.ZeroState(g, m.StateSpecs(batch))
}

// SegmentLen is 1: the stack streams in calls of any length.
func (m *Model) SegmentLen() int { return 1 }

// Describe says how much context full attention's KV cache holds, if the stack has one.
func (m *Model) Describe() string {
	if limit := m.MaxContext(); limit > 0 {
		return fmt.Sprintf("full attention keeps a KV cache of %d tokens: longer contexts are marked \"exceeds cache\"", limit)
	}
	return ""
}

// Width is the hidden width and dtype of the stack (rmt's memory vectors have it).
func (m *Model) Width() (int, dtypes.DType) { return m.Config.DModel, m.DType }
