package main

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"walraft/report"
	"walraft/scenarios"
	"walraft/sim"
)

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
	Reproduced bool `json:"reproduced"`
	// DriftWhy says what differs when Drift is set: the commit, the
	// options or the schedule against what the case's seed generates.
	DriftWhy []string `json:"drift_why,omitempty"`
	// Focus is what the timeline centres on: the earliest evidence of
	// the violation (or -at, -op), and the evidence lines.
	Focus    string   `json:"focus"`
	Evidence []string `json:"evidence"`
	Timeline []string `json:"timeline"`
}

// recordedPerInvariant is how many recorded violations of each invariant
// replay prints.
const recordedPerInvariant = 3

// faultWinGap: a fault in focus this close to the centre is already in
// the main window, and gets no window of its own.
const faultWinGap = 50 * time.Millisecond

// cmdReplay re-runs a case file: `walraft replay CASE`.
func cmdReplay(args []string, st stdio) int {
	fs := newFlags("replay", st)
	tracePath := fs.String("trace", "", "write the full event trace to `FILE`, one event per line")
	historyPath := fs.String("history", "", "write the client history to `FILE` as JSON lines")
	hide := fs.String("hide", "net.deliver", "comma-separated trace event `kinds` (or kind prefixes ending in '.') left out of the timeline; \"\" shows every event")
	window := fs.Int("window", 40, "`number` of trace events to show before the violation (a quarter as many after)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	htmlPath := fs.String("html", "", "also write the HTML report (walraft report) to `FILE`")
	ff := addFocusFlags(fs)
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
	sel, err := ff.selection(c)
	if err != nil {
		return usageErr(st, "replay", "%v", err)
	}
	for _, p := range []struct{ flag, path string }{{"-trace", *tracePath}, {"-history", *historyPath}, {"-html", *htmlPath}} {
		if err := checkOutFile(p.flag, p.path); err != nil {
			return usageErr(st, "replay", "%v", err)
		}
	}
	commit := buildCommit()
	o := c.Options
	// The case's header is held back until the focus flags are known to
	// fit the run (some can be checked only against it), so a bad -op or
	// -at is one line on stderr, not the header and then the error.
	var hdr bytes.Buffer
	if !*asJSON {
		fmt.Fprintf(&hdr, "walraft replay %s\n", pos[0])
		fmt.Fprintf(&hdr, "case: scenario %s, seed %d, variant %s, written at commit %s (this build: %s)\n",
			c.Scenario, c.Seed, variantName(c.Variant), c.Commit, commit)
		// The first recordedPerInvariant violations of each invariant, one
		// line each: a case can hold hundreds, and the replay's point is the
		// timeline below (replay -json and the case file hold them all).
		shown, more := map[string]int{}, map[string]int{}
		var order []string
		for _, v := range c.Violations {
			if shown[v.Invariant]+more[v.Invariant] == 0 {
				order = append(order, v.Invariant)
			}
			if shown[v.Invariant] >= recordedPerInvariant {
				more[v.Invariant]++
				continue
			}
			shown[v.Invariant]++
			fmt.Fprintf(&hdr, "recorded: %s at %.6fs: %s\n", v.Invariant, v.Time.Seconds(), truncate(firstLine(v.Detail), 300))
		}
		for _, inv := range order {
			if more[inv] > 0 {
				fmt.Fprintf(&hdr, "recorded: ... and %d more %s violations (see the case file)\n", more[inv], inv)
			}
		}
		if c.Note != "" {
			fmt.Fprintf(&hdr, "note: %s\n", c.Note)
		}
		printOptions(&hdr, o)
		printSchedule(&hdr, c.Schedule)
	}
	rc := scenarios.RunConfig{Variant: c.Variant, Schedule: c.Schedule, UseSchedule: true, RecordTrace: *tracePath != ""}
	res, wall, simErr := simulate(o, rc)
	r := summarize(o, c.Variant, res, wall, simErr, commit)
	r.Case = pos[0]
	out := replayJSON{runJSON: *r, RecordedTraceHash: c.TraceHash, RecordedCommit: c.Commit,
		RecordedInvariant: c.Invariants(), Drift: c.TraceHash != "" && r.TraceHash != c.TraceHash, Timeline: []string{}}
	if out.Drift {
		out.DriftWhy = driftWhy(c, commit)
	}
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
		f, err := report.FindFocus(res, c.Violations, sel)
		if err != nil {
			return usageErr(st, "replay", "%v", err)
		}
		st.out.Write(hdr.Bytes())
		hdr.Reset()
		out.Focus, out.Evidence = f.Label, f.Evidence
		// A second pass over the same run keeps exactly the window around
		// the focus, however long the run (the run is deterministic).
		win := report.NewWindow(f.Center, *window, *window/4, splitList(*hide), sel.Node)
		// And a shorter window at each fault in focus that is not already
		// on screen: the kept fault of a minimized case is often seconds
		// after the lost write's ack. Only a minimized case says the fault
		// was kept: elsewhere it is merely the nearest before the violation.
		type faultWin struct {
			w     *report.Window
			label string
		}
		var fws []faultWin
		for _, i := range f.Faults {
			x := res.Schedule[i]
			if d := x.At - f.Center; d > -faultWinGap && d < faultWinGap {
				continue
			}
			fws = append(fws, faultWin{report.NewWindow(x.At-1, max(*window/4, 1), max(*window/2, 1), splitList(*hide), sel.Node),
				"fault " + strings.TrimSpace(x.String())})
		}
		notes := report.NewMsgNotes()
		rc2 := scenarios.RunConfig{Variant: c.Variant, Schedule: c.Schedule, UseSchedule: true,
			OnTrace: func(e sim.TraceEvent) {
				n := notes.Note(e)
				win.Add(e, n)
				for _, fw := range fws {
					fw.w.Add(e, n)
				}
			}, NetTap: notes.Tap}
		if again, _, err := simulate(o, rc2); err == nil && again.TraceHash == res.TraceHash {
			out.Timeline = win.Lines(f.Label)
			for _, fw := range fws {
				why := ""
				if f.KeptByMinimize {
					why = " (kept by the minimized schedule)"
				}
				out.Timeline = append(out.Timeline, "", "around the "+fw.label+why+":")
				out.Timeline = append(out.Timeline, fw.w.Lines(fw.label)...)
			}
		} else {
			out.Timeline = []string{"(the second pass did not repeat the run: nondeterminism; no timeline)"}
		}
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
		if *htmlPath != "" {
			col, c2 := collectReport(st, "replay", c, pos[0], sel)
			if col == nil {
				return c2
			}
			if err := writeReport(*htmlPath, col); err != nil {
				fmt.Fprintf(st.err, "walraft replay: %v\n", err)
				code = exitFail
			}
		}
	}
	st.out.Write(hdr.Bytes()) // when the run failed before a focus
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
		fmt.Fprintf(st.out, "DRIFT: trace hash %s differs from the case's %s, so this is not the recorded run:\n", r.TraceHash, c.TraceHash)
		for _, l := range out.DriftWhy {
			fmt.Fprintf(st.out, "  %s\n", l)
		}
	} else if c.TraceHash == "" {
		fmt.Fprintf(st.out, "trace hash %s (the file records none: a hand-written schedule)\n", r.TraceHash)
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
	if out.Focus != "" {
		fmt.Fprintf(st.out, "focus: %s\n", out.Focus)
		for _, l := range out.Evidence {
			fmt.Fprintf(st.out, "  evidence: %s\n", l)
		}
	}
	if len(out.Timeline) > 0 {
		fmt.Fprintln(st.out, "timeline (walraft help trace explains each event kind):")
		for _, l := range out.Timeline {
			fmt.Fprintf(st.out, "  %s\n", l)
		}
	}
	if *tracePath != "" && res != nil {
		fmt.Fprintf(st.out, "full trace (%d events) written to %s\n", len(res.Trace), *tracePath)
	}
	if *htmlPath != "" && res != nil {
		fmt.Fprintf(st.out, "HTML report written to %s\n", *htmlPath)
	}
	return code
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
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
