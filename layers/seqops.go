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
//
// With P = [cache; x] [B, K-1+T, channels] and m_j the tap masks (1 without documents):
//
//	y_t = sum_j m_j,t w_j P_{t+j}
//	dP_p = sum_j w_j m_j,p-j v_{p-j};  dw_j = sum_{b,t} m_j,t v_t P_{t+j}
//
// The taps are whole rows of P (one Gather each; the last tap is x itself), and the gradient is
// written out instead of autodiff's: dx sums K shifted copies of v taken as rows of v padded once at
// its end, dcache is built from the first K-1 steps only. x, weight and cache each go through one
// custom-gradient identity (convIdentities), so an x used only here is not copied.
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
	var keep []*Node // keep[j]: the mask of tap j [B, T, 1] (nil: all ones)
	if docStart != nil {
		byDelay := ConvTapKeep(docStart, kernel) // by how far back the tap reads
		keep = make([]*Node, kernel)
		for j := range kernel - 1 { // tap K-1 reads x_t itself: its mask is ones
			keep[j] = byDelay[kernel-1-j]
		}
	}
	c := newConvGrad(x, weight, cache)
	padded := Concatenate([]*Node{c.cache, c.x}, 1) // [B, K-1+T, channels]
	windows := make([]*Node, kernel)                // windows[j] = P[:, j:j+T]
	for j := range kernel - 1 {
		windows[j] = rowWindow(padded, j, time)
	}
	windows[kernel-1] = c.x
	tapWeight := func(w *Node, j int) *Node { return Reshape(SliceAxis(w, 0, AxisElem(j)), 1, 1, channels) }
	for j, win := range windows {
		tap := Mul(win, tapWeight(c.weight, j))
		if keep != nil && keep[j] != nil {
			tap = Mul(tap, keep[j])
		}
		if y == nil {
			y = tap
		} else {
			y = Add(y, tap)
		}
	}
	y = c.output(y, func(v *Node) (dx, dw, dcache *Node) {
		masked := make([]*Node, kernel) // m_j v
		for j := range masked {
			masked[j] = v
			if keep != nil && keep[j] != nil {
				masked[j] = Mul(v, keep[j])
			}
		}
		// dw_j = sum_{b,t} m_j v P_{t+j}
		dws := make([]*Node, kernel)
		for j, win := range windows {
			dws[j] = ReduceSum(Mul(masked[j], win), 0, 1)
		}
		dw = Stack(dws, 0)
		// dx_t = sum_j w_j (m_j v)_{t+K-1-j}, zero past T: rows of m_j v padded with K-1 zeros at its end.
		var end *Node
		for j := range kernel {
			shift := kernel - 1 - j
			src := masked[j]
			if shift > 0 {
				if keep != nil || end == nil {
					end = PadTime(masked[j], kernel-1)
				}
				src = rowWindow(end, shift, time)
			}
			term := Mul(src, tapWeight(c.weight, j))
			if dx == nil {
				dx = term
			} else {
				dx = Add(dx, term)
			}
		}
		// dcache_i = sum_{j<=i} w_j (m_j v)_{i-j}, i < K-1: from the first min(T, K-1) steps only.
		head := min(time, kernel-1)
		for j := range kernel - 1 {
			front := rowWindow(masked[j], 0, head)
			padding := make([]PadAxis, 3)
			padding[1] = PadAxis{Start: j, End: kernel - 1 - head}
			front = SliceAxis(Pad(front, ScalarZero(v.Graph(), v.DType()), padding...), 1, AxisRange(0, kernel-1))
			term := Mul(front, tapWeight(c.weight, j))
			if dcache == nil {
				dcache = term
			} else {
				dcache = Add(dcache, term)
			}
		}
		return dx, dw, dcache
	})
	nextCache = c.next(rowWindow(padded, time, kernel-1))
	if docStart != nil {
		nextCache = Mul(nextCache, ConvCacheKeep(docStart, kernel))
	}
	return y, nextCache
}

// convGrad holds the custom-gradient identities of a short convolution's inputs and the adjoints its
// backward computes for them. The outputs (y and the next cache) go through identities whose gradients
// record those adjoints; autodiff reaches them before the input identities, which were built first.
type convGrad struct {
	x, weight, cache *Node
	dx, dw, dcache   *Node
	dNext            *Node // adjoint of the next cache: rows T..T+K-2 of P (nil: not on the loss path)
}

func newConvGrad(x, weight, cache *Node) *convGrad {
	c := &convGrad{}
	adjoint := func(get func() *Node) func(x, _ *Node) *Node {
		return func(x, _ *Node) *Node {
			if adj := get(); adj != nil {
				return adj
			}
			return ZerosLike(x)
		}
	}
	c.x = IdentityWithCustomGradient(x, adjoint(func() *Node { return c.nextAdjoint(c.dx, 1) }))
	c.weight = IdentityWithCustomGradient(weight, adjoint(func() *Node { return c.dw }))
	c.cache = IdentityWithCustomGradient(cache, adjoint(func() *Node { return c.nextAdjoint(c.dcache, 0) }))
	return c
}

// output wraps y so that its adjoint v gives the inputs' adjoints by backward.
func (c *convGrad) output(y *Node, backward func(v *Node) (dx, dw, dcache *Node)) *Node {
	return IdentityWithCustomGradient(y, func(_, v *Node) *Node {
		c.dx, c.dw, c.dcache = backward(v)
		return v
	})
}

// next wraps the next cache (rows T.. of P) so that its adjoint is added to x's and the cache's.
func (c *convGrad) next(nextCache *Node) *Node {
	return IdentityWithCustomGradient(nextCache, func(_, v *Node) *Node {
		c.dNext = v
		return v
	})
}

// nextAdjoint adds the next cache's adjoint, placed at rows T..T+K-2 of P, to the adjoint adj of x
// (part 1, rows K-1.. of P) or of the cache (part 0, rows 0..K-2).
func (c *convGrad) nextAdjoint(adj *Node, part int) *Node {
	if c.dNext == nil {
		return adj
	}
	rows := c.cache.Shape().Dimensions[1] // K-1
	time := c.x.Shape().Dimensions[1]
	// P's adjoint from the next cache: zeros at rows 0..T-1, dNext at rows T..T+K-2.
	padding := make([]PadAxis, 3)
	padding[1] = PadAxis{Start: time}
	full := Pad(c.dNext, ScalarZero(c.dNext.Graph(), c.dNext.DType()), padding...)
	var extra *Node
	if part == 0 {
		extra = SliceAxis(full, 1, AxisRange(0, rows))
	} else {
		extra = SliceAxis(full, 1, AxisRange(rows, rows+time))
	}
	if adj == nil {
		return extra
	}
	return Add(adj, extra)
}

// rowWindow returns x[:, start:start+length] of x [B, T', channels] as one Gather of whole rows (the Go
// backend copies them with memmove; its Slice copies element by element). No gradient of its own:
// callers differentiate through convGrad.
func rowWindow(x *Node, start, length int) *Node {
	batch := x.Shape().Dimensions[0]
	starts := make([]int32, 0, 2*batch*length)
	for b := range batch {
		for t := range length {
			starts = append(starts, int32(b), int32(start+t))
		}
	}
	indices := Reshape(Const(x.Graph(), starts), batch, length, 2)
	return Gather(x, indices, true) // [B, length, channels]
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
