package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// defaultCaseDir is where campaign writes the case files of failing seeds
// unless -out says otherwise. It is git-ignored (.gitignore), so a campaign
// never leaves untracked noise in a commit; testdata/cases is the committed
// regression corpus that the cases worth keeping move to.
var defaultCaseDir = filepath.Join("testdata", "found")

// scenarioJSON is one scenario's share of a campaign: `-scenario all` and
// merge print one line per scenario.
type scenarioJSON struct {
	Seeds                 int            `json:"seeds"`
	Failed                int            `json:"failed"`
	FailingSeeds          []uint64       `json:"failing_seeds"`
	ViolationsByInvariant map[string]int `json:"violations_by_invariant"`
	BeyondBudget          int            `json:"beyond_budget"`
	SimSeconds            float64        `json:"sim_seconds"`
	RunSeconds            float64        `json:"run_seconds"`
	Lost1                 int            `json:"acks1_lost"`
	LostAll               int            `json:"acksall_lost"`
	// Probes counts the runs of the scenario that reached each probe: its
	// expected probes (scenarios.ExpectedProbes) are judged from it.
	Probes map[string]int `json:"probes,omitempty"`
}

// scenario returns (creating) the per-scenario entry of name.
func (c *campaignJSON) scenario(name string) *scenarioJSON {
	if c.ByScenario == nil {
		c.ByScenario = map[string]*scenarioJSON{}
	}
	s := c.ByScenario[name]
	if s == nil {
		s = &scenarioJSON{FailingSeeds: []uint64{}, ViolationsByInvariant: map[string]int{}}
		c.ByScenario[name] = s
	}
	return s
}

// add accounts one run of the scenario.
func (s *scenarioJSON) add(r *runJSON) {
	s.Seeds++
	s.SimSeconds += r.SimSeconds
	s.RunSeconds += r.WallSeconds
	s.Lost1 += r.Acks["1"].Lost
	s.LostAll += r.Acks["all"].Lost
	for k, n := range r.Probes {
		if n > 0 {
			if s.Probes == nil {
				s.Probes = map[string]int{}
			}
			s.Probes[k]++
		}
	}
	if r.BeyondBudget != "" {
		s.BeyondBudget++
	}
	if r.failed() {
		s.Failed++
		s.FailingSeeds = append(s.FailingSeeds, r.Seed)
		for _, inv := range r.invariantNames() {
			s.ViolationsByInvariant[inv]++
		}
	}
}

// merge adds another shard's share of the same scenario.
func (s *scenarioJSON) merge(o *scenarioJSON) {
	s.Seeds += o.Seeds
	s.Failed += o.Failed
	s.FailingSeeds = append(s.FailingSeeds, o.FailingSeeds...)
	for k, v := range o.ViolationsByInvariant {
		s.ViolationsByInvariant[k] += v
	}
	s.BeyondBudget += o.BeyondBudget
	for k, v := range o.Probes {
		if s.Probes == nil {
			s.Probes = map[string]int{}
		}
		s.Probes[k] += v
	}
	s.SimSeconds += o.SimSeconds
	s.RunSeconds += o.RunSeconds
	s.Lost1 += o.Lost1
	s.LostAll += o.LostAll
}

// printByScenario prints one line per scenario when the campaign ran more
// than one.
func printByScenario(w io.Writer, s *campaignJSON) {
	if len(s.ByScenario) < 2 {
		return
	}
	width := len("by scenario:") - 2
	for name := range s.ByScenario {
		width = max(width, len(name))
	}
	fmt.Fprintf(w, "%-*s  %6s %7s %9s  %s\n", width+2, "by scenario:", "runs", "failed", "sim s", "violations (runs)")
	for _, name := range sortedKeys(s.ByScenario) {
		sc := s.ByScenario[name]
		invs := sortedKeys(sc.ViolationsByInvariant)
		sortInvariants(invs)
		var vs []string
		for _, k := range invs {
			vs = append(vs, fmt.Sprintf("%s %d", k, sc.ViolationsByInvariant[k]))
		}
		v := strings.Join(vs, ", ")
		if v == "" {
			v = "none"
		}
		fmt.Fprintf(w, "  %-*s %6d %7d %9.0f  %s\n", width, name, sc.Seeds, sc.Failed, sc.SimSeconds, v)
	}
}

// lostNote explains a lost count next to the acks table: acks=1 writes may
// be lost through a leader change before commit (S5 allows that, cleanly),
// acks=-1 and standalone acks=1 writes never.
func lostNote(s *campaignJSON, level string, a acksJSON) string {
	if a.Lost == 0 {
		return ""
	}
	switch level {
	case "1":
		if s.ViolationsByInvariant["S5"] > 0 {
			return "  (S5 violated in some runs: see the failures; the rest is loss through a leader change before commit, which acks=1 allows)"
		}
		return "  (allowed: acks=1 writes lost through a leader change before commit, cleanly; S5 held)"
	case "all":
		if s.ViolationsByInvariant["S1"] > 0 {
			return "  (S1 violated: acknowledged acks=-1 writes lost)"
		}
		if s.BeyondBudget > 0 {
			return "  (in runs beyond the fault budget, which do not count)"
		}
	}
	return ""
}
