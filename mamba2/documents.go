package mamba2

import (
	"fmt"
	"math"

	"github.com/engramlx/engram/deltanet"
	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
)

// Document starts in packed rows (issue 20). This file is the layer's layers.DocumentMixer: Apply with
// the conv and the SSM restarted at every document start. It repeats Apply's steps (same variables,
// same order) with the document-aware conv and ops; the packed == separate test in package model
// compares it with Apply, so the two cannot drift apart unnoticed.

var _ layers.DocumentMixer = (*Layer)(nil)

// ApplyDocuments implements layers.DocumentMixer: Apply over rows packing documents, docStart [B, T]
// (x's dtype, 1 at a document's first token; nil: one document per row, which is Apply). The causal conv reads zeros before a start
// (layers.ShortConvWithWeightDocuments) and the SSM state restarts from zero there (NaiveDocuments,
// ChunkedDocuments); the returned state is the last document's.
func (l *Layer) ApplyDocuments(scope *model.Scope, x *Node, state []*Node, docStart *Node) (y *Node, next []*Node) {
	dims := x.Shape().Dimensions
	if len(dims) != 3 || dims[2] != l.dModel {
		panic(fmt.Errorf("mamba2 layer: want x [batch, time, %d], got %s", l.dModel, x.Shape()))
	}
	batch, time := dims[0], dims[1]
	c := l.cfg
	state = layers.StateOrZero(x.Graph(), "mamba2 layer", l.StateSpecs(batch, x.DType()), state)

	proj := layers.Dense(scope.In("in_proj"), x, c.ProjDim(), false)
	d, convDim := c.Inner(), c.ConvDim()
	parts := layers.SplitSizes(proj, 2, d, convDim, c.ProjDim()-d-convDim)
	z, xbc, dtRaw := parts[0], parts[1], parts[2]

	xbc, convNext := l.conv(scope.In("conv1d"), xbc, state[1], docStart)
	xbc = layers.SiLU(xbc)
	gn := c.Groups * c.StateSize
	parts = layers.SplitSizes(xbc, 2, d, gn, convDim-d-gn)
	xs := Reshape(parts[0], batch, time, c.Heads, c.HeadDim)
	bs := Reshape(parts[1], batch, time, c.Groups, c.StateSize)
	cs := Reshape(parts[2], batch, time, c.Groups, c.StateSize)

	headShape := shapes.Make(x.DType(), c.Heads)
	g := x.Graph()
	dtBias := scope.WithInitializer(deltanet.DTBiasInit(scope)).VariableWithShape("dt_bias", headShape).NodeValue(g)
	aLog := scope.WithInitializer(ALogInit(scope)).VariableWithShape("A_log", headShape).NodeValue(g)
	skip := scope.WithInitializer(initializer.One).VariableWithShape("D", headShape).NodeValue(g)
	dt := Softplus(Add(dtRaw, ExpandLeftToRank(dtBias, 3)))
	a := Neg(Exp(aLog))

	var ys, ssm *Node
	if time == 1 || c.Mode == ModeNaive {
		ys, ssm = NaiveDocuments(xs, dt, a, bs, cs, state[0], docStart)
	} else {
		ys, ssm = ChunkedDocuments(xs, dt, a, bs, cs, state[0], docStart, min(c.ChunkSize, time))
	}
	ys = Add(ys, Mul(xs, ExpandLeftToRank(InsertAxes(skip, -1), 4)))
	u := l.gatedNorm(scope.In("norm"), Reshape(ys, batch, time, d), z)
	return layers.Dense(scope.In("out_proj"), u, l.dModel, false), []*Node{ssm, convNext}
}

// conv is the causal depthwise convolution with bias over xBC [B, T, conv_dim], reading the conv_size-1
// inputs before xBC from cache; it returns the convolved xBC (before SiLU) and the next cache. The
// weight [K, conv_dim] and the bias are drawn U(-1/sqrt(K), 1/sqrt(K)), nn.Conv1d's default for a
// depthwise kernel, which Mamba2 keeps. With docStart, taps that reach across a document start read
// zeros and the cache is kept from the last document only.
func (l *Layer) conv(scope *model.Scope, xbc, cache, docStart *Node) (y, nextCache *Node) {
	dims := xbc.Shape().Dimensions
	k := l.cfg.ConvSize
	bound := 1 / math.Sqrt(float64(k))
	uniform := scope.WithInitializer(initializer.RandomUniformFn(scope, -bound, bound))
	weight := uniform.VariableWithShape("weight", shapes.Make(xbc.DType(), k, dims[2])).NodeValue(xbc.Graph())
	bias := uniform.VariableWithShape("bias", shapes.Make(xbc.DType(), dims[2])).NodeValue(xbc.Graph())
	y, nextCache = layers.ShortConvWithWeightDocuments(xbc, weight, cache, docStart)
	return Add(y, ExpandLeftToRank(bias, 3)), nextCache
}

// NaiveDocuments is Naive over rows packing documents, docStart [B, T] (x's dtype; nil: Naive): the
// state restarts from zero before the step of a document's first token.
func NaiveDocuments(x, dt, a, b, c, h0, docStart *Node) (y, ht *Node) {
	if docStart == nil {
		return Naive(x, dt, a, b, c, h0)
	}
	h0 = checkInputs("mamba2.Naive", x, dt, a, b, c, h0)
	heads, time := x.Shape().Dimensions[2], x.Shape().Dimensions[1]
	b, c = perHead(b, heads), perHead(c, heads)
	state := h0
	outs := make([]*Node, time)
	for t := range time {
		at := func(v *Node) *Node { return Squeeze(SliceAxis(v, 1, AxisElem(t)), 1) }
		state = Mul(state, InsertAxes(OneMinus(at(docStart)), -1, -1, -1))
		outs[t], state = Step(at(x), at(dt), a, at(b), at(c), state)
	}
	return Stack(outs, 1), state
}

// ChunkedDocuments is Chunked over rows packing documents (deltanet.ChunkedDocuments under the same
// mapping q = C, k = B, v = dt x, g = dt A); docStart [B, T] (nil: Chunked).
func ChunkedDocuments(x, dt, a, b, c, h0, docStart *Node, chunkSize int) (y, ht *Node) {
	if docStart == nil {
		return Chunked(x, dt, a, b, c, h0, chunkSize)
	}
	h0 = checkInputs("mamba2.Chunked", x, dt, a, b, c, h0)
	if chunkSize < 1 {
		panic(fmt.Errorf("mamba2.Chunked: chunkSize must be >= 1, got %d", chunkSize))
	}
	heads := x.Shape().Dimensions[2]
	q, k := perHead(c, heads), perHead(b, heads)
	v := Mul(x, InsertAxes(dt, -1))
	g := Mul(dt, ExpandLeftToRank(a, dt.Rank()))
	y, s := deltanet.ChunkedDocuments(q, k, v, ZerosLike(dt), g, transposeState(h0), docStart, 1, chunkSize, deltanet.GatedLinearAttn)
	return y, transposeState(s)
}
