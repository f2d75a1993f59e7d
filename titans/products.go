package titans

import (
	"github.com/engramlx/engram/layers"
	"math"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// batchAxes returns 0, 1, ..., n-1.
func batchAxes(n int) []int {
	axes := make([]int, n)
	for i := range axes {
		axes[i] = i
	}
	return axes
}

// The batched products below keep to the two layouts the Go backend's matmul kernel takes as they are
// (batch axes leading, the lhs contracting its last axis, the rhs contracting its first non-batch axis
// or its last), in the forward pass and in their gradients, which are written here rather than left to
// autodiff: GoMLX's DotGeneral gradient contracts the adjoint over a non-last axis and transposes its
// result back, and the backend runs those transposes (a swap of the last two axes of a rank >= 3 tensor)
// element by element. Where a swap is needed it is swapLast, built from the backend's fast transposes.

// rawMM is x y over all leading axes: x [..., n, k], y [..., k, m] -> [..., n, m].
func rawMM(x, y *Node) *Node {
	r := x.Rank()
	return DotGeneral(x, []int{r - 1}, batchAxes(r-2), y, []int{r - 2}, batchAxes(r-2))
}

// rawMMT is x y^T over all leading axes: x [..., n, m], y [..., k, m] -> [..., n, k].
func rawMMT(x, y *Node) *Node {
	r := x.Rank()
	return DotGeneral(x, []int{r - 1}, batchAxes(r-2), y, []int{r - 1}, batchAxes(r-2))
}

// mm is rawMM with the gradients dx = v y^T and dy = x^T v in kernel layouts.
func mm(x, y *Node) *Node {
	return layers.CustomGradient([]*Node{x, y}, func(in []*Node) *Node { return rawMM(in[0], in[1]) },
		func(in []*Node, v *Node) []*Node { return []*Node{rawMMT(v, in[1]), rawTMM(in[0], v)} })
}

// mmT is rawMMT with the gradients dx = v y and dy = v^T x in kernel layouts.
func mmT(x, y *Node) *Node {
	return layers.CustomGradient([]*Node{x, y}, func(in []*Node) *Node { return rawMMT(in[0], in[1]) },
		func(in []*Node, v *Node) []*Node { return []*Node{rawMM(v, in[1]), rawTMM(v, in[0])} })
}

// mmShared returns xs[i] y for each xs[i] [..., n_i, k] and one y [..., k, m] -- mm for several
// left-hand sides, with y passed once through the custom gradient's identity (so that y is not copied
// for each product): dxs[i] = v_i y^T, dy = sum_i xs[i]^T v_i.
func mmShared(xs []*Node, y *Node) []*Node {
	inputs := append([]*Node{y}, xs...)
	return customGradientMulti(inputs,
		func(in []*Node) []*Node {
			outs := make([]*Node, len(xs))
			for i, x := range in[1:] {
				outs[i] = rawMM(x, in[0])
			}
			return outs
		},
		func(in, vs []*Node) []*Node {
			grads := make([]*Node, len(in))
			for i, v := range vs {
				if v == nil {
					continue
				}
				grads[1+i] = rawMMT(v, in[0])
				dy := rawTMM(in[1+i], v)
				if grads[0] == nil {
					grads[0] = dy
				} else {
					grads[0] = Add(grads[0], dy)
				}
			}
			return grads
		})
}

// tmm is x^T y over all leading axes, x [..., s, k], y [..., s, m] -> [..., k, m] (a sum over s). The
// kernel contracts the lhs over its last axis, so one operand is swapped (swapLast): x, or when that
// moves fewer values, y, and then the (small) result: (y^T x)^T.
func tmm(x, y *Node) *Node {
	return layers.CustomGradient([]*Node{x, y}, func(in []*Node) *Node { return rawTMM(in[0], in[1]) },
		func(in []*Node, v *Node) []*Node { return []*Node{rawMMT(in[1], v), rawMM(in[0], v)} })
}

// rawTMM is tmm without its custom gradient (for use in gradients, which are not differentiated again).
func rawTMM(x, y *Node) *Node {
	xd, yd := x.Shape().Dimensions, y.Shape().Dimensions
	r := len(xd)
	s, k, m := xd[r-2], xd[r-1], yd[r-1]
	if s*k <= s*m+k*m {
		return rawMM(swapLast(x), y)
	}
	return swapLast(rawMM(swapLast(y), x))
}

// swapLast swaps the last two axes of x [..., a, b] -> [..., b, a] (no custom gradient: it is used in
// gradients only). The Go backend transposes that element by element (several ns per value); for a
// narrow last axis (b <= 48) a product with the identity [b, b] is faster (the kernel packs its operand
// with vector code; exact: one nonzero term per sum); otherwise a 4D transpose [N, a, b, 1] ->
// [N, b, a, 1] (the backend's row-copy fast path).
func swapLast(x *Node) *Node {
	dims := x.Shape().Dimensions
	r := len(dims)
	a, b := dims[r-2], dims[r-1]
	outer := x.Shape().Size() / (a * b)
	out := append(append([]int(nil), dims[:r-2]...), b, a)
	if a == 1 || b == 1 {
		return Reshape(x, out...)
	}
	if b <= 48 {
		g := x.Graph()
		square := shapes.Make(dtypes.Int32, b, b)
		eye := ConvertDType(Equal(Iota(g, square, 0), Iota(g, square, 1)), x.DType())
		eye = BroadcastToDims(InsertAxes(eye, 0), outer, b, b)
		t := DotGeneral(eye, []int{2}, []int{0}, Reshape(x, outer, a, b), []int{2}, []int{0})
		return Reshape(t, out...)
	}
	t := TransposeAllAxes(Reshape(x, outer, a, b, 1), 0, 2, 1, 3)
	return Reshape(t, out...)
}

// geluConfig is the backend's exact (erf) GELU.
var geluConfig = compute.ActivationConfig{Type: compute.ActivationGelu}

// fusedGELU reports whether x's GELU runs as the backend's fused activation: not in float64 (whose erf
// must be exact, see erf) and only on backends with the fused op and its gradient.
func fusedGELU(x *Node) bool {
	if x.DType() == dtypes.Float64 {
		return false
	}
	ops := x.Graph().Backend().Capabilities().Operations
	return ops[compute.OpTypeFusedActivation] && ops[compute.OpTypeFusedActivationVJP]
}

// geluAct is the exact GELU: one fused pass (and one for its gradient) where fusedGELU, else gelu.
func geluAct(z *Node) *Node {
	if !fusedGELU(z) {
		return gelu(z)
	}
	return BackendFusedActivation(z, geluConfig)
}

// geluPrimeMul returns back * GELU'(z), given h = GELU(z). Where fusedGELU, its value is the backend's
// fused GELU gradient (one pass) and its own gradient is written here: d back = v GELU'(z) (fused
// again) and d z = v back g2(z), with g2(z) = phi(z) (2 - z^2) the second derivative of GELU. The fused gradient op has no gradient
// of its own in GoMLX, so it runs on stopped inputs, and a zero-valued term that reads one element of
// each input keeps the inputs' custom-gradient identities on the path autodiff walks.
func geluPrimeMul(back, z, h *Node) *Node {
	if !fusedGELU(z) {
		return Mul(back, geluPrime(z))
	}
	adjoints := make([]*Node, 2)
	wrap := func(x *Node, i int) *Node {
		return IdentityWithCustomGradient(x, func(x, _ *Node) *Node {
			adj := adjoints[i]
			adjoints[i] = nil
			if adj == nil {
				return ZerosLike(x)
			}
			return adj
		})
	}
	zw, bw := wrap(z, 0), wrap(back, 1)
	value := BackendFusedActivationVJP(StopGradient(h), StopGradient(zw), StopGradient(bw), geluConfig)
	first := func(x *Node) *Node {
		starts := make([]SliceAxisSpec, x.Rank())
		for i := range starts {
			starts[i] = AxisElem(0)
		}
		return Reshape(Slice(x, starts...))
	}
	link := MulScalar(Add(first(zw), first(bw)), 0)
	return IdentityWithCustomGradient(Add(value, link), func(_, v *Node) *Node {
		density := MulScalar(Exp(MulScalar(Square(zw), -0.5)), 1/math.Sqrt(2*math.Pi))
		second := Mul(density, AddScalar(Neg(Square(zw)), 2))
		adjoints[0] = Mul(Mul(v, bw), second)
		adjoints[1] = BackendFusedActivationVJP(h, zw, v, geluConfig)
		return v
	})
}
