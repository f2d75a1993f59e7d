// Command export writes a trained run's weights as model.safetensors + config.json, or the memory
// state the model carries after a prompt.
//
//	export -run runs/quickstart                        # -> runs/quickstart/export/{model.safetensors,config.json}
//	export -run runs/quickstart -out /tmp/q -dtype bfloat16
//	export -run runs/quickstart -state -prompt "The passkey is 4417."   # byte tokenizer
//	export -run runs/quickstart -state -ids 3,17,42                     # token ids
//
// The state is written to <out>/state.safetensors; package checkpoints documents both formats.
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
	flag.Parse()
	if *runDir == "" || flag.NArg() > 0 {
		fail(fmt.Errorf("usage: export -run runs/<name> [-out dir] [-dtype float32|bfloat16] [-state -prompt text | -ids 1,2,3]"))
	}
	if *out == "" {
		*out = filepath.Join(*runDir, "export")
	}
	r, err := train.Open(*runDir, train.Options{Log: os.Stderr})
	if err != nil {
		fail(err)
	}
	if *state {
		err = exportState(r, *out, *prompt, *ids)
	} else {
		err = exportWeights(r, *runDir, *out, *dtype)
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

func exportWeights(r *train.Runner, runDir, out, dtype string) error {
	exec, err := forward(r)
	if err != nil {
		return err
	}
	defer exec.Finalize()
	if _, err := exec.Call(tensors.FromFlatDataAndDimensions([]int32{0}, 1, 1)); err != nil {
		return fmt.Errorf("building the model: %w", err)
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
