package scenarios

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// corpusDir is the regression corpus (DESIGN.md section 7): case files
// hand-written from public failure reports and found by campaigns.
const corpusDir = "../testdata/cases"

// TestRegressionCorpus replays every case file of the corpus with its
// expected verdict: "hold" cases must hold every invariant, the others
// must violate the invariant they name (or, without "expect", the
// invariants they recorded).
func TestRegressionCorpus(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(corpusDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no case files in %s", corpusDir)
	}
	for _, p := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(p), ".json"), func(t *testing.T) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			c, err := DecodeCase(b)
			if err != nil {
				t.Fatal(err)
			}
			res := mustRun(t, c.Options, RunConfig{Variant: c.Variant, Schedule: c.Schedule, UseSchedule: true})
			want := c.ExpectedInvariants()
			if len(want) == 0 {
				if !res.OK() {
					t.Fatalf("expected to hold; violated %v:\n%v", res.Invariants(), res.Violations)
				}
				return
			}
			got := res.Invariants()
			for _, inv := range want {
				if slices.Contains(got, inv) {
					return
				}
			}
			t.Fatalf("expected a violation of %v; got %v (%s)", want, got, res.Avail)
		})
	}
}

// TestRegressionCorpusCatches runs each corpus case's schedule with every
// known-bad variant its caught_by lists: each must break an invariant, so
// a schedule that holds on the correct system is shown to matter (it
// fails on a system with that bug).
func TestRegressionCorpusCatches(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(corpusDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		c, err := ReadCase(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range c.CaughtBy {
			t.Run(strings.TrimSuffix(filepath.Base(p), ".json")+"/"+v, func(t *testing.T) {
				o := c.Options
				o.Variant = v
				res := mustRun(t, o, RunConfig{Variant: v, Schedule: c.Schedule, UseSchedule: true})
				if res.OK() {
					t.Fatalf("variant %s: every invariant held; the case says it catches %s", v, v)
				}
				t.Logf("variant %s: %v", v, res.Invariants())
			})
		}
	}
}
