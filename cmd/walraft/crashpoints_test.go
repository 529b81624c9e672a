package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"walraft/scenarios"
	"walraft/sim"
)

// crashpointsArgs is a short sweep: node 1 of calm seed 1 with a 1 s safety
// phase, every 150th disk event (4 points: node 1 has about 590), in 2
// worker processes.
var crashpointsArgs = []string{"crashpoints", "-scenario", "calm", "-seed", "1", "-safety", "1s", "-every", "150", "-parallel", "2", "-json"}

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

// TestThinHint: the -every the hint names brings the sweep within
// -max-points and the one before it does not; when even each node's first
// event is too many, it says what else to change.
func TestThinHint(t *testing.T) {
	evs := func(n int) []sim.DiskEvent { return make([]sim.DiskEvent, n) }
	events := [][]sim.DiskEvent{evs(33584), evs(28140), evs(23541)}
	for _, tc := range []struct {
		plan scenarios.SweepPlan
		max  int
	}{
		{scenarios.SweepPlan{Every: 600, Torn: true}, 8},
		{scenarios.SweepPlan{Every: 600, Torn: true}, 50},
		{scenarios.SweepPlan{Every: 1}, 1000},
		{scenarios.SweepPlan{Every: 10, Nodes: []uint64{2}}, 3},
	} {
		hint := thinHint(tc.plan, events, tc.max)
		var every int
		if _, err := fmt.Sscanf(hint, "thin them with -every %d", &every); err != nil {
			t.Fatalf("%+v max %d: hint %q", tc.plan, tc.max, hint)
		}
		p := tc.plan
		p.Every = every
		if n := len(p.Points(events)); n > tc.max {
			t.Errorf("%+v max %d: -every %d leaves %d points", tc.plan, tc.max, every, n)
		}
		p.Every = every - 1
		if n := len(p.Points(events)); n <= tc.max && every-1 > tc.plan.Every {
			t.Errorf("%+v max %d: -every %d already fits (%d points): the hint is not the least", tc.plan, tc.max, every-1, n)
		}
	}
	if hint := thinHint(scenarios.SweepPlan{Every: 600, Torn: true}, events, 4); !strings.Contains(hint, "no -every fits") {
		t.Errorf("6 first-event points over a limit of 4: hint %q", hint)
	}
}
