package sweep

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/engramlx/engram/internal/fsutil"
	"github.com/engramlx/engram/internal/panics"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/engramlx/engram/configs"
	"github.com/engramlx/engram/train"
)

// ErrInterrupted is returned by Execute when its context was cancelled: the runs in flight saved a
// checkpoint, and running the same sweep again continues where it stopped.
var ErrInterrupted = errors.New("sweep interrupted; run the same command again to resume")

// Options are the knobs of one sweep invocation.
type Options struct {
	// Parallel > 1 trains that many runs at once, each in a process started from Command.
	Parallel int
	// Command returns the argument list (program first) of a process that trains the experiment saved
	// in configFile and exits 0 on success; cmd/train gives [itself, "-config", configFile].
	Command func(configFile string) []string
	// Log receives a line when a run starts and when it ends (default os.Stderr). The runs' own output
	// goes to <run>/train.log.
	Log io.Writer
	// AfterStep, when set, is called after every optimizer step of runs trained in this process.
	AfterStep func(id string, step int)
	// AfterRun, when set, is called when a run ends (not for runs skipped as finished).
	AfterRun func(Row)
}

// Row is the outcome of one run.
type Row struct {
	Run *Run
	// Status is "ok" (summary.json written), "failed" (Error says why) or "pending" (not run yet, or
	// interrupted: its checkpoint resumes it).
	Status string
	// Skipped: the run had finished before this invocation and was not trained again.
	Skipped bool
	Summary *train.Summary
	Error   string
}

// Files a sweep writes into a run directory besides train's own.
const (
	errorFile  = "error.txt"      // why the run failed (removed when it later succeeds)
	logFile    = "train.log"      // the run's training output, appended by every session
	configFile = "sweep_run.yaml" // the resolved experiment handed to a child process
)

// Execute trains every run of s that has not finished, then writes the result tables and plots into
// s.Dir. A failing run is recorded (its error.txt and a table row) and the others go on. It returns
// the rows in run order and, when ctx was cancelled, ErrInterrupted (tables are written anyway).
func Execute(ctx context.Context, s *Sweep, opts Options) ([]Row, error) {
	if opts.Log == nil {
		opts.Log = os.Stderr
	}
	if opts.Parallel > 1 && opts.Command == nil {
		return nil, errors.New("sweep: parallel runs need a command to start each run")
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("sweep directory: %w", err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(s.Dir, "sweep.yaml"), s.Source); err != nil {
		return nil, err
	}
	rows, todo := plan(s)
	fmt.Fprintf(opts.Log, "sweep %s: %d runs, %d finished before, %d to run -> %s\n", s.Name, len(rows), len(rows)-len(todo), len(todo), s.Dir)
	var mu sync.Mutex // guards rows and the report files
	finish := func(i int, err error) {
		mu.Lock()
		defer mu.Unlock()
		rows[i] = record(rows[i], err)
		if rows[i].Status != "pending" {
			fmt.Fprintf(opts.Log, "sweep %s: %s %s\n", s.Name, rows[i].Run.ID, describe(rows[i]))
			if opts.AfterRun != nil {
				opts.AfterRun(rows[i])
			}
		}
		if err := writeReport(s, rows, false); err != nil {
			fmt.Fprintf(opts.Log, "sweep %s: warning: tables not written: %v\n", s.Name, err)
		}
	}
	workers := max(opts.Parallel, 1)
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if ctx.Err() != nil {
					continue // handed over just before the interrupt: leave it for the next invocation
				}
				fmt.Fprintf(opts.Log, "sweep %s: %s started\n", s.Name, s.Runs[i].ID)
				finish(i, runOne(ctx, &s.Runs[i], opts))
			}
		}()
	}
	for _, i := range todo {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := writeReport(s, rows, true); err != nil {
		return rows, err
	}
	if ctx.Err() != nil {
		return rows, ErrInterrupted
	}
	return rows, nil
}

// plan marks the runs that finished before as ok and skipped, and lists the others in run order.
func plan(s *Sweep) (rows []Row, todo []int) {
	rows = make([]Row, len(s.Runs))
	for i := range s.Runs {
		rows[i] = Row{Run: &s.Runs[i], Status: "pending"}
		if sum, ok := finished(&s.Runs[i]); ok {
			_ = os.Remove(filepath.Join(s.Runs[i].Dir(), errorFile)) // left by an attempt that failed since
			rows[i].Status, rows[i].Skipped, rows[i].Summary = "ok", true, sum
			continue
		}
		todo = append(todo, i)
	}
	return rows, todo
}

// runOne trains one run in this process or a child, its errors and panics returned.
func runOne(ctx context.Context, r *Run, opts Options) (err error) {
	dir := r.Dir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if r.Invalid != nil {
		return r.Invalid
	}
	log, err := os.OpenFile(filepath.Join(dir, logFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	fmt.Fprintf(log, "=== %s: %s\n", time.Now().Format(time.RFC3339), r.ID)
	if opts.Parallel > 1 {
		return runChild(ctx, r, opts, log)
	}
	defer func() {
		if p := recover(); p != nil {
			err = panics.AsError(p)
		}
	}()
	trainOpts := train.Options{Log: log}
	if opts.AfterStep != nil {
		trainOpts.AfterStep = func(step int) { opts.AfterStep(r.ID, step) }
	}
	_, err = train.Run(ctx, r.Exp, trainOpts)
	return err
}

// runChild saves the resolved experiment and trains it in a child process, whose output is appended to
// log. On cancellation the child gets an interrupt, so it saves a checkpoint before it exits.
func runChild(ctx context.Context, r *Run, opts Options, log io.Writer) error {
	body, err := configs.Marshal(r.Exp)
	if err != nil {
		return err
	}
	file := filepath.Join(r.Dir(), configFile)
	if err := fsutil.WriteFileAtomic(file, body); err != nil {
		return err
	}
	argv := opts.Command(file)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 2 * time.Minute // time to save the checkpoint before it is killed
	var tail bytes.Buffer
	cmd.Stdout, cmd.Stderr = log, io.MultiWriter(log, &tail)
	err = cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return train.ErrInterrupted
	}
	lines := strings.Split(strings.TrimSpace(tail.String()), "\n")
	if last := strings.TrimSpace(lines[len(lines)-1]); last != "" {
		return fmt.Errorf("%s (%v)", strings.TrimPrefix(last, "train: "), err)
	}
	return fmt.Errorf("%s: %w", argv[0], err)
}

// record turns a run's outcome into its row and its error.txt.
func record(row Row, err error) Row {
	errPath := filepath.Join(row.Run.Dir(), errorFile)
	if errors.Is(err, train.ErrInterrupted) || errors.Is(err, context.Canceled) {
		row.Status = "pending"
		return row
	}
	if err == nil {
		sum, readErr := readSummary(row.Run.Dir())
		if readErr == nil {
			_ = os.Remove(errPath)
			row.Status, row.Summary, row.Error = "ok", sum, ""
			return row
		}
		err = fmt.Errorf("training ended without a readable summary: %w", readErr)
	}
	row.Status, row.Error = "failed", err.Error()
	if werr := fsutil.WriteFileAtomic(errPath, []byte(row.Error+"\n")); werr != nil {
		row.Error += fmt.Sprintf(" (and %s was not written: %v)", errPath, werr)
	}
	return row
}

func describe(row Row) string {
	if row.Status == "failed" {
		return "failed: " + row.Error
	}
	s := row.Summary
	return fmt.Sprintf("ok: eval_accuracy %.4f  eval_loss %.4f  train_loss %.4f  %d steps  %.0f s", s.EvalAccuracy, s.EvalLoss, s.TrainLoss, s.Steps, s.WallSeconds)
}

// Dir is the run's directory, <sweep dir>/<id>.
func (r *Run) Dir() string { return filepath.Join(r.Exp.RunsDir, r.Exp.Name) }

// finished reports whether r's directory holds a finished run of the same experiment: a summary at the
// target step and a saved config equal to r's (up to where the sweep lives).
func finished(r *Run) (*train.Summary, bool) {
	if r.Invalid != nil {
		return nil, false
	}
	sum, err := readSummary(r.Dir())
	if err != nil || sum.Steps != r.Exp.Train.Steps {
		return nil, false
	}
	file := filepath.Join(r.Dir(), "config.yaml")
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, false
	}
	saved, err := configs.ParseSaved(file, src)
	if err != nil {
		return nil, false
	}
	saved.Name, saved.RunsDir = r.Exp.Name, r.Exp.RunsDir
	return sum, len(configs.Diff(saved, r.Exp, "")) == 0
}

func readSummary(dir string) (*train.Summary, error) {
	body, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		return nil, err
	}
	var s train.Summary
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "summary.json"), err)
	}
	return &s, nil
}

// RunFile runs every run of a sweep file as `exe -config <run config>` processes, parallel at a time,
// with overrides applied to its base and the sweep moved to runsDir / renamed to name when they are
// not empty. It returns ErrInterrupted when ctx ends it, and an error naming the results table when a
// run failed (the others still ran).
func RunFile(ctx context.Context, file string, overrides []string, runsDir, name string, parallel int, exe string, log io.Writer) error {
	s, err := Load(file, overrides)
	if err != nil {
		return err
	}
	s.Relocate(runsDir, name)
	rows, err := Execute(ctx, s, Options{Parallel: parallel, Log: log,
		Command: func(config string) []string { return []string{exe, "-config", config} }})
	if err != nil {
		return err
	}
	failed := 0
	for _, r := range rows {
		if r.Status != "ok" {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d runs of sweep %s failed; see %s", failed, len(rows), s.Name, filepath.Join(s.Dir, "results.md"))
	}
	fmt.Fprintf(log, "sweep %s: %d runs done; tables and plots in %s\n", s.Name, len(rows), s.Dir)
	return nil
}
