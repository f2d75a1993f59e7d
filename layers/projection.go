package layers

import (
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/layers/activation"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
)

// Projection is Dense without bias (the same variable "weight" [in, out], initialisation and values)
// for x [B, T, in] read through xs (a Share of x, so every projection of one input reads it through one
// identity), given also xT = FeaturesFirst(x) [in, B, T]: the weight gradient xT v then needs no
// transpose, so the projections of one input share one transpose of it, where autodiff of Dense
// transposes x (and the adjoint) per projection on the Go backend.
func Projection(scope *model.Scope, xs *Shared, xT *Node, out int) *Node {
	x := xs.Node()
	in := x.Shape().Dimensions[2]
	bound := 1 / math.Sqrt(float64(in))
	w := scope.WithInitializer(initializer.RandomUniformFn(scope, -bound, bound)).
		VariableWithShape("weight", shapes.Make(x.DType(), in, out)).NodeValue(x.Graph())
	return ProjectWith(xs, xT, w)
}

// ProjectionOf is Projection of an x [B, T, in] that nothing else projects: its own Share and
// FeaturesFirst (the layers' output projections).
func ProjectionOf(scope *model.Scope, x *Node, out int) *Node {
	xs := Share(x)
	return Projection(scope, xs, FeaturesFirst(xs.Node()), out)
}

// ProjectWith is Projection's product x w for a given weight w [in, out], with its written-out gradient.
func ProjectWith(xs *Shared, xT, w *Node) *Node {
	return CustomGradient([]*Node{xs.Node(), w},
		func(in []*Node) *Node { return DotGeneral(in[0], []int{2}, nil, in[1], []int{0}, nil) },
		func(_ []*Node, v *Node) []*Node {
			return []*Node{
				DotGeneral(v, []int{2}, nil, w, []int{1}, nil),        // v W^T: [B, T, in]
				DotGeneral(xT, []int{1, 2}, nil, v, []int{0, 1}, nil), // x^T v: [in, out]
			}
		}, xs)
}

// FeaturesFirst transposes x [B, T, D] to [D, B, T] for values no gradient flows through (the
// projections' xT), as the product I x^T: the Go backend's matmul reads x transposed at matmul speed,
// about 3.2 ns per element at [8, 1024, 256] against 4.6 for its generic transpose. Every element is
// 1 * x plus zeros, so the values are x's exactly (for finite x).
func FeaturesFirst(x *Node) *Node {
	return DotGeneral(IdentityMatrix(x, x.Shape().Dimensions[2]), []int{1}, nil, x, []int{2}, nil)
}

// IdentityMatrix is the n x n identity in x's graph and dtype.
func IdentityMatrix(x *Node, n int) *Node {
	shape := shapes.Make(dtypes.Int32, n, n)
	return ConvertDType(Equal(Iota(x.Graph(), shape, 0), Iota(x.Graph(), shape, 1)), x.DType())
}

// FusedSiLU is x sigmoid(x) as GoMLX's activation.Swish: on a backend with a fused activation (the Go
// backend) one SIMD pass forward and one for the gradient (FusedActivationVJP), where SiLU (x *
// Sigmoid(x)) takes two forward and about four under autodiff; on other backends (XLA) the
// decomposed x * Sigmoid(x), which the compiler fuses itself. The Go backend's Logistic is within
// 1.2e-14 relative of 1 / (1 + exp(-x)) in float64. Its gradient is not differentiable again on the Go
// backend, so code that differentiates twice (Titans' inner loop) keeps SiLU.
func FusedSiLU(x *Node) *Node { return activation.Swish(x) }

// SiLUL2NormLast is L2NormLast(FusedSiLU(x)) with the normalisation's gradient written out: for
// y = silu(x) and z = y / n, n = sqrt(sum y^2 + eps) over the last axis, dy = (v - z sum(v z)) / n (five
// passes over x's size, where autodiff of the division, square root and square takes about twice as
// many); silu's own gradient is the fused one.
func SiLUL2NormLast(x *Node, eps float64) *Node {
	var norm, z *Node
	z = CustomGradient([]*Node{FusedSiLU(x)},
		func(in []*Node) *Node {
			norm = Sqrt(AddScalar(ReduceAndKeep(Square(in[0]), ReduceSum, -1), eps))
			return Div(in[0], norm)
		},
		func(_ []*Node, v *Node) []*Node {
			along := ReduceAndKeep(Mul(v, z), ReduceSum, -1)
			return []*Node{Div(Sub(v, Mul(z, along)), norm)}
		})
	return z
}
