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

func main() {
	var overrides multiFlag
	configFile := flag.String("config", "quickstart", "experiment YAML file, or the name of a built-in config ("+strings.Join(configs.BuiltinNames(), ", ")+")")
	name := flag.String("name", "", "run name (default: the config's name); the run lives in <runs_dir>/<name>/")
	runsDir := flag.String("runs", "", "directory holding runs (default: the config's runs_dir, \"runs\")")
	flag.Var(&overrides, "set", "override a config key, e.g. -set train.steps=100 (repeatable)")
	flag.Parse()
	if flag.NArg() > 0 {
		fail(fmt.Errorf("unexpected argument %q (flags come before arguments; see -help)", flag.Arg(0)))
	}
	exp, err := configs.Load(*configFile, overrides)
	if err != nil {
		fail(err)
	}
	if *name != "" {
		exp.Name = *name
	}
	if *runsDir != "" {
		exp.RunsDir = *runsDir
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, err = train.Run(ctx, exp, train.Options{Log: os.Stderr, Progress: term.IsTerminal(int(os.Stderr.Fd()))})
	if errors.Is(err, train.ErrInterrupted) {
		fmt.Fprintln(os.Stderr, "train:", err)
		os.Exit(130)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "train:", err)
	os.Exit(1)
}
