package deltanet

import (
	"fmt"
	"github.com/engramlx/engram/internal/field"
	"math"
	"sort"
)

// Mode names the implementation the layer trains with.
const (
	ModeChunk = "chunk" // chunkwise-parallel (Chunked): the default, for training
	ModeNaive = "naive" // per-token recurrence (Naive): the reference
)

// Config holds the hyper-parameters of a gated delta rule layer. Decode YAML into DefaultConfig() (or
// a Preset) so omitted keys keep their defaults; the switches default to true.
type Config struct {
	Heads          int     `yaml:"heads"`            // H, the query/key heads
	VHeads         int     `yaml:"v_heads"`          // HV value heads (0 = heads); a multiple of heads groups them (ValueHeads)
	HeadDimK       int     `yaml:"head_dim_k"`       // d_k, the key (and query) width per head
	ExpandV        float64 `yaml:"expand_v"`         // d_v = d_k * expand_v, the value width per head
	UseShortConv   bool    `yaml:"use_short_conv"`   // causal depthwise conv before SiLU on q, k, v
	ConvSize       int     `yaml:"conv_size"`        // its kernel length
	AllowNegEigval bool    `yaml:"allow_neg_eigval"` // beta in (0, 2) instead of (0, 1)
	// Gate (decay alpha_t = exp(g_t); false: alpha = 1) and Delta (delta-rule write; false:
	// S <- alpha S + k v^T) are the switches the layer runs with. In a model they come from the layer
	// type (gated_deltanet, deltanet, mamba2_style, linear_attention); GateSetting and DeltaSetting hold what a
	// config file says ("gate:", "delta:"), which must agree with the type (MixerTypes) or, for MoM's
	// memories, replace the defaults (Resolved).
	Gate         bool    `yaml:"-"`
	Delta        bool    `yaml:"-"`
	GateSetting  *bool   `yaml:"gate,omitempty"`
	DeltaSetting *bool   `yaml:"delta,omitempty"`
	ChunkSize    int     `yaml:"chunk_size"` // C of the chunkwise form
	Mode         string  `yaml:"mode"`       // "chunk" or "naive"
	NormEps      float64 `yaml:"norm_eps"`   // eps of the output RMSNorm
}

// DefaultConfig is Gated DeltaNet as in the paper: short convolutions of kernel 4, values twice as
// wide as keys, chunks of 64.
func DefaultConfig() Config {
	return Config{
		Heads:        4,
		HeadDimK:     32,
		ExpandV:      2,
		UseShortConv: true,
		ConvSize:     4,
		Gate:         true,
		Delta:        true,
		ChunkSize:    64,
		Mode:         ModeChunk,
		NormEps:      1e-5,
	}
}

// presets are the family's members as switch settings over DefaultConfig.
var presets = map[string]Options{
	"gated_deltanet":   GatedDeltaRule,  // Yang, Kautz & Hatamizadeh 2025
	"deltanet":         DeltaRule,       // Schlag et al. 2021; Yang et al. 2024
	"mamba2_style":     GatedLinearAttn, // scalar-gated linear attention with Mamba2's decay (not GLA's per-channel gate)
	"linear_attention": LinearAttention, // Katharopoulos et al. 2020, with the same q/k features
}

// Preset returns DefaultConfig with the switches of a named member of the family: "gated_deltanet",
// "deltanet", "mamba2_style" or "linear_attention". ("gla", the old name of mamba2_style, is now the gla
// package's layer type; configs.ParseSaved maps runs saved with the old name.)
func Preset(name string) (Config, error) {
	opts, ok := presets[name]
	if !ok {
		return Config{}, fmt.Errorf("deltanet: unknown preset %q (want one of %v)", name, PresetNames())
	}
	cfg := DefaultConfig()
	cfg.Gate, cfg.Delta = opts.Gate, opts.Delta
	return cfg, nil
}

// PresetNames lists the names Preset accepts, sorted.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for name := range presets {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Resolved returns c with the switches a config file set (GateSetting, DeltaSetting), the gated delta
// rule's (both on) where it set none: how MoM's memories, which have no layer type, read them.
func (c Config) Resolved() Config {
	c.Gate = c.GateSetting == nil || *c.GateSetting
	c.Delta = c.DeltaSetting == nil || *c.DeltaSetting
	return c
}

// Options returns the op switches of the config.
func (c Config) Options() Options { return Options{Delta: c.Delta, Gate: c.Gate} }

// ValueHeads is HV, the number of value heads (and of states, betas and decays): v_heads, or heads when
// v_heads is 0. Value head j reads q/k head j / (HV/H), as fla's kernels map them (i_h = i_hv // (HV // H),
// i.e. repeat_interleave, not repeat).
func (c Config) ValueHeads() int {
	if c.VHeads == 0 {
		return c.Heads
	}
	return c.VHeads
}

// HeadDimV is d_v = head_dim_k * expand_v.
func (c Config) HeadDimV() int { return int(math.Round(float64(c.HeadDimK) * c.ExpandV)) }

// Validate reports the first invalid field as "deltanet.<yaml key> = <value>: <reason>" (the format of
// layers' configs; a model section for a preset can swap the "deltanet." prefix for its own name).
func (c Config) Validate() error {
	switch {
	case c.Heads < 1:
		return field.Errorf("deltanet.heads", c.Heads, "must be >= 1")
	case c.VHeads < 0 || (c.VHeads > 0 && (c.VHeads < c.Heads || c.VHeads%c.Heads != 0)):
		return field.Errorf("deltanet.v_heads", c.VHeads, "must be 0 (= heads) or a multiple of heads = %d", c.Heads)
	case c.HeadDimK < 1:
		return field.Errorf("deltanet.head_dim_k", c.HeadDimK, "must be >= 1")
	case !(c.ExpandV > 0) || math.Abs(float64(c.HeadDimK)*c.ExpandV-float64(c.HeadDimV())) > 1e-9:
		return field.Errorf("deltanet.expand_v", c.ExpandV, "must be > 0 with head_dim_k * expand_v (head_dim_k = %d) a whole number", c.HeadDimK)
	case c.UseShortConv && c.ConvSize < 2:
		return field.Errorf("deltanet.conv_size", c.ConvSize, "must be >= 2 with use_short_conv")
	case c.ChunkSize < 1:
		return field.Errorf("deltanet.chunk_size", c.ChunkSize, "must be >= 1")
	case c.Mode != ModeChunk && c.Mode != ModeNaive:
		return field.Errorf("deltanet.mode", c.Mode, "want %q or %q", ModeChunk, ModeNaive)
	case !(c.NormEps > 0):
		return field.Errorf("deltanet.norm_eps", c.NormEps, "must be > 0")
	case c.AllowNegEigval && !c.Delta:
		return fmt.Errorf("deltanet.allow_neg_eigval = true: needs delta = true (beta is unused without the delta rule)")
	}
	return nil
}
