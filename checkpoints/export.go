package checkpoints

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/engramlx/engram/internal/fsutil"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/engramlx/engram/data"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// File names of an export.
const (
	WeightsFile = "model.safetensors"
	ConfigFile  = "config.json"
)

// ExportFormat and ExportFormatVersion identify config.json files written by Export.
const (
	ExportFormat        = "engram-export"
	ExportFormatVersion = 1
)

// Tokenizer describes how text maps to the model's ids.
type Tokenizer struct {
	// Type is "byte" (Engram's byte tokenizer: id = byte value, special tokens above 255) or "ids"
	// (the model was trained on token ids from a generator or a pre-tokenised dataset).
	Type    string         `json:"type"`
	Vocab   int            `json:"vocab"`
	Special map[string]int `json:"special_tokens,omitempty"`
}

// ByteTokenizer describes Engram's byte tokenizer (package data).
func ByteTokenizer() Tokenizer {
	return Tokenizer{Type: "byte", Vocab: data.ByteVocab,
		Special: map[string]int{"pad": data.Pad, "bos": data.BOS, "eos": data.EOS, "sep": data.Sep}}
}

// Source records where exported weights came from.
type Source struct {
	Run  string `json:"run,omitempty"`
	Step int    `json:"step"`
	// Data is the run's data section (its task and the task's settings), so that an evaluation of the
	// export can score the task the model learned.
	Data json.RawMessage `json:"data,omitempty"`
}

// Manifest is config.json.
type Manifest struct {
	Format        string `json:"format"`
	FormatVersion int    `json:"format_version"`
	EngramVersion string `json:"engram_version"`
	GoMLXVersion  string `json:"gomlx_version"`
	// Architecture is the model config keyed by its YAML names (see EncodeArchitecture).
	Architecture json.RawMessage `json:"architecture"`
	// Conventions say how to read the weights without Engram (layouts, RoPE, conv taps, special
	// values), so a PyTorch user can rebuild the model from config.json alone.
	Conventions map[string]string `json:"conventions,omitempty"`
	// RMT is the recurrent-memory-token wrapper around the architecture (its `rmt:` settings, keyed by
	// their YAML names); absent when the model has none.
	RMT       json.RawMessage `json:"rmt,omitempty"`
	Tokenizer Tokenizer       `json:"tokenizer"`
	// DType is the weights' type in the file: float32, bfloat16 or float64.
	DType         string `json:"dtype"`
	Weights       string `json:"weights"`
	WeightsSize   int64  `json:"weights_size"`
	WeightsSHA256 string `json:"weights_sha256"`
	// Tensors maps each tensor name in the weights file to the GoMLX scope path of its variable.
	Tensors map[string]string `json:"tensors"`
	Source  Source            `json:"source"`
}

// ExportOptions are what Export records besides the weights.
type ExportOptions struct {
	// DType of the stored weights: "float32" (default), "bfloat16" or "float64".
	DType string
	// Architecture is the model config: a struct with yaml tags.
	Architecture any
	// RMT, when non-nil, is the wrapper's config (a struct with yaml tags) written as "rmt".
	RMT       any
	Tokenizer Tokenizer
	Source    Source
	// OmitSections are top-level keys of the encoded architecture to leave out (sections no layer
	// reads), and Conventions the manifest's conventions block.
	OmitSections []string
	Conventions  map[string]string
}

var exportDTypes = map[string]string{"": F32, "float32": F32, "bfloat16": BF16, "float64": F64}

// TensorName maps a variable's scope path to its tensor name: "/layer_0/mlp/up/weight" ->
// "layer_0.mlp.up.weight".
func TensorName(scopePath string) string {
	return strings.ReplaceAll(strings.TrimPrefix(scopePath, "/"), "/", ".")
}

// Export writes the store's trainable variables to dir/model.safetensors and then dir/config.json, each
// atomically. Build the model's forward graph first: a store that loads a checkpoint lazily holds only
// the variables a graph has touched.
func Export(dir string, store *mlmodel.Store, opts ExportOptions) (*Manifest, error) {
	as, ok := exportDTypes[opts.DType]
	if !ok {
		return nil, fmt.Errorf("export dtype %q: want float32, bfloat16 or float64", opts.DType)
	}
	arch, err := EncodeArchitecture(opts.Architecture)
	if err != nil {
		return nil, err
	}
	if len(opts.OmitSections) > 0 {
		var tree map[string]any
		if err := json.Unmarshal(arch, &tree); err != nil {
			return nil, fmt.Errorf("architecture: %w", err)
		}
		for _, key := range opts.OmitSections {
			delete(tree, key)
		}
		if arch, err = json.Marshal(tree); err != nil {
			return nil, fmt.Errorf("architecture: %w", err)
		}
	}
	man := &Manifest{Format: ExportFormat, FormatVersion: ExportFormatVersion, EngramVersion: EngramVersion(),
		GoMLXVersion: GoMLXVersion, Architecture: arch, Tokenizer: opts.Tokenizer, DType: opts.DType,
		Weights: WeightsFile, Tensors: map[string]string{}, Source: opts.Source, Conventions: opts.Conventions}
	if opts.RMT != nil {
		if man.RMT, err = EncodeArchitecture(opts.RMT); err != nil {
			return nil, err
		}
	}
	if man.DType == "" {
		man.DType = "float32"
	}
	var entries []Entry
	for v := range store.IterVariables() {
		if !v.Trainable || !v.HasValue() {
			continue
		}
		name := TensorName(v.Path())
		if prev, dup := man.Tensors[name]; dup {
			return nil, fmt.Errorf("export: variables %s and %s both map to tensor name %q", prev, v.Path(), name)
		}
		value, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("export: variable %s: %w", v.Path(), err)
		}
		e, err := encodeTensor(name, value, as)
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		entries, man.Tensors[name] = append(entries, e), v.Path()
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("export: the store has no trainable variables with values (build the model's graph first)")
	}
	scopes, _ := json.Marshal(man.Tensors)
	var buf bytes.Buffer
	meta := map[string]string{"format": ExportFormat, "engram_version": man.EngramVersion, "scopes": string(scopes)}
	if err := WriteSafetensors(&buf, entries, meta); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(buf.Bytes())
	man.WeightsSize, man.WeightsSHA256 = int64(buf.Len()), hex.EncodeToString(sum[:])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, WeightsFile), buf.Bytes()); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	body, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, ConfigFile), append(body, '\n')); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return man, nil
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
