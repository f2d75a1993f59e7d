package model

import (
	"fmt"
	"sort"
	"strings"

	"github.com/engramlx/engram/deltanet"
	"github.com/engramlx/engram/layers"
	"github.com/engramlx/engram/mom"
	"github.com/engramlx/engram/titans"
	"github.com/gomlx/compute/dtypes"
)

// Config describes a decoder stack. Mixer hyper-parameters live in one section per family; the Layers
// list picks a family per layer, which is how hybrids are written:
//
//	layers: [gated_deltanet, swa, gated_deltanet, swa]
type Config struct {
	Vocab  int `yaml:"vocab"`
	DModel int `yaml:"d_model"`
	// Layers lists the mixer type of each layer (see Types()).
	Layers []string `yaml:"layers"`
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
	// DeltaNet configures gated_deltanet / deltanet / gla / linear_attention layers (the layer type sets
	// the gate and delta switches).
	DeltaNet deltanet.Config `yaml:"deltanet"`
	// MoM configures "mom" layers (mixture of gated-delta-rule memories; its memory section is a
	// deltanet section).
	MoM mom.Config `yaml:"mom"`
}

// DefaultConfig is a small attention model over a 256-token vocabulary.
func DefaultConfig() Config {
	swa := layers.DefaultAttentionConfig()
	swa.Window = 64
	return Config{
		Vocab: 256, DModel: 64, Layers: []string{"attention", "attention"},
		NormEps: 1e-6, DType: "float32",
		Attention: layers.DefaultAttentionConfig(), SlidingWindow: swa,
		Titans: titans.DefaultConfig(), DeltaNet: deltanet.DefaultConfig(), MoM: mom.DefaultConfig(),
	}
}

// Validate checks every field and the section of every mixer type in use, naming the field and value.
func (c Config) Validate() error {
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
	if _, err := c.dtype(); err != nil {
		return err
	}
	for i, t := range c.Layers {
		if _, ok := mixerTypes[t]; !ok {
			return fmt.Errorf("model.layers[%d] = %q: unknown mixer type (known: %s)", i, t, strings.Join(Types(), ", "))
		}
	}
	for _, t := range c.Layers {
		if _, err := mixerTypes[t](&c); err != nil {
			return fmt.Errorf("model.%v", err)
		}
	}
	return nil
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

// mixerTypes maps a layer type to its constructor. Mixer packages never import model: model imports them.
var mixerTypes = map[string]func(c *Config) (layers.Mixer, error){
	"attention": func(c *Config) (layers.Mixer, error) {
		if c.Attention.Window != 0 {
			return nil, fmt.Errorf("attention.window = %d: use a \"swa\" layer (sliding_window section) for windowed attention", c.Attention.Window)
		}
		return layers.NewAttention(c.Attention, c.DModel)
	},
	"mom": func(c *Config) (layers.Mixer, error) { return mom.New(c.MoM, c.DModel) },
	"swa": func(c *Config) (layers.Mixer, error) {
		if c.SlidingWindow.Window < 1 {
			return nil, fmt.Errorf("sliding_window.window = %d: a \"swa\" layer needs a window >= 1", c.SlidingWindow.Window)
		}
		m, err := layers.NewAttention(c.SlidingWindow, c.DModel)
		if err != nil {
			return nil, fmt.Errorf("sliding_window.%s", strings.TrimPrefix(err.Error(), "attention."))
		}
		return m, nil
	},
}

func init() {
	for _, name := range deltanet.PresetNames() {
		mixerTypes[name] = func(c *Config) (layers.Mixer, error) {
			preset, _ := deltanet.Preset(name)
			cfg := c.DeltaNet
			cfg.Gate, cfg.Delta = preset.Gate, preset.Delta
			layer, err := deltanet.New(cfg, c.DModel)
			if err != nil {
				return nil, err
			}
			return layer, nil
		}
	}
	for _, variant := range []string{"lmm", "mac", "mag", "mal"} {
		mixerTypes["titans_"+variant] = func(c *Config) (layers.Mixer, error) {
			cfg := c.Titans
			cfg.Variant = variant
			return titans.New(cfg, c.DModel)
		}
	}
}

// Types lists the known mixer types, sorted.
func Types() []string {
	names := make([]string, 0, len(mixerTypes))
	for name := range mixerTypes {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// InUse returns c with the mixer sections no layer uses set to zero, so two configs that differ only in
// sections nothing reads (a sweep's shared base gaining a mom section, say) compare equal.
func (c Config) InUse() Config {
	used := map[string]bool{}
	for _, t := range c.Layers {
		switch {
		case t == "attention":
			used["attention"] = true
		case t == "swa":
			used["sliding_window"] = true
		case strings.HasPrefix(t, "titans_"):
			used["titans"] = true
		case t == "mom":
			used["mom"] = true
		default:
			used["deltanet"] = true
		}
	}
	out := c
	if !used["attention"] {
		out.Attention = layers.AttentionConfig{}
	}
	if !used["sliding_window"] {
		out.SlidingWindow = layers.AttentionConfig{}
	}
	if !used["titans"] {
		out.Titans = titans.Config{}
	}
	if !used["mom"] {
		out.MoM = mom.Config{}
	}
	if !used["deltanet"] {
		out.DeltaNet = deltanet.Config{}
	}
	return out
}
