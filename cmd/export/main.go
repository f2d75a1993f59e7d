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

	"github.com/engramlx/engram/checkpoints"
	"github.com/engramlx/engram/export"
	"github.com/engramlx/engram/train"
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

func exportWeights(r *train.Runner, runDir, out, dtype string, fla flaImport) error {
	m := export.FromRun(r)
	if fla.file != "" {
		if err := m.Build(); err != nil {
			return err
		}
		lines, err := export.ImportFLA(m, fla.file, fla.layers, fla.prefix)
		if err != nil {
			return err
		}
		for _, line := range lines {
			fmt.Println(line)
		}
	}
	info, err := train.ReadInfo(filepath.Join(runDir, "checkpoints"))
	if err != nil {
		return err
	}
	man, err := export.Weights(m, out, dtype, r.Exp.Name, info.Step)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d tensors, %d bytes (%s, step %d) + %s\n", filepath.Join(out, checkpoints.WeightsFile),
		len(man.Tensors), man.WeightsSize, man.DType, info.Step, checkpoints.ConfigFile)
	return nil
}

// flaImport names the flash-linear-attention weights that replace some layers' (file "" = none).
type flaImport struct{ file, layers, prefix string }

func exportState(r *train.Runner, out, prompt, idList string) error {
	ids, err := export.PromptIDs(prompt, idList, r.Model.Config.Vocab)
	if err != nil {
		return err
	}
	m := export.FromRun(r)
	file, err := export.State(m, out, ids)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d state tensors after %d prompt tokens\n", file, len(m.Seq.StateSpecs(1)), len(ids))
	return nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "export:", err)
	os.Exit(1)
}
