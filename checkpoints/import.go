package checkpoints

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// Imported is an export read back: its manifest and its checked weights.
type Imported struct {
	Dir      string
	Manifest Manifest
	Weights  *Safetensors
}

// Import reads dir/config.json and dir/model.safetensors, checking that the weights file is the one the
// manifest describes (size and SHA-256) and that every tensor is mapped to a scope path and back.
// Errors name the file.
func Import(dir string) (*Imported, error) {
	cfgFile := filepath.Join(dir, ConfigFile)
	body, err := os.ReadFile(cfgFile)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	im := &Imported{Dir: dir}
	if err := json.Unmarshal(body, &im.Manifest); err != nil {
		return nil, fmt.Errorf("import: %s: %w", cfgFile, err)
	}
	man := &im.Manifest
	switch {
	case man.Format != ExportFormat:
		return nil, fmt.Errorf("import: %s: format %q, want %q", cfgFile, man.Format, ExportFormat)
	case man.FormatVersion < 1 || man.FormatVersion > ExportFormatVersion:
		return nil, fmt.Errorf("import: %s: format_version %d; this build reads 1..%d", cfgFile, man.FormatVersion, ExportFormatVersion)
	case man.Weights == "" || filepath.Base(man.Weights) != man.Weights:
		return nil, fmt.Errorf("import: %s: weights = %q: want a file name in the same directory", cfgFile, man.Weights)
	}
	weightsFile := filepath.Join(dir, man.Weights)
	raw, err := os.ReadFile(weightsFile)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	sum := sha256.Sum256(raw)
	if int64(len(raw)) != man.WeightsSize || hex.EncodeToString(sum[:]) != man.WeightsSHA256 {
		return nil, fmt.Errorf("import: %s (%d bytes) does not match the size (%d) and SHA-256 in %s: truncated, corrupted, or an export was interrupted between its two files; export again",
			weightsFile, len(raw), man.WeightsSize, cfgFile)
	}
	if im.Weights, err = ParseSafetensors(weightsFile, raw); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	for _, e := range im.Weights.Entries {
		if _, ok := man.Tensors[e.Name]; !ok {
			return nil, fmt.Errorf("import: %s: tensor %q has no scope path in %s", weightsFile, e.Name, cfgFile)
		}
	}
	for _, name := range sortedKeys(man.Tensors) {
		if _, ok := im.Weights.Get(name); !ok {
			return nil, fmt.Errorf("import: %s maps tensor %q, which %s does not hold", cfgFile, name, weightsFile)
		}
	}
	return im, nil
}

// DecodeArchitecture decodes the manifest's architecture into the config struct into points to.
func (im *Imported) DecodeArchitecture(into any) error {
	if err := DecodeArchitecture(im.Manifest.Architecture, into); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(im.Dir, ConfigFile), err)
	}
	return nil
}

// DecodeRMT decodes the manifest's rmt section into the config struct into points to; it reports false
// (leaving into untouched) when the export has no wrapper.
func (im *Imported) DecodeRMT(into any) (bool, error) {
	if len(im.Manifest.RMT) == 0 {
		return false, nil
	}
	if err := DecodeArchitecture(im.Manifest.RMT, into); err != nil {
		return false, fmt.Errorf("%s: rmt: %w", filepath.Join(im.Dir, ConfigFile), err)
	}
	return true, nil
}

// NewStore returns a fresh store whose variables take the imported values (floats converted to dtype)
// as the model creates them. After building the model's graph on it, call Check.
func (im *Imported) NewStore(dtype dtypes.DType) (*mlmodel.Store, error) {
	store := mlmodel.NewStore()
	return store, im.InitStore(store, dtype)
}

// InitStore makes store's variables take the imported values (floats converted to dtype) as the model
// creates them, for the variables store's own loader (a checkpoint, say) does not provide: a fresh run
// starts from the export, a resumed one from its checkpoint. After building the model's graph on it,
// call Check.
func (im *Imported) InitStore(store *mlmodel.Store, dtype dtypes.DType) error {
	loader := &importLoader{first: store.Loader(), values: map[string]*tensors.Tensor{}, missed: map[string]bool{}}
	for _, e := range im.Weights.Entries {
		to := dtype
		if e.DType == I32 || e.DType == I64 {
			to = dtypes.InvalidDType
		}
		t, err := decodeTensor(e, to)
		if err != nil {
			return fmt.Errorf("import: %s: %w", filepath.Join(im.Dir, im.Manifest.Weights), err)
		}
		loader.values[im.Manifest.Tensors[e.Name]] = t
	}
	store.SetLoader(loader)
	return nil
}

// Check reports, for a store from NewStore on which the model's graph was built, the trainable
// variables the export lacked (the model initialised them randomly) and the exported tensors the model
// never asked for: either means the export and the architecture do not belong together.
func (im *Imported) Check(store *mlmodel.Store) error {
	loader, ok := store.Loader().(*importLoader)
	if !ok {
		return fmt.Errorf("import check: the store was not made by Imported.NewStore")
	}
	var problems []string
	for path := range loader.missed {
		if v := store.GetVariable(path); v != nil && v.Trainable {
			problems = append(problems, "variable "+path+" is not in the export (it was initialised randomly)")
		}
	}
	for path := range loader.values {
		problems = append(problems, "exported tensor "+TensorName(path)+" ("+path+") was not used by the model")
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("%s does not match the model: %s", im.Dir, strings.Join(problems, "; "))
	}
	return nil
}

// importLoader hands out imported values as a store creates its variables (GoMLX's model.Loader), after
// the store's earlier loader (first, nil if none) when it has the variable.
type importLoader struct {
	first  mlmodel.Loader
	values map[string]*tensors.Tensor
	missed map[string]bool
}

// LoadVariable implements mlmodel.Loader: each value is handed out once.
func (l *importLoader) LoadVariable(store *mlmodel.Store, path string) (*tensors.Tensor, bool) {
	if l.first != nil {
		if t, ok := l.first.LoadVariable(store, path); ok {
			delete(l.values, path) // the checkpoint's value wins; the import's is not "unused"
			return t, true
		}
	}
	t, ok := l.values[path]
	if !ok {
		l.missed[path] = true
		return nil, false
	}
	delete(l.values, path)
	return t, true
}

// DeleteVariable implements mlmodel.Loader.
func (l *importLoader) DeleteVariable(store *mlmodel.Store, path string) error {
	delete(l.values, path)
	if l.first != nil {
		return l.first.DeleteVariable(store, path)
	}
	return nil
}
