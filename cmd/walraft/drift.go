package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"walraft/scenarios"
	"walraft/sim"
)

// driftWhy explains a replay whose trace hash differs from the case's: the
// code changed (the commits differ), or the case file was edited (its
// options differ from what its seed draws, or its schedule from what its
// options generate), or neither, which points at nondeterminism or
// uncommitted changes. Minimized cases differ from their seed by design;
// the lines say so when the case's note says it was minimized.
func driftWhy(c *scenarios.Case, build string) []string {
	var out []string
	switch {
	case c.Commit == build && strings.HasSuffix(build, "-dirty"):
		out = append(out, fmt.Sprintf("same code, as far as the commit tells: the case was written at %s, this build is the same (both with uncommitted changes, which may differ)", c.Commit))
	case c.Commit == build:
		out = append(out, fmt.Sprintf("same code: the case was written at %s, this build is the same commit", c.Commit))
	case sameCommit(c.Commit, build):
		out = append(out, fmt.Sprintf("the code changed: the case was written at %s, this build (%s) has other uncommitted changes", c.Commit, build))
	default:
		out = append(out, fmt.Sprintf("the code changed: the case was written at commit %s, this build is %s", c.Commit, build))
	}
	edited := false
	if sc, err := scenarios.Lookup(c.Scenario); err == nil {
		drawn := sc.Draw(c.Seed)
		drawn.Variant = c.Variant
		if fields := diffFields(drawn, c.Options); len(fields) > 0 {
			edited = true
			out = append(out, fmt.Sprintf("options differ from what seed %d of scenario %s draws: %s", c.Seed, c.Scenario, strings.Join(fields, ", ")))
		}
	}
	gen := scenarios.GenerateSchedule(c.Options, sim.NewStreams(c.Options.Seed).Stream("faults"))
	if !reflect.DeepEqual(normSchedule(gen), normSchedule(c.Schedule)) {
		edited = true
		n := 0
		for i := range max(len(gen), len(c.Schedule)) {
			if i >= len(gen) || i >= len(c.Schedule) || !reflect.DeepEqual(gen[i], c.Schedule[i]) {
				n++
			}
		}
		out = append(out, fmt.Sprintf("the schedule differs from the one these options generate: %d faults in the case, %d generated, %d positions differ", len(c.Schedule), len(gen), n))
	}
	switch {
	case edited && strings.Contains(c.Note, "minimized"):
		out = append(out, "the case was minimized ("+c.Note+"), which changes options and schedule by design; a hand edit after that also changes the hash")
	case edited:
		out = append(out, "so the case file was edited after it was written: its recorded trace hash belongs to the original options and schedule")
	case c.Commit == build:
		out = append(out, "neither the code nor the case changed: the run is not deterministic (see walraft campaign -determinism)")
	}
	return out
}

// sameCommit compares commits, ignoring a "-dirty" suffix.
func sameCommit(a, b string) bool {
	return strings.TrimSuffix(a, "-dirty") == strings.TrimSuffix(b, "-dirty")
}

// normSchedule makes a nil and an empty schedule compare equal.
func normSchedule(s scenarios.Schedule) scenarios.Schedule {
	if len(s) == 0 {
		return nil
	}
	return s
}

// diffFields lists the top-level JSON fields (nested ones as a.b) where a
// and b differ, sorted.
func diffFields(a, b any) []string {
	var ma, mb map[string]any
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	_ = json.Unmarshal(ja, &ma)
	_ = json.Unmarshal(jb, &mb)
	var out []string
	var walk func(prefix string, x, y map[string]any)
	walk = func(prefix string, x, y map[string]any) {
		keys := map[string]bool{}
		for k := range x {
			keys[k] = true
		}
		for k := range y {
			keys[k] = true
		}
		for k := range keys {
			if reflect.DeepEqual(x[k], y[k]) {
				continue
			}
			sx, okx := x[k].(map[string]any)
			sy, oky := y[k].(map[string]any)
			if okx && oky {
				walk(prefix+k+".", sx, sy)
				continue
			}
			out = append(out, prefix+k)
		}
	}
	walk("", ma, mb)
	slices.Sort(out)
	return out
}
