package checkpoints

import (
	"runtime/debug"
)

// GoMLXVersion is the GoMLX release checkpoints are written with. Checkpoints of other GoMLX minor
// versions are not compatible, so it is recorded in every sidecar and export; a test holds it equal to
// the version go.mod requires.
const GoMLXVersion = "v0.28.16"

// engramModule is the module path whose version EngramVersion reports.
const engramModule = "github.com/engramlx/engram"

// EngramVersion describes the Engram build: the module version when built as a dependency, else the
// VCS revision the binary was built from (with "+dirty" for uncommitted changes), else "devel".
func EngramVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if info.Main.Path != engramModule {
		for _, dep := range info.Deps {
			if dep.Path == engramModule {
				return dep.Version
			}
		}
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	revision, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if revision == "" {
		return "devel"
	}
	if dirty {
		revision += "+dirty"
	}
	return "devel-" + revision
}
