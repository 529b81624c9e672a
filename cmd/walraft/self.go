package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// goRun is how a user who ran walraft through `go run` runs it again.
const goRun = "go run ./cmd/walraft"

// envSelf carries the command the user typed to the campaign's worker
// processes, which the coordinator starts by its executable's absolute
// path (they inherit the environment): main sets it when it is unset.
const envSelf = "WALRAFT_SELF"

// self is the command the commands walraft prints for the user to run
// next (replay, run -seed) start with: the user's own.
var self = sync.OnceValue(func() string {
	if s := os.Getenv(envSelf); s != "" {
		return s
	}
	return selfCommand(os.Args[0])
})

// cachedExeDir is the directory the go command caches a `go run`
// executable in, inside the build cache (GOCACHE/xx/<sha256>-d/).
var cachedExeDir = regexp.MustCompile(`^[0-9a-f]{64}-d$`)

// selfCommand turns the program name walraft was started by (os.Args[0])
// into the command that runs it again: "go run ./cmd/walraft" when it is
// an executable the go command built and will not keep (under a go-build
// directory, or in the build cache) or a test binary, so a test's output
// does not depend on where the test binary lies; else the name as typed
// ("./walraft", "walraft" from PATH), quoted for a POSIX shell if needed.
func selfCommand(arg0 string) string {
	if arg0 == "" || strings.HasSuffix(arg0, ".test") || strings.HasSuffix(arg0, ".test.exe") {
		return goRun
	}
	dir := filepath.Dir(arg0)
	if cachedExeDir.MatchString(filepath.Base(dir)) {
		return goRun
	}
	for _, el := range strings.Split(filepath.ToSlash(dir), "/") {
		if strings.HasPrefix(el, "go-build") {
			return goRun
		}
	}
	return shellQuote(arg0)
}

// shellQuote quotes s for a POSIX shell when it holds anything but
// letters, digits and the punctuation of ordinary paths.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:,@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
