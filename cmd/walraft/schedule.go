package main

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"walraft/scenarios"
)

// scheduleHelp ends `walraft run -h`: what a seed means when a file fixes
// the options and the schedule.
const scheduleHelp = `
With -schedule FILE, the options (workload mix, cluster size, disk and network
settings, knobs) and the fault schedule come from the file, and the seed drives
everything the file leaves to chance: the workload itself (which client sends
what and when, record sizes, acks levels), network latency, jitter, loss and
duplication draws, fsync latencies, which blocks a torn crash keeps, Raft's
election timeouts, and the seeded choices of aimed faults (which follower,
which minority). A fault aimed at a role hits whoever holds that role in that
seed's run, so one schedule explores a different interleaving per seed.
Without -seed or -seeds the file's own seed runs. -seeds A-B runs A..B in
turn: one line per seed, then a summary; exit 1 if any seed violates an
invariant. The file is the case-file format of testdata/cases (violations,
trace_hash and commit may be left out; "expect" and "note" are kept for
people and for go test); it is checked before anything runs, and a bad file
or flag is exit 2 with one line.
`

// maxScheduleSeeds bounds -seeds A-B: a range is run in this process, one
// seed after another; a larger sweep is a campaign's job.
const maxScheduleSeeds = 100000

// scheduleFlags are `walraft run`'s flags as runSchedule needs them.
type scheduleFlags struct {
	path                string
	seed                uint64
	seedSet             bool
	seeds               string
	seedsSet            bool
	scenarioSet         bool
	variant             string
	variantSet          bool
	trace, history, out string
	json                bool
}

// scheduleRun is one seed's outcome in a -seeds range (`-json` prints a
// list of them).
type scheduleRun struct {
	Seed       uint64   `json:"seed"`
	OK         bool     `json:"ok"`
	Invariants []string `json:"invariants"` // violated, sorted
	TraceHash  string   `json:"trace_hash"`
	// AsExpected: the verdict is the file's "expect" (absent when the file
	// expects nothing).
	AsExpected *bool `json:"as_expected,omitempty"`
	// Detail is the first violation's first line.
	Detail string `json:"detail,omitempty"`
	Case   string `json:"case,omitempty"`
	// Replay runs this seed of the file again.
	Replay string `json:"replay"`
	// Unfired counts the faults that never took effect in this seed.
	Unfired int `json:"unfired,omitempty"`
}

// scheduleSummary is `walraft run -schedule FILE -seeds A-B -json`.
type scheduleSummary struct {
	Schedule   string `json:"schedule"`
	Scenario   string `json:"scenario"`
	Variant    string `json:"variant"`
	From       uint64 `json:"from"`
	To         uint64 `json:"to"`
	Expect     string `json:"expect,omitempty"`
	Held       int    `json:"held"`
	Violated   int    `json:"violated"`
	AsExpected int    `json:"as_expected"`
	// SeedsWithUnfired counts the seeds in which some fault never took
	// effect.
	SeedsWithUnfired int           `json:"seeds_with_unfired,omitempty"`
	Failed           []uint64      `json:"failed_seeds"`
	Runs             []scheduleRun `json:"runs"`
	Commit           string        `json:"commit"`
}

// parseSeedRange parses -seeds "A-B" (A <= B, at most maxScheduleSeeds
// seeds).
func parseSeedRange(s string) (from, to uint64, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("-seeds %q: want a range A-B, e.g. 1-20", s)
	}
	from, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 64)
	to, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 64)
	switch {
	case err1 != nil || err2 != nil:
		return 0, 0, fmt.Errorf("-seeds %q: want a range A-B of seeds (unsigned integers), e.g. 1-20", s)
	case from > to:
		return 0, 0, fmt.Errorf("-seeds %q: the range is empty (%d > %d)", s, from, to)
	case to-from >= maxScheduleSeeds:
		return 0, 0, fmt.Errorf("-seeds %q: %d seeds (at most %d; use campaign for more)", s, to-from+1, maxScheduleSeeds)
	}
	return from, to, nil
}

// scheduleReplay is the command that runs one seed of a schedule file.
func scheduleReplay(path string, seed uint64, variant string) string {
	s := fmt.Sprintf("%s run -schedule %s -seed %d", self(), path, seed)
	if variant != "" {
		s += " -variant " + variant
	}
	return s
}

// runSchedule is `walraft run -schedule FILE [-seed N | -seeds A-B]`:
// everything is checked (flags, file, output paths) before the first run.
func runSchedule(st stdio, f scheduleFlags) int {
	switch {
	case f.path == "":
		return usageErr(st, "run", "-seeds needs -schedule FILE (for many seeds of a scenario, use campaign)")
	case f.scenarioSet:
		return usageErr(st, "run", "-scenario and -schedule: the scenario comes from the schedule file")
	case f.seedSet && f.seedsSet:
		return usageErr(st, "run", "-seed and -seeds: give one seed or a range, not both")
	}
	c, err := scenarios.ReadScheduleFile(f.path)
	if err != nil {
		return usageErr(st, "run", "%v", firstLine(err.Error()))
	}
	variant := c.Variant
	if f.variantSet {
		if _, err := scenarios.LookupVariant(f.variant); err != nil {
			return usageErr(st, "run", "%v", err)
		}
		variant = f.variant
	}
	from, to := c.Seed, c.Seed
	if f.seedSet {
		from, to = f.seed, f.seed
	}
	if f.seedsSet {
		if from, to, err = parseSeedRange(f.seeds); err != nil {
			return usageErr(st, "run", "%v", err)
		}
		if from != to && (f.trace != "" || f.history != "") {
			return usageErr(st, "run", "-trace and -history write one run: give -seed N, not a range")
		}
	}
	if code := checkOutPaths(st, "run", []outFlag{{"-trace", f.trace, false}, {"-history", f.history, false}, {"-out", f.out, true}}); code >= 0 {
		return code
	}
	if from == to && !f.seedsSet {
		return runScheduleOne(st, f, c, variant, from)
	}
	return runScheduleRange(st, f, c, variant, from, to)
}

// scheduleOptions are the file's options for one seed and variant.
func scheduleOptions(c *scenarios.Case, variant string, seed uint64) scenarios.Options {
	o := c.Options
	o.Seed, o.Variant = seed, variant
	return o
}

// runScheduleSeed runs one seed of the file and summarises it; with -out
// the case of a failing run is written.
func runScheduleSeed(st stdio, f scheduleFlags, c *scenarios.Case, variant string, seed uint64, commit string) (*runJSON, *scenarios.Result) {
	o := scheduleOptions(c, variant, seed)
	rc := scenarios.RunConfig{Variant: variant, Schedule: c.Schedule, UseSchedule: true, RecordTrace: f.trace != ""}
	res, wall, simErr := simulate(o, rc)
	r := summarize(o, variant, res, wall, simErr, commit)
	r.Replay = scheduleReplay(f.path, seed, variant)
	if res != nil && r.failed() && f.out != "" {
		k := newCase(variant, res, r)
		k.Note = fmt.Sprintf("schedule %s, seed %d", f.path, seed)
		path := filepath.Join(f.out, k.FileName())
		if err := scenarios.WriteCase(path, k); err != nil {
			fmt.Fprintf(st.err, "walraft run: %v\n", err)
		} else {
			r.Case = path
		}
	}
	return r, res
}

// asExpected reports whether a run's verdict is the file's "expect" (nil
// when the file expects nothing). The expect is for the file's own
// variant: run with another one, a variant the file lists in caught_by is
// expected to break an invariant, and any other is not judged (nil).
func asExpected(c *scenarios.Case, variant string, r *runJSON) *bool {
	if variant != c.Variant {
		if !slices.Contains(c.CaughtBy, variant) {
			return nil
		}
		ok := r.failed()
		return &ok
	}
	if c.Expect == "" {
		return nil
	}
	ok := !r.failed()
	if c.Expect != scenarios.ExpectHold {
		ok = r.Invariants[c.Expect] == "violated"
	}
	return &ok
}

// runScheduleOne runs one seed of a schedule file with run's full output.
func runScheduleOne(st stdio, f scheduleFlags, c *scenarios.Case, variant string, seed uint64) int {
	commit := buildCommit()
	o := scheduleOptions(c, variant, seed)
	if !f.json {
		fmt.Fprintf(st.out, "walraft run: schedule %s (scenario %s), seed %d, variant %s\n", f.path, o.Scenario, seed, variantName(variant))
		if c.Note != "" {
			fmt.Fprintf(st.out, "note: %s\n", c.Note)
		}
		printOptions(st.out, o)
	}
	r, res := runScheduleSeed(st, f, c, variant, seed, commit)
	code := exitOK
	if r.failed() {
		code = exitFail
	}
	if res != nil {
		if f.trace != "" {
			if err := writeTrace(f.trace, res.Trace); err != nil {
				fmt.Fprintf(st.err, "walraft run: %v\n", err)
				code = exitFail
			}
		}
		if f.history != "" {
			if err := writeHistory(f.history, res); err != nil {
				fmt.Fprintf(st.err, "walraft run: %v\n", err)
				code = exitFail
			}
		}
	}
	if f.json {
		r.Options = &o
		if res != nil {
			r.Options = &res.Options
			r.Schedule = &res.Schedule
		}
		if err := writeJSON(st.out, r); err != nil {
			fmt.Fprintf(st.err, "walraft run: %v\n", err)
			return exitFail
		}
		return code
	}
	printSchedule(st.out, c.Schedule)
	printVerdict(st.out, r)
	if c.TraceHash != "" && seed == c.Seed && variant == c.Variant {
		if r.TraceHash == c.TraceHash {
			fmt.Fprintln(st.out, "trace hash matches the file's")
		} else {
			fmt.Fprintf(st.out, "trace hash differs from the file's %s (the code changed since it was recorded)\n", c.TraceHash)
		}
	}
	printUnfired(st.out, r.Unfired, len(c.Schedule))
	if ok := asExpected(c, variant, r); ok != nil {
		fmt.Fprintf(st.out, "%s: %s\n", expectLabel(c, variant), expectWord(*ok))
	} else if variant != c.Variant && c.Expect != "" {
		fmt.Fprintf(st.out, "expect %s is for %s, not judged for %s (not in caught_by)\n", c.Expect, variantName(c.Variant), variantName(variant))
	}
	printOutcome(st.out, r)
	return code
}

// printUnfired says which faults of a schedule never took effect: a
// schedule whose faults never act holds for nothing.
func printUnfired(w io.Writer, unfired []string, faults int) {
	if len(unfired) == 0 {
		return
	}
	fmt.Fprintf(w, "note: %d of %d faults never took effect (a trigger that never fired in the safety phase):\n", len(unfired), faults)
	for _, f := range unfired {
		fmt.Fprintf(w, "  %s\n", f)
	}
}

// expectLabel names what a run is judged against: the file's expect, or,
// for a variant the file lists in caught_by, that it is caught.
func expectLabel(c *scenarios.Case, variant string) string {
	if variant != c.Variant {
		return "caught_by " + variant
	}
	return "expect " + c.Expect
}

func expectWord(ok bool) string {
	if ok {
		return "as expected"
	}
	return "NOT as expected"
}

// runScheduleRange runs seeds from..to of a schedule file: one line per
// seed, then a summary.
func runScheduleRange(st stdio, f scheduleFlags, c *scenarios.Case, variant string, from, to uint64) int {
	commit := buildCommit()
	sum := scheduleSummary{Schedule: f.path, Scenario: c.Scenario, Variant: variant, From: from, To: to,
		Expect: c.Expect, Failed: []uint64{}, Runs: []scheduleRun{}, Commit: commit}
	if !f.json {
		fmt.Fprintf(st.out, "walraft run: schedule %s (scenario %s, %d faults), seeds %d-%d, variant %s\n",
			f.path, c.Scenario, len(c.Schedule), from, to, variantName(variant))
		if c.Note != "" {
			fmt.Fprintf(st.out, "note: %s\n", c.Note)
		}
	}
	var unfired []string // every fault that never took effect in some seed
	for seed := from; ; seed++ {
		r, _ := runScheduleSeed(st, f, c, variant, seed, commit)
		run := scheduleRun{Seed: seed, OK: !r.failed(), Invariants: r.invariantNames(), TraceHash: r.TraceHash,
			AsExpected: asExpected(c, variant, r), Case: r.Case, Replay: r.Replay, Unfired: len(r.Unfired)}
		for _, u := range r.Unfired {
			if !slices.Contains(unfired, u) {
				unfired = append(unfired, u)
			}
		}
		if len(r.Unfired) > 0 {
			sum.SeedsWithUnfired++
		}
		if run.Invariants == nil {
			run.Invariants = []string{}
		}
		if len(r.Violations) > 0 {
			v := r.Violations[0]
			run.Detail = fmt.Sprintf("%s at %.3fs: %s", v.Invariant, v.TimeSeconds, truncate(firstLine(v.Detail), 200))
		}
		if run.OK {
			sum.Held++
		} else {
			sum.Violated++
			sum.Failed = append(sum.Failed, seed)
		}
		if run.AsExpected != nil && *run.AsExpected {
			sum.AsExpected++
		}
		sum.Runs = append(sum.Runs, run)
		if !f.json {
			printScheduleRun(st.out, run, r)
		}
		if seed == to {
			break
		}
	}
	code := exitOK
	if sum.Violated > 0 {
		code = exitFail
	}
	if f.json {
		if err := writeJSON(st.out, sum); err != nil {
			fmt.Fprintf(st.err, "walraft run: %v\n", err)
			return exitFail
		}
		return code
	}
	n := len(sum.Runs)
	fmt.Fprintf(st.out, "schedule %s: %d seeds (%d-%d), %d held, %d violated", f.path, n, from, to, sum.Held, sum.Violated)
	if len(sum.Failed) > 0 {
		fmt.Fprintf(st.out, " (seeds %s)", joinSeeds(sum.Failed, 20))
	}
	fmt.Fprintln(st.out)
	if sum.SeedsWithUnfired > 0 {
		fmt.Fprintf(st.out, "note: in %d of %d seeds some faults never took effect (a trigger that never fired in the safety phase):\n", sum.SeedsWithUnfired, n)
		for _, u := range unfired {
			fmt.Fprintf(st.out, "  %s\n", u)
		}
	}
	switch {
	case variant != c.Variant && slices.Contains(c.CaughtBy, variant):
		fmt.Fprintf(st.out, "caught_by %s: caught in %d of %d seeds\n", variant, sum.AsExpected, n)
	case variant != c.Variant && c.Expect != "":
		fmt.Fprintf(st.out, "expect %s is for %s, not judged for %s (not in caught_by)\n", c.Expect, variantName(c.Variant), variantName(variant))
	case c.Expect != "":
		fmt.Fprintf(st.out, "expect %s: %d of %d seeds as expected\n", c.Expect, sum.AsExpected, n)
	}
	if code == exitFail {
		fmt.Fprintf(st.out, "FAIL: %d of %d seeds violated an invariant\n", sum.Violated, n)
	} else {
		fmt.Fprintln(st.out, "PASS")
	}
	return code
}

// printScheduleRun prints one seed's line of a range.
func printScheduleRun(w io.Writer, run scheduleRun, r *runJSON) {
	verdict := "PASS"
	if !run.OK {
		verdict = "FAIL " + strings.Join(run.Invariants, ",")
	}
	line := fmt.Sprintf("seed %-6d %-10s trace %s", run.Seed, verdict, run.TraceHash)
	if r.Avail.Judged {
		line += fmt.Sprintf("  longest unavailability %.3fs", r.Avail.LongestSeconds)
	}
	if run.Detail != "" {
		line += "  " + run.Detail
	}
	if run.Case != "" {
		line += "  case " + run.Case
	}
	if run.Unfired > 0 {
		line += fmt.Sprintf("  (%d faults never took effect)", run.Unfired)
	}
	fmt.Fprintln(w, line)
}

// joinSeeds renders up to max seeds, then how many more.
func joinSeeds(seeds []uint64, max int) string {
	var parts []string
	for i, s := range seeds {
		if i == max {
			parts = append(parts, fmt.Sprintf("and %d more", len(seeds)-i))
			break
		}
		parts = append(parts, strconv.FormatUint(s, 10))
	}
	return strings.Join(parts, " ")
}
