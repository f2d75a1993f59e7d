package train

import "fmt"

// layerStats reads the statistics the model's mixers write into store variables in every training graph
// (layers.StatsReporter, through model.StatVariables) and names each element for the metrics line:
// "<layer scope>/<metric>_<i>" (e.g. MoM's "layer_0/mom/load_2"). It is empty for models whose mixers
// report nothing, and before the first training step.
func (r *Runner) layerStats() map[string]float64 {
	stats := map[string]float64{}
	for path, metric := range r.Model.StatVariables() {
		v := r.Store.GetVariable(path)
		if v == nil || !v.HasValue() {
			continue
		}
		value, err := v.Value()
		if err != nil {
			continue
		}
		values, ok := value.Value().([]float64)
		if !ok {
			continue
		}
		for i, x := range values {
			stats[fmt.Sprintf("%s_%d", metric, i)] = x
		}
	}
	return stats
}
