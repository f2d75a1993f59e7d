package titans

import (
	"fmt"
	"testing"

	"github.com/engramlx/engram/internal/torchlayout"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// The golden vectors of lucidrains/titans-pytorch's NeuralMemory (testdata/titans_pytorch/README.md):
// dim 32, 2 heads of 16, chunks of 4, memory depth 1 or 2 with expansion 4, every other option at its
// default (batch_size None, max lr 1, no gradient clipping).
const goldenDir = "testdata/titans_pytorch"

func goldenConfig(depth int) Config {
	cfg := DefaultConfig()
	cfg.Variant, cfg.Mode = VariantLMM, ModeTP
	cfg.Heads, cfg.HeadDim = 2, 16
	cfg.MemoryDepth, cfg.MemoryExpansion = depth, 4
	cfg.ChunkSize, cfg.TTTBatchSize = 4, 0
	cfg.MaxLR, cfg.GradClamp, cfg.OutputGate = 1, 0, true
	return cfg
}

// loadNpy reads dir/name.npy (float64) converted to dtype.
func loadNpy(t *testing.T, dir, name string, dtype dtypes.DType) *tensors.Tensor {
	t.Helper()
	x := lt.GoldenArray(t, goldenDir, dir, name)
	return torchlayout.New(dtype, lt.Floats(x), x.Shape().Dimensions...)
}

// goldenModel is a tp-mode LMM whose variables were set by ImportPyTorchState from a case's state_dict.
type goldenModel struct {
	lmm    *LMM
	store  *model.Store
	params []pyTorchParam
	dtype  dtypes.DType
}

func newGoldenModel(t *testing.T, dir string, depth int, dtype dtypes.DType, carry bool) *goldenModel {
	t.Helper()
	cfg := goldenConfig(depth)
	cfg.CarryPartialChunk = carry
	lmm, err := NewLMM(cfg, 32)
	if err != nil {
		t.Fatal(err)
	}
	params := pyTorchParams(cfg, 32)
	state := map[string]*tensors.Tensor{}
	for _, p := range params {
		state[p.torch] = loadNpy(t, dir, p.torch, dtype)
	}
	store := model.NewStore()
	if err := ImportPyTorchState(store.RootScope().In("memory"), cfg, 32, state); err != nil {
		t.Fatal(err)
	}
	return &goldenModel{lmm: lmm, store: store, params: params, dtype: dtype}
}

// run applies the layer to x from state (nil: start of sequence). It returns the output, the next
// state, the memory weights and momentum in titans-pytorch's layout (full weights: learned initial value
// plus the carried deviation; MLP layers then gamma), and with dout the gradients of sum(y * dout) with
// respect to x and every imported parameter (in the state_dict's layout and order).
func (m *goldenModel) run(x *tensors.Tensor, state []*tensors.Tensor, dout *tensors.Tensor) (y *tensors.Tensor, next, weights, momenta, grads []*tensors.Tensor) {
	numFast := m.lmm.Config.MemoryDepth + 1
	numState, numNext := len(state), 0
	exec := model.MustNewExec(lt.Backend(), m.store, func(_ *model.Scope, in []*Node) []*Node {
		scope := m.store.RootScope().In("memory")
		var st []*Node
		if numState > 0 {
			st = in[1 : 1+numState]
		}
		out, nextState := m.lmm.Apply(scope, in[0], st)
		numNext = len(nextState)
		results := append([]*Node{out}, nextState...)
		for l := 0; l < numFast; l++ {
			name := fmt.Sprintf("w%d", l)
			if l == numFast-1 {
				name = "gamma"
			}
			w0 := scope.At("memory").GetVariable(name).NodeValue(in[0].Graph())
			results = append(results, Add(nextState[l], InsertAxes(w0, 0)))
		}
		if dout == nil {
			return results
		}
		wrt := []*Node{in[0]}
		for _, p := range m.params {
			wrt = append(wrt, scope.At("%s", p.scope).GetVariable(p.name).NodeValue(in[0].Graph()))
		}
		return append(results, Gradient(ReduceAllSum(Mul(out, in[len(in)-1])), wrt...)...)
	})
	defer exec.Finalize()
	args := []any{x}
	for _, s := range state {
		args = append(args, s)
	}
	if dout != nil {
		args = append(args, dout)
	}
	outs := exec.MustCall(args...)
	y, next = outs[0], outs[1:1+numNext]
	weights, momenta = outs[1+numNext:1+numNext+numFast], next[numFast:2*numFast]
	for i, g := range outs[1+numNext+numFast:] {
		if i == 0 {
			grads = append(grads, g)
			continue
		}
		p := m.params[i-1]
		data := lt.Floats(g)
		if p.transpose {
			data = torchlayout.Transpose(data, p.engramDims[0], p.engramDims[1])
		}
		grads = append(grads, tensors.FromFlatDataAndDimensions(data, p.torchDims...))
	}
	return y, next, weights, momenta, grads
}

// goldenChecker compares arrays with the golden files, failing above the tolerance and keeping the worst
// relative L2 error.
type goldenChecker struct {
	t     *testing.T
	dir   string
	worst float64
	name  string
}

func (c *goldenChecker) check(what string, got *tensors.Tensor, file string, tol float64) {
	c.t.Helper()
	want := lt.Floats(loadNpy(c.t, c.dir, file, dtypes.Float64))
	g := lt.Floats(got)
	err := lt.RelRMS(g, want)
	if len(g) != len(want) {
		c.t.Errorf("%s: %d values, golden %s has %d", what, len(g), file, len(want))
	} else if !(err <= tol) {
		c.t.Errorf("%s vs %s: relative L2 error %.3g > %.3g", what, file, err, tol)
	}
	if err > c.worst {
		c.worst, c.name = err, what
	}
}

// goldenTolerances returns the README's tolerances for outputs/states and for gradients.
func goldenTolerances(dtype dtypes.DType) (out, grad float64) {
	if dtype == dtypes.Float64 {
		return 1e-10, 1e-10
	}
	return 1e-4, 1e-3
}

// fastNames are the golden names of the fast weights, MLP layers then gamma.
func fastNames(depth int) []string {
	var names []string
	for l := 0; l < depth; l++ {
		names = append(names, fmt.Sprintf("model.weights.%d", l))
	}
	return append(names, "norm.gamma")
}

// mode tp == titans-pytorch's NeuralMemory, memory depth 1 and 2: outputs, the memory weights and
// momentum after the sequence, and the gradients of sum(out * dout) with respect to x and every
// parameter, in float64 and float32, with the parameters loaded through ImportPyTorchState.
func TestGoldenTitansPyTorch(t *testing.T) {
	for _, depth := range []int{1, 2} {
		for _, dtype := range []dtypes.DType{dtypes.Float64, dtypes.Float32} {
			dir := fmt.Sprintf("depth%d", depth)
			t.Run(dir+"/"+dtype.String(), func(t *testing.T) {
				outTol, gradTol := goldenTolerances(dtype)
				m := newGoldenModel(t, dir, depth, dtype, false)
				c := &goldenChecker{t: t, dir: dir}
				y, _, weights, momenta, grads := m.run(loadNpy(t, dir, "x", dtype), nil, loadNpy(t, dir, "dout", dtype))
				c.check("output", y, "out", outTol)
				for l, name := range fastNames(depth) {
					c.check("weights "+name, weights[l], "state_weights."+name, outTol)
					c.check("momentum "+name, momenta[l], "state_momentum."+name, outTol)
				}
				c.check("gradient of x", grads[0], "grad_x", gradTol)
				for i, p := range m.params {
					c.check("gradient of "+p.torch, grads[i+1], "grad_"+p.torch, gradTol)
				}
				t.Logf("%s %s: worst relative L2 error %.3g (%s)", dir, dtype, c.worst, c.name)
			})
		}
	}
}

// 12 + 12 tokens in two calls with the state carried == titans-pytorch's two calls (and one call of 24).
func TestGoldenTitansPyTorchStream(t *testing.T) {
	const dir = "depth2_stream_12p12"
	for _, dtype := range []dtypes.DType{dtypes.Float64, dtypes.Float32} {
		t.Run(dtype.String(), func(t *testing.T) {
			outTol, _ := goldenTolerances(dtype)
			m := newGoldenModel(t, dir, 2, dtype, false)
			c := &goldenChecker{t: t, dir: dir}
			y, _, weights, momenta, _ := m.run(loadNpy(t, dir, "x", dtype), nil, nil)
			c.check("one call: output", y, "out", outTol)
			for l, name := range fastNames(2) {
				c.check("one call: weights "+name, weights[l], "state_weights."+name, outTol)
				c.check("one call: momentum "+name, momenta[l], "state_momentum."+name, outTol)
			}
			y1, state, weights1, momenta1, _ := m.run(loadNpy(t, dir, "x_part1", dtype), nil, nil)
			y2, _, weights2, momenta2, _ := m.run(loadNpy(t, dir, "x_part2", dtype), state, nil)
			c.check("call 1: output", y1, "out_part1", outTol)
			c.check("call 2: output", y2, "out_part2", outTol)
			for l, name := range fastNames(2) {
				c.check("call 1: weights "+name, weights1[l], "state_weights_part1."+name, outTol)
				c.check("call 1: momentum "+name, momenta1[l], "state_momentum_part1."+name, outTol)
				c.check("call 2: weights "+name, weights2[l], "state_weights."+name, outTol)
				c.check("call 2: momentum "+name, momenta2[l], "state_momentum."+name, outTol)
			}
			t.Logf("%s %s: worst relative L2 error %.3g (%s)", dir, dtype, c.worst, c.name)
		})
	}
}

// With CarryPartialChunk (titans-pytorch keeps the unwritten remainder of a call in its state the same
// way), the 24 tokens split as 1 + 6 + 17 (cuts inside chunks) in three chained calls give titans-pytorch's
// outputs and final state.
func TestGoldenTitansPyTorchCarry(t *testing.T) {
	const dir = "depth2_stream_12p12"
	m := newGoldenModel(t, dir, 2, dtypes.Float64, true)
	c := &goldenChecker{t: t, dir: dir}
	x := loadNpy(t, dir, "x", dtypes.Float64)
	var state []*tensors.Tensor
	var outs []*tensors.Tensor
	var weights, momenta []*tensors.Tensor
	bounds := []int{0, 1, 7, 24}
	for i := 0; i+1 < len(bounds); i++ {
		var y *tensors.Tensor
		y, state, weights, momenta, _ = m.run(lt.SliceTime(x, bounds[i], bounds[i+1]), state, nil)
		outs = append(outs, y)
	}
	c.check("1 + 6 + 17: output", lt.ConcatTime(outs...), "out", 1e-10)
	for l, name := range fastNames(2) {
		c.check("1 + 6 + 17: weights "+name, weights[l], "state_weights."+name, 1e-10)
		c.check("1 + 6 + 17: momentum "+name, momenta[l], "state_momentum."+name, 1e-10)
	}
	t.Logf("%s, 1 + 6 + 17 tokens with the partial chunk carried, float64: worst relative L2 error %.3g (%s)", dir, c.worst, c.name)
}
