package checkpoints

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/engramlx/engram/internal/fsutil"
	"strconv"
	"strings"

	"github.com/engramlx/engram/layers"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
)

// StateFormat identifies memory-state files in their safetensors metadata.
const StateFormat = "engram-state"

// StateMeta is what a memory-state file records besides the tensors.
type StateMeta struct {
	// Tokens is how many tokens the stream had consumed when the state was taken.
	Tokens int
	// Architecture is the encoded model config (EncodeArchitecture) the state belongs to.
	Architecture json.RawMessage
	// EngramVersion is filled in by SaveState.
	EngramVersion string
}

// SaveState writes a model's carried state (values in the order of specs, e.g. Model.StateSpecs) to file
// as safetensors, each tensor under its spec name in its own dtype, atomically.
func SaveState(file string, specs []layers.StateSpec, values []*tensors.Tensor, meta StateMeta) error {
	if len(values) != len(specs) {
		return fmt.Errorf("state: %d tensors for %d specs", len(values), len(specs))
	}
	entries := make([]Entry, len(specs))
	names := make([]string, len(specs))
	for i, spec := range specs {
		if !values[i].Shape().Equal(spec.Shape) {
			return fmt.Errorf("state %q: tensor has shape %s, spec says %s", spec.Name, values[i].Shape(), spec.Shape)
		}
		e, err := encodeTensor(spec.Name, values[i], "")
		if err != nil {
			return fmt.Errorf("state: %w", err)
		}
		entries[i], names[i] = e, spec.Name
	}
	order, _ := json.Marshal(names)
	md := map[string]string{"format": StateFormat, "format_version": "1", "tokens": strconv.Itoa(meta.Tokens),
		"architecture": string(meta.Architecture), "engram_version": EngramVersion(), "order": string(order)}
	var buf bytes.Buffer
	if err := WriteSafetensors(&buf, entries, md); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(file, buf.Bytes())
}

// LoadState reads a memory-state file and returns its tensors in the order of specs. Every spec must be
// present with its exact shape and dtype, and nothing else; when arch is given, the file's architecture
// must equal it (the differing fields are named).
func LoadState(file string, specs []layers.StateSpec, arch json.RawMessage) ([]*tensors.Tensor, StateMeta, error) {
	st, err := ReadSafetensors(file)
	if err != nil {
		return nil, StateMeta{}, err
	}
	md := st.Metadata
	if md["format"] != StateFormat {
		return nil, StateMeta{}, fmt.Errorf("%s: metadata format = %q, want %q (not a memory-state file)", file, md["format"], StateFormat)
	}
	meta := StateMeta{Architecture: json.RawMessage(md["architecture"]), EngramVersion: md["engram_version"]}
	if meta.Tokens, err = strconv.Atoi(md["tokens"]); err != nil {
		return nil, StateMeta{}, fmt.Errorf("%s: metadata tokens = %q: %w", file, md["tokens"], err)
	}
	if len(arch) > 0 {
		if diff := DiffArchitecture(meta.Architecture, arch); len(diff) > 0 {
			return nil, StateMeta{}, fmt.Errorf("%s was saved by a different model (saved -> now): %s", file, strings.Join(diff, ", "))
		}
	}
	if len(st.Entries) != len(specs) {
		return nil, StateMeta{}, fmt.Errorf("%s holds %d state tensors, the model carries %d", file, len(st.Entries), len(specs))
	}
	out := make([]*tensors.Tensor, len(specs))
	for i, spec := range specs {
		e, ok := st.Get(spec.Name)
		if !ok {
			return nil, StateMeta{}, fmt.Errorf("%s: state tensor %q is missing", file, spec.Name)
		}
		t, err := decodeTensor(e, spec.Shape.DType)
		if err == nil && !t.Shape().Equal(spec.Shape) {
			err = fmt.Errorf("shape %s, the model wants %s", t.Shape(), spec.Shape)
		}
		if err == nil && !sameStoredType(e.DType, spec.Shape.DType) {
			err = fmt.Errorf("stored as %s, the model carries %s", e.DType, spec.Shape.DType)
		}
		if err != nil {
			return nil, StateMeta{}, fmt.Errorf("%s: state tensor %q: %w", file, spec.Name, err)
		}
		out[i] = t
	}
	return out, meta, nil
}

// sameStoredType tells whether a safetensors dtype stores a GoMLX dtype without conversion: a state must
// come back bit for bit to continue the stream exactly.
func sameStoredType(stored string, dtype dtypes.DType) bool {
	want := map[dtypes.DType]string{dtypes.Float64: F64, dtypes.Float32: F32, dtypes.Int32: I32, dtypes.Int64: I64}[dtype]
	return stored == want
}

// SaveTensors writes named tensors (each in its own dtype) to file as safetensors with metadata,
// atomically: side files such as the logits a state export records over its prompt.
func SaveTensors(file string, names []string, values []*tensors.Tensor, metadata map[string]string) error {
	entries := make([]Entry, len(values))
	for i, v := range values {
		e, err := encodeTensor(names[i], v, "")
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		entries[i] = e
	}
	var buf bytes.Buffer
	if err := WriteSafetensors(&buf, entries, metadata); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(file, buf.Bytes())
}
