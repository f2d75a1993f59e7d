package checkpoints

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"

	"go.yaml.in/yaml/v3"
)

// EncodeArchitecture encodes a config struct as JSON keyed by its YAML field names (d_model, not
// DModel), so config.json reads like the experiment files and decodes back with the same strictness.
func EncodeArchitecture(cfg any) (json.RawMessage, error) {
	body, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("architecture: %w", err)
	}
	var tree any
	if err := yaml.Unmarshal(body, &tree); err != nil {
		return nil, fmt.Errorf("architecture: %w", err)
	}
	out, err := json.Marshal(tree)
	if err != nil {
		return nil, fmt.Errorf("architecture: %w", err)
	}
	return out, nil
}

// DecodeArchitecture decodes raw (from EncodeArchitecture) into the config struct into points to.
// Unknown keys are errors naming the key: a config written by a newer Engram fails loudly.
func DecodeArchitecture(raw json.RawMessage, into any) error {
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return fmt.Errorf("architecture: %w", err)
	}
	body, err := yaml.Marshal(tree)
	if err != nil {
		return fmt.Errorf("architecture: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(body))
	dec.KnownFields(true)
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("architecture: %w", err)
	}
	return nil
}

// DiffArchitecture lists the keys whose values differ between two encoded architectures, as
// "key.path: a -> b" sorted by key; nil when they are equal.
func DiffArchitecture(a, b json.RawMessage) []string {
	var ta, tb any
	if json.Unmarshal(a, &ta) != nil || json.Unmarshal(b, &tb) != nil {
		if bytes.Equal(a, b) {
			return nil
		}
		return []string{fmt.Sprintf("(unparsable): %s -> %s", a, b)}
	}
	var out []string
	diffTrees(ta, tb, "", &out)
	sort.Strings(out)
	return out
}

func diffTrees(a, b any, path string, out *[]string) {
	ma, aIsMap := a.(map[string]any)
	mb, bIsMap := b.(map[string]any)
	if aIsMap && bIsMap {
		keys := map[string]bool{}
		for k := range ma {
			keys[k] = true
		}
		for k := range mb {
			keys[k] = true
		}
		for k := range keys {
			sub := k
			if path != "" {
				sub = path + "." + k
			}
			diffTrees(ma[k], mb[k], sub, out)
		}
		return
	}
	if !reflect.DeepEqual(a, b) {
		*out = append(*out, fmt.Sprintf("%s: %v -> %v", path, jsonText(a), jsonText(b)))
	}
}

func jsonText(v any) string {
	if v == nil {
		return "(absent)"
	}
	body, _ := json.Marshal(v)
	return string(body)
}
