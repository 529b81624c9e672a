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
		{"too few runs", full("", scenarios.CoverageMinRuns-1, "recovery-cut-by-overwrite"), true, "coverage: not judged"},
		{"a variant", full("no-truncate", scenarios.CoverageMinRuns, "recovery-cut-by-overwrite"), true, "coverage: not judged"},
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
