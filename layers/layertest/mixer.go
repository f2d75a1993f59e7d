package layertest

import (
	"testing"

	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// MixerCase is a Mixer with its variables: every call on the same case sees the same weights.
type MixerCase struct {
	Mixer  layers.Mixer
	Batch  int
	DModel int
	Store  *model.Store
	// Scope is the scope name the mixer is applied under (default "mixer"): two cases sharing a Store
	// and a Scope share weights, which is how a fast and a reference implementation are compared.
	Scope string
}

// NewMixerCase returns a case with a fresh store seeded by seed.
func NewMixerCase(mixer layers.Mixer, batch, dModel int, seed int64) *MixerCase {
	store := model.NewStore()
	store.SetParam(model.ParamInitialSeed, seed)
	return &MixerCase{Mixer: mixer, Batch: batch, DModel: dModel, Store: store}
}

func (c *MixerCase) scope() *model.Scope {
	name := c.Scope
	if name == "" {
		name = "mixer"
	}
	return c.Store.RootScope().In("%s", name)
}

// Specs returns the mixer's state specs in float64.
func (c *MixerCase) Specs() []layers.StateSpec { return c.Mixer.StateSpecs(c.Batch, dtypes.Float64) }

// Run applies the mixer to x [batch, time, dModel] with state (nil = start of sequence).
func (c *MixerCase) Run(x *tensors.Tensor, state []*tensors.Tensor) (y *tensors.Tensor, next []*tensors.Tensor) {
	exec := model.MustNewExec(Backend(), c.Store, func(_ *model.Scope, in []*Node) []*Node {
		var st []*Node
		if len(in) > 1 {
			st = in[1:]
		}
		out, nextState := c.Mixer.Apply(c.scope(), in[0], st)
		return append([]*Node{out}, nextState...)
	})
	defer exec.Finalize()
	args := []any{x}
	for _, s := range state {
		args = append(args, s)
	}
	outs := exec.MustCall(args...)
	return outs[0], outs[1:]
}

// RandomInput returns x [batch, time, dModel] ~ N(0, 1).
func (c *MixerCase) RandomInput(seed uint64, time int) *tensors.Tensor {
	return RandNormal(NewRand(seed), 1, c.Batch, time, c.DModel)
}

// SliceTime returns x[:, from:to, :] of a [batch, time, ...] float64 tensor.
func SliceTime(x *tensors.Tensor, from, to int) *tensors.Tensor {
	dims := x.Shape().Dimensions
	inner := 1
	for _, d := range dims[2:] {
		inner *= d
	}
	data := Floats(x)
	out := make([]float64, 0, dims[0]*(to-from)*inner)
	for b := 0; b < dims[0]; b++ {
		out = append(out, data[(b*dims[1]+from)*inner:(b*dims[1]+to)*inner]...)
	}
	newDims := append([]int{dims[0], to - from}, dims[2:]...)
	return tensors.FromFlatDataAndDimensions(out, newDims...)
}

// ConcatTime concatenates [batch, time_i, ...] float64 tensors along time.
func ConcatTime(parts ...*tensors.Tensor) *tensors.Tensor {
	dims := parts[0].Shape().Dimensions
	inner := 1
	for _, d := range dims[2:] {
		inner *= d
	}
	total := 0
	for _, p := range parts {
		total += p.Shape().Dimensions[1]
	}
	out := make([]float64, 0, dims[0]*total*inner)
	for b := 0; b < dims[0]; b++ {
		for _, p := range parts {
			t := p.Shape().Dimensions[1]
			out = append(out, Floats(p)[b*t*inner:(b+1)*t*inner]...)
		}
	}
	newDims := append([]int{dims[0], total}, dims[2:]...)
	return tensors.FromFlatDataAndDimensions(out, newDims...)
}

// ChainedEqualsSingle checks that one call over time steps equals calls over the pieces cut at splits,
// with the state carried: outputs and final state.
func ChainedEqualsSingle(t testing.TB, c *MixerCase, time int, splits []int, tol float64) {
	t.Helper()
	x := c.RandomInput(21, time)
	yFull, stateFull := c.Run(x, nil)
	var pieces []*tensors.Tensor
	var state []*tensors.Tensor
	bounds := append(append([]int{0}, splits...), time)
	for i := 0; i+1 < len(bounds); i++ {
		y, next := c.Run(SliceTime(x, bounds[i], bounds[i+1]), state)
		pieces = append(pieces, y)
		state = next
	}
	AssertClose(t, "chained outputs", ConcatTime(pieces...), yFull, tol)
	specs := c.Specs()
	for i := range stateFull {
		AssertClose(t, "chained final state "+specs[i].Name, state[i], stateFull[i], tol)
	}
}

// Causal checks that appending extra tokens does not change the first time outputs.
func Causal(t testing.TB, c *MixerCase, time, extra int, tol float64) {
	t.Helper()
	x := c.RandomInput(31, time+extra)
	yLong, _ := c.Run(x, nil)
	yShort, _ := c.Run(SliceTime(x, 0, time), nil)
	AssertClose(t, "causality (outputs before the appended tokens)", SliceTime(yLong, 0, time), yShort, tol)
}

// MixerFastVsReference compares two mixers that share weights (same Store and Scope): outputs, final
// state, and the gradients of x, of every float initial-state tensor and of every trainable variable,
// under random upstream gradients. The initial state is the reference's state after a random prefix of
// prefix tokens (0 = start of sequence).
func MixerFastVsReference(t testing.TB, fast, ref *MixerCase, time, prefix int, tol float64) {
	t.Helper()
	var state []*tensors.Tensor
	if prefix > 0 {
		_, state = ref.Run(ref.RandomInput(41, prefix), nil)
	}
	x := ref.RandomInput(43, time)
	y, next := ref.Run(x, state)
	upstream := RandomUpstream(47, append([]*tensors.Tensor{y}, next...))
	wantOut, wantGrads, names := mixerGradients(ref, x, state, upstream)
	gotOut, gotGrads, _ := mixerGradients(fast, x, state, upstream)
	specs := ref.Specs()
	for i := range wantOut {
		name := "output"
		if i > 0 {
			name = "final state " + specs[i-1].Name
		}
		AssertClose(t, name, gotOut[i], wantOut[i], tol)
	}
	for i := range wantGrads {
		AssertClose(t, "gradient of "+names[i], gotGrads[i], wantGrads[i], tol)
	}
}

// mixerGradients returns the outputs (y, next state...) and the gradients of
// <y, up_0> + sum_i <next_i, up_i> with respect to x, the float initial state and the trainable variables.
func mixerGradients(c *MixerCase, x *tensors.Tensor, state, upstream []*tensors.Tensor) (outs, grads []*tensors.Tensor, names []string) {
	specs := c.Specs()
	numState := len(state)
	numOut := 0
	exec := model.MustNewExec(Backend(), c.Store, func(_ *model.Scope, in []*Node) []*Node {
		xNode := in[0]
		var st []*Node
		if numState > 0 {
			st = in[1 : 1+numState]
		}
		ups := in[1+numState:]
		y, next := c.Mixer.Apply(c.scope(), xNode, st)
		results := append([]*Node{y}, next...)
		numOut = len(results)
		loss := ReduceAllSum(Mul(y, ups[0]))
		for i, s := range next {
			if s.DType().IsFloat() {
				loss = Add(loss, ReduceAllSum(Mul(s, ConvertDType(ups[i+1], s.DType()))))
			}
		}
		wrt := []*Node{xNode}
		names = []string{"x"}
		for i, s := range st {
			if s.DType().IsFloat() {
				wrt = append(wrt, s)
				names = append(names, "initial state "+specs[i].Name)
			}
		}
		g := xNode.Graph()
		for v := range c.Store.IterVariables() {
			if v.Trainable && v.InUseByGraph(g) {
				wrt = append(wrt, v.NodeValue(g))
				names = append(names, "variable "+v.Path())
			}
		}
		return append(results, Gradient(loss, wrt...)...)
	})
	defer exec.Finalize()
	args := []any{x}
	for _, s := range state {
		args = append(args, s)
	}
	for _, u := range upstream {
		args = append(args, u)
	}
	all := exec.MustCall(args...)
	return all[:numOut], all[numOut:], names
}

// MixerGradCheck compares the mixer's analytic gradient of L = <y, w> + sum_i <next_i, w_i> (fixed
// random w) with respect to x and to the initial state after a random prefix of prefix tokens, against
// central finite differences at probes random coordinates of each.
func MixerGradCheck(t testing.TB, c *MixerCase, time, prefix, probes int, tol float64) {
	t.Helper()
	var state []*tensors.Tensor
	if prefix > 0 {
		_, state = c.Run(c.RandomInput(51, prefix), nil)
	}
	x := c.RandomInput(53, time)
	y, next := c.Run(x, state)
	weights := RandomUpstream(57, append([]*tensors.Tensor{y}, next...))
	_, grads, names := mixerGradients(c, x, state, weights)
	loss := func(x *tensors.Tensor, state []*tensors.Tensor) float64 {
		y, next := c.Run(x, state)
		var sum float64
		for i, o := range append([]*tensors.Tensor{y}, next...) {
			if !o.DType().IsFloat() {
				continue
			}
			a, w := Floats(o), Floats(weights[i])
			for j := range a {
				sum += a[j] * w[j]
			}
		}
		return sum
	}
	inputs := []*tensors.Tensor{x}
	for _, s := range state {
		if s.DType().IsFloat() {
			inputs = append(inputs, s)
		}
	}
	rng := NewRand(59)
	for idx, in := range inputs {
		numeric, want := probeFiniteDifferences(rng, in, grads[idx], probes, func(moved *tensors.Tensor) float64 {
			if idx == 0 {
				return loss(moved, state)
			}
			st := append([]*tensors.Tensor(nil), state...)
			k := -1
			for i, s := range state { // the idx-th float state tensor
				if s.DType().IsFloat() {
					k++
					if k == idx-1 {
						st[i] = moved
					}
				}
			}
			return loss(x, st)
		})
		if err := RelRMS(numeric, want); !(err <= tol) {
			t.Errorf("finite differences of %s: relative RMS error %.3g > %.3g (analytic %v, numeric %v)",
				names[idx], err, tol, round(want), round(numeric))
		}
	}
}
