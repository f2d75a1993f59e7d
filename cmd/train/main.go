// Command train runs an Engram experiment from a YAML config.
//
//	train                                  # the built-in quickstart
//	train -config configs/quickstart.yaml  # a config file (or the name of a built-in one)
//	train -config quickstart -set train.steps=100 -set model.d_model=128
//	train -sweep configs/sweeps/mqar_ablation.yaml -parallel 2   # every run of a sweep (package sweep)
//
// Running the same command again resumes the run (or the sweep) from its last checkpoint; Ctrl-C saves
// one and stops. With -sweep, -set applies to the base of every run and -name renames the sweep.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/engramlx/engram/configs"
	"github.com/engramlx/engram/sweep"
	"github.com/engramlx/engram/train"
	"golang.org/x/term"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

// run is the command with its arguments and error stream, returning the exit code: 0 done, 1 error
// (one line on stderr), 2 bad flags, 130 interrupted (checkpoint saved).
func run(args []string, stderr io.Writer) int {
	flags := flag.NewFlagSet("train", flag.ContinueOnError)
	flags.SetOutput(stderr)
	var overrides multiFlag
	configFile := flags.String("config", "quickstart", "experiment YAML file, or the name of a built-in config ("+strings.Join(configs.BuiltinNames(), ", ")+")")
	name := flags.String("name", "", "run name (default: the config's name); the run lives in <runs_dir>/<name>/")
	runsDir := flags.String("runs", "", "directory holding runs (default: the config's runs_dir, \"runs\")")
	flags.Var(&overrides, "set", "override a config key, e.g. -set train.steps=100 (repeatable)")
	sweepFile := flags.String("sweep", "", "run every combination of a sweep YAML file (see package sweep) instead of one config")
	parallel := flags.Int("parallel", 1, "with -sweep: train this many runs at once, each in its own process")
	cpuProfile := flags.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof reads it)")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "train:", err)
		return 1
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fail(fmt.Errorf("-cpuprofile: %w", err))
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(fmt.Errorf("-cpuprofile: %w", err))
		}
		defer pprof.StopCPUProfile()
	}
	if flags.NArg() > 0 {
		return fail(fmt.Errorf("unexpected argument %q (flags come before arguments; see -help)", flags.Arg(0)))
	}
	if *sweepFile != "" {
		return runSweep(*sweepFile, overrides, *name, *runsDir, *parallel, stderr)
	}
	exp, err := configs.Load(*configFile, overrides)
	if err != nil {
		return fail(err)
	}
	if *name != "" {
		exp.Name = *name
	}
	if *runsDir != "" {
		exp.RunsDir = *runsDir
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	isTerminal := false
	if f, ok := stderr.(*os.File); ok {
		isTerminal = term.IsTerminal(int(f.Fd()))
	}
	_, err = train.Run(ctx, exp, train.Options{Log: stderr, Progress: isTerminal})
	if errors.Is(err, train.ErrInterrupted) {
		fmt.Fprintln(stderr, "train:", err)
		return 130
	}
	if err != nil {
		return fail(err)
	}
	return 0
}

// runSweep runs a sweep file; the exit code is 1 when a run failed (the tables say which), 130 when
// interrupted.
func runSweep(file string, overrides []string, name, runsDir string, parallel int, stderr io.Writer) int {
	s, err := sweep.Load(file, overrides)
	if err != nil {
		fmt.Fprintln(stderr, "train:", err)
		return 1
	}
	s.Relocate(runsDir, name)
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "train:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rows, err := sweep.Execute(ctx, s, sweep.Options{Parallel: parallel, Log: stderr,
		Command: func(config string) []string { return []string{exe, "-config", config} }})
	if errors.Is(err, sweep.ErrInterrupted) {
		fmt.Fprintln(stderr, "train:", err)
		return 130
	}
	if err != nil {
		fmt.Fprintln(stderr, "train:", err)
		return 1
	}
	failed := 0
	for _, r := range rows {
		if r.Status != "ok" {
			failed++
		}
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "train: %d of %d runs of sweep %s failed; see %s\n", failed, len(rows), s.Name, filepath.Join(s.Dir, "results.md"))
		return 1
	}
	fmt.Fprintf(stderr, "sweep %s: %d runs done; tables and plots in %s\n", s.Name, len(rows), s.Dir)
	return 0
}
