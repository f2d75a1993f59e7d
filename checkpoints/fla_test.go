package checkpoints_test

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/engramlx/engram/checkpoints"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

var flaDims = checkpoints.FLAGatedDeltaNetDims{Hidden: 6, Heads: 2, HeadDimK: 3, HeadDimV: 4, ConvSize: 4, ShortConv: true}

// flaShapes are fla's state_dict shapes for flaDims (key_dim 6, value_dim 8).
var flaShapes = map[string][]int{
	"q_proj.weight": {6, 6}, "k_proj.weight": {6, 6}, "v_proj.weight": {8, 6}, "g_proj.weight": {8, 6},
	"a_proj.weight": {2, 6}, "b_proj.weight": {2, 6}, "A_log": {2}, "dt_bias": {2},
	"q_conv1d.weight": {6, 1, 4}, "k_conv1d.weight": {6, 1, 4}, "v_conv1d.weight": {8, 1, 4},
	"o_norm.weight": {4}, "o_proj.weight": {6, 8},
}

// f64Entry encodes values (element i = base + i) as an F64 entry.
func f64Entry(name string, shape []int, base float64) checkpoints.Entry {
	n := 1
	for _, d := range shape {
		n *= d
	}
	data := make([]byte, 8*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint64(data[8*i:], math.Float64bits(base+float64(i)))
	}
	return checkpoints.Entry{Name: name, DType: checkpoints.F64, Shape: shape, Data: data}
}

// writeFLA writes fla's tensors under prefix with shapes edited by edit (nil shape: left out).
func writeFLA(t *testing.T, prefix string, edit func(map[string][]int)) string {
	t.Helper()
	shapes := map[string][]int{}
	for k, v := range flaShapes {
		shapes[k] = v
	}
	if edit != nil {
		edit(shapes)
	}
	var entries []checkpoints.Entry
	base := 0.0
	for _, name := range sortedNames(shapes) {
		if shapes[name] != nil {
			entries = append(entries, f64Entry(prefix+name, shapes[name], base))
			base += 1000
		}
	}
	file := filepath.Join(t.TempDir(), "fla.safetensors")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := checkpoints.WriteSafetensors(f, entries, nil); err != nil {
		t.Fatal(err)
	}
	return file
}

func sortedNames(m map[string][]int) []string {
	var names []string
	for k := range m {
		names = append(names, k)
	}
	for i := range names {
		for j := i + 1; j < len(names); j++ {
			if names[j] < names[i] {
				names[i], names[j] = names[j], names[i]
			}
		}
	}
	return names
}

// TestReadFLAGatedDeltaNetLayouts: Linear weights are transposed, conv weights become [W, channels],
// vectors are copied, names map to the layer's variable paths, and ToFLAGatedDeltaNet inverts it.
func TestReadFLAGatedDeltaNetLayouts(t *testing.T) {
	file := writeFLA(t, "model.layers.1.attn.", nil)
	got, err := checkpoints.ReadFLAGatedDeltaNet(file, "model.layers.1.attn", flaDims, dtypes.Float64)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 13 {
		t.Fatalf("%d variables, want 13", len(got))
	}
	names := checkpoints.FLAGatedDeltaNetNames(flaDims)
	if names["q_conv1d.weight"] != "q_conv/weight" || names["o_norm.weight"] != "o_norm/weight" || names["A_log"] != "A_log" {
		t.Fatalf("names %v", names)
	}
	// fla q_proj.weight [out 6, in 6]: element (o, i) = base + 6o + i; Engram [in, out] (i, o).
	q := lt.Floats(got["q_proj/weight"])
	v := lt.Floats(got["v_proj/weight"]) // fla [8, 6] -> [6, 8]
	if dims := got["v_proj/weight"].Shape().Dimensions; !reflect.DeepEqual(dims, []int{6, 8}) {
		t.Fatalf("v_proj/weight dims %v", dims)
	}
	base := func(name string) float64 { return lt.Floats(got[name])[0] }
	if q[1*6+2] != base("q_proj/weight")+2*6+1 || v[1*8+7] != base("v_proj/weight")+7*6+1 {
		t.Errorf("linear weights not transposed: q %v", q[:8])
	}
	// fla conv [C 8, 1, W 4]: element (c, 0, j) = base + 4c + j; Engram [W, C] (j, c).
	conv := lt.Floats(got["v_conv/weight"])
	if dims := got["v_conv/weight"].Shape().Dimensions; !reflect.DeepEqual(dims, []int{4, 8}) || conv[3*8+5] != base("v_conv/weight")+5*4+3 {
		t.Errorf("conv weight dims %v values %v", dims, conv[:8])
	}
	back, err := checkpoints.ToFLAGatedDeltaNet(got, flaDims)
	if err != nil {
		t.Fatal(err)
	}
	st, err := checkpoints.ReadSafetensors(file)
	if err != nil {
		t.Fatal(err)
	}
	for name, shape := range flaShapes {
		e, _ := st.Get("model.layers.1.attn." + name)
		if !reflect.DeepEqual(back[name].Shape().Dimensions, shape) || !reflect.DeepEqual(lt.Floats(back[name]), floats64(e.Data)) {
			t.Errorf("%s does not round-trip", name)
		}
	}
	// float32 on request.
	got32, err := checkpoints.ReadFLAGatedDeltaNet(file, "model.layers.1.attn.", flaDims, dtypes.Float32)
	if err != nil || got32["A_log"].DType() != dtypes.Float32 {
		t.Fatalf("float32 import: %v", err)
	}
}

func floats64(raw []byte) []float64 {
	out := make([]float64, len(raw)/8)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
	}
	return out
}

// TestReadFLAGatedDeltaNetErrors: every error names the file and the tensor.
func TestReadFLAGatedDeltaNetErrors(t *testing.T) {
	cases := map[string]struct {
		prefix string
		edit   func(map[string][]int)
		want   string
	}{
		"missing":     {"", func(s map[string][]int) { s["dt_bias"] = nil }, `tensor "dt_bias" is missing`},
		"wrong shape": {"", func(s map[string][]int) { s["k_proj.weight"] = []int{6, 5} }, `tensor "k_proj.weight" has shape [6 5], want [6 6]`},
		"conv layout": {"", func(s map[string][]int) { s["q_conv1d.weight"] = []int{6, 4} }, `"q_conv1d.weight" has shape [6 4], want [6 1 4]`},
		"conv bias":   {"", func(s map[string][]int) { s["q_conv1d.bias"] = []int{6} }, `tensor "q_conv1d.bias" has no place`},
		"prefix":      {"model.layers.0.attn.", nil, `tensor "q_proj.weight" is missing (prefix ""; the file holds 13 tensors: model.layers.0.attn.A_log`},
	}
	for name, c := range cases {
		file := writeFLA(t, c.prefix, c.edit)
		_, err := checkpoints.ReadFLAGatedDeltaNet(file, "", flaDims, dtypes.Float64)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), file) {
			t.Errorf("%s: error %v, want one naming %s and %q", name, err, file, c.want)
		}
	}
	if _, err := checkpoints.ReadFLAGatedDeltaNet(filepath.Join(t.TempDir(), "none.safetensors"), "", flaDims, dtypes.Float64); err == nil || !strings.Contains(err.Error(), "none.safetensors") {
		t.Errorf("absent file: %v", err)
	}
}

// TestFLAGatedDeltaNetState: fla's layer cache (S as [B, H, V, K]) and its [B, D, W] conv caches become
// Engram's {S [B, H, K, V], conv [B, W-1, D]}.
func TestFLAGatedDeltaNetState(t *testing.T) {
	const b, h, k, v, d, w = 2, 2, 3, 4, 5, 4
	seq := func(n int, base float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = base + float64(i)
		}
		return out
	}
	sVFirst := tensors.FromFlatDataAndDimensions(seq(b*h*v*k, 0), b, h, v, k)
	conv := tensors.FromFlatDataAndDimensions(seq(b*d*w, 100), b, d, w)
	st, err := checkpoints.FLAGatedDeltaNetState(sVFirst, true, conv, conv, conv, dtypes.Float64)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 4 || !reflect.DeepEqual(st[0].Shape().Dimensions, []int{b, h, k, v}) || !reflect.DeepEqual(st[1].Shape().Dimensions, []int{b, w - 1, d}) {
		t.Fatalf("state shapes %v %v", st[0].Shape(), st[1].Shape())
	}
	s := lt.Floats(st[0])
	// Engram S[1, 0, ki=2, vi=3] = fla S[1, 0, vi=3, ki=2].
	if s[((1*h+0)*k+2)*v+3] != float64(((1*h+0)*v+3)*k+2) {
		t.Errorf("S not transposed")
	}
	c := lt.Floats(st[1])
	// Engram conv[1, j=0, ch=4] = fla conv[1, 4, j+1].
	if c[(1*(w-1)+0)*d+4] != 100+float64((1*d+4)*w+1) {
		t.Errorf("conv cache not mapped: %v", c[:6])
	}
	kFirst, err := checkpoints.FLAGatedDeltaNetState(sVFirst, false, nil, nil, nil, dtypes.Float32)
	if err != nil || len(kFirst) != 1 || kFirst[0].DType() != dtypes.Float32 || !reflect.DeepEqual(kFirst[0].Shape().Dimensions, []int{b, h, v, k}) {
		t.Fatalf("k-first state without convs: %v %v", kFirst, err)
	}
}

// TestSetVariables: values create missing variables and overwrite existing ones; a shape mismatch is an
// error naming the variable.
func TestSetVariables(t *testing.T) {
	store := mlmodel.NewStore()
	one := tensors.FromFlatDataAndDimensions([]float64{1, 2}, 2)
	if err := checkpoints.SetVariables(store, "/layer_0/gated_deltanet", map[string]*tensors.Tensor{"A_log": one}); err != nil {
		t.Fatal(err)
	}
	v := store.GetVariable("/layer_0/gated_deltanet/A_log")
	if v == nil || !reflect.DeepEqual(lt.Floats(v.MustValue()), []float64{1, 2}) {
		t.Fatalf("created variable %v", v)
	}
	two := tensors.FromFlatDataAndDimensions([]float64{3, 4}, 2)
	if err := checkpoints.SetVariables(store, "/layer_0/gated_deltanet/", map[string]*tensors.Tensor{"A_log": two}); err != nil {
		t.Fatal(err)
	}
	if got := lt.Floats(store.GetVariable("/layer_0/gated_deltanet/A_log").MustValue()); !reflect.DeepEqual(got, []float64{3, 4}) {
		t.Fatalf("overwritten variable %v", got)
	}
	bad := tensors.FromFlatDataAndDimensions([]float64{3, 4, 5}, 3)
	if err := checkpoints.SetVariables(store, "/layer_0/gated_deltanet", map[string]*tensors.Tensor{"A_log": bad}); err == nil || !strings.Contains(err.Error(), "/layer_0/gated_deltanet/A_log") {
		t.Errorf("shape mismatch: %v", err)
	}
}
