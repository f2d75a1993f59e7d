package configs

import (
	"fmt"

	"github.com/engramlx/engram/data"
)

// MaxCurriculumSegments bounds rmt's curriculum: every segment count compiles its own train graph.
const MaxCurriculumSegments = 16

// validateRMT checks the rmt section against the backbone and the data: every segment (with its memory
// copies) must fit full attention's max_context, and a curriculum needs rows of whole segments.
func (e Experiment) validateRMT() error {
	c := e.RMT
	if err := c.Validate(); err != nil {
		return err
	}
	if !c.Enabled {
		return nil
	}
	for i, l := range e.Model.Layers {
		t := l.Type
		if t == "attention" && c.CarryState {
			return fmt.Errorf("rmt.carry_state = true with an attention layer (layer %d): its KV cache would grow with every segment; carry only recurrent backbones' state", i)
		}
		if t == "attention" && e.Model.Attention.MaxContext < c.Positions() {
			return fmt.Errorf("model.attention.max_context = %d: layer %d sees rmt segments of %d positions (segment_len %d + memory copies)",
				e.Model.Attention.MaxContext, i, c.Positions(), c.SegmentLen)
		}
	}
	if !c.Curriculum {
		return nil
	}
	if _, ok := e.Data.Resized(1, 1, 1); !ok {
		return fmt.Errorf("rmt.curriculum = true with data.task = %q: the curriculum resizes copy or mqar rows", e.Data.Task)
	}
	seqLen := e.Data.SeqLen()
	if seqLen%c.SegmentLen != 0 {
		return fmt.Errorf("rmt.curriculum = true: data.%s.seq_len = %d is not a multiple of rmt.segment_len = %d", e.Data.Task, seqLen, c.SegmentLen)
	}
	if n := seqLen / c.SegmentLen; n > MaxCurriculumSegments {
		return fmt.Errorf("rmt.curriculum = true: %d segments per row (data.%s.seq_len / rmt.segment_len), at most %d", n, e.Data.Task, MaxCurriculumSegments)
	}
	return nil
}

// CurriculumSegments is n, the segment count of a full row of the experiment's task.
func (e Experiment) CurriculumSegments() int { return e.RMT.Segments(e.Data.SeqLen()) }

// CurriculumTask is the experiment's task sized for k of its n segments: rows of k * segment_len tokens,
// and the copied length (copy) or the pairs (mqar) scaled by k / n, at least 1.
func (e Experiment) CurriculumTask(k int) data.Task {
	t, _ := e.Data.Resized(k*e.RMT.SegmentLen, k, e.CurriculumSegments())
	return t
}
