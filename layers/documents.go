package layers

import (
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// DocumentMixer is implemented by Mixers that restart at document starts inside a row, so that a row
// packing several documents (data.mode: pack) computes exactly what running each document alone
// would: nothing before a document start reaches that token or any later one.
//
// docStart is [batch, time] in x's dtype: 1 at the first token of a document, 0 elsewhere. A 1 at time
// 0 means the incoming state is dropped there as well. At a document start the mixer continues from
// its initial state (the zero state, or the learned initial weights of a Titans memory), its short
// convolutions see zeros before the token, and its attention masks every earlier key. The returned
// state is the state after the row's last token, i.e. that of the last document. A nil docStart is
// Apply.
type DocumentMixer interface {
	Mixer
	ApplyDocuments(scope *model.Scope, x *Node, state []*Node, docStart *Node) (y *Node, next []*Node)
}

// DocumentIDs is the index of each token's document within its row, docStart [B, T] -> [B, T] (its
// dtype): the number of starts at or before t, so tokens before the row's first start (the document the
// incoming state belongs to) have 0. Two tokens of a row are in one document iff their ids are equal.
func DocumentIDs(docStart *Node) *Node { return CumSum(StopGradient(docStart), 1) }

// ConvTapKeep returns, for a causal convolution of kernel taps over rows with document starts
// docStart [B, T], the factor of each tap: keep[d] [B, T, 1] is 1 where the input d steps back (x_{t-d},
// or the cache for t < d) is in t's document, i.e. no start lies in (t-d, t], and 0 where it is not. The
// cache counts as before the row's first start.
func ConvTapKeep(docStart *Node, kernel int) []*Node {
	notStart := InsertAxes(OneMinus(StopGradient(docStart)), -1) // [B, T, 1]
	keep := make([]*Node, kernel)
	keep[0] = OnesLike(notStart)
	for d := 1; d < kernel; d++ {
		// CausalShift fills t < d-1 with zeros, i.e. "no start" for the cache positions: the product
		// then runs over the row's positions 0..t only.
		shifted := OneMinus(CausalShift(OneMinus(notStart), d-1))
		keep[d] = Mul(keep[d-1], shifted)
	}
	return keep
}

// ConvCacheKeep is the factor [B, K-1, 1] of the K-1 inputs a causal convolution carries out of a row
// with document starts docStart [B, T] (the cache holds the inputs at T-K+1..T-1, cache positions for
// the earliest when T < K-1): 1 for those in the row's last document, 0 for those before its start, so
// the carried cache is the one the last document alone would leave.
func ConvCacheKeep(docStart *Node, kernel int) *Node {
	time := docStart.Shape().Dimensions[1]
	padded := Pad(StopGradient(docStart), ScalarZero(docStart.Graph(), docStart.DType()), PadAxis{}, PadAxis{Start: kernel - 1})
	total := ReduceAndKeep(padded, ReduceSum, 1)
	later := Sub(total, CumSum(padded, 1)) // starts after each position
	tail := SliceAxis(later, 1, AxisRange(time, time+kernel-1))
	return InsertAxes(ConvertDType(Equal(tail, ZerosLike(tail)), docStart.DType()), -1)
}
