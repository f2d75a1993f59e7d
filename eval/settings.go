package eval

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/engramlx/engram/configs"
)

// Settings reads the eval: section of configFile ("" = the run's saved config.yaml) and applies
// overrides "eval.<key>=<value>" through the experiment decoder (so eval.lengths=4K,16K reads like the
// YAML), then validates it.
func Settings(configFile, run string, overrides []string) (configs.Eval, error) {
	parse := func(file string, src []byte) (configs.Experiment, error) { return configs.Parse(file, src, nil) }
	if configFile == "" {
		configFile, parse = filepath.Join(run, "config.yaml"), configs.ParseSaved
	}
	src, err := os.ReadFile(configFile)
	if err != nil {
		return configs.Eval{}, err
	}
	exp, err := parse(configFile, src)
	if err != nil {
		return configs.Eval{}, err
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
