package titans

import (
	"math"
	"testing"

	"github.com/engramlx/engram/layers"
	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// macDocRows are the document starts of the MAC document tests' rows of 45 tokens (segments of 8 from
// each document's start): row 0 continues the incoming state for 11 tokens (across the call's segment
// boundary at 8), then a document starting mid-segment (11, 13 tokens), one starting on the call's grid
// (24) and shorter than a segment, and one of exactly two segments starting mid-grid (29); row 1 starts
// at t = 0, on the grid at 8, with a 3-token document, one of two whole segments from 11 (its own
// boundary at 19 sits mid-grid), and two of 9; row 2 has no start (the incoming state runs on).
var macDocRows = [][]int{{11, 24, 29}, {0, 8, 11, 27, 36}, {}}

const macDocTime = 45

// macPackedVsSeparate builds, in one graph, MAC ApplyDocuments over rows x [B, T, D] with the starts of
// rows from the incoming state, and the same rows run piece by piece with Apply: tokens before a row's
// first start from the row's incoming state, each document alone from the start of a sequence. It
// returns, for both, the outputs, the final states, and the gradients of <y, u> + sum_i <next_i, u_i>
// with respect to x, the incoming state and every trainable variable; and the names of those.
func macPackedVsSeparate(t *testing.T, mac layers.Mixer, store *model.Store, x *tensors.Tensor, state, upstream []*tensors.Tensor, rows [][]int) (packed, separate []*tensors.Tensor, names []string) {
	t.Helper()
	dm := mac.(layers.DocumentMixer)
	batch, time := len(rows), x.Shape().Dimensions[1]
	mask := make([]float64, batch*time)
	for b, row := range rows {
		for _, s := range row {
			mask[b*time+s] = 1
		}
	}
	docStart := tensors.FromFlatDataAndDimensions(mask, batch, time)
	numState := len(state)
	var numOut int
	exec := model.MustNewExec(lt.Backend(), store, func(root *model.Scope, in []*Node) []*Node {
		xNode, startNode, st, ups := in[0], in[1], in[2:2+numState], in[2+numState:]
		loss := func(y *Node, next []*Node) *Node {
			l := ReduceAllSum(Mul(y, ups[0]))
			for i, s := range next {
				l = Add(l, ReduceAllSum(Mul(s, ups[i+1])))
			}
			return l
		}
		yPacked, nextPacked := dm.ApplyDocuments(root.At("mixer"), xNode, st, startNode)
		var rowsY []*Node
		nextRows := make([][]*Node, numState)
		for b, row := range rows {
			cut := func(n *Node) *Node { return SliceAxis(n, 0, AxisElem(b)) }
			bounds := append(append([]int{0}, row...), time)
			var ys, last []*Node
			for i := range len(bounds) - 1 {
				from, to := bounds[i], bounds[i+1]
				if from == to {
					continue
				}
				var rowState []*Node // documents start from the start of a sequence
				if i == 0 {          // tokens before the first start continue the incoming state
					for _, s := range st {
						rowState = append(rowState, cut(s))
					}
				}
				y, next := mac.Apply(root.At("mixer"), SliceAxis(cut(xNode), 1, AxisRange(from, to)), rowState)
				ys, last = append(ys, y), next
			}
			rowsY = append(rowsY, Concatenate(ys, 1))
			for i := range last {
				nextRows[i] = append(nextRows[i], last[i])
			}
		}
		ySeparate := Concatenate(rowsY, 0)
		var nextSeparate []*Node
		for _, parts := range nextRows {
			nextSeparate = append(nextSeparate, Concatenate(parts, 0))
		}
		wrt := append([]*Node{xNode}, st...)
		names = []string{"x"}
		for _, spec := range mac.StateSpecs(batch, dtypes.Float64) {
			names = append(names, "incoming state "+spec.Name)
		}
		g := xNode.Graph()
		for v := range store.IterVariables() {
			if v.Trainable && v.InUseByGraph(g) {
				wrt, names = append(wrt, v.NodeValue(g)), append(names, "variable "+v.Path())
			}
		}
		outP := append(append([]*Node{yPacked}, nextPacked...), Gradient(loss(yPacked, nextPacked), wrt...)...)
		outS := append(append([]*Node{ySeparate}, nextSeparate...), Gradient(loss(ySeparate, nextSeparate), wrt...)...)
		numOut = len(outP)
		return append(outP, outS...)
	})
	defer exec.Finalize()
	args := []any{x, docStart}
	for _, s := range state {
		args = append(args, s)
	}
	for _, u := range upstream {
		args = append(args, u)
	}
	all := exec.MustCall(args...)
	return all[:numOut], all[numOut:], names
}

// MAC over packed rows computes what its documents compute alone, float64: the outputs, the final
// memory state (weights, momentum, conv caches) and the gradients with respect to x, the incoming state
// and every variable, with starts mid-segment, on the call's segment grid and at t = 0, documents
// shorter than a segment and of whole segments whose boundaries sit mid-grid, tokens continuing the
// incoming state across a segment boundary, and rows with different starts (macDocRows); the chunked
// and the token-by-token memory, the paper and the titans_pytorch modes (TTT batches of 4 dividing the
// segments of 8), segments of one chunk.
func TestMACPackedEqualsSeparate(t *testing.T) {
	oneChunk := testConfig(VariantMAC)
	oneChunk.SegmentSize = oneChunk.ChunkSize
	cases := []struct {
		name      string
		cfg       Config
		reference bool
	}{
		{"paper", testConfig(VariantMAC), false},
		{"paper/naive", testConfig(VariantMAC), true},
		{"paper/segment=chunk", oneChunk, false},
		{"tp", configFor(VariantMAC, ModeTP), false},
		{"tp/ttt4", configFor(VariantMAC, modeTPBatched), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mac, err := New(tc.cfg, testDModel)
			if err != nil {
				t.Fatal(err)
			}
			batch := len(macDocRows)
			c := lt.NewMixerCase(mac, batch, testDModel, 5)
			if tc.reference {
				c.Mixer = Reference(mac)
			}
			_, state := c.Run(c.RandomInput(3, 6), nil)
			x := c.RandomInput(4, macDocTime)
			upstream := lt.RandomUpstream(7, append([]*tensors.Tensor{x}, state...))
			packed, separate, names := macPackedVsSeparate(t, c.Mixer, c.Store, x, state, upstream, macDocRows)
			specs := c.Specs()
			worst := 0.0
			for i := range packed {
				name := "outputs"
				switch {
				case i > 0 && i <= len(specs):
					name = "final state " + specs[i-1].Name
				case i > len(specs):
					name = "gradient of " + names[i-1-len(specs)]
				}
				worst = math.Max(worst, lt.AssertClose(t, name, packed[i], separate[i], 1e-10))
			}
			t.Logf("%s: packed == separate over %d outputs, states and gradients, worst rel RMS %.2g", tc.name, len(packed), worst)
		})
	}
}
