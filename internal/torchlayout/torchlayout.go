// Package torchlayout converts weights, host side, between PyTorch's layouts and Engram's: an
// nn.Linear weight is [out, in] where Engram's Dense weight is [in, out] (y = x W), and a depthwise
// nn.Conv1d weight is [channels, 1, K] where Engram's short-conv weight is [K, channels] (same tap
// order). The fla, mamba_ssm and titans-pytorch importers share it.
package torchlayout

import (
	"fmt"
	"slices"

	"github.com/engramlx/engram/internal/tensorutil"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
)

// Layout says how a PyTorch tensor is laid out relative to Engram's variable.
type Layout int

const (
	Same   Layout = iota // identical layout (vectors, scalars, tensors Engram keeps as PyTorch does)
	Linear               // nn.Linear weight [out, in]; Engram's Dense weight [in, out]
	Conv                 // depthwise nn.Conv1d weight [channels, 1, K]; Engram's [K, channels]
)

// FromTorch converts t, in PyTorch's layout, to Engram's, as a dtype (Float32 or Float64) tensor.
func FromTorch(layout Layout, t *tensors.Tensor, dtype dtypes.DType) *tensors.Tensor {
	dims, data := t.Shape().Dimensions, tensorutil.Floats(t)
	switch {
	case layout == Linear && len(dims) == 2:
		return New(dtype, Transpose(data, dims[0], dims[1]), dims[1], dims[0])
	case layout == Conv && len(dims) == 3: // [C, 1, K] -> [K, C]
		return New(dtype, Transpose(data, dims[0], dims[2]), dims[2], dims[0])
	}
	return New(dtype, data, dims...)
}

// ToTorch converts an Engram variable to PyTorch's layout, as float64.
func ToTorch(layout Layout, t *tensors.Tensor) *tensors.Tensor {
	dims, data := t.Shape().Dimensions, tensorutil.Floats(t)
	if len(dims) == 2 {
		switch layout {
		case Linear:
			return New(dtypes.Float64, Transpose(data, dims[0], dims[1]), dims[1], dims[0])
		case Conv: // [K, C] -> [C, 1, K]
			return New(dtypes.Float64, Transpose(data, dims[0], dims[1]), dims[1], 1, dims[0])
		}
	}
	return New(dtypes.Float64, data, dims...)
}

// Transpose returns the [cols, rows] transpose of a row-major [rows, cols] matrix.
func Transpose(data []float64, rows, cols int) []float64 {
	out := make([]float64, len(data))
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			out[c*rows+r] = data[r*cols+c]
		}
	}
	return out
}

// New builds a Float32 or Float64 tensor of dims from float64 data (copied).
func New(dtype dtypes.DType, data []float64, dims ...int) *tensors.Tensor {
	switch dtype {
	case dtypes.Float32:
		f := make([]float32, len(data))
		for i, v := range data {
			f[i] = float32(v)
		}
		return tensors.FromFlatDataAndDimensions(f, dims...)
	case dtypes.Float64:
		return tensors.FromFlatDataAndDimensions(slices.Clone(data), dims...)
	}
	panic(fmt.Sprintf("torchlayout: dtype %s: want Float32 or Float64", dtype))
}
