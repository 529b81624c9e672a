package scenarios

import (
	"slices"
	"strings"
	"testing"
)

// TestStormGuardReportsLivelock: a run whose scheduler trips the storm
// guard (sim.EventStorm) ends at once as a LIVELOCK violation with a
// result, not a panic that kills the campaign. The budget is lowered so
// that an ordinary run trips it: a real storm (a node flooding the network
// with appends) does so at the real budget.
func TestStormGuardReportsLivelock(t *testing.T) {
	defer func(w uint64) { stormWork = w }(stormWork)
	stormWork = 2_000
	sc, _ := Lookup("calm")
	res := mustRun(t, sc.Draw(1), RunConfig{})
	if res.OK() || !slices.Contains(res.Invariants(), InvLivelock) {
		t.Fatalf("violations %v, want %s:\n%s", res.Invariants(), InvLivelock, res.Report.String())
	}
	named := false
	for _, v := range res.Violations {
		named = named || (v.Invariant == InvLivelock && strings.Contains(v.Detail, "storm"))
	}
	if !named {
		t.Errorf("no %s violation names the storm: %+v", InvLivelock, res.Violations)
	}
	if res.SimTime > StormWindow*5 {
		t.Errorf("run went on to %v after the guard tripped", res.SimTime)
	}
}
