package main

import (
	"fmt"
	"io"

	"walraft/report"
	"walraft/scenarios"
)

// cmdHelp prints the command list, with "trace" the legend of every trace
// event kind (what A, B, C, D and Text hold), with "schedule" the schedule
// file's reference.
func cmdHelp(args []string, st stdio) int {
	switch {
	case len(args) == 0:
		usage(st.out)
		return exitOK
	case len(args) == 1 && args[0] == "trace":
		fmt.Fprintln(st.out, "Trace events, one per line: TIME NODE KIND a=A b=B c=C d=D [\"TEXT\"]")
		fmt.Fprintln(st.out, "(NODE is nN, or \"world\" for network events; replay appends a message's kind, from, to, term and index to net.deliver and net.drop lines)")
		fmt.Fprintln(st.out)
		for _, e := range report.Legend() {
			fmt.Fprintf(st.out, "  %-18s %s\n", e.Kind, e.Fields)
		}
		return exitOK
	case len(args) == 1 && args[0] == "schedule":
		printScheduleHelp(st.out)
		return exitOK
	}
	return usageErr(st, "help", "unknown topic %q (topics: trace, schedule)", args[0])
}

// printScheduleHelp prints the schedule file format's reference: the
// file's fields, the fault kinds and the fields each reads, triggers and
// targets (scenarios.FaultDocs and friends, which a test keeps complete).
func printScheduleHelp(w io.Writer) {
	fmt.Fprint(w, `A schedule file is a case file (testdata/cases/*.json are examples) that
walraft run -schedule FILE runs; replay, report and go test -case take it
too. One JSON object, strictly decoded (unknown fields are errors):

  version      1
  scenario     a scenario name (walraft scenarios); must equal options.Scenario
  seed         the default seed (run -seed/-seeds override it); must equal options.Seed
  variant      "" (the correct system) or a variant (walraft variants)
  options      every option of a run: copy them from a case file, or from
               walraft run -scenario S -seed N -json (its "options"), and edit.
               Durations are integer nanoseconds. AcksWeights is
               [acks=0, acks=1, acks=-1]; Path is 0 batch, 1 legacy, 2 pipelined.
               SafetyDuration is the phase with load and faults; then
               everything heals and L1 must hold within LivenessDuration.
  schedule     the faults, in time order (below)
  expect       "hold", or the invariant the run must break (optional)
  caught_by    variants this schedule is known to catch (optional)
  note         free text for people (optional)
  commit, trace_hash, violations
               recorded by a run that wrote the file; a hand-written file
               leaves them out

A fault: {"at": NS, "kind": KIND, ...fields}. at is when it applies (or, with
a trigger, when the trigger is armed) and must be inside the safety phase.
Every time field (at, dur, step, latency, jitter, delay) is nanoseconds:
1500000000 is 1.5 s. "node|target" below means a fixed node (1..n) or a
target, resolved when the fault fires; [x] is optional. A fault that could
never act (no dur for a window, no count for a budget) is refused, and run
lists any whose trigger never fired.

`)
	for _, d := range scenarios.FaultDocs() {
		fmt.Fprintf(w, "  %-25s %s\n", d.Kind, d.Does)
		if d.Fields != "" {
			fmt.Fprintf(w, "  %-25s   fields: %s\n", "", d.Fields)
		}
	}
	fmt.Fprint(w, `
A stall delays fsyncs while the node keeps running (it must notice and step
aside); a hang also blocks the node's event loop, so it stops heartbeating
and the others elect a new leader anyway: use stall to test the node's own
hung-disk handling, hang for a process that freezes with its disk.

Triggers: "trigger": {"on": EVENT, "node": N, "role": "leader"|"follower",
"nth": K, "delay": NS} fires the fault on the K-th matching event after at
(default the first), delay later; node and role narrow whose events match.
`)
	for _, d := range scenarios.TriggerDocs() {
		fmt.Fprintf(w, "  %-25s %s\n", d.On, d.Does)
	}
	fmt.Fprint(w, `
Targets ("target": NAME, instead of node), resolved when the fault fires; a
target that resolves to nobody makes the fault a no-op (traced):
`)
	for _, d := range scenarios.TargetDocs() {
		fmt.Fprintf(w, "  %-25s %s\n", d.Target, d.Does)
	}
	fmt.Fprint(w, `
Options often edited: "Knobs" (the node configuration a seed draws; a zero or
missing knob keeps the node's default):
`)
	for _, d := range scenarios.KnobDocs() {
		fmt.Fprintf(w, "  %-25s %s\n", d.Name, d.Does)
	}
	fmt.Fprint(w, `"Disk" (the simulated disk; durations in ns):
`)
	for _, d := range scenarios.DiskDocs() {
		fmt.Fprintf(w, "  %-25s %s\n", d.Name, d.Does)
	}
	fmt.Fprint(w, `"KillProb" is the chance that a drawn crash is a process kill with the
machine up (its page cache kept) instead of a power loss.

Availability (A1) is owed only while a healthy majority exists: nodes up and
unpaused, with a clock at a sane rate, a disk with no stall and no failure
budget armed (sync-eio, write-eio, enospc, read-eio), and links between them
both ways with no loss and a one-way delay of at most a quarter of the
election timeout. A schedule that keeps no such majority is judged on
safety alone while it lasts.

Example: the leader is cut off at 2 s, the cut heals at 4.5 s:
  "schedule": [
    {"at": 2000000000, "kind": "isolate", "target": "leader"},
    {"at": 4500000000, "kind": "heal"}
  ]
`)
}
