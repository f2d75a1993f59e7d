package titans

import (
	"fmt"
	"math"
	"testing"

	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// mappedOps are the mirasOps whose retention is not l2 (the ones with two read forms).
func mappedOps() []int {
	var idx []int
	for i, mo := range mirasOps {
		if !mo.retention.isL2() {
			idx = append(idx, i)
		}
	}
	return idx
}

// With ExactReads, Chunked (per-token matrices) equals the token-by-token reference of the exact reads:
// outputs, final state and all gradients, at a length that is not a multiple of the chunk and one that is.
func TestMirasExactChunkedEqualsNaive(t *testing.T) {
	for _, i := range mappedOps() {
		mo := mirasOps[i]
		for _, tc := range []struct{ time, chunk int }{{11, 4}, {8, 4}} {
			t.Run(fmt.Sprintf("%s/T%d_C%d", mo.name, tc.time, tc.chunk), func(t *testing.T) {
				c := newMirasCase(uint64(640+tc.time), tc.time, 2, mo.learnedDelta)
				r := mo.retention
				r.ExactReads = true
				cfg := OpConfig{ChunkSize: tc.chunk, GradClamp: 2, Bias: mo.bias, Retention: r}
				worst := compareOps(t, c.mirasFn(Chunked, cfg, mo.learnedDelta), c.mirasFn(Naive, cfg, mo.learnedDelta), c, 1e-10)
				t.Logf("exact reads, chunked vs naive: worst rel RMS %.3g", worst)
			})
		}
	}
}

// With chunks of 1 every token is a chunk boundary, so the chunk-boundary form is the exact recurrence:
// it equals the exact reads (outputs, final state, all gradients).
func TestMirasChunkOneIsExact(t *testing.T) {
	for _, i := range mappedOps() {
		mo := mirasOps[i]
		t.Run(mo.name, func(t *testing.T) {
			c := newMirasCase(650, 6, 2, mo.learnedDelta)
			exact := mo.retention
			exact.ExactReads = true
			fast := OpConfig{ChunkSize: 1, GradClamp: 2, Bias: mo.bias, Retention: mo.retention}
			ref := fast
			ref.Retention = exact
			worst := compareOps(t, c.mirasFn(Chunked, fast, mo.learnedDelta), c.mirasFn(Chunked, ref, mo.learnedDelta), c, 1e-12)
			t.Logf("chunk 1, boundary vs exact reads: worst rel RMS %.3g", worst)
		})
	}
}

// How far the chunk-boundary reads are from the exact ones: Moneta's and Memora's op on a random input
// at the model's sizes (Dh = 32, a 2-layer memory of expansion 2, chunks of 16, T = 64, theta up to the
// default max_lr 0.05, zero initial momentum), with alpha near its initial value 0.018 ("init") and with
// strong forgetting, alpha in [0.01, 0.2] ("strong_decay", where a chunk's accumulators change as much as
// their start). The two forms share the accumulators (the final state is equal); the outputs of the tokens
// inside a chunk differ. The bounds (init only) catch a form gone wrong; doc.go quotes the numbers.
func TestMirasBoundaryVsExact(t *testing.T) {
	for _, tc := range []struct {
		name      string
		bias      AttentionalBias
		retention Retention
	}{
		{"moneta", AttentionalBias{Kind: BiasLp, P: 3}, Retention{Kind: RetentionLq, Q: 4}},
		{"memora", AttentionalBias{}, Retention{Kind: RetentionKL}},
	} {
		for _, gates := range []struct {
			name     string
			alphaMax float64
			bound    float64
		}{{"init", 0.03, 0.02}, {"strong_decay", 0.2, 0}} {
			t.Run(tc.name+"/"+gates.name, func(t *testing.T) {
				c := newOpCase(660, 2, 2, 64, 32, 2, 2)
				theta := lt.Floats(c.inputs[3])
				for i := range theta {
					theta[i] /= 10 // [0.005, 0.05]
				}
				c.inputs[3] = tensors.FromFlatDataAndDimensions(theta, c.inputs[3].Shape().Dimensions...)
				c.inputs[5] = lt.RandUniform(lt.NewRand(661), gates.alphaMax/20, gates.alphaMax, 2, 2, 64)
				for l := 8; l < 10; l++ { // a sequence's start: zero momentum (the layer's zero state)
					c.inputs[l] = tensors.FromFlatDataAndDimensions(make([]float64, c.inputs[l].Size()), c.inputs[l].Shape().Dimensions...)
				}
				exact := tc.retention
				exact.ExactReads = true
				run := func(r Retention) []*tensors.Tensor {
					cfg := OpConfig{ChunkSize: 16, GradClamp: 1, Bias: tc.bias, Retention: r}
					return lt.RunOp(c.mirasFn(Chunked, cfg, false), c.inputs)
				}
				got, want := run(tc.retention), run(exact)
				yErr := lt.RelRMS(lt.Floats(got[0]), lt.Floats(want[0]))
				stateErr := 0.0
				for i := 1; i < len(got); i++ {
					stateErr = math.Max(stateErr, lt.RelRMS(lt.Floats(got[i]), lt.Floats(want[i])))
				}
				// Reading phi(A0) alone (without the chunk's own writes) shows the scale of what they change.
				stale := lt.RunOp(func(in []*Node) []*Node {
					return []*Node{Read(tc.retention.weights(in[6:8]), in[0])}
				}, c.inputs)
				t.Logf("outputs rel RMS %.3g vs exact reads (final state %.3g); first chunk read at phi(A0) alone: %.3g",
					yErr, stateErr, lt.RelRMS(lt.Floats(stale[0])[:16*32], lt.Floats(want[0])[:16*32]))
				if gates.bound > 0 && !(yErr > 0 && yErr < gates.bound) {
					t.Errorf("outputs: rel RMS %.3g vs exact reads, want in (0, %v)", yErr, gates.bound)
				}
				if stateErr > 1e-12 {
					t.Errorf("final state: rel RMS %.3g vs exact reads, want equal (the same accumulators)", stateErr)
				}
			})
		}
	}
}

// The kl form's P is the softmax Jacobian when all columns of phi(A0) are one distribution (its
// stand-in replaces them by their mean): it matches central differences of phi there, and departs from
// them for columns that differ.
func TestMirasKLJacobian(t *testing.T) {
	r := Retention{Kind: RetentionKL}
	rng := lt.NewRand(670)
	in, out := 5, 3
	column := lt.Floats(lt.RandNormal(rng, 1, in))
	same := make([]float64, in*out)
	for i := range in {
		for j := range out {
			same[i*out+j] = column[i]
		}
	}
	d := lt.RandNormal(rng, 1, 1, 1, in, out)
	const eps = 1e-5
	for _, tc := range []struct {
		name  string
		a0    *tensors.Tensor
		equal bool
	}{
		{"one_distribution", tensors.FromFlatDataAndDimensions(same, 1, 1, in, out), true},
		{"random", lt.RandNormal(rng, 1, 1, 1, in, out), false},
	} {
		res := lt.RunOp(func(x []*Node) []*Node {
			a0, d := x[0], x[1]
			fd := DivScalar(Sub(r.weight(Add(a0, MulScalar(d, eps))), r.weight(Sub(a0, MulScalar(d, eps)))), 2*eps)
			return []*Node{Sub(r.boundaryWeight(a0, Add(a0, d)), r.weight(a0)), fd}
		}, []*tensors.Tensor{tc.a0, d})
		e := lt.RelRMS(lt.Floats(res[0]), lt.Floats(res[1]))
		t.Logf("%s: P d vs central differences of phi: rel RMS %.3g", tc.name, e)
		if tc.equal && e > 1e-8 || !tc.equal && e < 1e-3 {
			t.Errorf("%s: rel RMS %.3g (want <= 1e-8 for one distribution, > 1e-3 otherwise)", tc.name, e)
		}
	}
}
