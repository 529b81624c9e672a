package scenarios

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"walraft/sim"
)

// Determinism (DESIGN.md section 4): a seed must replay exactly, or no
// failing case is worth anything. For every scenario of the catalogue, a
// few seeds run twice with the full trace recorded: the trace hashes, the
// traces event by event, and everything the run produced must be equal;
// a third run keeps only the hash (what campaigns do) and must agree too,
// so recording the trace cannot change the run. Different seeds must give
// different traces, or the seed would not reach the simulation.
//
// Without WALRAFT_LONG (long_test.go) the runs are shortened as the golden
// runs are: the safety phase is capped at goldenSafety (3 s of the 3-10 s
// drawn, with the faults drawn for those 3 s; the liveness phase after it
// is whole), which keeps every scenario's fault mix, restarts, leader
// changes and convergence in the check at about a third of the cost. With
// WALRAFT_LONG the runs are the scenarios' full draws, as campaigns run
// them (CI runs both).

// determinismSeeds are the seeds each scenario replays.
var determinismSeeds = []uint64{1, 2}

// determinismOptions returns the options TestDeterminism runs for seed:
// the scenario's draw, its safety phase capped at goldenSafety unless
// WALRAFT_LONG is set.
func determinismOptions(sc Scenario, seed uint64) Options {
	o := sc.Draw(seed)
	if !long() {
		o.SafetyDuration = min(o.SafetyDuration, goldenSafety)
	}
	return o
}

// divergenceContext is how many events before the first divergence a
// failure shows.
const divergenceContext = 8

// resultCmp compares two results of the same run: everything but the wall
// time and the trace (compared separately, event by event).
var resultCmp = []cmp.Option{
	cmpopts.IgnoreFields(Result{}, "WallTime", "Trace"),
	cmpopts.EquateEmpty(),
	cmpopts.EquateErrors(),
}

func TestDeterminism(t *testing.T) {
	for _, sc := range Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			hashes := map[uint64]uint64{}
			for _, seed := range determinismSeeds {
				o := determinismOptions(sc, seed)
				a := mustRun(t, o, RunConfig{RecordTrace: true})
				b := mustRun(t, o, RunConfig{RecordTrace: true})
				if msg := sameRun(a, b); msg != "" {
					t.Fatalf("scenario %s seed %d: two runs of the same seed differ:\n%s", sc.Name, seed, msg)
				}
				c := mustRun(t, o, RunConfig{})
				if c.TraceHash != a.TraceHash || c.Events != a.Events {
					t.Fatalf("scenario %s seed %d: recording the trace changed the run: hash %016x (%d events) recorded, %016x (%d events) hash-only",
						sc.Name, seed, a.TraceHash, a.Events, c.TraceHash, c.Events)
				}
				if prev, dup := hashes[a.TraceHash]; dup {
					t.Fatalf("scenario %s: seeds %d and %d give the same trace hash %016x", sc.Name, prev, seed, a.TraceHash)
				}
				hashes[a.TraceHash] = seed
				t.Logf("seed %d: hash %016x, %d events, %d trace events, sim %v, wall %v, violated %v",
					seed, a.TraceHash, a.Events, len(a.Trace), a.SimTime, a.WallTime, a.Invariants())
			}
		})
	}
}

// TestDeterminismVariant: a known-bad variant replays exactly too (a
// variant's failing case must replay to be of any use).
func TestDeterminismVariant(t *testing.T) {
	v := Variants()[0]
	sc, err := Lookup(v.Scenario)
	if err != nil {
		t.Fatal(err)
	}
	o := sc.Draw(1)
	a := mustRun(t, o, RunConfig{Variant: v.Name, RecordTrace: true})
	b := mustRun(t, o, RunConfig{Variant: v.Name, RecordTrace: true})
	if msg := sameRun(a, b); msg != "" {
		t.Fatalf("variant %s seed 1: two runs differ:\n%s", v.Name, msg)
	}
}

// TestSameRunDetectsDivergence: the comparison the determinism tests rely
// on fires on a changed event, a missing event and a changed result.
func TestSameRunDetectsDivergence(t *testing.T) {
	ev := func(i int64) sim.TraceEvent { return sim.TraceEvent{At: 1000 * 1000, Node: 1, Kind: "k", A: i} }
	base := func() *Result {
		return &Result{TraceHash: 7, Events: 3, Trace: []sim.TraceEvent{ev(1), ev(2), ev(3)}, Probes: map[string]int{"crash": 1}}
	}
	if msg := sameRun(base(), base()); msg != "" {
		t.Fatalf("equal runs reported different: %s", msg)
	}
	changed := base()
	changed.Trace[1].B = 9
	cut := base()
	cut.Trace = cut.Trace[:2]
	probes := base()
	probes.Probes["crash"] = 2
	hash := base()
	hash.TraceHash = 8
	for name, r := range map[string]*Result{"changed event": changed, "missing event": cut, "probes": probes, "hash": hash} {
		if msg := sameRun(base(), r); msg == "" {
			t.Errorf("%s: not detected", name)
		}
	}
	if msg := sameRun(base(), changed); !strings.Contains(msg, "event 1") {
		t.Errorf("divergence report does not name event 1:\n%s", msg)
	}
}

// mustRun runs o and fails the test if the run could not start or recorded
// nothing.
func mustRun(t testing.TB, o Options, rc RunConfig) *Result {
	t.Helper()
	res, err := Run(o, rc)
	if err != nil {
		t.Fatalf("run %s seed %d: %v", o.Scenario, o.Seed, err)
	}
	if res.Events == 0 || res.TraceHash == 0 {
		t.Fatalf("run %s seed %d: no events (%d) or no trace hash (%016x)", o.Scenario, o.Seed, res.Events, res.TraceHash)
	}
	if rc.RecordTrace && len(res.Trace) == 0 {
		t.Fatalf("run %s seed %d: RecordTrace kept no trace", o.Scenario, o.Seed)
	}
	return res
}

// sameRun returns "" when a and b are the same run, or a description of
// the first difference: the first divergent trace event (with the events
// before it), the hashes, or a go-cmp diff of the results.
func sameRun(a, b *Result) string {
	var msg strings.Builder
	if i, diverged := sim.FirstDivergence(a.Trace, b.Trace); diverged {
		fmt.Fprintf(&msg, "first divergence at event %d (of %d and %d):\n", i, len(a.Trace), len(b.Trace))
		for j := max(0, i-divergenceContext); j < i; j++ {
			fmt.Fprintf(&msg, "    %s\n", a.Trace[j])
		}
		show := func(name string, tr []sim.TraceEvent) {
			if i < len(tr) {
				fmt.Fprintf(&msg, "  %s %s\n", name, tr[i])
			} else {
				fmt.Fprintf(&msg, "  %s (trace ended)\n", name)
			}
		}
		show("first: ", a.Trace)
		show("second:", b.Trace)
	}
	if a.TraceHash != b.TraceHash {
		fmt.Fprintf(&msg, "trace hashes differ: %016x vs %016x\n", a.TraceHash, b.TraceHash)
	}
	// reflect.DeepEqual first: a replay must be identical down to nil
	// versus empty, and go-cmp over a whole history is slow (it is only
	// for showing the difference).
	ca, cb := *a, *b
	ca.WallTime, cb.WallTime, ca.Trace, cb.Trace = 0, 0, nil, nil
	if !reflect.DeepEqual(ca, cb) {
		d := cmp.Diff(a, b, resultCmp...)
		if d == "" {
			d = "(only nil versus empty values differ)\n"
		}
		fmt.Fprintf(&msg, "results differ (-first +second):\n%s", d)
	}
	return msg.String()
}
