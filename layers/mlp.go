package layers

import (
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
)

// SwiGLU is the gated MLP of Shazeer (2020): y = W_down (SiLU(W_gate x) * (W_up x)),
// x: [..., D] -> [..., D], hidden width `hidden`. Scopes: "gate", "up", "down".
func SwiGLU(scope *model.Scope, x *Node, hidden int) *Node {
	d := x.Shape().Dimensions[x.Rank()-1]
	gate := Dense(scope.In("gate"), x, hidden, false)
	up := Dense(scope.In("up"), x, hidden, false)
	return Dense(scope.In("down"), Mul(SiLU(gate), up), d, false)
}

// Embedding looks token ids [B, T] (int) up in a table "embeddings" [vocab, D] initialised N(0, 1/D),
// so each embedding has about unit norm. Returns [B, T, D].
func Embedding(scope *model.Scope, ids *Node, vocab, dModel int, dtype dtypes.DType) *Node {
	table := EmbeddingTable(scope, ids.Graph(), vocab, dModel, dtype)
	return Gather(table, ExpandAxes(ids, -1))
}

// EmbeddingTable returns the embedding table variable's value [vocab, D].
func EmbeddingTable(scope *model.Scope, g *Graph, vocab, dModel int, dtype dtypes.DType) *Node {
	init := initializer.RandomNormalFn(scope, 1/math.Sqrt(float64(dModel)))
	return scope.WithInitializer(init).VariableWithShape("embeddings", shapes.Make(dtype, vocab, dModel)).NodeValue(g)
}

// Head maps hidden states [..., D] to logits [..., vocab]: with the tied embedding table when tied, else
// with its own weight "weight" [D, vocab].
func Head(scope *model.Scope, h *Node, vocab int, tiedTable *Node) *Node {
	if tiedTable != nil {
		return DotGeneral(h, []int{h.Rank() - 1}, nil, tiedTable, []int{1}, nil)
	}
	return Dense(scope, h, vocab, false)
}
