package mom

import (
	"github.com/engramlx/engram/internal/field"
	"math"

	"github.com/engramlx/engram/deltanet"
)

// Config holds the hyper-parameters of a Mixture-of-Memories layer. Decode YAML into DefaultConfig()
// so omitted keys keep their defaults.
type Config struct {
	Memories     int  `yaml:"memories"`      // M, the routed memories
	TopK         int  `yaml:"top_k"`         // k, memories each token is routed to
	SharedMemory bool `yaml:"shared_memory"` // one more memory that sees every token with weight 1
	// AuxLossWeight scales flash-linear-attention's load-balancing loss M * sum_m F_m P_m, pooled over
	// every MoM layer of the graph (BalanceLoss, PooledBalanceLoss), added to training graphs: FLA's
	// aux_loss_scale (0 turns it off).
	AuxLossWeight float64 `yaml:"aux_loss_weight"`
	// CapacityFactor sizes each routed memory's token buffer: ceil(capacity_factor * top_k * T / memories)
	// tokens of a call of T (rounded up to whole chunks, at most T; see Capacity). A memory's routed
	// tokens beyond it are dropped from that memory (package doc). 0 means no buffer: every memory
	// processes every token, masked (the reference form; nothing is ever dropped).
	CapacityFactor float64 `yaml:"capacity_factor"`
	// Memory configures every memory (heads, widths, convs, switches, chunk size, mode) and the
	// output norm: the same section a gated_deltanet layer takes.
	Memory deltanet.Config `yaml:"memory"`
}

// DefaultConfig is the paper's setting: 4 memories, top-2 routing, a shared memory, each memory a
// Gated DeltaNet with deltanet's defaults; load-balancing weight 0.01; capacity factor 1.25.
func DefaultConfig() Config {
	return Config{Memories: 4, TopK: 2, SharedMemory: true, AuxLossWeight: 0.01, CapacityFactor: 1.25,
		Memory: deltanet.DefaultConfig()}
}

// capacity is the buffer length of each routed memory in a call over time tokens (time: no buffers).
func (c Config) capacity(time int) int {
	return Capacity(c.CapacityFactor, c.TopK, c.Memories, time, min(c.Memory.ChunkSize, time))
}

// slots is the number of memories the recurrence runs: the routed ones plus the shared one.
func (c Config) slots() int {
	if c.SharedMemory {
		return c.Memories + 1
	}
	return c.Memories
}

// Validate reports the first invalid field as "mom.<yaml key> = <value>: <reason>"; fields of the
// memory section are named "mom.memory.<key>".
func (c Config) Validate() error {
	switch {
	case c.Memories < 1:
		return field.Errorf("mom.memories", c.Memories, "must be >= 1")
	case c.TopK < 1 || c.TopK > c.Memories:
		return field.Errorf("mom.top_k", c.TopK, "must be in [1, memories = %d]", c.Memories)
	case !(c.AuxLossWeight >= 0):
		return field.Errorf("mom.aux_loss_weight", c.AuxLossWeight, "must be >= 0")
	case !(c.CapacityFactor >= 0) || math.IsInf(c.CapacityFactor, 1):
		return field.Errorf("mom.capacity_factor", c.CapacityFactor, "must be >= 0 and finite (0 = no capacity limit)")
	case c.Memory.VHeads != 0 && c.Memory.VHeads != c.Memory.Heads:
		return field.Errorf("mom.memory.v_heads", c.Memory.VHeads, "grouped value heads are not implemented for MoM's memories (leave it 0)")
	}
	if err := c.Memory.Validate(); err != nil {
		return field.Reroot(err, "deltanet", "mom.memory")
	}
	return nil
}
