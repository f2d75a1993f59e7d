// Command train runs an Engram experiment from a YAML config.
//
// Running the same command again resumes the run (or the sweep) from its last checkpoint; Ctrl-C saves
// one and stops (exit code 130). With -sweep, -set applies to the base of every run and -name renames
// the sweep.
package main

import (
	"io"
	"os"
	"strings"

	"github.com/engramlx/engram/configs"
	"github.com/engramlx/engram/internal/cli"
	"github.com/engramlx/engram/sweep"
	"github.com/engramlx/engram/train"
)

const usage = `Usage: train [flags]

  train                                  # the built-in quickstart
  train -config configs/quickstart.yaml  # a config file (or the name of a built-in one)
  train -config quickstart -set train.steps=100 -set model.d_model=128 -name wider
  train -sweep configs/sweeps/mqar_ablation.yaml -parallel 2   # every run of a sweep
  train -config quickstart -name tuned -init_from runs/quickstart/export   # fine-tune an export`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run is the command: 0 done, 1 error (one line on stderr), 2 bad flags, 130 interrupted.
func run(args []string, stdout, stderr io.Writer) int {
	c := cli.New("train", "train a memory-layer model from a YAML experiment (resumable), or every run of a sweep", usage, stdout, stderr)
	var overrides cli.List
	configFile := c.Flags.String("config", "quickstart", "experiment YAML file, or the name of a built-in config ("+strings.Join(configs.BuiltinNames(), ", ")+")")
	name := c.Flags.String("name", "", "run name (default: the config's name); the run lives in <runs>/<name>/")
	runsDir := c.Flags.String("runs", "", "directory holding runs (default: the config's runs_dir, \"runs\")")
	c.Flags.Var(&overrides, "set", "override a config key, e.g. -set train.steps=100 (repeatable)")
	sweepFile := c.Flags.String("sweep", "", "run every combination of a sweep YAML file (see package sweep) instead of one config")
	parallel := c.Flags.Int("parallel", 1, "with -sweep: train this many runs at once, each in its own process")
	initFrom := c.Flags.String("init_from", "", "start a new run from the weights of an export directory (cmd/export's output; same as -set train.init_from=DIR)")
	cpuProfile := c.Flags.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof reads it)")
	if code, ok := c.Parse(args); !ok {
		return code
	}
	stopProfile, err := cli.StartCPUProfile(*cpuProfile)
	if err != nil {
		return c.Exit(err)
	}
	defer stopProfile()
	ctx, stop := cli.SignalContext()
	defer stop()
	if *sweepFile != "" {
		exe, err := os.Executable()
		if err != nil {
			return c.Exit(err)
		}
		return c.Exit(sweep.RunFile(ctx, *sweepFile, overrides, *runsDir, *name, *parallel, exe, stderr), sweep.ErrInterrupted)
	}
	if *initFrom != "" {
		overrides = append(overrides, "train.init_from="+*initFrom)
	}
	exp, err := configs.Load(*configFile, overrides)
	if err != nil {
		return c.Exit(err)
	}
	if *name != "" {
		exp.Name = *name
	}
	if *runsDir != "" {
		exp.RunsDir = *runsDir
	}
	_, err = train.Run(ctx, exp, train.Options{Log: stderr, Progress: cli.IsTerminal(stderr)})
	return c.Exit(err, train.ErrInterrupted)
}
