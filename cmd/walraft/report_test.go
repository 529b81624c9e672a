package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"walraft/report"
	"walraft/scenarios"
)

// Output paths are checked before the run: a bad one is exit 2 with one
// line on stderr, and nothing runs (stdout stays empty). Before, run
// simulated the whole seed and failed at the end.
func TestOutputPathsCheckedFirst(t *testing.T) {
	useFake(t, "basic")
	good := writeFailingCase(t, 3)
	dir := t.TempDir()
	file := filepath.Join(dir, "plain-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "no", "such", "dir", "x.txt")
	tests := []struct {
		args []string
		flag string
	}{
		{[]string{"run", "-seed", "3", "-trace", missing}, "-trace"},
		{[]string{"run", "-seed", "3", "-history", dir}, "-history"},
		{[]string{"run", "-seed", "3", "-out", file}, "-out"},
		{[]string{"minimize", "-o", missing, good}, "-o"},
		{[]string{"replay", "-html", missing, good}, "-html"},
		{[]string{"replay", "-trace", missing, good}, "-trace"},
		{[]string{"report", "-o", missing, good}, "-o"},
		{[]string{"bench", "-dir", file, "-duration", "1s"}, "-dir"},
	}
	for _, tc := range tests {
		code, out, errs := runCLI(t, tc.args...)
		lines := strings.Split(strings.TrimSpace(errs), "\n")
		if code != exitUsage || len(lines) != 1 || !strings.Contains(errs, tc.flag+" ") || out != "" {
			t.Errorf("%v: exit %d, want 2 with one line naming %s and no output; stderr:\n%s\nstdout:\n%s", tc.args, code, tc.flag, errs, out)
		}
	}
	if _, err := os.Stat(filepath.Dir(missing)); err == nil {
		t.Errorf("a file check created %s", filepath.Dir(missing))
	}
}

// bench -dir creates a missing directory (before, the run failed in
// os.MkdirTemp after parsing everything).
func TestEnsureOutDirCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := ensureOutDir("-dir", dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("%s not created: %v", dir, err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("the check left %d files behind", len(left))
	}
}

// A replay whose case file was edited says so, and which options differ;
// before, it blamed a code change.
func TestReplayDriftSaysWhatDiffers(t *testing.T) {
	useFake(t, "basic")
	path := writeFailingCase(t, 6)
	c, err := scenarios.ReadCase(path)
	if err != nil {
		t.Fatal(err)
	}
	c.Options.Producers++
	edited := filepath.Join(t.TempDir(), "edited.json")
	if err := scenarios.WriteCase(edited, c); err != nil {
		t.Fatal(err)
	}
	_, out, _ := runCLI(t, "replay", edited)
	for _, want := range []string{"DRIFT: trace hash", "same code", "options differ from what seed 6 of scenario default draws: Producers", "the case file was edited"} {
		if !strings.Contains(out, want) {
			t.Errorf("replay of an edited case lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "the code changed") {
		t.Errorf("replay blames the code for an edited case:\n%s", out)
	}
	// Another commit: the code changed.
	c.Options.Producers--
	c.Commit = "0123456789abcdef0123456789abcdef01234567"
	c.TraceHash = scenarios.FormatTraceHash(1)
	if err := scenarios.WriteCase(edited, c); err != nil {
		t.Fatal(err)
	}
	_, out, _ = runCLI(t, "replay", edited)
	if !strings.Contains(out, "the code changed: the case was written at commit 0123456789") || strings.Contains(out, "options differ") {
		t.Errorf("replay of a case from another commit:\n%s", out)
	}
}

// The focus flags of replay and report: what the case file records
// (-invariant, -node) is checked before any simulation runs; what only the
// run knows (its ops, its end) right after it, and a refused flag is one
// line on stderr with nothing on stdout.
func TestReplayFocusFlags(t *testing.T) {
	useFake(t, "basic")
	path := writeFailingCase(t, 3)
	fake := runSim
	runs := 0
	runSim = func(o scenarios.Options, rc scenarios.RunConfig) (*scenarios.Result, error) {
		runs++
		return fake(o, rc)
	}
	tests := []struct {
		args  []string
		code  int
		want  string // in stdout (code 1) or stderr (code 2)
		noRun bool   // refused before any simulation
	}{
		{[]string{"-at", "1.5s"}, exitFail, ">>> 1.500000000s -at 1.5s", false},
		{[]string{"-invariant", "S1"}, exitFail, "focus: S1 violated", false},
		{[]string{"-invariant", "S99"}, exitUsage, "-invariant S99: not an invariant (it recorded S1)", true},
		{[]string{"-invariant", "S5"}, exitUsage, "-invariant S5: an invariant this case did not record (it recorded S1)", true},
		{[]string{"-op", "99999"}, exitUsage, "op 99999 is not in this run", false},
		{[]string{"-at", "999s"}, exitUsage, "-at 16m39s is past the run's end at ", false},
		{[]string{"-node", "9"}, exitUsage, "-node 9: the case has nodes 1..3", true},
		{[]string{"-at", "-1s"}, exitUsage, "-at -1s", true},
	}
	for _, tc := range tests {
		runs = 0
		code, out, errs := runCLI(t, append([]string{"replay"}, append(tc.args, path)...)...)
		got := out
		if tc.code == exitUsage {
			got = errs
		}
		if code != tc.code || !strings.Contains(got, tc.want) {
			t.Errorf("replay %v: exit %d (want %d), lacks %q:\n%s%s", tc.args, code, tc.code, tc.want, out, errs)
		}
		if tc.code == exitUsage && (out != "" || strings.Count(errs, "\n") != 1) {
			t.Errorf("replay %v: refused with stdout %q and stderr %q: want one line on stderr only", tc.args, out, errs)
		}
		if tc.noRun && runs != 0 {
			t.Errorf("replay %v: refused after %d simulations, want before any", tc.args, runs)
		}
		if tc.code != exitUsage {
			continue
		}
		// report takes the same flags and refuses the same values.
		runs = 0
		code, out, errs = runCLI(t, append([]string{"report", "-o", filepath.Join(t.TempDir(), "r.html")}, append(tc.args, path)...)...)
		if code != exitUsage || !strings.Contains(errs, tc.want) || out != "" || (tc.noRun && runs != 0) {
			t.Errorf("report %v: exit %d after %d runs, stdout %q, stderr %q: want exit 2 with %q", tc.args, code, runs, out, errs, tc.want)
		}
	}
	// The flag help says what the zero values mean.
	_, _, errs := runCLI(t, "report", "-h")
	for _, want := range []string{"(0: every node)", "past the run's end is an error"} {
		if !strings.Contains(errs, want) {
			t.Errorf("report -h lacks %q:\n%s", want, errs)
		}
	}
}

// walraft help trace lists every documented trace event kind.
func TestHelpTrace(t *testing.T) {
	code, out, _ := runCLI(t, "help", "trace")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, e := range report.Legend() {
		if !strings.Contains(out, e.Kind) || !strings.Contains(out, e.Fields) {
			t.Errorf("help trace lacks %s", e.Kind)
		}
	}
	if code, _, errs := runCLI(t, "help", "nope"); code != exitUsage || !strings.Contains(errs, `unknown topic "nope"`) {
		t.Errorf("help nope: exit %d %s", code, errs)
	}
}

// walraft report writes one page next to the case by default.
func TestReportCommand(t *testing.T) {
	useFake(t, "basic")
	path := writeFailingCase(t, 3)
	code, out, errs := runCLI(t, "report", path)
	if code != exitOK {
		t.Fatalf("report: exit %d\n%s%s", code, out, errs)
	}
	html := strings.TrimSuffix(path, ".json") + ".html"
	b, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{`id="violation-marker"`, `"invariant":"S1"`, `"case_file":"` + filepath.ToSlash(path)} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if !strings.Contains(out, "written to "+html) {
		t.Errorf("output: %s", out)
	}
}

// A bench config error is one line with one "bench:" and names the flag.
func TestBenchErrorPrefix(t *testing.T) {
	code, _, errs := runCLI(t, "bench", "-mode", "standalone", "-kill-leader-after", "1s")
	if code != exitUsage || strings.Count(errs, "bench:") != 1 || !strings.Contains(errs, "-kill-leader-after and -stall-leader-disk-after need -mode cluster") {
		t.Errorf("exit %d: %q", code, errs)
	}
}
