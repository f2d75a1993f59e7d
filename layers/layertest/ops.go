package layertest

import (
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// OpFn is a pure op on nodes: inputs to outputs (for example (output, finalState)). No variables.
type OpFn func(inputs []*Node) []*Node

// RunOp executes fn once on the inputs.
func RunOp(fn OpFn, inputs []*tensors.Tensor) []*tensors.Tensor {
	exec := MustNewExec(Backend(), func(in []*Node) []*Node { return fn(in) })
	defer exec.Finalize()
	args := make([]any, len(inputs))
	for i, x := range inputs {
		args[i] = x
	}
	return exec.MustCall(args...)
}

// OpGradients returns the outputs of fn and the gradients of sum_i <out_i, upstream_i> with respect to
// every input (a zero tensor for inputs that are not float).
func OpGradients(fn OpFn, inputs, upstream []*tensors.Tensor) (outputs, grads []*tensors.Tensor) {
	n := len(inputs)
	exec := MustNewExec(Backend(), func(in []*Node) []*Node {
		outs := fn(in[:n])
		loss := ScalarZero(in[0].Graph(), outs[0].DType())
		for i, o := range outs {
			loss = Add(loss, ReduceAllSum(Mul(o, ConvertDType(in[n+i], o.DType()))))
		}
		var wrt []*Node
		for _, x := range in[:n] {
			if x.DType().IsFloat() {
				wrt = append(wrt, x)
			}
		}
		gs := Gradient(loss, wrt...)
		result := append([]*Node{}, outs...)
		k := 0
		for _, x := range in[:n] {
			if x.DType().IsFloat() {
				result = append(result, gs[k])
				k++
			} else {
				result = append(result, ZerosLike(ConvertDType(x, outs[0].DType())))
			}
		}
		return result
	})
	defer exec.Finalize()
	args := make([]any, 0, n+len(upstream))
	for _, x := range inputs {
		args = append(args, x)
	}
	for _, u := range upstream {
		args = append(args, u)
	}
	all := exec.MustCall(args...)
	return all[:len(all)-n], all[len(all)-n:]
}

// RandomUpstream returns N(0,1) tensors shaped like outputs, for random upstream gradients.
func RandomUpstream(seed uint64, outputs []*tensors.Tensor) []*tensors.Tensor {
	rng := NewRand(seed)
	up := make([]*tensors.Tensor, len(outputs))
	for i, o := range outputs {
		up[i] = RandNormal(rng, 1, o.Shape().Dimensions...)
	}
	return up
}

// FastVsReference compares fast against ref on the same inputs: every output, then the gradient of
// every input under random upstream gradients. outNames and inNames label the failures.
func FastVsReference(t testing.TB, fast, ref OpFn, inputs []*tensors.Tensor, outNames, inNames []string, tol float64) {
	t.Helper()
	refOut := RunOp(ref, inputs)
	upstream := RandomUpstream(7, refOut)
	wantOut, wantGrad := OpGradients(ref, inputs, upstream)
	gotOut, gotGrad := OpGradients(fast, inputs, upstream)
	for i := range wantOut {
		AssertClose(t, "output "+label(outNames, i), gotOut[i], wantOut[i], tol)
	}
	for i := range wantGrad {
		AssertClose(t, "gradient of "+label(inNames, i), gotGrad[i], wantGrad[i], tol)
	}
}

func label(names []string, i int) string {
	if i < len(names) {
		return names[i]
	}
	return "#" + string(rune('0'+i))
}

// GradCheck compares the analytic gradient of L = sum_i <fn(x)_i, w_i> (fixed random w) with central
// finite differences at probes coordinates of every float input whose index is in check (nil = all).
// In float64 with step 1e-5 a correct gradient agrees to about 1e-7.
func GradCheck(t testing.TB, fn OpFn, inputs []*tensors.Tensor, check []int, probes int, tol float64) {
	t.Helper()
	outs := RunOp(fn, inputs)
	weights := RandomUpstream(11, outs)
	_, grads := OpGradients(fn, inputs, weights)
	loss := func(in []*tensors.Tensor) float64 {
		out := RunOp(fn, in)
		var sum float64
		for i, o := range out {
			a, w := Floats(o), Floats(weights[i])
			for j := range a {
				sum += a[j] * w[j]
			}
		}
		return sum
	}
	rng := NewRand(13)
	if check == nil {
		for i := range inputs {
			check = append(check, i)
		}
	}
	for _, idx := range check {
		x := inputs[idx]
		if !x.DType().IsFloat() {
			continue
		}
		numeric, want := probeFiniteDifferences(rng, x, grads[idx], probes, func(moved *tensors.Tensor) float64 {
			in := append([]*tensors.Tensor(nil), inputs...)
			in[idx] = moved
			return loss(in)
		})
		if err := RelRMS(numeric, want); !(err <= tol) {
			t.Errorf("finite differences of input %d: relative RMS error %.3g > %.3g (analytic %v, numeric %v)",
				idx, err, tol, round(want), round(numeric))
		}
	}
}

// probeFiniteDifferences returns central differences (step 1e-5) of loss at probes random coordinates
// of x, with the analytic gradient's values at the same coordinates.
func probeFiniteDifferences(rng *rand.Rand, x, grad *tensors.Tensor, probes int, loss func(moved *tensors.Tensor) float64) (numeric, analytic []float64) {
	const step = 1e-5
	base, full := Floats(x), Floats(grad)
	for p := 0; p < probes; p++ {
		j := rng.IntN(len(base))
		value := func(delta float64) float64 {
			perturbed := append([]float64(nil), base...)
			perturbed[j] += delta
			return loss(tensors.FromFlatDataAndDimensions(perturbed, x.Shape().Dimensions...))
		}
		numeric = append(numeric, (value(step)-value(-step))/(2*step))
		analytic = append(analytic, full[j])
	}
	return numeric, analytic
}

func round(x []float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = math.Round(v*1e6) / 1e6
	}
	return out
}
