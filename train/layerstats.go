package train

import (
	"fmt"
	"path"
	"strings"

	"github.com/engramlx/engram/mom"
)

// layerStats reads the per-memory load that mom layers write into their LoadVariable in every training
// graph and names it for the metrics line "<layer scope>/load_<m>" (e.g. "layer_0/mom/load_2"). It is
// empty for models without mom layers, and before the first training step.
func (r *Runner) layerStats() map[string]float64 {
	stats := map[string]float64{}
	for v := range r.Store.IterVariables() {
		if path.Base(v.Path()) != mom.LoadVariable || !v.HasValue() {
			continue
		}
		value, err := v.Value()
		if err != nil {
			continue
		}
		loads, ok := value.Value().([]float64)
		if !ok {
			continue
		}
		scope := strings.TrimPrefix(path.Dir(v.Path()), "/")
		for m, load := range loads {
			stats[fmt.Sprintf("%s/load_%d", scope, m)] = load
		}
	}
	return stats
}
