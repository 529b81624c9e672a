package scenarios

import (
	"bufio"
	"flag"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// The golden trace hashes: a short run of every scenario for a few seeds,
// and of every known-bad variant for one seed, must give exactly the trace
// hash, event count and verdict digest stored in goldenFile. It is the
// proof that a change meant to be invisible (a faster harness, a cheaper
// checker) changed no run: TestDeterminism only shows that a run agrees
// with itself under the same code, not with the code before the change.
//
// A change that alters traces on purpose regenerates the file and says so
// in its commit:
//
//	go test ./scenarios -run TestGoldenTraces -update
var updateGolden = flag.Bool("update", false, "rewrite the golden trace hashes of TestGoldenTraces from this code")

// goldenFile holds one line per run (see goldenLine).
const goldenFile = "testdata/golden_traces.txt"

// goldenSeeds are the seeds of every scenario; goldenVariantSeed is the
// one seed of every variant (a light one: seed 2 draws few producers).
var goldenSeeds = []uint64{1, 2}

const goldenVariantSeed = 2

// goldenSafety caps the safety phase of a golden run (the shortest phase
// a scenario draws), so the whole test stays within seconds: what it
// guards is sameness, and a few seconds of every fault mix show a change.
const goldenSafety = 3 * time.Second

// goldenRun is one run of the golden set.
type goldenRun struct {
	scenario string
	variant  string
	seed     uint64
}

// key names the run in the golden file.
func (g goldenRun) key() string {
	v := g.variant
	if v == "" {
		v = "-"
	}
	return fmt.Sprintf("%s %s %d", g.scenario, v, g.seed)
}

// goldenRuns lists the golden set: every scenario for goldenSeeds, every
// variant on its own scenario for goldenVariantSeed.
func goldenRuns() []goldenRun {
	var runs []goldenRun
	for _, sc := range Scenarios() {
		for _, seed := range goldenSeeds {
			runs = append(runs, goldenRun{scenario: sc.Name, seed: seed})
		}
	}
	for _, v := range Variants() {
		runs = append(runs, goldenRun{scenario: v.Scenario, variant: v.Name, seed: goldenVariantSeed})
	}
	return runs
}

// goldenLine runs g as a campaign does (hash only, no recorded trace) and
// renders its line: key, trace hash, scheduler events, and a digest of
// what the checkers concluded (verdicts, violations without their
// free-text detail, acks counts, probes, availability summary, simulated
// time), so a cheaper checker that judges differently shows too.
func goldenLine(t *testing.T, g goldenRun) string {
	t.Helper()
	sc, err := Lookup(g.scenario)
	if err != nil {
		t.Fatal(err)
	}
	o := sc.Draw(g.seed)
	o.SafetyDuration = min(o.SafetyDuration, goldenSafety)
	res, err := Run(o, RunConfig{Variant: g.variant})
	if err != nil {
		t.Fatalf("%s: %v", g.key(), err)
	}
	return fmt.Sprintf("%s %016x %d %016x", g.key(), res.TraceHash, res.Events, resultDigest(res))
}

// resultDigest hashes the judged parts of a result. Violation details are
// left out: they may hold go-cmp diffs, whose spacing go-cmp varies on
// purpose from process to process.
func resultDigest(res *Result) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "verdicts %v\n", res.Report.Verdicts)
	for _, v := range res.Violations {
		fmt.Fprintf(h, "violation %s %d %v\n", v.Invariant, v.Time, v.Ops)
	}
	fmt.Fprintf(h, "beyond %q\n", res.BeyondBudget)
	fmt.Fprintf(h, "acks %v\nprobes %v\n", res.Acks, res.Probes) // fmt sorts map keys
	fmt.Fprintf(h, "avail %+v\nlatency %v\n", res.Avail, res.Report.Latency)
	fmt.Fprintf(h, "sim %d messages %d\n", res.SimTime, res.Messages)
	return h.Sum64()
}

func TestGoldenTraces(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every scenario and variant")
	}
	var got []string
	for _, g := range goldenRuns() {
		got = append(got, goldenLine(t, g))
	}
	if *updateGolden {
		if err := writeGolden(got); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %d runs to %s", len(got), goldenFile)
		return
	}
	want, err := readGolden()
	if err != nil {
		t.Fatalf("%v (generate it with -update)", err)
	}
	wantByKey := map[string]string{}
	for _, l := range want {
		wantByKey[goldenKey(l)] = l
	}
	for _, l := range got {
		w, ok := wantByKey[goldenKey(l)]
		switch {
		case !ok:
			t.Errorf("no golden line for %q (a new scenario or variant? run with -update)", goldenKey(l))
		case w != l:
			t.Errorf("run changed:\n  want %s\n  got  %s", w, l)
		}
		delete(wantByKey, goldenKey(l))
	}
	var stale []string
	for k := range wantByKey {
		stale = append(stale, k)
	}
	sort.Strings(stale)
	for _, k := range stale {
		t.Errorf("golden line %q has no run any more (run with -update)", k)
	}
	if t.Failed() {
		t.Log("fields: scenario variant seed trace-hash events result-digest; a change meant to alter traces regenerates the file with -update")
	}
}

// goldenKey returns the run key of a golden line (its first three fields).
func goldenKey(line string) string {
	f := strings.Fields(line)
	if len(f) < 3 {
		return line
	}
	return strings.Join(f[:3], " ")
}

func writeGolden(lines []string) error {
	var b strings.Builder
	b.WriteString("# TestGoldenTraces: scenario variant seed trace-hash events result-digest\n")
	b.WriteString("# regenerate: go test ./scenarios -run TestGoldenTraces -update\n")
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if err := os.MkdirAll(filepath.Dir(goldenFile), 0o755); err != nil {
		return err
	}
	return os.WriteFile(goldenFile, []byte(b.String()), 0o644)
}

func readGolden() ([]string, error) {
	f, err := os.Open(goldenFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		lines = append(lines, l)
	}
	return lines, sc.Err()
}
