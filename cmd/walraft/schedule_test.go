package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"walraft/scenarios"
)

// scheduleFile writes a hand-written schedule file: the default scenario's
// options of seed 42 and three faults (a crash of node 1 long enough for
// the fake to fail a variant, a crash aimed at the leader on its first WAL
// write, a heal), without the fields that record a run (violations,
// trace_hash, commit). edit, if set, changes the JSON tree first, so each
// bad input states only its one change.
func scheduleFile(t *testing.T, dir, name string, edit func(m map[string]any)) string {
	t.Helper()
	sc, err := scenarios.Lookup("default")
	if err != nil {
		t.Fatal(err)
	}
	o := sc.Draw(42)
	c := scenarios.Case{Version: scenarios.CaseVersion, Scenario: o.Scenario, Seed: o.Seed, Options: o,
		Schedule: scenarios.Schedule{
			{At: 500 * time.Millisecond, Kind: scenarios.FaultCrash, Node: 1, Dur: 800 * time.Millisecond},
			{At: time.Second, Kind: scenarios.FaultCrash, Target: scenarios.TargetLeader, Dur: 300 * time.Millisecond,
				Trigger: &scenarios.Trigger{On: scenarios.OnWALWrite, Role: scenarios.TargetLeader}},
			{At: 2 * time.Second, Kind: scenarios.FaultHeal},
		},
		Note: "a hand-written schedule for the CLI tests"}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"violations", "trace_hash", "commit"} {
		delete(m, k)
	}
	if edit != nil {
		edit(m)
	}
	if b, err = json.MarshalIndent(m, "", "  "); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// withVariant sets a schedule file's variant (header and options agree).
func withVariant(v string) func(m map[string]any) {
	return func(m map[string]any) {
		m["variant"] = v
		m["options"].(map[string]any)["Variant"] = v
	}
}

func TestRunScheduleOneSeed(t *testing.T) {
	useFake(t, "basic")
	path := scheduleFile(t, t.TempDir(), "s.json", nil)
	code, out, errs := runCLI(t, "run", "-schedule", path)
	if code != exitOK {
		t.Fatalf("correct system: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"schedule " + path, "seed 42", "note: a hand-written schedule", "fault schedule (3 faults)",
		"crash for 300ms @leader [on wal-write of a leader]", "S1   ok", "PASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// -variant overrides the file's (none); the fake fails a variant when
	// node 1 crashes; the replay line names the file and the seed.
	code, out, _ = runCLI(t, "run", "-schedule", path, "-seed", "7", "-variant", testVariant)
	if code != exitFail {
		t.Fatalf("variant: exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{"seed 7", "S1   VIOLATED (1)", "replay: go run ./cmd/walraft run -schedule " + path + " -seed 7 -variant " + testVariant} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// -json: the run's object with the file's options at the chosen seed.
	code, out, _ = runCLI(t, "run", "-schedule", path, "-seed", "9", "-json")
	var r runJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != exitOK {
		t.Fatalf("-json: exit %d, %v\n%s", code, err, out)
	}
	if r.Seed != 9 || r.Options == nil || r.Options.Seed != 9 || r.Schedule == nil || len(*r.Schedule) != 3 {
		t.Errorf("-json: seed %d, options %+v, schedule %v", r.Seed, r.Options, r.Schedule)
	}
}

func TestRunScheduleRange(t *testing.T) {
	useFake(t, "seedy")
	dir := t.TempDir()
	path := scheduleFile(t, dir, "s.json", withVariant(testVariant))
	out := filepath.Join(dir, "cases")
	code, stdout, errs := runCLI(t, "run", "-schedule", path, "-seeds", "1-4", "-out", out)
	if code != exitFail {
		t.Fatalf("exit %d, want 1 (odd seeds violate)\n%s%s", code, stdout, errs)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var seedLines []string
	for _, l := range lines {
		if strings.HasPrefix(l, "seed ") {
			seedLines = append(seedLines, l)
		}
	}
	if len(seedLines) != 4 {
		t.Fatalf("want one line per seed, got %d:\n%s", len(seedLines), stdout)
	}
	for i, l := range seedLines {
		fail := i%2 == 0 // seeds 1 and 3
		if got := strings.Contains(l, "FAIL S1"); got != fail {
			t.Errorf("seed %d: line %q, want FAIL=%v", i+1, l, fail)
		}
		if !fail && !strings.Contains(l, "PASS") {
			t.Errorf("seed %d: line %q, want PASS", i+1, l)
		}
	}
	for _, want := range []string{"4 seeds (1-4), 2 held, 2 violated (seeds 1 3)", "FAIL: 2 of 4 seeds"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	// Each failing seed left a case file that replays that seed's run.
	for _, seed := range []uint64{1, 3} {
		c, err := scenarios.ReadCase(filepath.Join(out, (&scenarios.Case{Scenario: "default", Seed: seed, Variant: testVariant}).FileName()))
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if len(c.Schedule) != 3 || c.Options.Seed != seed || !strings.Contains(c.Note, path) {
			t.Errorf("seed %d: case %+v", seed, c)
		}
	}

	// -json: one summary object.
	code, stdout, _ = runCLI(t, "run", "-schedule", path, "-seeds", "5-7", "-json")
	var sum scheduleSummary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("-json: %v\n%s", err, stdout)
	}
	if code != exitFail || sum.Held != 1 || sum.Violated != 2 || len(sum.Runs) != 3 || sum.Failed[0] != 5 || sum.Failed[1] != 7 {
		t.Errorf("-json: exit %d, %+v", code, sum)
	}
}

func TestRunScheduleExpect(t *testing.T) {
	useFake(t, "basic")
	dir := t.TempDir()
	hold := scheduleFile(t, dir, "hold.json", func(m map[string]any) { m["expect"] = "hold" })
	code, out, _ := runCLI(t, "run", "-schedule", hold, "-seeds", "1-3")
	if code != exitOK || !strings.Contains(out, "3 held, 0 violated") || !strings.Contains(out, "expect hold: 3 of 3 seeds as expected") {
		t.Errorf("expect hold: exit %d\n%s", code, out)
	}
	// A file that expects S1 under a variant: the run still exits 1 (it
	// violated), and says the verdict is the expected one.
	s1 := scheduleFile(t, dir, "s1.json", func(m map[string]any) { withVariant(testVariant)(m); m["expect"] = "S1" })
	code, out, _ = runCLI(t, "run", "-schedule", s1)
	if code != exitFail || !strings.Contains(out, "expect S1: as expected") {
		t.Errorf("expect S1: exit %d\n%s", code, out)
	}
	// The expect is for the file's variant: the correct system is not
	// judged against it.
	code, out, _ = runCLI(t, "run", "-schedule", s1, "-variant", "")
	if code != exitOK || !strings.Contains(out, "not judged for none") || strings.Contains(out, "as expected") {
		t.Errorf("expect S1 on the correct system: exit %d\n%s", code, out)
	}
	// A variant the file lists in caught_by is expected to be caught.
	caught := scheduleFile(t, dir, "caught.json", func(m map[string]any) {
		m["expect"] = "hold"
		m["caught_by"] = []string{testVariant}
	})
	code, out, _ = runCLI(t, "run", "-schedule", caught, "-variant", testVariant)
	if code != exitFail || !strings.Contains(out, "caught_by "+testVariant+": as expected") {
		t.Errorf("caught_by %s: exit %d\n%s", testVariant, code, out)
	}
	code, out, _ = runCLI(t, "run", "-schedule", caught, "-variant", testVariant, "-seeds", "1-2")
	if code != exitFail || !strings.Contains(out, "caught_by "+testVariant+": caught in 2 of 2 seeds") {
		t.Errorf("caught_by %s over seeds: exit %d\n%s", testVariant, code, out)
	}
}

// Every bad flag or file is exit 2 with one line on stderr, before any run
// (nothing on stdout).
func TestRunScheduleBadInput(t *testing.T) {
	useFake(t, "basic")
	dir := t.TempDir()
	good := scheduleFile(t, dir, "good.json", nil)
	bad := func(name string, edit func(m map[string]any)) string { return scheduleFile(t, dir, name, edit) }
	fault := func(i int) func(m map[string]any) map[string]any {
		return func(m map[string]any) map[string]any { return m["schedule"].([]any)[i].(map[string]any) }
	}
	opts := func(m map[string]any) map[string]any { return m["options"].(map[string]any) }
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown field", []string{"-schedule", bad("unknown.json", func(m map[string]any) { m["faults"] = []any{} })}, `unknown field "faults"`},
		{"unknown fault field", []string{"-schedule", bad("unknown-fault.json", func(m map[string]any) { fault(0)(m)["when"] = 1 })}, `unknown field "when"`},
		{"unknown scenario", []string{"-schedule", bad("scenario.json", func(m map[string]any) { m["scenario"] = "nope"; opts(m)["Scenario"] = "nope" })}, `unknown scenario "nope"`},
		{"unknown target", []string{"-schedule", bad("target.json", func(m map[string]any) { fault(1)(m)["target"] = "king" })}, `unknown target "king"`},
		{"target beside a node", []string{"-schedule", bad("target-node.json", func(m map[string]any) { fault(1)(m)["node"] = 2 })}, "a target replaces node"},
		{"unknown trigger event", []string{"-schedule", bad("trigger.json", func(m map[string]any) {
			fault(1)(m)["trigger"].(map[string]any)["on"] = "eclipse"
		})}, `unknown event "eclipse"`},
		{"trigger role", []string{"-schedule", bad("trigger-role.json", func(m map[string]any) {
			fault(1)(m)["trigger"].(map[string]any)["role"] = "minority"
		})}, "want leader or follower"},
		{"node out of range", []string{"-schedule", bad("node.json", func(m map[string]any) { fault(0)(m)["node"] = 9 })}, "not in 1..3"},
		{"negative duration", []string{"-schedule", bad("dur.json", func(m map[string]any) { fault(0)(m)["dur"] = -1 })}, "out-of-range"},
		{"probability above 1", []string{"-schedule", bad("prob.json", func(m map[string]any) {
			m["schedule"] = []any{map[string]any{"at": 1, "kind": "drop", "prob": 2, "dur": 5}}
		})}, "out-of-range"},
		{"clock rate", []string{"-schedule", bad("rate.json", func(m map[string]any) {
			m["schedule"] = []any{map[string]any{"at": 1, "kind": "skew", "node": 1, "rate": 5}}
		})}, "clock rate must be in [0.5, 2]"},
		{"knob out of range", []string{"-schedule", bad("knob.json", func(m map[string]any) {
			opts(m)["Knobs"] = map[string]any{"wal_segment_bytes": 10}
		})}, "wal_segment_bytes 10"},
		{"bad options", []string{"-schedule", bad("nodes.json", func(m map[string]any) { opts(m)["Nodes"] = 0 })}, "nodes 0"},
		{"missing schedule", []string{"-schedule", bad("noschedule.json", func(m map[string]any) { delete(m, "schedule") })}, `missing field "schedule"`},
		{"bad expect", []string{"-schedule", bad("expect.json", func(m map[string]any) { m["expect"] = "pass" })}, `expect "pass"`},
		{"not in time order", []string{"-schedule", bad("order.json", func(m map[string]any) { fault(2)(m)["at"] = 1 })}, "not in time order"},
		{"not JSON", []string{"-schedule", func() string {
			p := filepath.Join(dir, "text.json")
			os.WriteFile(p, []byte("crash n1 at 2s"), 0o644)
			return p
		}()}, "not valid JSON"},
		{"missing file", []string{"-schedule", filepath.Join(dir, "missing.json")}, "no such file"},
		{"range backwards", []string{"-schedule", good, "-seeds", "9-3"}, "the range is empty (9 > 3)"},
		{"range malformed", []string{"-schedule", good, "-seeds", "3"}, "want a range A-B"},
		{"range not numbers", []string{"-schedule", good, "-seeds", "a-b"}, "want a range A-B"},
		{"range too large", []string{"-schedule", good, "-seeds", "1-1000000"}, "use campaign"},
		{"seed and seeds", []string{"-schedule", good, "-seed", "1", "-seeds", "1-2"}, "not both"},
		{"seeds without schedule", []string{"-seeds", "1-2"}, "-seeds needs -schedule"},
		{"scenario and schedule", []string{"-schedule", good, "-scenario", "calm"}, "comes from the schedule file"},
		{"unknown variant", []string{"-schedule", good, "-variant", "nope"}, `unknown variant "nope"`},
		{"trace over a range", []string{"-schedule", good, "-seeds", "1-2", "-trace", filepath.Join(dir, "t.txt")}, "give -seed N"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(t, append([]string{"run"}, tc.args...)...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitUsage, out, errs)
			}
			if !strings.Contains(errs, tc.want) {
				t.Errorf("stderr does not mention %q:\n%s", tc.want, errs)
			}
			if n := strings.Count(strings.TrimRight(errs, "\n"), "\n"); n != 0 || out != "" {
				t.Errorf("want one line on stderr and nothing on stdout (no run); got stdout:\n%s\nstderr:\n%s", out, errs)
			}
		})
	}
}

func TestParseSeedRange(t *testing.T) {
	tests := []struct {
		in       string
		from, to uint64
		ok       bool
	}{
		{"1-20", 1, 20, true},
		{"7-7", 7, 7, true},
		{"0-0", 0, 0, true},
		{"18446744073709551614-18446744073709551615", 18446744073709551614, 18446744073709551615, true},
		{"0-18446744073709551615", 0, 0, false},
		{"20-1", 0, 0, false},
		{"-5", 0, 0, false},
		{"5-", 0, 0, false},
		{"1-2-3", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tc := range tests {
		from, to, err := parseSeedRange(tc.in)
		if (err == nil) != tc.ok || (tc.ok && (from != tc.from || to != tc.to)) {
			t.Errorf("parseSeedRange(%q) = %d, %d, %v; want %d, %d, ok=%v", tc.in, from, to, err, tc.from, tc.to, tc.ok)
		}
	}
}

// A hand-written schedule (no commit, trace hash or violations) is taken
// by replay and report as by run -schedule; minimize says there is nothing
// to shrink in a schedule that holds.
func TestScheduleFileEverywhere(t *testing.T) {
	useFake(t, "basic")
	dir := t.TempDir()
	path := scheduleFile(t, dir, "hand.json", func(m map[string]any) { m["expect"] = "hold" })
	code, out, errs := runCLI(t, "replay", path)
	if code != exitOK || !strings.Contains(out, "records none") || strings.Contains(out, "DRIFT") {
		t.Errorf("replay: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	code, out, errs = runCLI(t, "report", "-o", filepath.Join(dir, "hand.html"), path)
	if code != exitOK || strings.Contains(out, "DRIFT") {
		t.Errorf("report: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	code, _, errs = runCLI(t, "minimize", path)
	if code != exitUsage || !strings.Contains(errs, "nothing to minimize") {
		t.Errorf("minimize: exit %d\nstderr:\n%s", code, errs)
	}
}
