package model

import (
	"math"
	"reflect"
	"testing"

	"github.com/engramlx/engram/data"
	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

func TestGatherPositions(t *testing.T) {
	hidden := make([]float64, 2*4*3)
	for i := range hidden {
		hidden[i] = float64(i)
	}
	out := lt.RunOp(func(in []*Node) []*Node { return []*Node{GatherPositions(in[0], in[1])} },
		[]*tensors.Tensor{tensors.FromFlatDataAndDimensions(hidden, 2, 4, 3), tensors.FromValue([][]int32{{3, 0}, {1, 1}})})
	want := tensors.FromValue([][][]float64{{{9, 10, 11}, {0, 1, 2}}, {{15, 16, 17}, {15, 16, 17}}})
	lt.AssertClose(t, "gathered rows", out[0], want, 0)
}

// Cross-entropy by hand: logits (0, ln 3) -> p = (1/4, 3/4); targets 1 and 0, the third slot padding.
func TestCrossEntropyByHand(t *testing.T) {
	l3 := math.Log(3)
	logits := tensors.FromValue([][][]float64{{{0, l3}, {0, l3}, {5, -5}}})
	targets := tensors.FromValue([][]int32{{1, 0, 1}})
	weights := tensors.FromValue([][]float32{{1, 1, 0}})
	fn := func(in []*Node) []*Node {
		loss, acc := CrossEntropy(in[0], in[1], in[2])
		return []*Node{loss, acc}
	}
	out := lt.RunOp(fn, []*tensors.Tensor{logits, targets, weights})
	lt.AssertClose(t, "loss", out[0], tensors.FromScalar((-math.Log(0.75)-math.Log(0.25))/2), 1e-12)
	lt.AssertClose(t, "accuracy", out[1], tensors.FromScalar(0.5), 0)
	// Gradient w.r.t. the logits is (softmax - onehot) * weight / count.
	_, grads := lt.OpGradients(func(in []*Node) []*Node { l, _ := CrossEntropy(in[0], in[1], in[2]); return []*Node{l} },
		[]*tensors.Tensor{logits, targets, weights}, []*tensors.Tensor{tensors.FromScalar(1.0)})
	want := tensors.FromValue([][][]float64{{{0.25 / 2, -0.25 / 2}, {-0.75 / 2, 0.75 / 2}, {0, 0}}})
	lt.AssertClose(t, "d loss / d logits", grads[0], want, 1e-12)
}

func TestMakeInputs(t *testing.T) {
	b := data.NewBatch(2, 4)
	b.Labels[1], b.Labels[3], b.Labels[6] = 7, 9, 5
	in, err := MakeInputs(b, 2)
	if err != nil {
		t.Fatal(err)
	}
	lt.AssertClose(t, "positions", in.Positions, tensors.FromValue([][]int32{{1, 3}, {2, 0}}), 0)
	lt.AssertClose(t, "targets", in.Targets, tensors.FromValue([][]int32{{7, 9}, {5, 0}}), 0)
	lt.AssertClose(t, "weights", in.Weights, tensors.FromValue([][]float32{{1, 1}, {1, 0}}), 0)
	b.Labels[0] = 1
	if _, err := MakeInputs(b, 2); err == nil || err.Error() != "row 0 has more than 2 labelled positions (the model's label slots)" {
		t.Errorf("got %v, want the row-0 overflow error", err)
	}
}

// Sections no layer reads do not count as an architecture difference; sections in use do.
func TestInUseIgnoresUnusedSections(t *testing.T) {
	a := DefaultConfig()
	b := a
	b.MoM.Memories = 7
	b.Titans.Heads = 9
	if !reflect.DeepEqual(a.InUse(), b.InUse()) {
		t.Error("attention-only configs differing in mom/titans sections compare unequal")
	}
	b.Attention.Heads = 8
	if reflect.DeepEqual(a.InUse(), b.InUse()) {
		t.Error("a difference in the attention section used by the layers was ignored")
	}
}
