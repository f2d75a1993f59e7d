package deltanet

import (
	"math"

	"github.com/engramlx/engram/layers"

	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
)

// shortConv is layers.ShortConv (the same variable "weight" [K, channels], the same initialisation, the
// same result): a causal depthwise convolution along time of x [B, T, channels] with the cache of the
// K-1 inputs before x (nil = zeros). It is written for the Go backend: each of the K shifted views of
// [cache; x] is one Gather of whole rows (memmove) whose gradient is one zero pad of time, where the
// Slice of layers.ShortConv copies element by element and its gradient pads each view to full size.
//
// docStart [B, T] (nil: one document) restarts the convolution at document starts as
// layers.ShortConvDocuments does.
func shortConv(scope *model.Scope, x *Node, kernel int, cache, docStart *Node) (y, nextCache *Node) {
	channels := x.Shape().Dimensions[2]
	bound := 1 / math.Sqrt(float64(kernel))
	weight := scope.WithInitializer(initializer.RandomUniformFn(scope, -bound, bound)).
		VariableWithShape("weight", shapes.Make(x.DType(), kernel, channels)).NodeValue(x.Graph())
	return shortConvWithWeight(x, weight, cache, docStart)
}

// shortConvWithWeight is shortConv with the weight [K, channels] given as a node.
func shortConvWithWeight(x, weight, cache, docStart *Node) (y, nextCache *Node) {
	dims := x.Shape().Dimensions
	batch, time, channels := dims[0], dims[1], dims[2]
	kernel := weight.Shape().Dimensions[0]
	if kernel == 1 {
		return Mul(x, Reshape(weight, 1, 1, channels)), cache
	}
	if cache == nil {
		cache = Zeros(x.Graph(), shapes.Make(x.DType(), batch, kernel-1, channels))
	}
	var keep []*Node
	if docStart != nil {
		keep = layers.ConvTapKeep(docStart, kernel)
	}
	padded := Concatenate([]*Node{cache, x}, 1) // [B, K-1+T, channels]
	for j := range kernel {
		tap := Mul(timeWindow(padded, j, time), Reshape(SliceAxis(weight, 0, AxisElem(j)), 1, 1, channels))
		if keep != nil {
			tap = Mul(tap, keep[kernel-1-j]) // tap j reads x_{t-(K-1-j)}
		}
		if y == nil {
			y = tap
		} else {
			y = Add(y, tap)
		}
	}
	nextCache = timeWindow(padded, time, kernel-1)
	if docStart != nil {
		nextCache = Mul(nextCache, layers.ConvCacheKeep(docStart, kernel))
	}
	return y, nextCache
}

// timeWindow returns x[:, start:start+length] of x [B, T', channels] as one Gather of rows, with the
// gradient a zero pad of time.
func timeWindow(x *Node, start, length int) *Node {
	dims := x.Shape().Dimensions
	batch, total := dims[0], dims[1]
	return customGradient([]*Node{x},
		func(in []*Node) *Node {
			starts := make([]int32, 0, 2*batch*length)
			for b := range batch {
				for t := range length {
					starts = append(starts, int32(b), int32(start+t))
				}
			}
			indices := Reshape(Const(x.Graph(), starts), batch, length, 2)
			return Gather(in[0], indices, true) // [B, length, channels]
		},
		func(v *Node) []*Node {
			padding := make([]PadAxis, 3)
			padding[1] = PadAxis{Start: start, End: total - start - length}
			return []*Node{Pad(v, ScalarZero(v.Graph(), v.DType()), padding...)}
		})
}
