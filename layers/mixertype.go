package layers

import (
	"fmt"
	"github.com/engramlx/engram/internal/field"
)

// MixerType is one entry of the model's mixer table: a layer type name of `model.layers`, the config
// section holding its settings, and its constructor. The package that implements a mixer exports its
// entries (layers.MixerTypes, deltanet.MixerTypes, ...); the model lists them in one table, so adding a
// mixer is its package plus one line there.
type MixerType struct {
	// Name is the layer type, e.g. "gated_deltanet".
	Name string
	// Section is the YAML key of the model config section the mixer reads, e.g. "deltanet".
	Section string
	// Build validates section (a pointer to the section's config struct: this layer's copy, with any
	// per-layer settings applied) and returns the mixer for width dModel. A setting that contradicts
	// the layer type is an error naming both.
	Build func(section any, dModel int) (Mixer, error)
	// Deprecated, when set, is the notice a config using this (old) name gets; the name keeps working.
	Deprecated string
}

// MixerTypes are the attention baselines: "attention" (causal softmax attention, section attention)
// and "swa" (sliding-window attention, section sliding_window).
func MixerTypes() []MixerType {
	return []MixerType{
		{Name: "attention", Section: "attention", Build: func(section any, dModel int) (Mixer, error) {
			cfg := *section.(*AttentionConfig)
			if cfg.Window != 0 {
				return nil, fmt.Errorf("attention.window = %d: an \"attention\" layer is full attention; use a \"swa\" layer (sliding_window section) for windowed attention", cfg.Window)
			}
			return NewAttention(cfg, dModel)
		}},
		{Name: "swa", Section: "sliding_window", Build: func(section any, dModel int) (Mixer, error) {
			cfg := *section.(*AttentionConfig)
			if cfg.Window < 1 {
				return nil, fmt.Errorf("sliding_window.window = %d: a \"swa\" layer needs a window >= 1", cfg.Window)
			}
			m, err := NewAttention(cfg, dModel)
			if err != nil {
				return nil, field.Reroot(err, "attention", "sliding_window")
			}
			return m, nil
		}},
	}
}
