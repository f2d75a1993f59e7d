package titans

import (
	"math"
	"testing"

	"github.com/engramlx/engram/layers"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// runWithStore executes fn on inputs with the variables of store.
func runWithStore(store *model.Store, fn func(in []*Node) []*Node, inputs ...*tensors.Tensor) []*tensors.Tensor {
	exec := model.MustNewExec(lt.Backend(), store, func(_ *model.Scope, in []*Node) []*Node { return fn(in) })
	defer exec.Finalize()
	args := make([]any, len(inputs))
	for i, x := range inputs {
		args[i] = x
	}
	return exec.MustCall(args...)
}

// headNorms returns the L2 norm of every head row of x [B, H, T, Dh].
func headNorms(x *tensors.Tensor) []float64 {
	data, dh := lt.Floats(x), x.Shape().Dimensions[3]
	var norms []float64
	for i := 0; i < len(data); i += dh {
		var s float64
		for _, v := range data[i : i+dh] {
			s += v * v
		}
		norms = append(norms, math.Sqrt(s))
	}
	return norms
}

// Paper mode (section 4.4): the layer's queries and keys are L2-normalised per head, the values are not.
// The chunked-vs-reference tests share the projections, so they cannot see this.
func TestPaperQKNormalized(t *testing.T) {
	m, err := NewLMM(testConfig(VariantLMM), testDModel)
	if err != nil {
		t.Fatal(err)
	}
	store := model.NewStore()
	store.SetParam(model.ParamInitialSeed, int64(3))
	x := lt.RandNormal(lt.NewRand(5), 1, 2, 7, testDModel)
	out := runWithStore(store, func(in []*Node) []*Node {
		state := layers.ZeroState(in[0].Graph(), m.StateSpecs(2, dtypes.Float64))
		q, k, v, _, _ := m.projectQKV(store.RootScope().In("lmm"), in[0], state, nil)
		return []*Node{q, k, v}
	}, x)
	for i, name := range []string{"q", "k"} {
		for _, n := range headNorms(out[i]) {
			if math.Abs(n-1) > 1e-4 {
				t.Fatalf("%s head norm %v, want 1 (L2-normalised per head)", name, n)
			}
		}
	}
	unit := 0
	for _, n := range headNorms(out[2]) {
		if math.Abs(n-1) < 1e-3 {
			unit++
		}
	}
	if unit == len(headNorms(out[2])) {
		t.Errorf("v heads all have norm 1: values must not be normalised")
	}
}

// MAC's output is y * sigmoid(LMM(y)) (section 4.1), recomputed from its parts with an explicit
// 1 / (1 + exp(-x)): one segment from the zero state, both modes.
func TestMACOutputGate(t *testing.T) {
	for _, mode := range []string{ModePaper, ModeTP} {
		t.Run(mode, func(t *testing.T) {
			cfg := configFor(VariantMAC, mode)
			mixer, err := New(cfg, testDModel)
			if err != nil {
				t.Fatal(err)
			}
			mac := mixer.(*MAC)
			store := model.NewStore()
			store.SetParam(model.ParamInitialSeed, int64(4))
			x := lt.RandNormal(lt.NewRand(6), 1, 2, cfg.SegmentSize, testDModel)
			out := runWithStore(store, func(in []*Node) []*Node {
				scope := store.RootScope().In("mac")
				o, _ := mac.Apply(scope, in[0], nil)
				state := layers.ZeroState(in[0].Graph(), mac.StateSpecs(2, dtypes.Float64))
				y := mac.attn.ApplyWithContext(scope.At("attention"), in[0], mac.retrieve(scope, in[0], state))
				mem, _ := mac.lmm.Apply(scope.At("memory"), y, state)
				return []*Node{o, Div(y, OnePlus(Exp(Neg(mem))))}
			}, x)
			lt.AssertClose(t, "MAC output vs y * sigmoid(LMM(y))", out[0], out[1], 1e-12)
		})
	}
}
