package titans

import (
	"fmt"

	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
)

// State is the fast-weight state of the neural memory: per memory layer l, the weights W[l] and the
// momentum ("surprise") S[l], each [B, H, in_l, out_l]. The memory maps a row vector x to
// M(x) = z_L with z_1 = x W_1 and z_l = SiLU(z_{l-1}) W_l.
type State struct {
	W, S []*Node
}

// Gates are the per-token, per-head data-dependent gates, each [B, H, T]: Theta the inner learning
// rate, Eta the momentum decay, Alpha the forgetting rate (paper Eqs. 13-14). Delta, when not nil, is
// the Huber threshold per token (Yaad's data-dependent delta_t); nil means the fixed
// OpConfig.Bias.Delta.
type Gates struct {
	Theta, Eta, Alpha *Node
	Delta             *Node
}

// OpConfig configures the memory ops.
type OpConfig struct {
	ChunkSize int     // tokens per inner mini-batch; all gradients of a chunk are taken at its start weights
	GradClamp float64 // per-token clamp of the inner-gradient Frobenius norm (all layers jointly); 0 = off
	// Autodiff takes the inner gradient factors with graph.Gradient instead of the closed form (both are
	// equal; the closed form is the default, the autodiff path exists to check it).
	Autodiff bool
	// Bias is the inner objective and Retention the map from the accumulated steps to the weights
	// (miras.go); their zero values are Titans' l2 loss and (1 - alpha) decay.
	Bias      AttentionalBias
	Retention Retention
}

// mlpForward evaluates the memory with weights ws [B, H, in_l, out_l] on x [B, H, n, in_1]. It returns
// the input of every layer (ps[0] = x, ps[l] = SiLU(zs[l-1])) and every pre-activation zs[l]; the output
// is zs[L-1].
func mlpForward(ws []*Node, x *Node) (ps, zs []*Node) {
	ps, zs, _ = mlpForwardSig(ws, x)
	return ps, zs
}

// mlpForwardSig is mlpForward that also returns sigmoid(zs[l]) for the hidden layers (sigs[l] for
// l < L-1), so the backward pass reuses them.
func mlpForwardSig(ws []*Node, x *Node) (ps, zs, sigs []*Node) {
	h := x
	for l, w := range ws {
		if l > 0 {
			sig := Sigmoid(zs[l-1])
			sigs = append(sigs, sig)
			h = Mul(zs[l-1], sig)
		}
		ps = append(ps, h)
		zs = append(zs, mm(h, w))
	}
	return ps, zs, sigs
}

func silu(z *Node) *Node { return layers.SiLU(z) }

// siluPrime is d SiLU(z)/dz = s (1 + z (1 - s)), given s = sigmoid(z).
func siluPrime(z, s *Node) *Node {
	return Mul(s, OnePlus(Mul(z, OneMinus(s))))
}

// gradFactors returns, for keys k and values v [B, H, n, Dh] and weights ws, the rank-1 factors of the
// per-token inner gradient: grad_{W_l} ||M(k_t) - v_t||^2 = ps[l]_t^T rs[l]_t (an outer product
// [in_l, out_l]), and the per-token loss [B, H, n].
//
// Closed form (backpropagation through the MLP): rs[L-1] = 2 (z_L - v), and
// rs[l-1] = (rs[l] W_l^T) * SiLU'(zs[l-1]). For L_M = 1 this is grad_W = 2 k^T (k W - v).
func gradFactors(ws []*Node, k, v *Node, autodiff bool) (ps, rs []*Node, loss *Node) {
	return biasGradFactors(ws, k, v, AttentionalBias{}, nil, autodiff)
}

// biasGradFactors is gradFactors for the inner objective bias (delta: the per-token Huber threshold
// [B, H, n] or nil): only the last layer's factor changes, rs[L-1] = dl/dM(k)
// (AttentionalBias.lossAndResidualGrad); the l2 bias is gradFactors' own code.
func biasGradFactors(ws []*Node, k, v *Node, bias AttentionalBias, delta *Node, autodiff bool) (ps, rs []*Node, loss *Node) {
	ps, zs, sigs := mlpForwardSig(ws, k)
	last := len(ws) - 1
	residual := Sub(zs[last], v)
	var rLast *Node
	if bias.isL2() {
		loss, rLast = ReduceSum(Square(residual), -1), MulScalar(residual, 2)
	} else {
		loss, rLast = bias.lossAndResidualGrad(residual, delta)
	}
	if autodiff {
		return ps, Gradient(ReduceAllSum(loss), zs...), loss
	}
	rs = make([]*Node, len(ws))
	rs[last] = rLast
	for l := last; l > 0; l-- {
		rs[l-1] = Mul(mmT(rs[l], ws[l]), siluPrime(zs[l-1], sigs[l-1]))
	}
	return ps, rs, loss
}

// perTokenGradients returns grad_{W_l} ||M(k_t) - v_t||^2 for every token by graph.Gradient, as full
// matrices [B, H, n, in_l, out_l] (the weights are broadcast per token so each token has its own copy).
// It is the reference the rank-1 closed form is checked against, and what the naive op uses.
func perTokenGradients(ws []*Node, k, v *Node) []*Node {
	return biasPerTokenGradients(ws, k, v, AttentionalBias{}, nil)
}

// biasPerTokenGradients is perTokenGradients of the inner objective bias (delta as in biasGradFactors):
// graph.Gradient of the bias's loss, independent of its closed-form residual gradient.
func biasPerTokenGradients(ws []*Node, k, v *Node, bias AttentionalBias, delta *Node) []*Node {
	n := k.Shape().Dimensions[2]
	perToken := make([]*Node, len(ws))
	h := k
	for l, w := range ws {
		d := w.Shape().Dimensions
		perToken[l] = BroadcastToDims(InsertAxes(w, 2), d[0], d[1], n, d[2], d[3])
		if l > 0 {
			h = silu(h)
		}
		h = Einsum("bhni,bhnio->bhno", h, perToken[l])
	}
	var loss *Node
	if bias.isL2() {
		loss = ReduceAllSum(Square(Sub(h, v)))
	} else {
		loss = ReduceAllSum(bias.loss(Sub(h, v), delta))
	}
	return Gradient(loss, perToken...)
}

// clampScale returns the per-token factor min(1, c / ||g_t||) [B, H, n] that clamps the joint norm of
// the token's inner gradient over all layers to c, given its squared norm. It is folded into theta_t.
func clampScale(sqNorm *Node, c float64) *Node {
	return Div(Scalar(sqNorm.Graph(), sqNorm.DType(), c), Sqrt(MaxScalar(sqNorm, c*c)))
}

// clampTheta folds the per-token gradient-norm clamp into theta and returns the 0/1 clamped flags.
func clampTheta(theta *Node, ps, rs []*Node, c float64) (clampedTheta, flags *Node) {
	if c <= 0 {
		return theta, ZerosLike(theta)
	}
	scale := clampScale(factorSqNorm(ps, rs), c)
	return Mul(theta, scale), ConvertDType(LessThan(scale, OnesLike(scale)), theta.DType())
}

// factorSqNorm is the squared Frobenius norm of each token's rank-1 gradients, summed over layers:
// ||p^T r||_F^2 = ||p||^2 ||r||^2.
func factorSqNorm(ps, rs []*Node) *Node {
	var total *Node
	for l := range ps {
		term := Mul(ReduceSum(Square(ps[l]), -1), ReduceSum(Square(rs[l]), -1))
		if total == nil {
			total = term
		} else {
			total = Add(total, term)
		}
	}
	return total
}

// logFloor is the smallest gate value whose log is taken: gates of exactly 0 (eta = 0 or alpha = 1)
// would give log 0 = -inf and NaN differences; below the floor a gate acts as the floor, a relative
// change of the result of at most the floor itself.
func logFloor(dtype dtypes.DType) float64 {
	if dtype == dtypes.Float64 {
		return 1e-300
	}
	return 1e-30
}

// checkInputs validates q, k, v, the per-token gates listed (all three in the paper mode, theta alone in
// the tp mode, whose eta and alpha are per chunk) and the state.
func checkInputs(op string, q, k, v *Node, perToken []*Node, st State) {
	dims := q.Shape().Dimensions
	if q.Rank() != 4 || !k.Shape().Equal(q.Shape()) || !v.Shape().Equal(q.Shape()) {
		panic(fmt.Errorf("titans.%s: want q, k, v [B, H, T, Dh] of one shape, got %s, %s, %s", op, q.Shape(), k.Shape(), v.Shape()))
	}
	for _, gate := range perToken {
		if gd := gate.Shape().Dimensions; gate.Rank() != 3 || gd[0] != dims[0] || gd[1] != dims[1] || gd[2] != dims[2] {
			panic(fmt.Errorf("titans.%s: want gates [B, H, T] = [%d %d %d], got %s", op, dims[0], dims[1], dims[2], gate.Shape()))
		}
	}
	if len(st.W) == 0 || len(st.W) != len(st.S) {
		panic(fmt.Errorf("titans.%s: state has %d weight and %d momentum tensors, want the same number >= 1", op, len(st.W), len(st.S)))
	}
	for l := range st.W {
		if !st.W[l].Shape().Equal(st.S[l].Shape()) {
			panic(fmt.Errorf("titans.%s: layer %d weight %s and momentum %s differ", op, l, st.W[l].Shape(), st.S[l].Shape()))
		}
	}
}

// perTokenGates lists the paper-mode gates of every token: theta, eta, alpha, and delta when set.
func perTokenGates(g Gates) []*Node {
	out := []*Node{g.Theta, g.Eta, g.Alpha}
	if g.Delta != nil {
		out = append(out, g.Delta)
	}
	return out
}

// chunkBounds splits [0, T) into chunks of size c from the start; the last may be shorter.
func chunkBounds(time, c int) [][2]int {
	var out [][2]int
	for start := 0; start < time; start += c {
		out = append(out, [2]int{start, min(start+c, time)})
	}
	return out
}
