package scenarios

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// caseFile is the case TestCase replays:
//
//	go test ./scenarios -run TestCase -case testdata/found/default-metadata-only-seed1.json
var caseFile = flag.String("case", "", "case `FILE` for TestCase to replay")

// TestCase replays one case file under go test (so a debugger, -race or a
// profiler can be attached) and fails while the case still violates an
// invariant: a case that passes is a fixed bug. Without -case it skips.
func TestCase(t *testing.T) {
	if *caseFile == "" {
		t.Skip("no case: go test ./scenarios -run TestCase -case FILE")
	}
	note, problems, err := replayCaseFile(*caseFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(note)
	for _, p := range problems {
		t.Error(p)
	}
}

// replayCaseFile runs the case at path and returns a line about its trace
// hash and one line per violation the run shows (none: the case passes).
func replayCaseFile(path string) (note string, problems []string, err error) {
	c, err := ReadCase(path)
	if err != nil {
		return "", nil, err
	}
	res, err := Run(c.Options, RunConfig{Variant: c.Variant, Schedule: c.Schedule, UseSchedule: true})
	if err != nil {
		return "", nil, err
	}
	hash := FormatTraceHash(res.TraceHash)
	note = "trace hash " + hash + " matches the case"
	if hash != c.TraceHash {
		note = "DRIFT: trace hash " + hash + ", the case recorded " + c.TraceHash + " (written at " + c.Commit + ")"
	}
	if res.OK() {
		return note, nil, nil
	}
	for _, v := range res.Violations {
		detail, _, _ := strings.Cut(v.Detail, "\n")
		problems = append(problems, fmt.Sprintf("%s at %v: %s", v.Invariant, v.Time, detail))
	}
	problems = append(problems, fmt.Sprintf("%s: %d violations (%s); the case recorded %s; %s", path, len(res.Violations),
		strings.Join(res.Invariants(), ","), strings.Join(c.Invariants(), ","), note))
	return note, problems, nil
}

// TestCaseEntryPoint proves TestCase's replay fails on a failing case (the
// metadata-only variant's seed 1, which loses acks=-1 writes) and passes
// on the same options and schedule run by the correct system.
func TestCaseEntryPoint(t *testing.T) {
	sc, err := Lookup("default")
	if err != nil {
		t.Fatal(err)
	}
	o := sc.Draw(1)
	o.Variant = "metadata-only"
	o.SafetyDuration = 2 * time.Second // short: the variant breaks S3 within the first second
	res, err := Run(o, RunConfig{Variant: o.Variant})
	if err != nil {
		t.Fatal(err)
	}
	c := &Case{Version: CaseVersion, Scenario: o.Scenario, Seed: o.Seed, Variant: o.Variant, Commit: "unknown",
		TraceHash: FormatTraceHash(res.TraceHash), Options: res.Options, Schedule: res.Schedule}
	for _, v := range res.Violations {
		c.Violations = append(c.Violations, CaseViolation{Invariant: v.Invariant, Detail: v.Detail, Time: v.Time})
	}
	path := filepath.Join(t.TempDir(), c.FileName())
	if err := WriteCase(path, c); err != nil {
		t.Fatal(err)
	}
	note, problems, err := replayCaseFile(path)
	if err != nil || len(problems) == 0 || !strings.Contains(note, "matches the case") {
		t.Fatalf("failing case: note %q, %d problems, err %v", note, len(problems), err)
	}
	c.Variant, c.Options.Variant = "", ""
	if err := WriteCase(path, c); err != nil {
		t.Fatal(err)
	}
	note, problems, err = replayCaseFile(path)
	if err != nil || len(problems) != 0 || !strings.Contains(note, "DRIFT") {
		t.Fatalf("correct system: note %q, problems %v, err %v", note, problems, err)
	}
}
