package deltanet

import (
	"fmt"

	"github.com/engramlx/engram/layers"
)

// MixerTypes are the family's layer types, all reading the deltanet section: gated_deltanet, deltanet,
// mamba2_style (the scalar-gated member, once named "gla": see configs.ParseSaved) and linear_attention. The type sets the gate and delta
// switches; a section that sets them otherwise is an error naming both (see Config.Gate).
func MixerTypes() []layers.MixerType {
	var out []layers.MixerType
	for _, name := range PresetNames() {
		out = append(out, layers.MixerType{Name: name, Section: "deltanet", Build: func(section any, dModel int) (layers.Mixer, error) {
			cfg, err := forPreset(*section.(*Config), name, "deltanet")
			if err != nil {
				return nil, err
			}
			return New(cfg, dModel)
		}})
	}
	return out
}

// forPreset returns cfg with the switches of preset name, or an error when the section (YAML key
// sectionKey) set a switch to another value.
func forPreset(cfg Config, name, sectionKey string) (Config, error) {
	opts := presets[name]
	for _, s := range []struct {
		key      string
		set      *bool
		want     bool
		resolved *bool
	}{{"gate", cfg.GateSetting, opts.Gate, &cfg.Gate}, {"delta", cfg.DeltaSetting, opts.Delta, &cfg.Delta}} {
		if s.set != nil && *s.set != s.want {
			return Config{}, fmt.Errorf("%s.%s = %v contradicts layer type %q (which has %s %v); use the layer type of the family member you want (%v) or drop the key",
				sectionKey, s.key, *s.set, name, s.key, s.want, PresetNames())
		}
		*s.resolved = s.want
	}
	return cfg, nil
}
