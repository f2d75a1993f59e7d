package eval

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/engramlx/engram/internal/tensorutil"

	"github.com/engramlx/engram/data"
	"github.com/engramlx/engram/model"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// Input is a batch of rows of equal length, read one segment at a time, so a generator need not hold a
// million-token row in memory.
type Input interface {
	// Rows is the number of rows; Len the number of tokens in each.
	Rows() int
	Len() int
	// Read writes tokens [from, from+n) of every row into ids and labels (both Rows()*n, row-major;
	// labels[t] is the token after ids[t], data.Ignore where nothing is scored).
	Read(from, n int, ids, labels []int32) error
}

// ExceedsCacheError reports an input longer than full attention's KV cache (model max_context).
type ExceedsCacheError struct{ Length, Limit int }

func (e *ExceedsCacheError) Error() string {
	return fmt.Sprintf("context of %d tokens exceeds the model's KV cache (attention.max_context = %d)", e.Length, e.Limit)
}

// IsExceedsCache reports whether err is an ExceedsCacheError.
func IsExceedsCache(err error) bool {
	var e *ExceedsCacheError
	return errors.As(err, &e)
}

// Streamer runs a sequence model over inputs of any length with one compiled segment step:
//
//	(ids [B, S], positions [B, P], state...) -> (logits [B, P, V] at those positions, next state...)
//
// executed once per segment of S tokens with the state carried between executions, so memory holds
// one segment's activations and the model's fixed-size state whatever the context length. The state
// is always passed explicitly (the model's initial state, computed once, at the start), which keeps one
// graph per (B, S, P). A last, shorter segment is padded with id 0 after the real tokens: the model is
// causal, so padding changes no scored position. S is a multiple of the model's SegmentLen (rmt's
// segments), so streamed segment boundaries are the ones the model was trained with.
type Streamer struct {
	Model   model.Sequence
	Vocab   int
	Segment int
	exec    *mlmodel.Exec
	initial *mlmodel.Exec
	context int // the KV-cache length of the last stream
}

// NewStreamer builds the segment step over store's variables (loaded from a checkpoint by train.Open).
// segment is rounded down to a multiple of m.SegmentLen() (at least one).
func NewStreamer(m model.Sequence, vocab int, store *mlmodel.Store, backend compute.Backend, segment int) (*Streamer, error) {
	if segment < 1 {
		return nil, fmt.Errorf("eval: segment = %d: must be >= 1", segment)
	}
	if unit := m.SegmentLen(); unit > 1 {
		segment = max(unit, segment/unit*unit)
	}
	exec, err := mlmodel.NewExec(backend, store, func(scope *mlmodel.Scope, in []*Node) []*Node {
		hidden, next := m.Hidden(scope, in[0], in[2:])
		logits := m.Logits(scope.ResetVisited(), model.GatherPositions(hidden, in[1]))
		return append([]*Node{logits}, next...)
	})
	if err != nil {
		return nil, err
	}
	// The initial state's graph takes the batch size and the stream's context length (the cache length a
	// ContextSized model sizes its KV cache to) as the shapes of its two inputs.
	initial, err := mlmodel.NewExec(backend, store, func(scope *mlmodel.Scope, batch, context *Node) []*Node {
		size := batch.Shape().Dimensions[0]
		if cs, ok := m.(model.ContextSized); ok {
			return append([]*Node{batch}, cs.InitialStateForContext(scope, batch.Graph(), size, context.Shape().Dimensions[0])...)
		}
		return append([]*Node{batch}, m.InitialState(scope, batch.Graph(), size)...)
	})
	if err != nil {
		return nil, err
	}
	return &Streamer{Model: m, Vocab: vocab, Segment: segment, exec: exec, initial: initial}, nil
}

// Close frees the compiled graphs.
func (s *Streamer) Close() {
	s.exec.Finalize()
	s.initial.Finalize()
}

// initialState is the model's start-of-sequence state at batch as tensors, for a stream of length tokens:
// a KV cache holds length rounded up to a power of two (one compiled graph per power of two), at most
// max_context.
func (s *Streamer) initialState(batch, length int) ([]*tensors.Tensor, error) {
	context := 1
	for context < length {
		context *= 2
	}
	if s.context != 0 && s.context != context {
		// The previous size's graph leaves its activation buffers in the Go backend's pools (sync.Pool,
		// emptied by garbage collection): release them before the new size allocates its own, or the
		// peak RSS holds both.
		runtime.GC()
		runtime.GC()
	}
	s.context = context
	outs, err := s.initial.Call(tensors.FromShape(shapes.Make(dtypes.Int32, batch)), tensors.FromShape(shapes.Make(dtypes.Int32, context)))
	if err != nil {
		return nil, fmt.Errorf("eval: the model's initial state: %w", err)
	}
	outs[0].FinalizeAll()
	return outs[1:], nil
}

// segmentFor is the segment length a stream of length tokens runs with: Segment, or for a shorter
// input the model's segment unit doubled until it holds the input (one compiled graph per power of two),
// so that a 64-token row does not pay for a 512-token graph in time and memory. One segment then holds
// the whole input, which streams exactly as any split does.
func (s *Streamer) segmentFor(length int) int {
	seg := max(1, s.Model.SegmentLen())
	for seg < length && seg < s.Segment {
		seg *= 2
	}
	return min(seg, s.Segment)
}

// Visit receives the logits (length vocab, valid only during the call) at labelled position pos of row.
type Visit func(row, pos int, target int32, logits []float64)

// Stream runs in through the model segment by segment, calling visit for every labelled position in
// order. batch >= in.Rows() is the compiled batch size (missing rows are padding) and slots the most
// labelled positions a row has within one segment. A context longer than the model's max_context
// returns an *ExceedsCacheError before any work.
func (s *Streamer) Stream(in Input, batch, slots int, visit Visit) error {
	rows, length := in.Rows(), in.Len()
	if limit := s.Model.MaxContext(); limit > 0 && length > limit {
		return &ExceedsCacheError{Length: length, Limit: limit}
	}
	if rows > batch || rows < 1 || slots < 1 {
		return fmt.Errorf("eval: %d rows in a batch of %d with %d slots: need 1 <= rows <= batch and slots >= 1", rows, batch, slots)
	}
	seg := s.segmentFor(length)
	state, err := s.initialState(batch, length)
	if err != nil {
		return err
	}
	defer func() { finalize(state) }()
	ids, labels := make([]int32, rows*seg), make([]int32, rows*seg)
	vocab := s.Vocab
	for from := 0; from < length; from += seg {
		n := min(seg, length-from)
		if err := in.Read(from, n, ids[:rows*n], labels[:rows*n]); err != nil {
			return err
		}
		segIDs, positions, targets, err := layout(ids[:rows*n], labels[:rows*n], rows, n, batch, seg, slots, from)
		if err != nil {
			return err
		}
		outs, err := s.step(segIDs, positions, batch, seg, slots, state)
		if err != nil {
			return err
		}
		finalize(state)
		state = outs[1:]
		logits := tensorutil.Floats(outs[0])
		outs[0].FinalizeAll()
		for r := 0; r < rows; r++ {
			for p := 0; p < slots && targets[r*slots+p] != data.Ignore; p++ {
				at := (r*slots + p) * vocab
				visit(r, from+int(positions[r*slots+p]), targets[r*slots+p], logits[at:at+vocab])
			}
		}
	}
	return nil
}

// layout builds one segment's padded ids [batch*seg], the labelled positions [batch*slots] (within the
// segment) and their targets (data.Ignore after the last one of a row).
func layout(ids, labels []int32, rows, n, batch, seg, slots, from int) (segIDs, positions, targets []int32, err error) {
	segIDs = make([]int32, batch*seg)
	positions = make([]int32, batch*slots)
	targets = make([]int32, batch*slots)
	for i := range targets {
		targets[i] = data.Ignore
	}
	for r := 0; r < rows; r++ {
		copy(segIDs[r*seg:r*seg+n], ids[r*n:(r+1)*n])
		p := 0
		for t := 0; t < n; t++ {
			if labels[r*n+t] == data.Ignore {
				continue
			}
			if p == slots {
				return nil, nil, nil, fmt.Errorf("eval: row %d has more than %d labelled positions in tokens [%d, %d)", r, slots, from, from+n)
			}
			positions[r*slots+p], targets[r*slots+p] = int32(t), labels[r*n+t]
			p++
		}
	}
	return segIDs, positions, targets, nil
}

// step executes the segment graph once.
func (s *Streamer) step(ids, positions []int32, batch, seg, slots int, state []*tensors.Tensor) ([]*tensors.Tensor, error) {
	idsT := tensors.FromFlatDataAndDimensions(ids, batch, seg)
	posT := tensors.FromFlatDataAndDimensions(positions, batch, slots)
	defer idsT.FinalizeAll()
	defer posT.FinalizeAll()
	args := []any{idsT, posT}
	for _, t := range state {
		args = append(args, t)
	}
	return s.exec.Call(args...)
}

func finalize(ts []*tensors.Tensor) {
	for _, t := range ts {
		t.FinalizeAll()
	}
}
