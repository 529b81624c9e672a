package main

import (
	"os"
	"strings"
	"testing"
)

// The commands walraft prints for the user to run next start with the
// command the user ran: a built binary by the name they typed, a `go run`
// or test binary as "go run ./cmd/walraft".
func TestSelfCommand(t *testing.T) {
	tests := []struct{ arg0, want string }{
		{"./walraft", "./walraft"},
		{"walraft", "walraft"},
		{"/usr/local/bin/walraft", "/usr/local/bin/walraft"},
		{"bin/walraft-v2.1", "bin/walraft-v2.1"},
		{"/tmp/my tools/walraft", "'/tmp/my tools/walraft'"},
		{"/tmp/it's/walraft", `'/tmp/it'\''s/walraft'`},
		// go run before Go 1.24, and with -work or an uncached build.
		{"/tmp/go-build1098503397/b001/exe/walraft", goRun},
		// go run from Go 1.24 on: the executable is cached in GOCACHE.
		{"/root/.cache/go-build/89/891f7d73de21d7d80f144e4fb6ab23c8f2d95ed7b24200f9e6fbfe1fbe3f5abb-d/walraft", goRun},
		{"/srv/gocache/89/891f7d73de21d7d80f144e4fb6ab23c8f2d95ed7b24200f9e6fbfe1fbe3f5abb-d/walraft", goRun},
		{"/tmp/go-build123/b001/walraft.test", goRun},
		{"walraft.test", goRun},
		{"", goRun},
	}
	for _, tc := range tests {
		if got := selfCommand(tc.arg0); got != tc.want {
			t.Errorf("selfCommand(%q) = %q, want %q", tc.arg0, got, tc.want)
		}
	}
	// This test binary, and so every test's output, says go run.
	if os.Getenv(envSelf) == "" && self() != goRun {
		t.Errorf("self() = %q in a test binary (%s), want %q", self(), os.Args[0], goRun)
	}
}

// run and minimize print replay commands that start with self(), here a
// built binary's name (in a test, self() is "go run ./cmd/walraft", which
// a hard-coded hint would match).
func TestReplayHintsUseSelf(t *testing.T) {
	useFake(t, "basic")
	path := writeFailingCase(t, 3)
	saved := self
	t.Cleanup(func() { self = saved })
	self = func() string { return "./walraft" }
	_, out, _ := runCLI(t, "run", "-seed", "3", "-variant", testVariant)
	if !strings.Contains(out, "replay: "+self()+" run -scenario default -seed 3 -variant "+testVariant) {
		t.Errorf("run's replay line does not start with %q:\n%s", self(), out)
	}
	_, out, _ = runCLI(t, "minimize", "-q", path)
	if !strings.Contains(out, "replay: "+self()+" replay ") {
		t.Errorf("minimize's replay line does not start with %q:\n%s", self(), out)
	}
}
