package mamba2_test

import (
	"path/filepath"
	"sort"
	"testing"

	"github.com/engramlx/engram/checkpoints"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/engramlx/engram/mamba2"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// goldenDir holds flash-linear-attention's Mamba2 layer (torch_forward and its decode path) run in
// float64, copied from the project's shared golden set (see README.md there, section mamba2_layer/).
const goldenDir = "testdata/mamba2_layer"

// goldenCase is one entry of index.json.
type goldenCase struct {
	Name      string  `json:"name"`
	T         int     `json:"T"`
	Hidden    int     `json:"hidden_size"`
	Heads     int     `json:"num_heads"`
	HeadDim   int     `json:"head_dim"`
	StateSize int     `json:"state_size"`
	Groups    int     `json:"n_groups"`
	Kernel    int     `json:"conv_kernel"`
	NormEps   float64 `json:"norm_eps"`
	ConvBias  bool    `json:"use_conv_bias"`
	Bias      bool    `json:"use_bias"`
	DHasHdim  bool    `json:"D_has_hdim"`
	NormFirst bool    `json:"norm_before_gate"`
	Split     []int   `json:"split"`
	Files     struct {
		Params []string `json:"params"`
		Grads  []string `json:"grads"`
	} `json:"files"`
}

// config is the Engram configuration of the case; fla options the layer cannot express fail the test.
func (c goldenCase) config(t *testing.T, mode string, chunk int) mamba2.Config {
	t.Helper()
	if !c.ConvBias || c.Bias || c.DHasHdim || c.NormFirst {
		t.Fatalf("case %s: fla options Engram's layer does not have: %+v", c.Name, c)
	}
	cfg := mamba2.DefaultConfig()
	cfg.Heads, cfg.HeadDim, cfg.StateSize, cfg.Groups = c.Heads, c.HeadDim, c.StateSize, c.Groups
	cfg.ConvSize, cfg.NormEps, cfg.Mode, cfg.ChunkSize = c.Kernel, c.NormEps, mode, chunk
	return cfg
}

func loadGolden(t *testing.T) []goldenCase { return lt.GoldenCases[goldenCase](t, goldenDir, 4) }

func readNpy(t testing.TB, dir, name string) *tensors.Tensor {
	t.Helper()
	return lt.GoldenArray(t, goldenDir, dir, name)
}

// writeFLAFile writes the case's parameters under fla's state_dict names, with a model prefix, as the
// safetensors file a user would have (float64), and returns its path.
func writeFLAFile(t *testing.T, c goldenCase, prefix string) string {
	t.Helper()
	var names []string
	var values []*tensors.Tensor
	for _, name := range c.Files.Params {
		names = append(names, prefix+name)
		values = append(values, readNpy(t, c.Name, name))
	}
	file := filepath.Join(t.TempDir(), c.Name+".safetensors")
	if err := checkpoints.SaveTensors(file, names, values, nil); err != nil {
		t.Fatal(err)
	}
	return file
}

// imported is an Engram layer holding fla's weights, read through mamba2.ReadFLA.
type imported struct {
	layer  *mamba2.Layer
	cfg    mamba2.Config
	dModel int
	store  *model.Store
	paths  []string // variable paths under the layer's scope, sorted
}

const goldenScope = "mamba2"

func importLayer(t *testing.T, cfg mamba2.Config, dModel int, file, prefix string, dtype dtypes.DType) *imported {
	t.Helper()
	values, err := mamba2.ReadFLA(file, prefix, cfg, dModel, dtype)
	if err != nil {
		t.Fatal(err)
	}
	layer, err := mamba2.New(cfg, dModel)
	if err != nil {
		t.Fatal(err)
	}
	store := model.NewStore()
	if err := checkpoints.SetVariables(store, "/"+goldenScope, values); err != nil {
		t.Fatal(err)
	}
	l := &imported{layer: layer, cfg: cfg, dModel: dModel, store: store}
	for p := range values {
		l.paths = append(l.paths, p)
	}
	sort.Strings(l.paths)
	return l
}

// run applies the layer to x from state (nil = fresh) and returns y, the next state and, when dy is not
// nil, the gradients of sum(y * dy) with respect to x ("x") and every variable, the latter under fla's
// names and layouts (through mamba2.ToFLA).
func (l *imported) run(t *testing.T, x *tensors.Tensor, state []*tensors.Tensor, dy *tensors.Tensor) (*tensors.Tensor, []*tensors.Tensor, map[string]*tensors.Tensor) {
	t.Helper()
	numState := len(state)
	exec := model.MustNewExec(lt.Backend(), l.store, func(_ *model.Scope, in []*Node) []*Node {
		var st []*Node
		if numState > 0 {
			st = in[1 : 1+numState]
		}
		y, next := l.layer.Apply(l.store.RootScope().In(goldenScope), in[0], st)
		outs := append([]*Node{y}, next...)
		if dy == nil {
			return outs
		}
		wrt := []*Node{in[0]}
		for _, p := range l.paths {
			wrt = append(wrt, l.store.GetVariable("/"+goldenScope+"/"+p).NodeValue(in[0].Graph()))
		}
		return append(outs, Gradient(ReduceAllSum(Mul(y, in[len(in)-1])), wrt...)...)
	})
	defer exec.Finalize()
	args := []any{x}
	for _, s := range state {
		args = append(args, s)
	}
	if dy != nil {
		args = append(args, dy)
	}
	outs := exec.MustCall(args...)
	y, next := outs[0], outs[1:3]
	if dy == nil {
		return y, next, nil
	}
	engram := map[string]*tensors.Tensor{}
	for i, p := range l.paths {
		engram[p] = outs[4+i]
	}
	grads, err := mamba2.ToFLA(engram, l.cfg, l.dModel)
	if err != nil {
		t.Fatal(err)
	}
	grads["x"] = outs[3]
	return y, next, grads
}

// checkState compares Engram's state with fla's (ssm [B, H, P, N]; conv [B, conv_dim, K], of which
// Engram keeps the K-1 newest columns: compared through mamba2.FLAState).
func checkState(w *lt.Worst, label string, got []*tensors.Tensor, c goldenCase, suffix string, tol float64) {
	w.T.Helper()
	want := flaState(w.T, c, suffix, dtypes.Float64)
	w.Check(label+" ssm_state"+suffix, got[0], want[0], tol)
	w.Check(label+" conv_state"+suffix, got[1], want[1], tol)
}

func flaState(t testing.TB, c goldenCase, suffix string, dtype dtypes.DType) []*tensors.Tensor {
	t.Helper()
	st, err := mamba2.FLAState(readNpy(t, c.Name, "ssm_state"+suffix), readNpy(t, c.Name, "conv_state"+suffix), dtype)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestGoldenFLA: fla's Mamba2 layer (float64 PyTorch) against Engram's layer holding the same weights,
// loaded through mamba2.ReadFLA from a safetensors state_dict with a model prefix: outputs, final SSM
// state and conv cache, and the gradients of sum(y * dy) with respect to x and all 8 parameters.
// float64 within 1e-10 relative L2 (chunk 16, chunk 64 and naive); float32 within 1e-4 (outputs,
// states) and 1e-3 (gradients). Case c runs 20 tokens, then the 17 others as one call and as 17
// one-token calls with the state carried, and again from fla's part-1 cache.
func TestGoldenFLA(t *testing.T) {
	const prefix = "backbone.layers.0.mixer."
	for _, c := range loadGolden(t) {
		t.Run(c.Name, func(t *testing.T) {
			file := writeFLAFile(t, c, prefix)
			byDType := map[dtypes.DType]*lt.Worst{}
			for _, run := range []struct {
				name         string
				mode         string
				chunk        int
				dtype        dtypes.DType
				outTol, gTol float64
			}{
				{"chunk16 f64", mamba2.ModeChunk, 16, dtypes.Float64, 1e-10, 1e-10},
				{"chunk64 f64", mamba2.ModeChunk, 64, dtypes.Float64, 1e-10, 1e-10},
				{"naive f64", mamba2.ModeNaive, 16, dtypes.Float64, 1e-10, 1e-10},
				{"chunk16 f32", mamba2.ModeChunk, 16, dtypes.Float32, 1e-4, 1e-3},
			} {
				l := importLayer(t, c.config(t, run.mode, run.chunk), c.Hidden, file, prefix, run.dtype)
				w := &lt.Worst{T: t, Label: run.name}
				cast := func(x *tensors.Tensor) *tensors.Tensor {
					if run.dtype == dtypes.Float32 {
						return as32(x)
					}
					return x
				}
				if c.Split == nil {
					y, next, grads := l.run(t, cast(readNpy(t, c.Name, "x")), nil, cast(readNpy(t, c.Name, "dy")))
					w.Check("y", y, readNpy(t, c.Name, "y"), run.outTol)
					checkState(w, "", next, c, "", run.outTol)
					if len(c.Files.Grads) != 9 {
						t.Fatalf("%d gradient files, want x and 8 parameters", len(c.Files.Grads))
					}
					for _, gname := range c.Files.Grads {
						got, ok := grads[gname[len("grad_"):]]
						if !ok {
							t.Fatalf("no Engram gradient for %s", gname)
						}
						w.Check(gname, got, readNpy(t, c.Name, gname), run.gTol)
					}
				} else {
					streamCase(t, c, l, w, cast, run.dtype, run.outTol)
				}
				if prev := byDType[run.dtype]; prev == nil || w.Max > prev.Max {
					byDType[run.dtype] = w
				}
			}
			for _, dt := range []dtypes.DType{dtypes.Float64, dtypes.Float32} {
				w := byDType[dt]
				t.Logf("worst relative L2 %s: %.2e (%s, %s)", dt, w.Max, w.Label, w.Which)
			}
		})
	}
}

// streamCase runs case c: the 37 tokens in one call; 20 then 17 with Engram's state carried; the 17 as
// one-token decode calls; and the 17 from fla's part-1 cache converted by mamba2.FLAState.
func streamCase(t *testing.T, c goldenCase, l *imported, w *lt.Worst, cast func(*tensors.Tensor) *tensors.Tensor, dtype dtypes.DType, tol float64) {
	t.Helper()
	if len(c.Split) != 2 || c.Split[0]+c.Split[1] != c.T {
		t.Fatalf("split %v of T = %d", c.Split, c.T)
	}
	y, full, _ := l.run(t, cast(readNpy(t, c.Name, "x")), nil, nil)
	w.Check("y (one call)", y, readNpy(t, c.Name, "y"), tol)
	checkState(w, "one call", full, c, "", tol)

	y1, s1, _ := l.run(t, cast(readNpy(t, c.Name, "x_part1")), nil, nil)
	w.Check("y_part1", y1, readNpy(t, c.Name, "y_part1"), tol)
	checkState(w, "part 1", s1, c, "_part1", tol)
	y2, s2, _ := l.run(t, cast(readNpy(t, c.Name, "x_part2")), s1, nil)
	w.Check("y_part2 (state carried)", y2, readNpy(t, c.Name, "y_part2"), tol)
	checkState(w, "after part 2", s2, c, "", tol)

	x2 := readNpy(t, c.Name, "x_part2")
	state, steps := s1, make([]*tensors.Tensor, 0, c.Split[1])
	for i := range c.Split[1] {
		var yi *tensors.Tensor
		yi, state, _ = l.run(t, cast(lt.SliceTime(x2, i, i+1)), state, nil)
		steps = append(steps, to64(yi))
	}
	w.Check("y_part2 (one-token decode)", lt.ConcatTime(steps...), readNpy(t, c.Name, "y_part2"), tol)
	checkState(w, "after decode", state, c, "", tol)

	y2f, s2f, _ := l.run(t, cast(x2), flaState(t, c, "_part1", dtype), nil)
	w.Check("y_part2 (from fla's part-1 cache)", y2f, readNpy(t, c.Name, "y_part2"), tol)
	checkState(w, "after part 2 from fla's cache", s2f, c, "", tol)
}

// TestReadFLAErrors: a missing tensor, a wrong shape and an extra tensor are errors naming it.
func TestReadFLAErrors(t *testing.T) {
	c := loadGolden(t)[0]
	cfg := c.config(t, mamba2.ModeChunk, 16)
	params := map[string]*tensors.Tensor{}
	for _, name := range c.Files.Params {
		params[name] = readNpy(t, c.Name, name)
	}
	if _, err := mamba2.FromFLA(params, cfg, c.Hidden, dtypes.Float64); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(map[string]*tensors.Tensor){
		"missing D":       func(p map[string]*tensors.Tensor) { delete(p, "D") },
		"wrong shape":     func(p map[string]*tensors.Tensor) { p["A_log"] = lt.RandNormal(lt.NewRand(1), 1, 3) },
		"extra in_proj.b": func(p map[string]*tensors.Tensor) { p["in_proj.bias"] = lt.RandNormal(lt.NewRand(1), 1, 152) },
	} {
		p := map[string]*tensors.Tensor{}
		for k, v := range params {
			p[k] = v
		}
		edit(p)
		if _, err := mamba2.FromFLA(p, cfg, c.Hidden, dtypes.Float64); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func to64(x *tensors.Tensor) *tensors.Tensor {
	if x.DType() == dtypes.Float64 {
		return x
	}
	return tensors.FromFlatDataAndDimensions(lt.Floats(x), x.Shape().Dimensions...)
}

func as32(x *tensors.Tensor) *tensors.Tensor {
	values := lt.Floats(x)
	f := make([]float32, len(values))
	for i, v := range values {
		f[i] = float32(v)
	}
	return tensors.FromFlatDataAndDimensions(f, x.Shape().Dimensions...)
}
