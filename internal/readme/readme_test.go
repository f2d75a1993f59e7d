package readme

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Every `go run ./cmd/...` line of the README's shell blocks runs, in the README's order, from a fresh
// directory holding only the repository's configs/, and exits 0. The commands run as a user would type
// them (through sh, quotes and all) with two changes that keep the test short: `go run ./cmd/<name>` is
// the same command built once, and the knobs below shrink the work (training steps, eval rows). So an
// example that names a file, run, flag or config that does not exist fails here.
func TestREADMECommands(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the README commands build and run the four commands")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	commands, err := readmeCommands(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(commands) < 10 {
		t.Fatalf("found %d go run commands in README.md; the parser is broken or the README lost its examples", len(commands))
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(os.PathSeparator), "./cmd/...")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/...: %v\n%s", err, out)
	}
	work := t.TempDir()
	if err := os.Symlink(filepath.Join(root, "configs"), filepath.Join(work, "configs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "docs"), filepath.Join(work, "docs")); err != nil {
		t.Fatal(err)
	}
	for i, line := range commands {
		shell := shrink(strings.ReplaceAll(line, "go run ./cmd/", bin+"/"))
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, "sh", "-c", shell)
		cmd.Dir = work
		out, err := cmd.CombinedOutput()
		cancel()
		t.Logf("%2d  %5.1fs  %s", i+1, time.Since(start).Seconds(), line)
		if err != nil {
			t.Fatalf("README command %d failed (%v):\n  %s\nran as:\n  %s\noutput:\n%s", i+1, err, line, shell, tail(out, 20))
		}
	}
}

// readmeCommands returns the lines of README.md's ```sh blocks that run a command with `go run
// ./cmd/...`, without their trailing comments.
func readmeCommands(file string) ([]string, error) {
	body, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out []string
	inShell := false
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```sh"):
			inShell = true
		case strings.HasPrefix(line, "```"):
			inShell = false
		case inShell && strings.Contains(line, "go run ./cmd/"):
			out = append(out, strings.TrimSpace(stripComment(line)))
		}
	}
	return out, sc.Err()
}

// stripComment cuts a shell comment (a # after a blank, outside quotes) off line.
func stripComment(line string) string {
	var quote rune
	prev := ' '
	for i, c := range line {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '#' && (prev == ' ' || prev == '\t'):
			return line[:i]
		}
		prev = c
	}
	return line
}

// The knobs: every training run (and every run of a sweep) takes 2 steps and scores 1 eval batch, and
// an evaluation scores 1 row per cell. Appended flags win over the line's own.
var (
	isTrain = regexp.MustCompile(`/train(\s|$)`)
	isEval  = regexp.MustCompile(`/eval(\s|$)`)
)

func shrink(shell string) string {
	switch {
	case isTrain.MatchString(shell):
		return shell + " -set train.steps=2 -set train.eval_batches=1 -set train.eval_every=0 -set train.checkpoint_every=0"
	case isEval.MatchString(shell):
		return shell + " -samples 1"
	}
	return shell
}

func tail(out []byte, lines int) string {
	parts := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(parts) > lines {
		parts = append([]string{fmt.Sprintf("[... %d lines]", len(parts)-lines)}, parts[len(parts)-lines:]...)
	}
	return strings.Join(parts, "\n")
}
