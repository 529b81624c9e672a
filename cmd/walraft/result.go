package main

import (
	"cmp"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"walraft/scenarios"
)

// runSim is the single entry point to a simulation. Tests replace it with a
// fake so the CLI's plumbing is tested without the harness; only one
// simulation may run per process at a time (DESIGN.md section 4), which the
// CLI respects by running them one after another.
var runSim = scenarios.Run

// Invariant names the CLI uses for failures that are not checker
// verdicts. They appear in case files and summaries like S1..L2.
// PANIC is also the name the harness gives a panic it recovers itself.
const (
	invPanic = "PANIC"        // the simulation panicked (a broken invariant inside the code, or a harness bug)
	invError = "ERROR"        // the simulation returned an error
	invCrash = "WORKER-CRASH" // a campaign worker process died during the run
)

// knownInvariants are the invariants of DESIGN.md section 6, listed in a
// run's verdict even when they held.
var knownInvariants = scenarios.CheckedInvariants

// errSimPanic wraps a panic recovered from a simulation.
var errSimPanic = errors.New("simulation panicked")

// simulate runs one simulation, turning a panic into an error that carries
// the panic value and the innermost frames of its stack.
func simulate(o scenarios.Options, rc scenarios.RunConfig) (res *scenarios.Result, wall time.Duration, err error) {
	tuneGC()
	start := time.Now()
	defer func() {
		wall = time.Since(start)
		if r := recover(); r != nil {
			res, err = nil, fmt.Errorf("%w: %v\n%s", errSimPanic, r, stackTop(debug.Stack(), 12))
		}
	}()
	res, err = runSim(o, rc)
	if err == nil && res == nil {
		err = errors.New("simulation returned no result")
	}
	return res, 0, err
}

// stackTop keeps the first n lines of a stack after the panic machinery.
func stackTop(stack []byte, n int) string {
	lines := strings.Split(string(stack), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "panic(") {
			lines = lines[i:]
			break
		}
	}
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// violationJSON is one violation in -json output.
type violationJSON struct {
	Invariant   string  `json:"invariant"`
	Detail      string  `json:"detail"`
	TimeSeconds float64 `json:"time_seconds"`
}

// acksJSON are the counts of one acks level in -json output.
type acksJSON struct {
	Sent          int `json:"sent"`
	OK            int `json:"ok"`
	Failed        int `json:"failed"`
	Indeterminate int `json:"indeterminate"`
	Lost          int `json:"lost"`
}

func (a *acksJSON) add(b acksJSON) {
	a.Sent += b.Sent
	a.OK += b.OK
	a.Failed += b.Failed
	a.Indeterminate += b.Indeterminate
	a.Lost += b.Lost
}

// acksLevels are the keys of Result.Acks, in display order.
var acksLevels = []string{"0", "1", "all"}

// runJSON is the outcome of one simulation: `walraft run -json` prints it,
// campaign workers send it back to the coordinator (without options and
// schedule), and replay extends it.
type runJSON struct {
	Scenario string `json:"scenario"`
	Seed     uint64 `json:"seed"`
	Variant  string `json:"variant"`
	// OK: every invariant held, or the run went beyond the fault budget
	// (then BeyondBudget says why and violations are not bugs).
	OK           bool                `json:"ok"`
	BeyondBudget string              `json:"beyond_budget,omitempty"`
	Violations   []violationJSON     `json:"violations"`
	Invariants   map[string]string   `json:"invariants"` // invariant -> "ok" | "violated" | "not-applicable" | "not-checked"
	TraceHash    string              `json:"trace_hash"`
	SimSeconds   float64             `json:"sim_seconds"`
	WallSeconds  float64             `json:"wall_seconds"`
	SimWallRatio float64             `json:"sim_wall_ratio"`
	Events       uint64              `json:"events"`
	Acks         map[string]acksJSON `json:"acks"`
	Probes       map[string]int      `json:"probes"`
	Faults       int                 `json:"faults"`
	// Unfired are the faults that never took effect (a trigger that never
	// fired in the safety phase; scenarios.Result.Unfired).
	Unfired []string  `json:"unfired,omitempty"`
	Avail   availJSON `json:"avail"`
	Commit  string    `json:"commit"`
	// Replay is the command that runs this seed again.
	Replay string `json:"replay"`
	// Case is the case file written for a failing run, if any.
	Case     string              `json:"case,omitempty"`
	Options  *scenarios.Options  `json:"options,omitempty"`
	Schedule *scenarios.Schedule `json:"schedule,omitempty"`
}

// failed reports whether the run counts as a failure (a bug, not a run
// beyond the fault budget).
func (r *runJSON) failed() bool { return !r.OK }

// invariantNames returns the distinct invariants the run violated, sorted
// by the order of knownInvariants then by name.
func (r *runJSON) invariantNames() []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range r.Violations {
		if !seen[v.Invariant] {
			seen[v.Invariant] = true
			out = append(out, v.Invariant)
		}
	}
	sortInvariants(out)
	return out
}

// sortInvariants orders S1..S8, L1, L2 first, then the rest by name.
func sortInvariants(names []string) {
	rank := func(s string) int {
		if i := slices.Index(knownInvariants, s); i >= 0 {
			return i
		}
		return len(knownInvariants)
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(a, b))
	})
}

// summarize turns a simulation's outcome into a runJSON. A simulation that
// returned an error or panicked becomes a failing run whose violation says
// so, so campaigns count it and the replay command reproduces it.
func summarize(o scenarios.Options, variant string, res *scenarios.Result, wall time.Duration, simErr error, commit string) *runJSON {
	r := &runJSON{
		Scenario: o.Scenario, Seed: o.Seed, Variant: variant,
		Violations: []violationJSON{}, Invariants: map[string]string{},
		Acks: map[string]acksJSON{}, Probes: map[string]int{},
		WallSeconds: wall.Seconds(), Commit: commit,
		Replay: replayCommand(o.Scenario, o.Seed, variant),
	}
	for _, l := range acksLevels {
		r.Acks[l] = acksJSON{}
	}
	for _, k := range knownInvariants {
		r.Invariants[k] = "ok"
	}
	if simErr != nil {
		for _, k := range knownInvariants {
			r.Invariants[k] = "not-checked"
		}
		inv := invError
		if errors.Is(simErr, errSimPanic) {
			inv = invPanic
		}
		r.Violations = append(r.Violations, violationJSON{Invariant: inv, Detail: simErr.Error()})
		r.Invariants[inv] = "violated"
		return r
	}
	r.OK = res.OK()
	r.BeyondBudget = res.BeyondBudget
	for _, f := range res.Unfired {
		r.Unfired = append(r.Unfired, strings.TrimSpace(f.String()))
	}
	for _, v := range res.Report.Verdicts {
		r.Invariants[v.Invariant] = string(v.Verdict)
	}
	for _, v := range res.Violations {
		r.Violations = append(r.Violations, violationJSON{Invariant: v.Invariant, Detail: v.Detail, TimeSeconds: v.Time.Seconds()})
		r.Invariants[v.Invariant] = "violated"
	}
	if r.OK && r.BeyondBudget == "" && len(r.Violations) > 0 {
		// Result.OK and the violations disagree: trust the violations.
		r.OK = false
	}
	r.TraceHash = scenarios.FormatTraceHash(res.TraceHash)
	r.SimSeconds = res.SimTime.Seconds()
	if wall > 0 {
		r.SimWallRatio = res.SimTime.Seconds() / wall.Seconds()
	}
	r.Events = res.Events
	for k, a := range res.Acks {
		r.Acks[k] = acksJSON{Sent: a.Sent, OK: a.OK, Failed: a.Failed, Indeterminate: a.Indeterminate, Lost: a.Lost}
	}
	for k, n := range res.Probes {
		r.Probes[k] = n
	}
	r.Faults = len(res.Schedule)
	r.Avail = newAvailJSON(res.Avail)
	return r
}

// replayCommand is the command line that runs a seed again, starting with
// the command the user ran (self).
func replayCommand(scenario string, seed uint64, variant string) string {
	s := fmt.Sprintf("%s run -scenario %s -seed %d", self(), scenario, seed)
	if variant != "" {
		s += " -variant " + variant
	}
	return s
}

// newCase builds the case file of a failing run. It needs the run's
// result: the schedule a seed generates is only known from it.
func newCase(variant string, res *scenarios.Result, r *runJSON) *scenarios.Case {
	c := &scenarios.Case{
		Version: scenarios.CaseVersion, Scenario: res.Options.Scenario, Seed: res.Options.Seed, Variant: variant,
		Commit: r.Commit, TraceHash: r.TraceHash, Options: res.Options, Schedule: res.Schedule,
	}
	c.Options.Variant = variant
	if c.Commit == "" {
		c.Commit = "unknown"
	}
	for _, v := range res.Violations {
		c.Violations = append(c.Violations, scenarios.CaseViolation{Invariant: v.Invariant, Detail: v.Detail, Time: v.Time})
	}
	return c
}

// lookupRun resolves -scenario and -variant: the variant must exist, and
// when no scenario was named a variant runs in the scenario it is expected
// to be caught in.
func lookupRun(scenario string, scenarioSet bool, variant string) (scenarios.Scenario, scenarios.Variant, error) {
	v, err := scenarios.LookupVariant(variant)
	if err != nil {
		return scenarios.Scenario{}, v, err
	}
	if !scenarioSet && v.Scenario != "" {
		scenario = v.Scenario
	}
	sc, err := scenarios.Lookup(scenario)
	return sc, v, err
}

// drawOptions draws a seed's options for a scenario and variant.
func drawOptions(sc scenarios.Scenario, seed uint64, variant string) scenarios.Options {
	o := sc.Draw(seed)
	o.Variant = variant
	return o
}
