package mamba2

import (
	"github.com/engramlx/engram/internal/field"
)

// Mode names the implementation the layer trains with.
const (
	ModeChunk = "chunk" // chunkwise-parallel SSD form (Chunked): the default, for training
	ModeNaive = "naive" // per-token recurrence (Naive): the reference
)

// Config holds the hyper-parameters of a Mamba2 layer. Decode YAML into DefaultConfig() so omitted
// keys keep their defaults. The inner width is d = heads * head_dim (fla's and mamba_ssm's
// intermediate_size = expand * hidden_size; here it is given by its factors, so expand = d / d_model).
type Config struct {
	Heads     int     `yaml:"heads"`      // H
	HeadDim   int     `yaml:"head_dim"`   // P, the width of x per head
	StateSize int     `yaml:"state_size"` // N, the width of B and C
	Groups    int     `yaml:"n_groups"`   // G: B and C per group of H/G heads (and the norm's groups)
	ConvSize  int     `yaml:"conv_size"`  // kernel of the causal depthwise conv over x, B, C
	ChunkSize int     `yaml:"chunk_size"` // C of the chunkwise form
	Mode      string  `yaml:"mode"`       // "chunk" or "naive"
	NormEps   float64 `yaml:"norm_eps"`   // eps of the gated RMSNorm
}

// DefaultConfig is a small research layer with Mamba2's structure: 4 heads of 32, state 32, one group,
// conv kernel 4, chunks of 64 (Mamba2's own defaults are head_dim 64, state 128, chunks of 256).
func DefaultConfig() Config {
	return Config{
		Heads:     4,
		HeadDim:   32,
		StateSize: 32,
		Groups:    1,
		ConvSize:  4,
		ChunkSize: 64,
		Mode:      ModeChunk,
		NormEps:   1e-5,
	}
}

// Inner is d = H * P, the width of x and z.
func (c Config) Inner() int { return c.Heads * c.HeadDim }

// ConvDim is the number of convolved channels: x, B and C, d + 2 G N.
func (c Config) ConvDim() int { return c.Inner() + 2*c.Groups*c.StateSize }

// ProjDim is the width of in_proj's output: z [d], xBC [ConvDim], dt [H], in that order.
func (c Config) ProjDim() int { return c.Inner() + c.ConvDim() + c.Heads }

// Validate reports the first invalid field as "mamba2.<yaml key> = <value>: <reason>".
func (c Config) Validate() error {
	switch {
	case c.Heads < 1:
		return field.Errorf("mamba2.heads", c.Heads, "must be >= 1")
	case c.HeadDim < 1:
		return field.Errorf("mamba2.head_dim", c.HeadDim, "must be >= 1")
	case c.StateSize < 1:
		return field.Errorf("mamba2.state_size", c.StateSize, "must be >= 1")
	case c.Groups < 1 || c.Heads%c.Groups != 0:
		return field.Errorf("mamba2.n_groups", c.Groups, "must be >= 1 and divide heads (%d)", c.Heads)
	case c.ConvSize < 2:
		return field.Errorf("mamba2.conv_size", c.ConvSize, "must be >= 2")
	case c.ChunkSize < 1:
		return field.Errorf("mamba2.chunk_size", c.ChunkSize, "must be >= 1")
	case c.Mode != ModeChunk && c.Mode != ModeNaive:
		return field.Errorf("mamba2.mode", c.Mode, "want %q or %q", ModeChunk, ModeNaive)
	case !(c.NormEps > 0):
		return field.Errorf("mamba2.norm_eps", c.NormEps, "must be > 0")
	}
	return nil
}
