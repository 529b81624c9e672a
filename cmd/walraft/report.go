package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"walraft/report"
	"walraft/scenarios"
)

// The report command renders a case as one self-contained HTML page
// (package report).
func init() {
	commands = append(commands, command{
		name:    "report",
		args:    "[-o FILE.html] [-at TIME] [-op ID] [-node N] [-invariant X] CASE",
		summary: "render a case as one self-contained HTML page: space-time diagram, HWM lines, client ops, the violation in focus",
		run:     cmdReport,
	})
}

// focusFlags are the flags that choose what a replay or a report centres
// on (report.Select).
type focusFlags struct {
	at        *time.Duration
	op        *int64
	node      *uint64
	invariant *string
}

func addFocusFlags(fs interface {
	Duration(string, time.Duration, string) *time.Duration
	Int64(string, int64, string) *int64
	Uint64(string, uint64, string) *uint64
	String(string, string, string) *string
}) focusFlags {
	return focusFlags{
		at:        fs.Duration("at", 0, "centre on simulated `time` (e.g. 9.9s) instead of the earliest evidence; a time past the run's end is an error (exit 2)"),
		op:        fs.Int64("op", 0, "centre on client op `ID` (0: the earliest evidence)"),
		node:      fs.Uint64("node", 0, "keep evidence and timeline events of node `N` only (0: every node)"),
		invariant: fs.String("invariant", "", "focus on the violations of invariant `X`, one the case recorded (default: the first violated)"),
	}
}

// selection validates the focus flags against the case, before any run:
// -invariant must name an invariant the case recorded. What the case file
// does not record (the run's ops and its end) is checked against the run
// (report.FindFocus), before the replay prints anything.
func (f focusFlags) selection(c *scenarios.Case) (report.Select, error) {
	s := report.Select{At: *f.at, Op: scenarios.OpID(*f.op), Node: *f.node, Invariant: *f.invariant, Minimized: report.Minimized(c)}
	switch {
	case s.At < 0:
		return s, fmt.Errorf("-at %v: want a time >= 0", s.At)
	case *f.op < 0:
		return s, fmt.Errorf("-op %d: want an op id >= 1", *f.op)
	case s.Node > uint64(c.Options.Nodes):
		return s, fmt.Errorf("-node %d: the case has nodes 1..%d", s.Node, c.Options.Nodes)
	case s.Invariant != "" && !slices.Contains(c.Invariants(), s.Invariant):
		what := "an invariant this case did not record"
		if !slices.Contains(scenarios.CheckedInvariants, s.Invariant) {
			what = "not an invariant"
		}
		return s, fmt.Errorf("%w: -invariant %s: %s (it recorded %s)", report.ErrNoSuchFocus, s.Invariant, what, orNone(c.Invariants()))
	}
	return s, nil
}

func cmdReport(args []string, st stdio) int {
	fs := newFlags("report", st)
	out := fs.String("o", "", "write the page to `FILE` (default: CASE with .html for .json)")
	ff := addFocusFlags(fs)
	pos, code := parseFlags(fs, args, 1, 1)
	if code >= 0 {
		return code
	}
	c, err := scenarios.ReadCase(pos[0])
	if err != nil {
		return usageErr(st, "report", "%v", err)
	}
	sel, err := ff.selection(c)
	if err != nil {
		return usageErr(st, "report", "%v", err)
	}
	path := *out
	if path == "" {
		path = strings.TrimSuffix(pos[0], ".json") + ".html"
	}
	if err := checkOutFile("-o", path); err != nil {
		return usageErr(st, "report", "%v", err)
	}
	col, code := collectReport(st, "report", c, pos[0], sel)
	if col == nil {
		return code
	}
	if err := writeReport(path, col); err != nil {
		fmt.Fprintf(st.err, "walraft report: %v\n", err)
		return exitFail
	}
	d := col.Data
	fmt.Fprintf(st.out, "report of %s written to %s (%d messages, %d ops, %d faults)\n", pos[0], path, len(d.Msgs), len(d.Ops), len(d.Schedule))
	fmt.Fprintf(st.out, "focus: %s (%.6fs - %.6fs)\n", col.Focus.Label, col.Focus.From.Seconds(), col.Focus.To.Seconds())
	if d.CaseHash != "" && d.TraceHash != d.CaseHash {
		fmt.Fprintf(st.out, "DRIFT: trace hash %s differs from the case's %s (see walraft replay for what differs)\n", d.TraceHash, d.CaseHash)
	}
	return exitOK
}

// collectReport runs the report's pass over the case, turning a panic into
// one error line. It returns nil and the exit code on failure.
func collectReport(st stdio, cmd string, c *scenarios.Case, casePath string, sel report.Select) (col *report.Collected, code int) {
	tuneGC()
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(st.err, "walraft %s: simulation panicked: %v\n", cmd, r)
			col, code = nil, exitFail
		}
	}()
	col, err := report.Collect(runSim, c, casePath, buildCommit(), sel)
	if err != nil {
		if isFocusErr(err) {
			return nil, usageErr(st, cmd, "%v", err)
		}
		fmt.Fprintf(st.err, "walraft %s: %v\n", cmd, err)
		return nil, exitFail
	}
	return col, exitOK
}

func isFocusErr(err error) bool { return errors.Is(err, report.ErrNoSuchFocus) }

// writeReport renders the page to path.
func writeReport(path string, col *report.Collected) error {
	return writeFile(path, func(w io.Writer) error { return report.Render(w, col.Data) })
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ",")
}
