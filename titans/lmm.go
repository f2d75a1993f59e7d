package titans

import (
	"fmt"
	"math"

	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
)

// Gate offsets added to the zero-initialised gate biases: at initialisation theta = MaxLR / 2,
// eta = sigmoid(2) ~ 0.88 and alpha = sigmoid(-4) ~ 0.018 (strong momentum, slow forgetting).
const (
	thetaOffset = 0.0
	etaOffset   = 2.0
	alphaOffset = -4.0
)

// LMM is the neural long-term memory as a Mixer (paper sections 3 and 4.4): projections of x to q, k,
// v, each through a short causal depthwise conv and SiLU, q and k L2-normalised per head; data-dependent
// gates; the memory op; per-head RMS normalisation, an optional output gate and an output projection.
//
// State (StateSpecs): the conv caches "q_conv", "k_conv", "v_conv" [B, K-1, H*Dh] (when K > 1), then per
// memory layer l "w{l}" and "s{l}" [B, H, in_l, out_l]. "w{l}" holds the memory weights minus their
// learned initial value (variable "memory/w{l}" [H, in_l, out_l]), so the zero state is the start of a
// sequence; "s{l}" is the momentum. Mode tp has no conv caches and adds "w_gamma"/"s_gamma" (the memory
// LayerNorm scale); with CarryPartialChunk, "pending" [B, C-1, D] and "pending_count" [] int32 follow.
type LMM struct {
	Config Config
	DModel int
	naive  bool // use the token-by-token op (the reference tests compare against)
}

// NewLMM validates cfg and returns the memory layer for a model of width dModel.
func NewLMM(cfg Config, dModel int) (*LMM, error) {
	cfg = cfg.Normalized()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dModel < 1 {
		return nil, fmt.Errorf("titans: d_model = %d: must be >= 1", dModel)
	}
	return &LMM{Config: cfg, DModel: dModel}, nil
}

// Reference returns the same layer computed with the token-by-token op Naive (for tests). Its
// ApplyWithStats returns empty Stats.
func (m *LMM) Reference() *LMM {
	r := *m
	r.naive = true
	return &r
}

func (m *LMM) width() int { return m.Config.Heads * m.Config.HeadDim }

// numConv is the number of short-conv caches at the head of the state: 3 with a conv kernel > 1 in the
// paper mode, else 0 (the tp mode has no short convs).
func (m *LMM) numConv() int {
	if m.Config.ConvKernel > 1 && m.Config.Mode != ModeTP {
		return 3
	}
	return 0
}

// StateSpecs implements layers.Mixer.
func (m *LMM) StateSpecs(batch int, dtype dtypes.DType) []layers.StateSpec {
	var specs []layers.StateSpec
	if k := m.Config.ConvKernel; m.numConv() > 0 {
		for _, name := range []string{"q_conv", "k_conv", "v_conv"} {
			specs = append(specs, layers.StateSpec{Name: name, Shape: shapes.Make(dtype, batch, k-1, m.width())})
		}
	}
	for _, prefix := range []string{"w", "s"} {
		for l, d := range m.Config.stateDims() {
			specs = append(specs, layers.StateSpec{
				Name: m.Config.stateName(prefix, l), Shape: shapes.Make(dtype, batch, m.Config.Heads, d[0], d[1])})
		}
	}
	if m.carriesPartialChunk() {
		specs = append(specs,
			layers.StateSpec{Name: "pending", Shape: shapes.Make(dtype, batch, m.Config.ChunkSize-1, m.DModel)},
			layers.StateSpec{Name: "pending_count", Shape: shapes.Make(dtypes.Int32)})
	}
	return specs
}

// Apply implements layers.Mixer: x [B, T, D] -> [B, T, D].
func (m *LMM) Apply(scope *model.Scope, x *Node, state []*Node) (*Node, []*Node) {
	y, next, _ := m.ApplyWithStats(scope, x, state)
	return y, next
}

// ApplyWithStats is Apply that also returns the memory's introspection scalars.
func (m *LMM) ApplyWithStats(scope *model.Scope, x *Node, state []*Node) (*Node, []*Node, Stats) {
	batch := x.Shape().Dimensions[0]
	cfg := m.Config
	state = layers.StateOrZero(x.Graph(), "titans lmm", m.StateSpecs(batch, x.DType()), state)
	if cfg.Mode == ModeTP {
		return m.applyTP(scope, x, state)
	}
	if m.carriesPartialChunk() {
		return m.applyPaperCarry(scope, x, state)
	}
	return m.applyPaper(scope, x, state, nil)
}

// applyPaper is the paper-mode layer from a non-nil state, over rows packing documents when docStart
// [B, T] is set (documents.go; nil: one sequence).
func (m *LMM) applyPaper(scope *model.Scope, x *Node, state []*Node, docStart *Node) (*Node, []*Node, Stats) {
	numConv := m.numConv()
	q, k, v, nextConv, _ := m.projectQKV(scope, x, state, docStart)
	gates := m.paperGates(scope, x)
	init := m.initialWeights(scope, x)
	numFast := len(init)
	st := State{W: m.fullWeights(scope, x, state), S: state[numConv+numFast : numConv+2*numFast]}
	var y *Node
	var final State
	var stats Stats
	switch {
	case docStart == nil:
		y, final, stats = m.memoryOp(q, k, v, gates, st, nil, nil)
	case m.naive:
		y, final = NaiveDocuments(q, k, v, gates, st, init, docStart, m.paperOp())
	default:
		y, final, stats = chunkedDocumentsWithStats(q, k, v, gates, st, init, docStart, m.paperOp())
	}
	next := nextConv
	for l := range final.W {
		next = append(next, Sub(final.W[l], init[l]))
	}
	next = append(next, final.S...)
	return m.readOut(scope, x, y), next, stats
}

// projectQKV is the paper mode's q, k, v [B, H, T, Dh]: projections of x, each through a short causal
// depthwise conv (caches in state[0:3] when the kernel is > 1; restarting at document starts docStart
// [B, T] when set) and SiLU, q and k L2-normalised per head. It also returns the next conv caches and
// the projections before the conv.
func (m *LMM) projectQKV(scope *model.Scope, x *Node, state []*Node, docStart *Node) (q, k, v *Node, nextConv, projections []*Node) {
	dims := x.Shape().Dimensions
	cfg := m.Config
	project := func(i int, name string) *Node {
		p := dense(scope.In("%s", name), x, m.width())
		projections = append(projections, p)
		var cache *Node
		if m.numConv() > 0 {
			cache = state[i]
		}
		p, cache = layers.ShortConvDocuments(scope.In("%s_conv", name), p, cfg.ConvKernel, cache, docStart)
		if m.numConv() > 0 {
			nextConv = append(nextConv, cache)
		}
		p = Reshape(layers.SiLU(p), dims[0], dims[1], cfg.Heads, cfg.HeadDim)
		if name != "v" {
			p = layers.L2NormLast(p, cfg.NormEps)
		}
		return Transpose(p, 1, 2) // [B, H, T, Dh]
	}
	q, k, v = project(0, "q"), project(1, "k"), project(2, "v")
	return q, k, v, nextConv, projections
}

// memoryOp runs the memory op of the layer's mode: the chunked op, or with Reference the token-by-token
// op (whose stats are empty). base (tp mode) is the learned initial weights, where the tp op takes its
// gradients when TTTBatchSize is 0.
func (m *LMM) memoryOp(q, k, v *Node, gates Gates, st State, base []*Node, valid *Node) (*Node, State, Stats) {
	cfg := m.Config
	if cfg.Mode == ModeTP {
		tp := PyTorchConfig{ChunkSize: cfg.ChunkSize, TTTBatch: cfg.TTTBatchSize, GradClamp: cfg.GradClamp, NormEps: tpLayerNormEps, Valid: valid}
		if m.naive {
			y, final := NaivePyTorch(q, k, v, gates, st, base, tp)
			return y, final, Stats{}
		}
		return ChunkedPyTorch(q, k, v, gates, st, base, tp)
	}
	op := m.paperOp()
	if m.naive {
		y, final := Naive(q, k, v, gates, st, op)
		return y, final, Stats{}
	}
	return ChunkedWithStats(q, k, v, gates, st, op)
}

// paperOp is the paper mode's op configuration: chunks, clamp, and the Miras objective and retention.
func (m *LMM) paperOp() OpConfig {
	cfg := m.Config
	return OpConfig{ChunkSize: cfg.ChunkSize, GradClamp: cfg.GradClamp, Bias: cfg.Bias(), Retention: cfg.RetentionGate()}
}

// paperGates are the paper mode's per-token gates of x [B, T, D]: theta, eta, alpha, and with
// HuberLearned the Huber threshold delta_t = softplus(x w + b + softplus^-1(HuberDelta)) (scope "delta";
// at initialisation about HuberDelta).
func (m *LMM) paperGates(scope *model.Scope, x *Node) Gates {
	cfg := m.Config
	gates := Gates{
		Theta: MulScalar(m.gate(scope.In("theta"), x, thetaOffset), cfg.MaxLR),
		Eta:   m.gate(scope.In("eta"), x, etaOffset),
		Alpha: m.gate(scope.In("alpha"), x, alphaOffset),
	}
	if cfg.HuberLearned {
		w, b := m.gateParams(scope.In("delta"), x)
		logits := AddScalar(Add(Einsum("btd,dh->bht", x, w), Reshape(b, 1, cfg.Heads, 1)), inverseSoftplus(cfg.HuberDelta))
		gates.Delta = Softplus(logits)
	}
	return gates
}

// inverseSoftplus is y with softplus(y) = x > 0: log(exp(x) - 1), written to stay finite for large x.
func inverseSoftplus(x float64) float64 {
	return x + math.Log(-math.Expm1(-x))
}

// read evaluates the memory of the layer's mode with fixed weights ws on x [B, H, n, Dh].
func (m *LMM) read(ws []*Node, x *Node) *Node {
	if m.Config.Mode == ModeTP {
		return ReadTP(ws, x, tpLayerNormEps)
	}
	return Read(ws, x)
}

// gate is sigmoid(x w + b + offset) [B, H, T]: w "weight" [D, H] ~ N(0, 1/D), b "bias" [H] = 0.
func (m *LMM) gate(scope *model.Scope, x *Node, offset float64) *Node {
	w, b := m.gateParams(scope, x)
	logits := AddScalar(Add(Einsum("btd,dh->bht", x, w), Reshape(b, 1, m.Config.Heads, 1)), offset)
	return Sigmoid(logits)
}

// initialWeights returns the learned initial fast weights broadcast to the batch, [B, H, in_l, out_l]:
// variables "memory/w{l}" [H, in_l, out_l] initialised N(0, 1/in_l), and in tp mode "memory/gamma"
// [H, 1, Dh] initialised 0 (a LayerNorm scale of 1 + gamma).
func (m *LMM) initialWeights(scope *model.Scope, x *Node) []*Node {
	batch := x.Shape().Dimensions[0]
	var out []*Node
	for l, d := range m.Config.stateDims() {
		name, init := fmt.Sprintf("w%d", l), initializer.RandomNormalFn(scope, 1/math.Sqrt(float64(d[0])))
		if l == m.Config.MemoryDepth {
			name, init = "gamma", initializer.Zero
		}
		s := scope.At("memory").WithInitializer(init)
		w := s.VariableWithShape(name, shapes.Make(x.DType(), m.Config.Heads, d[0], d[1])).NodeValue(x.Graph())
		out = append(out, BroadcastToDims(InsertAxes(w, 0), batch, m.Config.Heads, d[0], d[1]))
	}
	return out
}

// fullWeights returns the memory weights of state (as given to Apply, non-nil): learned initial value plus
// the carried deviation, [B, H, in_l, out_l].
func (m *LMM) fullWeights(scope *model.Scope, x *Node, state []*Node) []*Node {
	numConv := m.numConv()
	init := m.initialWeights(scope, x)
	for l := range init {
		init[l] = Add(state[numConv+l], init[l])
	}
	return init
}

// readOut maps the memory read-out y [B, H, T, Dh] to [B, T, D]: per-head RMS normalisation with a
// learned scale ("out_norm"), the optional output gate sigmoid(x W_g) per channel ("output_gate"), and
// the output projection ("output").
func (m *LMM) readOut(scope *model.Scope, x, y *Node) *Node {
	dims := x.Shape().Dimensions
	y = layers.RMSNormalize(Transpose(y, 1, 2), m.Config.NormEps) // [B, T, H, Dh]
	y = Reshape(y, dims[0], dims[1], m.width())
	y = scaleLast(scope.In("out_norm"), y)
	if m.Config.OutputGate {
		y = Mul(y, Sigmoid(dense(scope.In("output_gate"), x, m.width())))
	}
	return dense(scope.In("output"), y, m.DModel)
}

// scaleLast multiplies x [..., C] by a learned per-channel "weight" [C] (init 1).
func scaleLast(scope *model.Scope, x *Node) *Node {
	last := x.Shape().Dimensions[x.Rank()-1]
	w := scope.WithInitializer(initializer.One).VariableWithShape("weight", shapes.Make(x.DType(), last)).NodeValue(x.Graph())
	dims := make([]int, x.Rank())
	for i := range dims {
		dims[i] = 1
	}
	dims[len(dims)-1] = last
	return Mul(x, Reshape(w, dims...))
}

// ChunksPerGraph is the number of memory mini-batches a call over time tokens unrolls at graph-build
// time (the trainer prints it).
func (m *LMM) ChunksPerGraph(time int) int {
	chunk := min(m.Config.ChunkSize, time)
	return (time + chunk - 1) / chunk
}
