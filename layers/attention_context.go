package layers

import "github.com/gomlx/compute/dtypes"

// ContextSized is implemented by Mixers whose state holds a buffer that grows with the context (full
// attention's KV cache of MaxContext positions). A caller that knows how many positions a stream will
// hold (an evaluation's longest input) asks for state specs of that size instead of the maximum, and
// the Mixer's Apply accepts a state of any such size; StateSpecs stays the default (the maximum).
type ContextSized interface {
	// StateSpecsForContext is StateSpecs for a stream of at most positions tokens (capped by the Mixer's
	// own limit; positions <= 0 means the default, StateSpecs).
	StateSpecsForContext(batch int, dtype dtypes.DType, positions int) []StateSpec
}

// StateSpecsForContext returns m's state specs for a stream of at most positions tokens: a ContextSized
// Mixer sizes its buffers to it, any other Mixer (fixed-size state) returns StateSpecs.
func StateSpecsForContext(m Mixer, batch int, dtype dtypes.DType, positions int) []StateSpec {
	if cs, ok := m.(ContextSized); ok && positions > 0 {
		return cs.StateSpecsForContext(batch, dtype, positions)
	}
	return m.StateSpecs(batch, dtype)
}
