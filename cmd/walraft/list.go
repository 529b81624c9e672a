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
	swarm, _ := scenarios.Lookup(scenarios.SwarmScenario)
	list := append([]scenarios.Scenario{swarm}, scenarios.Scenarios()...)
	width := 12
	for _, s := range list {
		width = max(width, len(s.Name))
	}
	for _, s := range list {
		fmt.Fprintf(st.out, "%-*s %s\n", width, s.Name, s.Summary)
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
	width := 20
	for _, v := range scenarios.Variants() {
		width = max(width, len(v.Name))
	}
	for _, v := range scenarios.Variants() {
		fmt.Fprintf(st.out, "%-*s [%s] %s\n", width, v.Name, v.Scenario, v.Summary)
	}
	return exitOK
}
