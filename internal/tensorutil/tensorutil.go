// Package tensorutil holds host-side tensor conversions shared by tests and tools.
package tensorutil

import (
	"fmt"

	"github.com/gomlx/gomlx/core/tensors"
)

// Floats copies a float or integer tensor (scalar or not) into []float64. It panics on other dtypes.
func Floats(t *tensors.Tensor) []float64 {
	switch v := t.Value().(type) {
	case float64:
		return []float64{v}
	case float32:
		return []float64{float64(v)}
	}
	var out []float64
	t.MustConstFlatData(func(flat any) {
		switch f := flat.(type) {
		case []float64:
			out = append([]float64(nil), f...)
		case []float32:
			out = convert(f)
		case []int32:
			out = convert(f)
		case []int64:
			out = convert(f)
		default:
			panic(fmt.Sprintf("tensorutil.Floats: unsupported dtype %s", t.DType()))
		}
	})
	return out
}

func convert[T float32 | int32 | int64](in []T) []float64 {
	out := make([]float64, len(in))
	for i, x := range in {
		out[i] = float64(x)
	}
	return out
}
