package main

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"walraft/scenarios"
)

const testVariant = "ack-before-fsync"

// writeFailingCase runs a failing seed with -out and returns the case path.
func writeFailingCase(t *testing.T, seed uint64) string {
	t.Helper()
	dir := t.TempDir()
	code, out, errs := runCLI(t, "run", "-seed", u(seed), "-variant", testVariant, "-out", dir)
	if code != exitFail {
		t.Fatalf("run seed %d: exit %d, want 1\n%s%s", seed, code, out, errs)
	}
	c := scenarios.Case{Scenario: "default", Seed: seed, Variant: testVariant}
	path := filepath.Join(dir, c.FileName())
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no case file: %v\n%s", err, out)
	}
	return path
}

func TestUsageErrors(t *testing.T) {
	useFake(t, "basic")
	dir := t.TempDir()
	good := writeFailingCase(t, 3)
	valid, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	file := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	truncated := file("truncated.json", valid[:len(valid)/3])
	corrupt := file("corrupt.json", []byte("{\"version\": 1, \"seed\": tru"))
	garbage := file("garbage.json", []byte("\x00\x01binary"))
	future := file("future.json", []byte(strings.Replace(string(valid), `"version": 1`, `"version": 9`, 1)))
	empty := file("empty.json", nil)
	sum := func(name, shard string) string {
		code, out, errs := runCLI(t, "campaign", "-seeds", "6", "-parallel", "1", "-determinism", "0", "-shard", shard, "-json", "-out", dir)
		if code != exitOK {
			t.Fatalf("campaign: exit %d\n%s", code, errs)
		}
		return file(name, []byte(out))
	}
	s0 := sum("s0.json", "0/2")

	tests := []struct {
		args []string
		want string // in stderr
	}{
		{nil, "usage: walraft"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"run", "-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"run", "-seed", "x"}, `invalid value "x" for flag -seed`},
		{[]string{"run", "-seed", "-1"}, "invalid value"},
		{[]string{"run", "-scenario", "nope"}, `unknown scenario "nope"`},
		{[]string{"run", "-variant", "nope"}, `unknown variant "nope"`},
		{[]string{"run", "extra"}, `unexpected argument "extra"`},
		{[]string{"campaign", "-shard", "3/2"}, "bad -shard"},
		{[]string{"campaign", "-shard", "x"}, "bad -shard"},
		{[]string{"campaign", "-shard", "0/0"}, "bad -shard"},
		{[]string{"campaign", "-parallel", "0"}, "-parallel 0"},
		{[]string{"campaign", "-seeds", "0"}, "-seeds 0"},
		{[]string{"campaign", "-start", "18446744073709551615", "-seeds", "2"}, "overflows"},
		{[]string{"campaign", "-scenario", "nope"}, `unknown scenario "nope"`},
		{[]string{"campaign", "-seeds", "2", "-out", filepath.Join(good, "x")}, "-out"},
		{[]string{"campaign", "-scenario", "all", "-variant", "nope"}, `unknown variant "nope"`},
		{[]string{"replay"}, "missing argument"},
		{[]string{"replay", "a.json", "b.json"}, "too many arguments"},
		{[]string{"replay", filepath.Join(dir, "missing.json")}, "no such file"},
		{[]string{"replay", truncated}, "truncated"},
		{[]string{"replay", corrupt}, "truncated"},
		{[]string{"replay", garbage}, "not valid JSON"},
		{[]string{"replay", future}, "newer than this walraft"},
		{[]string{"replay", empty}, "empty file"},
		{[]string{"replay", "-window", "0", good}, "-window 0"},
		{[]string{"minimize", truncated}, "truncated"},
		{[]string{"minimize", "-invariant", "S9", good}, "did not violate S9"},
		{[]string{"minimize", "-max-runs", "0", good}, "-max-runs 0"},
		{[]string{"merge"}, "missing argument"},
		{[]string{"merge", good}, "not a campaign -json summary"},
		{[]string{"merge", s0, s0}, "appears in both"},
		{[]string{"merge", s0}, "shards 1/2 missing"},
		{[]string{"scenarios", "x"}, "unexpected argument"},
		{[]string{"worker", "x"}, "unexpected argument"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errs := runCLI(t, tc.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitUsage, out, errs)
			}
			if !strings.Contains(errs, tc.want) {
				t.Errorf("stderr does not mention %q:\n%s", tc.want, errs)
			}
			// Bad input is one line (a bare `walraft` prints the usage).
			if tc.args != nil && strings.Count(strings.TrimSuffix(errs, "\n"), "\n") > 0 {
				t.Errorf("want one line on stderr, got:\n%s", errs)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"run", "-h"}, {"campaign", "-help"}} {
		code, out, errs := runCLI(t, args...)
		if code != exitOK || !strings.Contains(out+errs, "usage: walraft") {
			t.Errorf("%v: exit %d, output:\n%s%s", args, code, out, errs)
		}
	}
	// The schedule reference names every fault kind, and its example is a
	// valid schedule.
	code, out, _ := runCLI(t, "help", "schedule")
	if code != exitOK {
		t.Fatalf("help schedule: exit %d", code)
	}
	for _, d := range scenarios.FaultDocs() {
		if !strings.Contains(out, "  "+string(d.Kind)+" ") {
			t.Errorf("help schedule does not list %s", d.Kind)
		}
	}
	ex := out[strings.Index(out, `"schedule": [`)+len(`"schedule": `):]
	ex = ex[:strings.Index(ex, "]")+1]
	if _, err := scenarios.UnmarshalSchedule([]byte(ex), 3); err != nil {
		t.Errorf("help schedule's example: %v\n%s", err, ex)
	}
}

func TestLists(t *testing.T) {
	code, out, _ := runCLI(t, "scenarios")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != exitOK || len(lines) != 1+len(scenarios.Scenarios()) || !strings.HasPrefix(lines[0], scenarios.SwarmScenario+" ") {
		t.Errorf("scenarios: exit %d, want the swarm scenario, then one line per scenario:\n%s", code, out)
	}
	code, out, _ = runCLI(t, "variants")
	if code != exitOK || len(strings.Split(strings.TrimSpace(out), "\n")) != len(scenarios.Variants()) || !strings.Contains(out, testVariant) {
		t.Errorf("variants: exit %d, want one line per variant:\n%s", code, out)
	}
}

func TestRunExitCodesAndOutput(t *testing.T) {
	useFake(t, "basic")
	code, out, errs := runCLI(t, "run", "-scenario", "default", "-seed", "2")
	if code != exitOK {
		t.Fatalf("passing seed: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"producers", "fault-weights", "fault schedule (7 faults)", "S1   ok", "L2   ok",
		"indeterminate", "probes: leader-crash=1 leader-gate-open=1 liveness-calm-load=1 segment-rotated=1 stale-batch=1", "trace hash", "commit ", "PASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, "run", "-seed", "3", "-variant", testVariant)
	if code != exitFail {
		t.Fatalf("failing seed: exit %d\n%s", code, out)
	}
	replay := "replay: go run ./cmd/walraft run -scenario default -seed 3 -variant " + testVariant
	if !strings.Contains(out, "S1   VIOLATED (1)") || !strings.Contains(out, replay) {
		t.Errorf("failing run output lacks the violation or %q:\n%s", replay, out)
	}
	// A variant runs in its own scenario unless one is named.
	_, out, _ = runCLI(t, "run", "-seed", "3", "-variant", "memory-raft-log")
	if !strings.Contains(out, "scenario crashes") {
		t.Errorf("memory-raft-log did not run in its scenario:\n%s", out)
	}
}

// requireKeys checks a decoded JSON object has every key.
func requireKeys(t *testing.T, what string, m map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s: no %q field", what, k)
		}
	}
}

func TestRunJSON(t *testing.T) {
	useFake(t, "basic")
	for _, seed := range []uint64{2, 3} {
		code, out, errs := runCLI(t, "run", "-seed", u(seed), "-variant", testVariant, "-json")
		if want := map[uint64]int{2: exitOK, 3: exitFail}[seed]; code != want {
			t.Fatalf("seed %d: exit %d, want %d\n%s", seed, code, want, errs)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("seed %d: stdout is not one JSON object: %v\n%s", seed, err, out)
		}
		requireKeys(t, "run", m, "scenario", "seed", "variant", "ok", "violations", "trace_hash", "sim_seconds",
			"wall_seconds", "events", "acks", "probes", "commit", "replay", "options", "schedule")
		if ok, isBool := m["ok"].(bool); !isBool || ok != (seed == 2) {
			t.Errorf("seed %d: ok = %v", seed, m["ok"])
		}
		vs, isList := m["violations"].([]any)
		if !isList || len(vs) != map[uint64]int{2: 0, 3: 1}[seed] {
			t.Fatalf("seed %d: violations = %v", seed, m["violations"])
		}
		for _, v := range vs {
			requireKeys(t, "violation", v.(map[string]any), "invariant", "detail")
		}
		acks, _ := m["acks"].(map[string]any)
		for _, l := range []string{"0", "1", "all"} {
			a, ok := acks[l].(map[string]any)
			if !ok {
				t.Fatalf("acks has no level %q: %v", l, m["acks"])
			}
			requireKeys(t, "acks "+l, a, "sent", "ok", "failed", "indeterminate", "lost")
		}
	}
}

func TestRunTraceFile(t *testing.T) {
	useFake(t, "basic")
	path := filepath.Join(t.TempDir(), "trace.txt")
	code, out, errs := runCLI(t, "run", "-seed", "2", "-trace", path, "-json")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	var r runJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if n, want := countLines(t, path), fakeTraceLen(t, 2); n != want {
		t.Errorf("trace file has %d lines, the trace %d events", n, want)
	}
}

// fakeTraceLen is the length of the fake's trace of a seed.
func fakeTraceLen(t *testing.T, seed uint64) int {
	t.Helper()
	sc, _ := scenarios.Lookup("default")
	res, err := fakeRun("basic")(sc.Draw(seed), scenarios.RunConfig{RecordTrace: true})
	if err != nil {
		t.Fatal(err)
	}
	return len(res.Trace)
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); n++ {
	}
	return n
}

// A case file written by run replays to the same trace hash and the same
// violation; a changed hash is reported as drift.
func TestCaseReplay(t *testing.T) {
	useFake(t, "basic")
	path := writeFailingCase(t, 6)
	c, err := scenarios.ReadCase(path)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "replay", "-window", "10", path)
	if code != exitFail {
		t.Fatalf("replay: exit %d, want 1 (the violation reproduces)\n%s%s", code, out, errs)
	}
	for _, want := range []string{"matches the case", "reproduced: S1", "timeline (", "node state before the window", ">>> ", "hwm",
		"evidence: fault 2.000s dup"} {
		if !strings.Contains(out, want) {
			t.Errorf("replay output lacks %q:\n%s", want, out)
		}
	}
	// The violation is detected at 2.3s: the dup at 2.4s cannot be its
	// evidence, and nothing was minimized, so no fault was "kept".
	for _, bad := range []string{"fault 2.400s", "kept by"} {
		if strings.Contains(out, bad) {
			t.Errorf("replay output of a case that was not minimized has %q:\n%s", bad, out)
		}
	}
	tracePath := filepath.Join(t.TempDir(), "full.txt")
	// Flags may follow the case path.
	code, out, errs = runCLI(t, "replay", path, "-json", "-trace", tracePath)
	if code != exitFail {
		t.Fatalf("replay -json: exit %d\n%s", code, errs)
	}
	var r replayJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Drift || !r.Reproduced || r.TraceHash != c.TraceHash || len(r.Timeline) == 0 {
		t.Errorf("replay -json: drift %v reproduced %v hash %s (case %s), %d timeline lines", r.Drift, r.Reproduced, r.TraceHash, c.TraceHash, len(r.Timeline))
	}
	if n, want := countLines(t, tracePath), fakeTraceLen(t, 6); n != want {
		t.Errorf("-trace wrote %d lines for %d events", n, want)
	}

	// Pretend the case came from other code: its hash no longer matches.
	c.TraceHash = scenarios.FormatTraceHash(12345)
	drifted := filepath.Join(t.TempDir(), "drifted.json")
	if err := scenarios.WriteCase(drifted, c); err != nil {
		t.Fatal(err)
	}
	_, out, _ = runCLI(t, "replay", drifted)
	if !strings.Contains(out, "DRIFT: trace hash") {
		t.Errorf("no drift reported:\n%s", out)
	}
}

func TestMinimizeCommand(t *testing.T) {
	useFake(t, "basic")
	path := writeFailingCase(t, 9)
	dst := filepath.Join(t.TempDir(), "min.json")
	code, out, errs := runCLI(t, "minimize", "-o", dst, path)
	if code != exitOK {
		t.Fatalf("minimize: exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(out, "faults 7 -> 1, producers") || !strings.Contains(out, "-> 2,") {
		t.Errorf("minimize does not say how much smaller:\n%s", out)
	}
	m, err := scenarios.ReadCase(dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Schedule) != 1 || m.Schedule[0].Kind != scenarios.FaultCrash || m.Options.Producers != 2 {
		t.Errorf("minimized case: %d producers, schedule\n%s", m.Options.Producers, m.Schedule)
	}
	if !strings.Contains(m.Note, "minimized from") {
		t.Errorf("note %q", m.Note)
	}
	code, out, _ = runCLI(t, "replay", dst)
	if code != exitFail || !strings.Contains(out, "matches the case") {
		t.Errorf("the minimized case does not replay: exit %d\n%s", code, out)
	}
	// Centred away from it, the minimized case's one fault gets its own
	// window, which says the minimized schedule kept it.
	code, out, _ = runCLI(t, "replay", "-at", "2s", dst)
	if code != exitFail || !strings.Contains(out, "around the fault 1.500s crash n1") || !strings.Contains(out, "(kept by the minimized schedule):") {
		t.Errorf("replay -at 2s of the minimized case: exit %d\n%s", code, out)
	}
	// The default output name sits next to the case.
	code, _, _ = runCLI(t, "minimize", "-q", path)
	if _, err := os.Stat(strings.TrimSuffix(path, ".json") + ".min.json"); code != exitOK || err != nil {
		t.Errorf("default output: exit %d, %v", code, err)
	}
	// A case that passes on this build has nothing to minimize.
	m.Schedule = scenarios.Schedule{{At: 1, Kind: scenarios.FaultPause, Node: 2, Dur: 5}}
	fixed := filepath.Join(t.TempDir(), "fixed.json")
	if err := scenarios.WriteCase(fixed, m); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, "minimize", fixed)
	if code != exitFail || !strings.Contains(out, "nothing to minimize") {
		t.Errorf("passing case: exit %d\n%s", code, out)
	}
}

// campaign runs a campaign with worker processes and decodes its summary.
func campaign(t *testing.T, args ...string) (int, *campaignJSON, map[string]any) {
	t.Helper()
	args = append([]string{"campaign", "-json"}, args...)
	code, out, errs := runCLI(t, args...)
	if code == exitUsage {
		t.Fatalf("%v: exit 2\n%s", args, errs)
	}
	var s campaignJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%v: stdout is not the summary: %v\n%s\nstderr:\n%s", args, err, out, errs)
	}
	var m map[string]any
	json.Unmarshal([]byte(out), &m)
	return code, &s, m
}

func fakeFailing(start, n uint64, sh shard) []uint64 {
	out := []uint64{}
	for k := start; k < start+n; k++ {
		if sh.has(k) && fakeFails(k) {
			out = append(out, k)
		}
	}
	return out
}

func TestCampaign(t *testing.T) {
	useFake(t, "basic")
	out := t.TempDir()
	code, s, m := campaign(t, "-seeds", "20", "-parallel", "2", "-variant", testVariant, "-out", out)
	if code != exitFail {
		t.Fatalf("exit %d, want 1", code)
	}
	requireKeys(t, "campaign", m, "seeds", "failed", "failing_seeds", "violations_by_invariant", "seeds_per_second",
		"sim_wall_ratio", "determinism_checked", "determinism_mismatches", "probes")
	want := fakeFailing(1, 20, shard{0, 1})
	if s.Seeds != 20 || s.Failed != len(want) || !slices.Equal(s.FailingSeeds, want) {
		t.Fatalf("seeds %d failed %d failing %v; want 20, %d, %v", s.Seeds, s.Failed, s.FailingSeeds, len(want), want)
	}
	if s.ViolationsByInvariant["S1"] != len(want) || s.Probes["stale-batch"] != 20 {
		t.Errorf("violations %v probes %v", s.ViolationsByInvariant, s.Probes)
	}
	// Every 4th seed (the default: 1, 5, 9, 13, 17) and every failing seed.
	checked := map[uint64]bool{}
	for seed := uint64(1); seed <= 20; seed += 4 {
		checked[seed] = true
	}
	for _, seed := range want {
		checked[seed] = true
	}
	if s.DeterminismChecked != len(checked) || s.DeterminismMismatches != 0 {
		t.Errorf("determinism: %d checked, %d mismatches; want %d, 0", s.DeterminismChecked, s.DeterminismMismatches, len(checked))
	}
	if s.SeedsPerSecond <= 0 || s.SimWallRatio <= 0 || s.Acks["all"].Sent != 20*30 {
		t.Errorf("rates %v %v, acks %v", s.SeedsPerSecond, s.SimWallRatio, s.Acks)
	}
	for _, f := range s.Failures {
		code, rout, _ := runCLI(t, "replay", f.Case)
		if code != exitFail || !strings.Contains(rout, "matches the case") {
			t.Errorf("case %s of seed %d does not replay: exit %d\n%s", f.Case, f.Seed, code, rout)
		}
	}
	// The correct system passes, with one worker (the determinism re-run
	// then uses a second process).
	code, s, _ = campaign(t, "-seeds", "12", "-start", "5", "-parallel", "1", "-out", out)
	if code != exitOK || !s.OK || s.Seeds != 12 || s.DeterminismChecked != 3 { // every 4th of 12
		t.Errorf("correct system: exit %d ok %v seeds %d checked %d", code, s.OK, s.Seeds, s.DeterminismChecked)
	}
	// Naming no scenario runs the swarm: each seed as the scenario it
	// draws, and accounted under that scenario's name.
	sw, _ := scenarios.Lookup(scenarios.SwarmScenario)
	wantRuns := map[string]int{}
	for seed := uint64(5); seed < 17; seed++ {
		wantRuns[sw.For(seed).Name]++
	}
	got := map[string]int{}
	for name, sc := range s.ByScenario {
		got[name] = sc.Seeds
	}
	if len(s.Scenarios) != 1 || s.Scenarios[0] != scenarios.SwarmScenario || !reflect.DeepEqual(got, wantRuns) {
		t.Errorf("swarm campaign: scenarios %v, runs by scenario %v, want %v", s.Scenarios, got, wantRuns)
	}
	// -scenario all runs each seed in every scenario.
	code, s, _ = campaign(t, "-seeds", "2", "-scenario", "all", "-out", out, "-determinism", "0")
	if code != exitOK || s.Seeds != 2*len(scenarios.Scenarios()) || len(s.Scenarios) != len(scenarios.Scenarios()) {
		t.Errorf("all scenarios: exit %d, %d runs of %v", code, s.Seeds, s.Scenarios)
	}
}

func TestCampaignTextProgress(t *testing.T) {
	useFake(t, "basic")
	code, out, _ := runCLI(t, "campaign", "-seeds", "9", "-parallel", "2", "-variant", testVariant, "-out", t.TempDir())
	if code != exitFail {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"campaign: default, seeds 1..9", "FAIL seed 3 (default): S1: case ", "seeds/s",
		"probe coverage", "determinism: ", "violations: 3 failing runs", "FAIL\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestSeedRangeShards(t *testing.T) {
	tests := []struct{ start, count, n uint64 }{
		{1, 100, 1}, {1, 100, 3}, {0, 7, 7}, {5, 3, 10}, {10, 1, 4}, {1000, 999, 16},
		{math.MaxUint64 - 10, 10, 4}, {math.MaxUint64 - 10, 10, math.MaxUint64},
	}
	for _, tc := range tests {
		seen := map[uint64]uint64{}
		for i := uint64(0); i < min(tc.n, 50); i++ {
			r := seedRange{start: tc.start, count: tc.count, sh: shard{i, tc.n}}
			for j := uint64(0); j < r.len(); j++ {
				k := r.seed(j)
				if k < tc.start || k-tc.start >= tc.count || k%tc.n != i {
					t.Fatalf("%+v shard %d: seed %d out of range or shard", tc, i, k)
				}
				if prev, dup := seen[k]; dup {
					t.Fatalf("%+v: seed %d in shards %d and %d", tc, k, prev, i)
				}
				seen[k] = i
			}
		}
		if tc.n <= 50 && uint64(len(seen)) != tc.count {
			t.Errorf("%+v: shards cover %d seeds, want %d", tc, len(seen), tc.count)
		}
	}
}

// Shards of a campaign run exactly the seeds of the whole campaign, and
// merge combines their summaries into the whole campaign's.
func TestShardsAndMerge(t *testing.T) {
	useFake(t, "basic")
	dir := t.TempDir()
	args := []string{"-seeds", "25", "-start", "3", "-parallel", "2", "-variant", testVariant, "-out", dir}
	_, whole, _ := campaign(t, args...)
	var files []string
	total := 0
	var union []uint64
	for i := 0; i < 3; i++ {
		sh := shard{uint64(i), 3}
		code, s, _ := campaign(t, append(args, "-shard", sh.String())...)
		if code != exitFail && len(fakeFailing(3, 25, sh)) > 0 {
			t.Fatalf("shard %s: exit %d", sh, code)
		}
		if want := fakeFailing(3, 25, sh); !slices.Equal(s.FailingSeeds, want) {
			t.Errorf("shard %s failing seeds %v, want %v", sh, s.FailingSeeds, want)
		}
		total += s.Seeds
		union = append(union, s.FailingSeeds...)
		b, _ := json.Marshal(s)
		p := filepath.Join(dir, "shard"+sh.String()[:1]+".json")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	slices.Sort(union)
	if total != whole.Seeds || !slices.Equal(union, whole.FailingSeeds) {
		t.Fatalf("shards ran %d seeds failing %v; the whole campaign %d failing %v", total, union, whole.Seeds, whole.FailingSeeds)
	}
	code, out, errs := runCLI(t, append([]string{"merge", "-json"}, files...)...)
	if code != exitFail {
		t.Fatalf("merge: exit %d\n%s", code, errs)
	}
	var merged campaignJSON
	if err := json.Unmarshal([]byte(out), &merged); err != nil {
		t.Fatal(err)
	}
	if merged.Seeds != whole.Seeds || !slices.Equal(merged.FailingSeeds, whole.FailingSeeds) || merged.Failed != whole.Failed ||
		merged.Shard != "all/3" || !cmp.Equal(merged.ViolationsByInvariant, whole.ViolationsByInvariant) ||
		!cmp.Equal(merged.Probes, whole.Probes) || !cmp.Equal(merged.Acks, whole.Acks) {
		t.Errorf("merged summary differs from the whole campaign:\nmerged %+v\nwhole  %+v", merged, *whole)
	}
	code, out, _ = runCLI(t, "merge", "-partial", files[0], files[2])
	if code != exitFail || !strings.Contains(out, "shards 0/3 2/3") {
		t.Errorf("partial merge: exit %d\n%s", code, out)
	}
	// Summaries of different campaigns do not merge.
	_, other, _ := campaign(t, "-seeds", "5", "-shard", "1/3", "-out", dir, "-determinism", "0")
	b, _ := json.Marshal(other)
	p := filepath.Join(dir, "other.json")
	os.WriteFile(p, b, 0o644)
	if code, _, errs := runCLI(t, "merge", files[0], p); code != exitUsage || !strings.Contains(errs, "not shards of the same campaign") {
		t.Errorf("merging different campaigns: exit %d\n%s", code, errs)
	}
}

// A seed whose trace differs between worker processes fails the campaign,
// and the report names the first divergent event.
func TestCampaignNondeterminism(t *testing.T) {
	useFake(t, "nondet")
	dir := t.TempDir()
	code, s, _ := campaign(t, "-seeds", "5", "-parallel", "2", "-out", dir)
	if code != exitFail || s.OK {
		t.Fatalf("exit %d ok %v, want a failure", code, s.OK)
	}
	if s.DeterminismMismatches != 1 || len(s.Mismatches) != 1 || s.Failed != 0 {
		t.Fatalf("mismatches %d %+v, failed %d", s.DeterminismMismatches, s.Mismatches, s.Failed)
	}
	mm := s.Mismatches[0]
	// Event 25 of the fake's loop is trace event #28 (three hwm events
	// precede it).
	if mm.Seed != 1 || mm.Index != 28 || !strings.Contains(mm.Divergence, "first divergent event #28") ||
		!strings.Contains(mm.EventA, "produce a=25") || mm.EventA == mm.EventB {
		t.Errorf("mismatch %+v", mm)
	}
}

// A panicking simulation and a dying worker fail their seed; the campaign
// goes on with fresh workers.
func TestCampaignWorkerFailures(t *testing.T) {
	for _, tc := range []struct {
		mode, inv string
		seed      uint64
	}{{"panic", invPanic, 4}, {"exit", invCrash, 8}} {
		t.Run(tc.mode, func(t *testing.T) {
			useFake(t, tc.mode)
			code, s, _ := campaign(t, "-seeds", "12", "-parallel", "2", "-out", t.TempDir())
			if code != exitFail || s.Seeds != 12 || s.Failed != 1 || s.Failures[0].Seed != tc.seed {
				t.Fatalf("exit %d, %d runs, failures %+v", code, s.Seeds, s.Failures)
			}
			f := s.Failures[0]
			if !slices.Equal(f.Invariants, []string{tc.inv}) || f.Replay == "" {
				t.Errorf("failure %+v, want invariant %s and a replay command", f, tc.inv)
			}
		})
	}
	// A run that never returns is killed at -run-timeout and fails its
	// seed; the campaign goes on.
	t.Run("hang", func(t *testing.T) {
		useFake(t, "hang")
		code, s, _ := campaign(t, "-seeds", "6", "-parallel", "2", "-run-timeout", "2s", "-out", t.TempDir())
		if code != exitFail || s.Seeds != 6 || s.Failed != 1 || s.Failures[0].Seed != 5 {
			t.Fatalf("exit %d, %d runs, failures %+v", code, s.Seeds, s.Failures)
		}
		if f := s.Failures[0]; !slices.Equal(f.Invariants, []string{invCrash}) || !strings.Contains(f.Detail, "-run-timeout 2s") {
			t.Errorf("failure %+v, want %s naming the limit", f, invCrash)
		}
	})
	useFake(t, "panic")
	code, out, _ := runCLI(t, "run", "-seed", "4")
	if code != exitFail || !strings.Contains(out, "panic") || !strings.Contains(out, "invariant broken") {
		t.Errorf("run of a panicking seed: exit %d\n%s", code, out)
	}
}

func TestBuildCommit(t *testing.T) {
	c := buildCommit()
	if c == "" {
		t.Fatal("empty commit")
	}
	t.Logf("commit %s", c)
}

func TestParseShard(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{{"0/1", true}, {"2/3", true}, {"3/3", false}, {"1", false}, {"a/b", false}, {"-1/2", false}, {"0/0", false}, {"1/2/3", false}} {
		_, err := parseShard(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("parseShard(%q): %v", tc.in, err)
		}
	}
}
