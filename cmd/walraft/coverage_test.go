package main

import (
	"bytes"
	"strings"
	"testing"

	"walraft/scenarios"
)

// TestCampaignCoverageVerdict: a correct-system campaign of at least
// CoverageMinRuns runs of every scenario fails, with one line naming the
// probe, when a required probe was never reached; a smaller campaign or a
// variant's campaign shows the rates without judging them.
func TestCampaignCoverageVerdict(t *testing.T) {
	full := func(variant string, runs int, skip string) *campaignJSON {
		c := newCampaignJSON()
		c.Variant = variant
		for _, s := range scenarios.Scenarios() {
			c.ScenarioRuns[s.Name] = runs
			c.Seeds += runs
		}
		for _, p := range scenarios.Probes() {
			if p.Required && p.Name != skip {
				c.Probes[p.Name] = 1
			}
		}
		c.derive()
		return c
	}
	tests := []struct {
		name     string
		c        *campaignJSON
		ok       bool
		wantLine string
	}{
		{"all reached", full("", scenarios.CoverageMinRuns, ""), true, "coverage: every required probe reached"},
		{"one missing", full("", scenarios.CoverageMinRuns, "recovery-cut-by-overwrite"), false,
			"coverage: required probe recovery-cut-by-overwrite never reached"},
		{"too few runs", full("", scenarios.CoverageMinRuns-1, "recovery-cut-by-overwrite"), true, "coverage of the required probes: not judged"},
		{"a variant", full("no-truncate", scenarios.CoverageMinRuns, "recovery-cut-by-overwrite"), true, "coverage of the required probes: not judged"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.c.OK != tc.ok {
				t.Fatalf("OK %v, want %v (missing %v)", tc.c.OK, tc.ok, tc.c.CoverageMissing)
			}
			var b bytes.Buffer
			printCampaign(&b, tc.c)
			if !strings.Contains(b.String(), tc.wantLine) {
				t.Fatalf("output lacks %q:\n%s", tc.wantLine, b.String())
			}
			if n := strings.Count(b.String(), "never reached"); (n == 1) == tc.ok {
				t.Fatalf("%d lines say a probe was never reached:\n%s", n, b.String())
			}
		})
	}
}

// TestCampaignExpectedProbes: a correct-system campaign fails, naming
// scenario and probe, when a scenario with at least ExpectMinRuns runs
// never reached one of its expected probes; a variant's campaign or a
// smaller one does not judge them.
func TestCampaignExpectedProbes(t *testing.T) {
	const sc = "pipelined-crashes"
	build := func(variant string, runs int, skip string) *campaignJSON {
		c := newCampaignJSON()
		c.Variant = variant
		for i := range runs {
			r := &runJSON{Scenario: sc, Seed: uint64(i + 1), OK: true, Probes: map[string]int{}}
			for _, p := range scenarios.ExpectedProbes(sc) {
				if p != skip {
					r.Probes[p] = 2
				}
			}
			c.add(r)
		}
		c.derive()
		return c
	}
	tests := []struct {
		name string
		c    *campaignJSON
		ok   bool
	}{
		{"every expected probe reached", build("", scenarios.ExpectMinRuns, ""), true},
		{"one never reached", build("", scenarios.ExpectMinRuns, "pipelined-applied-wal-rebuilt"), false},
		{"too few runs", build("", scenarios.ExpectMinRuns-1, "pipelined-applied-wal-rebuilt"), true},
		{"a variant", build("pipelined-no-rebuild", scenarios.ExpectMinRuns, "pipelined-applied-wal-rebuilt"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.c.OK != tc.ok {
				t.Fatalf("OK %v, want %v (expect missing %v)", tc.c.OK, tc.ok, tc.c.ExpectMissing)
			}
			var b bytes.Buffer
			printCampaign(&b, tc.c)
			line := "expected probe never reached"
			if got := strings.Contains(b.String(), line) && strings.Contains(b.String(), sc+": pipelined-applied-wal-rebuilt"); got == tc.ok {
				t.Fatalf("output names the missing probe: %v, want %v:\n%s", got, !tc.ok, b.String())
			}
		})
	}
}
