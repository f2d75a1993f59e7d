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
