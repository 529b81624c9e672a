package scenarios

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"walraft/sim"
)

// The fsync-retry variant ("retry the fsync after an error and assume
// success") is a bug only because Linux drops or cleans the failed blocks:
// the same seeds catch it under both Linux modes and pass it under the
// kind model, where the retry really writes them. The correct system
// passes the catching seed under Linux.
func TestFsyncRetryCaughtOnlyUnderLinuxSemantics(t *testing.T) {
	sc, err := Lookup("fsync")
	if err != nil {
		t.Fatal(err)
	}
	// The first catching seed moves whenever option drawing changes, so
	// search a few: under each Linux mode one of them must catch the bug
	// (30 of 40 seeds do under linux-drop), and that seed must pass under
	// the kind model and with the correct system.
	const maxSeed = 20
	for _, mode := range []sim.FailedSyncMode{sim.FailedSyncDrop, sim.FailedSyncClean} {
		t.Run(mode.String(), func(t *testing.T) {
			for seed := uint64(1); seed <= maxSeed; seed++ {
				o := sc.Draw(seed)
				o.Disk.FailedSync = mode
				res := mustRun(t, o, RunConfig{Variant: "fsync-retry"})
				if res.OK() {
					continue
				}
				if !slices.ContainsFunc(res.Invariants(), func(inv string) bool {
					return slices.Contains(variantCatchers["fsync-retry"], inv)
				}) {
					t.Fatalf("seed %d: caught by %v, none of which shows the bug", seed, res.Invariants())
				}
				if res.Probes["fsync-failed-dropped"] == 0 {
					t.Errorf("seed %d: caught without a failed fsync dropping blocks: probes %v", seed, res.Probes)
				}
				if res := mustRun(t, o, RunConfig{}); !res.OK() {
					t.Fatalf("the correct system fails seed %d under %v: %v\n%s", seed, mode, res.Invariants(), res.Report.String())
				}
				o.Disk.FailedSync = sim.FailedSyncKeep
				if res := mustRun(t, o, RunConfig{Variant: "fsync-retry"}); !res.OK() {
					t.Fatalf("seed %d under the kind model (keep): fsync-retry caught by %v, but a retry that really writes the blocks is no bug there:\n%s",
						seed, res.Invariants(), res.Report.String())
				}
				return
			}
			t.Fatalf("fsync-retry under %v: not caught by fsync seeds 1..%d", mode, maxSeed)
		})
	}
}

// Every scenario draws Linux's failed-sync semantics, both modes across
// seeds, and never the kind model.
func TestScenariosDrawLinuxFsync(t *testing.T) {
	for _, sc := range Scenarios() {
		modes := map[sim.FailedSyncMode]int{}
		for seed := uint64(1); seed <= 40; seed++ {
			modes[sc.Draw(seed).Disk.FailedSync]++
		}
		if modes[sim.FailedSyncKeep] != 0 || modes[sim.FailedSyncDrop] == 0 || modes[sim.FailedSyncClean] == 0 {
			t.Errorf("scenario %s draws failed-sync modes %v, want only and both Linux modes", sc.Name, modes)
		}
	}
	o, _ := Lookup("fsync")
	if ws := o.Draw(7).FaultWeights; ws[FaultNoSpace] == 0 || ws[FaultHang] == 0 || ws[FaultReadEIO] == 0 {
		t.Errorf("the fsync scenario lacks the Linux disk faults: %v", ws)
	}
}

// A hand-written schedule with every new fault kind: each reaches its
// state (probe) and the correct system holds every invariant.
func TestSimFaultsReachTheirStates(t *testing.T) {
	// A failed fsync writes none of its blocks back, or all of them.
	for _, keep := range []float64{0, 1} {
		t.Run(fmt.Sprintf("writeback=%v", keep), func(t *testing.T) {
			simFaultsReachTheirStates(t, keep)
		})
	}
}

func simFaultsReachTheirStates(t *testing.T, keep float64) {
	sc, _ := Lookup("default")
	o := sc.Draw(3)
	o.SafetyDuration = 6 * time.Second
	o.Disk.FailedSyncKeepProb = keep
	sched := Schedule{
		{At: 500 * time.Millisecond, Kind: FaultLink, Node: 1, Peer: 2, Latency: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Prob: 0.3, Dup: 0.2, Dur: 2 * time.Second},
		{At: time.Second, Kind: FaultHang, Node: 1, Dur: 400 * time.Millisecond},
		{At: 1100 * time.Millisecond, Kind: FaultHang, Node: 2, Dur: 400 * time.Millisecond},
		{At: 1200 * time.Millisecond, Kind: FaultHang, Node: 3, Dur: 400 * time.Millisecond},
		{At: 2 * time.Second, Kind: FaultClockStep, Node: 2, Step: -2 * time.Second},
		{At: 2500 * time.Millisecond, Kind: FaultClockStep, Node: 3, Step: 3 * time.Second},
		{At: 3 * time.Second, Kind: FaultNoSpace, Node: 1, Count: 2},
		{At: 3 * time.Second, Kind: FaultNoSpace, Node: 2, Count: 2},
		{At: 3 * time.Second, Kind: FaultNoSpace, Node: 3, Count: 2},
		{At: 4 * time.Second, Kind: FaultReadEIO, Node: 2, Count: 2, Dur: 100 * time.Millisecond},
		{At: 4500 * time.Millisecond, Kind: FaultSyncEIO, Node: 1, Count: 1},
		{At: 4500 * time.Millisecond, Kind: FaultSyncEIO, Node: 3, Count: 1},
	}
	if err := sched.Validate(o.Nodes); err != nil {
		t.Fatal(err)
	}
	res := mustRun(t, o, RunConfig{Schedule: sched, UseSchedule: true})
	if !res.OK() {
		t.Fatalf("correct system failed: %v\n%s", res.Invariants(), res.Report.String())
	}
	failed := "fsync-failed-dropped"
	if keep > 0 {
		failed = "fsync-failed-written-back"
	}
	for _, p := range []string{"link-quality", "loop-blocked-by-fsync", "fsync-hang", "clock-step-back", "clock-step-forward",
		"enospc", "read-eio-on-recovery", "boot-io-error", failed} {
		if res.Probes[p] == 0 {
			t.Errorf("probe %s not reached (probes %v)", p, res.Probes)
		}
	}
}

func TestSimFaultsValidateAndJSON(t *testing.T) {
	good := Schedule{
		{At: 1, Kind: FaultNoSpace, Node: 1, Count: 2},
		{At: 2, Kind: FaultReadEIO, Node: 2, Count: 1, Dur: time.Millisecond},
		{At: 3, Kind: FaultHang, Node: 3, Dur: time.Second},
		{At: 4, Kind: FaultClockStep, Node: 1, Step: -time.Second},
		{At: 5, Kind: FaultLink, Node: 1, Peer: 3, Latency: time.Millisecond, Jitter: 2, Prob: 0.1, Dup: 0.2, Dur: time.Second},
	}
	b, err := MarshalSchedule(good)
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalSchedule(b, 3)
	if err != nil {
		t.Fatalf("round trip: %v\n%s", err, b)
	}
	if !slices.EqualFunc(good, back, func(a, b Fault) bool { return a.String() == b.String() && a.Step == b.Step && a.Dup == b.Dup }) {
		t.Fatalf("round trip changed the schedule:\n%s\n%s", good, back)
	}
	for _, want := range []string{"step=-1s", "latency=1ms+2ns", "dup=0.200", "enospc n1", "read-eio n2", "hang n3", "link n1->n3"} {
		if !strings.Contains(good.String(), want) {
			t.Errorf("schedule text lacks %q:\n%s", want, good)
		}
	}
	bad := []Fault{
		{Kind: FaultLink, Node: 1, Peer: 1, Dur: 1},
		{Kind: FaultLink, Node: 1, Peer: 2, Dup: 1.5},
		{Kind: FaultLink, Node: 1, Peer: 2, Latency: -1},
		{Kind: FaultClockStep, Node: 1, Step: 2 * time.Minute},
		{Kind: FaultClockStep, Node: 4, Step: time.Second},
		{Kind: FaultHang, Node: 0, Dur: 1},
		{Kind: FaultNoSpace, Node: 1, Count: -1},
	}
	for _, f := range bad {
		if err := f.Validate(3); err == nil {
			t.Errorf("%s validated", f)
		}
	}
}
