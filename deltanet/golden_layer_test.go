package deltanet_test

import (
	"math"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/engramlx/engram/checkpoints"
	"github.com/engramlx/engram/deltanet"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// layerGoldenDir holds flash-linear-attention's GatedDeltaNet layer run in float64 (copied from the
// project's shared golden set; see its README.md).
const layerGoldenDir = "testdata/gated_deltanet_layer"

// layerGoldenCase is one entry of index.json: fla's layer options and sizes.
type layerGoldenCase struct {
	Name           string  `json:"name"`
	B              int     `json:"B"`
	T              int     `json:"T"`
	Hidden         int     `json:"hidden_size"`
	Heads          int     `json:"num_heads"`
	VHeads         int     `json:"num_v_heads"`
	HeadK          int     `json:"head_k_dim"`
	HeadV          int     `json:"head_v_dim"`
	ExpandV        float64 `json:"expand_v"`
	AllowNegEigval bool    `json:"allow_neg_eigval"`
	UseGate        bool    `json:"use_gate"`
	UseShortConv   bool    `json:"use_short_conv"`
	ConvSize       int     `json:"conv_size"`
	ConvBias       bool    `json:"conv_bias"`
	NormEps        float64 `json:"norm_eps"`
	L2NormEps      float64 `json:"l2norm_eps"`
	Scale          float64 `json:"scale"`
	Split          []int   `json:"split"`
	Files          struct {
		Params []string `json:"params"`
		Grads  []string `json:"grads"`
	} `json:"files"`
}

// config is the Engram configuration that reproduces fla's layer exactly; options Engram's layer cannot
// express fail the test.
func (c layerGoldenCase) config(t *testing.T) (deltanet.Config, checkpoints.FLAGatedDeltaNetDims) {
	t.Helper()
	switch {
	case c.VHeads != c.Heads, c.ConvBias, !c.UseGate, c.L2NormEps != 1e-6,
		math.Abs(c.Scale-1/math.Sqrt(float64(c.HeadK))) > 1e-15:
		t.Fatalf("case %s: fla options Engram's layer does not have: %+v", c.Name, c)
	}
	cfg, err := deltanet.Preset("gated_deltanet")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Heads, cfg.HeadDimK, cfg.ExpandV = c.Heads, c.HeadK, c.ExpandV
	cfg.UseShortConv, cfg.ConvSize = c.UseShortConv, c.ConvSize
	cfg.AllowNegEigval, cfg.NormEps = c.AllowNegEigval, c.NormEps
	if cfg.HeadDimV() != c.HeadV {
		t.Fatalf("case %s: d_v %d, want %d", c.Name, cfg.HeadDimV(), c.HeadV)
	}
	return cfg, checkpoints.FLAGatedDeltaNetDims{Hidden: c.Hidden, Heads: c.Heads, HeadDimK: c.HeadK,
		HeadDimV: c.HeadV, ConvSize: c.ConvSize, ShortConv: c.UseShortConv}
}

func loadLayerGolden(t *testing.T) []layerGoldenCase {
	return lt.GoldenCases[layerGoldenCase](t, layerGoldenDir, 4)
}

func readLayerNpy(t *testing.T, dir, name string) *tensors.Tensor {
	t.Helper()
	return lt.GoldenArray(t, layerGoldenDir, dir, name)
}

// writeFLAFile writes the case's parameters, under fla's state_dict names, as the safetensors file a
// user would have (float64), and returns its path.
func writeFLAFile(t *testing.T, c layerGoldenCase) string {
	t.Helper()
	var values []*tensors.Tensor
	for _, name := range c.Files.Params {
		values = append(values, readLayerNpy(t, c.Name, name))
	}
	file := filepath.Join(t.TempDir(), c.Name+".safetensors")
	if err := checkpoints.SaveTensors(file, c.Files.Params, values, nil); err != nil {
		t.Fatal(err)
	}
	return file
}

// importedLayer is an Engram layer holding fla's weights, read through the user-facing import.
type importedLayer struct {
	layer *deltanet.Layer
	store *model.Store
	paths []string // variable paths under the layer's scope, sorted
	dims  checkpoints.FLAGatedDeltaNetDims
}

const goldenScope = "gated_deltanet"

func importLayer(t *testing.T, cfg deltanet.Config, dims checkpoints.FLAGatedDeltaNetDims, file string, dtype dtypes.DType) *importedLayer {
	t.Helper()
	values, err := checkpoints.ReadFLAGatedDeltaNet(file, "", dims, dtype)
	if err != nil {
		t.Fatal(err)
	}
	layer, err := deltanet.New(cfg, dims.Hidden)
	if err != nil {
		t.Fatal(err)
	}
	store := model.NewStore()
	if err := checkpoints.SetVariables(store, "/"+goldenScope, values); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for p := range values {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return &importedLayer{layer: layer, store: store, paths: paths, dims: dims}
}

// run applies the layer to x from state (nil = fresh) and returns y, the next state and, when dy is not
// nil, the gradients of sum(y * dy) with respect to x and to every variable, the latter keyed by fla's
// names in fla's layout (through the inverse of the import mapping).
func (l *importedLayer) run(t *testing.T, x *tensors.Tensor, state []*tensors.Tensor, dy *tensors.Tensor) (y *tensors.Tensor, next []*tensors.Tensor, grads map[string]*tensors.Tensor) {
	t.Helper()
	numState := len(state)
	var unused []string
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
		unused = nil
		for _, p := range l.paths {
			v := l.store.GetVariable("/" + goldenScope + "/" + p)
			if v == nil || !v.InUseByGraph(in[0].Graph()) {
				unused = append(unused, p) // an imported weight the layer never reads
				continue
			}
			wrt = append(wrt, v.NodeValue(in[0].Graph()))
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
	numOut := 1 + len(l.layer.StateSpecs(1, dtypes.Float64))
	y, next = outs[0], outs[1:numOut]
	if dy == nil {
		return y, next, nil
	}
	if len(unused) > 0 {
		t.Errorf("imported variables the layer does not use: %v", unused)
	}
	engramGrads := map[string]*tensors.Tensor{}
	i := numOut + 1
	for _, p := range l.paths {
		if slices.Contains(unused, p) { // its gradient is zero
			engramGrads[p] = tensors.FromShape(l.store.GetVariable("/" + goldenScope + "/" + p).Shape())
			continue
		}
		engramGrads[p] = outs[i]
		i++
	}
	grads, err := checkpoints.ToFLAGatedDeltaNet(engramGrads, l.dims)
	if err != nil {
		t.Fatal(err)
	}
	grads["x"] = outs[numOut]
	return y, next, grads
}

// goldenState converts fla's state files (S as [B, H, K, V], the naive reference's orientation, and
// the [B, D, 4] conv caches) into Engram's state through the user-facing conversion.
func goldenState(t *testing.T, c layerGoldenCase, suffix string) []*tensors.Tensor {
	t.Helper()
	st, err := checkpoints.FLAGatedDeltaNetState(readLayerNpy(t, c.Name, "recurrent_state"+suffix), false,
		readLayerNpy(t, c.Name, "q_conv_state"+suffix), readLayerNpy(t, c.Name, "k_conv_state"+suffix),
		readLayerNpy(t, c.Name, "v_conv_state"+suffix), dtypes.Float64)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

var engramStateNames = []string{"S", "conv_q", "conv_k", "conv_v"}

// TestGoldenLayerFLA: issue "fidelity", item 2. fla's GatedDeltaNet layer (float64 PyTorch) against
// Engram's layer holding the same weights, loaded through checkpoints.ReadFLAGatedDeltaNet from a
// safetensors state_dict: outputs, final recurrent state, conv caches, and the gradients of sum(y * dy)
// with respect to x and all 13 parameters. float64 within 1e-10 relative L2; float32 within 1e-4
// (outputs, states) and 1e-3 (gradients). Case d runs 20 + 17 tokens as two calls with the state
// carried, and part 2 again from fla's part-1 cache converted by checkpoints.FLAGatedDeltaNetState.
func TestGoldenLayerFLA(t *testing.T) {
	for _, c := range loadLayerGolden(t) {
		t.Run(c.Name, func(t *testing.T) {
			cfg, dims := c.config(t)
			file := writeFLAFile(t, c)
			runs := []struct {
				name         string
				mode         string
				chunk        int
				dtype        dtypes.DType
				outTol, gTol float64
			}{
				{"chunk16 f64", deltanet.ModeChunk, 16, dtypes.Float64, 1e-10, 1e-10},
				{"chunk64 f64", deltanet.ModeChunk, 64, dtypes.Float64, 1e-10, 1e-10},
				{"naive f64", deltanet.ModeNaive, 16, dtypes.Float64, 1e-10, 1e-10},
				{"chunk16 f32", deltanet.ModeChunk, 16, dtypes.Float32, 1e-4, 1e-3},
			}
			worstByDType := map[dtypes.DType]*lt.Worst{}
			for _, run := range runs {
				cfg.Mode, cfg.ChunkSize = run.mode, run.chunk
				l := importLayer(t, cfg, dims, file, run.dtype)
				w := &lt.Worst{T: t, Label: run.name}
				cast := func(x *tensors.Tensor) *tensors.Tensor {
					if run.dtype == dtypes.Float32 {
						return as32(x)
					}
					return x
				}
				if c.Split == nil {
					y, next, grads := l.run(t, cast(readLayerNpy(t, c.Name, "x")), nil, cast(readLayerNpy(t, c.Name, "dy")))
					w.Check("y", y, readLayerNpy(t, c.Name, "y"), run.outTol)
					w.Check("recurrent_state", next[0], readLayerNpy(t, c.Name, "recurrent_state"), run.outTol)
					if len(c.Files.Grads) != 14 {
						t.Fatalf("%d gradient files, want x and 13 parameters", len(c.Files.Grads))
					}
					for _, gname := range c.Files.Grads {
						name := gname[len("grad_"):]
						got, ok := grads[name]
						if !ok {
							t.Fatalf("no Engram gradient for %s", gname)
						}
						w.Check(gname, got, readLayerNpy(t, c.Name, gname), run.gTol)
					}
				} else {
					streamCase(t, c, l, w, cast, run.outTol)
				}
				if prev := worstByDType[run.dtype]; prev == nil || w.Max > prev.Max {
					worstByDType[run.dtype] = w
				}
			}
			for _, dt := range []dtypes.DType{dtypes.Float64, dtypes.Float32} {
				w := worstByDType[dt]
				t.Logf("worst relative L2 %s: %.2e (%s, %s)", dt, w.Max, w.Label, w.Which)
			}
		})
	}
}

// streamCase runs case d: the whole 37 tokens in one call, then 20 + 17 with Engram's state carried,
// then part 2 from fla's part-1 cache; every output and state against fla's.
func streamCase(t *testing.T, c layerGoldenCase, l *importedLayer, w *lt.Worst, cast func(*tensors.Tensor) *tensors.Tensor, tol float64) {
	t.Helper()
	if len(c.Split) != 2 || c.Split[0]+c.Split[1] != c.T {
		t.Fatalf("split %v of T = %d", c.Split, c.T)
	}
	castAll := func(xs []*tensors.Tensor) []*tensors.Tensor {
		out := make([]*tensors.Tensor, len(xs))
		for i, x := range xs {
			out[i] = cast(x)
		}
		return out
	}
	checkState := func(label string, got, want []*tensors.Tensor) {
		if len(got) != len(want) {
			t.Fatalf("%s: %d state tensors, want %d", label, len(got), len(want))
		}
		for i := range got {
			w.Check(label+" "+engramStateNames[i], got[i], want[i], tol)
		}
	}
	y, full, _ := l.run(t, cast(readLayerNpy(t, c.Name, "x")), nil, nil)
	w.Check("y (one call)", y, readLayerNpy(t, c.Name, "y"), tol)
	checkState("state (one call)", full, goldenState(t, c, ""))

	y1, s1, _ := l.run(t, cast(readLayerNpy(t, c.Name, "x_part1")), nil, nil)
	w.Check("y_part1", y1, readLayerNpy(t, c.Name, "y_part1"), tol)
	checkState("state_part1", s1, goldenState(t, c, "_part1"))
	y2, s2, _ := l.run(t, cast(readLayerNpy(t, c.Name, "x_part2")), s1, nil)
	w.Check("y_part2 (Engram state carried)", y2, readLayerNpy(t, c.Name, "y_part2"), tol)
	checkState("state after part 2", s2, goldenState(t, c, ""))

	y2f, s2f, _ := l.run(t, cast(readLayerNpy(t, c.Name, "x_part2")), castAll(goldenState(t, c, "_part1")), nil)
	w.Check("y_part2 (from fla's part-1 cache)", y2f, readLayerNpy(t, c.Name, "y_part2"), tol)
	checkState("state after part 2 (from fla's cache)", s2f, goldenState(t, c, ""))
}
