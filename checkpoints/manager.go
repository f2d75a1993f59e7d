package checkpoints

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/engramlx/engram/internal/fsutil"
	"github.com/engramlx/engram/internal/panics"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	mlmodel "github.com/gomlx/gomlx/ml/model"
	mlckpt "github.com/gomlx/gomlx/ml/model/checkpoint"
	"github.com/gomlx/gomlx/ml/train/metric"
)

// stagingPrefix starts the name of a manager's working directory, .staging-<pid>-<nanoseconds>: the
// GoMLX handler loads and saves there, and a save is published by renaming it. One per manager, so a
// process opening the run for export while another trains never touches the trainer's save in flight.
const stagingPrefix = ".staging-"

// Manager saves a store's checkpoints atomically into a directory and loads the newest complete one
// (see the package doc for the layout).
type Manager struct {
	dir     string
	staging string
	keep    int
	store   *mlmodel.Store
	handler *mlckpt.Handler
	loaded  *Info

	// failpoint, when set, is called at the named stages of Save ("written": GoMLX's files are in the
	// staging directory; "sidecar": the sidecar too; "published": renamed into place). An error from it
	// aborts the save there, which is how tests stand in for a crash.
	failpoint func(stage, path string) error
}

// Open prepares dir (created if missing) for checkpoints of store, keeping the last keep, and loads the
// newest complete checkpoint: variables take its values as they are created. Incomplete checkpoints
// (no sidecar) are skipped; a corrupted one (files not matching its sidecar) is an error naming the file.
func Open(store *mlmodel.Store, dir string, keep int) (*Manager, error) {
	if keep < 1 {
		return nil, fmt.Errorf("checkpoints in %s: keep = %d, must be >= 1", dir, keep)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	if legacy, _ := filepath.Glob(filepath.Join(dir, "checkpoint-*.json")); len(legacy) > 0 {
		return nil, fmt.Errorf("%s holds checkpoints in the unversioned layout of earlier Engram builds (%s); move them away to start afresh", dir, filepath.Base(legacy[0]))
	}
	if err := removeDeadStaging(dir); err != nil {
		return nil, err
	}
	staging := filepath.Join(dir, fmt.Sprintf("%s%d-%d", stagingPrefix, os.Getpid(), time.Now().UnixNano()))
	m := &Manager{dir: dir, staging: staging, keep: keep, store: store}
	latest, err := newestComplete(dir)
	if err != nil {
		return nil, err
	}
	if err := os.Mkdir(staging, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	// The handler reads the whole checkpoint into memory when built, so the links are dropped after.
	defer os.RemoveAll(staging)
	if latest != nil {
		for _, f := range latest.Files {
			if err := linkOrCopy(filepath.Join(latest.Dir, f.Name), filepath.Join(staging, f.Name)); err != nil {
				return nil, fmt.Errorf("checkpoints: staging %s: %w", latest.Dir, err)
			}
		}
		m.loaded = latest
	}
	if m.handler, err = buildHandler(store, staging); err != nil {
		if latest != nil {
			return nil, fmt.Errorf("loading checkpoint %s: %w", latest.Dir, err)
		}
		return nil, err
	}
	m.dropStaleMetrics()
	return m, nil
}

// removeDeadStaging removes the working directories of processes that died mid-save.
func removeDeadStaging(dir string) error {
	items, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	for _, item := range items {
		pidText, _, ok := strings.Cut(strings.TrimPrefix(item.Name(), stagingPrefix), "-")
		pid, err := strconv.Atoi(pidText)
		dead := strings.HasPrefix(item.Name(), stagingPrefix) && ok && err == nil && pid != os.Getpid() && !alive(pid)
		if !dead && item.Name() != ".staging" { // the shared working directory of the first layout
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, item.Name())); err != nil {
			return fmt.Errorf("checkpoints: removing an unfinished save: %w", err)
		}
	}
	return nil
}

// alive tells whether process pid may still run; when unsure it says yes, so nothing live is removed.
func alive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return !errors.Is(err, os.ErrProcessDone) && !errors.Is(err, syscall.ESRCH)
}

// newestComplete returns the verified sidecar of the newest complete checkpoint, nil if there is none.
func newestComplete(dir string) (*Info, error) {
	entries, err := list(dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	for i := len(entries) - 1; i >= 0; i-- {
		if !entries[i].complete {
			continue
		}
		info, err := readSidecar(entries[i].path)
		if err == nil {
			err = info.Verify()
		}
		if err != nil {
			return nil, fmt.Errorf("%w (delete %s to resume from the checkpoint before it)", err, entries[i].path)
		}
		return &info, nil
	}
	return nil, nil
}

// buildHandler opens GoMLX's handler on dir, turning its panics into errors.
func buildHandler(store *mlmodel.Store, dir string) (h *mlckpt.Handler, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panics.AsError(p)
		}
	}()
	// Keep(-1): pruning is ours, across published directories; the staging directory holds one checkpoint.
	return mlckpt.Build(store).Dir(dir).Keep(-1).Done()
}

// dropStaleMetrics forgets loaded metric variables: each session creates its own under fresh names, so
// the old ones would never be claimed and would be re-saved in every checkpoint.
func (m *Manager) dropStaleMetrics() {
	prefix := "/" + metric.Scope + "/"
	var stale []string
	for key := range m.handler.LoadedVariables() {
		if path := strings.TrimPrefix(key, "var:"); strings.HasPrefix(path, prefix) {
			stale = append(stale, path)
		}
	}
	for _, path := range stale {
		_ = m.handler.DeleteVariable(m.store, path)
	}
}

// Dir is the checkpoints directory.
func (m *Manager) Dir() string { return m.dir }

// Loaded returns the sidecar of the checkpoint Open loaded, and false when it started from scratch.
func (m *Manager) Loaded() (Info, bool) {
	if m.loaded == nil {
		return Info{}, false
	}
	return *m.loaded, true
}

// Save writes a checkpoint of the store with info as its sidecar (Files, Saved and the versions are
// filled in), publishes it atomically and removes all but the newest Keep complete checkpoints.
func (m *Manager) Save(info Info) error {
	staging := m.staging
	if err := os.RemoveAll(staging); err != nil { // what a failed save of this manager left
		return fmt.Errorf("checkpoints: clearing %s: %w", staging, err)
	}
	if err := os.Mkdir(staging, 0o755); err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	if err := m.handler.Save(); err != nil {
		return fmt.Errorf("saving checkpoint in %s: %w", staging, err)
	}
	if err := m.fail("written", staging); err != nil {
		return err
	}
	files, err := os.ReadDir(staging)
	if err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	info.Files = nil
	for _, f := range files {
		path := filepath.Join(staging, f.Name())
		if err := syncFile(path); err != nil {
			return err
		}
		sum, err := sumFile(path)
		if err != nil {
			return fmt.Errorf("checkpoints: %w", err)
		}
		info.Files = append(info.Files, sum)
	}
	info.Saved, info.GoMLXVersion, info.EngramVersion = time.Now().UTC(), GoMLXVersion, EngramVersion()
	body, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(staging, SidecarFile), append(body, '\n')); err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	if err := m.fail("sidecar", staging); err != nil {
		return err
	}
	final, err := m.publish(staging, info.Step)
	if err != nil {
		return err
	}
	if err := m.fail("published", final); err != nil {
		return err
	}
	return m.prune()
}

func (m *Manager) fail(stage, path string) error {
	if m.failpoint == nil {
		return nil
	}
	return m.failpoint(stage, path)
}

// publish renames the staging directory to the next ckpt-* name: the single step that makes a
// checkpoint visible.
func (m *Manager) publish(staging string, step int) (string, error) {
	entries, err := list(m.dir)
	if err != nil {
		return "", fmt.Errorf("checkpoints: %w", err)
	}
	seq := 0
	if len(entries) > 0 {
		seq = entries[len(entries)-1].seq + 1
	}
	final := filepath.Join(m.dir, checkpointName(seq, step))
	if err := os.Rename(staging, final); err != nil {
		return "", fmt.Errorf("checkpoints: publishing %s: %w", final, err)
	}
	return final, fsutil.SyncDir(m.dir)
}

// prune removes complete checkpoints beyond the newest Keep, and incomplete ones older than the newest
// complete checkpoint (they can never be loaded).
func (m *Manager) prune() error {
	entries, err := list(m.dir)
	if err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	kept, newest := 0, -1
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.complete && kept < m.keep {
			kept++
			newest = max(newest, e.seq)
			continue
		}
		if e.complete || e.seq < newest {
			if err := os.RemoveAll(e.path); err != nil {
				return fmt.Errorf("checkpoints: removing old checkpoint %s: %w", e.path, err)
			}
		}
	}
	return nil
}

// linkOrCopy makes to a hard link of from, or a copy where links are not supported.
func linkOrCopy(from, to string) error {
	if os.Link(from, to) == nil {
		return nil
	}
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
