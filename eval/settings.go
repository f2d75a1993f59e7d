package eval

import (
	"reflect"

	"fmt"
	"os"
	"strings"

	"github.com/engramlx/engram/data"

	"github.com/engramlx/engram/configs"
)

// Settings reads the eval: section of configFile ("" = the run's saved config.yaml; for an export, the
// defaults with the task its source run trained on) and applies
// overrides "eval.<key>=<value>" through the experiment decoder (so eval.lengths=4K,16K reads like the
// YAML), then validates it.
func Settings(configFile, run string, overrides []string) (configs.Eval, error) {
	var exp configs.Experiment
	var err error
	if configFile == "" {
		exp, err = savedExperiment(run) // the run's config.yaml, or an export's recorded data section
	} else {
		var src []byte
		if src, err = os.ReadFile(configFile); err == nil {
			exp, err = configs.Parse(configFile, src, nil)
		}
	}
	if err != nil {
		return configs.Eval{}, err
	}
	if own, ok := ownTask(exp); ok && reflect.DeepEqual(exp.Eval, configs.DefaultEval()) {
		exp.Eval = own // the run has no eval: section of its own: evaluate the task it trained on
	}
	for _, o := range overrides {
		if !strings.HasPrefix(o, "eval.") {
			return configs.Eval{}, fmt.Errorf("-set %s: cmd/eval sets only eval.<key>", o)
		}
		if err := configs.ApplyOverride(&exp, o); err != nil {
			return configs.Eval{}, err
		}
	}
	return exp.Eval, exp.Eval.Validate()
}

// ownTask is an eval section measuring a run on the task it trained on, at its training length: mqar
// (at its pair count) and copy; ok is false for the other tasks (passkey is the default section's).
func ownTask(exp configs.Experiment) (configs.Eval, bool) {
	e := configs.DefaultEval()
	gen, ok := exp.Data.Generator()
	if !ok {
		return e, false
	}
	switch t := gen.(type) {
	case data.MQAR:
		e.Tasks, e.Lengths, e.Pairs = []string{"mqar"}, configs.Lengths{t.SeqLen}, []int{t.NumPairs}
	case data.Copy:
		e.Tasks, e.Lengths = []string{"copy"}, configs.Lengths{t.SeqLen}
	default:
		return e, false
	}
	e.Segment = max(e.Segment, exp.Data.SeqLen())
	return e, true
}
