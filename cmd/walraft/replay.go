package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"walraft/scenarios"
	"walraft/sim"
)

// replayTail is how many trace events a replay keeps at first; when the
// violation happened before them, the replay runs again recording the full
// trace.
const replayTail = 20000

// replayJSON is `walraft replay -json`'s object: the run plus how it
// compares with the case.
type replayJSON struct {
	runJSON
	RecordedTraceHash string   `json:"recorded_trace_hash"`
	RecordedCommit    string   `json:"recorded_commit"`
	RecordedInvariant []string `json:"recorded_invariants"`
	// Drift: the trace hash differs from the case's, so the code changed
	// since the case was written and the run is not the recorded one.
	Drift bool `json:"drift"`
	// Reproduced: the run violated at least one invariant the case
	// recorded.
	Reproduced bool     `json:"reproduced"`
	Timeline   []string `json:"timeline"`
}

// cmdReplay re-runs a case file: `walraft replay CASE`.
func cmdReplay(args []string, st stdio) int {
	fs := newFlags("replay", st)
	tracePath := fs.String("trace", "", "write the full event trace to `FILE`, one event per line")
	historyPath := fs.String("history", "", "write the client history to `FILE` as JSON lines")
	hide := fs.String("hide", "net.deliver", "comma-separated trace event `kinds` (or kind prefixes ending in '.') left out of the timeline; \"\" shows every event")
	window := fs.Int("window", 40, "`number` of trace events to show before the violation (a quarter as many after)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	pos, code := parseFlags(fs, args, 1, 1)
	if code >= 0 {
		return code
	}
	if *window < 1 || *window > 100000 {
		return usageErr(st, "replay", "-window %d: want 1..100000", *window)
	}
	c, err := scenarios.ReadCase(pos[0])
	if err != nil {
		return usageErr(st, "replay", "%v", err)
	}
	commit := buildCommit()
	o := c.Options
	if !*asJSON {
		fmt.Fprintf(st.out, "walraft replay %s\n", pos[0])
		fmt.Fprintf(st.out, "case: scenario %s, seed %d, variant %s, written at commit %s (this build: %s)\n",
			c.Scenario, c.Seed, variantName(c.Variant), c.Commit, commit)
		for _, v := range c.Violations {
			fmt.Fprintf(st.out, "recorded: %s at %.6fs: %s\n", v.Invariant, v.Time.Seconds(), indent(v.Detail, "  "))
		}
		if c.Note != "" {
			fmt.Fprintf(st.out, "note: %s\n", c.Note)
		}
		printOptions(st.out, o)
		printSchedule(st.out, c.Schedule)
	}
	rc := scenarios.RunConfig{Variant: c.Variant, Schedule: c.Schedule, UseSchedule: true, TraceTail: replayTail}
	if *tracePath != "" {
		rc.RecordTrace, rc.TraceTail = true, 0
	}
	res, wall, simErr := simulate(o, rc)
	r := summarize(o, c.Variant, res, wall, simErr, commit)
	r.Case = pos[0]
	out := replayJSON{runJSON: *r, RecordedTraceHash: c.TraceHash, RecordedCommit: c.Commit,
		RecordedInvariant: c.Invariants(), Drift: r.TraceHash != c.TraceHash, Timeline: []string{}}
	for _, inv := range c.ExpectedInvariants() {
		out.Reproduced = out.Reproduced || r.Invariants[inv] == "violated"
	}
	if c.Expect == scenarios.ExpectHold {
		out.Reproduced = !r.failed()
	}
	code = exitOK
	if r.failed() {
		code = exitFail
	}
	if res != nil {
		at, label := violationTime(res, c)
		// A tail shorter than its capacity is the whole trace.
		trace, full := res.Trace, rc.RecordTrace || len(res.Trace) < replayTail
		if !full && !covers(trace, at) {
			// The tail starts after the violation: run again keeping
			// everything (the run is deterministic, so it is the same run).
			rc.RecordTrace, rc.TraceTail = true, 0
			if again, _, err := simulate(o, rc); err == nil && again.TraceHash == res.TraceHash {
				trace, full = again.Trace, true
			}
		}
		out.Timeline = timeline(trace, full, at, label, *window, splitList(*hide))
		if *tracePath != "" {
			if err := writeTrace(*tracePath, res.Trace); err != nil {
				fmt.Fprintf(st.err, "walraft replay: %v\n", err)
				code = exitFail
			}
		}
		if *historyPath != "" {
			if err := writeHistory(*historyPath, res); err != nil {
				fmt.Fprintf(st.err, "walraft replay: %v\n", err)
				code = exitFail
			}
		}
	}
	if *asJSON {
		if res != nil {
			out.Options, out.Schedule = &res.Options, &res.Schedule
		}
		if err := writeJSON(st.out, out); err != nil {
			fmt.Fprintf(st.err, "walraft replay: %v\n", err)
			return exitFail
		}
		return code
	}
	printVerdict(st.out, r)
	if out.Drift {
		fmt.Fprintf(st.out, "DRIFT: trace hash %s differs from the case's %s: the code changed since commit %s, so this is not the recorded run\n",
			r.TraceHash, c.TraceHash, c.Commit)
	} else {
		fmt.Fprintf(st.out, "trace hash %s matches the case: the recorded run replayed exactly\n", r.TraceHash)
	}
	switch {
	case c.Expect == scenarios.ExpectHold && out.Reproduced:
		fmt.Fprintln(st.out, "as expected: every invariant held")
	case c.Expect == scenarios.ExpectHold:
		fmt.Fprintf(st.out, "NOT as expected: the case must hold; this run violated %s\n", strings.Join(r.invariantNames(), ","))
	case out.Reproduced:
		fmt.Fprintf(st.out, "reproduced: %s violated again\n", strings.Join(intersect(c.ExpectedInvariants(), r.invariantNames()), ","))
	case r.failed():
		fmt.Fprintf(st.out, "NOT reproduced: the case recorded %s; this run violated %s instead\n",
			strings.Join(c.Invariants(), ","), strings.Join(r.invariantNames(), ","))
	default:
		fmt.Fprintf(st.out, "NOT reproduced: the case recorded %s; this run holds every invariant (fixed?)\n",
			strings.Join(c.Invariants(), ","))
	}
	if len(out.Timeline) > 0 {
		fmt.Fprintln(st.out, "timeline:")
		for _, l := range out.Timeline {
			fmt.Fprintf(st.out, "  %s\n", l)
		}
	}
	if *tracePath != "" {
		fmt.Fprintf(st.out, "full trace (%d events) written to %s\n", len(res.Trace), *tracePath)
	}
	return code
}

// violationTime picks the moment the timeline centres on: this run's first
// violation, else the case's first, with a label for the marker line.
func violationTime(res *scenarios.Result, c *scenarios.Case) (time.Duration, string) {
	if len(res.Violations) > 0 {
		v := res.Violations[0]
		return v.Time, fmt.Sprintf("%s violated: %s", v.Invariant, firstLine(v.Detail))
	}
	if len(c.Violations) == 0 {
		// A case expected to hold: centre on its last fault.
		at := time.Duration(0)
		if n := len(c.Schedule); n > 0 {
			at = c.Schedule[n-1].At
		}
		return at, "(expected to hold) last fault"
	}
	v := c.Violations[0]
	return v.Time, fmt.Sprintf("(recorded) %s violated: %s", v.Invariant, firstLine(v.Detail))
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// covers reports whether a trace tail reaches back to time at.
func covers(trace []sim.TraceEvent, at time.Duration) bool {
	return len(trace) > 0 && trace[0].At < at
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// hidden reports whether kind matches one of the hide items: an exact kind,
// or a prefix ending in '.'.
func hidden(kind string, hide []string) bool {
	for _, h := range hide {
		if kind == h || (strings.HasSuffix(h, ".") && strings.HasPrefix(kind, h)) {
			return true
		}
	}
	return false
}

// stateKinds are the trace events that carry a node's HWM and log end; the
// timeline starts with the latest of each per node.
var stateKinds = []string{"obs", "hwm"}

// timeline renders the trace events around time at: up to window events
// before the first event after at, a marker line, and window/4 events
// after, leaving out hidden kinds. It starts with the last "obs" and "hwm"
// event of each node before the window, so every node's HWM and log end
// are on screen. A zero at (unknown time) shows the end of the trace. full
// says the trace is the whole run (else it is the run's last events).
func timeline(trace []sim.TraceEvent, full bool, at time.Duration, label string, window int, hide []string) []string {
	if len(trace) == 0 {
		return nil
	}
	var idx []int // indices of the shown kinds
	for i, e := range trace {
		if !hidden(e.Kind, hide) {
			idx = append(idx, i)
		}
	}
	mark := len(idx)
	if at > 0 {
		for k, i := range idx {
			if trace[i].At > at {
				mark = k
				break
			}
		}
	}
	from := max(0, mark-window)
	to := min(len(idx), mark+window/4)
	var out []string
	start := len(trace)
	if from < len(idx) {
		start = idx[from]
	}
	state := map[uint64]map[string]sim.TraceEvent{}
	var nodes []uint64
	for _, e := range trace[:start] {
		if !slices.Contains(stateKinds, e.Kind) {
			continue
		}
		if state[e.Node] == nil {
			state[e.Node] = map[string]sim.TraceEvent{}
			nodes = append(nodes, e.Node)
		}
		state[e.Node][e.Kind] = e
	}
	if len(nodes) > 0 {
		out = append(out, "node state before the window (each node's last obs/hwm event):")
		slices.Sort(nodes)
		for _, n := range nodes {
			for _, k := range stateKinds {
				if e, ok := state[n][k]; ok {
					out = append(out, "  "+e.String())
				}
			}
		}
	}
	what := fmt.Sprintf("%d events", len(trace))
	if !full {
		what = fmt.Sprintf("the run's last %d events", len(trace))
	}
	note := ""
	if len(hide) > 0 {
		note = fmt.Sprintf(", hiding %s", strings.Join(hide, ","))
	}
	out = append(out, fmt.Sprintf("%d of %s%s:", to-from, what, note))
	for k := from; k < to; k++ {
		if k == mark {
			out = append(out, fmt.Sprintf(">>> %.9fs %s", at.Seconds(), label))
		}
		out = append(out, trace[idx[k]].String())
	}
	if mark >= to {
		out = append(out, fmt.Sprintf(">>> %.9fs %s", at.Seconds(), label))
	}
	return out
}

// intersect returns the elements of a that are in b, in a's order.
func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		for _, y := range b {
			if x == y {
				out = append(out, x)
				break
			}
		}
	}
	return out
}
