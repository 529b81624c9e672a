package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"walraft/scenarios"
	"walraft/sim"
)

// printOptions prints every option of a run (as TigerBeetle's VOPR does,
// so a report says exactly what ran).
func printOptions(w io.Writer, o scenarios.Options) {
	fmt.Fprintln(w, "options:")
	fmt.Fprint(w, o.Describe())
}

// printSchedule prints a fault schedule, one fault per line.
func printSchedule(w io.Writer, s scenarios.Schedule) {
	fmt.Fprintf(w, "fault schedule (%d faults):\n", len(s))
	for _, line := range strings.Split(strings.TrimRight(s.String(), "\n"), "\n") {
		fmt.Fprintf(w, "  %s\n", line)
	}
}

// printVerdict prints the verdict per invariant, the counts per acks
// level, the probes hit, times, events and the trace hash.
func printVerdict(w io.Writer, r *runJSON) {
	fmt.Fprintln(w, "invariants:")
	names := sortedKeys(r.Invariants)
	sortInvariants(names)
	for _, name := range names {
		var details []violationJSON
		for _, v := range r.Violations {
			if v.Invariant == name {
				details = append(details, v)
			}
		}
		if len(details) == 0 {
			fmt.Fprintf(w, "  %-4s %s\n", name, r.Invariants[name])
			continue
		}
		fmt.Fprintf(w, "  %-4s VIOLATED (%d)\n", name, len(details))
		for i, v := range details {
			if i == maxShownViolations {
				fmt.Fprintf(w, "         ... and %d more (-json or the case file has them all)\n", len(details)-i)
				break
			}
			fmt.Fprintf(w, "         at %.6fs: %s\n", v.TimeSeconds, indent(headLines(v.Detail, maxDetailLines), "           "))
		}
	}
	if r.BeyondBudget != "" {
		fmt.Fprintf(w, "  beyond the fault budget: %s (violations are not counted as bugs)\n", r.BeyondBudget)
	}
	printAvail(w, r.Avail)
	fmt.Fprintln(w, "acks:")
	fmt.Fprintf(w, "  %-5s %9s %9s %9s %14s %7s\n", "level", "sent", "ok", "failed", "indeterminate", "lost")
	for _, l := range acksLevels {
		a := r.Acks[l]
		fmt.Fprintf(w, "  %-5s %9d %9d %9d %14d %7d\n", l, a.Sent, a.OK, a.Failed, a.Indeterminate, a.Lost)
	}
	if len(r.Probes) == 0 {
		fmt.Fprintln(w, "probes: none hit")
	} else {
		var ps []string
		for _, k := range sortedKeys(r.Probes) {
			ps = append(ps, fmt.Sprintf("%s=%d", k, r.Probes[k]))
		}
		fmt.Fprintf(w, "probes: %s\n", strings.Join(ps, " "))
	}
	fmt.Fprintf(w, "simulated %.3fs in %.3fs wall (%sx real time), %d events, trace hash %s\n",
		r.SimSeconds, r.WallSeconds, fmtRatio(r.SimWallRatio), r.Events, r.TraceHash)
	fmt.Fprintf(w, "commit %s\n", r.Commit)
}

// Text output shows at most maxShownViolations violations per invariant
// and maxDetailLines lines of each detail (a go-cmp diff can be long).
const (
	maxShownViolations = 3
	maxDetailLines     = 12
)

// headLines keeps the first n lines of s, saying how many it dropped.
func headLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) <= n+1 {
		return strings.Join(lines, "\n")
	}
	return strings.Join(lines[:n], "\n") + fmt.Sprintf("\n... (%d more lines)", len(lines)-n)
}

// indent puts prefix before every line of s after the first.
func indent(s, prefix string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix)
}

// writeJSON prints v as one indented JSON object.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// writeFile creates path and lets fill write it, reporting any error with
// the path.
func writeFile(path string, fill func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = fill(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeTrace writes a trace one event per line (sim.TraceEvent.String).
func writeTrace(path string, events []sim.TraceEvent) error {
	return writeFile(path, func(w io.Writer) error {
		bw := newLineWriter(w)
		for _, e := range events {
			bw.line(e.String())
		}
		return bw.flush()
	})
}

// writeHistory writes a run's client history as JSON lines.
func writeHistory(path string, res *scenarios.Result) error {
	if res.History == nil {
		return fmt.Errorf("write %s: the run recorded no history", path)
	}
	return writeFile(path, res.History.WriteJSONL)
}

// lineWriter is a buffered writer that keeps the first error.
type lineWriter struct {
	w   io.Writer
	buf []byte
	err error
}

func newLineWriter(w io.Writer) *lineWriter { return &lineWriter{w: w, buf: make([]byte, 0, 64<<10)} }

func (l *lineWriter) line(s string) {
	l.buf = append(l.buf, s...)
	l.buf = append(l.buf, '\n')
	if len(l.buf) >= 60<<10 {
		l.flush()
	}
}

func (l *lineWriter) flush() error {
	if l.err == nil && len(l.buf) > 0 {
		_, l.err = l.w.Write(l.buf)
	}
	l.buf = l.buf[:0]
	return l.err
}

// fmtRatio renders a speed ratio with two significant digits below 10.
func fmtRatio(x float64) string {
	if x < 10 {
		return fmt.Sprintf("%.2g", x)
	}
	return fmt.Sprintf("%.0f", x)
}

// fmtDur renders a duration rounded for people.
func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}
