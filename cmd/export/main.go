// Command export writes a trained run's weights as model.safetensors + config.json, or the memory
// state the model carries after a prompt.
//
//	export -run runs/quickstart                        # -> runs/quickstart/export/{model.safetensors,config.json}
//	export -run runs/quickstart -out /tmp/q -dtype bfloat16
//	export -run runs/quickstart -state -prompt "The passkey is 4417."   # byte tokenizer
//	export -run runs/quickstart -state -ids 3,17,42                     # token ids
//
// The state is written to <out>/state.safetensors; package checkpoints documents both formats.
//
// Importing flash-linear-attention weights: -import-fla writes the same export with the weights of the
// run's gated_deltanet layers listed in -layer taken from an fla GatedDeltaNet state_dict saved as
// safetensors (PyTorch [out, in] Linear weights, [channels, 1, W] conv weights, A_log, dt_bias,
// o_norm.weight; see checkpoints.ReadFLAGatedDeltaNet); every other weight comes from the run's
// checkpoint. -fla-prefix selects the layer inside the file ("{layer}" is replaced by the layer index):
//
//	export -run runs/gdn -import-fla gdn_layer.safetensors -layer 0              # a single layer's state_dict
//	export -run runs/gdn -import-fla fla_model.safetensors -layer 0,1 -fla-prefix 'model.layers.{layer}.attn.'
//
// The run's deltanet config must match fla's layer: heads = num_heads, head_dim_k = head_dim, expand_v,
// conv_size, use_short_conv, allow_neg_eigval and norm_eps (fla's layer default is 1e-5, fla's model
// config passes 1e-6); shapes are checked, the last three are not visible in the weights. Load the
// export with checkpoints.Import and Imported.NewStore.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/engramlx/engram/checkpoints"
	"github.com/engramlx/engram/data"
	"github.com/engramlx/engram/train"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

func main() {
	runDir := flag.String("run", "", "run directory (runs/<name>) holding config.yaml and checkpoints/")
	out := flag.String("out", "", "output directory (default <run>/export)")
	dtype := flag.String("dtype", "float32", "weights dtype: float32, bfloat16 or float64")
	state := flag.Bool("state", false, "export the memory state after a prompt instead of the weights")
	prompt := flag.String("prompt", "", "with -state: prompt text, encoded by the byte tokenizer")
	ids := flag.String("ids", "", "with -state: prompt token ids, comma-separated")
	flaFile := flag.String("import-fla", "", "export with the weights of the -layer gated_deltanet layers read from this flash-linear-attention safetensors state_dict")
	flaLayers := flag.String("layer", "", "with -import-fla: the run's layer indices to replace, comma-separated")
	flaPrefix := flag.String("fla-prefix", "", "with -import-fla: tensor name prefix of the layer in the file; {layer} = the layer index")
	flag.Parse()
	if *runDir == "" || flag.NArg() > 0 || (*flaFile == "") != (*flaLayers == "") || *flaFile != "" && *state {
		fail(fmt.Errorf("usage: export -run runs/<name> [-out dir] [-dtype float32|bfloat16] [-state -prompt text | -ids 1,2,3 | -import-fla file.safetensors -layer 0,1 [-fla-prefix 'model.layers.{layer}.attn.']]"))
	}
	if *out == "" {
		*out = filepath.Join(*runDir, "export")
	}
	r, err := train.Open(*runDir, train.Options{Log: os.Stderr})
	if err != nil {
		fail(err)
	}
	switch {
	case *state:
		err = exportState(r, *out, *prompt, *ids)
	case *flaFile != "":
		err = exportWeights(r, *runDir, *out, *dtype, flaImport{file: *flaFile, layers: *flaLayers, prefix: *flaPrefix})
	default:
		err = exportWeights(r, *runDir, *out, *dtype, flaImport{})
	}
	if err != nil {
		fail(err)
	}
}

// forward returns an executable mapping ids [1, T] to (logits, the state after them...); building it creates
// the model's variables, which take the checkpoint's values.
func forward(r *train.Runner) (*mlmodel.Exec, error) {
	m := r.Model
	return mlmodel.NewExec(r.Backend, r.Store, func(scope *mlmodel.Scope, in []*Node) []*Node {
		hidden, next := m.Hidden(scope, in[0], nil)
		return append([]*Node{m.Logits(scope, hidden)}, next...)
	})
}

// flaImport names the flash-linear-attention weights that replace some layers' (file "" = none).
type flaImport struct{ file, layers, prefix string }

func exportWeights(r *train.Runner, runDir, out, dtype string, fla flaImport) error {
	exec, err := forward(r)
	if err != nil {
		return err
	}
	defer exec.Finalize()
	if _, err := exec.Call(tensors.FromFlatDataAndDimensions([]int32{0}, 1, 1)); err != nil {
		return fmt.Errorf("building the model: %w", err)
	}
	if fla.file != "" {
		if err := importFLA(r, fla); err != nil {
			return err
		}
	}
	info, err := train.ReadInfo(filepath.Join(runDir, "checkpoints"))
	if err != nil {
		return err
	}
	// A model whose vocabulary holds the byte tokenizer's ids reads text; others read task token ids.
	tok := checkpoints.Tokenizer{Type: "ids", Vocab: r.Model.Config.Vocab}
	if r.Model.Config.Vocab >= data.ByteVocab {
		tok = checkpoints.ByteTokenizer()
	}
	man, err := checkpoints.Export(out, r.Store, checkpoints.ExportOptions{DType: dtype, Architecture: r.Model.Config,
		Tokenizer: tok, Source: checkpoints.Source{Run: r.Exp.Name, Step: info.Step}})
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d tensors, %d bytes (%s, step %d) + %s\n", filepath.Join(out, checkpoints.WeightsFile),
		len(man.Tensors), man.WeightsSize, man.DType, info.Step, checkpoints.ConfigFile)
	return nil
}

// importFLA replaces the weights of the listed gated_deltanet layers in r's store by fla's.
func importFLA(r *train.Runner, fla flaImport) error {
	cfg := r.Model.Config
	dims := checkpoints.FLAGatedDeltaNetDims{Hidden: cfg.DModel, Heads: cfg.DeltaNet.Heads, HeadDimK: cfg.DeltaNet.HeadDimK,
		HeadDimV: cfg.DeltaNet.HeadDimV(), ConvSize: cfg.DeltaNet.ConvSize, ShortConv: cfg.DeltaNet.UseShortConv}
	for i, field := range strings.Split(fla.layers, ",") {
		layer, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil {
			return fmt.Errorf("-layer: item %d %q: %w", i+1, field, err)
		}
		if layer < 0 || layer >= len(cfg.Layers) || cfg.Layers[layer] != "gated_deltanet" {
			return fmt.Errorf("-layer %d: the model's layers are %v; fla's GatedDeltaNet loads into a gated_deltanet layer", layer, cfg.Layers)
		}
		prefix := strings.ReplaceAll(fla.prefix, "{layer}", strconv.Itoa(layer))
		values, err := checkpoints.ReadFLAGatedDeltaNet(fla.file, prefix, dims, r.Model.DType)
		if err != nil {
			return fmt.Errorf("layer %d: %w", layer, err)
		}
		scope := fmt.Sprintf("/layer_%d/gated_deltanet", layer)
		for path := range values {
			if r.Store.GetVariable(scope+"/"+path) == nil {
				return fmt.Errorf("layer %d: the model has no variable %s/%s for %s", layer, scope, path, fla.file)
			}
		}
		if err := checkpoints.SetVariables(r.Store, scope, values); err != nil {
			return fmt.Errorf("layer %d: %s: %w", layer, fla.file, err)
		}
		fmt.Printf("layer %d: %d tensors from %s (prefix %q)\n", layer, len(values), fla.file, prefix)
	}
	return nil
}

func exportState(r *train.Runner, out, prompt, idList string) error {
	ids, err := promptIDs(prompt, idList, r.Model.Config.Vocab)
	if err != nil {
		return err
	}
	if limit := r.Model.MaxContext(); limit > 0 && len(ids) > limit {
		return fmt.Errorf("the prompt has %d tokens; the model's attention cache holds %d", len(ids), limit)
	}
	exec, err := forward(r)
	if err != nil {
		return err
	}
	defer exec.Finalize()
	outputs, err := exec.Call(tensors.FromFlatDataAndDimensions(ids, 1, len(ids)))
	if err != nil {
		return fmt.Errorf("running the prompt: %w", err)
	}
	arch, err := checkpoints.EncodeArchitecture(r.Model.Config)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	file := filepath.Join(out, "state.safetensors")
	specs := r.Model.StateSpecs(1)
	if err := checkpoints.SaveState(file, specs, outputs[1:], checkpoints.StateMeta{Tokens: len(ids), Architecture: arch}); err != nil {
		return err
	}
	fmt.Printf("%s: %d state tensors after %d prompt tokens\n", file, len(specs), len(ids))
	return nil
}

// promptIDs returns the prompt as token ids: text through the byte tokenizer (no EOS: the stream goes
// on), or a comma-separated id list; every id must be below vocab.
func promptIDs(text, list string, vocab int) ([]int32, error) {
	if (text == "") == (list == "") {
		return nil, fmt.Errorf("-state needs exactly one of -prompt or -ids")
	}
	var ids []int32
	if text != "" {
		ids = data.AppendBytes(nil, text)
	}
	for i, field := range strings.Split(list, ",") {
		if list == "" {
			break
		}
		id, err := strconv.ParseInt(strings.TrimSpace(field), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("-ids: item %d %q: %w", i+1, field, err)
		}
		ids = append(ids, int32(id))
	}
	for i, id := range ids {
		if id < 0 || int(id) >= vocab {
			return nil, fmt.Errorf("prompt token %d is id %d, outside the model's vocabulary [0, %d)", i, id, vocab)
		}
	}
	return ids, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "export:", err)
	os.Exit(1)
}
