package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"walraft/scenarios"
)

// defaultCampaignSeeds is `walraft campaign`'s default seed count per
// scenario: about a minute on 2 cores for the default scenario.
const defaultCampaignSeeds = 200

// maxCampaignSeeds bounds -seeds so a typo cannot queue forever.
const maxCampaignSeeds = 1 << 40

// shard is a disjoint share of the seeds: seed k belongs to shard k mod n.
type shard struct{ i, n uint64 }

func (s shard) String() string { return fmt.Sprintf("%d/%d", s.i, s.n) }

// has reports whether seed k belongs to the shard.
func (s shard) has(k uint64) bool { return k%s.n == s.i }

// parseShard parses "i/n" with 0 <= i < n.
func parseShard(s string) (shard, error) {
	a, b, ok := strings.Cut(s, "/")
	if ok {
		i, err1 := strconv.ParseUint(a, 10, 64)
		n, err2 := strconv.ParseUint(b, 10, 64)
		if err1 == nil && err2 == nil && n >= 1 && i < n {
			return shard{i, n}, nil
		}
	}
	return shard{}, fmt.Errorf("bad -shard %q: want i/n with 0 <= i < n, e.g. 0/4", s)
}

// seedRange enumerates the seeds of [start, start+count) in a shard.
type seedRange struct {
	start, count uint64
	sh           shard
}

// offset returns the distance from start to the shard's first seed.
func (r seedRange) offset() uint64 {
	m := r.start % r.sh.n
	if m <= r.sh.i {
		return r.sh.i - m
	}
	return r.sh.n - m + r.sh.i // < n, no overflow
}

// len returns how many seeds of the range are in the shard.
func (r seedRange) len() uint64 {
	off := r.offset()
	if off >= r.count {
		return 0
	}
	return (r.count-off-1)/r.sh.n + 1
}

// seed returns the j-th seed of the shard's share (j < len()).
func (r seedRange) seed(j uint64) uint64 { return r.start + r.offset() + j*r.sh.n }

// campaignJSON is the summary `walraft campaign -json` prints and `walraft
// merge` reads and writes.
type campaignJSON struct {
	Scenarios      []string `json:"scenarios"`
	Variant        string   `json:"variant"`
	Start          uint64   `json:"start"`
	SeedsRequested uint64   `json:"seeds_requested"` // per scenario, before sharding
	Shard          string   `json:"shard"`           // "i/n"; merged summaries: "all/n"
	Shards         []string `json:"shards,omitempty"`
	Parallel       int      `json:"parallel"`
	Commit         string   `json:"commit"`

	Seeds                 int            `json:"seeds"` // runs completed (seed x scenario)
	OK                    bool           `json:"ok"`
	Failed                int            `json:"failed"`
	FailingSeeds          []uint64       `json:"failing_seeds"`
	Failures              []failureJSON  `json:"failures"`
	ViolationsByInvariant map[string]int `json:"violations_by_invariant"` // runs that violated each
	BeyondBudget          int            `json:"beyond_budget"`
	Interrupted           bool           `json:"interrupted"`

	SeedsPerSecond    float64 `json:"seeds_per_second"`
	SimSeconds        float64 `json:"sim_seconds"`
	WallSeconds       float64 `json:"wall_seconds"`
	RunSeconds        float64 `json:"run_seconds"`            // sum of the runs' own wall times
	SimWallRatio      float64 `json:"sim_wall_ratio"`         // sim_seconds / wall_seconds: the whole campaign
	SimWallRatioOfRun float64 `json:"sim_wall_ratio_per_run"` // sim_seconds / run_seconds: one core
	Events            uint64  `json:"events"`

	Acks      map[string]acksJSON `json:"acks"`
	Probes    map[string]int      `json:"probes"`     // runs that reached each probe
	ProbeHits map[string]int      `json:"probe_hits"` // times each probe was reached
	// ScenarioRuns counts completed runs per scenario; Coverage is every
	// registered probe's hit rate; CoverageMissing names the required
	// probes never reached, judged (CoverageJudged) only for a
	// correct-system campaign with at least 200 runs of every scenario.
	ScenarioRuns    map[string]int            `json:"scenario_runs"`
	Coverage        []scenarios.ProbeCoverage `json:"coverage"`
	CoverageJudged  bool                      `json:"coverage_judged"`
	CoverageMissing []string                  `json:"coverage_missing"`
	// ExpectMissing names, as "scenario: probe", each probe a scenario
	// reaches in nearly every correct run (scenarios.ExpectedProbes) that
	// none of its runs reached, judged for a correct-system campaign with
	// at least scenarios.ExpectMinRuns runs of that scenario.
	ExpectMissing         []string       `json:"expect_missing"`
	DeterminismChecked    int            `json:"determinism_checked"`
	DeterminismMismatches int            `json:"determinism_mismatches"`
	Mismatches            []mismatchJSON `json:"mismatches"`

	// For is -for: the campaign ran seeds until this much time was up
	// ("" when it ran a fixed -seeds count); TimeUp says it stopped for it.
	For    string `json:"for,omitempty"`
	TimeUp bool   `json:"time_up,omitempty"`
	// ByScenario holds each scenario's own results (campaign.go's
	// scenarioJSON), so -scenario all shows which scenario found what.
	ByScenario map[string]*scenarioJSON `json:"by_scenario,omitempty"`
	// Avail is the distribution of the runs' availability (A1).
	Avail availDistJSON `json:"avail"`
}

// failureJSON is one failing run of a campaign.
type failureJSON struct {
	Scenario   string   `json:"scenario"`
	Seed       uint64   `json:"seed"`
	Invariants []string `json:"invariants"`
	Detail     string   `json:"detail"` // the first violation's first line
	Case       string   `json:"case,omitempty"`
	Replay     string   `json:"replay"`
}

// mismatchJSON is one determinism mismatch: the same seed gave two trace
// hashes in two worker processes.
type mismatchJSON struct {
	Scenario string `json:"scenario"`
	Seed     uint64 `json:"seed"`
	HashA    string `json:"hash_a"`
	HashB    string `json:"hash_b"`
	// Divergence describes the first divergent event of the two traced
	// re-runs ("" while unknown).
	Divergence string `json:"divergence"`
	Index      int    `json:"index"` // event index of the divergence, -1 if none found
	EventA     string `json:"event_a,omitempty"`
	EventB     string `json:"event_b,omitempty"`
	TraceA     string `json:"trace_a,omitempty"`
	TraceB     string `json:"trace_b,omitempty"`
}

func newCampaignJSON() *campaignJSON {
	c := &campaignJSON{FailingSeeds: []uint64{}, Failures: []failureJSON{}, ViolationsByInvariant: map[string]int{},
		Acks: map[string]acksJSON{}, Probes: map[string]int{}, ProbeHits: map[string]int{}, Mismatches: []mismatchJSON{},
		ScenarioRuns: map[string]int{}, CoverageMissing: []string{}, ByScenario: map[string]*scenarioJSON{}}
	for _, l := range acksLevels {
		c.Acks[l] = acksJSON{}
	}
	return c
}

// add accounts one completed run.
func (c *campaignJSON) add(r *runJSON) {
	c.scenario(r.Scenario).add(r)
	c.Seeds++
	c.ScenarioRuns[r.Scenario]++
	c.SimSeconds += r.SimSeconds
	c.RunSeconds += r.WallSeconds
	c.Events += r.Events
	for k, a := range r.Acks {
		t := c.Acks[k]
		t.add(a)
		c.Acks[k] = t
	}
	for k, n := range r.Probes {
		if n > 0 {
			c.Probes[k]++
			c.ProbeHits[k] += n
		}
	}
	c.Avail.add(r)
	if r.BeyondBudget != "" {
		c.BeyondBudget++
	}
	if !r.failed() {
		return
	}
	c.Failed++
	f := failureJSON{Scenario: r.Scenario, Seed: r.Seed, Invariants: r.invariantNames(), Case: r.Case, Replay: r.Replay}
	if len(r.Violations) > 0 {
		f.Detail, _, _ = strings.Cut(r.Violations[0].Detail, "\n")
	}
	c.Failures = append(c.Failures, f)
	for _, inv := range f.Invariants {
		c.ViolationsByInvariant[inv]++
	}
}

// finish sorts the lists and derives the rates.
func (c *campaignJSON) finish(wall time.Duration) {
	c.WallSeconds = wall.Seconds()
	c.derive()
}

func (c *campaignJSON) derive() {
	sort.Slice(c.Failures, func(i, j int) bool {
		a, b := c.Failures[i], c.Failures[j]
		return a.Seed < b.Seed || (a.Seed == b.Seed && a.Scenario < b.Scenario)
	})
	sort.Slice(c.Mismatches, func(i, j int) bool {
		a, b := c.Mismatches[i], c.Mismatches[j]
		return a.Seed < b.Seed || (a.Seed == b.Seed && a.Scenario < b.Scenario)
	})
	c.FailingSeeds = c.FailingSeeds[:0]
	for _, f := range c.Failures {
		if n := len(c.FailingSeeds); n == 0 || c.FailingSeeds[n-1] != f.Seed {
			c.FailingSeeds = append(c.FailingSeeds, f.Seed)
		}
	}
	c.DeterminismMismatches = len(c.Mismatches)
	c.SeedsPerSecond, c.SimWallRatio, c.SimWallRatioOfRun = 0, 0, 0
	if c.WallSeconds > 0 {
		c.SeedsPerSecond = float64(c.Seeds) / c.WallSeconds
		c.SimWallRatio = c.SimSeconds / c.WallSeconds
	}
	if c.RunSeconds > 0 {
		c.SimWallRatioOfRun = c.SimSeconds / c.RunSeconds
	}
	c.Coverage, c.CoverageJudged, c.CoverageMissing = scenarios.Coverage(c.ScenarioRuns, c.Probes)
	if c.Variant != "" {
		// A known-bad variant's campaign hunts one bug; its coverage is
		// shown, not judged.
		c.CoverageJudged, c.CoverageMissing = false, nil
	}
	if c.CoverageMissing == nil {
		c.CoverageMissing = []string{}
	}
	c.ExpectMissing = []string{}
	if c.Variant == "" {
		for _, name := range sortedKeys(c.ByScenario) {
			sc := c.ByScenario[name]
			for _, p := range scenarios.MissingExpected(name, sc.Seeds, sc.Probes) {
				c.ExpectMissing = append(c.ExpectMissing, name+": "+p)
			}
		}
	}
	c.OK = c.Failed == 0 && c.DeterminismMismatches == 0 && !c.Interrupted && len(c.CoverageMissing) == 0 && len(c.ExpectMissing) == 0
	for _, sc := range c.ByScenario {
		sort.Slice(sc.FailingSeeds, func(i, j int) bool { return sc.FailingSeeds[i] < sc.FailingSeeds[j] })
	}
}

// cmdCampaign runs many seeds in worker processes: `walraft campaign`.
func cmdCampaign(args []string, st stdio) int {
	fs := newFlags("campaign", st)
	scenario := fs.String("scenario", scenarios.DefaultScenario, "`name` of the scenario to run (walraft scenarios), or \"all\"; when not given: the variant's scenario")
	seeds := fs.Uint64("seeds", defaultCampaignSeeds, "`number` of seeds (per scenario, before sharding)")
	start := fs.Uint64("start", 1, "first `seed`")
	parallel := fs.Int("parallel", runtime.NumCPU(), "`number` of worker processes (each runs one simulation at a time)")
	shardFlag := fs.String("shard", "0/1", "run only seed k with k mod n == i (`i/n`), to split a campaign over machines")
	variant := fs.String("variant", "", "`name` of a known-bad variant to run (walraft variants)")
	out := fs.String("out", defaultCaseDir, "`directory` for the case files of failing seeds (the default is git-ignored: move the cases worth keeping to testdata/cases)")
	forDur := fs.Duration("for", 0, "run seeds until this much `time` is up (VOPR style; -seeds then only caps the count), e.g. 10m")
	// Every 4th, as CI: a bug that makes a trace depend on map order or
	// timing shows only in the seeds re-run, and one behind a rarely
	// drawn configuration (a red-team bug that ordered two topics'
	// partitions by number alone) differed in 1 of 10 re-runs of 100
	// seeds. A quarter costs about 14% more runs.
	detEvery := fs.Int("determinism", 4, "re-run every `N`th seed, and every failing seed, in another worker and compare trace hashes (0: never)")
	asJSON := fs.Bool("json", false, "print the summary as one JSON object (progress goes to stderr)")
	runTimeout := fs.Duration("run-timeout", defaultRunTimeout, "kill a worker whose one run takes longer than this wall-clock `time` and record the seed as failed (a run stuck inside one event, which the simulator's storm guard cannot see); 0: never")
	if _, code := parseFlags(fs, args, 0, 0); code >= 0 {
		return code
	}
	sh, err := parseShard(*shardFlag)
	if err != nil {
		return usageErr(st, "campaign", "%v", err)
	}
	switch {
	case *parallel < 1:
		return usageErr(st, "campaign", "-parallel %d: want at least 1", *parallel)
	case *parallel > 1024:
		return usageErr(st, "campaign", "-parallel %d: at most 1024", *parallel)
	case *seeds < 1 || *seeds > maxCampaignSeeds:
		return usageErr(st, "campaign", "-seeds %d: want 1..%d", *seeds, uint64(maxCampaignSeeds))
	case *start > math.MaxUint64-*seeds:
		return usageErr(st, "campaign", "-start %d + -seeds %d overflows", *start, *seeds)
	case *detEvery < 0:
		return usageErr(st, "campaign", "-determinism %d: want >= 0", *detEvery)
	case *forDur < 0:
		return usageErr(st, "campaign", "-for %v: want a positive duration", *forDur)
	case *runTimeout < 0:
		return usageErr(st, "campaign", "-run-timeout %v: want a positive duration or 0", *runTimeout)
	}
	runWallLimit = *runTimeout
	if *forDur > 0 && !flagSet(fs, "seeds") {
		*seeds = maxCampaignSeeds
		if *start > math.MaxUint64-*seeds {
			*seeds = math.MaxUint64 - *start
		}
	}
	var scs []scenarios.Scenario
	if *scenario == "all" {
		if _, err := scenarios.LookupVariant(*variant); err != nil {
			return usageErr(st, "campaign", "%v", err)
		}
		scs = scenarios.Scenarios()
	} else {
		sc, _, err := lookupRun(*scenario, flagSet(fs, "scenario"), *variant)
		if err != nil {
			return usageErr(st, "campaign", "%v", err)
		}
		scs = []scenarios.Scenario{sc}
	}
	if err := checkOutDirLater("-out", *out); err != nil {
		return usageErr(st, "campaign", "%v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(st.err, "walraft campaign: cannot find my own executable to start workers: %v\n", err)
		return exitFail
	}
	c := &coordinator{
		st: st, exe: exe, parallel: *parallel, detEvery: *detEvery, out: *out, variant: *variant, scs: scs,
		seeds: seedRange{start: *start, count: *seeds, sh: sh}, commit: buildCommit(), jsonOut: *asJSON,
		forDur: *forDur,
	}
	sum := c.run()
	if *asJSON {
		if err := writeJSON(st.out, sum); err != nil {
			fmt.Fprintf(st.err, "walraft campaign: %v\n", err)
			return exitFail
		}
	} else {
		printCampaign(st.out, sum)
	}
	if !sum.OK {
		return exitFail
	}
	return exitOK
}

// jobKind says why a job runs.
type jobKind int

const (
	jobMain   jobKind = iota // a seed of the campaign
	jobCheck                 // a determinism re-run in another worker
	jobTraceA                // a traced re-run after a mismatch
	jobTraceB
)

// cjob is a job as the coordinator tracks it.
type cjob struct {
	kind  jobKind
	job   workerJob
	avoid int // a worker this job must not run on (-1: any)
	// sample: a main job whose seed is re-run to check determinism.
	sample bool
	// orig and origW: a check's main job result and its worker.
	orig  *runJSON
	origW int
	// mi: a traced re-run's index in the summary's Mismatches.
	mi int
}

// outcome is a worker's report of one job.
type outcome struct {
	w     int
	j     *cjob
	reply workerReply
	err   error // the worker failed (died, or spoke nonsense)
}

// coordinator runs a campaign's jobs on worker processes.
type coordinator struct {
	st       stdio
	exe      string
	parallel int
	detEvery int
	out      string
	variant  string
	scs      []scenarios.Scenario
	seeds    seedRange
	commit   string
	jsonOut  bool
	forDur   time.Duration // -for: no new seeds after this long (0: run every seed)

	workers  []*workerProc
	sum      *campaignJSON
	stopping bool // interrupted: run nothing new
}

// run executes the campaign and returns its summary.
func (c *coordinator) run() *campaignJSON {
	start := time.Now()
	sum := newCampaignJSON()
	c.sum = sum
	for _, sc := range c.scs {
		sum.Scenarios = append(sum.Scenarios, sc.Name)
	}
	sum.Variant, sum.Start, sum.SeedsRequested = c.variant, c.seeds.start, c.seeds.count
	sum.Shard, sum.Parallel, sum.Commit = c.seeds.sh.String(), c.parallel, c.commit
	var deadline time.Time
	if c.forDur > 0 {
		sum.For = c.forDur.String()
		deadline = start.Add(c.forDur)
	}

	total := c.seeds.len() * uint64(len(c.scs))
	// With one worker a determinism re-run still needs a second process.
	nw := c.parallel
	if nw == 1 && c.detEvery > 0 {
		nw = 2
	}
	results := make(chan outcome, nw)
	var wg sync.WaitGroup
	for i := 0; i < nw; i++ {
		w := &workerProc{id: i, exe: c.exe, jobs: make(chan *cjob, 1)}
		c.workers = append(c.workers, w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop(results)
		}()
	}
	// Every job sent has been answered when the loop below ends, so closing
	// the job channels lets each worker process exit; wait for them so no
	// process outlives the campaign.
	defer func() {
		for _, w := range c.workers {
			close(w.jobs)
		}
		wg.Wait()
	}()

	prog := newProgress(c.st, c.jsonOut, total)
	prog.deadline = deadline
	if c.forDur > 0 {
		fmt.Fprintf(prog.w, "campaign: %s for %v, seeds from %d shard %s, variant %s, %d workers, commit %s\n",
			strings.Join(sum.Scenarios, ","), c.forDur, c.seeds.start, c.seeds.sh, variantName(c.variant), c.parallel, c.commit)
	} else {
		fmt.Fprintf(prog.w, "campaign: %s, seeds %d..%d shard %s (%d runs), variant %s, %d workers, commit %s\n",
			strings.Join(sum.Scenarios, ","), c.seeds.start, c.seeds.start+c.seeds.count-1, c.seeds.sh, total,
			variantName(c.variant), c.parallel, c.commit)
	}

	interrupt := make(chan os.Signal, 1)
	signal.Notify(interrupt, os.Interrupt)
	defer signal.Stop(interrupt)
	tick := time.NewTicker(prog.every)
	defer tick.Stop()

	var next uint64 // the next main job's ordinal
	var prio []*cjob
	busy := make([]bool, nw)
	running := 0
	id := 0
	idle := func(avoid int) int {
		for i, b := range busy {
			if !b && i != avoid {
				return i
			}
		}
		return -1
	}
	for {
		if !deadline.IsZero() && !sum.TimeUp && !time.Now().Before(deadline) {
			// -for: time is up; finish what runs, start no new seed
			// (determinism re-runs of finished seeds still run).
			sum.TimeUp = true
			total = next
			prog.total = next
		}
		// Dispatch: priority jobs (checks, traces) first, then seeds, never
		// more than `parallel` simulations at once.
		for running < c.parallel {
			var j *cjob
			w := -1
			for pi, p := range prio {
				if w = idle(p.avoid); w >= 0 {
					j = p
					prio = append(prio[:pi], prio[pi+1:]...)
					break
				}
			}
			if j == nil && !c.stopping && next < total {
				if w = idle(-1); w >= 0 {
					sc := c.scs[next%uint64(len(c.scs))]
					seed := c.seeds.seed(next / uint64(len(c.scs)))
					// A swarm seed runs, and is accounted, as the
					// scenario it draws (scenarios.SwarmScenario).
					j = &cjob{kind: jobMain, avoid: -1, job: workerJob{Scenario: sc.For(seed).Name, Seed: seed, Variant: c.variant,
						Commit: c.commit, Out: c.out}}
					j.sample = c.detEvery > 0 && next%uint64(c.detEvery) == 0
					next++
				}
			}
			if j == nil {
				break
			}
			id++
			j.job.ID = id
			busy[w] = true
			running++
			c.workers[w].jobs <- j
		}
		if running == 0 && (c.stopping || (next >= total && len(prio) == 0)) {
			break
		}
		select {
		case o := <-results:
			busy[o.w] = false
			running--
			prio = append(prio, c.handle(o, prog)...)
			if c.stopping {
				prio = nil
			}
		case <-tick.C:
			prog.update(sum, false)
			// The loop head notices the deadline.
		case <-interrupt:
			if !c.stopping {
				c.stopping = true
				sum.Interrupted = true
				prio = nil
				prog.note("interrupted: waiting for the running simulations to finish (Ctrl-C again to kill them)")
			} else {
				for _, w := range c.workers {
					w.kill()
				}
			}
		}
	}
	sum.finish(time.Since(start))
	prog.update(sum, true)
	return sum
}

// handle accounts one outcome and returns the jobs it causes.
func (c *coordinator) handle(o outcome, prog *progress) []*cjob {
	j := o.j
	r := o.reply.Result
	if c.stopping && o.err != nil {
		return nil // killed by the second Ctrl-C: not the seed's fault
	}
	if o.err != nil || r == nil {
		msg := "worker returned no result"
		if o.err != nil {
			msg = o.err.Error()
		}
		r = &runJSON{Scenario: j.job.Scenario, Seed: j.job.Seed, Variant: j.job.Variant, Commit: c.commit,
			Violations: []violationJSON{{Invariant: invCrash, Detail: msg}}, Invariants: map[string]string{invCrash: "violated"},
			Replay: replayCommand(j.job.Scenario, j.job.Seed, j.job.Variant)}
	}
	if o.reply.Problem != "" {
		prog.note(fmt.Sprintf("seed %d (%s): %s", j.job.Seed, j.job.Scenario, o.reply.Problem))
	}
	switch j.kind {
	case jobMain:
		c.sum.add(r)
		prog.done++
		if r.failed() {
			where := r.Replay
			if r.Case != "" {
				where = "case " + r.Case
			}
			prog.note(fmt.Sprintf("FAIL seed %d (%s): %s: %s", r.Seed, r.Scenario, strings.Join(r.invariantNames(), ","), where))
		}
		if c.detEvery > 0 && (j.sample || r.failed()) && o.err == nil {
			job := j.job
			job.Out = ""
			return []*cjob{{kind: jobCheck, job: job, avoid: o.w, orig: r, origW: o.w}}
		}
	case jobCheck:
		c.sum.DeterminismChecked++
		if r.TraceHash == j.orig.TraceHash && r.OK == j.orig.OK && o.err == nil {
			return nil
		}
		m := mismatchJSON{Scenario: j.job.Scenario, Seed: j.job.Seed, HashA: j.orig.TraceHash, HashB: r.TraceHash, Index: -1}
		if o.err != nil {
			m.HashB = "(worker failed: " + o.err.Error() + ")"
		}
		c.sum.Mismatches = append(c.sum.Mismatches, m)
		prog.note(fmt.Sprintf("NONDETERMINISM seed %d (%s): trace hash %s in one worker, %s in another; re-running both with traces",
			m.Seed, m.Scenario, m.HashA, m.HashB))
		if err := os.MkdirAll(c.out, 0o755); err != nil {
			c.sum.Mismatches[len(c.sum.Mismatches)-1].Divergence = "cannot write the traces: " + err.Error()
			return nil
		}
		base := filepath.Join(c.out, strings.TrimSuffix(caseBase(j.job), ".json"))
		ja, jb := j.job, j.job
		ja.TraceFile, jb.TraceFile = base+".trace-a.txt", base+".trace-b.txt"
		// Each traced run avoids the worker of the other original run, so
		// the two traces come from two processes.
		mi := len(c.sum.Mismatches) - 1
		return []*cjob{
			{kind: jobTraceA, job: ja, avoid: o.w, mi: mi},
			{kind: jobTraceB, job: jb, avoid: j.origW, mi: mi},
		}
	case jobTraceA, jobTraceB:
		m := &c.sum.Mismatches[j.mi]
		if j.kind == jobTraceA {
			m.TraceA = j.job.TraceFile
		} else {
			m.TraceB = j.job.TraceFile
		}
		if o.err != nil || o.reply.Problem != "" {
			m.Divergence = fmt.Sprintf("traced re-run failed: %v %s", o.err, o.reply.Problem)
			return nil
		}
		if m.TraceA != "" && m.TraceB != "" && m.Divergence == "" {
			m.Index, m.EventA, m.EventB, m.Divergence = compareTraceFiles(m.TraceA, m.TraceB)
			prog.note(fmt.Sprintf("NONDETERMINISM seed %d (%s): %s", m.Seed, m.Scenario, m.Divergence))
		}
	}
	return nil
}

// caseBase is the case file name a job's failure would get.
func caseBase(job workerJob) string {
	c := scenarios.Case{Scenario: job.Scenario, Seed: job.Seed, Variant: job.Variant}
	return c.FileName()
}

// compareTraceFiles finds the first line where two trace files differ.
func compareTraceFiles(a, b string) (index int, ea, eb, desc string) {
	fa, err := os.Open(a)
	if err != nil {
		return -1, "", "", err.Error()
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return -1, "", "", err.Error()
	}
	defer fb.Close()
	sa, sb := bufio.NewScanner(fa), bufio.NewScanner(fb)
	sa.Buffer(make([]byte, 0, 64<<10), 16<<20)
	sb.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for i := 0; ; i++ {
		oka, okb := sa.Scan(), sb.Scan()
		switch {
		case !oka && !okb:
			return -1, "", "", fmt.Sprintf("the traced re-runs agree on all %d events: the divergence did not reproduce (traces %s, %s)", i, a, b)
		case oka && okb && sa.Text() == sb.Text():
			continue
		case !oka:
			return i, "(end of trace)", sb.Text(), fmt.Sprintf("first divergent event #%d: trace A ends, trace B has %q", i, sb.Text())
		case !okb:
			return i, sa.Text(), "(end of trace)", fmt.Sprintf("first divergent event #%d: trace A has %q, trace B ends", i, sa.Text())
		default:
			return i, sa.Text(), sb.Text(), fmt.Sprintf("first divergent event #%d: A %q vs B %q", i, sa.Text(), sb.Text())
		}
	}
}

// printCampaign prints a campaign (or merged) summary as text.
func printCampaign(w io.Writer, s *campaignJSON) {
	fmt.Fprintf(w, "ran %d runs (%s, seeds from %d, shard %s) in %.1fs: %.1f seeds/s\n",
		s.Seeds, strings.Join(s.Scenarios, ","), s.Start, s.Shard, s.WallSeconds, s.SeedsPerSecond)
	fmt.Fprintf(w, "simulated %.0fs: %sx the campaign's wall time, %sx per run on one core; %d events\n",
		s.SimSeconds, fmtRatio(s.SimWallRatio), fmtRatio(s.SimWallRatioOfRun), s.Events)
	fmt.Fprintf(w, "acks   %9s %9s %9s %14s %7s\n", "sent", "ok", "failed", "indeterminate", "lost")
	for _, l := range acksLevels {
		a := s.Acks[l]
		fmt.Fprintf(w, "  %-4s %9d %9d %9d %14d %7d%s\n", l, a.Sent, a.OK, a.Failed, a.Indeterminate, a.Lost, lostNote(s, l, a))
	}
	printByScenario(w, s)
	printCoverage(w, s)
	printAvailDist(w, s.Avail)
	if s.BeyondBudget > 0 {
		fmt.Fprintf(w, "%d runs went beyond the fault budget (not counted)\n", s.BeyondBudget)
	}
	fmt.Fprintf(w, "determinism: %d runs re-run in another worker, %d mismatches\n", s.DeterminismChecked, s.DeterminismMismatches)
	for _, m := range s.Mismatches {
		fmt.Fprintf(w, "  seed %d (%s): hashes %s vs %s: %s\n", m.Seed, m.Scenario, m.HashA, m.HashB, m.Divergence)
	}
	invs := sortedKeys(s.ViolationsByInvariant)
	sortInvariants(invs)
	if s.Failed == 0 {
		fmt.Fprintln(w, "violations: none")
	} else {
		fmt.Fprintf(w, "violations: %d failing runs\n", s.Failed)
		for _, k := range invs {
			fmt.Fprintf(w, "  %-14s %d runs\n", k, s.ViolationsByInvariant[k])
		}
		for i, f := range s.Failures {
			if i == 20 {
				fmt.Fprintf(w, "  ... and %d more (see -json)\n", len(s.Failures)-i)
				break
			}
			where := f.Replay
			if f.Case != "" {
				where = self() + " replay " + f.Case
			}
			fmt.Fprintf(w, "  seed %d (%s) %s: %s\n    %s\n", f.Seed, f.Scenario, strings.Join(f.Invariants, ","), f.Detail, where)
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

// defaultRunTimeout is -run-timeout's default: the slowest correct run of
// the catalogue takes seconds, so ten minutes is a run that never ends.
const defaultRunTimeout = 10 * time.Minute

// runWallLimit is the wall-clock limit on one run in a worker (0: none).
// A livelock that keeps the simulator busy is ended by its storm guard
// (LIVELOCK, deterministic and replayable); this catches the rest, a run
// stuck inside one event, whose worker is killed and the seed recorded as
// a WORKER-CRASH naming the limit.
var runWallLimit = defaultRunTimeout

// workerProc is one worker process and the goroutine that talks to it.
type workerProc struct {
	id   int
	exe  string
	jobs chan *cjob

	// proc is the running process, for kill from the coordinator.
	proc atomic.Pointer[os.Process]

	// Owned by loop.
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Reader
	stderr *tailBuffer
}

// loop runs the jobs sent to the worker, (re)starting its process as
// needed, until jobs is closed.
func (w *workerProc) loop(results chan<- outcome) {
	defer w.stop()
	for j := range w.jobs {
		reply, err := w.do(j.job)
		if err != nil {
			w.stop()
		} else if reply.Exit {
			w.stop()
		}
		results <- outcome{w: w.id, j: j, reply: reply, err: err}
	}
}

// do sends one job and waits for its reply.
func (w *workerProc) do(job workerJob) (workerReply, error) {
	if w.cmd == nil {
		if err := w.start(); err != nil {
			return workerReply{}, err
		}
	}
	line, err := json.Marshal(job)
	if err != nil {
		return workerReply{}, err
	}
	if _, err := w.stdin.Write(append(line, '\n')); err != nil {
		return workerReply{}, w.died(err)
	}
	var overran atomic.Bool
	if runWallLimit > 0 {
		watchdog := time.AfterFunc(runWallLimit, func() {
			overran.Store(true)
			w.kill()
		})
		defer watchdog.Stop()
	}
	b, err := w.out.ReadBytes('\n')
	if err != nil {
		if overran.Load() {
			err = fmt.Errorf("the run took longer than -run-timeout %v of wall-clock time and was killed", runWallLimit)
		}
		return workerReply{}, w.died(err)
	}
	var reply workerReply
	if err := json.Unmarshal(b, &reply); err != nil || reply.ID != job.ID {
		return workerReply{}, w.died(fmt.Errorf("bad reply %q (%v)", truncate(string(b), 200), err))
	}
	return reply, nil
}

func (w *workerProc) start() error {
	cmd := exec.Command(w.exe, "worker")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	w.stderr = &tailBuffer{max: 4 << 10}
	cmd.Stderr = w.stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	w.cmd, w.stdin, w.out = cmd, stdin, bufio.NewReaderSize(stdout, 64<<10)
	w.proc.Store(cmd.Process)
	return nil
}

// died reaps a worker that failed mid-job and describes why.
func (w *workerProc) died(cause error) error {
	w.stdin.Close()
	w.cmd.Process.Kill()
	werr := w.cmd.Wait()
	tail := strings.TrimSpace(string(w.stderr.buf))
	w.cmd = nil
	w.proc.Store(nil)
	msg := fmt.Sprintf("worker process died (%v; %v)", cause, werr)
	if tail != "" {
		msg += ": " + tail
	}
	return errors.New(msg)
}

// stop ends the worker process: EOF on stdin makes it exit.
func (w *workerProc) stop() {
	if w.cmd == nil {
		return
	}
	w.stdin.Close()
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			w.cmd.Process.Kill()
		}
	}()
	w.cmd.Wait()
	close(done)
	w.cmd = nil
	w.proc.Store(nil)
}

// kill ends the worker process now (a second Ctrl-C).
func (w *workerProc) kill() {
	if p := w.proc.Load(); p != nil {
		p.Kill()
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// progress reports a campaign's progress: a live line on a terminal,
// plain periodic lines otherwise.
type progress struct {
	w     io.Writer
	live  bool
	every time.Duration
	start time.Time
	total uint64
	done  uint64
	last  uint64 // done at the last plain line
	shown bool   // a live line is on screen

	deadline time.Time // -for: the line shows the time left instead of an ETA
}

func newProgress(st stdio, jsonOut bool, total uint64) *progress {
	w := st.out
	if jsonOut {
		w = st.err
	}
	p := &progress{w: w, start: time.Now(), total: total, every: 10 * time.Second}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.live, p.every = true, 250*time.Millisecond
		}
	}
	return p
}

func (p *progress) line(s *campaignJSON) string {
	el := time.Since(p.start)
	rate := float64(p.done) / el.Seconds()
	eta := "?"
	if rate > 0 {
		eta = fmtDur(time.Duration(float64(p.total-p.done) / rate * float64(time.Second)))
	}
	if !p.deadline.IsZero() {
		return fmt.Sprintf("%d seeds  %.1f seeds/s  %d failed  determinism %d re-run, %d mismatches  elapsed %s  left %s",
			p.done, rate, s.Failed, s.DeterminismChecked, s.DeterminismMismatches, fmtDur(el), fmtDur(max(time.Until(p.deadline), 0)))
	}
	return fmt.Sprintf("%d/%d seeds  %.1f seeds/s  %d failed  determinism %d re-run, %d mismatches  elapsed %s  ETA %s",
		p.done, p.total, rate, s.Failed, s.DeterminismChecked, s.DeterminismMismatches, fmtDur(el), eta)
}

// update redraws the live line, or prints a plain line when there is news.
func (p *progress) update(s *campaignJSON, final bool) {
	switch {
	case p.live && final:
		if p.shown {
			fmt.Fprint(p.w, "\r\x1b[K")
			p.shown = false
		}
	case p.live:
		fmt.Fprintf(p.w, "\r\x1b[K%s", p.line(s))
		p.shown = true
	case !final && p.done != p.last:
		p.last = p.done
		fmt.Fprintln(p.w, p.line(s))
	}
}

// note prints a message on its own line, above the live line.
func (p *progress) note(msg string) {
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
	}
	fmt.Fprintln(p.w, msg)
}

// printCoverage prints every registered probe's hit rate (runs that
// reached it, of all runs), required ones marked, and the coverage verdict:
// one line naming the required probes never reached.
func printCoverage(w io.Writer, s *campaignJSON) {
	fmt.Fprintf(w, "probe coverage (runs that reached each probe, of %d; * = required):\n", s.Seeds)
	for _, p := range s.Coverage {
		if p.Runs == 0 && !p.Required {
			continue
		}
		mark := " "
		if p.Required {
			mark = "*"
		}
		fmt.Fprintf(w, " %s%-40s %6d runs %6.1f%% %9d times\n", mark, p.Name, p.Runs, 100*p.Rate, s.ProbeHits[p.Name])
	}
	if len(s.ExpectMissing) > 0 {
		fmt.Fprintf(w, "coverage: expected probe never reached (scenario: probe; each reached by nearly every correct run, judged at >= %d runs of the scenario): %s: the path behind it stopped running\n",
			scenarios.ExpectMinRuns, strings.Join(s.ExpectMissing, ", "))
	}
	switch {
	case len(s.CoverageMissing) > 0:
		fmt.Fprintln(w, scenarios.CoverageFailure(s.CoverageMissing, s.Seeds))
	case s.CoverageJudged:
		fmt.Fprintf(w, "coverage: every required probe reached (every scenario >= %d runs)\n", scenarios.CoverageMinRuns)
	default:
		fmt.Fprintf(w, "coverage of the required probes: not judged (a correct-system campaign of every scenario with >= %d runs each is)\n", scenarios.CoverageMinRuns)
	}
}
