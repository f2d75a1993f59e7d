package configs

import (
	"strings"
	"testing"
)

// FuzzParseConfig: any YAML and any override either decodes to a valid experiment or returns an error
// (one line, naming the file or the override); it never panics.
func FuzzParseConfig(f *testing.F) {
	src, _ := Builtin("quickstart")
	f.Add(string(src), "train.steps=3")
	f.Add("model: {layers: [swa]}\n", "model.sliding_window.window=0")
	f.Add("name: [\n", "=")
	f.Fuzz(func(t *testing.T, yaml, override string) {
		_, err := Parse("fuzz.yaml", []byte(yaml), []string{override})
		if err != nil && strings.TrimSpace(err.Error()) == "" {
			t.Fatalf("empty error message")
		}
	})
}
