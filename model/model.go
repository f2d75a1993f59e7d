// Package model turns a Config into a decoder stack of Mixers:
//
//	embedding -> N x [RMSNorm -> Mixer -> residual -> RMSNorm -> SwiGLU -> residual] -> RMSNorm -> head
//
// The mixer of each layer is chosen by its type name (Types lists them); the mixer packages never import
// model, model imports them. The stack is itself stateful: its state is the flat, named concatenation
// of its mixers' states ("layer_3/S"), so a whole model streams like one Mixer.
//
// Training computes the output head only at labelled positions: hidden states are gathered at up to
// `slots` positions per row before the head, which saves most of the head's FLOPs on recall tasks
// (MQAR labels 8 of 256 positions).
//
// Scope names (checkpoint keys): embed, layer_<i>/{norm_mixer, <type>, norm_mlp, mlp}, final_norm, head.
package model

import (
	"fmt"

	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// Model is a validated Config with its mixers built.
type Model struct {
	Config Config
	DType  dtypes.DType
	Mixers []layers.Mixer
}

// New validates cfg and builds the mixers (once: building a mixer is what validates its section).
func New(cfg Config) (*Model, error) {
	if err := cfg.validateFields(); err != nil {
		return nil, err
	}
	dtype, _ := cfg.dtype()
	mixers, err := cfg.buildMixers()
	if err != nil {
		return nil, err
	}
	return &Model{Config: cfg, DType: dtype, Mixers: mixers}, nil
}

// layerName is the scope and state prefix of layer i.
func layerName(i int) string { return fmt.Sprintf("layer_%d", i) }

// LayerStateSpecs returns each layer's state specs (unprefixed).
func (m *Model) LayerStateSpecs(batch int) [][]layers.StateSpec {
	specs := make([][]layers.StateSpec, len(m.Mixers))
	for i, mixer := range m.Mixers {
		specs[i] = mixer.StateSpecs(batch, m.DType)
	}
	return specs
}

// StateSpecs returns the flat state of the whole stack, names prefixed by layer ("layer_0/k").
func (m *Model) StateSpecs(batch int) []layers.StateSpec {
	var flat []layers.StateSpec
	for i, specs := range m.LayerStateSpecs(batch) {
		flat = append(flat, layers.PrefixSpecs(layerName(i), specs)...)
	}
	return flat
}

// StateSpecsForContext is StateSpecs for a stream of at most positions tokens: context-sized states (full
// attention's KV cache) hold min(positions, max_context) positions instead of max_context; the others
// are unchanged. positions <= 0 gives StateSpecs.
func (m *Model) StateSpecsForContext(batch, positions int) []layers.StateSpec {
	var flat []layers.StateSpec
	for i, mixer := range m.Mixers {
		flat = append(flat, layers.PrefixSpecs(layerName(i), layers.StateSpecsForContext(mixer, batch, m.DType, positions))...)
	}
	return flat
}

// MaxContext is the most tokens a stream may hold (the smallest full-attention cache), 0 if unlimited.
func (m *Model) MaxContext() int {
	limit := 0
	for _, mixer := range m.Mixers {
		if cl, ok := mixer.(layers.ContextLimited); ok && cl.MaxContext() > 0 {
			if limit == 0 || cl.MaxContext() < limit {
				limit = cl.MaxContext()
			}
		}
	}
	return limit
}

// Hidden runs the stack on ids [B, T] (int32) from state (nil = start of sequence) and returns the final
// normalised hidden states [B, T, D] and the next flat state.
func (m *Model) Hidden(scope *mlmodel.Scope, ids *Node, state []*Node) (*Node, []*Node) {
	return m.HiddenFromEmbeddings(scope, m.Embed(scope, ids), state)
}

// Embed maps ids [B, T] (int32) to the stack's input embeddings [B, T, D].
func (m *Model) Embed(scope *mlmodel.Scope, ids *Node) *Node {
	return layers.Embedding(scope.In("embed"), ids, m.Config.Vocab, m.Config.DModel, m.DType)
}

// HiddenFromEmbeddings runs the stack on input embeddings h0 [B, T, D] from state (nil = start of
// sequence) and returns the final normalised hidden states [B, T, D] and the next flat state. Wrappers
// that insert vectors of their own between the token embeddings (rmt's memory tokens) enter here.
func (m *Model) HiddenFromEmbeddings(scope *mlmodel.Scope, h0 *Node, state []*Node) (*Node, []*Node) {
	return m.HiddenFromEmbeddingsDocuments(scope, h0, state, nil)
}

// HiddenDocuments implements DocumentSequence: Hidden over rows packing documents, docStart [B, T] (any
// numeric dtype, 1 at a document's first token; nil: Hidden). Every mixer restarts at each start
// (layers.DocumentMixer); norms, MLPs and the head are per token.
func (m *Model) HiddenDocuments(scope *mlmodel.Scope, ids *Node, state []*Node, docStart *Node) (*Node, []*Node) {
	return m.HiddenFromEmbeddingsDocuments(scope, m.Embed(scope, ids), state, docStart)
}

// HiddenFromEmbeddingsDocuments is HiddenFromEmbeddings with document starts docStart [B, T] (nil: none).
func (m *Model) HiddenFromEmbeddingsDocuments(scope *mlmodel.Scope, h0 *Node, state []*Node, docStart *Node) (*Node, []*Node) {
	batch := h0.Shape().Dimensions[0]
	if docStart != nil {
		docStart = ConvertDType(docStart, h0.DType())
	}
	perLayer, err := layers.Unflatten(state, m.LayerStateSpecs(batch))
	if err != nil {
		panic(fmt.Errorf("model: %w", err))
	}
	h := h0
	var next []*Node
	for i, mixer := range m.Mixers {
		layer := scope.In("%s", layerName(i))
		mixerScope, normed := layer.In("%s", m.Config.Layers[i].ScopeName()), layers.RMSNorm(layer.In("norm_mixer"), h, m.Config.NormEps)
		var mixed *Node
		var layerNext []*Node
		if docStart == nil {
			mixed, layerNext = mixer.Apply(mixerScope, normed, perLayer[i])
		} else {
			dm, ok := mixer.(layers.DocumentMixer)
			if !ok {
				panic(fmt.Errorf("model: layer %d (%s) cannot restart at document starts (it does not implement layers.DocumentMixer)", i, m.Config.Layers[i].Type))
			}
			mixed, layerNext = dm.ApplyDocuments(mixerScope, normed, perLayer[i], docStart)
		}
		h = Add(h, mixed)
		if hidden := m.Config.mlpHidden(); hidden > 0 {
			h = Add(h, layers.SwiGLU(layer.In("mlp"), layers.RMSNorm(layer.In("norm_mlp"), h, m.Config.NormEps), hidden))
		}
		next = append(next, layerNext...)
	}
	return layers.RMSNorm(scope.In("final_norm"), h, m.Config.NormEps), next
}

// Logits maps hidden states [..., D] to logits [..., vocab].
func (m *Model) Logits(scope *mlmodel.Scope, hidden *Node) *Node {
	var tied *Node
	if m.Config.TieEmbeddings {
		tied = layers.EmbeddingTable(scope.In("embed"), hidden.Graph(), m.Config.Vocab, m.Config.DModel, m.DType)
	}
	return layers.Head(scope.In("head"), hidden, m.Config.Vocab, tied)
}

// GatherPositions picks hidden [B, T, D] at positions [B, P] (int32) -> [B, P, D].
func GatherPositions(hidden, positions *Node) *Node {
	g := hidden.Graph()
	dims := positions.Shape().Dimensions
	rows := Iota(g, shapes.Make(positions.DType(), dims[0], dims[1], 1), 0)
	indices := Concatenate([]*Node{rows, ExpandAxes(positions, -1)}, 2) // [B, P, 2]: (row, position)
	return Gather(hidden, indices)
}

// CrossEntropy returns the mean cross-entropy of logits [B, P, V] against targets [B, P] (int32)
// over the positions with weight [B, P] > 0 (weights are 0 or 1), and the accuracy of the argmax there.
//
// It avoids LogSoftmax over the vocabulary (the Go backend's Exp and Log run per element in scalar code):
// the value is -log(p_target) from the fused Softmax, and the gradient, softmax - onehot, comes from the
// surrogate sum(stop(softmax) * logits) - logit_target, which has exactly that gradient. Probabilities
// are floored at 1e-30 for the value only, so the gradient is exact even for hopeless predictions.
func CrossEntropy(logits, targets, weights *Node) (loss, accuracy *Node) {
	g := logits.Graph()
	vocab := logits.Shape().Dimensions[2]
	weights = ConvertDType(weights, logits.DType())
	onehot := OneHot(targets, vocab, logits.DType())
	probs := StopGradient(Softmax(logits, -1))
	targetProb := ReduceSum(Mul(probs, onehot), -1)             // [B, P]
	value := Neg(Log(MaxScalar(targetProb, 1e-30)))             // -log p_target
	surrogate := ReduceSum(Mul(Sub(probs, onehot), logits), -1) // d/dlogits = softmax - onehot
	nll := Add(StopGradient(Sub(value, surrogate)), surrogate)  // value of nll, gradient of surrogate
	count := Max(ReduceAllSum(weights), ScalarOne(g, logits.DType()))
	loss = Div(ReduceAllSum(Mul(nll, weights)), count)
	correct := ConvertDType(Equal(ArgMax(logits, -1, targets.DType()), targets), logits.DType())
	accuracy = Div(ReduceAllSum(Mul(correct, weights)), count)
	return loss, accuracy
}

// NoWeightDecay is the set of variable names (last path element) that the stack's mixers exempt from
// weight decay (layers.DecayExempt).
func (m *Model) NoWeightDecay() map[string]bool {
	names := map[string]bool{}
	for _, mixer := range m.Mixers {
		if d, ok := mixer.(layers.DecayExempt); ok {
			for _, name := range d.NoWeightDecay() {
				names[name] = true
			}
		}
	}
	return names
}

// StatVariables maps the store paths of the statistics variables the stack's mixers write
// (layers.StatsReporter) to the metric prefix they are logged under: "/layer_0/mom/router_load" ->
// "layer_0/mom/load".
func (m *Model) StatVariables() map[string]string {
	out := map[string]string{}
	for i, mixer := range m.Mixers {
		if r, ok := mixer.(layers.StatsReporter); ok {
			scope := layerName(i) + "/" + m.Config.Layers[i].ScopeName()
			for name, metric := range r.StatVariables() {
				out["/"+scope+"/"+name] = scope + "/" + metric
			}
		}
	}
	return out
}

// ChunksPerGraph is the number of chunks the stack's mixers unroll over a graph of time tokens
// (layers.ChunkCounter).
func (m *Model) ChunksPerGraph(time int) int {
	chunks := 0
	for _, mixer := range m.Mixers {
		if cc, ok := mixer.(layers.ChunkCounter); ok {
			chunks += cc.ChunksPerGraph(time)
		}
	}
	return chunks
}
