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

// ropeAnglesAt is ropeAngles at per-row positions [B, T] (int32, documentPositions): cos and sin
// [B, T, Dh/2] in x's dtype of the angles positions[b, t] * base^(-2i/Dh).
func ropeAnglesAt(x *Node, headDim int, positions *Node, base float64) (cos, sin *Node) {
	if headDim%2 != 0 {
		panic(fmt.Errorf("layers.RoPE: head dim %d must be even", headDim))
	}
	g := x.Graph()
	invFreq := make([]float64, headDim/2)
	for i := range invFreq {
		invFreq[i] = math.Pow(base, -2*float64(i)/float64(headDim))
	}
	p := InsertAxes(ConvertDType(positions, dtypes.Float64), -1)     // [B, T, 1]
	angles := Mul(p, Reshape(Const(g, invFreq), 1, 1, len(invFreq))) // [B, T, half]
	return ConvertDType(Cos(angles), x.DType()), ConvertDType(Sin(angles), x.DType())
}

// documentPositions is the RoPE position [B, T] (int32) of each token of rows with document starts
// docStart [B, T] (1 at a document's first token) whose first token is at stream position offset (a
// scalar int32 node): t - s for a token of a document starting at s inside the row, so a document is
// rotated as if it ran alone from the start of a sequence, and offset + t for the tokens before the
// row's first start (those continue the incoming stream, as without starts).
//
// The latest start at or before t is a running maximum of t * docStart (-1 where none), taken in
// log2(T) doubling steps (GoMLX has a cumulative sum but no cumulative maximum).
func documentPositions(docStart, offset *Node) *Node {
	g := docStart.Graph()
	dims := docStart.Shape().Dimensions
	batch, time := dims[0], dims[1]
	index := Iota(g, shapes.Make(dtypes.Int32, batch, time), 1)
	isStart := GreaterThan(StopGradient(docStart), ScalarZero(g, docStart.DType()))
	none := Scalar(g, dtypes.Int32, -1)
	latest := Where(isStart, index, BroadcastToDims(none, batch, time))
	for shift := 1; shift < time; shift *= 2 {
		earlier := Pad(SliceAxis(latest, 1, AxisRange(0, time-shift)), none, PadAxis{}, PadAxis{Start: shift})
		latest = Max(latest, earlier)
	}
	stream := Add(index, ConvertDType(offset, dtypes.Int32))
	return Where(GreaterOrEqual(latest, ScalarZero(g, dtypes.Int32)), Sub(index, latest), stream)
}
