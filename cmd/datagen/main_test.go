package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/engramlx/engram/data"
)

// The README's datagen command writes into a directory that does not exist yet; -h exits 0; a bad task
// or a missing -out exits 2 with one line; a task that cannot be generated exits 1 naming the field.
func TestDatagen(t *testing.T) {
	out := filepath.Join(t.TempDir(), "runs", "data", "mqar.parquet")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-task", "mqar", "-rows", "8", "-seq_len", "64", "-vocab", "64", "-pairs", "4", "-out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if info, err := os.Stat(out); err != nil || info.Size() == 0 || !strings.Contains(stdout.String(), "wrote 8 rows") {
		t.Fatalf("output file %v %v; stdout %q", info, err, stdout.String())
	}
	stderr.Reset()
	if code := run([]string{"-h"}, io.Discard, &stderr); code != 0 || !strings.Contains(stderr.String(), "datagen: write a synthetic task's rows") {
		t.Errorf("-h: exit %d, output %q", code, stderr.String())
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-task", "nope", "-out", out}, 2, `-task "nope"`},
		{[]string{"-task", "mqar"}, 2, "-out is required"},
		{[]string{"-task", "mqar", "-pairs", "0", "-out", out}, 1, "num_pairs"},
	} {
		stderr.Reset()
		code := run(c.args, io.Discard, &stderr)
		if msg := strings.TrimSpace(stderr.String()); code != c.code || !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
			t.Errorf("%v: exit %d, output %q; want exit %d and one line naming %q", c.args, code, msg, c.code, c.want)
		}
	}
}

// -random_filler on passkey writes rows whose haystack is not the repeated grass-is-green text.
func TestDatagenPasskeyRandomFiller(t *testing.T) {
	for _, random := range []bool{false, true} {
		out := filepath.Join(t.TempDir(), "pk.parquet")
		args := []string{"-task", "passkey", "-rows", "2", "-seq_len", "400", "-out", out}
		if random {
			args = append(args, "-random_filler")
		}
		if code := run(args, io.Discard, io.Discard); code != 0 {
			t.Fatalf("%v: exit %d", args, code)
		}
		rows, err := data.ReadRows(data.FileConfig{Path: out}, 260)
		if err != nil {
			t.Fatal(err)
		}
		ids, _ := rows.Row(0)
		if has := strings.Contains(data.Decode(ids), "The sky is blue. The sun is yellow."); has == random {
			t.Errorf("-random_filler %v: the repeated haystack is in the row: %v", random, has)
		}
	}
}
