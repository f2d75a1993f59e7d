package titans

import (
	"fmt"

	"github.com/engramlx/engram/layers"
)

// MixerTypes are titans_lmm, titans_mac, titans_mag and titans_mal, all reading the titans section; the
// type sets the variant, and a section whose variant says otherwise is an error naming both.
func MixerTypes() []layers.MixerType {
	var out []layers.MixerType
	for _, variant := range []string{VariantLMM, VariantMAC, VariantMAG, VariantMAL} {
		name := "titans_" + variant
		out = append(out, layers.MixerType{Name: name, Section: "titans", Build: func(section any, dModel int) (layers.Mixer, error) {
			cfg := *section.(*Config)
			if cfg.VariantSetting != "" && cfg.VariantSetting != variant {
				return nil, fmt.Errorf("titans.variant = %q contradicts layer type %q (variant %q); use the layer type titans_%s or drop the key",
					cfg.VariantSetting, name, variant, cfg.VariantSetting)
			}
			cfg.Variant = variant
			return New(cfg, dModel)
		}})
	}
	return append(out, mirasTypes()...)
}

// Miras models (arXiv 2504.13173 section 5.3): the Titans memory (variant lmm) with the objective and
// retention the type names. They read the titans section (heads, chunks, memory depth and the Miras
// parameters lp_p, lq_q, huber_delta, ...); an attentional_bias or retention there that contradicts the
// type is an error naming both.
var mirasModels = []struct {
	name, bias, retention string
	learnedDelta          bool
}{
	{"moneta", BiasLp, RetentionLq, false}, // l_p bias, l_q-normalised accumulator (Eq. 24)
	{"yaad", BiasHuber, RetentionL2, true}, // Huber bias with data-dependent delta_t, l2 retention (Eq. 26)
	{"memora", BiasL2, RetentionKL, false}, // l2 bias, KL retention: softmax of the logits (Eq. 27)
}

func mirasTypes() []layers.MixerType {
	var out []layers.MixerType
	for _, model := range mirasModels {
		out = append(out, layers.MixerType{Name: model.name, Section: "titans", Build: func(section any, dModel int) (layers.Mixer, error) {
			cfg := *section.(*Config)
			if cfg.VariantSetting != "" && cfg.VariantSetting != VariantLMM {
				return nil, fmt.Errorf("titans.variant = %q contradicts layer type %q (the memory alone, variant lmm)", cfg.VariantSetting, model.name)
			}
			if cfg.AttentionalBias != "" && cfg.AttentionalBias != model.bias {
				return nil, fmt.Errorf("titans.attentional_bias = %q contradicts layer type %q (%s); drop the key", cfg.AttentionalBias, model.name, model.bias)
			}
			if cfg.Retention != "" && cfg.Retention != model.retention {
				return nil, fmt.Errorf("titans.retention = %q contradicts layer type %q (%s); drop the key", cfg.Retention, model.name, model.retention)
			}
			cfg.Variant, cfg.AttentionalBias, cfg.Retention = VariantLMM, model.bias, model.retention
			cfg.HuberLearned = cfg.HuberLearned || model.learnedDelta
			return New(cfg, dModel)
		}})
	}
	return out
}

// ForStreaming returns c set up for decoding in calls of any length: the partial chunk carried in the
// state (CarryPartialChunk) where the mode allows it (paper mode, or tp mode without TTT batches), so
// that decoding token by token computes what one call over the whole text computes. The weights are
// the same: only the state grows by the pending tokens.
func (c Config) ForStreaming() Config {
	if c.Normalized().Mode != ModeTP || c.TTTBatchSize == 0 {
		c.CarryPartialChunk = true
	}
	return c
}
