package mom

// NoWeightDecay implements layers.DecayExempt: every memory's A_log and dt_bias.
func (l *Layer) NoWeightDecay() []string { return []string{"A_log", "dt_bias"} }

// StatVariables implements layers.StatsReporter: the per-memory load (LoadVariable), logged as
// "<layer scope>/load_<m>".
func (l *Layer) StatVariables() map[string]string { return map[string]string{LoadVariable: "load"} }
