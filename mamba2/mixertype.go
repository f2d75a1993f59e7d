package mamba2

import "github.com/engramlx/engram/layers"

// MixerTypes is the "mamba2" layer type, reading the mamba2 section.
func MixerTypes() []layers.MixerType {
	return []layers.MixerType{{Name: "mamba2", Section: "mamba2", Build: func(section any, dModel int) (layers.Mixer, error) {
		return New(*section.(*Config), dModel)
	}}}
}
