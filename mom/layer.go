package mom

import (
	"fmt"
	"math"

	"github.com/engramlx/engram/deltanet"
	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
)

// keyNormEps is the eps of the L2 normalisation of q and k (deltanet's value).
const keyNormEps = 1e-6

// LoadVariable is the name of the non-trainable variable [M] (float64), under the layer's scope, that
// every training graph overwrites with the call's per-memory load f: a trainer logs it by reading the
// variable after a step (see Introspector for the in-graph route).
const LoadVariable = "router_load"

// Introspector is implemented by Layer: ApplyWithStats is Apply plus the router's statistics
// (Stats.Metrics names them), the in-graph way for a trainer or eval loop to log the per-memory load.
type Introspector interface {
	ApplyWithStats(scope *model.Scope, x *Node, state []*Node) (y *Node, next []*Node, stats Stats)
}

// Layer is a Mixture-of-Memories Mixer over the gated delta rule family. Its carried state is every
// memory's fast-weight matrix (one tensor, memory-major heads) and the short convolutions' caches.
type Layer struct {
	cfg    Config
	dModel int
}

var (
	_ layers.DocumentMixer = (*Layer)(nil)
	_ Introspector         = (*Layer)(nil)
)

// New returns a layer for inputs of width dModel, or the error Validate reports.
func New(cfg Config, dModel int) (*Layer, error) {
	cfg.Memory = cfg.Memory.Resolved() // memory.gate / memory.delta from a config file
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dModel < 1 {
		return nil, fmt.Errorf("mom: d_model = %d: must be >= 1", dModel)
	}
	return &Layer{cfg: cfg, dModel: dModel}, nil
}

// Config returns the layer's configuration.
func (l *Layer) Config() Config { return l.cfg }

// ChunksPerGraph is the number of recurrence steps a call over time tokens unrolls.
func (l *Layer) ChunksPerGraph(time int) int {
	if time == 1 || l.cfg.Memory.Mode == deltanet.ModeNaive {
		return time
	}
	chunk := min(l.cfg.Memory.ChunkSize, time)
	return (time + chunk - 1) / chunk
}

// StateSpecs lists the carried state: "S" [B, E*H, d_k, d_v] (head e*H + h is head h of memory e; the
// shared memory, when on, is e = M) and, with short convolutions, the last conv_size-1 projected inputs
// "conv_q" [B, conv_size-1, H*d_k], "conv_k" [B, conv_size-1, E*H*d_k], "conv_v" [B, conv_size-1, E*H*d_v].
// With M = 1 and no shared memory these are a gated_deltanet layer's specs.
func (l *Layer) StateSpecs(batch int, dtype dtypes.DType) []layers.StateSpec {
	mem := l.cfg.Memory
	e, h, dk, dv := l.cfg.slots(), mem.Heads, mem.HeadDimK, mem.HeadDimV()
	specs := []layers.StateSpec{{Name: "S", Shape: shapes.Make(dtype, batch, e*h, dk, dv)}}
	if mem.UseShortConv {
		w := mem.ConvSize - 1
		specs = append(specs,
			layers.StateSpec{Name: "conv_q", Shape: shapes.Make(dtype, batch, w, h*dk)},
			layers.StateSpec{Name: "conv_k", Shape: shapes.Make(dtype, batch, w, e*h*dk)},
			layers.StateSpec{Name: "conv_v", Shape: shapes.Make(dtype, batch, w, e*h*dv)})
	}
	return specs
}

// Apply maps x [B, T, dModel] and the state (nil = start of sequence) to y [B, T, dModel] and the next
// state. In a training graph it also pools its router rows with the other MoM layers of the graph so
// that GoMLX's regularization loss carries aux_loss_weight * PooledBalanceLoss (FLA's loss over all
// layers), and records the per-memory load in LoadVariable.
//
// Variables, under scope: r_proj (router, M > 1); q_proj, k_proj, v_proj, g_proj, o_proj (Dense, no
// bias; k/v/b/a projections hold all E memories side by side); q_conv, k_conv, v_conv (one kernel per
// feature, shared by the memories); b_proj (with delta); a_proj, A_log, dt_bias (with gate; A_log and
// dt_bias shared); o_norm (RMSNorm).
func (l *Layer) Apply(scope *model.Scope, x *Node, state []*Node) (y *Node, next []*Node) {
	y, next, _ = l.applyWithStats(scope, x, state, nil)
	return y, next
}

// ApplyDocuments implements layers.DocumentMixer: Apply over rows packing documents, docStart [B, T]
// (nil: Apply). Every memory (and the shared one) restarts at each document start, whether the start
// token is routed to it or not, and the short convolutions restart there too; routing is per token.
func (l *Layer) ApplyDocuments(scope *model.Scope, x *Node, state []*Node, docStart *Node) (y *Node, next []*Node) {
	y, next, _ = l.applyWithStats(scope, x, state, docStart)
	return y, next
}

// ApplyWithStats implements Introspector: Apply plus the router's statistics over the call.
func (l *Layer) ApplyWithStats(scope *model.Scope, x *Node, state []*Node) (y *Node, next []*Node, stats Stats) {
	return l.applyWithStats(scope, x, state, nil)
}

func (l *Layer) applyWithStats(scope *model.Scope, x *Node, state []*Node, docStart *Node) (y *Node, next []*Node, stats Stats) {
	dims := x.Shape().Dimensions
	if len(dims) != 3 || dims[2] != l.dModel {
		panic(fmt.Errorf("mom layer: want x [batch, time, %d], got %s", l.dModel, x.Shape()))
	}
	batch, time := dims[0], dims[1]
	state = layers.StateOrZero(x.Graph(), "mom layer", l.StateSpecs(batch, x.DType()), state)
	// Every projection reads x through one identity and takes its weight gradient from one transpose
	// of it (layers.Projection).
	xs := layers.Share(x)
	x = xs.Node()
	xT := layers.FeaturesFirst(x)
	r := l.route(scope, xs, xT)
	q, k, v, caches := l.features(scope, xs, xT, state[1:], docStart)
	beta, g := l.writeStrength(scope, xs, xT), l.logDecay(scope, xs, xT)
	o, s, kept := l.mix(q, k, v, beta, g, r, state[0], docStart, time)
	var frac *Node
	stats.BalanceLoss, frac, stats.RouterProb = BalanceLoss(r.probs, r.chosen, nil)
	stats.Load = DivScalar(frac, float64(l.cfg.TopK))
	stats.Dropped = ScalarZero(x.Graph(), stats.Load.DType())
	if kept != nil {
		routed := ReduceAllSum(r.chosen)
		stats.Dropped = Div(Sub(routed, ConvertDType(ReduceAllSum(kept), routed.DType())), routed)
	}
	l.recordTraining(scope, x, r, stats)
	return l.output(scope, xs, xT, o), append([]*Node{s}, caches...), stats
}

// mix runs the memories over the call: the masked form (every memory sees every token) when the
// capacity buffers would hold the whole call (capacity_factor 0, T = 1, or a capacity of T), else the
// routed memories through capacity buffers (MixCapacity) and the shared memory over every token. kept
// [B, T, M] marks the routed assignments that made it into a buffer (nil for the masked form).
func (l *Layer) mix(q, k, v, beta, g *Node, r routing, h0, docStart *Node, time int) (o, s, kept *Node) {
	mem := l.cfg.Memory
	scale := 1 / math.Sqrt(float64(mem.HeadDimK))
	naive := time == 1 || mem.Mode == deltanet.ModeNaive
	chunk := min(mem.ChunkSize, time)
	capacity := l.cfg.capacity(time)
	run := chunkedRecurrence(scale, chunk, mem.Options())
	if naive {
		run = naiveRecurrence(scale, mem.Options())
	}
	if capacity >= time {
		o, s = mix("mom layer", q, k, v, beta, g, r.mask, r.weight, h0, docStart, run)
		return o, s, nil
	}
	m, h := l.cfg.Memories, mem.Heads
	if !naive {
		run = func(q, k, v, beta, g, h0, docStart *Node) (*Node, *Node) {
			return deltanet.ChunkedDocuments(q, k, v, beta, g, h0, docStart, scale, BufferChunk(q.Shape().Dimensions[1], chunk), mem.Options())
		}
	}
	routed := func(x *Node) *Node { return SliceAxis(x, 2, AxisRange(0, m)) } // [B, T, E] -> [B, T, M]
	o, s, kept = gatherMix("mom layer", q, k, v, beta, g, routed(r.mask), routed(r.weight),
		SliceAxis(h0, 1, AxisRange(0, m*h)), docStart, capacity, run)
	if l.cfg.SharedMemory {
		shared := func(x *Node) *Node { return Squeeze(SliceAxis(x, 2, AxisElem(m)), 2) }
		oS, sS := run(q, shared(k), shared(v), shared(beta), shared(g), SliceAxis(h0, 1, AxisRange(m*h, (m+1)*h)), docStart)
		o, s = Add(o, oS), Concatenate([]*Node{s, sS}, 1)
	}
	return o, s, kept
}

// recordTraining pools the router rows for the load-balancing loss (adding aux_loss_weight times its
// increase to the regularization loss, see PooledBalanceLoss) and stores the load, in training graphs
// only (an eval or decode graph must not change the objective or the variables). With one memory there
// is no router to balance.
func (l *Layer) recordTraining(scope *model.Scope, x *Node, r routing, stats Stats) {
	g := x.Graph()
	if !scope.IsTraining(g) || l.cfg.Memories == 1 {
		return
	}
	addPooledBalanceLoss(r.probs, r.chosen, l.cfg.AuxLossWeight, x.DType())
	scope.VariableWithValue(LoadVariable, make([]float64, l.cfg.Memories)).SetTrainable(false).
		SetNodeValue(ConvertDType(stats.Load, dtypes.Float64))
}

// features returns the shared query q [B, T, H, d_k] and every memory's keys k [B, T, E, H, d_k] (both
// L2-normalised per head) and values v [B, T, E, H, d_v]: projections, the short causal convolutions
// over the whole token stream (caches carried in the state), then SiLU.
func (l *Layer) features(scope *model.Scope, xs *layers.Shared, xT *Node, caches []*Node, docStart *Node) (q, k, v *Node, next []*Node) {
	x := xs.Node()
	mem := l.cfg.Memory
	e, h, dk, dv := l.cfg.slots(), mem.Heads, mem.HeadDimK, mem.HeadDimV()
	dims := x.Shape().Dimensions
	feature := func(name string, copies, width, index int) *Node {
		z := layers.Projection(scope.In("%s_proj", name), xs, xT, copies*h*width)
		if mem.UseShortConv {
			var cache *Node
			z, cache = sharedConv(scope.In("%s_conv", name), z, copies, mem.ConvSize, caches[index], docStart)
			next = append(next, cache)
		}
		return z
	}
	q = layers.SiLUL2NormLast(Reshape(feature("q", 1, dk, 0), dims[0], dims[1], h, dk), keyNormEps)
	k = layers.SiLUL2NormLast(Reshape(feature("k", e, dk, 1), dims[0], dims[1], e, h, dk), keyNormEps)
	v = Reshape(layers.FusedSiLU(feature("v", e, dv, 2)), dims[0], dims[1], e, h, dv)
	return q, k, v, next
}

// sharedConv is layers.ShortConv over z [B, T, copies*C] with one kernel "weight" [K, C] applied to each
// of the copies (the memories share their short convolutions). With one copy it is layers.ShortConv.
func sharedConv(scope *model.Scope, z *Node, copies, kernel int, cache, docStart *Node) (y, nextCache *Node) {
	dims := z.Shape().Dimensions
	channels := dims[2] / copies
	bound := 1 / math.Sqrt(float64(kernel))
	w := scope.WithInitializer(initializer.RandomUniformFn(scope, -bound, bound)).
		VariableWithShape("weight", shapes.Make(z.DType(), kernel, channels)).NodeValue(z.Graph())
	tiled := Reshape(BroadcastToDims(InsertAxes(w, 1), kernel, copies, channels), kernel, copies*channels)
	return layers.ShortConvWithWeightDocuments(z, tiled, cache, docStart)
}

// writeStrength is each memory's beta_t = sigmoid(W_b^e x_t) [B, T, E, H] (x2 with allow_neg_eigval);
// zeros without the delta rule.
func (l *Layer) writeStrength(scope *model.Scope, xs *layers.Shared, xT *Node) *Node {
	x := xs.Node()
	dims := x.Shape().Dimensions
	e, h := l.cfg.slots(), l.cfg.Memory.Heads
	if !l.cfg.Memory.Delta {
		return Zeros(x.Graph(), shapes.Make(x.DType(), dims[0], dims[1], e, h))
	}
	beta := Sigmoid(Reshape(layers.Projection(scope.In("b_proj"), xs, xT, e*h), dims[0], dims[1], e, h))
	if l.cfg.Memory.AllowNegEigval {
		beta = MulScalar(beta, 2)
	}
	return beta
}

// logDecay is each memory's g_t = -exp(A_log) softplus(W_a^e x_t + dt_bias) [B, T, E, H], with A_log and
// dt_bias [H] shared by the memories; zeros without the gate.
func (l *Layer) logDecay(scope *model.Scope, xs *layers.Shared, xT *Node) *Node {
	x := xs.Node()
	dims := x.Shape().Dimensions
	e, h := l.cfg.slots(), l.cfg.Memory.Heads
	if !l.cfg.Memory.Gate {
		return Zeros(x.Graph(), shapes.Make(x.DType(), dims[0], dims[1], e, h))
	}
	perHead := shapes.Make(x.DType(), h)
	aLog := scope.WithInitializer(deltanet.ALogInit(scope)).VariableWithShape("A_log", perHead).NodeValue(x.Graph())
	dtBias := scope.WithInitializer(deltanet.DTBiasInit(scope)).VariableWithShape("dt_bias", perHead).NodeValue(x.Graph())
	a := Reshape(layers.Projection(scope.In("a_proj"), xs, xT, e*h), dims[0], dims[1], e, h)
	aLog, dtBias = ExpandLeftToRank(aLog, 4), ExpandLeftToRank(dtBias, 4) // broadcast over [B, T, E]
	return Neg(Mul(Exp(aLog), Softplus(Add(a, dtBias))))
}

// output is W_o (RMSNorm_per_head(o) * SiLU(W_g x)), o: [B, T, H, d_v] -> [B, T, dModel].
func (l *Layer) output(scope *model.Scope, xs *layers.Shared, xT, o *Node) *Node {
	dims := o.Shape().Dimensions
	gate := Reshape(layers.Projection(scope.In("g_proj"), xs, xT, dims[2]*dims[3]), dims...)
	o = Mul(layers.RMSNorm(scope.In("o_norm"), o, l.cfg.Memory.NormEps), layers.FusedSiLU(gate))
	return layers.ProjectionOf(scope.In("o_proj"), Reshape(o, dims[0], dims[1], dims[2]*dims[3]), l.dModel)
}
