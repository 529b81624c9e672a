package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// crashpointsArgs is a short sweep: node 1 of calm seed 1 with a 1 s safety
// phase, every 1000th disk event (4 points), in 2 worker processes.
var crashpointsArgs = []string{"crashpoints", "-scenario", "calm", "-seed", "1", "-safety", "1s", "-every", "1000", "-parallel", "2", "-json"}

// TestSimCrashpoints runs the sweep through the CLI and its workers: clean
// on the correct system; on the planted recovery bug a failing point whose
// case file `walraft replay` reproduces exactly.
func TestSimCrashpoints(t *testing.T) {
	useFake(t, "")
	dir := t.TempDir()
	sweep := func(extra ...string) (int, crashpointsJSON, string) {
		args := append(append([]string(nil), crashpointsArgs...), "-out", dir)
		code, out, errs := runCLI(t, append(args, extra...)...)
		var s crashpointsJSON
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("crashpoints %v: exit %d, not JSON: %v\n%s\n%s", extra, code, err, out, errs)
		}
		return code, s, errs
	}
	code, s, errs := sweep()
	if code != exitOK || !s.OK || !s.BaseOK || s.Points != 4 || s.Failed != 0 || len(s.DiskEvents) != 3 ||
		s.DeterminismChecked != 1 || len(s.Mismatches) != 0 {
		t.Fatalf("correct system: exit %d, %+v\n%s", code, s, errs)
	}
	if !strings.Contains(errs, "sweeping 4 points") {
		t.Errorf("progress does not say how many points:\n%s", errs)
	}

	code, s, errs = sweep("-variant", "raft-log-drops-last")
	// Every failing point runs twice (and point 0 as the sample).
	if code != exitFail || s.OK || s.Failed == 0 || s.Points != 4 || s.DeterminismChecked < s.Failed || len(s.Mismatches) != 0 {
		t.Fatalf("planted bug: exit %d, %+v\n%s", code, s, errs)
	}
	f := s.Failures[0]
	if f.Case == "" || !strings.Contains(f.Case, "-n1-e") {
		t.Fatalf("failing point %+v has no case file named after it", f)
	}
	code, out, errs := runCLI(t, "replay", "-json", f.Case)
	var r replayJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("replay %s: %v\n%s\n%s", f.Case, err, out, errs)
	}
	if code != exitFail || r.Drift || !r.Reproduced {
		t.Errorf("replay of the point's case: exit %d, drift %v, reproduced %v", code, r.Drift, r.Reproduced)
	}
}

func TestCrashpointsUsage(t *testing.T) {
	useFake(t, "")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"-every", "0"}, "-every 0"},
		{[]string{"-kinds", "write,fsync"}, `unknown disk event kind "fsync"`},
		{[]string{"-node", "4", "-scenario", "calm"}, "nodes 1..3"},
		{[]string{"-scenario", "nope"}, "nope"},
		{[]string{bad}, "bad case file"},
		{[]string{bad, "-seed", "3"}, "cannot be combined"},
		{[]string{"-scenario", "calm", "-safety", "200ms", "-max-points", "5"}, "exceed -max-points 5: thin them with -every"},
	}
	for _, tt := range tests {
		code, _, errs := runCLI(t, append([]string{"crashpoints", "-out", dir}, tt.args...)...)
		if code != exitUsage || !strings.Contains(errs, tt.msg) {
			t.Errorf("crashpoints %v: exit %d, stderr %q; want exit 2 saying %q", tt.args, code, errs, tt.msg)
		}
	}
}
