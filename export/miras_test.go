package export

import (
	"testing"

	lt "github.com/engramlx/engram/layers/layertest"
	"github.com/gomlx/gomlx/core/tensors"
)

// The Miras models (titans' moneta, yaad, memora mixer types) export their state like the other Titans
// memories: the state after a prompt that ends inside a chunk, saved and loaded again, continues the
// stream with the logits of one pass over prompt + continuation.
func TestMirasStateContinuesMidChunk(t *testing.T) {
	for _, layer := range []string{"moneta", "yaad", "memora"} {
		t.Run(layer, func(t *testing.T) {
			r := trainedRun(t, "model: {vocab: 8, d_model: 8, layers: ["+layer+"], mlp_hidden: 16, titans: {heads: 2, head_dim: 4, chunk_size: 4}}")
			m := mustFromRun(t, r)
			prompt, next := []int32{1, 2, 3, 4, 5}, []int32{6, 7, 2}
			file, err := State(m, t.TempDir(), prompt)
			if err != nil {
				t.Fatal(err)
			}
			saved, _, err := LoadState(m, file)
			if err != nil {
				t.Fatal(err)
			}
			step, err := m.Stepper()
			if err != nil {
				t.Fatal(err)
			}
			defer step.Finalize()
			continued, _, err := Run(step, next, saved)
			if err != nil {
				t.Fatal(err)
			}
			whole, _, err := Run(step, append(append([]int32{}, prompt...), next...), nil)
			if err != nil {
				t.Fatal(err)
			}
			const vocab = 8
			tail := make([]float32, 0, len(next)*vocab)
			for _, x := range lt.Floats(whole)[len(prompt)*vocab:] {
				tail = append(tail, float32(x))
			}
			lt.AssertClose(t, layer+": continued after 5 tokens vs one pass", continued,
				tensors.FromFlatDataAndDimensions(tail, 1, len(next), vocab), 1e-5)
		})
	}
}
