package scenarios

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"walraft/core/node"
)

// The rapid properties: rapid draws the cluster size, the workload, the
// fault schedule and the simulation seed, runs the cluster, and checks that
// no invariant broke. Because the schedule is drawn value by value (not
// generated from the seed), a failure shrinks to a minimal fault schedule:
// rapid drops faults, shortens them, moves them earlier, and shrinks the
// workload, then saves the minimal case as a fail file under
// testdata/rapid/<TestName>/ that every later `go test` replays first.
//
// `go test ./scenarios` runs a few checks per property (propChecks);
// RAPID_CHECKS=N or -rapid.checks=N runs N.

// propChecks is how many cases each property runs when neither
// -rapid.checks nor RAPID_CHECKS asks for a number: rapid's default (100
// full cluster simulations per property) would make a plain `go test`
// take minutes.
const propChecks = 20

// setDefaultChecks lowers rapid's check count to n for the rest of the test
// unless the user chose a count. It sets the flag's value directly (not
// through flag.Set), so the flag still counts as "not given" for the next
// test that asks.
func setDefaultChecks(t *testing.T, n int) {
	t.Helper()
	if _, ok := os.LookupEnv("RAPID_CHECKS"); ok {
		return
	}
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "rapid.checks" })
	f := flag.Lookup("rapid.checks")
	if given || f == nil {
		return
	}
	old := f.Value.String()
	if err := f.Value.Set(strconv.Itoa(n)); err != nil {
		t.Fatalf("set rapid.checks: %v", err)
	}
	t.Cleanup(func() { _ = f.Value.Set(old) })
}

// propKinds lists the in-budget fault kinds rapid may draw for an n-node
// cluster, simplest first: rapid shrinks a choice toward the start of the
// list, so a shrunk schedule prefers plain crashes and stalls. Latent
// corruption is beyond the budget and never drawn here.
func propKinds(n int) []FaultKind {
	k := []FaultKind{FaultCrash, FaultStall, FaultPause, FaultTornCrash, FaultCrashAll, FaultSyncEIO, FaultWriteEIO, FaultSkew}
	if n > 1 {
		k = append(k, FaultIsolate, FaultPartition, FaultOneWay, FaultDrop, FaultDup)
	}
	if n > 2 {
		k = append(k, FaultBridge)
	}
	// The simulator's later faults go last, so shrinking still prefers
	// the plain ones.
	k = append(k, FaultNoSpace, FaultReadEIO, FaultHang, FaultClockStep)
	if n > 1 {
		k = append(k, FaultLink, FaultTransferLeader)
	}
	return k
}

// msDur draws a duration in whole milliseconds in [lo, hi]; it shrinks
// toward lo.
func msDur(t *rapid.T, lo, hi time.Duration, label string) time.Duration {
	return time.Duration(rapid.IntRange(int(lo/time.Millisecond), int(hi/time.Millisecond)).Draw(t, label)) * time.Millisecond
}

// faultGen draws one fault of the given kinds for nodes 1..n, at a time in
// the safety phase [0, safety). A network fault may come with the heal that
// ends it (a drawn delay later), so the generator yields one or two faults;
// shrinking drops the heal by shrinking the delay to "never" (0).
func faultGen(n int, safety time.Duration, kinds []FaultKind) *rapid.Generator[[]Fault] {
	return rapid.Custom(func(t *rapid.T) []Fault {
		f := Fault{
			Kind: rapid.SampledFrom(kinds).Draw(t, "kind"),
			At:   msDur(t, 0, safety-time.Millisecond, "at"),
		}
		nodeID := func(label string) uint64 { return uint64(rapid.IntRange(1, n).Draw(t, label)) }
		switch f.Kind {
		case FaultCrash, FaultTornCrash, FaultPause:
			f.Node, f.Dur = nodeID("node"), msDur(t, time.Millisecond, 3*time.Second, "dur")
		case FaultCrashAll:
			f.Dur = msDur(t, time.Millisecond, 2*time.Second, "dur")
		case FaultStall:
			f.Node, f.Dur = nodeID("node"), msDur(t, time.Millisecond, 3*time.Second, "dur")
		case FaultSyncEIO, FaultWriteEIO:
			f.Node, f.Count = nodeID("node"), rapid.IntRange(1, 3).Draw(t, "count")
		case FaultSkew:
			// Rate 1 +- 0.5 in steps of 1%, shrinking toward no skew.
			f.Node, f.Rate = nodeID("node"), 1+float64(rapid.IntRange(-50, 100).Draw(t, "skew%"))/100
		case FaultIsolate:
			f.Node = nodeID("node")
		case FaultOneWay:
			f.Node = nodeID("node")
			f.Peer = 1 + (f.Node-1+uint64(rapid.IntRange(1, n-1).Draw(t, "peer-step")))%uint64(n)
		case FaultPartition:
			ids := rapid.Permutation(nodeIDs(n)).Draw(t, "order")
			cut := rapid.IntRange(1, n-1).Draw(t, "cut")
			f.Groups = [][]uint64{sortedCopy(ids[:cut]), sortedCopy(ids[cut:])}
		case FaultBridge:
			f.Node = nodeID("node")
			var rest []uint64
			for _, id := range nodeIDs(n) {
				if id != f.Node {
					rest = append(rest, id)
				}
			}
			rest = rapid.Permutation(rest).Draw(t, "order")
			cut := rapid.IntRange(1, len(rest)-1).Draw(t, "cut")
			f.Groups = [][]uint64{sortedCopy(rest[:cut]), sortedCopy(rest[cut:])}
		case FaultDrop, FaultDup:
			f.Prob = float64(rapid.IntRange(1, 60).Draw(t, "prob%")) / 100
			f.Dur = msDur(t, time.Millisecond, 3*time.Second, "dur")
		case FaultNoSpace:
			f.Node, f.Count = nodeID("node"), rapid.IntRange(1, 3).Draw(t, "count")
		case FaultReadEIO:
			f.Node, f.Count = nodeID("node"), rapid.IntRange(1, 3).Draw(t, "count")
			f.Dur = msDur(t, time.Millisecond, 2*time.Second, "dur")
		case FaultHang:
			f.Node, f.Dur = nodeID("node"), msDur(t, time.Millisecond, 2*time.Second, "dur")
		case FaultClockStep:
			// Shrinks toward a small step.
			f.Node, f.Step = nodeID("node"), time.Duration(rapid.IntRange(-5000, 5000).Draw(t, "step-ms"))*time.Millisecond
		case FaultLink:
			f.Node = nodeID("node")
			f.Peer = 1 + (f.Node-1+uint64(rapid.IntRange(1, n-1).Draw(t, "peer-step")))%uint64(n)
			f.Latency = msDur(t, 0, 50*time.Millisecond, "latency")
			f.Jitter = msDur(t, 0, 20*time.Millisecond, "jitter")
			f.Prob = float64(rapid.IntRange(0, 60).Draw(t, "drop%")) / 100
			f.Dup = float64(rapid.IntRange(0, 30).Draw(t, "dup%")) / 100
			f.Dur = msDur(t, time.Millisecond, 4*time.Second, "dur")
		case FaultTransferLeader:
			f.Node = nodeID("node")
		default:
			panic(fmt.Sprintf("faultGen: kind %q has no generator", f.Kind))
		}
		// Aims and triggers are drawn last, and each shrinks toward
		// "none", so a shrunk fault is a plain timed fault at a fixed
		// node unless the failure needs more.
		if f.Node != 0 && len(f.Groups) == 0 && rapid.IntRange(0, 3).Draw(t, "aimed") == 3 {
			f.Node = 0
			f.Target = rapid.SampledFrom([]Target{TargetLeader, TargetFollower, TargetMostCaughtUp,
				TargetLeastCaughtUp, TargetLastVoter}).Draw(t, "target")
			if f.Kind == FaultOneWay {
				f.Peer = 0
			}
		}
		if rapid.IntRange(0, 3).Draw(t, "triggered") == 3 {
			f.Trigger = &Trigger{
				On:    rapid.SampledFrom(triggerEvents).Draw(t, "trigger-on"),
				Nth:   rapid.IntRange(1, 3).Draw(t, "trigger-nth"),
				Delay: msDur(t, 0, 20*time.Millisecond, "trigger-delay"),
			}
		}
		out := []Fault{f}
		switch f.Kind {
		case FaultIsolate, FaultPartition, FaultOneWay, FaultBridge:
			if d := msDur(t, 0, 4*time.Second, "heal-after"); d > 0 {
				out = append(out, Fault{At: f.At + d, Kind: FaultHeal})
			}
		}
		return out
	})
}

// scheduleGen draws a fault schedule of up to maxFaults faults (plus their
// heals) for nodes 1..n in a safety phase of length safety.
func scheduleGen(n int, safety time.Duration, kinds []FaultKind, maxFaults int) *rapid.Generator[Schedule] {
	return rapid.Custom(func(t *rapid.T) Schedule {
		var s Schedule
		for _, fs := range rapid.SliceOfN(faultGen(n, safety, kinds), 0, maxFaults).Draw(t, "faults") {
			s = append(s, fs...)
		}
		s.Sort()
		return s
	})
}

func nodeIDs(n int) []uint64 {
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	return ids
}

func sortedCopy(ids []uint64) []uint64 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// drawOptions draws the simulation seed, a cluster size from sizes and the
// workload. Everything rapid does not draw (latencies, fetch interval) comes
// from the seed through the calm scenario, so the seed still matters.
func drawOptions(t *rapid.T, sizes []int) Options {
	seed := rapid.Uint64Range(1, math.MaxUint64).Draw(t, "seed")
	n := rapid.SampledFrom(sizes).Draw(t, "nodes")
	sc, err := Lookup("calm")
	if err != nil {
		t.Fatalf("%v", err)
	}
	o := sc.Draw(seed)
	o.Scenario = "rapid"
	o.Nodes = n
	o.FaultEvery, o.FaultWeights = 0, nil
	if n > 1 && rapid.Bool().Draw(t, "legacy-path") {
		o.Path = node.PathLegacy
	}
	o.Topics[0].Partitions = int32(rapid.IntRange(1, 2).Draw(t, "partitions"))
	o.Producers = rapid.IntRange(1, 16).Draw(t, "producers")
	o.Consumers = rapid.IntRange(0, 3).Draw(t, "consumers")
	for i, name := range []string{"acks0-weight", "acks1-weight", "acksall-weight"} {
		o.AcksWeights[i] = rapid.IntRange(0, 3).Draw(t, name)
	}
	if o.AcksWeights == [3]int{} {
		o.AcksWeights[2] = 1
	}
	o.MaxBatchRecs = rapid.IntRange(1, 4).Draw(t, "records/request")
	o.MsgMax = o.MsgMin + rapid.IntRange(0, 1024).Draw(t, "record-size-spread")
	o.ThinkMax = msDur(t, 2*time.Millisecond, 40*time.Millisecond, "think-max")
	o.SafetyDuration = msDur(t, time.Second, 4*time.Second, "safety")
	o.Disk.StallProb = float64(rapid.IntRange(0, 10).Draw(t, "disk-stall-permille")) / 1000
	return o
}

// clusterProperty is the main property over 1-, 3- and 5-node clusters.
func clusterProperty(t *rapid.T) { runProperty(t, []int{1, 3, 5}) }

// standaloneProperty is the same property on one node.
func standaloneProperty(t *rapid.T) { runProperty(t, []int{1}) }

// runProperty draws a case and fails unless the run kept every invariant
// (a run beyond the fault budget passes whatever it found; the main
// properties never draw such faults).
func runProperty(t *rapid.T, sizes []int) {
	o := drawOptions(t, sizes)
	s := scheduleGen(o.Nodes, o.SafetyDuration, propKinds(o.Nodes), 10).Draw(t, "schedule")
	res, err := Run(o, RunConfig{Schedule: s, UseSchedule: true, TraceTail: 30})
	if err != nil {
		t.Fatalf("run could not start: %v\noptions:\n%sschedule:\n%s", err, o.Describe(), s)
	}
	if res.BeyondBudget != "" {
		t.Fatalf("an in-budget schedule was labelled beyond the budget (%s)\nschedule:\n%s", res.BeyondBudget, s)
	}
	if !res.OK() {
		t.Fatalf("%s", failureText(o, s, res))
	}
}

// failureText is the report of a failing property case: the violated
// invariants and the checker's report, the options and fault schedule, the
// trace tail, and how to replay it (rapid adds its own -rapid.failfile
// hint). It also writes the case as a case file for `walraft replay`.
func failureText(o Options, s Schedule, res *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "invariants violated: %s (seed %d, %d nodes, %d faults)\n", strings.Join(res.Invariants(), ","), o.Seed, o.Nodes, len(s))
	for _, v := range res.Violations {
		fmt.Fprintf(&b, "  %s\n", v)
	}
	fmt.Fprintf(&b, "report:\n%s", res.Report.String())
	fmt.Fprintf(&b, "options:\n%s", o.Describe())
	fmt.Fprintf(&b, "schedule:\n%s", s)
	if len(res.Trace) > 0 {
		b.WriteString("trace tail:\n")
		for _, e := range res.Trace {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	c := &Case{Version: CaseVersion, Scenario: o.Scenario, Seed: o.Seed, Variant: o.Variant, Commit: "unknown",
		TraceHash: FormatTraceHash(res.TraceHash), Options: o, Schedule: s, Note: "rapid property failure"}
	for _, v := range res.Violations {
		c.Violations = append(c.Violations, CaseViolation{Invariant: v.Invariant, Detail: v.Detail, Time: v.Time})
	}
	path := filepath.Join(os.TempDir(), "walraft-rapid", c.FileName())
	if err := WriteCase(path, c); err != nil {
		fmt.Fprintf(&b, "(could not write the case file: %v)\n", err)
	} else {
		fmt.Fprintf(&b, "replay: go run ./cmd/walraft replay %s\n", path)
	}
	return b.String()
}

// TestClusterProperty: on 1-, 3- and 5-node clusters under a rapid-drawn
// workload and in-budget fault schedule, no invariant ever breaks.
func TestClusterProperty(t *testing.T) {
	setDefaultChecks(t, propChecks)
	rapid.Check(t, clusterProperty)
}

// TestCorruptIsBeyondBudget: a schedule that also corrupts synced data on
// a majority of the nodes is labelled beyond the fault budget, so whatever
// the run then finds is not counted as a bug (DESIGN.md section 5), and the
// label names the fault. (On a minority it is in budget: the scenario
// "corrupt" and TestScheduleBudget.)
func TestCorruptIsBeyondBudget(t *testing.T) {
	setDefaultChecks(t, propChecks/4)
	rapid.Check(t, func(t *rapid.T) {
		o := drawOptions(t, []int{1, 3})
		s := scheduleGen(o.Nodes, o.SafetyDuration, propKinds(o.Nodes), 3).Draw(t, "schedule")
		first := rapid.IntRange(1, o.Nodes).Draw(t, "corrupt-node")
		for k := 0; k < o.Nodes/2+1; k++ {
			s = append(s, Fault{Kind: FaultCorrupt, Node: uint64((first+k-1)%o.Nodes + 1),
				At: msDur(t, 0, o.SafetyDuration-time.Millisecond, "corrupt-at")})
		}
		s.Sort()
		res, err := Run(o, RunConfig{Schedule: s, UseSchedule: true})
		if err != nil {
			t.Fatalf("run could not start: %v\nschedule:\n%s", err, s)
		}
		if !strings.Contains(res.BeyondBudget, string(FaultCorrupt)) || !res.OK() || !res.Report.BeyondBudget || len(res.Report.Bugs()) != 0 {
			t.Fatalf("corrupting run not labelled beyond the budget: label %q, OK %v, report label %v, bugs %d\nschedule:\n%s",
				res.BeyondBudget, res.OK(), res.Report.BeyondBudget, len(res.Report.Bugs()), s)
		}
	})
}

// TestScheduleGenValid: every drawn schedule is valid for its cluster, in
// time order, inside the safety phase (heals may land after it, where the
// harness ignores them), and in budget; and the generator reaches every
// kind it is given.
func TestScheduleGenValid(t *testing.T) {
	seen := map[FaultKind]bool{}
	// eligible counts, per kind, the faults drawn for clusters whose
	// generator may draw it (a bridge needs 3 nodes): rapid draws small
	// clusters often, so the total alone says little about rare kinds.
	eligible := map[FaultKind]int{}
	drawn, aimed, triggered := 0, 0, 0
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.SampledFrom([]int{1, 2, 3, 5}).Draw(t, "nodes")
		safety := msDur(t, time.Second, 4*time.Second, "safety")
		s := scheduleGen(n, safety, propKinds(n), 10).Draw(t, "schedule")
		if err := s.Validate(n); err != nil {
			t.Fatalf("invalid schedule: %v\n%s", err, s)
		}
		if why := s.BeyondBudget(); why != "" {
			t.Fatalf("schedule beyond budget: %s", why)
		}
		for _, k := range propKinds(n) {
			eligible[k] += len(s)
		}
		for _, f := range s {
			drawn++
			seen[f.Kind] = true
			if f.Target != "" {
				aimed++
			}
			if f.Trigger != nil {
				triggered++
			}
			if f.Kind != FaultHeal && f.At >= safety {
				t.Fatalf("fault %s after the safety phase (%v)", f, safety)
			}
		}
		if _, err := MarshalSchedule(s); err != nil {
			t.Fatalf("marshal: %v", err)
		}
	})
	// With a few hundred faults drawn where a kind may be drawn, missing it
	// by chance is below one in 10^5; fewer (a tiny -rapid.checks, or few
	// large clusters) proves nothing either way.
	if drawn < 300 {
		t.Logf("only %d faults drawn: kind coverage not checked", drawn)
		return
	}
	for _, k := range append(propKinds(5), FaultHeal) {
		if k != FaultHeal && eligible[k] < 300 {
			continue // too few chances to judge it (see above)
		}
		if !seen[k] {
			t.Errorf("the generator never drew %s in %d faults (%d of them in clusters that may draw it)", k, drawn, eligible[k])
		}
	}
	// About a quarter of the faults are aimed and a quarter triggered.
	if aimed == 0 || triggered == 0 {
		t.Errorf("the generator drew %d aimed and %d triggered faults of %d", aimed, triggered, drawn)
	}
}
