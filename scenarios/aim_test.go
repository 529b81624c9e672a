package scenarios

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"walraft/core/node"
	"walraft/sim"
)

// smallRun runs a quiet 3-node cluster (calm scenario, seed 3) for 3 s
// with the given schedule, keeping the whole trace.
func smallRun(t *testing.T, s Schedule, tweak func(o *Options)) *Result {
	t.Helper()
	sc, err := Lookup("calm")
	if err != nil {
		t.Fatal(err)
	}
	o := sc.Draw(3)
	o.Knobs = Knobs{}
	o.SafetyDuration = 3 * time.Second
	o.Producers, o.Consumers = 3, 1
	if tweak != nil {
		tweak(&o)
	}
	s.Sort()
	res, err := Run(o, RunConfig{Schedule: s, UseSchedule: true, RecordTrace: true})
	if err != nil {
		t.Fatalf("run: %v\nschedule:\n%s", err, s)
	}
	if !res.OK() {
		t.Fatalf("the correct system failed %v:\n%s\nschedule:\n%s", res.Invariants(), res.Report.String(), s)
	}
	return res
}

// hits returns the "fault.target" events of a run: whom each aimed fault
// hit (A=0: nobody).
func hits(tr []sim.TraceEvent) []sim.TraceEvent {
	var out []sim.TraceEvent
	for _, e := range tr {
		if e.Kind == "fault.target" {
			out = append(out, e)
		}
	}
	return out
}

// roleAt is node id's Raft role (raft.role's A) after the events before
// index i of the trace (-1: never traced).
func roleAt(tr []sim.TraceEvent, i int, id uint64) int64 {
	r := int64(-1)
	for _, e := range tr[:i] {
		if e.Kind == "raft.role" && uint64(e.Node) == id {
			r = e.A
		}
		if (e.Kind == "proc.crash" || e.Kind == "proc.kill") && uint64(e.Node) == id {
			r = -1
		}
	}
	return r
}

func indexOf(tr []sim.TraceEvent, e sim.TraceEvent) int {
	for i := range tr {
		if tr[i] == e {
			return i
		}
	}
	return -1
}

// TestTargetsResolve: a fault aimed at a role hits the node that had the
// role when it fired, and the trace says whom it hit.
func TestTargetsResolve(t *testing.T) {
	const at = 1500 * time.Millisecond
	leader := int64(node.RoleLeader)
	tests := []struct {
		name  string
		f     Fault
		check func(t *testing.T, tr []sim.TraceEvent, hit []sim.TraceEvent)
	}{
		{"crash leader", Fault{Kind: FaultCrash, Target: TargetLeader, Dur: 200 * time.Millisecond},
			func(t *testing.T, tr, hit []sim.TraceEvent) {
				if len(hit) != 1 || roleAt(tr, indexOf(tr, hit[0]), uint64(hit[0].A)) != leader {
					t.Fatalf("hit %v, want the one leader", hit)
				}
			}},
		{"pause follower", Fault{Kind: FaultPause, Target: TargetFollower, Dur: 200 * time.Millisecond},
			func(t *testing.T, tr, hit []sim.TraceEvent) {
				if len(hit) != 1 || hit[0].A == 0 || roleAt(tr, indexOf(tr, hit[0]), uint64(hit[0].A)) == leader {
					t.Fatalf("hit %v, want one follower", hit)
				}
			}},
		{"stall most caught up", Fault{Kind: FaultStall, Target: TargetMostCaughtUp, Dur: 100 * time.Millisecond},
			func(t *testing.T, tr, hit []sim.TraceEvent) {
				if len(hit) != 1 || hit[0].A == 0 || roleAt(tr, indexOf(tr, hit[0]), uint64(hit[0].A)) == leader {
					t.Fatalf("hit %v, want one follower", hit)
				}
			}},
		{"isolate least caught up", Fault{Kind: FaultIsolate, Target: TargetLeastCaughtUp},
			func(t *testing.T, tr, hit []sim.TraceEvent) {
				if len(hit) != 1 || hit[0].A == 0 || roleAt(tr, indexOf(tr, hit[0]), uint64(hit[0].A)) == leader {
					t.Fatalf("hit %v, want one follower", hit)
				}
			}},
		{"crash last voter", Fault{Kind: FaultCrash, Target: TargetLastVoter, Dur: 200 * time.Millisecond},
			func(t *testing.T, tr, hit []sim.TraceEvent) {
				var voter int64
				for _, e := range tr[:indexOf(tr, hit[0])] {
					if e.Kind == "raft.vote" {
						voter = int64(e.Node)
					}
				}
				if len(hit) != 1 || voter == 0 || hit[0].A != voter {
					t.Fatalf("hit %v, the last vote grant came from n%d", hit, voter)
				}
			}},
		{"partition minority", Fault{Kind: FaultPartition, Target: TargetMinority},
			func(t *testing.T, tr, hit []sim.TraceEvent) {
				if len(hit) != 1 || roleAt(tr, indexOf(tr, hit[0]), uint64(hit[0].A)) != leader {
					t.Fatalf("hit %v, want the minority {leader} of 3", hit)
				}
			}},
		{"crash majority", Fault{Kind: FaultCrash, Target: TargetMajority, Dur: 100 * time.Millisecond},
			func(t *testing.T, tr, hit []sim.TraceEvent) {
				if len(hit) != 2 {
					t.Fatalf("hit %v, want 2 of 3", hit)
				}
				for _, h := range hit {
					if roleAt(tr, indexOf(tr, h), uint64(h.A)) == leader {
						t.Fatalf("hit %v: the majority holds the leader (the minority does)", hit)
					}
				}
			}},
		{"transfer to follower", Fault{Kind: FaultTransferLeader, Target: TargetFollower},
			func(t *testing.T, tr, hit []sim.TraceEvent) {
				if len(hit) != 1 || hit[0].A == 0 {
					t.Fatalf("hit %v", hit)
				}
				to := hit[0].A
				i := indexOf(tr, hit[0])
				for _, e := range tr[i:] {
					if e.Kind == "raft.role" && e.A == leader {
						if int64(e.Node) != to {
							t.Fatalf("n%d led after the transfer to n%d", e.Node, to)
						}
						return
					}
				}
				t.Fatalf("n%d never became leader after the transfer", to)
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			f.At = at
			s := Schedule{f}
			if f.Kind == FaultIsolate || f.Kind == FaultPartition {
				s = append(s, Fault{At: at + 500*time.Millisecond, Kind: FaultHeal})
			}
			res := smallRun(t, s, func(o *Options) {
				if f.Kind == FaultTransferLeader {
					o.Producers = 0 // nothing queued: the leader accepts the transfer
				}
			})
			hit := hits(res.Trace)
			if len(hit) == 0 {
				t.Fatalf("no fault.target event")
			}
			for _, h := range hit {
				if h.At != at {
					t.Fatalf("fault.target at %v, want %v", h.At, at)
				}
			}
			tc.check(t, res.Trace, hit)
		})
	}
}

// TestTargetPreviousLeader: after a leadership transfer, previous-leader
// names the deposed leader, and a transfer aimed at it hands leadership
// back.
func TestTargetPreviousLeader(t *testing.T) {
	s := Schedule{
		{At: time.Second, Kind: FaultTransferLeader, Target: TargetFollower},
		{At: 2 * time.Second, Kind: FaultTransferLeader, Target: TargetPreviousLeader},
	}
	res := smallRun(t, s, func(o *Options) { o.Producers = 0 })
	hit := hits(res.Trace)
	if len(hit) != 2 || hit[0].A == 0 || hit[1].A == 0 {
		t.Fatalf("hits %v, want two", hit)
	}
	var first int64 // the leader when the first transfer fired
	for _, e := range res.Trace[:indexOf(res.Trace, hit[0])] {
		if e.Kind == "raft.role" && e.A == int64(node.RoleLeader) {
			first = int64(e.Node)
		}
	}
	if first == 0 || hit[1].A != first {
		t.Fatalf("previous-leader hit n%d, want n%d (the leader before the first transfer to n%d)", hit[1].A, first, hit[0].A)
	}
	var next int64 // the first leader after the transfer back
	for _, e := range res.Trace[indexOf(res.Trace, hit[1]):] {
		if e.Kind == "raft.role" && e.A == int64(node.RoleLeader) {
			next = int64(e.Node)
			break
		}
	}
	if next != first {
		t.Fatalf("n%d led after the transfer back, want n%d", next, first)
	}
}

// TestTriggersFire: a triggered fault fires on its Nth event (after it is
// armed), after its delay, at the node whose event fired it.
func TestTriggersFire(t *testing.T) {
	tests := []struct {
		name  string
		trig  Trigger
		arm   time.Duration
		extra Schedule
		tweak func(o *Options)
	}{
		{"vote grant", Trigger{On: OnVoteGrant}, 0, nil, nil},
		{"term change of n2", Trigger{On: OnTermChange, Node: 2, Delay: time.Millisecond}, 0, nil, nil},
		{"become leader", Trigger{On: OnBecomeLeader, Delay: 3 * time.Millisecond}, 0, nil, nil},
		{"5th fsync of the leader", Trigger{On: OnFsync, Role: TargetLeader, Nth: 5}, time.Second, nil, nil},
		{"2nd wal write of a follower", Trigger{On: OnWALWrite, Role: TargetFollower, Nth: 2, Delay: 500 * time.Microsecond}, time.Second, nil, nil},
		{"segment rotation", Trigger{On: OnSegment}, 500 * time.Millisecond, nil, func(o *Options) {
			o.Knobs.WALSegmentBytes, o.Knobs.RaftSegmentBytes = 4096, 4096
		}},
		{"restart of n2", Trigger{On: OnRestart, Node: 2, Delay: 2 * time.Millisecond}, 0,
			Schedule{{At: 800 * time.Millisecond, Kind: FaultCrash, Node: 2, Dur: 100 * time.Millisecond}}, nil},
		{"fsync error of n1", Trigger{On: OnFsyncError, Node: 1}, 0,
			Schedule{{At: time.Second, Kind: FaultSyncEIO, Node: 1, Count: 1}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			trig := tc.trig
			s := append(Schedule{{At: tc.arm, Kind: FaultCrash, Target: TargetEventNode, Dur: 50 * time.Millisecond, Trigger: &trig}}, tc.extra...)
			res := smallRun(t, s, tc.tweak)
			tr := res.Trace
			fired := -1
			for i, e := range tr {
				if e.Kind == "fault.trigger" {
					fired = i
					break
				}
			}
			if fired < 0 {
				t.Fatalf("the trigger never fired")
			}
			ev := tr[fired]
			// Count the matching events from arming to the firing one.
			want := traceKinds[trig.On]
			n := 0
			var last sim.TraceEvent
			for _, e := range tr[:fired] {
				if e.At >= tc.arm && e.Kind == want && (trig.Node == 0 || uint64(e.Node) == trig.Node) &&
					(trig.On != OnSegment || segmentRotated(e.Text) || strings.HasSuffix(e.Text, ".seg")) {
					last = e
					if trig.Role == "" && trig.On != OnBecomeLeader && trig.On != OnRestart {
						n++
					}
				}
			}
			if last.Kind != want || last.At != ev.At || last.Node != ev.Node {
				t.Fatalf("trigger fired at %v on n%d, but the last %s event was %v", ev.At, ev.Node, want, last)
			}
			if trig.Role == "" && trig.On != OnBecomeLeader && trig.On != OnRestart && n != max(trig.Nth, 1) {
				t.Fatalf("fired on the %d-th %s event, want the %d-th", n, want, max(trig.Nth, 1))
			}
			hit := hits(tr)
			if len(hit) != 1 || hit[0].A != int64(ev.Node) || hit[0].At != ev.At+trig.Delay {
				t.Fatalf("trigger on n%d at %v (+%v): fault hit %v", ev.Node, ev.At, trig.Delay, hit)
			}
			crashed := false
			for _, e := range tr[indexOf(tr, hit[0]):] {
				// A crash fault is a kill with Options.KillProb.
				if (e.Kind == "proc.crash" || e.Kind == "proc.kill") && e.Node == ev.Node && e.At == hit[0].At {
					crashed = true
				}
			}
			if !crashed {
				t.Fatalf("n%d not crashed at %v", ev.Node, hit[0].At)
			}
		})
	}
}

// TestAimValidate: targets and triggers are checked against their kind and
// the cluster.
func TestAimValidate(t *testing.T) {
	tests := []struct {
		f   Fault
		err string
	}{
		{Fault{Kind: FaultCrash, Target: "king"}, "unknown target"},
		{Fault{Kind: FaultCrash, Target: TargetLeader, Node: 2}, "replaces node"},
		{Fault{Kind: FaultCrash, Target: TargetEventNode}, "needs a trigger"},
		{Fault{Kind: FaultStall, Target: TargetMinority}, "aims only"},
		{Fault{Kind: FaultHeal, Target: TargetLeader}, "not aimed at a node"},
		{Fault{Kind: FaultCrash, Node: 1, Trigger: &Trigger{On: "sneeze"}}, "unknown event"},
		{Fault{Kind: FaultCrash, Node: 1, Trigger: &Trigger{On: OnFsync, Node: 4}}, "not in 1..3"},
		{Fault{Kind: FaultCrash, Node: 1, Trigger: &Trigger{On: OnFsync, Role: TargetMinority}}, "want leader or follower"},
		{Fault{Kind: FaultTransferLeader}, "not in 1..3"},
		{Fault{Kind: FaultCrash, Target: TargetEventNode, Trigger: &Trigger{On: OnRestart}}, ""},
		{Fault{Kind: FaultPartition, Target: TargetMajority}, ""},
		{Fault{Kind: FaultTransferLeader, Target: TargetMostCaughtUp}, ""},
	}
	for _, tc := range tests {
		err := tc.f.Validate(3)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.f, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one containing %q", tc.f, err, tc.err)
		}
	}
}

// TestAimJSONRoundTrip: targets, triggers and knobs survive a schedule and
// a case file round trip; a case file written before they existed (no
// knobs, no target, no trigger) still decodes, to the old defaults.
func TestAimJSONRoundTrip(t *testing.T) {
	s := Schedule{
		{At: time.Second, Kind: FaultCrash, Target: TargetEventNode, Dur: time.Second,
			Trigger: &Trigger{On: OnFsync, Role: TargetLeader, Nth: 7, Delay: 3 * time.Millisecond}},
		{At: 2 * time.Second, Kind: FaultPartition, Target: TargetMinority},
		{At: 3 * time.Second, Kind: FaultTransferLeader, Target: TargetMostCaughtUp, Trigger: &Trigger{On: OnRestart, Node: 2}},
	}
	b, err := MarshalSchedule(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"target": "event-node"`) || !strings.Contains(string(b), `"on": "fsync"`) {
		t.Fatalf("schedule JSON lacks the target or trigger as written:\n%s", b)
	}
	got, err := UnmarshalSchedule(b, 3)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(s, got); d != "" {
		t.Fatalf("schedule round trip (-want +got):\n%s", d)
	}

	sc, _ := Lookup("zombie")
	o := sc.Draw(11)
	o.Knobs = Knobs{WALSegmentBytes: 5000, RaftSegmentBytes: 8192, BatchRecords: 3, Linger: time.Millisecond,
		ElectionTicks: 7, HeartbeatTicks: 2, MaxPendingBatches: 9, MaxQueuedUnits: 40}
	c := &Case{Version: CaseVersion, Scenario: o.Scenario, Seed: o.Seed, Commit: "unknown", TraceHash: FormatTraceHash(1),
		Options: o, Schedule: s, Violations: []CaseViolation{{Invariant: "S1", Detail: "x"}}}
	cb, err := MarshalCase(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeCase(cb)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(c, back); d != "" {
		t.Fatalf("case round trip (-want +got):\n%s", d)
	}

	// An old case file: no knobs, timed faults only.
	old := *c
	old.Options.Knobs = Knobs{}
	old.Schedule = Schedule{{At: time.Second, Kind: FaultCrash, Node: 1, Dur: time.Second}}
	ob, err := MarshalCase(&old)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"Knobs"`, `"target"`, `"trigger"`} {
		if strings.Contains(string(ob), key) {
			t.Fatalf("a case without knobs or aims still writes %s:\n%s", key, ob)
		}
	}
	if _, err := DecodeCase(ob); err != nil {
		t.Fatalf("a case file without knobs or aims: %v", err)
	}

	// A bad knob is a bad case.
	bad := *c
	bad.Options.Knobs.WALSegmentBytes = 100
	if _, err := MarshalCase(&bad); !errors.Is(err, ErrBadCase) || !strings.Contains(err.Error(), "wal_segment_bytes") {
		t.Fatalf("a 100-byte segment: %v", err)
	}
	var raw map[string]any
	if err := json.Unmarshal(cb, &raw); err != nil {
		t.Fatal(err)
	}
}

// TestGeneratedSchedulesAim: generated schedules aim and trigger a share
// of their faults, stay valid, and are the same for the same seed; the
// targeted scenarios write their plans.
func TestGeneratedSchedulesAim(t *testing.T) {
	var aimed, triggered, transfers int
	for _, name := range []string{"default", "five", "zombie", "double-failover", "last-replica", "standalone"} {
		sc, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		for seed := uint64(1); seed <= 20; seed++ {
			o := sc.Draw(seed)
			s := GenerateSchedule(o, sim.NewStreams(seed).Stream("faults"))
			if err := s.Validate(o.Nodes); err != nil {
				t.Fatalf("%s seed %d: %v\n%s", name, seed, err, s)
			}
			if d := cmp.Diff(s, GenerateSchedule(o, sim.NewStreams(seed).Stream("faults"))); d != "" {
				t.Fatalf("%s seed %d: two draws differ:\n%s", name, seed, d)
			}
			for _, f := range s {
				if f.Target != "" {
					aimed++
				}
				if f.Trigger != nil {
					triggered++
				}
				if f.Kind == FaultTransferLeader {
					transfers++
				}
			}
			if err := o.Knobs.validate(o); err != nil {
				t.Fatalf("%s seed %d: drawn knobs invalid: %v", name, seed, err)
			}
		}
	}
	if aimed == 0 || triggered == 0 || transfers == 0 {
		t.Fatalf("aimed %d, triggered %d, transfers %d: want some of each", aimed, triggered, transfers)
	}
}

// TestMinimizeDropsTrigger: a trigger the failure does not need is shrunk
// away (the fault becomes a plain timed fault aimed at the trigger's node).
func TestMinimizeDropsTrigger(t *testing.T) {
	sc, _ := Lookup("calm")
	o := sc.Draw(5)
	s := Schedule{
		{At: time.Second, Kind: FaultCrash, Target: TargetEventNode, Dur: time.Second, Trigger: &Trigger{On: OnRestart, Node: 2}},
		{At: 2 * time.Second, Kind: FaultStall, Node: 1, Dur: time.Second, Trigger: &Trigger{On: OnFsync, Nth: 4}},
	}
	// The failure needs a crash of node 2 (triggered or not) and nothing
	// else.
	oracle := func(o Options, s Schedule) (bool, error) {
		if err := s.Validate(o.Nodes); err != nil {
			t.Fatalf("minimizer produced an invalid schedule: %v", err)
		}
		for _, f := range s {
			if f.Kind == FaultCrash && (f.Node == 2 || (f.Trigger != nil && f.Trigger.Node == 2)) {
				return true, nil
			}
		}
		return false, nil
	}
	m, err := Minimize(o, s, oracle, MinimizeConfig{MaxRuns: 200})
	if err != nil {
		t.Fatal(err)
	}
	want := Schedule{{At: time.Second, Kind: FaultCrash, Node: 2, Dur: time.Second / 512}} // halved down to MinDur
	if d := cmp.Diff(want, m.Schedule); d != "" {
		t.Fatalf("minimized schedule (-want +got):\n%s", d)
	}
}

// TestCoverageJudged: coverage is judged only from CoverageMinRuns runs of
// every scenario, and then names each required probe never reached.
func TestCoverageJudged(t *testing.T) {
	runs := map[string]int{}
	for _, s := range catalogue {
		runs[s.Name] = CoverageMinRuns
	}
	probes := map[string]int{}
	for _, p := range probeRegistry {
		if p.Required {
			probes[p.Name] = 1
		}
	}
	if _, judged, missing := Coverage(runs, probes); !judged || len(missing) != 0 {
		t.Fatalf("all required reached: judged %v missing %v", judged, missing)
	}
	delete(probes, "segment-rotated")
	rows, judged, missing := Coverage(runs, probes)
	if !judged || len(missing) != 1 || missing[0] != "segment-rotated" {
		t.Fatalf("judged %v missing %v, want [segment-rotated]", judged, missing)
	}
	if len(rows) < len(probeRegistry) {
		t.Fatalf("%d rows for %d probes", len(rows), len(probeRegistry))
	}
	if line := CoverageFailure(missing, 1400); !strings.Contains(line, "segment-rotated") {
		t.Fatalf("failure line %q does not name the probe", line)
	}
	runs["zombie"] = CoverageMinRuns - 1
	if _, judged, missing := Coverage(runs, probes); judged || len(missing) != 0 {
		t.Fatalf("199 runs of zombie: judged %v missing %v, want not judged", judged, missing)
	}
}

// TestProbeRegistry: every probe has a doc line and a unique name, and an
// unregistered probe is a harness bug (it panics).
func TestProbeRegistry(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range Probes() {
		if p.Doc == "" || seen[p.Name] {
			t.Errorf("probe %q: empty doc or listed twice", p.Name)
		}
		seen[p.Name] = true
	}
	defer func() {
		if recover() == nil {
			t.Fatal("an unregistered probe did not panic")
		}
	}()
	(&harness{probes: map[string]int{}}).probe("no-such-probe")
}

// TestZombiePlanAimsAtOneFollower: every round of the zombie plan drops the
// leader's messages to one follower on a WAL write of the leader and
// deposes that leader on the same write a little later (so the batch
// reaches one follower and does not commit), then crashes the next leader
// as it takes over.
func TestZombiePlanAimsAtOneFollower(t *testing.T) {
	sc, _ := Lookup("zombie")
	for seed := uint64(1); seed <= 30; seed++ {
		o := sc.Draw(seed)
		s := zombiePlan(o, sim.NewStreams(seed).Stream("aim"))
		if err := s.Validate(o.Nodes); err != nil {
			t.Fatalf("seed %d: %v\n%s", seed, err, s)
		}
		rounds := 0
		for i, f := range s {
			if f.Kind != FaultLink {
				continue
			}
			rounds++
			if f.Prob != 1 || f.Target != TargetLeader || f.Trigger == nil || f.Trigger.On != OnWALWrite || f.Trigger.Role != TargetLeader {
				t.Fatalf("seed %d: the link fault does not drop the leader's messages on its WAL write: %s", seed, f)
			}
			var depose, crash *Fault
			for j := range s {
				g := &s[j]
				if g.At != f.At || j == i || g.Trigger == nil {
					continue
				}
				switch {
				case g.Trigger.On == OnWALWrite && g.Trigger.Nth == f.Trigger.Nth:
					depose = g
				case g.Kind == FaultCrash && g.Trigger.On == OnBecomeLeader && g.Target == TargetEventNode:
					crash = g
				}
			}
			if depose == nil || crash == nil {
				t.Fatalf("seed %d: round at %v lacks the deposition or the crash of the next leader:\n%s", seed, f.At, s)
			}
			if depose.Trigger.Delay <= 0 || (depose.Kind != FaultIsolate && depose.Kind != FaultPartition && depose.Kind != FaultPause) {
				t.Fatalf("seed %d: the deposition %s is not a cut or pause after the write", seed, depose)
			}
		}
		if rounds == 0 {
			t.Fatalf("seed %d: no round in a %v safety phase:\n%s", seed, o.SafetyDuration, s)
		}
	}
}

// TestBootSyncFaultMeetsRecovery: a failed-sync fault triggered on boot
// with no delay applies inside the boot event, so it fails the node's
// first recovery syncs (which the disk draws as they are issued): the node
// must stop before it starts, and come back on its next restart. Fired an
// event later, as other faults are, it would miss every recovery sync.
func TestBootSyncFaultMeetsRecovery(t *testing.T) {
	s := Schedule{
		{At: 800 * time.Millisecond, Kind: FaultKill, Node: 2, Dur: 100 * time.Millisecond},
		{At: 500 * time.Millisecond, Kind: FaultSyncEIO, Target: TargetEventNode, Count: 1, Trigger: &Trigger{On: OnBoot, Node: 2}},
	}
	res := smallRun(t, s, nil)
	var boot, failed, started, restarted = -1, -1, -1, -1
	for i, e := range res.Trace {
		if e.Node != 2 {
			continue
		}
		switch {
		case e.Kind == "proc.boot" && e.A == 2 && boot < 0:
			boot = i
		case e.Kind == "fs.sync.err" && boot >= 0 && failed < 0:
			failed = i
		case e.Kind == "node.start" && boot >= 0 && started < 0:
			started = i
		case e.Kind == "proc.boot" && e.A == 3 && restarted < 0:
			restarted = i
		}
	}
	if boot < 0 || failed < 0 {
		t.Fatalf("n2 booted at trace index %d, its first failed sync at %d: the fault missed the boot", boot, failed)
	}
	if started >= 0 && started < failed {
		t.Fatalf("n2 started (index %d) before its recovery sync failed (index %d)", started, failed)
	}
	if restarted < 0 || (started >= 0 && started < restarted) {
		t.Fatalf("n2 did not stop and boot again after its failed recovery sync (start %d, next boot %d)", started, restarted)
	}
}

// TestSyncEIOAimedAtOneLog: sync-eio with a log fails that log's next
// fsync and no other: the WAL's (the WAL fails, then the node) or the Raft
// log's (the node fails, no WAL does).
func TestSyncEIOAimedAtOneLog(t *testing.T) {
	for _, tc := range []struct {
		log     string
		walFail bool
	}{{CorruptWAL, true}, {CorruptRaft, false}} {
		t.Run(tc.log, func(t *testing.T) {
			res := smallRun(t, Schedule{{At: time.Second, Kind: FaultSyncEIO, Node: 2, Log: tc.log, Count: 1}}, nil)
			count := map[string]int{}
			for _, e := range res.Trace {
				if e.Node == 2 {
					count[e.Kind]++
				}
			}
			if count["fs.sync.err"] != 1 || count["node.fail"] == 0 || (count["wal.fail"] > 0) != tc.walFail {
				t.Fatalf("n2: %d failed fsyncs, %d node.fail, %d wal.fail; want 1, >0 and WAL failed %v", count["fs.sync.err"], count["node.fail"], count["wal.fail"], tc.walFail)
			}
		})
	}
}

// TestTargetLastHit: last-hit names the node the previous aimed fault hit,
// even when its role target would resolve elsewhere by then.
func TestTargetLastHit(t *testing.T) {
	s := Schedule{
		{At: time.Second, Kind: FaultStall, Target: TargetFollower, Dur: 50 * time.Millisecond},
		{At: 1100 * time.Millisecond, Kind: FaultPause, Target: TargetLastHit, Dur: 50 * time.Millisecond},
	}
	res := smallRun(t, s, nil)
	hit := hits(res.Trace)
	if len(hit) != 2 || hit[0].A == 0 || hit[1].A != hit[0].A {
		t.Fatalf("hits %v, want the same node twice", hit)
	}
}
