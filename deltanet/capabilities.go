package deltanet

// NoWeightDecay implements layers.DecayExempt: the decay's A_log and dt_bias (fla's models exclude them
// from weight decay too).
func (l *Layer) NoWeightDecay() []string { return []string{"A_log", "dt_bias"} }
