package mom

import "github.com/engramlx/engram/layers"

// MixerTypes is the "mom" layer type, reading the mom section.
func MixerTypes() []layers.MixerType {
	return []layers.MixerType{{Name: "mom", Section: "mom", Build: func(section any, dModel int) (layers.Mixer, error) {
		return New(*section.(*Config), dModel)
	}}}
}
