package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"walraft/report"
	"walraft/scenarios"
)

// cmdMinimize shrinks a case: `walraft minimize CASE`.
func cmdMinimize(args []string, st stdio) int {
	fs := newFlags("minimize", st)
	maxRuns := fs.Int("max-runs", scenarios.DefaultMinimizeRuns, "at most `N` simulations")
	invariant := fs.String("invariant", "", "the `invariant` that must keep failing (default: the case's first)")
	outPath := fs.String("o", "", "write the smaller case to `FILE` (default: CASE with .min.json)")
	quiet := fs.Bool("q", false, "do not print each accepted step")
	pos, code := parseFlags(fs, args, 1, 1)
	if code >= 0 {
		return code
	}
	if *maxRuns < 1 || *maxRuns > 1000000 {
		return usageErr(st, "minimize", "-max-runs %d: want 1..1000000", *maxRuns)
	}
	c, err := scenarios.ReadCase(pos[0])
	if err != nil {
		return usageErr(st, "minimize", "%v", err)
	}
	target := *invariant
	if target == "" && len(c.Violations) == 0 {
		return usageErr(st, "minimize", "the case records no violation (it is expected to hold): nothing to minimize")
	}
	if target == "" {
		target = c.Violations[0].Invariant
	} else if !slices.Contains(c.Invariants(), target) {
		return usageErr(st, "minimize", "the case did not violate %s (it recorded %s)", target, strings.Join(c.Invariants(), ","))
	}
	dst := *outPath
	if dst == "" {
		dst = strings.TrimSuffix(pos[0], ".json") + ".min.json"
	}
	if code := checkOutPaths(st, "minimize", []outFlag{{"-o", dst, false}}); code >= 0 {
		return code
	}

	start := time.Now()
	var first, last *scenarios.Result
	runs := 0
	oracle := func(o scenarios.Options, s scenarios.Schedule) (bool, error) {
		runs++
		res, _, err := simulate(o, scenarios.RunConfig{Variant: c.Variant, Schedule: s, UseSchedule: true})
		if err != nil {
			return false, err
		}
		if first == nil {
			first = res
		}
		if res.BeyondBudget != "" {
			return false, nil
		}
		for _, v := range res.Violations {
			if v.Invariant == target {
				last = res
				return true, nil
			}
		}
		return false, nil
	}
	fmt.Fprintf(st.out, "minimizing %s: %d faults, %d producers, %d consumers, safety phase %s; keeping %s failing, at most %d runs\n",
		pos[0], len(c.Schedule), c.Options.Producers, c.Options.Consumers, fmtDur(c.Options.SafetyDuration), target, *maxRuns)
	cfg := scenarios.MinimizeConfig{MaxRuns: *maxRuns}
	if !*quiet {
		cfg.Progress = func(step string, o scenarios.Options, s scenarios.Schedule) {
			fmt.Fprintf(st.out, "  run %d: %s: now %d faults, %d producers, %d consumers, safety phase %s\n",
				runs, step, len(s), o.Producers, o.Consumers, fmtDur(o.SafetyDuration))
		}
	}
	m, err := scenarios.Minimize(c.Options, c.Schedule, oracle, cfg)
	switch {
	case errors.Is(err, scenarios.ErrNotReproduced):
		fmt.Fprintf(st.out, "the case does not violate %s on this build (fixed, or the code changed): nothing to minimize\n", target)
		return exitFail
	case err != nil:
		fmt.Fprintf(st.err, "walraft minimize: %v\n", err)
		return exitFail
	}
	mc := &scenarios.Case{
		Version: scenarios.CaseVersion, Scenario: c.Scenario, Seed: c.Seed, Variant: c.Variant,
		Commit: buildCommit(), TraceHash: scenarios.FormatTraceHash(last.TraceHash),
		Options: m.Options, Schedule: m.Schedule,
	}
	for _, v := range last.Violations {
		mc.Violations = append(mc.Violations, scenarios.CaseViolation{Invariant: v.Invariant, Detail: v.Detail, Time: v.Time})
	}
	change := fmt.Sprintf("faults %d -> %d, producers %d -> %d, consumers %d -> %d, safety phase %s -> %s, simulated time %s -> %s",
		len(c.Schedule), len(m.Schedule), c.Options.Producers, m.Options.Producers, c.Options.Consumers, m.Options.Consumers,
		fmtDur(c.Options.SafetyDuration), fmtDur(m.Options.SafetyDuration), fmtDur(first.SimTime), fmtDur(last.SimTime))
	mc.Note = fmt.Sprintf("%s%s keeping %s: %s", report.MinimizedNotePrefix, pos[0], target, change)
	if err := scenarios.WriteCase(dst, mc); err != nil {
		fmt.Fprintf(st.err, "walraft minimize: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(st.out, "%s\n", change)
	budget := ""
	if m.Exhausted {
		budget = " (run budget spent: -max-runs may shrink it further)"
	}
	fmt.Fprintf(st.out, "%d runs in %s%s\n", m.Runs, fmtDur(time.Since(start)), budget)
	fmt.Fprintf(st.out, "wrote %s\nreplay: %s replay %s\n", dst, self(), dst)
	fmt.Fprintln(st.out, "fault schedule:")
	fmt.Fprint(st.out, indentAll(m.Schedule.String(), "  "))
	return exitOK
}

// indentAll prefixes every line of s.
func indentAll(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	var b strings.Builder
	for _, l := range lines {
		if l != "" {
			b.WriteString(prefix + l)
		}
	}
	return b.String()
}
