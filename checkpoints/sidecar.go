package checkpoints

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SidecarFile is the name of the sidecar inside each checkpoint directory; it is written last.
const SidecarFile = "engram.json"

// Info is the sidecar of one checkpoint: what a resume needs besides the variables.
type Info struct {
	Step         int   `json:"step"`
	DataPosition int64 `json:"data_position"` // index of the next training batch
	// Config is the resolved experiment (YAML) the checkpoint was trained with.
	Config        string    `json:"config,omitempty"`
	Saved         time.Time `json:"saved"`
	GoMLXVersion  string    `json:"gomlx_version"`
	EngramVersion string    `json:"engram_version"`
	Backend       string    `json:"backend"`
	ElapsedSecond float64   `json:"elapsed_seconds"` // wall time of all sessions up to this checkpoint
	// Files lists every file of the checkpoint (the GoMLX pair) with its size and SHA-256.
	Files []FileSum `json:"files"`
	// Dir is the checkpoint's directory (set when read; not stored).
	Dir string `json:"-"`
}

// FileSum is a file's name (relative to its checkpoint directory), size and SHA-256.
type FileSum struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// checkpointPrefix starts the name of every published checkpoint directory: ckpt-<seq>-step-<step>.
const checkpointPrefix = "ckpt-"

func checkpointName(seq, step int) string {
	return fmt.Sprintf("%s%06d-step-%08d", checkpointPrefix, seq, step)
}

// entry is a published checkpoint directory.
type entry struct {
	seq      int
	path     string
	complete bool // has a sidecar
}

// list returns the published checkpoint directories of dir, oldest (lowest sequence number) first.
func list(dir string) ([]entry, error) {
	items, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []entry
	for _, item := range items {
		name := item.Name()
		if !item.IsDir() || !strings.HasPrefix(name, checkpointPrefix) {
			continue
		}
		seqText, _, _ := strings.Cut(strings.TrimPrefix(name, checkpointPrefix), "-")
		seq, err := strconv.Atoi(seqText)
		if err != nil {
			continue
		}
		path := filepath.Join(dir, name)
		_, statErr := os.Stat(filepath.Join(path, SidecarFile))
		out = append(out, entry{seq: seq, path: path, complete: statErr == nil})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out, nil
}

// Latest reads the sidecar of the newest complete checkpoint in dir (without verifying its files; Open
// does). It fails when there is none.
func Latest(dir string) (Info, error) {
	entries, err := list(dir)
	if err != nil {
		return Info{}, err
	}
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].complete {
			return readSidecar(entries[i].path)
		}
	}
	return Info{}, fmt.Errorf("%s: no complete checkpoint (a %s*/ directory with %s)", dir, checkpointPrefix, SidecarFile)
}

// List returns the sidecars of the complete checkpoints in dir, oldest first.
func List(dir string) ([]Info, error) {
	entries, err := list(dir)
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, e := range entries {
		if !e.complete {
			continue
		}
		info, err := readSidecar(e.path)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

func readSidecar(checkpointDir string) (Info, error) {
	file := filepath.Join(checkpointDir, SidecarFile)
	body, err := os.ReadFile(file)
	if err != nil {
		return Info{}, err
	}
	var info Info
	if err := json.Unmarshal(body, &info); err != nil {
		return Info{}, fmt.Errorf("%s: corrupted sidecar: %w", file, err)
	}
	if len(info.Files) == 0 {
		return Info{}, fmt.Errorf("%s: corrupted sidecar: it lists no checkpoint files", file)
	}
	info.Dir = checkpointDir
	return info, nil
}

// Verify checks that every file the sidecar lists has its recorded size and SHA-256, naming the first
// file that does not.
func (info Info) Verify() error {
	for _, f := range info.Files {
		path := filepath.Join(info.Dir, f.Name)
		sum, err := sumFile(path)
		if err != nil {
			return fmt.Errorf("checkpoint file %s: %w", path, err)
		}
		if sum.Size != f.Size {
			return fmt.Errorf("checkpoint file %s is %d bytes, its sidecar says %d: truncated or corrupted", path, sum.Size, f.Size)
		}
		if sum.SHA256 != f.SHA256 {
			return fmt.Errorf("checkpoint file %s does not match its sidecar's SHA-256: corrupted", path)
		}
	}
	return nil
}

// sumFile returns the size and SHA-256 of a file (its name is the base name).
func sumFile(path string) (FileSum, error) {
	f, err := os.Open(path)
	if err != nil {
		return FileSum{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return FileSum{}, err
	}
	return FileSum{Name: filepath.Base(path), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// syncFile flushes a written file to disk (GoMLX's handler closes its files without syncing them).
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	return f.Close()
}
