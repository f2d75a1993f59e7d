package titans

import (
	"fmt"

	. "github.com/gomlx/gomlx/core/graph"
)

// Stats are introspection scalars of the memory over one call (means over batch, heads and tokens),
// for a trainer to log next to the loss.
type Stats struct {
	Surprise          *Node   // mean inner loss ||M(k_t) - v_t||^2 at the chunk-start weights
	Theta, Eta, Alpha *Node   // mean gates (Theta after the gradient clamp)
	ClampedFraction   *Node   // fraction of tokens whose inner gradient norm was clamped (0 when off)
	WeightNorm        []*Node // per memory layer: mean Frobenius norm of the weights after the call
}

// Metrics returns the stats as parallel lists of names ("surprise", "theta", "eta", "alpha",
// "clamped_fraction", "weight_norm_0", ...) and scalar nodes; empty for stats without values (the
// reference op computes none).
func (s Stats) Metrics() (names []string, values []*Node) {
	if s.Surprise == nil {
		return nil, nil
	}
	names = []string{"surprise", "theta", "eta", "alpha", "clamped_fraction"}
	values = []*Node{s.Surprise, s.Theta, s.Eta, s.Alpha, s.ClampedFraction}
	for l, w := range s.WeightNorm {
		names = append(names, fmt.Sprintf("weight_norm_%d", l))
		values = append(values, w)
	}
	return names, values
}

// mergeStats averages the stats of consecutive calls weighted by their token counts; the weight norms
// are those after the last call.
func mergeStats(all []Stats, counts []int) Stats {
	if len(all) == 0 || all[0].Surprise == nil {
		return Stats{}
	}
	total := 0
	for _, c := range counts {
		total += c
	}
	mean := func(get func(Stats) *Node) *Node {
		var sum *Node
		for i, s := range all {
			term := MulScalar(get(s), float64(counts[i])/float64(total))
			if sum == nil {
				sum = term
			} else {
				sum = Add(sum, term)
			}
		}
		return sum
	}
	return Stats{
		Surprise:        mean(func(s Stats) *Node { return s.Surprise }),
		Theta:           mean(func(s Stats) *Node { return s.Theta }),
		Eta:             mean(func(s Stats) *Node { return s.Eta }),
		Alpha:           mean(func(s Stats) *Node { return s.Alpha }),
		ClampedFraction: mean(func(s Stats) *Node { return s.ClampedFraction }),
		WeightNorm:      all[len(all)-1].WeightNorm,
	}
}
