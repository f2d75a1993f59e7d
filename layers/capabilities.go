package layers

// Optional capabilities of a Mixer. The trainer, the model and the evaluation know mixers only through
// the Mixer contract and these interfaces, never by type or package, so a new mixer gets the behaviour
// by implementing them.

// DecayExempt is a mixer with variables weight decay must leave alone whatever their rank (the decay
// parameters of a recurrence, A_log and dt_bias, say): it names them by their last path element.
type DecayExempt interface {
	NoWeightDecay() []string
}

// StatsReporter is a mixer that writes statistics into non-trainable variables of its scope during
// training graphs (MoM's per-memory load, say). StatVariables maps each variable's name to the metric
// name the trainer logs its elements under: "<layer scope>/<metric>_<i>".
type StatsReporter interface {
	StatVariables() map[string]string
}

// ChunkCounter is a mixer that unrolls a recurrence over chunks at graph-build time: the number of
// chunks a graph over time tokens holds (the trainer reports it; graphs of thousands compile slowly).
type ChunkCounter interface {
	ChunksPerGraph(time int) int
}
