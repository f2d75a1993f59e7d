package checkpoints

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"
)

const weightPath = "/layer_0/dense/weight"

// setStep makes the store look like step k of a run: global step k and a weight filled with k.
func setStep(t testing.TB, store *mlmodel.Store, k int) {
	t.Helper()
	if err := writeStep(store, k); err != nil {
		t.Fatal(err)
	}
}

func writeStep(store *mlmodel.Store, k int) error {
	w := make([]float32, 6)
	for i := range w {
		w[i] = float32(k) + float32(i)/10
	}
	value := tensors.FromFlatDataAndDimensions(w, 2, 3)
	if v := store.GetVariable(weightPath); v != nil {
		if err := v.SetValue(value); err != nil {
			return err
		}
	} else if _, err := store.CreateVariable(weightPath, value); err != nil {
		return err
	}
	return optimizer.GetGlobalStepVar(store).SetValue(tensors.FromScalar(int64(k)))
}

// loadedStep opens dir on a fresh store (as a new process would) and returns the step its weight and
// global step say, checking they agree with each other and with the sidecar.
func loadedStep(t testing.TB, dir string) int {
	t.Helper()
	store := mlmodel.NewStore()
	m, err := Open(store, dir, 2)
	if err != nil {
		t.Fatalf("reopening %s: %v", dir, err)
	}
	info, ok := m.Loaded()
	if !ok {
		t.Fatalf("reopening %s loaded no checkpoint", dir)
	}
	step := int(optimizer.GetGlobalStep(store))
	w := store.GetVariable(weightPath)
	if w == nil {
		t.Fatalf("weight %s not restored", weightPath)
	}
	got := w.MustValue().Value().([][]float32)
	if got[0][0] != float32(step) || got[1][2] != float32(step)+0.5 || info.Step != step {
		t.Fatalf("restored weight %v, global step %d, sidecar step %d: they must agree", got, step, info.Step)
	}
	return step
}

func newManager(t testing.TB, dir string, keep int) (*Manager, *mlmodel.Store) {
	t.Helper()
	store := mlmodel.NewStore()
	m, err := Open(store, dir, keep)
	if err != nil {
		t.Fatal(err)
	}
	return m, store
}

func saveSteps(t testing.TB, m *Manager, store *mlmodel.Store, steps ...int) {
	t.Helper()
	for _, k := range steps {
		setStep(t, store, k)
		if err := m.Save(Info{Step: k, DataPosition: int64(2 * k)}); err != nil {
			t.Fatalf("save at step %d: %v", k, err)
		}
	}
}

func TestSaveKeepsLastKAndResumes(t *testing.T) {
	dir := t.TempDir()
	m, store := newManager(t, dir, 2)
	saveSteps(t, m, store, 1, 2, 3, 4)
	infos, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].Step != 3 || infos[1].Step != 4 || infos[1].DataPosition != 8 {
		t.Fatalf("kept %+v, want steps 3 and 4", infos)
	}
	if got := loadedStep(t, dir); got != 4 {
		t.Fatalf("resumed at step %d, want 4", got)
	}
	// The resumed manager keeps numbering after the existing checkpoints.
	m2, store2 := newManager(t, dir, 2)
	saveSteps(t, m2, store2, 5)
	if infos, _ = List(dir); len(infos) != 2 || infos[1].Step != 5 || !strings.Contains(infos[1].Dir, "ckpt-000004-step-00000005") {
		t.Fatalf("after resuming and saving: %+v", infos)
	}
}

// A save that dies at any point before its rename leaves the previous checkpoint as the one loaded;
// once renamed, the new one is loaded.
func TestFailedSaveKeepsPreviousCheckpoint(t *testing.T) {
	for _, stage := range []string{"written", "sidecar", "published"} {
		t.Run(stage, func(t *testing.T) {
			dir := t.TempDir()
			m, store := newManager(t, dir, 2)
			saveSteps(t, m, store, 1)
			crash := errors.New("injected crash")
			m.failpoint = func(at, path string) error {
				if at != stage {
					return nil
				}
				// A process dying mid-write leaves the data file cut short.
				if bins, _ := filepath.Glob(filepath.Join(path, "*.bin")); len(bins) == 1 && at != "published" {
					if err := os.Truncate(bins[0], 10); err != nil {
						t.Fatal(err)
					}
				}
				return crash
			}
			setStep(t, store, 2)
			if err := m.Save(Info{Step: 2}); !errors.Is(err, crash) {
				t.Fatalf("save returned %v, want the injected crash", err)
			}
			want := 1
			if stage == "published" {
				want = 2
			}
			if got := loadedStep(t, dir); got != want {
				t.Fatalf("after a crash at %q the loaded checkpoint is step %d, want %d", stage, got, want)
			}
			// The same manager saves again normally.
			m.failpoint = nil
			saveSteps(t, m, store, 3)
			if got := loadedStep(t, dir); got != 3 {
				t.Fatalf("the save after the failed one: loaded step %d, want 3", got)
			}
		})
	}
}

func TestCorruptedCheckpointIsAnErrorNamingTheFile(t *testing.T) {
	cases := []struct {
		name, file string
		damage     func(path string) error
		want       string
	}{
		{"truncated data", "*.bin", func(p string) error { return os.Truncate(p, 20) }, "truncated or corrupted"},
		{"flipped byte", "checkpoint-*.json", flipByte, "does not match its sidecar's SHA-256"},
		{"bad sidecar", SidecarFile, func(p string) error { return os.WriteFile(p, []byte(`{"step": 2, "files": [`), 0o644) }, "corrupted sidecar"},
		{"empty sidecar", SidecarFile, func(p string) error { return os.WriteFile(p, []byte(`{}`), 0o644) }, "lists no checkpoint files"},
		{"missing data file", "*.bin", os.Remove, "no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			m, store := newManager(t, dir, 3)
			saveSteps(t, m, store, 1, 2)
			newest, _ := Latest(dir)
			files, _ := filepath.Glob(filepath.Join(newest.Dir, c.file))
			if len(files) != 1 {
				t.Fatalf("no %s in %s", c.file, newest.Dir)
			}
			if err := c.damage(files[0]); err != nil {
				t.Fatal(err)
			}
			_, err := Open(mlmodel.NewStore(), dir, 3)
			if err == nil || !strings.Contains(err.Error(), files[0]) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error naming %s and saying %q", err, files[0], c.want)
			}
		})
	}
}

func flipByte(path string) error {
	body, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	body[len(body)/2] ^= 0x20
	return os.WriteFile(path, body, 0o644)
}

// A published directory without a sidecar is incomplete: skipped, and the previous checkpoint loads.
func TestCheckpointWithoutSidecarIsIgnored(t *testing.T) {
	dir := t.TempDir()
	m, store := newManager(t, dir, 3)
	saveSteps(t, m, store, 1, 2)
	newest, _ := Latest(dir)
	if err := os.Remove(filepath.Join(newest.Dir, SidecarFile)); err != nil {
		t.Fatal(err)
	}
	if got := loadedStep(t, dir); got != 1 {
		t.Fatalf("loaded step %d, want 1 (the newest complete checkpoint)", got)
	}
}

// Opening the directory (as an export does) while a save is in flight neither disturbs that save nor
// sees it before it is published.
func TestOpenDuringSave(t *testing.T) {
	dir := t.TempDir()
	m, store := newManager(t, dir, 2)
	saveSteps(t, m, store, 1)
	m.failpoint = func(stage, _ string) error {
		if stage == "written" || stage == "sidecar" {
			if got := loadedStep(t, dir); got != 1 {
				t.Errorf("opened during the save (at %q): loaded step %d, want 1", stage, got)
			}
		}
		return nil
	}
	saveSteps(t, m, store, 2)
	if got := loadedStep(t, dir); got != 2 {
		t.Fatalf("after the save: loaded step %d, want 2", got)
	}
}

// Metric variables of a finished session are not carried into later checkpoints.
func TestStaleMetricVariablesAreDropped(t *testing.T) {
	dir := t.TempDir()
	m, store := newManager(t, dir, 2)
	if _, err := store.CreateVariable("/metrics/acc_uuid_1234/total", tensors.FromScalar(float32(3))); err != nil {
		t.Fatal(err)
	}
	saveSteps(t, m, store, 1)
	m2, store2 := newManager(t, dir, 2)
	saveSteps(t, m2, store2, 2)
	info, _ := Latest(dir)
	for _, f := range info.Files {
		body, _ := os.ReadFile(filepath.Join(info.Dir, f.Name))
		if strings.HasSuffix(f.Name, ".json") && (strings.Contains(string(body), "acc_uuid_1234") || !strings.Contains(string(body), weightPath)) {
			t.Fatalf("checkpoint %s: want the weight and no stale metric variable:\n%s", f.Name, body)
		}
	}
}

// TestKilledDuringSave kills a real process (SIGKILL) while it is inside a save, after GoMLX wrote its
// files and after the sidecar was written, and checks the previous checkpoint loads.
func TestKilledDuringSave(t *testing.T) {
	if dir := os.Getenv("ENGRAM_CKPT_CHILD_DIR"); dir != "" {
		childSaveAndHang(dir, os.Getenv("ENGRAM_CKPT_CHILD_STAGE"))
		return
	}
	for _, stage := range []string{"written", "sidecar"} {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestKilledDuringSave$")
		cmd.Env = append(os.Environ(), "ENGRAM_CKPT_CHILD_DIR="+dir, "ENGRAM_CKPT_CHILD_STAGE="+stage)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(out)
		reached := false
		for lines.Scan() {
			if lines.Text() == "MIDSAVE" {
				reached = true
				break
			}
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if !reached {
			t.Fatalf("stage %s: the child never reached the middle of its third save", stage)
		}
		if got := loadedStep(t, dir); got != 2 {
			t.Fatalf("killed during the save of step 3 at %q: loaded step %d, want 2", stage, got)
		}
		if debris, _ := filepath.Glob(filepath.Join(dir, stagingPrefix+"*")); len(debris) > 0 {
			t.Fatalf("the dead process's unfinished save was not removed: %v", debris)
		}
	}
}

func childSaveAndHang(dir, stage string) {
	store := mlmodel.NewStore()
	m, err := Open(store, dir, 2)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	m.failpoint = func(at, _ string) error {
		if at == stage && optimizer.GetGlobalStep(store) == 3 {
			fmt.Println("MIDSAVE")
			time.Sleep(time.Minute) // killed here
		}
		return nil
	}
	for k := 1; k <= 3; k++ {
		if err := writeStep(store, k); err == nil {
			err = m.Save(Info{Step: k})
		}
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
	}
	os.Exit(0)
}

// The GoMLX version recorded in sidecars and exports is the one go.mod requires.
func TestGoMLXVersionIsTheRequiredOne(t *testing.T) {
	body, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	want := "github.com/gomlx/gomlx " + GoMLXVersion
	for _, line := range strings.Split(string(body), "\n") {
		if fields := strings.Fields(line); len(fields) >= 2 && fields[0] == "github.com/gomlx/gomlx" {
			if strings.Join(fields[:2], " ") != want {
				t.Fatalf("go.mod requires %s, GoMLXVersion is %s: checkpoints of different GoMLX minor versions are not compatible; add a migration test before changing it", fields[1], GoMLXVersion)
			}
			return
		}
	}
	t.Fatal("go.mod does not require github.com/gomlx/gomlx")
}
