package deltanet

import (
	"fmt"
	"math"

	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// keyNormEps is the eps of the L2 normalisation of q and k (flash-linear-attention's value).
const keyNormEps = 1e-6

// Layer is a gated delta rule Mixer (or, by its switches, DeltaNet, gated linear attention or linear
// attention). Its carried state is the fast-weight matrix S and, with short convolutions, their caches.
type Layer struct {
	cfg    Config
	dModel int
}

var _ layers.DocumentMixer = (*Layer)(nil)

// New returns a layer for inputs of width dModel, or the error Validate reports.
func New(cfg Config, dModel int) (*Layer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dModel < 1 {
		return nil, fmt.Errorf("deltanet: d_model = %d: must be >= 1", dModel)
	}
	return &Layer{cfg: cfg, dModel: dModel}, nil
}

// Config returns the layer's configuration.
func (l *Layer) Config() Config { return l.cfg }

// StateSpecs lists the carried state: "S" [B, HV, d_k, d_v] and, with short convolutions, the last
// conv_size-1 projected inputs "conv_q", "conv_k" [B, conv_size-1, H*d_k] and "conv_v"
// [B, conv_size-1, HV*d_v] (HV = ValueHeads: H without grouped value heads).
func (l *Layer) StateSpecs(batch int, dtype dtypes.DType) []layers.StateSpec {
	h, hv, dk, dv := l.cfg.Heads, l.cfg.ValueHeads(), l.cfg.HeadDimK, l.cfg.HeadDimV()
	specs := []layers.StateSpec{{Name: "S", Shape: shapes.Make(dtype, batch, hv, dk, dv)}}
	if l.cfg.UseShortConv {
		w := l.cfg.ConvSize - 1
		specs = append(specs,
			layers.StateSpec{Name: "conv_q", Shape: shapes.Make(dtype, batch, w, h*dk)},
			layers.StateSpec{Name: "conv_k", Shape: shapes.Make(dtype, batch, w, h*dk)},
			layers.StateSpec{Name: "conv_v", Shape: shapes.Make(dtype, batch, w, hv*dv)})
	}
	return specs
}

// Apply maps x [B, T, dModel] and the state (nil = start of sequence) to y [B, T, dModel] and the next
// state. A single token (T = 1) takes the recurrent step whatever the mode: that is the decode step.
//
// Variables, under scope: q_proj, k_proj, v_proj, g_proj, o_proj (Dense, no bias); q_conv, k_conv,
// v_conv (short convs); b_proj (with delta); a_proj, A_log, dt_bias (with gate); o_norm (RMSNorm).
func (l *Layer) Apply(scope *model.Scope, x *Node, state []*Node) (y *Node, next []*Node) {
	return l.ApplyDocuments(scope, x, state, nil)
}

// ApplyDocuments implements layers.DocumentMixer: Apply over rows packing documents, docStart [B, T]
// (nil: Apply). The short convolutions and the recurrence restart at every start (NaiveDocuments,
// ChunkedDocuments, shortConv); projections, gates and the output norm are per token.
func (l *Layer) ApplyDocuments(scope *model.Scope, x *Node, state []*Node, docStart *Node) (y *Node, next []*Node) {
	dims := x.Shape().Dimensions
	if len(dims) != 3 || dims[2] != l.dModel {
		panic(fmt.Errorf("deltanet layer: want x [batch, time, %d], got %s", l.dModel, x.Shape()))
	}
	batch, time := dims[0], dims[1]
	state = layers.StateOrZero(x.Graph(), "deltanet layer", l.StateSpecs(batch, x.DType()), state)
	// Every projection reads x through one identity (layers.Share; one per projection would each copy x).
	xs := layers.Share(x)
	xT := layers.FeaturesFirst(xs.Node()) // [D, B, T], for the projections' weight gradients only
	q, k, v, caches := l.features(scope, xs, xT, state[1:], docStart)
	beta, g := l.writeStrength(scope, xs, xT), l.logDecay(scope, xs, xT)
	scale := 1 / math.Sqrt(float64(l.cfg.HeadDimK))
	var o, s *Node
	if time == 1 || l.cfg.Mode == ModeNaive {
		o, s = NaiveDocuments(q, k, v, beta, g, state[0], docStart, scale, l.cfg.Options())
	} else {
		// A chunk longer than the input would only add padding.
		o, s = ChunkedDocuments(q, k, v, beta, g, state[0], docStart, scale, min(l.cfg.ChunkSize, time), l.cfg.Options())
	}
	return l.output(scope, xs, xT, o), append([]*Node{s}, caches...)
}

// features returns q, k [B, T, HV, d_k] (L2-normalised) and v [B, T, HV, d_v]: projections, then the
// short causal convolutions (their caches carried in the state), then SiLU. With grouped value heads the
// H q/k heads are repeated for the HV/H value heads of their group (groupHeads).
func (l *Layer) features(scope *model.Scope, x *layers.Shared, xT *Node, caches []*Node, docStart *Node) (q, k, v *Node, next []*Node) {
	dk, dv := l.cfg.HeadDimK, l.cfg.HeadDimV()
	dims := x.Node().Shape().Dimensions
	// The features are split into heads before the activations: a Reshape of a value that the
	// activation's gradient also reads would be a copy on the Go backend.
	feature := func(name string, h, width, index int, activation func(*Node) *Node) *Node {
		z := layers.Projection(scope.In("%s_proj", name), x, xT, h*width)
		if l.cfg.UseShortConv {
			var cache *Node
			z, cache = layers.ShortConvDocuments(scope.In("%s_conv", name), z, l.cfg.ConvSize, caches[index], docStart)
			next = append(next, cache)
		}
		return activation(Reshape(z, dims[0], dims[1], h, width))
	}
	keyFeature := func(z *Node) *Node { return layers.SiLUL2NormLast(z, keyNormEps) }
	q = feature("q", l.cfg.Heads, dk, 0, keyFeature)
	k = feature("k", l.cfg.Heads, dk, 1, keyFeature)
	v = feature("v", l.cfg.ValueHeads(), dv, 2, layers.FusedSiLU)
	group := l.cfg.ValueHeads() / l.cfg.Heads
	return groupHeads(q, group), groupHeads(k, group), v, next
}

// groupHeads repeats each head of x [B, T, H, D] for group consecutive value heads: [B, T, H*group, D],
// head j = x's head j / group (fla's GVA mapping). group 1 returns x itself.
func groupHeads(x *Node, group int) *Node {
	if group == 1 {
		return x
	}
	d := x.Shape().Dimensions
	x = BroadcastToDims(InsertAxes(x, 3), d[0], d[1], d[2], group, d[3])
	return Reshape(x, d[0], d[1], d[2]*group, d[3])
}

// writeStrength is beta_t = sigmoid(W_b x_t) [B, T, HV], doubled with allow_neg_eigval so the transition
// I - beta k k^T can have a negative eigenvalue. Without the delta rule beta is unused: zeros.
func (l *Layer) writeStrength(scope *model.Scope, xs *layers.Shared, xT *Node) *Node {
	x := xs.Node()
	dims := x.Shape().Dimensions
	if !l.cfg.Delta {
		return Zeros(x.Graph(), shapes.Make(x.DType(), dims[0], dims[1], l.cfg.ValueHeads()))
	}
	beta := Sigmoid(layers.Projection(scope.In("b_proj"), xs, xT, l.cfg.ValueHeads()))
	if l.cfg.AllowNegEigval {
		beta = MulScalar(beta, 2)
	}
	return beta
}

// logDecay is g_t = -exp(A_log) softplus(W_a x_t + dt_bias) [B, T, HV] (Mamba2's discretised decay,
// always < 0); without the gate, zeros.
func (l *Layer) logDecay(scope *model.Scope, xs *layers.Shared, xT *Node) *Node {
	x := xs.Node()
	dims := x.Shape().Dimensions
	if !l.cfg.Gate {
		return Zeros(x.Graph(), shapes.Make(x.DType(), dims[0], dims[1], l.cfg.ValueHeads()))
	}
	perHead := shapes.Make(x.DType(), l.cfg.ValueHeads())
	aLog := scope.WithInitializer(ALogInit(scope)).VariableWithShape("A_log", perHead).NodeValue(x.Graph())
	dtBias := scope.WithInitializer(DTBiasInit(scope)).VariableWithShape("dt_bias", perHead).NodeValue(x.Graph())
	a := layers.Projection(scope.In("a_proj"), xs, xT, l.cfg.ValueHeads())
	aLog, dtBias = ExpandLeftToRank(aLog, 3), ExpandLeftToRank(dtBias, 3) // broadcast over [B, T]
	return Neg(Mul(Exp(aLog), Softplus(Add(a, dtBias))))
}

// output is W_o (RMSNorm_per_head(o) * SiLU(W_g x)), o: [B, T, HV, d_v] -> [B, T, dModel].
func (l *Layer) output(scope *model.Scope, xs *layers.Shared, xT, o *Node) *Node {
	dims := o.Shape().Dimensions
	gate := Reshape(layers.Projection(scope.In("g_proj"), xs, xT, dims[2]*dims[3]), dims...)
	o = Mul(layers.RMSNorm(scope.In("o_norm"), o, l.cfg.NormEps), layers.FusedSiLU(gate))
	return layers.ProjectionOf(scope.In("o_proj"), Reshape(o, dims[0], dims[1], dims[2]*dims[3]), l.dModel)
}

// ALogInit draws A ~ U(0, 16) per head and returns log A. A is floored at 1e-4 so a draw of exactly 0
// cannot give -Inf.
func ALogInit(scope *model.Scope) model.VariableInitializer {
	return func(g *Graph, shape shapes.Shape) *Node {
		return Log(MaxScalar(MulScalar(scope.RandomUniform(g, shape), 16), 1e-4))
	}
}

// DTBiasInit draws dt = exp(U(log 1e-3, log 1e-1)), floored at 1e-4, and returns softplus^-1(dt) =
// dt + log(1 - exp(-dt)), so softplus(dt_bias) = dt at initialisation.
func DTBiasInit(scope *model.Scope) model.VariableInitializer {
	return func(g *Graph, shape shapes.Shape) *Node {
		lo, hi := math.Log(1e-3), math.Log(1e-1)
		dt := Exp(AddScalar(MulScalar(scope.RandomUniform(g, shape), hi-lo), lo))
		dt = MaxScalar(dt, 1e-4)
		return Add(dt, Log(Neg(Expm1(Neg(dt)))))
	}
}

// ChunksPerGraph is the number of recurrence steps a call over time tokens unrolls at graph-build time
// (the trainer prints it: graphs grow with it).
func (l *Layer) ChunksPerGraph(time int) int {
	if time == 1 || l.cfg.Mode == ModeNaive {
		return time
	}
	chunk := min(l.cfg.ChunkSize, time)
	return (time + chunk - 1) / chunk
}
