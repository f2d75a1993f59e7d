package checkpoints

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/engramlx/engram/internal/tensorutil"
	"github.com/engramlx/engram/internal/torchlayout"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// FLAGatedDeltaNetDims are the sizes of one Gated DeltaNet layer, as Engram's deltanet.Config and
// d_model give them (fla's hidden_size, num_heads, head_dim, head_dim * expand_v, conv_size,
// use_short_conv). fla's layer must have num_v_heads = num_heads, use_gate = True and conv_bias =
// False: Engram's layer has no other form.
type FLAGatedDeltaNetDims struct {
	Hidden, Heads, HeadDimK, HeadDimV, ConvSize int
	ShortConv                                   bool
}

// flaParam is one tensor of fla's GatedDeltaNet state_dict and the Engram variable it becomes.
type flaParam struct {
	fla, engram string // fla state_dict name (without prefix); variable path under the layer's scope
	layout      torchlayout.Layout
	shape       []int // fla's shape
}

// flaParams lists the tensors of fla's GatedDeltaNet (fla/layers/gated_deltanet.py) for dims.
func (d FLAGatedDeltaNetDims) flaParams() []flaParam {
	kd, vd := d.Heads*d.HeadDimK, d.Heads*d.HeadDimV
	ps := []flaParam{
		{"q_proj.weight", "q_proj/weight", torchlayout.Linear, []int{kd, d.Hidden}},
		{"k_proj.weight", "k_proj/weight", torchlayout.Linear, []int{kd, d.Hidden}},
		{"v_proj.weight", "v_proj/weight", torchlayout.Linear, []int{vd, d.Hidden}},
		{"a_proj.weight", "a_proj/weight", torchlayout.Linear, []int{d.Heads, d.Hidden}},
		{"b_proj.weight", "b_proj/weight", torchlayout.Linear, []int{d.Heads, d.Hidden}},
		{"A_log", "A_log", torchlayout.Same, []int{d.Heads}},
		{"dt_bias", "dt_bias", torchlayout.Same, []int{d.Heads}},
		{"g_proj.weight", "g_proj/weight", torchlayout.Linear, []int{vd, d.Hidden}},
		{"o_norm.weight", "o_norm/weight", torchlayout.Same, []int{d.HeadDimV}},
		{"o_proj.weight", "o_proj/weight", torchlayout.Linear, []int{d.Hidden, vd}},
	}
	if d.ShortConv {
		ps = append(ps,
			flaParam{"q_conv1d.weight", "q_conv/weight", torchlayout.Conv, []int{kd, 1, d.ConvSize}},
			flaParam{"k_conv1d.weight", "k_conv/weight", torchlayout.Conv, []int{kd, 1, d.ConvSize}},
			flaParam{"v_conv1d.weight", "v_conv/weight", torchlayout.Conv, []int{vd, 1, d.ConvSize}})
	}
	return ps
}

// FLAGatedDeltaNetNames maps the fla state_dict names of a layer of dims (without prefix) to the paths
// of Engram's variables under the layer's scope ("q_proj.weight" -> "q_proj/weight",
// "q_conv1d.weight" -> "q_conv/weight", "A_log" -> "A_log", ...).
func FLAGatedDeltaNetNames(dims FLAGatedDeltaNetDims) map[string]string {
	names := map[string]string{}
	for _, p := range dims.flaParams() {
		names[p.fla] = p.engram
	}
	return names
}

func (d FLAGatedDeltaNetDims) check() error {
	if d.Hidden < 1 || d.Heads < 1 || d.HeadDimK < 1 || d.HeadDimV < 1 || d.ShortConv && d.ConvSize < 2 {
		return fmt.Errorf("fla import: invalid layer sizes %+v", d)
	}
	return nil
}

// ReadFLAGatedDeltaNet reads the weights of one flash-linear-attention GatedDeltaNet layer from a
// safetensors file (a state_dict: "q_proj.weight", "q_conv1d.weight", "A_log", "dt_bias",
// "o_norm.weight", ...; prefix selects a layer of a whole model, e.g. "model.layers.3.attn.", and may be
// empty) and returns them as Engram's deltanet layer variables in dtype, keyed by their path under the
// layer's scope ("q_proj/weight", ...; see FLAGatedDeltaNetNames):
//
//   - Linear weights [out, in] (y = x W^T) are transposed to Dense's [in, out];
//   - depthwise Conv1d weights [channels, 1, W] become ShortConv's [W, channels] (tap j multiplies the
//     input j-W+1 steps back in both);
//   - A_log, dt_bias [H] and the shared o_norm.weight [d_v] are copied.
//
// Errors name the file and the tensor: a missing tensor, a shape that does not fit dims, or a tensor
// under prefix that Engram's layer has no place for (a conv or projection bias, separate value heads).
func ReadFLAGatedDeltaNet(file, prefix string, dims FLAGatedDeltaNetDims, dtype dtypes.DType) (map[string]*tensors.Tensor, error) {
	if err := dims.check(); err != nil {
		return nil, err
	}
	st, err := ReadSafetensors(file)
	if err != nil {
		return nil, fmt.Errorf("fla import: %w", err)
	}
	if prefix != "" && !strings.HasSuffix(prefix, ".") {
		prefix += "."
	}
	params := dims.flaParams()
	known := map[string]bool{}
	out := map[string]*tensors.Tensor{}
	for _, p := range params {
		name := prefix + p.fla
		known[name] = true
		e, ok := st.Get(name)
		if !ok {
			return nil, fmt.Errorf("fla import: %s: tensor %q is missing (%s)", file, name, describePrefix(st, prefix))
		}
		if !slices.Equal(e.Shape, p.shape) {
			return nil, fmt.Errorf("fla import: %s: tensor %q has shape %v, want %v for %s", file, name, e.Shape, p.shape, dims)
		}
		if e.DType != F64 && e.DType != F32 && e.DType != BF16 {
			return nil, fmt.Errorf("fla import: %s: tensor %q has dtype %s, want a float", file, name, e.DType)
		}
		t, err := decodeTensor(e, dtypes.Float64)
		if err != nil {
			return nil, fmt.Errorf("fla import: %s: %w", file, err)
		}
		out[p.engram] = torchlayout.FromTorch(p.layout, t, dtype)
	}
	for _, e := range st.Entries {
		if strings.HasPrefix(e.Name, prefix) && !known[e.Name] {
			return nil, fmt.Errorf("fla import: %s: tensor %q has no place in Engram's gated_deltanet layer (a conv bias, a layer option Engram lacks, or the prefix selects more than one layer)", file, e.Name)
		}
	}
	return out, nil
}

// String prints the dims with fla's option names.
func (d FLAGatedDeltaNetDims) String() string {
	return fmt.Sprintf("hidden_size %d, num_heads %d, head_dim %d, head_v_dim %d, use_short_conv %v, conv_size %d",
		d.Hidden, d.Heads, d.HeadDimK, d.HeadDimV, d.ShortConv, d.ConvSize)
}

// describePrefix helps a user who got the prefix wrong: it names a few tensors of the file.
func describePrefix(st *Safetensors, prefix string) string {
	var names []string
	for _, e := range st.Entries {
		names = append(names, e.Name)
	}
	sort.Strings(names)
	if len(names) > 6 {
		names = append(names[:6], "...")
	}
	return fmt.Sprintf("prefix %q; the file holds %d tensors: %s", prefix, len(st.Entries), strings.Join(names, ", "))
}

// ToFLAGatedDeltaNet is the inverse of ReadFLAGatedDeltaNet's mapping: Engram layer variables (or their
// gradients), keyed by path under the layer's scope, to fla state_dict names (without prefix) and
// layouts, as float64. Every variable of dims must be present.
func ToFLAGatedDeltaNet(values map[string]*tensors.Tensor, dims FLAGatedDeltaNetDims) (map[string]*tensors.Tensor, error) {
	if err := dims.check(); err != nil {
		return nil, err
	}
	out := map[string]*tensors.Tensor{}
	for _, p := range dims.flaParams() {
		t, ok := values[p.engram]
		if !ok {
			return nil, fmt.Errorf("fla export: variable %q is missing", p.engram)
		}
		f := torchlayout.ToTorch(p.layout, t)
		if !slices.Equal(f.Shape().Dimensions, p.shape) {
			return nil, fmt.Errorf("fla export: variable %q has shape %v, want fla's %v for %s", p.engram, t.Shape().Dimensions, p.shape, dims)
		}
		out[p.fla] = f
	}
	return out, nil
}

// FLAGatedDeltaNetState converts the cache of one fla GatedDeltaNet layer after a prefix into Engram's
// carried state for the same layer, in Engram's order {S, conv_q, conv_k, conv_v} (conv entries only
// when convQ is not nil), in dtype:
//
//   - recurrent [B, H, d_v, d_k] as fla's layer keeps it in its cache (its kernels run with
//     state_v_first=True; vFirst = true), or [B, H, d_k, d_v] as fla's naive reference returns it
//     (vFirst = false), becomes S [B, H, d_k, d_v];
//   - a conv cache [B, channels, W] (the last W conv inputs, i.e. projection outputs before conv and
//     SiLU, oldest first) becomes [B, W-1, channels]: Engram keeps only the W-1 newest inputs, the
//     ones the next token's convolution reads; fla's oldest column is never read again.
func FLAGatedDeltaNetState(recurrent *tensors.Tensor, vFirst bool, convQ, convK, convV *tensors.Tensor, dtype dtypes.DType) ([]*tensors.Tensor, error) {
	dims := recurrent.Shape().Dimensions
	if len(dims) != 4 {
		return nil, fmt.Errorf("fla state: recurrent state has shape %v, want [B, H, d, d]", dims)
	}
	data := tensorutil.Floats(recurrent)
	sDims := slices.Clone(dims)
	if vFirst {
		n, v, k := dims[0]*dims[1], dims[2], dims[3]
		out := make([]float64, 0, len(data))
		for i := 0; i < n; i++ {
			out = append(out, torchlayout.Transpose(data[i*v*k:(i+1)*v*k], v, k)...)
		}
		data, sDims[2], sDims[3] = out, k, v
	}
	state := []*tensors.Tensor{torchlayout.New(dtype, data, sDims...)}
	if convQ == nil {
		return state, nil
	}
	for i, c := range []*tensors.Tensor{convQ, convK, convV} {
		if c == nil {
			return nil, fmt.Errorf("fla state: conv cache %d of 3 is nil", i+1)
		}
		cd := c.Shape().Dimensions
		if len(cd) != 3 || cd[0] != dims[0] || cd[2] < 2 {
			return nil, fmt.Errorf("fla state: conv cache %d has shape %v, want [B=%d, channels, W >= 2]", i+1, cd, dims[0])
		}
		b, ch, w := cd[0], cd[1], cd[2]
		flat := tensorutil.Floats(c)
		out := make([]float64, 0, b*(w-1)*ch)
		for bi := 0; bi < b; bi++ {
			for j := 1; j < w; j++ {
				for ci := 0; ci < ch; ci++ {
					out = append(out, flat[(bi*ch+ci)*w+j])
				}
			}
		}
		state = append(state, torchlayout.New(dtype, out, b, w-1, ch))
	}
	return state, nil
}

// SetVariables gives the variables under scopePath (e.g. "/layer_3/gated_deltanet") the values, keyed
// by path under that scope: existing variables must have the same shape and dtype and are overwritten;
// missing ones are created, so a graph built afterwards uses the values instead of initialising.
func SetVariables(store *mlmodel.Store, scopePath string, values map[string]*tensors.Tensor) error {
	for _, rel := range sortedKeys(values) {
		t := values[rel]
		path := strings.TrimSuffix(scopePath, "/") + "/" + rel
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		if v := store.GetVariable(path); v != nil {
			if !v.Shape().Equal(t.Shape()) {
				return fmt.Errorf("variable %s has shape %s; the imported value has %s", path, v.Shape(), t.Shape())
			}
			if err := v.SetValue(t); err != nil {
				return fmt.Errorf("variable %s: %w", path, err)
			}
			continue
		}
		if _, err := store.CreateVariable(path, t); err != nil {
			return err
		}
	}
	return nil
}
