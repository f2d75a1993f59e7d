package configs

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/engramlx/engram/model"
	"go.yaml.in/yaml/v3"
)

//go:embed *.yaml
var builtin embed.FS

// Builtin returns the embedded YAML file configs/<name>.yaml.
func Builtin(name string) ([]byte, error) {
	src, err := builtin.ReadFile(strings.TrimSuffix(name, ".yaml") + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no built-in config %q (built-in: %s)", name, strings.Join(BuiltinNames(), ", "))
	}
	return src, nil
}

// BuiltinNames lists the embedded configs, without ".yaml".
func BuiltinNames() []string {
	entries, _ := builtin.ReadDir(".")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(names)
	return names
}

// Load reads an experiment from a YAML file (or, when no such file exists and the name has no
// directory part, the built-in config of that name), applies overrides ("a.b.c=value") in order and
// validates the result.
func Load(file string, overrides []string) (Experiment, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) || strings.ContainsRune(file, os.PathSeparator) {
			return Experiment{}, fmt.Errorf("config file %s: %w", file, err)
		}
		if src, err = Builtin(file); err != nil {
			return Experiment{}, fmt.Errorf("config file %s does not exist, and %w", file, err)
		}
	}
	return Parse(file, src, overrides)
}

// Parse decodes src (named file in errors) over Default(), applies the overrides and validates.
func Parse(file string, src []byte, overrides []string) (Experiment, error) {
	exp := Default()
	if err := decodeStrict(src, &exp); err != nil {
		return Experiment{}, fmt.Errorf("%s: %w", file, err)
	}
	for _, o := range overrides {
		if err := ApplyOverride(&exp, o); err != nil {
			return Experiment{}, err
		}
	}
	if err := exp.Finish(); err != nil {
		return Experiment{}, fmt.Errorf("%s: %w", file, err)
	}
	return exp, nil
}

// Finish is what Parse does once the file and the overrides are in: a warm-up longer than the run is
// clamped (with a notice), the experiment is validated, and deprecated names are noticed and
// normalised. A sweep calls it for each run after applying the run's grid values.
func (exp *Experiment) Finish() error {
	if t := &exp.Train; t.WarmupSteps > t.Steps && t.Steps >= 1 {
		exp.Notices = append(exp.Notices, fmt.Sprintf("train.warmup_steps = %d is longer than train.steps = %d: warm-up clamped to %d steps", t.WarmupSteps, t.Steps, t.Steps))
		t.WarmupSteps = t.Steps
	}
	if err := exp.Validate(); err != nil {
		return err
	}
	exp.Notices = append(exp.Notices, exp.Model.Deprecations()...)
	exp.Model = exp.Model.Normalized()
	return nil
}

// ApplyOverride sets one dotted key from "a.b.c=value", decoding value as YAML with the same strict
// rules as a file (so -set model.layers=[attention,swa] works too).
func ApplyOverride(exp *Experiment, override string) error {
	key, value, ok := strings.Cut(override, "=")
	if !ok || strings.TrimSpace(key) == "" {
		return fmt.Errorf("-set %s: want key=value, e.g. model.d_model=128", override)
	}
	if err := SetKey(exp, key, value); err != nil {
		return fmt.Errorf("-set %s: %w", override, err)
	}
	return nil
}

// SetKey sets the dotted key (e.g. "model.d_model") to value, written as in YAML; the error names what
// is wrong with the key or value but not where it came from (the caller adds that: a -set flag, a sweep
// file's line).
func SetKey(exp *Experiment, key, value string) error {
	key = strings.TrimSpace(key)
	parts := strings.Split(key, ".")
	var doc strings.Builder
	for i, p := range parts {
		if p == "" {
			return fmt.Errorf("empty segment in key %q", key)
		}
		fmt.Fprintf(&doc, "%s%s:", strings.Repeat("  ", i), p)
		if i < len(parts)-1 {
			doc.WriteString("\n")
		}
	}
	doc.WriteString(" " + value + "\n")
	if err := decodeStrict([]byte(doc.String()), exp); err != nil {
		return errors.New(lineNumber.ReplaceAllString(err.Error(), "$1"))
	}
	return nil
}

var (
	unknownField = regexp.MustCompile(`field (\S+) not found in type (\S+)`)
	wrongType    = regexp.MustCompile("cannot unmarshal !!(\\w+) `([^`]*)` into (\\S+)")
	lineNumber   = regexp.MustCompile(`(^|; )line \d+: `)
	lineOf       = regexp.MustCompile(`line (\d+): `)
)

// keysByLine maps each line number (as text) holding a scalar value to the dotted key path of that
// value ("model.d_model"), for messages that name a line only.
func keysByLine(src []byte) map[string]string {
	out := map[string]string{}
	var doc yaml.Node
	if yaml.Unmarshal(src, &doc) != nil || len(doc.Content) == 0 {
		return out
	}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				key := n.Content[i].Value
				if path != "" {
					key = path + "." + key
				}
				walk(n.Content[i+1], key)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		case yaml.ScalarNode:
			if _, seen := out[fmt.Sprint(n.Line)]; !seen {
				out[fmt.Sprint(n.Line)] = path
			}
		}
	}
	walk(doc.Content[0], "")
	return out
}

// DecodeStrict decodes YAML into out with the rules of experiment files: unknown keys are errors, one
// line per problem naming its line. Formats built around experiments (sweep files) use it so their
// messages read the same.
func DecodeStrict(src []byte, out any) error { return decodeStrict(src, out) }

// decodeStrict decodes YAML into out, refusing unknown keys, and rewrites yaml's messages into one line
// per problem: `line 3: unknown key "d_modle" in model.Config`.
func decodeStrict(src []byte, out any) error {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	err := dec.Decode(out)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	var typeErr *yaml.TypeError
	if errors.As(err, &typeErr) {
		keys := keysByLine(src)
		msgs := make([]string, len(typeErr.Errors))
		for i, m := range typeErr.Errors {
			m = unknownField.ReplaceAllString(m, `unknown key "$1" in $2`)
			if wrongType.MatchString(m) {
				// yaml names the line, not the key: add the key path whose value sits on that line.
				if at := lineOf.FindStringSubmatch(m); at != nil && keys[at[1]] != "" {
					m = strings.Replace(m, at[0], at[0]+keys[at[1]]+": ", 1)
				}
			}
			m = wrongType.ReplaceAllString(m, `cannot use $1 "$2" as $3`)
			m = strings.Replace(m, "cannot use str ", "cannot use string ", 1)
			msgs[i] = m
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if !lineNumber.MatchString(msg) {
		msg = strings.ReplaceAll(msg, "\n", " ")
	}
	return errors.New(msg)
}

// Marshal renders the resolved experiment as YAML (saved beside every run).
func Marshal(exp Experiment) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(exp); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

// BaseName is the run name a config file suggests: its file name without extension.
func BaseName(file string) string { return strings.TrimSuffix(path.Base(file), path.Ext(file)) }

// legacyKeys are settings earlier Engram builds wrote into every run's config.yaml although the layer
// type decided them (model.deltanet.gate / delta from gated_deltanet, gla, ...; model.titans.variant
// from titans_mac, ...). They are now errors when they contradict the type, so ParseSaved drops them.
var legacyKeys = map[string][]string{"deltanet": {"gate", "delta"}, "titans": {"variant"}}

// ParseSaved is Parse for a run's own saved config.yaml: the settings earlier builds saved although the
// layer type decided them (legacyKeys) are dropped first, and layer types since renamed are mapped
// (renameLegacyGLA), so runs from before resume (upgradeSavedModel).
func ParseSaved(file string, src []byte) (Experiment, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil || len(doc.Content) == 0 {
		return Parse(file, src, nil)
	}
	if m := mappingValue(doc.Content[0], "model"); m != nil {
		upgradeSavedModel(m)
	}
	cleaned, err := yaml.Marshal(&doc)
	if err != nil {
		return Parse(file, src, nil)
	}
	return Parse(file, cleaned, nil)
}

// upgradeSavedModel rewrites a model section saved by an earlier build into today's names: legacyKeys
// dropped, renamed layer types mapped.
func upgradeSavedModel(m *yaml.Node) {
	for section, keys := range legacyKeys {
		if sec := mappingValue(m, section); sec != nil {
			for _, key := range keys {
				removeKey(sec, key)
			}
		}
	}
	renameLegacyGLA(m)
}

// DecodeSavedModel decodes a model section that an earlier build may have written (an export's
// config.json architecture, JSON or YAML) into into, strictly, after the upgrades ParseSaved applies to a
// run's config.yaml: an export of a model whose "gla" layers were the scalar-gated delta-rule member
// loads as that member, not as today's GLA.
func DecodeSavedModel(raw []byte, into *model.Config) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return err
	}
	if len(doc.Content) > 0 {
		upgradeSavedModel(doc.Content[0])
	}
	body, err := yaml.Marshal(&doc)
	if err != nil {
		return err
	}
	return decodeStrict(body, into)
}

// renameLegacyGLA maps the layer type "gla" of a model section saved before the gla package to what it
// meant then, deltanet's scalar-gated member (now "mamba2_style"), keeping "gla" as the layer's scope so
// its checkpoint keys (layer_<i>/gla/...) still match. The marker is the missing "gla" section: every
// build since writes all model sections into the saved config (gla included, used or not), and no
// earlier build accepted a "gla" key there (sections decode strictly).
func renameLegacyGLA(m *yaml.Node) {
	layerList := mappingValue(m, "layers")
	if mappingValue(m, "gla") != nil || layerList == nil || layerList.Kind != yaml.SequenceNode {
		return
	}
	str := func(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }
	for i, l := range layerList.Content {
		switch {
		case l.Kind == yaml.ScalarNode && l.Value == "gla":
			layerList.Content[i] = &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
				str("type"), str("mamba2_style"), str("scope"), str("gla")}}
		case l.Kind == yaml.MappingNode:
			if t := mappingValue(l, "type"); t != nil && t.Value == "gla" && mappingValue(l, "scope") == nil {
				t.Value = "mamba2_style"
				l.Content = append(l.Content, str("scope"), str("gla"))
			}
		}
	}
}

// mappingValue is the value node of key in a mapping node (nil if absent or not a mapping).
func mappingValue(node *yaml.Node, key string) *yaml.Node {
	if node == nil || node.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == key {
			return node.Content[i+1]
		}
	}
	return nil
}

// removeKey deletes key from a mapping node.
func removeKey(node *yaml.Node, key string) {
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == key {
			node.Content = append(node.Content[:i], node.Content[i+2:]...)
			return
		}
	}
}
