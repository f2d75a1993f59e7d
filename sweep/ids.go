package sweep

import (
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// render turns a YAML value into the text of an override value, in flow style ("[a, b]", "{heads: 2}").
func render(n *yaml.Node) (string, error) {
	out, err := yaml.Marshal(flow(n))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

func flow(n *yaml.Node) *yaml.Node {
	c := *n
	c.HeadComment, c.LineComment, c.FootComment = "", "", ""
	if c.Kind == yaml.SequenceNode || c.Kind == yaml.MappingNode {
		c.Style = yaml.FlowStyle
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, child := range n.Content {
			c.Content[i] = flow(child)
		}
	}
	return &c
}

// label is a value's short text: a scalar as written, a list of scalars joined by "+".
func label(n *yaml.Node, rendered string) string {
	if n.Kind == yaml.ScalarNode {
		return n.Value
	}
	if n.Kind == yaml.SequenceNode {
		var parts []string
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return rendered
			}
			parts = append(parts, c.Value)
		}
		return strings.Join(parts, "+")
	}
	return rendered
}

var unsafeID = regexp.MustCompile(`[^A-Za-z0-9._+-]+`)

// idSafe keeps a label usable inside a directory name and an id ("=" and "," separate settings).
func idSafe(label string) string { return unsafeID.ReplaceAllString(label, "_") }

// shortKeys names each key by its last segment unless two keys share it.
func shortKeys(keys []string) []string {
	count := map[string]int{}
	last := func(k string) string { return k[strings.LastIndex(k, ".")+1:] }
	for _, k := range keys {
		count[last(k)]++
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = last(k)
		if count[out[i]] > 1 || out[i] == "seed" {
			out[i] = k
		}
	}
	return out
}

func uniqueSeeds(seeds []uint64) error {
	seen := map[uint64]bool{}
	for i, s := range seeds {
		if seen[s] {
			return fmt.Errorf("seeds[%d] = %d appears twice", i, s)
		}
		seen[s] = true
	}
	return nil
}
