package model

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Layer is one entry of model.layers: a mixer type, and optionally settings of its section that apply to
// this layer only. In YAML it is either the type's name or a mapping of "type" and the section:
//
//	layers: [gated_deltanet, {type: gated_deltanet, deltanet: {heads: 8}}, swa]
type Layer struct {
	Type string
	// Scope, when set, names the layer's variable scope instead of Type ("scope: gla" in the mapping form):
	// how a run saved under an old type name keeps its checkpoint keys after a rename (configs.ParseSaved).
	Scope string
	// Settings is the per-layer section mapping as YAML ("": the shared section as it is), kept as text
	// so that configs compare by content. Its key, SettingsKey, must be the type's section (deltanet,
	// titans, ...), checked when the model is built.
	Settings    string
	SettingsKey string
}

// LayerTypes is a stack of layers with no per-layer settings.
func LayerTypes(types ...string) []Layer {
	out := make([]Layer, len(types))
	for i, t := range types {
		out[i] = Layer{Type: t}
	}
	return out
}

// ScopeName is the scope the layer's mixer variables live under (layer_<i>/<ScopeName>): Scope, else Type.
func (l Layer) ScopeName() string {
	if l.Scope != "" {
		return l.Scope
	}
	return l.Type
}

// String is the layer's type (with "+<section>" when it has per-layer settings).
func (l Layer) String() string {
	if l.Settings != "" {
		return l.Type + "+" + l.SettingsKey
	}
	return l.Type
}

// UnmarshalYAML reads a type name or {type: name, <section>: {...}}.
func (l *Layer) UnmarshalYAML(node *yaml.Node) error {
	switch node.Kind {
	case yaml.ScalarNode:
		*l = Layer{Type: node.Value}
		return nil
	case yaml.MappingNode:
		out := Layer{}
		for i := 0; i+1 < len(node.Content); i += 2 {
			key, value := node.Content[i], node.Content[i+1]
			switch {
			case key.Value == "type":
				if value.Kind != yaml.ScalarNode {
					return fmt.Errorf("line %d: a layer's type is a mixer type name", value.Line)
				}
				out.Type = value.Value
			case key.Value == "scope":
				if value.Kind != yaml.ScalarNode {
					return fmt.Errorf("line %d: a layer's scope is a name", value.Line)
				}
				out.Scope = value.Value
			case out.Settings != "":
				return fmt.Errorf("line %d: a layer takes one section of settings (%q and %q given)", key.Line, out.SettingsKey, key.Value)
			case value.Kind != yaml.MappingNode:
				return fmt.Errorf("line %d: the layer's %s settings must be a mapping", value.Line, key.Value)
			default:
				body, err := yaml.Marshal(value)
				if err != nil {
					return err
				}
				out.Settings, out.SettingsKey = string(body), key.Value
			}
		}
		if out.Type == "" {
			return fmt.Errorf("line %d: a layer mapping needs a type (e.g. {type: gated_deltanet, deltanet: {heads: 8}})", node.Line)
		}
		*l = out
		return nil
	}
	return fmt.Errorf("line %d: a layer is a mixer type name or {type: ..., <section>: {...}}", node.Line)
}

// MarshalYAML writes the type name alone when the layer has no settings of its own, else the mapping
// with its type first.
func (l Layer) MarshalYAML() (any, error) {
	str := func(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }
	var scope []*yaml.Node
	if l.Scope != "" {
		scope = []*yaml.Node{str("scope"), str(l.Scope)}
	}
	if l.Settings == "" {
		if scope != nil {
			return &yaml.Node{Kind: yaml.MappingNode, Content: append([]*yaml.Node{str("type"), str(l.Type)}, scope...)}, nil
		}
		return l.Type, nil
	}
	var settings yaml.Node
	if err := yaml.Unmarshal([]byte(l.Settings), &settings); err != nil || len(settings.Content) == 0 {
		return nil, fmt.Errorf("layer %s: settings %q: %v", l.Type, l.Settings, err)
	}
	return &yaml.Node{Kind: yaml.MappingNode, Content: append(append([]*yaml.Node{str("type"), str(l.Type)}, scope...),
		str(l.SettingsKey), settings.Content[0])}, nil
}

// decodeSettings decodes the layer's settings onto section (a pointer to the section's config struct)
// with the strictness of experiment files: an unknown key is an error naming it.
func (l Layer) decodeSettings(section any) error {
	dec := yaml.NewDecoder(bytes.NewReader([]byte(l.Settings)))
	dec.KnownFields(true)
	return dec.Decode(section)
}
