package mamba2

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/engramlx/engram/checkpoints"
	"github.com/engramlx/engram/internal/tensorutil"
	"github.com/engramlx/engram/internal/torchlayout"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
)

// FLAParam is one tensor of the state_dict of fla's Mamba2 layer (fla/layers/mamba2.py), which
// state-spaces/mamba's Mamba2 shares (names, shapes and order), and the Engram variable it becomes.
type FLAParam struct {
	Name   string // state_dict name, without a model prefix
	Path   string // variable path under the layer's scope
	Shape  []int  // fla's shape
	layout torchlayout.Layout
}

// FLAParams lists the tensors of an fla / mamba_ssm Mamba2 layer of width dModel with cfg's sizes
// (use_conv_bias True, use_bias False, D_has_hdim False, rmsnorm True: the layers' defaults).
func FLAParams(cfg Config, dModel int) []FLAParam {
	h, d, conv := cfg.Heads, cfg.Inner(), cfg.ConvDim()
	return []FLAParam{
		{"dt_bias", "dt_bias", []int{h}, torchlayout.Same},
		{"A_log", "A_log", []int{h}, torchlayout.Same},
		{"D", "D", []int{h}, torchlayout.Same},
		{"conv1d.weight", "conv1d/weight", []int{conv, 1, cfg.ConvSize}, torchlayout.Conv},
		{"conv1d.bias", "conv1d/bias", []int{conv}, torchlayout.Same},
		{"in_proj.weight", "in_proj/weight", []int{cfg.ProjDim(), dModel}, torchlayout.Linear},
		{"norm.weight", "norm/weight", []int{d}, torchlayout.Same},
		{"out_proj.weight", "out_proj/weight", []int{dModel, d}, torchlayout.Linear},
	}
}

// FromFLA converts the tensors of one fla / mamba_ssm Mamba2 layer, keyed by state_dict name without
// prefix, into the layer's variables in dtype, keyed by path under the layer's scope (FLAParams):
// Linear weights [out, in] are transposed to [in, out] (in_proj's output columns keep their z, xBC, dt
// order, which the layer splits the same way); conv1d.weight [conv_dim, 1, K] becomes [K, conv_dim]
// (tap j multiplies the input K-1-j steps back in both); the rest is copied. A missing tensor, a shape
// that does not fit cfg, or a tensor the layer has no place for is an error naming it.
func FromFLA(params map[string]*tensors.Tensor, cfg Config, dModel int, dtype dtypes.DType) (map[string]*tensors.Tensor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	known := map[string]bool{}
	out := map[string]*tensors.Tensor{}
	for _, p := range FLAParams(cfg, dModel) {
		known[p.Name] = true
		t, ok := params[p.Name]
		if !ok {
			return nil, fmt.Errorf("mamba2 fla import: tensor %q is missing", p.Name)
		}
		if !slices.Equal(t.Shape().Dimensions, p.Shape) {
			return nil, fmt.Errorf("mamba2 fla import: tensor %q has shape %v, want %v (heads %d, head_dim %d, state_size %d, n_groups %d, conv_size %d, d_model %d)",
				p.Name, t.Shape().Dimensions, p.Shape, cfg.Heads, cfg.HeadDim, cfg.StateSize, cfg.Groups, cfg.ConvSize, dModel)
		}
		out[p.Path] = torchlayout.FromTorch(p.layout, t, dtype)
	}
	for name := range params {
		if !known[name] {
			return nil, fmt.Errorf("mamba2 fla import: tensor %q has no place in Engram's mamba2 layer (a projection bias, D_has_hdim, or a prefix that selects more than one layer)", name)
		}
	}
	return out, nil
}

// ToFLA is the inverse of FromFLA: the layer's variables (or their gradients) to fla's names and
// layouts, as float64.
func ToFLA(values map[string]*tensors.Tensor, cfg Config, dModel int) (map[string]*tensors.Tensor, error) {
	out := map[string]*tensors.Tensor{}
	for _, p := range FLAParams(cfg, dModel) {
		t, ok := values[p.Path]
		if !ok {
			return nil, fmt.Errorf("mamba2 fla export: variable %q is missing", p.Path)
		}
		f := torchlayout.ToTorch(p.layout, t)
		if !slices.Equal(f.Shape().Dimensions, p.Shape) {
			return nil, fmt.Errorf("mamba2 fla export: variable %q has shape %v, want fla's %v", p.Path, t.Shape().Dimensions, p.Shape)
		}
		out[p.Name] = f
	}
	return out, nil
}

// ReadFLA reads one fla / mamba_ssm Mamba2 layer from a safetensors state_dict (prefix selects a layer
// of a whole model, e.g. "backbone.layers.3.mixer.", and may be empty) and returns FromFLA's variables.
// checkpoints.SetVariables puts them under the layer's scope.
func ReadFLA(file, prefix string, cfg Config, dModel int, dtype dtypes.DType) (map[string]*tensors.Tensor, error) {
	st, err := checkpoints.ReadSafetensors(file)
	if err != nil {
		return nil, fmt.Errorf("mamba2 fla import: %w", err)
	}
	if prefix != "" && !strings.HasSuffix(prefix, ".") {
		prefix += "."
	}
	params := map[string]*tensors.Tensor{}
	for _, e := range st.Entries {
		if !strings.HasPrefix(e.Name, prefix) {
			continue
		}
		values, err := entryFloats(e)
		if err != nil {
			return nil, fmt.Errorf("mamba2 fla import: %s: %w", file, err)
		}
		params[strings.TrimPrefix(e.Name, prefix)] = tensors.FromFlatDataAndDimensions(values, e.Shape...)
	}
	out, err := FromFLA(params, cfg, dModel, dtype)
	if err != nil {
		return nil, fmt.Errorf("%s (prefix %q): %w", file, prefix, err)
	}
	return out, nil
}

// FLAState converts the cache of one fla / mamba_ssm Mamba2 layer into the layer's carried state
// {ssm, conv} in dtype: ssm [B, H, P, N] is copied (the same layout); conv [B, conv_dim, K], the last K
// conv inputs oldest first, becomes [B, K-1, conv_dim], the K-1 newest (the only ones a later token's
// convolution reads; fla's oldest column is never read again).
func FLAState(ssm, conv *tensors.Tensor, dtype dtypes.DType) ([]*tensors.Tensor, error) {
	sd, cd := ssm.Shape().Dimensions, conv.Shape().Dimensions
	if len(sd) != 4 || len(cd) != 3 || cd[0] != sd[0] || cd[2] < 2 {
		return nil, fmt.Errorf("mamba2 fla state: ssm %v, conv %v: want [B, H, P, N] and [B, conv_dim, K >= 2]", sd, cd)
	}
	batch, channels, k := cd[0], cd[1], cd[2]
	flat := tensorutil.Floats(conv)
	newest := make([]float64, 0, batch*(k-1)*channels)
	for b := range batch {
		for j := 1; j < k; j++ {
			for c := range channels {
				newest = append(newest, flat[(b*channels+c)*k+j])
			}
		}
	}
	return []*tensors.Tensor{
		torchlayout.New(dtype, tensorutil.Floats(ssm), sd...),
		torchlayout.New(dtype, newest, batch, k-1, channels),
	}, nil
}

// entryFloats decodes a float safetensors entry (F64, F32 or BF16; every such value is a float64).
func entryFloats(e checkpoints.Entry) ([]float64, error) {
	n := 1
	for _, d := range e.Shape {
		n *= d
	}
	size := map[string]int{checkpoints.F64: 8, checkpoints.F32: 4, checkpoints.BF16: 2}[e.DType]
	if size == 0 || len(e.Data) != n*size {
		return nil, fmt.Errorf("tensor %q: dtype %s with %d bytes for shape %v: want a float tensor", e.Name, e.DType, len(e.Data), e.Shape)
	}
	out := make([]float64, n)
	for i := range out {
		switch e.DType {
		case checkpoints.F64:
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(e.Data[8*i:]))
		case checkpoints.F32:
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(e.Data[4*i:])))
		default:
			out[i] = float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(e.Data[2*i:])) << 16))
		}
	}
	return out, nil
}
