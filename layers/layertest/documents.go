package layertest

import (
	"fmt"
	"math"
	"testing"

	"github.com/engramlx/engram/layers"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// RunDocuments applies the mixer, which must be a layers.DocumentMixer, to x [batch, time, dModel] with
// state (nil = start of sequence) and document starts docStart [batch, time] (float64, 1 at a
// document's first token).
func (c *MixerCase) RunDocuments(x *tensors.Tensor, state []*tensors.Tensor, docStart *tensors.Tensor) (y *tensors.Tensor, next []*tensors.Tensor) {
	dm, ok := c.Mixer.(layers.DocumentMixer)
	if !ok {
		panic(fmt.Errorf("layertest: %T is not a layers.DocumentMixer", c.Mixer))
	}
	exec := model.MustNewExec(Backend(), c.Store, func(_ *model.Scope, in []*Node) []*Node {
		var st []*Node
		if len(in) > 2 {
			st = in[2:]
		}
		out, nextState := dm.ApplyDocuments(c.scope(), in[0], st, in[1])
		return append([]*Node{out}, nextState...)
	})
	defer exec.Finalize()
	args := []any{x, docStart}
	for _, s := range state {
		args = append(args, s)
	}
	outs := exec.MustCall(args...)
	return outs[0], outs[1:]
}

// DocumentStarts returns the [batch, time] float64 mask with 1 at the first token of each document of
// the given lengths, packed one after the other in every row (time = their sum).
func DocumentStarts(batch int, lengths []int) *tensors.Tensor {
	time := 0
	for _, n := range lengths {
		time += n
	}
	mask := make([]float64, batch*time)
	for b := 0; b < batch; b++ {
		at := 0
		for _, n := range lengths {
			mask[b*time+at] = 1
			at += n
		}
	}
	return tensors.FromFlatDataAndDimensions(mask, batch, time)
}

// PackedEqualsSeparate checks that one row packing documents of the given lengths, run with their
// starts (ApplyDocuments) from the state left by a random prefix of prefix tokens (0: the start of a
// sequence; otherwise the start at t = 0 must drop that state), computes what each document
// computes alone from the start of a sequence: the outputs of every document, and the state after each
// document (the packed prefix ending at its end) against the document's own final state. States whose
// spec name skipState reports (nil: none) are not compared; the caller says why. It returns the worst
// relative RMS error seen.
func PackedEqualsSeparate(t testing.TB, c *MixerCase, lengths []int, prefix int, skipState func(name string) bool, tol float64) (worst float64) {
	t.Helper()
	total := 0
	for _, n := range lengths {
		total += n
	}
	x := c.RandomInput(41, total)
	var incoming []*tensors.Tensor
	if prefix > 0 {
		_, incoming = c.Run(c.RandomInput(43, prefix), nil)
	}
	specs := c.Specs()
	from := 0
	for i, n := range lengths {
		to := from + n
		yPacked, statePacked := c.RunDocuments(SliceTime(x, 0, to), incoming, SliceTime(DocumentStarts(c.Batch, lengths), 0, to))
		yAlone, stateAlone := c.Run(SliceTime(x, from, to), nil)
		worst = math.Max(worst, AssertClose(t, fmt.Sprintf("document %d (tokens %d..%d) outputs", i, from, to), SliceTime(yPacked, from, to), yAlone, tol))
		for j, spec := range specs {
			if skipState != nil && skipState(spec.Name) {
				continue
			}
			if !statePacked[j].DType().IsFloat() {
				continue
			}
			worst = math.Max(worst, AssertClose(t, fmt.Sprintf("document %d final state %s", i, spec.Name), statePacked[j], stateAlone[j], tol))
		}
		from = to
	}
	return worst
}
