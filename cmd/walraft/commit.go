package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

var (
	commitOnce  sync.Once
	commitValue string
)

// buildCommit names the git commit this binary was built from: the
// vcs.revision the go command stamps into `go build` binaries, else `git
// rev-parse HEAD` in the source directory (`go run` does not stamp), else
// "unknown". A "-dirty" suffix marks uncommitted changes. It is computed
// once per process.
func buildCommit() string {
	commitOnce.Do(func() { commitValue = findCommit() })
	return commitValue
}

func findCommit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if dirty {
				rev += "-dirty"
			}
			return rev
		}
	}
	// runtime.Caller gives this file's path at build time; it exists when
	// the binary runs from the source tree (go run, go test).
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "unknown"
	}
	dir := filepath.Dir(file)
	if _, err := os.Stat(dir); err != nil {
		return "unknown"
	}
	rev, err := gitOutput(dir, "rev-parse", "HEAD")
	if err != nil || rev == "" {
		return "unknown"
	}
	// --no-optional-locks: only read the repository, never refresh its
	// index.
	if st, err := gitOutput(dir, "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"); err == nil && st != "" {
		rev += "-dirty"
	}
	return rev
}

func gitOutput(dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}
