package titans

import (
	"math"

	. "github.com/gomlx/gomlx/core/graph"
)

// Attentional biases (Config.AttentionalBias) and retention gates (Config.Retention) of the Miras
// framework (Behrouz, Razaviyayn, Zhong, Mirrokni; arXiv 2504.13173); doc.go gives the equations.
const (
	BiasL2    = "l2"    // ||M(k) - v||^2 (Titans; the default, also when empty)
	BiasLp    = "lp"    // sum_j |M(k) - v|_j^p with a smooth |x| (Eq. 10-11)
	BiasHuber = "huber" // l2 inside ||M(k) - v|| <= delta, delta-scaled l1 outside (Eq. 16, Yaad)

	RetentionL2         = "l2"          // W_t = (1 - alpha_t) W_{t-1} + S_t (Titans; the default, also when empty)
	RetentionLq         = "lq"          // W = A / ||A||_q^{q-2} (Eq. 24, Moneta)
	RetentionKL         = "kl"          // W = c softmax(A) over each column (Eq. 21 / 27, Memora)
	RetentionElasticNet = "elastic_net" // W = soft-threshold_{l1}(A) (Eq. 23)
)

// smoothEps is the epsilon of the smooth |x| = sqrt(x^2 + eps) the paper uses for the l_p bias, the
// Huber bias's l1 branch and the l_q norm (its Remark on stabilising approximations: eps = 1e-6).
const smoothEps = 1e-6

// AttentionalBias is the memory's inner objective l(M; k, v) of one token (Kind "" is l2).
type AttentionalBias struct {
	Kind  string
	P     float64 // lp: the exponent p >= 1
	Delta float64 // huber: the fixed threshold, used when the gates carry no per-token Delta
}

// Retention is how the memory weights W follow from the accumulator A that the decayed gradient steps
// build (Kind "" is l2: W = A).
type Retention struct {
	Kind string
	Q    float64 // lq: the exponent q > 1
	L1   float64 // elastic_net: the l1 weight gamma >= 0 (the soft threshold)
	// ExactReads makes every token read phi(A_t) exactly, its weights built as a matrix (chunkStepMapped,
	// slow); false reads the chunk-boundary form, linear in A_t inside a chunk (doc.go, miras_chunk.go).
	ExactReads bool
}

func (b AttentionalBias) isL2() bool { return b.Kind == "" || b.Kind == BiasL2 }
func (r Retention) isL2() bool       { return r.Kind == "" || r.Kind == RetentionL2 }

// lossAndResidualGrad returns, for residuals e = M(k) - v [B, H, n, Dh] and the per-token Huber
// threshold delta [B, H, n] (nil: the fixed b.Delta), the per-token loss [B, H, n] and its gradient
// with respect to M(k), r = dl/dM(k) [B, H, n, Dh] -- the last layer's factor of the closed-form inner
// gradient (gradFactors).
//
//	l2:    l = sum e^2,                                   r = 2 e
//	lp:    l = sum ((e^2 + eps)^{p/2} - eps^{p/2}),       r = p e (e^2 + eps)^{(p-2)/2}
//	huber: ||e|| <= delta: l = sum e^2,                   r = 2 e
//	       otherwise:      l = 2 delta sum |e|_s - delta^2, r = 2 delta e / |e|_s,  |e|_s = sqrt(e^2 + eps)
func (b AttentionalBias) lossAndResidualGrad(e, delta *Node) (loss, r *Node) {
	switch b.Kind {
	case BiasLp:
		smooth := AddScalar(Square(e), smoothEps)
		loss = ReduceSum(AddScalar(powScalar(smooth, b.P/2), -math.Pow(smoothEps, b.P/2)), -1)
		return loss, MulScalar(Mul(e, powScalar(smooth, (b.P-2)/2)), b.P)
	case BiasHuber:
		delta = b.threshold(e, delta)                 // [B, H, n]
		absS := Sqrt(AddScalar(Square(e), smoothEps)) // |e|_s
		sq := ReduceSum(Square(e), -1)                // ||e||^2
		inside := LessOrEqual(sq, Square(delta))      // [B, H, n]
		outer := Sub(MulScalar(Mul(delta, ReduceSum(absS, -1)), 2), Square(delta))
		loss = Where(inside, sq, outer)
		insideE := BroadcastToDims(InsertAxes(inside, -1), e.Shape().Dimensions...)
		outerR := MulScalar(Mul(InsertAxes(delta, -1), Div(e, absS)), 2)
		return loss, Where(insideE, MulScalar(e, 2), outerR)
	}
	return ReduceSum(Square(e), -1), MulScalar(e, 2)
}

// loss is lossAndResidualGrad's loss alone (the references differentiate it with graph.Gradient).
func (b AttentionalBias) loss(e, delta *Node) *Node {
	loss, _ := b.lossAndResidualGrad(e, delta)
	return loss
}

// threshold returns the per-token Huber threshold [B, H, n]: delta when given, else the fixed b.Delta.
func (b AttentionalBias) threshold(e, delta *Node) *Node {
	if delta != nil {
		return delta
	}
	dims := e.Shape().Dimensions
	return BroadcastToDims(Scalar(e.Graph(), e.DType(), b.Delta), dims[:len(dims)-1]...)
}

// weights maps the accumulators A [..., in, out] of every memory layer to the memory weights W; the l2
// retention returns acc itself (the Titans path, untouched).
func (r Retention) weights(acc []*Node) []*Node {
	if r.isL2() {
		return acc
	}
	out := make([]*Node, len(acc))
	for l, a := range acc {
		out[l] = r.weight(a)
	}
	return out
}

// weight is the retention map of one accumulator a [..., in, out], per head (and token) over the whole
// matrix of the layer:
//
//	lq:          W = A / (sum_ij (A_ij^2 + eps)^{q/2})^{(q-2)/q}    (= A for q = 2)
//	kl:          W = sqrt(in) softmax(A) over in, per output column  (each column a distribution times c)
//	elastic_net: W = A - clip(A, -gamma, gamma) = sign(A) max(0, |A| - gamma)   (= A for gamma = 0)
func (r Retention) weight(a *Node) *Node {
	rank := a.Rank()
	switch r.Kind {
	case RetentionLq:
		return Mul(a, r.lqScale(a))
	case RetentionKL:
		in := a.Shape().Dimensions[rank-2]
		return MulScalar(Softmax(a, rank-2), math.Sqrt(float64(in)))
	case RetentionElasticNet:
		return Sub(a, ClipScalar(a, -r.L1, r.L1))
	}
	return a
}

// lqScale is the lq retention's factor 1 / ||A||_q^{q-2} = (sum_ij (A_ij^2 + eps)^{q/2})^{-(q-2)/q} of
// accumulators a [..., in, out], per head: [..., 1, 1].
func (r Retention) lqScale(a *Node) *Node {
	return powScalar(r.lqPower(a), -(r.Q-2)/r.Q)
}

// lqPower is ||A||_q^q = sum_ij (A_ij^2 + eps)^{q/2} of accumulators a [..., in, out]: [..., 1, 1].
func (r Retention) lqPower(a *Node) *Node {
	rank := a.Rank()
	return ReduceAndKeep(powScalar(AddScalar(Square(a), smoothEps), r.Q/2), ReduceSum, rank-2, rank-1)
}

// powScalar is x^p for x > 0, by the cheaper ops for the exponents the defaults use (Moneta's p = 3,
// q = 4 give 1/2, 1, 2 and -1/2): the Go backend's Pow is a scalar loop.
func powScalar(x *Node, p float64) *Node {
	switch p {
	case 0:
		return OnesLike(x)
	case 1:
		return x
	case 2:
		return Square(x)
	case 0.5:
		return Sqrt(x)
	case -0.5:
		return Inverse(Sqrt(x))
	case -1:
		return Inverse(x)
	}
	return PowScalar(x, p)
}
