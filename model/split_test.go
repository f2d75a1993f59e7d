package model

import (
	"fmt"
	"testing"

	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// splitCase is a float64 two-layer model of one mixer type with small chunks (4), so the splits below
// cut chunks; set up for streaming as eval and export do (Titans carries its partial chunk).
func splitCase(t *testing.T, mixer string) *Model {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Vocab, cfg.DModel, cfg.MLPHidden, cfg.DType, cfg.Layers = 16, 8, 16, "float64", LayerTypes(mixer, mixer)
	cfg.Attention.Heads, cfg.Attention.MaxContext, cfg.Attention.ShortConv = 2, 64, 3
	cfg.SlidingWindow.Heads, cfg.SlidingWindow.Window, cfg.SlidingWindow.ShortConv = 2, 6, 3
	cfg.DeltaNet.Heads, cfg.DeltaNet.HeadDimK, cfg.DeltaNet.ChunkSize = 2, 4, 4
	cfg.MoM.Memory.Heads, cfg.MoM.Memory.HeadDimK, cfg.MoM.Memory.ChunkSize = 2, 4, 4
	// Capacity buffers are sized per call (a call of T tokens keeps ceil(f k T / M) per memory), so
	// which tokens overflow depends on the split; the masked form (0) drops none and streams exactly.
	cfg.MoM.CapacityFactor = 0
	cfg.Titans.Heads, cfg.Titans.HeadDim, cfg.Titans.ChunkSize, cfg.Titans.SegmentSize = 2, 4, 4, 4
	cfg.Titans.PersistentTokens, cfg.Titans.Window = 2, 6
	m, err := New(cfg.ForStreaming()) // what evaluation and state export stream with
	if err != nil {
		t.Fatalf("%s: %v", mixer, err)
	}
	return m
}

// For every registered mixer (MoM in its masked form, see splitCase), one call over 24 tokens equals the same tokens fed in pieces of 1, 5, 17
// and chunk+3 = 7 tokens with the state carried (float64, outputs and final state): decoding token by
// token computes the function training computes, whatever the boundaries.
func TestChainedEqualsSingleAtAnySplit(t *testing.T) {
	const length = 24
	for _, mixer := range Types() {
		t.Run(mixer, func(t *testing.T) {
			m := splitCase(t, mixer)
			store := mlmodel.NewStore()
			store.SetParam(mlmodel.ParamInitialSeed, int64(3))
			rng := lt.NewRand(5)
			flat := make([]int32, 2*length)
			for i := range flat {
				flat[i] = int32(rng.IntN(m.Config.Vocab))
			}
			ids := tensors.FromFlatDataAndDimensions(flat, 2, length)
			exec := mlmodel.MustNewExec(lt.Backend(), store, func(scope *mlmodel.Scope, in []*Node) []*Node {
				state := in[1:]
				if len(state) == 0 {
					state = m.InitialState(scope, in[0].Graph(), 2)
				}
				hidden, next := m.Hidden(scope, in[0], state)
				return append([]*Node{hidden}, next...)
			})
			defer exec.Finalize()
			whole := exec.MustCall(ids)
			for _, piece := range []int{1, 5, 17, 4 + 3} {
				var state []*tensors.Tensor
				var parts []*tensors.Tensor
				for from := 0; from < length; from += piece {
					args := []any{sliceTime(flat, 2, length, from, min(from+piece, length))}
					for _, s := range state {
						args = append(args, s)
					}
					outs := exec.MustCall(args...)
					parts, state = append(parts, outs[0]), outs[1:]
				}
				what := fmt.Sprintf("%s pieces of %d", mixer, piece)
				e := lt.AssertClose(t, what+": outputs", lt.ConcatTime(parts...), whole[0], 1e-10)
				for i := range state {
					e = max(e, lt.AssertClose(t, what+": state "+m.StateSpecs(2)[i].Name, state[i], whole[1+i], 1e-10))
				}
				t.Logf("%s: worst rel RMS %.2g", what, e)
			}
		})
	}
}

// sliceTime returns ids[:, from:to] of row-major [rows, length] ids as a tensor.
func sliceTime(flat []int32, rows, length, from, to int) *tensors.Tensor {
	out := make([]int32, 0, rows*(to-from))
	for r := 0; r < rows; r++ {
		out = append(out, flat[r*length+from:r*length+to]...)
	}
	return tensors.FromFlatDataAndDimensions(out, rows, to-from)
}
