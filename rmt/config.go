package rmt

import "fmt"

// Config is the `rmt:` section of an experiment. With Enabled false the backbone runs on whole rows as
// it would without this package.
type Config struct {
	Enabled bool `yaml:"enabled"`
	// MemorySize is m, the number of memory vectors (0: segments are processed independently).
	MemorySize int `yaml:"memory_size"`
	// SegmentLen is S, the tokens per segment (the last segment of a row may be shorter).
	SegmentLen int `yaml:"segment_len"`
	// ReadOnly drops the write copy: the next memory is read from the read positions (the paper's
	// ablation; under causal attention it cannot carry segment content).
	ReadOnly bool `yaml:"read_only"`
	// BPTTDepth is how many segments, the current one included, gradients flow through; 0 = all.
	BPTTDepth int `yaml:"bptt_depth"`
	// Curriculum draws the segment count of each training batch uniformly from 1..n, n being the
	// task's row length over SegmentLen (data.Curriculum).
	Curriculum bool `yaml:"curriculum"`
	// CarryState carries the backbone's own state (a recurrent mixer's S, say) from one segment to the
	// next, besides the memory tokens. Off, every segment starts the backbone from its zero state and
	// the memory is the only path between segments (the paper's setting). Not for backbones with full
	// attention, whose KV cache would grow with every segment.
	CarryState bool `yaml:"carry_state"`
}

// DefaultConfig is disabled, with 8 memory vectors over 64-token segments and full BPTT.
func DefaultConfig() Config {
	return Config{MemorySize: 8, SegmentLen: 64}
}

// Validate names the field and value that are wrong. A disabled config is always valid.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	switch {
	case c.MemorySize < 0:
		return fmt.Errorf("rmt.memory_size = %d: must be >= 0", c.MemorySize)
	case c.SegmentLen < 1:
		return fmt.Errorf("rmt.segment_len = %d: must be >= 1", c.SegmentLen)
	case c.BPTTDepth < 0:
		return fmt.Errorf("rmt.bptt_depth = %d: must be >= 0 (0 = through every segment)", c.BPTTDepth)
	case c.ReadOnly && c.MemorySize == 0:
		return fmt.Errorf("rmt.read_only = true with rmt.memory_size = 0: a read-only memory needs memory_size >= 1")
	}
	return nil
}

// Positions is the backbone sequence length of one full segment: S plus the memory copies.
func (c Config) Positions() int {
	if c.ReadOnly {
		return c.SegmentLen + c.MemorySize
	}
	return c.SegmentLen + 2*c.MemorySize
}

// Segments is the number of segments of a row of seqLen tokens.
func (c Config) Segments(seqLen int) int { return (seqLen + c.SegmentLen - 1) / c.SegmentLen }
