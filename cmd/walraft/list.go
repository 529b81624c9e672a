package main

import (
	"fmt"

	"walraft/scenarios"
)

// cmdScenarios lists the scenarios, one per line.
func cmdScenarios(args []string, st stdio) int {
	fs := newFlags("scenarios", st)
	if _, code := parseFlags(fs, args, 0, 0); code >= 0 {
		return code
	}
	for _, s := range scenarios.Scenarios() {
		fmt.Fprintf(st.out, "%-12s %s\n", s.Name, s.Summary)
	}
	return exitOK
}

// cmdVariants lists the known-bad variants, one per line, with the
// scenario each is expected to be caught in.
func cmdVariants(args []string, st stdio) int {
	fs := newFlags("variants", st)
	if _, code := parseFlags(fs, args, 0, 0); code >= 0 {
		return code
	}
	for _, v := range scenarios.Variants() {
		fmt.Fprintf(st.out, "%-20s [%s] %s\n", v.Name, v.Scenario, v.Summary)
	}
	return exitOK
}
