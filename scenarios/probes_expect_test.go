package scenarios

import (
	"slices"
	"testing"
)

// TestScenarioExpect: every scenario of the catalogue lists its expected
// probes, each a registered probe, and MissingExpected judges them only
// from ExpectMinRuns runs on.
func TestScenarioExpect(t *testing.T) {
	for _, sc := range Scenarios() {
		ps := ExpectedProbes(sc.Name)
		if len(ps) == 0 {
			t.Errorf("scenario %s expects no probe (regenerate scenarioExpect)", sc.Name)
		}
		for _, p := range ps {
			if _, ok := LookupProbe(p); !ok {
				t.Errorf("scenario %s expects unregistered probe %q", sc.Name, p)
			}
		}
	}
	for name := range scenarioExpect {
		if _, err := Lookup(name); err != nil {
			t.Errorf("scenarioExpect names unknown scenario %q", name)
		}
	}
	all := map[string]int{}
	for _, p := range ExpectedProbes("pipelined-crashes") {
		all[p] = 3
	}
	without := map[string]int{}
	for k, v := range all {
		if k != "pipelined-applied-wal-rebuilt" {
			without[k] = v
		}
	}
	tests := []struct {
		name  string
		runs  int
		reach map[string]int
		want  []string
	}{
		{"every expected probe reached", ExpectMinRuns, all, nil},
		{"one never reached", ExpectMinRuns, without, []string{"pipelined-applied-wal-rebuilt"}},
		{"too few runs to judge", ExpectMinRuns - 1, without, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MissingExpected("pipelined-crashes", tt.runs, tt.reach); !slices.Equal(got, tt.want) {
				t.Errorf("MissingExpected = %v, want %v", got, tt.want)
			}
		})
	}
}
