package scenarios

import (
	"slices"
	"strings"
	"testing"
	"time"

	"walraft/sim"
)

// sweepOptions is a short calm run for sweep tests: seed 1 of the calm
// scenario with a 1 s safety phase (about 3,300 disk events on node 1).
func sweepOptions(t *testing.T) Options {
	t.Helper()
	sc, err := Lookup("calm")
	if err != nil {
		t.Fatal(err)
	}
	o := sc.Draw(1)
	o.SafetyDuration = time.Second
	// Enough load that node 1 has a few thousand disk events in a second,
	// whatever the seed's drawn workload.
	o.Producers = max(o.Producers, 16)
	o.ThinkMax = min(o.ThinkMax, 4*time.Millisecond)
	return o
}

// sweepEvery thins the test sweeps to 4 points of node 1 (events 1, 1001,
// 2001, 3001: a create inside the first boot and three of the steady
// state), a few seconds in all.
const sweepEvery = 1000

// TestCrashPointSweepCorrect: on the correct system a sweep is clean, it
// tries the points the plan says, and each point's crash fired at the event
// the dry run saw, of the kind it saw.
//
// Each point is tried twice, as a power loss and as a process kill with
// the machine up (SweepPlan.Kill).
func TestCrashPointSweepCorrect(t *testing.T) {
	o := sweepOptions(t)
	plan := SweepPlan{Nodes: []uint64{1}, Every: sweepEvery, Kill: true}
	dry, pts, err := Sweep(o, RunConfig{}, plan, DefaultCrashRestart)
	if err != nil {
		t.Fatal(err)
	}
	if !dry.OK() {
		t.Fatalf("the dry run fails: %v\n%s", dry.Invariants(), dry.Report.String())
	}
	if len(dry.DiskEvents) != o.Nodes {
		t.Fatalf("dry run recorded disk events of %d nodes, want %d", len(dry.DiskEvents), o.Nodes)
	}
	n1 := len(dry.DiskEvents[0])
	want := 2 * ((n1 + sweepEvery - 1) / sweepEvery)
	if n1 < 2*sweepEvery || len(pts) != want {
		t.Fatalf("node 1 had %d disk events; the sweep tried %d points, want %d", n1, len(pts), want)
	}
	if dry.DiskEvents[0][0] != sim.DiskEventCreate {
		t.Errorf("node 1's first disk event is %s, want create (its first boot)", dry.DiskEvents[0][0])
	}
	for i, p := range pts {
		if p.Point.Node != 1 || p.Point.Event != 1+i/2*sweepEvery || p.Point.Kill != (i%2 == 1) || p.Point.Kind != dry.DiskEvents[0][p.Point.Event-1] {
			t.Errorf("point %d is %s", i, p.Point)
		}
		r := p.Result
		if !r.OK() {
			t.Errorf("point %s: the correct system fails: %v\n%s", p.Point, r.Invariants(), r.Report.String())
		}
		if r.Probes["crash-at-disk-event"] != 1 || r.Probes["crash-at-"+p.Point.Kind.String()] != 1 {
			t.Errorf("point %s: the crash did not fire once at a %s event: probes %v", p.Point, p.Point.Kind, r.Probes)
		}
		if kills := r.Probes["kill-at-disk-event"]; kills != map[bool]int{false: 0, true: 1}[p.Point.Kill] {
			t.Errorf("point %s: %d kills at the disk event", p.Point, kills)
		}
	}
	t.Logf("node 1: %d disk events, %d points tried, all clean", n1, len(pts))
}

// TestCrashPointSweepCatchesRecoveryBug: the planted recovery bug
// (raft-log-drops-last: Raft log recovery replays every record but the
// last) is caught by the same sweep that passes the correct system, and a
// failing point is a case file that replays to the same run and verdict.
func TestCrashPointSweepCatchesRecoveryBug(t *testing.T) {
	o := sweepOptions(t)
	plan := SweepPlan{Nodes: []uint64{1}, Every: sweepEvery}
	v, err := LookupVariant("raft-log-drops-last")
	if err != nil {
		t.Fatal(err)
	}
	o.Variant = v.Name
	dry, pts, err := Sweep(o, RunConfig{Variant: v.Name}, plan, DefaultCrashRestart)
	if err != nil {
		t.Fatal(err)
	}
	if !dry.OK() {
		t.Fatalf("the bug shows without a crash (%v): the sweep is not what catches it", dry.Invariants())
	}
	var failed []SweepResult
	for _, p := range pts {
		if !p.Result.OK() {
			failed = append(failed, p)
		}
	}
	if len(failed) == 0 {
		t.Fatalf("none of %d crash points caught %s", len(pts), v.Name)
	}
	f := failed[0]
	t.Logf("%d of %d points caught %s; first %s: %v", len(failed), len(pts), v.Name, f.Point, f.Result.Invariants())
	if !slices.ContainsFunc(f.Result.Invariants(), func(inv string) bool {
		return slices.Contains(variantCatchers[v.Name], inv)
	}) {
		t.Errorf("point %s caught the bug by %v only, none of %v", f.Point, f.Result.Invariants(), variantCatchers[v.Name])
	}

	// The failing point as a case file: encoded, decoded, replayed.
	c := &Case{Version: CaseVersion, Scenario: o.Scenario, Seed: o.Seed, Variant: v.Name, Commit: "unknown",
		TraceHash: FormatTraceHash(f.Result.TraceHash), Options: f.Result.Options, Schedule: f.Result.Schedule}
	for _, viol := range f.Result.Violations {
		c.Violations = append(c.Violations, CaseViolation{Invariant: viol.Invariant, Detail: viol.Detail, Time: viol.Time})
	}
	b, err := MarshalCase(c)
	if err != nil {
		t.Fatalf("encode the point's case: %v", err)
	}
	if !strings.Contains(string(b), `"kind": "crash-at-disk-event"`) {
		t.Fatalf("the case's schedule does not hold the crash point:\n%s", b)
	}
	back, err := DecodeCase(b)
	if err != nil {
		t.Fatalf("decode the point's case: %v", err)
	}
	again := mustRun(t, back.Options, RunConfig{Variant: back.Variant, Schedule: back.Schedule, UseSchedule: true})
	if again.TraceHash != f.Result.TraceHash || !slices.Equal(again.Invariants(), f.Result.Invariants()) {
		t.Errorf("replayed case: hash %016x %v, want %016x %v", again.TraceHash, again.Invariants(), f.Result.TraceHash, f.Result.Invariants())
	}
	// And the correct system passes that very case.
	if ok := mustRun(t, back.Options, RunConfig{Schedule: back.Schedule, UseSchedule: true}); !ok.OK() {
		t.Errorf("the correct system fails the point too (%v): the catch is not evidence", ok.Invariants())
	}
}

// TestCrashPointArmedButNotFired: a crash point that never fires leaves the
// run exactly the dry run (the hook draws nothing, traces nothing); and a
// crash point inside the first boot (node 1's create) boots the node again
// after the restart delay.
func TestCrashPointArmedButNotFired(t *testing.T) {
	o := sweepOptions(t)
	dry := mustRun(t, o, RunConfig{RecordDiskEvents: true})
	never := CrashPoint{Node: 2, Event: len(dry.DiskEvents[1]) + 1_000_000}
	res := mustRun(t, o, RunConfig{Schedule: never.Schedule(dry.Schedule, DefaultCrashRestart), UseSchedule: true})
	if res.TraceHash != dry.TraceHash || res.Probes["crash-at-disk-event"] != 0 {
		t.Errorf("an armed point that never fires changed the run: hash %016x, dry %016x; probes %v", res.TraceHash, dry.TraceHash, res.Probes)
	}
	first := CrashPoint{Node: 1, Event: 1, Kind: sim.DiskEventCreate}
	res = mustRun(t, o, RunConfig{Schedule: first.Schedule(nil, DefaultCrashRestart), UseSchedule: true, RecordTrace: true})
	boots := 0
	for _, e := range res.Trace {
		if e.Node == 1 && e.Kind == "proc.boot" {
			boots++
		}
	}
	if !res.OK() || res.Probes["crash-at-create"] != 1 || boots != 2 {
		t.Errorf("crash inside node 1's first boot: ok %v %v, probes %v, %d boots (want ok, crash-at-create, 2 boots)",
			res.OK(), res.Invariants(), res.Probes, boots)
	}
}

// TestCrashPointFaultValidate: the fault needs a node of the cluster and an
// event number of at least 1; it round-trips through schedule JSON.
func TestCrashPointFaultValidate(t *testing.T) {
	tests := []struct {
		f  Fault
		ok bool
	}{
		{Fault{Kind: FaultCrashAtDiskEvent, Node: 1, Count: 1}, true},
		{Fault{Kind: FaultTornCrashAtDiskEvent, Node: 3, Count: 99, Prob: 0.25, Dur: time.Millisecond}, true},
		{Fault{Kind: FaultKillAtDiskEvent, Node: 2, Count: 7, Dur: time.Millisecond}, true},
		{Fault{Kind: FaultKillAtDiskEvent, Node: 2, Count: 0}, false},
		{Fault{Kind: FaultCrashAtDiskEvent, Node: 4, Count: 1}, false},
		{Fault{Kind: FaultCrashAtDiskEvent, Node: 0, Count: 1}, false},
		{Fault{Kind: FaultCrashAtDiskEvent, Node: 1, Count: 0}, false},
		{Fault{Kind: FaultTornCrashAtDiskEvent, Node: 1, Count: 5, Prob: 1.5}, false},
	}
	for _, tt := range tests {
		err := tt.f.Validate(3)
		if (err == nil) != tt.ok {
			t.Errorf("%s: Validate = %v, want ok %v", tt.f, err, tt.ok)
		}
		if !tt.ok {
			continue
		}
		b, err := MarshalSchedule(Schedule{tt.f})
		if err != nil {
			t.Fatal(err)
		}
		back, err := UnmarshalSchedule(b, 3)
		if err != nil || len(back) != 1 || back[0].String() != tt.f.String() {
			t.Errorf("%s: round trip gave %v, %v", tt.f, back, err)
		}
	}
}

// TestSweepPlanPoints: which points a plan picks from a dry run's events.
func TestSweepPlanPoints(t *testing.T) {
	const (
		w  = sim.DiskEventWrite
		s  = sim.DiskEventSync
		d  = sim.DiskEventSyncDone
		cr = sim.DiskEventCreate
	)
	events := [][]sim.DiskEvent{{cr, w, s, d, w, s, d}, {cr, w, s}}
	tests := []struct {
		name string
		plan SweepPlan
		want []string
	}{
		{"every event of every node", SweepPlan{}, []string{"n1 #1 create", "n1 #2 write", "n1 #3 sync", "n1 #4 sync.done",
			"n1 #5 write", "n1 #6 sync", "n1 #7 sync.done", "n2 #1 create", "n2 #2 write", "n2 #3 sync"}},
		{"one node, every 3rd", SweepPlan{Nodes: []uint64{1}, Every: 3}, []string{"n1 #1 create", "n1 #4 sync.done", "n1 #7 sync.done"}},
		{"torn too", SweepPlan{Nodes: []uint64{2}, Every: 2, Torn: true}, []string{"n2 #1 create", "n2 #1 create torn", "n2 #3 sync", "n2 #3 sync torn"}},
		{"kill too", SweepPlan{Nodes: []uint64{2}, Every: 2, Torn: true, Kill: true}, []string{"n2 #1 create", "n2 #1 create torn", "n2 #1 create kill",
			"n2 #3 sync", "n2 #3 sync torn", "n2 #3 sync kill"}},
		{"kinds, every counts among them", SweepPlan{Kinds: []sim.DiskEvent{w, d}, Every: 2}, []string{"n1 #2 write", "n1 #5 write", "n2 #2 write"}},
		{"a node without events", SweepPlan{Nodes: []uint64{3}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, p := range tt.plan.Points(events) {
				got = append(got, p.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("points %q, want %q", got, tt.want)
			}
		})
	}
	if c := (SweepPlan{Kinds: []sim.DiskEvent{w}}).CountDiskEvents(events); c[w] != 3 || len(c) != 1 {
		t.Errorf("CountDiskEvents with kinds [write] = %v, want write 3", c)
	}
}
