package titans

import (
	"math"

	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
)

// customGradientMulti is customGradient for several outputs: forward(in) returns them, and
// backward(in, vs) returns the gradients of the inputs given the outputs' adjoints vs (nil for an output
// the loss does not reach). Reverse autodiff visits every output before any input (they are built
// after the inputs); the first input it visits runs backward.
func customGradientMulti(inputs []*Node, forward func(in []*Node) []*Node, backward func(in, vs []*Node) []*Node) []*Node {
	var vs, adjoints []*Node
	done := false
	wrapped := make([]*Node, len(inputs))
	for i, x := range inputs {
		wrapped[i] = IdentityWithCustomGradient(x, func(x, _ *Node) *Node {
			if !done {
				adjoints, done = backward(wrapped, vs), true
			}
			if adjoints[i] == nil {
				return ZerosLike(x)
			}
			return adjoints[i]
		})
	}
	outs := forward(wrapped)
	vs = make([]*Node, len(outs))
	for j, out := range outs {
		outs[j] = IdentityWithCustomGradient(out, func(_, v *Node) *Node {
			if done { // a new gradient pass
				vs, adjoints, done = make([]*Node, len(outs)), nil, false
			}
			vs[j] = v
			return v
		})
	}
	return outs
}

// projectAll returns x ws[i] for x [..., D] and each weight ws[i] [D, out_i], with a gradient in the
// kernel's layouts: dx = sum_i v_i ws[i]^T, and dws[i] = x^T v_i with x^T [D, B T] swapped once for all
// of them. (Autodiff of a Dense product has the backend transpose x for each weight, element by
// element.)
func projectAll(x *Node, ws []*Node) []*Node {
	r := x.Rank()
	width := x.Shape().Dimensions[r-1]
	rows := x.Shape().Size() / width
	product := func(x, w *Node) *Node { return DotGeneral(x, []int{r - 1}, nil, w, []int{0}, nil) }
	inputs := append([]*Node{x}, ws...)
	return customGradientMulti(inputs,
		func(in []*Node) []*Node {
			outs := make([]*Node, len(ws))
			for i, w := range in[1:] {
				outs[i] = product(in[0], w)
			}
			return outs
		},
		func(in, vs []*Node) []*Node {
			grads := make([]*Node, len(in))
			xT := swapLast(Reshape(in[0], rows, width)) // [D, B T]
			for i, v := range vs {
				if v == nil {
					continue
				}
				w := in[1+i]
				dx := DotGeneral(v, []int{r - 1}, nil, w, []int{1}, nil)
				if grads[0] == nil {
					grads[0] = dx
				} else {
					grads[0] = Add(grads[0], dx)
				}
				grads[1+i] = DotGeneral(xT, []int{1}, nil, Reshape(v, rows, -1), []int{0}, nil)
			}
			return grads
		})
}

// dense is layers.Dense(scope, x, out, false) (the same variable) with projectAll's gradient.
func dense(scope *model.Scope, x *Node, out int) *Node {
	return projectAll(x, []*Node{denseWeight(scope, x, out)})[0]
}

// denseWeight is the variable layers.Dense(scope, x, out, false) uses: "weight" [in, out], uniform in
// +-1/sqrt(in).
func denseWeight(scope *model.Scope, x *Node, out int) *Node {
	in := x.Shape().Dimensions[x.Rank()-1]
	bound := 1 / math.Sqrt(float64(in))
	return scope.WithInitializer(initializer.RandomUniformFn(scope, -bound, bound)).
		VariableWithShape("weight", shapes.Make(x.DType(), in, out)).NodeValue(x.Graph())
}

// gateParams are the variables of LMM.gate: "weight" [D, H] ~ N(0, 1/D) and "bias" [H] = 0.
func (m *LMM) gateParams(scope *model.Scope, x *Node) (w, b *Node) {
	g, dtype := x.Graph(), x.DType()
	w = scope.WithInitializer(initializer.RandomNormalFn(scope, 1/math.Sqrt(float64(m.DModel)))).
		VariableWithShape("weight", shapes.Make(dtype, m.DModel, m.Config.Heads)).NodeValue(g)
	b = scope.WithInitializer(initializer.Zero).VariableWithShape("bias", shapes.Make(dtype, m.Config.Heads)).NodeValue(g)
	return w, b
}
