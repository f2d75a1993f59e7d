package layers_test

import (
	"fmt"
	"testing"

	"github.com/engramlx/engram/layers"
	lt "github.com/engramlx/engram/layers/layertest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// contextDocMixer is contextMixer over rows packing documents (Attention.ApplyWithContextDocuments).
type contextDocMixer struct{ contextMixer }

func (m contextDocMixer) ApplyDocuments(scope *model.Scope, x *Node, _ []*Node, docStart *Node) (*Node, []*Node) {
	return m.a.ApplyWithContextDocuments(scope, x, Tanh(x), docStart), nil
}

// ApplyWithContextDocuments: a row packing documents of 5, 17 and 42 tokens computes what each computes
// alone with ApplyWithContext (keys of the query's document only, RoPE positions from its start, so the
// persistent tokens are met as alone), with and without a window and persistent tokens.
func TestAttentionWithContextPackedEqualsSeparate(t *testing.T) {
	for _, window := range []int{0, 3} {
		for _, persistent := range []int{0, 2} {
			t.Run(fmt.Sprintf("window%d_persistent%d", window, persistent), func(t *testing.T) {
				cfg := layers.AttentionConfig{Heads: 2, Window: window, MaxContext: 64, RoPEBase: 10000, PersistentTokens: persistent}
				a, err := layers.NewAttention(cfg, 16)
				if err != nil {
					t.Fatal(err)
				}
				c := lt.NewMixerCase(contextDocMixer{contextMixer{a}}, 2, 16, 5)
				worst := lt.PackedEqualsSeparate(t, c, []int{5, 17, 42}, 0, nil, 1e-12)
				t.Logf("worst relative RMS error %.2g", worst)
			})
		}
	}
}
