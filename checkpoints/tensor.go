package checkpoints

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
)

// encodeTensor returns t's elements as an Entry of safetensors dtype as ("" keeps t's own type). Floats
// may be stored as F64, F32 or BF16 (rounded to nearest even); integers keep their type.
func encodeTensor(name string, t *tensors.Tensor, as string) (Entry, error) {
	e := Entry{Name: name, Shape: append([]int{}, t.Shape().Dimensions...)}
	var err error
	convErr := t.ConstFlatData(func(flat any) {
		switch v := flat.(type) {
		case []float64:
			e.DType, e.Data, err = encodeFloats(len(v), func(i int) float64 { return v[i] }, orDefault(as, F64))
		case []float32:
			e.DType, e.Data, err = encodeFloats(len(v), func(i int) float64 { return float64(v[i]) }, orDefault(as, F32))
		case []int32:
			e.DType, e.Data = I32, make([]byte, 4*len(v))
			for i, x := range v {
				binary.LittleEndian.PutUint32(e.Data[4*i:], uint32(x))
			}
		case []int64:
			e.DType, e.Data = I64, make([]byte, 8*len(v))
			for i, x := range v {
				binary.LittleEndian.PutUint64(e.Data[8*i:], uint64(x))
			}
		default:
			err = fmt.Errorf("dtype %s is not exported (want float32, float64, int32 or int64)", t.DType())
		}
	})
	if convErr != nil {
		return Entry{}, fmt.Errorf("tensor %s: %w", name, convErr)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("tensor %s: %w", name, err)
	}
	return e, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func encodeFloats(n int, at func(int) float64, as string) (string, []byte, error) {
	switch as {
	case F64:
		out := make([]byte, 8*n)
		for i := range n {
			binary.LittleEndian.PutUint64(out[8*i:], math.Float64bits(at(i)))
		}
		return as, out, nil
	case F32:
		out := make([]byte, 4*n)
		for i := range n {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(float32(at(i))))
		}
		return as, out, nil
	case BF16:
		out := make([]byte, 2*n)
		for i := range n {
			binary.LittleEndian.PutUint16(out[2*i:], bfloat16Bits(float32(at(i))))
		}
		return as, out, nil
	}
	return "", nil, fmt.Errorf("floats cannot be stored as %q (want F64, F32 or BF16)", as)
}

// bfloat16Bits rounds f to the nearest bfloat16 (ties to even), the top 16 bits of a float32.
func bfloat16Bits(f float32) uint16 {
	bits := math.Float32bits(f)
	if f != f {
		return uint16(bits>>16) | 0x40 // keep NaN a (quiet) NaN whatever its payload
	}
	bits += 0x7fff + (bits>>16)&1
	return uint16(bits >> 16)
}

// decodeTensor converts an Entry to a tensor of dtype to (InvalidDType keeps the entry's own type;
// BF16 then becomes float32). Floats convert to any float type; integers must keep their type.
func decodeTensor(e Entry, to dtypes.DType) (*tensors.Tensor, error) {
	native := map[string]dtypes.DType{F64: dtypes.Float64, F32: dtypes.Float32, BF16: dtypes.Float32, I32: dtypes.Int32, I64: dtypes.Int64}[e.DType]
	if to == dtypes.InvalidDType {
		to = native
	}
	isFloat := e.DType == F64 || e.DType == F32 || e.DType == BF16
	if to != native && !(isFloat && (to == dtypes.Float32 || to == dtypes.Float64)) {
		return nil, fmt.Errorf("tensor %s: %s cannot be loaded as %s", e.Name, e.DType, to)
	}
	t := tensors.FromShape(shapes.Make(to, e.Shape...))
	var err error
	mutErr := t.MutableFlatData(func(flat any) {
		switch v := flat.(type) {
		case []float64:
			for i := range v {
				v[i] = floatAt(e, i)
			}
		case []float32:
			for i := range v {
				v[i] = float32(floatAt(e, i))
			}
		case []int32:
			for i := range v {
				v[i] = int32(binary.LittleEndian.Uint32(e.Data[4*i:]))
			}
		case []int64:
			for i := range v {
				v[i] = int64(binary.LittleEndian.Uint64(e.Data[8*i:]))
			}
		default:
			err = fmt.Errorf("tensor %s: unsupported target dtype %s", e.Name, to)
		}
	})
	if mutErr != nil {
		return nil, mutErr
	}
	return t, err
}

// floatAt reads element i of a float entry exactly (every F32 and BF16 value is a float64).
func floatAt(e Entry, i int) float64 {
	switch e.DType {
	case F64:
		return math.Float64frombits(binary.LittleEndian.Uint64(e.Data[8*i:]))
	case F32:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(e.Data[4*i:])))
	}
	return float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(e.Data[2*i:])) << 16))
}
