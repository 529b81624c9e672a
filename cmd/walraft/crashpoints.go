package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"walraft/scenarios"
	"walraft/sim"
)

// The crashpoints command (issue 12): re-run one run once per disk event of
// the chosen nodes, crashing the node right at that event (clean, and torn
// with -torn), and check every invariant each time. See scenarios/crashpoint.go
// for what a point is.
func init() {
	commands = append(commands, command{
		name: "crashpoints",
		args: "[CASE] [-scenario S] [-seed N] [-variant V] [-node X | -all] [-every K] [-kinds K,...] [-torn] [-kill] [-restart D] [-safety D] " +
			"[-max-points M] [-parallel P] [-determinism N] [-out DIR] [-json]",
		summary: "crash a node at every disk event of a run in turn (a crash-point sweep) and check every invariant",
		run:     cmdCrashpoints,
	})
}

// defaultMaxPoints bounds a sweep unless -max-points says otherwise: at a
// few seconds per point on one core, about an hour of work on 2 cores.
const defaultMaxPoints = 2000

// crashpointsJSON is `walraft crashpoints -json`'s object.
type crashpointsJSON struct {
	Scenario string   `json:"scenario"`
	Seed     uint64   `json:"seed"`
	Variant  string   `json:"variant"`
	Case     string   `json:"case,omitempty"` // the case file swept, if any
	Commit   string   `json:"commit"`
	Nodes    []uint64 `json:"nodes"`
	Every    int      `json:"every"`
	Kinds    []string `json:"kinds"`
	Torn     bool     `json:"torn"`
	Kill     bool     `json:"kill"`
	Restart  float64  `json:"restart_seconds"`
	// BaseOK: the run without a crash point held every invariant.
	BaseOK bool `json:"base_ok"`
	// DiskEvents: each node's disk events in the safety phase of the dry
	// run (index node-1), and the swept nodes' events by kind.
	DiskEvents       []int          `json:"disk_events"`
	DiskEventsByKind map[string]int `json:"disk_events_by_kind"`
	Points           int            `json:"points"` // points tried
	PointsByKind     map[string]int `json:"points_by_kind"`
	Failed           int            `json:"failed"`
	Failures         []pointJSON    `json:"failures"`
	// DeterminismChecked points ran twice; Mismatches are those whose
	// trace hashes differed.
	DeterminismChecked int            `json:"determinism_checked"`
	Mismatches         []string       `json:"mismatches"`
	ProbeRuns          map[string]int `json:"probes"` // points whose run reached each probe
	WallSeconds        float64        `json:"wall_seconds"`
	Interrupted        bool           `json:"interrupted"`
	OK                 bool           `json:"ok"`
}

// pointJSON is one failing point.
type pointJSON struct {
	Node       uint64   `json:"node"`
	Event      int      `json:"event"`
	Kind       string   `json:"kind"`
	Torn       bool     `json:"torn"`
	Kill       bool     `json:"kill"`
	Invariants []string `json:"invariants"`
	Detail     string   `json:"detail"`
	Case       string   `json:"case,omitempty"`
}

func cmdCrashpoints(args []string, st stdio) int {
	fs := newFlags("crashpoints", st)
	scenario := fs.String("scenario", scenarios.DefaultScenario, "`name` of the scenario (walraft scenarios); when not given: the variant's scenario")
	seed := fs.Uint64("seed", 1, "the `seed` of the run to sweep")
	variant := fs.String("variant", "", "`name` of a known-bad variant to sweep instead of the correct system")
	nodeFlag := fs.Uint64("node", 1, "the node `id` to crash")
	all := fs.Bool("all", false, "crash every node in turn (overrides -node)")
	every := fs.Int("every", 1, "try every `K`th disk event of each node (events 1, 1+K, 1+2K, ...)")
	kinds := fs.String("kinds", "", "comma-separated disk event `kinds` to crash at (write, truncate, sync, sync.done, create, remove, syncdir, syncdir.done; -every counts among them); \"\": all")
	torn := fs.Bool("torn", false, "also try a torn crash at each point (the disk keeps a seeded half of the unsynced blocks)")
	kill := fs.Bool("kill", false, "also try a process kill at each point (the machine stays up: the page cache and the syncs in flight survive)")
	restart := fs.Duration("restart", scenarios.DefaultCrashRestart, "restart the crashed node after `D`")
	safety := fs.Duration("safety", 0, "shorten the safety phase to `D` (fewer events, cheaper points; 0 keeps the run's own)")
	maxPoints := fs.Int("max-points", defaultMaxPoints, "refuse a sweep of more than `M` points")
	parallel := fs.Int("parallel", runtime.NumCPU(), "`number` of worker processes")
	out := fs.String("out", filepath.Join("testdata", "cases"), "`directory` for the case files of failing points")
	detEvery := fs.Int("determinism", 10, "run every `N`th point, and every failing point, a second time and compare trace hashes (0: never)")
	asJSON := fs.Bool("json", false, "print the summary as one JSON object (progress goes to stderr)")
	pos, code := parseFlags(fs, args, 0, 1)
	if code >= 0 {
		return code
	}
	switch {
	case *every < 1:
		return usageErr(st, "crashpoints", "-every %d: want at least 1", *every)
	case *parallel < 1 || *parallel > 1024:
		return usageErr(st, "crashpoints", "-parallel %d: want 1..1024", *parallel)
	case *detEvery < 0:
		return usageErr(st, "crashpoints", "-determinism %d: want >= 0", *detEvery)
	case *maxPoints < 1:
		return usageErr(st, "crashpoints", "-max-points %d: want at least 1", *maxPoints)
	case *restart < 0 || *restart > time.Hour:
		return usageErr(st, "crashpoints", "-restart %v: want 0..1h", *restart)
	case *safety < 0 || *safety > time.Hour:
		return usageErr(st, "crashpoints", "-safety %v: want 0..1h", *safety)
	}
	// The run to sweep: a case file's exact options and schedule, or a
	// seed's.
	var o scenarios.Options
	rc := scenarios.RunConfig{Variant: *variant}
	casePath := ""
	if len(pos) == 1 {
		for _, f := range []string{"scenario", "seed", "variant"} {
			if flagSet(fs, f) {
				return usageErr(st, "crashpoints", "-%s cannot be combined with a case file (the case names its run)", f)
			}
		}
		c, err := scenarios.ReadCase(pos[0])
		if err != nil {
			return usageErr(st, "crashpoints", "%v", err)
		}
		casePath = pos[0]
		o = c.Options
		rc.Variant = c.Variant
		rc.Schedule, rc.UseSchedule = c.Schedule, true
	} else {
		sc, _, err := lookupRun(*scenario, flagSet(fs, "scenario"), *variant)
		if err != nil {
			return usageErr(st, "crashpoints", "%v", err)
		}
		o = drawOptions(sc, *seed, *variant)
	}
	if *safety > 0 {
		o.SafetyDuration = *safety
	}
	plan := scenarios.SweepPlan{Every: *every, Torn: *torn, Kill: *kill}
	for _, name := range splitList(*kinds) {
		k, err := sim.ParseDiskEvent(name)
		if err != nil {
			return usageErr(st, "crashpoints", "-kinds: %v", err)
		}
		plan.Kinds = append(plan.Kinds, k)
	}
	if !*all {
		if *nodeFlag < 1 || *nodeFlag > uint64(o.Nodes) {
			return usageErr(st, "crashpoints", "-node %d: the run has nodes 1..%d", *nodeFlag, o.Nodes)
		}
		plan.Nodes = []uint64{*nodeFlag}
	}
	progress := st.out
	if *asJSON {
		progress = st.err
	}
	commit := buildCommit()
	sum := &crashpointsJSON{Scenario: o.Scenario, Seed: o.Seed, Variant: rc.Variant, Case: casePath, Commit: commit,
		Every: *every, Torn: *torn, Kill: *kill, Restart: restart.Seconds(), DiskEventsByKind: map[string]int{}, PointsByKind: map[string]int{},
		Failures: []pointJSON{}, Mismatches: []string{}, ProbeRuns: map[string]int{}, Nodes: plan.Nodes, Kinds: splitList(*kinds)}
	if *all {
		for id := 1; id <= o.Nodes; id++ {
			sum.Nodes = append(sum.Nodes, uint64(id))
		}
	}
	start := time.Now()

	// The dry run, in this process: it counts the disk events.
	fmt.Fprintf(progress, "crashpoints: scenario %s, seed %d, variant %s, nodes %v, every %d, torn %v, kill %v, restart after %v, commit %s\n",
		o.Scenario, o.Seed, variantName(rc.Variant), sum.Nodes, *every, *torn, *kill, *restart, commit)
	drc := rc
	drc.RecordDiskEvents = true
	dry, wall, simErr := simulate(o, drc)
	if simErr != nil {
		fmt.Fprintf(st.err, "walraft crashpoints: the dry run failed: %v\n", simErr)
		return exitFail
	}
	sum.BaseOK = dry.OK()
	for _, evs := range dry.DiskEvents {
		sum.DiskEvents = append(sum.DiskEvents, len(evs))
	}
	swept := 0 // disk events of the swept nodes and kinds
	for k, n := range plan.CountDiskEvents(dry.DiskEvents) {
		sum.DiskEventsByKind[k.String()] = n
		swept += n
	}
	fmt.Fprintf(progress, "dry run: %.1fs simulated in %.1fs, disk events per node %v (swept: %s)\n",
		dry.SimTime.Seconds(), wall.Seconds(), sum.DiskEvents, kindCounts(sum.DiskEventsByKind))
	if !sum.BaseOK {
		fmt.Fprintf(progress, "note: the run fails without any crash point (%s): a point's failure may be the run's own\n",
			strings.Join(dry.Invariants(), ","))
	}
	points := plan.Points(dry.DiskEvents)
	if len(points) > *maxPoints {
		fmt.Fprintf(st.err, "walraft crashpoints: %d points (%d disk events of nodes %v, every %d, torn %v) exceed -max-points %d: %s\n",
			len(points), swept, sum.Nodes, *every, *torn, *maxPoints, thinHint(plan, dry.DiskEvents, *maxPoints))
		return exitUsage
	}
	for i, n := range plan.KeptPerNode(dry.DiskEvents) {
		if n > 0 && *every > n {
			fmt.Fprintf(progress, "note: -every %d is more than n%d's %d swept events: only its first (a file creation, as a rule) is crashed\n", *every, i+1, n)
		}
	}
	for _, p := range points {
		sum.PointsByKind[p.Kind.String()]++
	}
	fmt.Fprintf(progress, "sweeping %d points on %d workers\n", len(points), *parallel)

	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(st.err, "walraft crashpoints: cannot find my own executable to start workers: %v\n", err)
		return exitFail
	}
	sweepPoints(progress, exe, *parallel, *detEvery, o, rc.Variant, dry.Schedule, points, *restart, *out, commit, sum)
	sum.WallSeconds = time.Since(start).Seconds()
	sum.OK = sum.Failed == 0 && len(sum.Mismatches) == 0 && !sum.Interrupted
	if *asJSON {
		if err := writeJSON(st.out, sum); err != nil {
			fmt.Fprintf(st.err, "walraft crashpoints: %v\n", err)
			return exitFail
		}
	} else {
		printCrashpoints(st.out, sum)
	}
	if !sum.OK {
		return exitFail
	}
	return exitOK
}

// sweepPoints runs every point on parallel worker processes and accounts
// the outcomes in sum. Every failing point, and every detEvery-th point
// (0: none), runs a second time and must give the same trace hash.
func sweepPoints(progress io.Writer, exe string, parallel, detEvery int, o scenarios.Options, variant string,
	base scenarios.Schedule, points []scenarios.CrashPoint, restart time.Duration, out, commit string, sum *crashpointsJSON) {
	// task is a point to run, or to run again (check) against the trace
	// hash of its first run.
	type task struct {
		i     int
		check bool
		hash  string
	}
	type result struct {
		t     task
		reply workerReply
		err   error
	}
	jobs := make(chan task)
	results := make(chan result)
	var wg sync.WaitGroup
	nw := min(parallel, len(points))
	workers := make([]*workerProc, nw)
	for w := range workers {
		wp := &workerProc{id: w, exe: exe}
		workers[w] = wp
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer wp.stop()
			for t := range jobs {
				p := points[t.i]
				oo := o
				job := workerJob{ID: t.i + 1, Scenario: o.Scenario, Seed: o.Seed, Variant: variant, Commit: commit,
					Options: &oo, Schedule: p.Schedule(base, restart)}
				if !t.check {
					job.Out, job.CaseName = out, pointCaseName(o, variant, p)
				}
				reply, err := wp.do(job)
				if err != nil || reply.Exit {
					wp.stop()
				}
				results <- result{t: t, reply: reply, err: err}
			}
		}()
	}
	interrupt := make(chan os.Signal, 1)
	signal.Notify(interrupt, os.Interrupt)
	defer signal.Stop(interrupt)
	todo := make([]task, 0, len(points))
	for i := range points {
		todo = append(todo, task{i: i})
	}
	running, done := 0, 0
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	started := time.Now()
	for running > 0 || (len(todo) > 0 && !sum.Interrupted) {
		var send chan task
		var t task
		if len(todo) > 0 && !sum.Interrupted {
			send, t = jobs, todo[0]
		}
		select {
		case send <- t:
			todo = todo[1:]
			running++
		case r := <-results:
			running--
			if r.t.check {
				sum.DeterminismChecked++
				got := ""
				if r.reply.Result != nil && r.err == nil {
					got = r.reply.Result.TraceHash
				}
				if got != r.t.hash {
					m := fmt.Sprintf("point %s: trace hash %s, then %s", points[r.t.i], r.t.hash, got)
					if r.err != nil {
						m += " (" + r.err.Error() + ")"
					}
					sum.Mismatches = append(sum.Mismatches, m)
					fmt.Fprintf(progress, "NONDETERMINISM %s\n", m)
				}
				continue
			}
			done++
			sum.Points++
			failed := accountPoint(progress, points[r.t.i], r.reply, r.err, sum)
			if r.err == nil && r.reply.Result != nil && (failed || (detEvery > 0 && r.t.i%detEvery == 0)) {
				todo = append(todo, task{i: r.t.i, check: true, hash: r.reply.Result.TraceHash})
			}
		case <-tick.C:
			fmt.Fprintf(progress, "%d/%d points, %d failed, elapsed %s\n", done, len(points), sum.Failed, fmtDur(time.Since(started)))
		case <-interrupt:
			if sum.Interrupted {
				for _, w := range workers {
					w.kill()
				}
			}
			sum.Interrupted = true
			fmt.Fprintln(progress, "interrupted: waiting for the running points to finish (Ctrl-C again to kill them)")
		}
	}
	close(jobs)
	wg.Wait()
}

// accountPoint adds one point's outcome to sum and reports whether the
// point failed.
func accountPoint(progress io.Writer, p scenarios.CrashPoint, reply workerReply, err error, sum *crashpointsJSON) bool {
	r := reply.Result
	if err != nil || r == nil {
		msg := "worker returned no result"
		if err != nil {
			msg = err.Error()
		}
		r = &runJSON{Violations: []violationJSON{{Invariant: invCrash, Detail: msg}}}
	}
	for k, n := range r.Probes {
		if n > 0 {
			sum.ProbeRuns[k]++
		}
	}
	if reply.Problem != "" {
		fmt.Fprintf(progress, "point %s: %s\n", p, reply.Problem)
	}
	if !r.failed() {
		return false
	}
	sum.Failed++
	f := pointJSON{Node: p.Node, Event: p.Event, Kind: p.Kind.String(), Torn: p.Torn, Kill: p.Kill, Invariants: r.invariantNames(), Case: r.Case}
	if len(r.Violations) > 0 {
		f.Detail, _, _ = strings.Cut(r.Violations[0].Detail, "\n")
	}
	sum.Failures = append(sum.Failures, f)
	where := "(no case file)"
	if f.Case != "" {
		where = self() + " replay " + f.Case
	}
	fmt.Fprintf(progress, "FAIL %s: %s: %s\n", p, strings.Join(f.Invariants, ","), where)
	return true
}

// pointCaseName names a failing point's case file:
// <scenario>-<variant>-seed<N>-n<node>-e<event>[-torn|-kill].json.
func pointCaseName(o scenarios.Options, variant string, p scenarios.CrashPoint) string {
	c := scenarios.Case{Scenario: o.Scenario, Seed: o.Seed, Variant: variant}
	name := strings.TrimSuffix(c.FileName(), ".json") + "-n" + strconv.FormatUint(p.Node, 10) + "-e" + strconv.Itoa(p.Event)
	if p.Torn {
		name += "-torn"
	}
	if p.Kill {
		name += "-kill"
	}
	return name + ".json"
}

// printCrashpoints prints a sweep's summary as text.
func printCrashpoints(w io.Writer, s *crashpointsJSON) {
	fmt.Fprintf(w, "tried %d crash points (%s) in %.1fs\n", s.Points, kindCounts(s.PointsByKind), s.WallSeconds)
	fmt.Fprintf(w, "probe coverage (points whose run reached each probe, of %d):\n", s.Points)
	for _, k := range sortedKeys(s.ProbeRuns) {
		fmt.Fprintf(w, "  %-40s %6d\n", k, s.ProbeRuns[k])
	}
	fmt.Fprintf(w, "determinism: %d points run twice, %d mismatches\n", s.DeterminismChecked, len(s.Mismatches))
	for _, m := range s.Mismatches {
		fmt.Fprintf(w, "  %s\n", m)
	}
	if s.Failed == 0 {
		fmt.Fprintln(w, "violations: none")
	} else {
		fmt.Fprintf(w, "violations: %d failing points\n", s.Failed)
		for i, f := range s.Failures {
			if i == 20 {
				fmt.Fprintf(w, "  ... and %d more (see -json)\n", len(s.Failures)-i)
				break
			}
			torn := ""
			if f.Torn {
				torn = " torn"
			}
			if f.Kill {
				torn = " kill"
			}
			fmt.Fprintf(w, "  n%d #%d %s%s %s: %s\n", f.Node, f.Event, f.Kind, torn, strings.Join(f.Invariants, ","), f.Detail)
			if f.Case != "" {
				fmt.Fprintf(w, "    %s replay %s\n", self(), f.Case)
			}
		}
	}
	switch {
	case s.Interrupted:
		fmt.Fprintln(w, "INTERRUPTED")
	case s.OK:
		fmt.Fprintln(w, "PASS")
	default:
		fmt.Fprintln(w, "FAIL")
	}
}

// kindCounts renders counts by disk event kind in the simulator's kind
// order: "write 120, sync 40, ...".
func kindCounts(m map[string]int) string {
	var parts []string
	for _, k := range sim.DiskEventKinds {
		if n := m[k.String()]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// thinHint says how to bring a sweep within maxPoints: the smallest -every
// that does (a point per node and crash type is the least any -every
// leaves, since each node's first event is always swept), or what else to
// change when none does.
func thinHint(plan scenarios.SweepPlan, events [][]sim.DiskEvent, maxPoints int) string {
	fits := func(every int) bool {
		p := plan
		p.Every = every
		return len(p.Points(events)) <= maxPoints
	}
	hi := 1
	for _, n := range plan.KeptPerNode(events) {
		hi = max(hi, n)
	}
	if !fits(hi) {
		p := plan
		p.Every = hi
		return fmt.Sprintf("no -every fits (every node's first event alone is %d points): raise -max-points, "+
			"sweep one node (-node), fewer kinds (-kinds) or drop -torn/-kill", len(p.Points(events)))
	}
	lo := max(plan.Every, 1) // does not fit
	for lo+1 < hi {          // invariant: lo does not fit, hi fits
		mid := lo + (hi-lo)/2
		if fits(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return fmt.Sprintf("thin them with -every %d or more, shorten the run with -safety, or raise -max-points", hi)
}
