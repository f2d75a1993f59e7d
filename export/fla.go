package export

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/engramlx/engram/checkpoints"
)

// ImportFLA replaces the weights of the model's gated_deltanet layers listed in layers ("0,2") by the
// ones of a flash-linear-attention GatedDeltaNet state_dict saved as safetensors
// (checkpoints.ReadFLAGatedDeltaNet maps names and layouts). prefix selects the layer inside the file,
// "{layer}" standing for the layer index. Call Build first so the variables exist. It returns one line
// per layer for the user.
func ImportFLA(m *Model, file, layers, prefix string) ([]string, error) {
	cfg := m.Config
	dims := checkpoints.FLAGatedDeltaNetDims{Hidden: cfg.DModel, Heads: cfg.DeltaNet.Heads, HeadDimK: cfg.DeltaNet.HeadDimK,
		HeadDimV: cfg.DeltaNet.HeadDimV(), ConvSize: cfg.DeltaNet.ConvSize, ShortConv: cfg.DeltaNet.UseShortConv}
	var report []string
	for i, field := range strings.Split(layers, ",") {
		layer, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil {
			return nil, fmt.Errorf("-layer: item %d %q: %w", i+1, field, err)
		}
		if layer < 0 || layer >= len(cfg.Layers) || cfg.Layers[layer].Type != "gated_deltanet" {
			return nil, fmt.Errorf("-layer %d: the model's layers are %v; fla's GatedDeltaNet loads into a gated_deltanet layer", layer, cfg.Layers)
		}
		layerPrefix := strings.ReplaceAll(prefix, "{layer}", strconv.Itoa(layer))
		values, err := checkpoints.ReadFLAGatedDeltaNet(file, layerPrefix, dims, m.Stack.DType)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", layer, err)
		}
		scope := fmt.Sprintf("/layer_%d/gated_deltanet", layer)
		for path := range values {
			if m.Store.GetVariable(scope+"/"+path) == nil {
				return nil, fmt.Errorf("layer %d: the model has no variable %s/%s for %s", layer, scope, path, file)
			}
		}
		if err := checkpoints.SetVariables(m.Store, scope, values); err != nil {
			return nil, fmt.Errorf("layer %d: %s: %w", layer, file, err)
		}
		report = append(report, fmt.Sprintf("layer %d: %d tensors from %s (prefix %q)", layer, len(values), file, layerPrefix))
	}
	return report, nil
}
