package rmt

import (
	"fmt"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// HeadFn maps the tokens' hidden states [B, S, D] to what a stream returns (the output head's logits,
// say); nil returns the hidden states.
type HeadFn func(scope *mlmodel.Scope, hidden *Node) *Node

// Stream evaluates an input of any length one segment per execution, carrying the memory between
// executions: one compiled step per segment shape (the first segment, which starts from the learned
// memory, and a shorter last segment compile their own). Memory use does not grow with the input.
type Stream struct {
	rmt    *RMT
	exec   *mlmodel.Exec
	memory *tensors.Tensor // [B, m, D] after the last step; nil before the first (and when m = 0)
	steps  int
}

// NewStream returns a stream over the variables of store (the same store a training run uses).
// Call Finalize when done.
func NewStream(backend compute.Backend, store *mlmodel.Store, r *RMT, head HeadFn) (*Stream, error) {
	s := &Stream{rmt: r}
	exec, err := mlmodel.NewExec(backend, store, func(scope *mlmodel.Scope, in []*Node) []*Node {
		var memory *Node
		if len(in) > 1 {
			memory = in[1]
		}
		x := r.Backbone.Embed(scope.ResetVisited(), in[0])
		if memory == nil {
			dims := x.Shape().Dimensions
			memory = r.InitialMemory(scope, x.Graph(), dims[0], dims[2], x.DType())
		}
		hidden, next := r.Step(scope, x, memory)
		out := hidden
		if head != nil {
			out = head(scope.ResetVisited(), hidden)
		}
		if next == nil {
			return []*Node{out}
		}
		return []*Node{out, next}
	})
	if err != nil {
		return nil, fmt.Errorf("rmt stream: %w", err)
	}
	s.exec = exec
	return s, nil
}

// Next runs one segment of ids [B, S'] (int32, S' <= segment_len) and returns the head's output for its
// tokens; the memory it writes is kept for the next call.
func (s *Stream) Next(ids *tensors.Tensor) (*tensors.Tensor, error) {
	dims := ids.Shape().Dimensions
	if len(dims) != 2 || dims[1] < 1 || dims[1] > s.rmt.Config.SegmentLen {
		return nil, fmt.Errorf("rmt stream step %d: ids shape %v: want [batch, 1..%d]", s.steps, dims, s.rmt.Config.SegmentLen)
	}
	if s.memory != nil && s.memory.Shape().Dimensions[0] != dims[0] {
		return nil, fmt.Errorf("rmt stream step %d: batch %d differs from the stream's batch %d", s.steps, dims[0], s.memory.Shape().Dimensions[0])
	}
	args := []any{ids}
	if s.memory != nil {
		args = append(args, s.memory)
	}
	outs, err := s.exec.Exec(args...)
	if err != nil {
		return nil, fmt.Errorf("rmt stream step %d: %w", s.steps, err)
	}
	if len(outs) > 1 {
		if s.memory != nil {
			s.memory.FinalizeAll()
		}
		s.memory = outs[1]
	}
	s.steps++
	return outs[0], nil
}

// Memory is the memory the last step wrote [B, m, D] (nil before the first step or when m = 0).
func (s *Stream) Memory() *tensors.Tensor { return s.memory }

// Reset starts a new input: the next step reads the learned initial memory.
func (s *Stream) Reset() {
	if s.memory != nil {
		s.memory.FinalizeAll()
	}
	s.memory, s.steps = nil, 0
}

// Finalize releases the compiled graphs and the carried memory.
func (s *Stream) Finalize() {
	s.Reset()
	s.exec.Finalize()
}
