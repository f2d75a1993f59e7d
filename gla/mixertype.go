package gla

import "github.com/engramlx/engram/layers"

// MixerTypes is the layer type "gla" (section gla): flash-linear-attention's GatedLinearAttention. (Runs
// saved before this package existed used "gla" for deltanet's scalar-gated member, now "mamba2_style";
// configs.ParseSaved maps them.)
func MixerTypes() []layers.MixerType {
	return []layers.MixerType{{Name: "gla", Section: "gla", Build: func(section any, dModel int) (layers.Mixer, error) {
		return New(*section.(*Config), dModel)
	}}}
}
