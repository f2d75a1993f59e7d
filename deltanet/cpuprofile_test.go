package deltanet_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// A minimal reader of the CPU profiles runtime/pprof writes (gzipped profile.proto), enough to
// attribute samples to the Go backend's ops: github.com/google/pprof/profile is not a dependency of
// this module, and go tool pprof cannot run inside a benchmark.

// cpuSample is one profile sample: its CPU time and its stack as function names, leaf first (inlined
// frames included).
type cpuSample struct {
	nanos int64
	stack []string
}

// readCPUProfile decodes the samples of a runtime/pprof CPU profile.
func readCPUProfile(data []byte) ([]cpuSample, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	var (
		strs      []string
		funcName  = map[uint64]int64{}    // function id -> string index
		locFuncs  = map[uint64][]uint64{} // location id -> function ids, leaf (innermost inline) first
		rawSample [][]byte
	)
	err = protoFields(raw, func(field int, wire int, v uint64, b []byte) error {
		switch field {
		case 2: // sample
			rawSample = append(rawSample, b)
		case 4: // location
			var id uint64
			var funcs []uint64
			err := protoFields(b, func(f, _ int, v uint64, b []byte) error {
				switch f {
				case 1:
					id = v
				case 4: // line
					return protoFields(b, func(f, _ int, v uint64, _ []byte) error {
						if f == 1 {
							funcs = append(funcs, v)
						}
						return nil
					})
				}
				return nil
			})
			locFuncs[id] = funcs
			return err
		case 5: // function
			var id uint64
			var name int64
			err := protoFields(b, func(f, _ int, v uint64, _ []byte) error {
				switch f {
				case 1:
					id = v
				case 2:
					name = int64(v)
				}
				return nil
			})
			funcName[id] = name
			return err
		case 6: // string_table
			strs = append(strs, string(b))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	samples := make([]cpuSample, 0, len(rawSample))
	for _, b := range rawSample {
		var locs []uint64
		var values []int64
		err := protoFields(b, func(f, wire int, v uint64, b []byte) error {
			var dst *[]uint64
			switch f {
			case 1:
				dst = &locs
			case 2:
				var vs []uint64
				if err := protoVarints(wire, v, b, &vs); err != nil {
					return err
				}
				for _, x := range vs {
					values = append(values, int64(x))
				}
				return nil
			default:
				return nil
			}
			return protoVarints(wire, v, b, dst)
		})
		if err != nil {
			return nil, err
		}
		if len(values) < 2 {
			return nil, fmt.Errorf("cpu profile sample with %d values, want 2 (count, nanoseconds)", len(values))
		}
		s := cpuSample{nanos: values[1]}
		for _, loc := range locs {
			for _, fn := range locFuncs[loc] {
				if idx := funcName[fn]; idx >= 0 && int(idx) < len(strs) {
					s.stack = append(s.stack, strs[idx])
				}
			}
		}
		samples = append(samples, s)
	}
	return samples, nil
}

// protoFields calls fn for every field of a protobuf message: varints (wire 0) in v, length-delimited
// fields (wire 2) in b.
func protoFields(msg []byte, fn func(field, wire int, v uint64, b []byte) error) error {
	for len(msg) > 0 {
		key, n := binary.Uvarint(msg)
		if n <= 0 {
			return errors.New("bad protobuf key")
		}
		msg = msg[n:]
		field, wire := int(key>>3), int(key&7)
		switch wire {
		case 0:
			v, n := binary.Uvarint(msg)
			if n <= 0 {
				return errors.New("bad protobuf varint")
			}
			msg = msg[n:]
			if err := fn(field, wire, v, nil); err != nil {
				return err
			}
		case 1:
			msg = msg[8:]
		case 5:
			msg = msg[4:]
		case 2:
			size, n := binary.Uvarint(msg)
			if n <= 0 || uint64(len(msg)-n) < size {
				return errors.New("bad protobuf length")
			}
			b := msg[n : n+int(size)]
			msg = msg[n+int(size):]
			if err := fn(field, wire, 0, b); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unsupported protobuf wire type %d", wire)
		}
	}
	return nil
}

// protoVarints appends a repeated varint field, packed (wire 2) or not (wire 0).
func protoVarints(wire int, v uint64, b []byte, dst *[]uint64) error {
	if wire == 0 {
		*dst = append(*dst, v)
		return nil
	}
	for len(b) > 0 {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return errors.New("bad packed varint")
		}
		*dst = append(*dst, x)
		b = b[n:]
	}
	return nil
}

// Op categories of the Go backend's CPU time.
var opCategories = []string{"matmul", "transpose", "copy", "elementwise", "reduce", "other"}

// classifyOp attributes a sample to the Go backend op running it, by the innermost frame of the
// backend's op packages: "gobackend/dot" is DotGeneral (its matmul kernels run in worker goroutines,
// so their stacks hold no executor); transposes; slice / pad / concatenate / broadcast / gather /
// identity / reshape copies; reductions and cumulative sums; every other executor is element-wise.
// Samples outside the backend's ops (scheduler, GC, the benchmark's own code) are "other".
func classifyOp(stack []string) string {
	for _, fn := range stack {
		i := strings.Index(fn, "gomlx/compute/internal/gobackend")
		if i < 0 {
			continue
		}
		name := fn[i+len("gomlx/compute/internal/gobackend"):]
		switch {
		case strings.HasPrefix(name, "/dot"):
			return "matmul"
		case containsAny(name, "Transpose", "transpose"):
			return "transpose"
		case containsAny(name, "Slice", "Pad", "pad", "Concatenate", "Broadcast", "broadcast", "Gather",
			"Identity", "CopyFlat", "Reshape", "DynamicUpdateSlice", "Scatter", "Iota", "fillBuffer"):
			return "copy"
		case containsAny(name, "Reduce", "reduce", "CumSum", "cumsum"):
			return "reduce"
		case strings.HasPrefix(name, "/ops") || strings.HasPrefix(name, "/fusedops") ||
			strings.HasPrefix(name, "/activations"):
			return "elementwise"
		}
	}
	return "other"
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
