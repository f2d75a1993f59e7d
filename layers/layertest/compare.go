// Package layertest is the float64 test harness every mixer reuses.
//
// It checks, on the Go backend:
//   - a fast path against a reference (outputs, final state and the gradients of every input, the
//     initial state included, under random upstream gradients): FastVsReference, MixerFastVsReference;
//   - one call against two chained calls with the state carried: ChainedEqualsSingle;
//   - causality (appending tokens does not change earlier outputs): Causal;
//   - analytic gradients against central finite differences: GradCheck.
//
// Comparisons use the relative RMS error sqrt(sum (got-want)^2) / max(sqrt(sum want^2), floor), and a
// failure prints both the error and the tolerance.
package layertest

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/engramlx/engram/internal/backend"
	"github.com/engramlx/engram/internal/tensorutil"
	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/tensors"
)

// AbsFloor is the norm below which errors are compared absolutely: gradients that are exactly zero in
// both implementations must not divide by zero.
const AbsFloor = 1e-12

var (
	backendOnce sync.Once
	testBackend compute.Backend
)

// Backend returns the backend shared by tests: $GOMLX_BACKEND, else the Go backend with its default
// (parallel) op scheduling. It never downloads a plugin.
func Backend() compute.Backend {
	backendOnce.Do(func() { testBackend = backend.MustNewForTests() })
	return testBackend
}

// Floats copies a float or integer tensor into []float64.
func Floats(t *tensors.Tensor) []float64 { return tensorutil.Floats(t) }

// RelRMS is sqrt(sum (got-want)^2) / max(sqrt(sum want^2), AbsFloor).
func RelRMS(got, want []float64) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var diff, norm float64
	for i := range got {
		d := got[i] - want[i]
		diff += d * d
		norm += want[i] * want[i]
	}
	return math.Sqrt(diff) / math.Max(math.Sqrt(norm), AbsFloor)
}

// AssertClose fails the test when RelRMS(got, want) > tol, printing the error and the tolerance.
// It returns the error.
func AssertClose(t testing.TB, name string, got, want *tensors.Tensor, tol float64) float64 {
	t.Helper()
	if !got.Shape().Equal(want.Shape()) {
		t.Errorf("%s: shape %s, want %s", name, got.Shape(), want.Shape())
		return math.Inf(1)
	}
	g, w := Floats(got), Floats(want)
	err := RelRMS(g, w)
	if !(err <= tol) { // also catches NaN
		t.Errorf("%s: relative RMS error %.3g > tolerance %.3g (|want| = %.3g)", name, err, tol, norm(w))
	}
	return err
}

// AssertFinite fails the test when t holds a NaN or Inf.
func AssertFinite(t testing.TB, name string, x *tensors.Tensor) {
	t.Helper()
	for i, v := range Floats(x) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("%s: element %d is %v", name, i, v)
			return
		}
	}
}

func norm(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v * v
	}
	return math.Sqrt(s)
}

// RandNormal returns a float64 tensor of the given dimensions with N(0, scale^2) entries.
func RandNormal(rng *rand.Rand, scale float64, dims ...int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	data := make([]float64, n)
	for i := range data {
		data[i] = rng.NormFloat64() * scale
	}
	return tensors.FromFlatDataAndDimensions(data, dims...)
}

// RandUniform returns a float64 tensor with entries uniform in [lo, hi).
func RandUniform(rng *rand.Rand, lo, hi float64, dims ...int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	data := make([]float64, n)
	for i := range data {
		data[i] = lo + (hi-lo)*rng.Float64()
	}
	return tensors.FromFlatDataAndDimensions(data, dims...)
}

// NewRand returns a seeded generator.
func NewRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
