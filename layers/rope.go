package layers

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// RoPE rotates x [B, T, H, Dh] by position (Su et al., 2021): for i < Dh/2 the pair
// (x_i, x_{i+Dh/2}) at absolute position p is rotated by the angle p * base^(-2i/Dh).
//
// offset is the absolute position of x's first step: a scalar int32 node (streaming carries it), or nil
// for 0. Rotating queries and keys by their absolute positions makes their dot product depend only on
// the distance, which is why a cache of rotated keys stays valid while streaming.
func RoPE(x *Node, offset *Node, base float64) *Node {
	dims := x.Shape().Dimensions
	time, headDim := dims[1], dims[3]
	half := headDim / 2
	cos, sin := ropeAngles(x, time, headDim, offset, base)
	cos, sin = Reshape(cos, 1, time, 1, half), Reshape(sin, 1, time, 1, half)
	x1 := SliceAxis(x, 3, AxisRange(0, half))
	x2 := SliceAxis(x, 3, AxisRange(half, headDim))
	return Concatenate([]*Node{
		Sub(Mul(x1, cos), Mul(x2, sin)),
		Add(Mul(x2, cos), Mul(x1, sin)),
	}, 3)
}

// ropeAngles returns cos and sin [T, Dh/2] in x's dtype of the angles (offset + t) * base^(-2i/Dh), for
// both layouts of RoPE (token-major here, head-major in attention_core.go).
func ropeAngles(x *Node, time, headDim int, offset *Node, base float64) (cos, sin *Node) {
	if headDim%2 != 0 {
		panic(fmt.Errorf("layers.RoPE: head dim %d must be even", headDim))
	}
	g := x.Graph()
	invFreq := make([]float64, headDim/2)
	for i := range invFreq {
		invFreq[i] = math.Pow(base, -2*float64(i)/float64(headDim))
	}
	// Angles in float64 whatever x's dtype: positions in the millions lose all precision in float32.
	positions := Iota(g, shapes.Make(dtypes.Float64, time), 0)
	if offset != nil {
		positions = Add(positions, ConvertDType(offset, dtypes.Float64))
	}
	angles := Einsum("t,f->tf", positions, Const(g, invFreq)) // [T, half]
	return ConvertDType(Cos(angles), x.DType()), ConvertDType(Sin(angles), x.DType())
}
