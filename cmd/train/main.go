// Command train runs an Engram experiment from a YAML config.
//
//	train                                  # the built-in quickstart
//	train -config configs/quickstart.yaml  # a config file (or the name of a built-in one)
//	train -config quickstart -set train.steps=100 -set model.d_model=128
//
// Running the same command again resumes the run from its last checkpoint; Ctrl-C saves one and stops.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/engramlx/engram/configs"
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
	if err := flags.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "train:", err)
		return 1
	}
	if flags.NArg() > 0 {
		return fail(fmt.Errorf("unexpected argument %q (flags come before arguments; see -help)", flags.Arg(0)))
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
