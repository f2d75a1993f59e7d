package model

import (
	"fmt"
	"github.com/engramlx/engram/internal/field"
	"reflect"
	"sort"
	"strings"

	"github.com/engramlx/engram/deltanet"
	"github.com/engramlx/engram/gla"
	"github.com/engramlx/engram/layers"
	"github.com/engramlx/engram/mamba2"
	"github.com/engramlx/engram/mom"
	"github.com/engramlx/engram/titans"
	"github.com/gomlx/compute/dtypes"
)

// Config describes a decoder stack. Mixer hyper-parameters live in one section per family; the Layers
// list picks a type per layer, which is how hybrids are written, and a layer may override its section
// for itself alone:
//
//	layers: [gated_deltanet, swa, {type: gated_deltanet, deltanet: {heads: 8}}, swa]
type Config struct {
	Vocab  int `yaml:"vocab"`
	DModel int `yaml:"d_model"`
	// Layers lists the mixer type of each layer (see Types()), with optional per-layer settings.
	Layers []Layer `yaml:"layers"`
	// MLPHidden is the SwiGLU hidden width; 0 means 8/3 d_model rounded up to a multiple of 8, and -1
	// removes the MLP sub-block.
	MLPHidden     int     `yaml:"mlp_hidden"`
	TieEmbeddings bool    `yaml:"tie_embeddings"`
	NormEps       float64 `yaml:"norm_eps"`
	// DType is the variables' and activations' type: float32 (default) or float64.
	DType string `yaml:"dtype"`

	Attention     layers.AttentionConfig `yaml:"attention"`      // "attention" layers
	SlidingWindow layers.AttentionConfig `yaml:"sliding_window"` // "swa" layers
	// Titans configures titans_lmm / titans_mac / titans_mag / titans_mal layers (the layer type sets
	// the variant).
	Titans titans.Config `yaml:"titans"`
	// DeltaNet configures gated_deltanet / deltanet / mamba2_style / linear_attention layers (the layer type sets
	// the gate and delta switches).
	DeltaNet deltanet.Config `yaml:"deltanet"`
	// GLA configures "gla" layers (gated linear attention with per-channel gates, Yang et al. 2024).
	GLA gla.Config `yaml:"gla"`
	// MoM configures "mom" layers (mixture of gated-delta-rule memories; its memory section is a
	// deltanet section).
	MoM mom.Config `yaml:"mom"`
	// Mamba2 configures "mamba2" layers (Dao & Gu 2024).
	Mamba2 mamba2.Config `yaml:"mamba2"`
}

// DefaultConfig is a small attention model over a 256-token vocabulary.
func DefaultConfig() Config {
	swa := layers.DefaultAttentionConfig()
	swa.Window = 64
	return Config{
		Vocab: 256, DModel: 64, Layers: LayerTypes("attention", "attention"),
		NormEps: 1e-6, DType: "float32",
		Attention: layers.DefaultAttentionConfig(), SlidingWindow: swa,
		Titans: titans.DefaultConfig(), DeltaNet: deltanet.DefaultConfig(), GLA: gla.DefaultConfig(), MoM: mom.DefaultConfig(),
		Mamba2: mamba2.DefaultConfig(),
	}
}

// Validate checks every field and the section of every layer (by building its mixer), naming the
// field and value.
func (c Config) Validate() error {
	if err := c.validateFields(); err != nil {
		return err
	}
	_, err := c.buildMixers()
	return err
}

// validateFields checks the stack's own fields.
func (c Config) validateFields() error {
	switch {
	case c.Vocab < 2:
		return fmt.Errorf("model.vocab = %d: must be >= 2", c.Vocab)
	case c.DModel < 1:
		return fmt.Errorf("model.d_model = %d: must be >= 1", c.DModel)
	case len(c.Layers) == 0:
		return fmt.Errorf("model.layers is empty: list one mixer type per layer (%s)", strings.Join(Types(), ", "))
	case c.MLPHidden < -1:
		return fmt.Errorf("model.mlp_hidden = %d: must be >= 1, 0 (default width) or -1 (no MLP)", c.MLPHidden)
	case c.NormEps <= 0:
		return fmt.Errorf("model.norm_eps = %g: must be > 0", c.NormEps)
	}
	_, err := c.dtype()
	return err
}

// buildMixers builds every layer's mixer from the table: its section (the shared one, with the layer's
// own settings applied), validated by the mixer package. Errors name the layer and the field.
func (c Config) buildMixers() ([]layers.Mixer, error) {
	mixers := make([]layers.Mixer, len(c.Layers))
	table := mixerTable()
	for i, l := range c.Layers {
		entry, ok := table[l.Type]
		if !ok {
			return nil, fmt.Errorf("model.layers[%d] = %q: unknown mixer type (known: %s)", i, l.Type, strings.Join(Types(), ", "))
		}
		var section any
		if entry.Section != "" {
			var err error
			if section, err = c.section(entry.Section); err != nil {
				return nil, err
			}
		}
		if l.Settings != "" {
			if l.SettingsKey != entry.Section || entry.Section == "" {
				return nil, fmt.Errorf("model.layers[%d]: %q settings on a %s layer, whose section is %q", i, l.SettingsKey, l.Type, entry.Section)
			}
			if err := l.decodeSettings(section); err != nil {
				return nil, fmt.Errorf("model.layers[%d].%s: %w", i, entry.Section, err)
			}
		}
		var err error
		if mixers[i], err = entry.Build(section, c.DModel); err != nil {
			if l.Settings != "" {
				return nil, fmt.Errorf("model.layers[%d]: %w", i, err)
			}
			return nil, field.In("model", err)
		}
	}
	return mixers, nil
}

// section returns a pointer to a copy of the config section with YAML key name.
func (c Config) section(name string) (any, error) {
	f := sectionField(reflect.ValueOf(c), name)
	if !f.IsValid() {
		return nil, fmt.Errorf("model: no config section %q (a mixer table entry names a section model.Config lacks)", name)
	}
	copied := reflect.New(f.Type())
	copied.Elem().Set(f)
	return copied.Interface(), nil
}

// sectionField is the field of config struct v with YAML key name (invalid when there is none).
func sectionField(v reflect.Value, name string) reflect.Value {
	for i := 0; i < v.NumField(); i++ {
		if tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ","); tag == name {
			return v.Field(i)
		}
	}
	return reflect.Value{}
}

func (c Config) dtype() (dtypes.DType, error) {
	switch c.DType {
	case "", "float32":
		return dtypes.Float32, nil
	case "float64":
		return dtypes.Float64, nil
	}
	return dtypes.InvalidDType, fmt.Errorf("model.dtype = %q: want float32 or float64", c.DType)
}

func (c Config) mlpHidden() int {
	if c.MLPHidden != 0 {
		return c.MLPHidden
	}
	return (8*c.DModel/3 + 7) / 8 * 8
}

// mixerTables are the mixer packages' entries: the one place a new mixer is listed (with its section
// in Config when it has settings). Mixer packages never import model: model imports them.
var mixerTables = [][]layers.MixerType{
	layers.MixerTypes(),   // attention, swa
	deltanet.MixerTypes(), // gated_deltanet, deltanet, mamba2_style, linear_attention
	gla.MixerTypes(),      // gla
	titans.MixerTypes(),   // titans_lmm, titans_mac, titans_mag, titans_mal, moneta, yaad, memora
	mom.MixerTypes(),      // mom
	mamba2.MixerTypes(),   // mamba2
}

// mixerTable maps each layer type to its entry.
func mixerTable() map[string]layers.MixerType {
	table := map[string]layers.MixerType{}
	for _, entries := range mixerTables {
		for _, e := range entries {
			table[e.Name] = e
		}
	}
	return table
}

// Types lists the known mixer types, sorted.
func Types() []string {
	table := mixerTable()
	names := make([]string, 0, len(table))
	for name := range table {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// InUse returns c with the mixer sections no layer uses set to zero, so two configs that differ only in
// sections nothing reads (a sweep's shared base gaining a mom section, say) compare equal.
func (c Config) InUse() Config {
	out := c
	for _, name := range c.UnusedSections() {
		if f := sectionField(reflect.ValueOf(&out).Elem(), name); f.IsValid() {
			f.Set(reflect.Zero(f.Type()))
		}
	}
	return out
}

// UnusedSections lists the YAML keys of the mixer sections no layer of c reads (sorted).
func (c Config) UnusedSections() []string {
	used := map[string]bool{}
	table := mixerTable()
	for _, l := range c.Layers {
		used[table[l.Type].Section] = true
	}
	seen := map[string]bool{}
	var out []string
	for _, entries := range mixerTables {
		for _, e := range entries {
			if e.Section != "" && !used[e.Section] && !seen[e.Section] {
				seen[e.Section] = true
				out = append(out, e.Section)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Deprecations are the notices of the deprecated layer types and settings c uses (one each).
func (c Config) Deprecations() []string {
	table := mixerTable()
	seen := map[string]bool{}
	var out []string
	for _, l := range c.Layers {
		if notice := table[l.Type].Deprecated; notice != "" && !seen[l.Type] {
			seen[l.Type] = true
			out = append(out, notice)
		}
		if section := table[l.Type].Section; section == "titans" && !seen[section] {
			seen[section] = true
			out = append(out, c.Titans.Deprecations()...)
		}
	}
	return out
}

// ForStreaming returns c set up for decoding in calls of any length (the same weights): Titans layers
// carry their partial chunk in the state where their mode allows (titans.Config.ForStreaming), so a
// stream split anywhere computes what one call computes. Evaluation streaming and state export use it.
func (c Config) ForStreaming() Config {
	c.Titans = c.Titans.ForStreaming()
	return c
}

// Normalized returns c with old setting names replaced by the current ones (titans.mode "tp" ->
// "titans_pytorch"), so configs written before and after a rename compare equal.
func (c Config) Normalized() Config {
	c.Titans = c.Titans.Normalized()
	return c
}
