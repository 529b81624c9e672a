package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"walraft/scenarios"
)

// The tests in this file run the real harness (scenarios.Run), in this
// process and in campaign worker processes.

func TestSimRunDeterministic(t *testing.T) {
	useFake(t, "")
	var hashes []string
	for i := 0; i < 2; i++ {
		code, out, errs := runCLI(t, "run", "-seed", "1", "-json")
		if code != exitOK {
			t.Fatalf("run -seed 1: exit %d\n%s\n%s", code, out, errs)
		}
		var r runJSON
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		if !r.OK || r.Events == 0 || r.SimSeconds <= 0 || r.Acks["all"].Sent == 0 {
			t.Fatalf("run: %+v", r)
		}
		hashes = append(hashes, r.TraceHash)
	}
	if hashes[0] != hashes[1] {
		t.Fatalf("seed 1 twice: trace hashes %s and %s", hashes[0], hashes[1])
	}
}

func TestSimRunHistory(t *testing.T) {
	useFake(t, "")
	path := filepath.Join(t.TempDir(), "history.jsonl")
	code, out, errs := runCLI(t, "run", "-seed", "2", "-history", path)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	n := 0
	for ; sc.Scan(); n++ {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("history line %d is not a JSON object: %v\n%s", n+1, err, sc.Text())
		}
	}
	if n == 0 {
		t.Fatal("empty history")
	}
}

func TestSimCampaign(t *testing.T) {
	useFake(t, "")
	code, s, _ := campaign(t, "-seeds", "4", "-parallel", "2", "-determinism", "2", "-out", t.TempDir())
	if code != exitOK || !s.OK || s.Seeds != 4 {
		t.Fatalf("exit %d: %+v", code, s)
	}
	if s.DeterminismChecked != 2 || s.DeterminismMismatches != 0 {
		t.Fatalf("determinism: %d checked, mismatches %+v", s.DeterminismChecked, s.Mismatches)
	}
	if s.SimWallRatio <= 0 || s.Events == 0 || len(s.Probes) == 0 {
		t.Errorf("summary: ratio %v events %d probes %v", s.SimWallRatio, s.Events, s.Probes)
	}
	t.Logf("%.1f seeds/s, %.0fx sim/wall on one core", s.SeedsPerSecond, s.SimWallRatioOfRun)
}

// The README's worked example: find a failing seed of a variant, replay its
// case to the same trace hash, minimize it, and replay the smaller case.
func TestSimVariantWorkflow(t *testing.T) {
	if testing.Short() {
		t.Skip("runs up to 40 simulations")
	}
	useFake(t, "")
	variant := "ack-before-fsync"
	if v := os.Getenv("WALRAFT_TEST_VARIANT"); v != "" {
		variant = v
	}
	dir := t.TempDir()
	var casePath string
	for seed := uint64(1); seed <= 40 && casePath == ""; seed++ {
		code, out, errs := runCLI(t, "run", "-seed", u(seed), "-variant", variant, "-out", dir, "-json")
		var r runJSON
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("seed %d: %v\n%s", seed, err, errs)
		}
		if code == exitFail {
			if r.Case == "" {
				t.Fatalf("seed %d failed without a case file: %+v", seed, r)
			}
			casePath = r.Case
		}
	}
	if casePath == "" {
		t.Fatalf("variant %s not caught in 40 seeds", variant)
	}
	c, err := scenarios.ReadCase(casePath)
	if err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCLI(t, "replay", casePath)
	if code != exitFail || !strings.Contains(out, "matches the case") || !strings.Contains(out, "reproduced: ") {
		t.Fatalf("replay %s: exit %d\n%s", casePath, code, out)
	}
	minPath := filepath.Join(dir, "min.json")
	code, out, errs := runCLI(t, "minimize", "-q", "-max-runs", "25", "-o", minPath, casePath)
	if code != exitOK {
		t.Fatalf("minimize: exit %d\n%s\n%s", code, out, errs)
	}
	t.Logf("%s", out)
	m, err := scenarios.ReadCase(minPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Schedule) > len(c.Schedule) || m.Options.Producers > c.Options.Producers {
		t.Errorf("minimized case is larger: %d faults %d producers, was %d and %d",
			len(m.Schedule), m.Options.Producers, len(c.Schedule), c.Options.Producers)
	}
	code, out, _ = runCLI(t, "replay", minPath)
	if code != exitFail || !strings.Contains(out, "matches the case") || !strings.Contains(out, "reproduced: ") ||
		!strings.Contains(out, c.Violations[0].Invariant+" ") {
		t.Fatalf("replay of the minimized case: exit %d\n%s", code, out)
	}
}

// A schedule file of the regression corpus over two seeds with the real
// harness: both hold, and the seeds are different runs of the same faults.
func TestSimRunScheduleSeeds(t *testing.T) {
	useFake(t, "")
	path := filepath.Join("..", "..", "testdata", "cases", "paused-leader.json")
	code, out, errs := runCLI(t, "run", "-schedule", path, "-seeds", "1-2", "-json")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	var sum scheduleSummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Held != 2 || sum.AsExpected != 2 || len(sum.Runs) != 2 || sum.Runs[0].TraceHash == sum.Runs[1].TraceHash {
		t.Fatalf("summary %+v", sum)
	}
}
