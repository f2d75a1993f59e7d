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
