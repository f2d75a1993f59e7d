package layers

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
)

// Chunk pads x [B, T, rest...] along time to a multiple of chunkSize and reshapes it to
// [B, N, chunkSize, rest...], N = ceil(T / chunkSize). Padding is zeros at the end, so a causal
// computation's first T outputs are unchanged by it.
func Chunk(x *Node, chunkSize int) *Node {
	dims := x.Shape().Dimensions
	if len(dims) < 2 || chunkSize < 1 {
		panic(fmt.Errorf("layers.Chunk: want x [batch, time, ...] and chunkSize >= 1, got %s and %d", x.Shape(), chunkSize))
	}
	time := dims[1]
	numChunks := (time + chunkSize - 1) / chunkSize
	x = PadTime(x, numChunks*chunkSize-time)
	newDims := append([]int{dims[0], numChunks, chunkSize}, dims[2:]...)
	return Reshape(x, newDims...)
}

// Unchunk inverts Chunk: [B, N, C, rest...] -> [B, time, rest...], dropping the padding past time.
func Unchunk(x *Node, time int) *Node {
	dims := x.Shape().Dimensions
	newDims := append([]int{dims[0], dims[1] * dims[2]}, dims[3:]...)
	x = Reshape(x, newDims...)
	return SliceAxis(x, 1, AxisRange(0, time))
}

// PadTime appends n zeros along axis 1 (time) of x.
func PadTime(x *Node, n int) *Node {
	if n == 0 {
		return x
	}
	padding := make([]PadAxis, x.Rank())
	padding[1] = PadAxis{End: n}
	return Pad(x, ScalarZero(x.Graph(), x.DType()), padding...)
}

// CausalShift shifts x [B, T, rest...] right by n steps along time: y_t = x_{t-n}, zeros for t < n.
func CausalShift(x *Node, n int) *Node {
	if n == 0 {
		return x
	}
	time := x.Shape().Dimensions[1]
	if n >= time {
		return ZerosLike(x)
	}
	padding := make([]PadAxis, x.Rank())
	padding[1] = PadAxis{Start: n}
	padded := Pad(x, ScalarZero(x.Graph(), x.DType()), padding...)
	return SliceAxis(padded, 1, AxisRange(0, time))
}

// PrefixSum is the inclusive cumulative sum along axis: y_i = sum_{j<=i} x_j.
func PrefixSum(x *Node, axis int) *Node { return CumSum(x, axis) }

// ExclusivePrefixSum is y_i = sum_{j<i} x_j.
func ExclusivePrefixSum(x *Node, axis int) *Node { return Sub(CumSum(x, axis), x) }

// ShortConvCacheShape is the shape of ShortConv's streaming cache: the last kernel-1 inputs.
func ShortConvCacheShape(x shapes.Shape, batch, kernel, channels int) shapes.Shape {
	return shapes.Make(x.DType, batch, kernel-1, channels)
}

// ShortConv is a causal depthwise convolution along time, as used before the q/k/v of linear-attention
// layers: y_t[c] = sum_{j=0}^{K-1} w[j, c] x_{t-K+1+j}[c], x: [B, T, channels], weight "weight" [K, channels]
// initialised U(-1/sqrt(K), 1/sqrt(K)) (PyTorch's Conv1d default for a depthwise kernel).
//
// cache [B, K-1, channels] holds the inputs before x (nil = zeros, start of sequence); the returned cache
// holds the last K-1 inputs, so chained calls equal one call.
func ShortConv(scope *model.Scope, x *Node, kernel int, cache *Node) (y, nextCache *Node) {
	return ShortConvDocuments(scope, x, kernel, cache, nil)
}

// ShortConvDocuments is ShortConv over rows packing documents, docStart [B, T] (nil: ShortConv); see
// ShortConvWithWeightDocuments.
func ShortConvDocuments(scope *model.Scope, x *Node, kernel int, cache, docStart *Node) (y, nextCache *Node) {
	channels := x.Shape().Dimensions[2]
	bound := 1 / math.Sqrt(float64(kernel))
	weight := scope.WithInitializer(initializer.RandomUniformFn(scope, -bound, bound)).
		VariableWithShape("weight", shapes.Make(x.DType(), kernel, channels)).NodeValue(x.Graph())
	return ShortConvWithWeightDocuments(x, weight, cache, docStart)
}

// ShortConvWithWeight is ShortConv with the weight [K, channels] given as a node.
func ShortConvWithWeight(x, weight, cache *Node, batch, time, channels int) (y, nextCache *Node) {
	return ShortConvWithWeightDocuments(x, weight, cache, nil)
}

// ShortConvWithWeightDocuments is ShortConvWithWeight over rows that pack documents, docStart [B, T] (x's dtype,
// 1 at a document's first token; nil: one document): a tap that would reach an input before t's
// document start reads zero instead (the cache counts as before the row's first start), and the
// returned cache holds only the last document's inputs (zeros before its start), as the document alone
// would leave it.
func ShortConvWithWeightDocuments(x, weight, cache, docStart *Node) (y, nextCache *Node) {
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
		keep = ConvTapKeep(docStart, kernel)
	}
	padded := Concatenate([]*Node{cache, x}, 1) // [B, K-1+T, channels]
	for j := 0; j < kernel; j++ {
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
		nextCache = Mul(nextCache, ConvCacheKeep(docStart, kernel))
	}
	return y, nextCache
}

// timeWindow returns x[:, start:start+length] of x [B, T', channels] as one Gather of whole rows, with
// the gradient one zero pad of time. The Go backend's Slice copies element by element and autodiff of K
// slices pads each view's gradient to full size; this is the form the short convolutions run on.
func timeWindow(x *Node, start, length int) *Node {
	dims := x.Shape().Dimensions
	batch, total := dims[0], dims[1]
	return CustomGradient([]*Node{x},
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
		func(_ []*Node, v *Node) []*Node {
			padding := make([]PadAxis, 3)
			padding[1] = PadAxis{Start: start, End: total - start - length}
			return []*Node{Pad(v, ScalarZero(v.Graph(), v.DType()), padding...)}
		})
}

// Dense is x W (+ b): x [..., in] -> [..., out]; weight "weight" [in, out], bias "bias" [out] (zeros)
// when bias is set.
//
// The weight is drawn U(-1/sqrt(in), 1/sqrt(in)), PyTorch's nn.Linear default, which titans-pytorch
// trains with. flash-linear-attention's models do not keep it: their _init_weights redraws every
// projection N(0, 0.02^2) (initializer_range 0.02), narrower than this uniform (std 1/sqrt(3 in)) for
// in < 833. GoMLX's
// default He-normal is 2.4x wider than this uniform; through the delta rule's decay projection it
// starts every head with near-total forgetting (g = -A softplus(W_a x + dt_bias) far below -1).
func Dense(scope *model.Scope, x *Node, out int, bias bool) *Node {
	in := x.Shape().Dimensions[x.Rank()-1]
	bound := 1 / math.Sqrt(float64(in))
	w := scope.WithInitializer(initializer.RandomUniformFn(scope, -bound, bound)).
		VariableWithShape("weight", shapes.Make(x.DType(), in, out)).NodeValue(x.Graph())
	y := DotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{0}, nil)
	if bias {
		b := scope.VariableWithShape("bias", shapes.Make(x.DType(), out)).NodeValue(x.Graph())
		y = Add(y, ExpandLeftToRank(b, y.Rank()))
	}
	return y
}
