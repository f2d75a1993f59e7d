// Command export writes a trained run's weights as model.safetensors + config.json, or the memory
// state the model carries after a prompt (<out>/state.safetensors; package checkpoints has the formats).
//
// Importing flash-linear-attention weights: -import-fla writes the same export with the weights of the
// run's gated_deltanet layers listed in -layer taken from an fla GatedDeltaNet state_dict saved as
// safetensors (PyTorch [out, in] Linear weights, [channels, 1, W] conv weights, A_log, dt_bias,
// o_norm.weight; see checkpoints.ReadFLAGatedDeltaNet); every other weight comes from the run's
// checkpoint. -fla-prefix selects the layer inside the file ("{layer}" is replaced by the layer index):
//
// The run's deltanet config must match fla's layer: heads = num_heads, head_dim_k = head_dim, expand_v,
// conv_size, use_short_conv, allow_neg_eigval and norm_eps (fla's layer default is 1e-5, fla's model
// config passes 1e-6); shapes are checked, the last three are not visible in the weights. Load the
// export with checkpoints.Import and Imported.NewStore.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/engramlx/engram/export"
	"github.com/engramlx/engram/internal/cli"
	"github.com/engramlx/engram/train"
)

const usage = `Usage: export -run DIR [flags]

  export -run runs/quickstart                        # -> runs/quickstart/export/{model.safetensors,config.json}
  export -run runs/quickstart -out /tmp/q -dtype bfloat16
  export -run runs/passkey -state -prompt "The passkey is 4417."   # byte tokenizer
  export -run runs/quickstart -state -ids 3,17,42                  # token ids
  export -run runs/gdn -import-fla fla_model.safetensors -layer 0,1 -fla-prefix 'model.layers.{layer}.attn.'`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	c := cli.New("export", "write a run's weights as model.safetensors + config.json, or its memory state after a prompt", usage, stdout, stderr)
	runDir := c.Flags.String("run", "", "run directory (runs/<name>) holding config.yaml and checkpoints/")
	out := c.Flags.String("out", "", "output directory (default <run>/export)")
	dtype := c.Flags.String("dtype", "float32", "weights dtype: float32, bfloat16 or float64")
	state := c.Flags.Bool("state", false, "export the memory state after a prompt instead of the weights")
	prompt := c.Flags.String("prompt", "", "with -state: prompt text, encoded by the byte tokenizer")
	ids := c.Flags.String("ids", "", "with -state: prompt token ids, comma-separated")
	var fla export.FLAImport
	c.Flags.StringVar(&fla.File, "import-fla", "", "export with the weights of the -layer gated_deltanet layers read from this flash-linear-attention safetensors state_dict")
	c.Flags.StringVar(&fla.Layers, "layer", "", "with -import-fla: the run's layer indices to replace, comma-separated")
	c.Flags.StringVar(&fla.Prefix, "fla-prefix", "", "with -import-fla: tensor name prefix of the layer in the file; {layer} = the layer index")
	if code, ok := c.Parse(args); !ok {
		return code
	}
	switch {
	case *runDir == "":
		return c.Usagef("-run is required")
	case (fla.File == "") != (fla.Layers == ""):
		return c.Usagef("-import-fla and -layer go together")
	case fla.File != "" && *state:
		return c.Usagef("-state and -import-fla exclude each other")
	}
	if *out == "" {
		*out = filepath.Join(*runDir, "export")
	}
	r, err := train.Open(*runDir, train.Options{Log: stderr})
	if err != nil {
		return c.Exit(err)
	}
	var lines []string
	if *state {
		var line string
		line, err = export.RunState(r, *out, *prompt, *ids)
		lines = []string{line}
	} else {
		lines, err = export.RunWeights(r, *out, *dtype, fla)
	}
	for _, line := range lines {
		fmt.Fprintln(stdout, line)
	}
	return c.Exit(err)
}
