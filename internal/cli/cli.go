// Package cli is what Engram's commands share: a flag set that prints a one-line description, usage
// examples and every flag with its default under the program's short name; exit codes (0 done or -h,
// 1 error, 2 bad flags, 130 interrupted); a repeatable flag; the signal context; CPU profiling; and
// one-line errors prefixed by the command's name. Each main is
//
//	func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
//
// with run testable: it never calls os.Exit and writes only to the writers it is given.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
)

// Exit codes.
const (
	ExitOK          = 0
	ExitError       = 1
	ExitUsage       = 2
	ExitInterrupted = 130
)

// Command is one command's flags and output streams.
type Command struct {
	Name    string // short program name, e.g. "train"
	Summary string // what the command does, one line
	Usage   string // usage lines and examples, printed after the summary
	Flags   *flag.FlagSet
	Stdout  io.Writer
	Stderr  io.Writer
}

// New returns a command whose -h prints "name: summary", usage and the flags with their defaults.
func New(name, summary, usage string, stdout, stderr io.Writer) *Command {
	c := &Command{Name: name, Summary: summary, Usage: usage, Stdout: stdout, Stderr: stderr}
	c.Flags = flag.NewFlagSet(name, flag.ContinueOnError)
	c.Flags.SetOutput(stderr)
	c.Flags.Usage = func() {
		fmt.Fprintf(stderr, "%s: %s\n\n%s\n\nFlags:\n", name, summary, strings.TrimRight(usage, "\n"))
		c.Flags.PrintDefaults()
	}
	return c
}

// Parse parses args. ok is false when the command should stop with code: 0 after -h, 2 after a bad
// flag or an unexpected argument (flags come before arguments).
func (c *Command) Parse(args []string) (code int, ok bool) {
	if err := c.Flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK, false
		}
		return ExitUsage, false
	}
	if c.Flags.NArg() > 0 {
		fmt.Fprintf(c.Stderr, "%s: unexpected argument %q (flags come before arguments; see -h)\n", c.Name, c.Flags.Arg(0))
		return ExitUsage, false
	}
	return ExitOK, true
}

// Usagef reports a missing or contradictory flag in one line and returns ExitUsage.
func (c *Command) Usagef(format string, args ...any) int {
	fmt.Fprintf(c.Stderr, "%s: %s (see -h)\n", c.Name, fmt.Sprintf(format, args...))
	return ExitUsage
}

// Exit turns the work's error into the exit code, printing it as one line: nil 0, an error that is (or
// wraps) one of interrupted 130, anything else 1.
func (c *Command) Exit(err error, interrupted ...error) int {
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(c.Stderr, "%s: %v\n", c.Name, err)
	for _, sentinel := range interrupted {
		if errors.Is(err, sentinel) {
			return ExitInterrupted
		}
	}
	return ExitError
}

// List is a repeatable string flag (-set a=1 -set b=2, -run x -run y).
type List []string

func (l *List) String() string     { return strings.Join(*l, " ") }
func (l *List) Set(v string) error { *l = append(*l, v); return nil }

// SignalContext is cancelled by SIGINT or SIGTERM, so a command can save its state and stop.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// StartCPUProfile writes a CPU profile to file until the returned stop is called ("" profiles nothing).
func StartCPUProfile(file string) (stop func(), err error) {
	if file == "" {
		return func() {}, nil
	}
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// IsTerminal reports whether w is a terminal (progress bars draw only there).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// PeakRSS is the process's peak resident set size (VmHWM from /proc/self/status on Linux, "unknown"
// elsewhere).
func PeakRSS() string {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
		}
	}
	return "unknown"
}
