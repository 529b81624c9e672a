package main

import (
	"fmt"
	"io"
	"path/filepath"

	"walraft/scenarios"
)

// cmdRun runs one simulation: `walraft run`.
func cmdRun(args []string, st stdio) int {
	fs := newFlags("run", st)
	scenario := fs.String("scenario", scenarios.DefaultScenario, "`name` of the scenario to run (walraft scenarios); when not given: the variant's scenario")
	seed := fs.Uint64("seed", 1, "the `seed`: every option, the workload and the fault schedule derive from it (with -schedule: the workload and the seeded choices only; default: the file's seed)")
	variant := fs.String("variant", "", "`name` of a known-bad variant to run instead of the correct system (walraft variants); with -schedule: the file's variant unless given")
	tracePath := fs.String("trace", "", "write the full event trace to `FILE`, one event per line")
	historyPath := fs.String("history", "", "write the client history to `FILE` as JSON lines")
	out := fs.String("out", "", "on a violation, write a case file into `DIR`")
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	schedule := fs.String("schedule", "", "run the options and fault schedule of `FILE` (a case file; violations, trace_hash and commit may be left out) instead of drawing them from -scenario and the seed")
	seeds := fs.String("seeds", "", "with -schedule: run every seed of the range `A-B` in turn, one line per seed and a summary")
	usage := fs.Usage
	fs.Usage = func() {
		usage()
		fmt.Fprint(fs.Output(), scheduleHelp)
	}
	if _, code := parseFlags(fs, args, 0, 0); code >= 0 {
		return code
	}
	if *schedule != "" || flagSet(fs, "seeds") {
		return runSchedule(st, scheduleFlags{
			path: *schedule, seed: *seed, seedSet: flagSet(fs, "seed"), seeds: *seeds, seedsSet: flagSet(fs, "seeds"),
			scenarioSet: flagSet(fs, "scenario"), variant: *variant, variantSet: flagSet(fs, "variant"),
			trace: *tracePath, history: *historyPath, out: *out, json: *asJSON,
		})
	}
	sc, _, err := lookupRun(*scenario, flagSet(fs, "scenario"), *variant)
	if err != nil {
		return usageErr(st, "run", "%v", err)
	}
	if code := checkOutPaths(st, "run", []outFlag{{"-trace", *tracePath, false}, {"-history", *historyPath, false}, {"-out", *out, true}}); code >= 0 {
		return code
	}
	o := drawOptions(sc, *seed, *variant)
	commit := buildCommit()
	if !*asJSON {
		fmt.Fprintf(st.out, "walraft run: scenario %s, seed %d, variant %s\n", o.Scenario, o.Seed, variantName(*variant))
		printOptions(st.out, o)
	}
	rc := scenarios.RunConfig{Variant: *variant, RecordTrace: *tracePath != ""}
	res, wall, simErr := simulate(o, rc)
	r := summarize(o, *variant, res, wall, simErr, commit)
	code := exitOK
	if r.failed() {
		code = exitFail
	}
	if res != nil {
		if *tracePath != "" {
			if err := writeTrace(*tracePath, res.Trace); err != nil {
				fmt.Fprintf(st.err, "walraft run: %v\n", err)
				code = exitFail
			}
		}
		if *historyPath != "" {
			if err := writeHistory(*historyPath, res); err != nil {
				fmt.Fprintf(st.err, "walraft run: %v\n", err)
				code = exitFail
			}
		}
		if r.failed() && *out != "" {
			c := newCase(*variant, res, r)
			path := filepath.Join(*out, c.FileName())
			if err := scenarios.WriteCase(path, c); err != nil {
				fmt.Fprintf(st.err, "walraft run: %v\n", err)
			} else {
				r.Case = path
			}
		}
	}
	if *asJSON {
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
	if res != nil {
		printSchedule(st.out, res.Schedule)
	}
	printVerdict(st.out, r)
	printOutcome(st.out, r)
	return code
}

// printOutcome ends a one-run report: PASS, or FAIL with the violated
// invariants, the replay command and the case file written.
func printOutcome(w io.Writer, r *runJSON) {
	if !r.failed() {
		fmt.Fprintln(w, "PASS")
		return
	}
	fmt.Fprintf(w, "FAIL: %d violation(s) of %v\n", len(r.Violations), r.invariantNames())
	fmt.Fprintf(w, "replay: %s\n", r.Replay)
	if r.Case != "" {
		fmt.Fprintf(w, "case file: %s (%s replay %s)\n", r.Case, self(), r.Case)
	}
}

// variantName renders "" as the correct system.
func variantName(v string) string {
	if v == "" {
		return "none (the correct system)"
	}
	return v
}
