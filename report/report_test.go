package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"walraft/scenarios"
)

// variantCase is a real failing case: the metadata-only variant (the
// original note's design, which loses acks=-1 writes) on the default
// scenario, seed 1, with the schedule that seed generates.
var variantCase = sync.OnceValues(func() (*scenarios.Case, error) {
	sc, err := scenarios.Lookup("default")
	if err != nil {
		return nil, err
	}
	o := sc.Draw(1)
	o.Variant = "metadata-only"
	res, err := scenarios.Run(o, scenarios.RunConfig{Variant: "metadata-only"})
	if err != nil {
		return nil, err
	}
	c := &scenarios.Case{Version: scenarios.CaseVersion, Scenario: o.Scenario, Seed: o.Seed, Variant: o.Variant,
		Commit: "test", TraceHash: scenarios.FormatTraceHash(res.TraceHash), Options: res.Options, Schedule: res.Schedule}
	for _, v := range res.Violations {
		c.Violations = append(c.Violations, scenarios.CaseViolation{Invariant: v.Invariant, Detail: v.Detail, Time: v.Time})
	}
	return c, nil
})

var collected = sync.OnceValues(func() (*Collected, error) {
	c, err := variantCase()
	if err != nil {
		return nil, err
	}
	return Collect(nil, c, "case.json", "test", Select{})
})

func mustCollect(t *testing.T) (*scenarios.Case, *Collected) {
	t.Helper()
	c, err := variantCase()
	if err != nil {
		t.Fatal(err)
	}
	col, err := collected()
	if err != nil {
		t.Fatal(err)
	}
	return c, col
}

// The report's pass is the case's run: the network tap observes only, so
// the trace hash is the one the case recorded.
func TestCollectReplaysTheCase(t *testing.T) {
	c, col := mustCollect(t)
	if col.Data.TraceHash != c.TraceHash {
		t.Fatalf("trace hash %s with the tap, case recorded %s: the tap changed the run", col.Data.TraceHash, c.TraceHash)
	}
	if len(col.Data.Msgs) == 0 || len(col.Data.Ops) == 0 || len(col.Data.Roles) == 0 {
		t.Fatalf("collected %d msgs, %d ops, %d role changes: want some of each", len(col.Data.Msgs), len(col.Data.Ops), len(col.Data.Roles))
	}
	// Every net.deliver in the trace is a delivered arrow.
	delivered := 0
	for _, e := range col.Result.Trace {
		if e.Kind == "net.deliver" {
			delivered++
		}
	}
	arrows := 0
	for _, m := range col.Data.Msgs {
		if m[1] >= 0 {
			arrows++
		}
	}
	if arrows != delivered {
		t.Fatalf("%d delivered arrows, the trace has %d net.deliver events", arrows, delivered)
	}
}

// The focus is the earliest evidence (the ack of the first lost write, at
// the node's reply: the reply-time evidence is read then, and the client
// gets it a client latency later), not the time the checker detected the
// loss at the end of the run.
func TestFocusOnEarliestEvidence(t *testing.T) {
	_, col := mustCollect(t)
	f := col.Focus
	if f.Invariant != "S1" {
		t.Fatalf("focus invariant %q, want S1 (metadata-only loses acks=-1 writes)", f.Invariant)
	}
	if len(f.Ops) == 0 {
		t.Fatal("focus names no ops")
	}
	first := col.Result.History.Ops[f.Ops[0]-1]
	if first.Evidence == nil || first.Evidence.At == 0 || first.Evidence.At >= first.Complete {
		t.Fatalf("op %d: evidence %+v, want the node's reply time, before the client got it at %v", first.ID, first.Evidence, first.Complete)
	}
	if first.ID != f.Ops[0] || f.Center != first.Evidence.At {
		t.Fatalf("focus centre %v, want the node's answer to op %d at %v", f.Center, f.Ops[0], first.Evidence.At)
	}
	if f.Center >= f.ViolationAt {
		t.Fatalf("centre %v not before detection %v", f.Center, f.ViolationAt)
	}
	if !(f.From <= f.Center && f.Center <= f.To) {
		t.Fatalf("range [%v, %v] does not hold the centre %v", f.From, f.To, f.Center)
	}
	for _, op := range col.Data.Ops {
		if op.ID == int64(f.Ops[0]) && !op.Lost {
			t.Fatalf("op %d in focus is not marked lost", op.ID)
		}
	}
}

func TestFindFocusSelect(t *testing.T) {
	c, col := mustCollect(t)
	res := col.Result
	tests := []struct {
		name    string
		sel     Select
		wantErr bool
		check   func(Focus) bool
	}{
		{"at", Select{At: 2 * time.Second}, false, func(f Focus) bool { return f.Center == 2*time.Second }},
		{"op", Select{Op: 7}, false, func(f Focus) bool { return len(f.Ops) == 1 && f.Ops[0] == 7 }},
		{"invariant", Select{Invariant: "S3"}, false, func(f Focus) bool { return f.Invariant == "S3" }},
		{"unknown invariant", Select{Invariant: "S99"}, true, nil},
		{"unknown op", Select{Op: 1 << 40}, true, nil},
		{"at past the end", Select{At: res.SimTime + time.Nanosecond}, true, nil},
		{"at the end", Select{At: res.SimTime}, false, func(f Focus) bool { return f.Center == res.SimTime }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := FindFocus(res, c.Violations, tc.sel)
			if tc.wantErr {
				if !errors.Is(err, ErrNoSuchFocus) {
					t.Fatalf("err %v, want ErrNoSuchFocus", err)
				}
				return
			}
			if err != nil || !tc.check(f) {
				t.Fatalf("focus %+v, err %v", f, err)
			}
		})
	}
	// A run that holds every invariant falls back to the case's record.
	fixed := *res
	fixed.Violations = nil
	f, err := FindFocus(&fixed, c.Violations, Select{})
	if err != nil || f.Invariant != c.Violations[0].Invariant {
		t.Fatalf("fallback focus %+v, err %v", f, err)
	}
}

// A fault kind this package has never heard of (other helpers add kinds)
// renders from its JSON and String().
func TestFaultBandsAreGeneric(t *testing.T) {
	s := scenarios.Schedule{
		{At: time.Second, Kind: "brand-new-kind", Node: 2, Dur: 500 * time.Millisecond, Count: 3},
		{At: 3 * time.Second, Kind: scenarios.FaultHeal},
	}
	bands := faultBands(s, Focus{Faults: []int{0}}, 10*time.Second)
	if len(bands) != 2 {
		t.Fatalf("%d bands", len(bands))
	}
	b := bands[0]
	if b.Kind != "brand-new-kind" || b.Node != 2 || b.FromUS != 1e6 || b.ToUS != 1.5e6 || !b.InFocus ||
		!strings.Contains(b.Text, "brand-new-kind n2") || b.Fields["count"] != float64(3) {
		t.Fatalf("band %+v", b)
	}
	if bands[1].FromUS != bands[1].ToUS || bands[1].InFocus {
		t.Fatalf("instant band %+v", bands[1])
	}
}

// The page is self-contained: no network fetch of any kind, and the data
// round-trips.
func TestRenderSelfContained(t *testing.T) {
	_, col := mustCollect(t)
	var buf bytes.Buffer
	if err := Render(&buf, col.Data); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)<(script|img|link|iframe)[^>]*\s(src|href)=`),
		regexp.MustCompile(`(?i)@import|url\(\s*['"]?https?:`),
		regexp.MustCompile(`(?i)fetch\(|XMLHttpRequest|https?://(?:[^w]|w[^w]|ww[^w]|www[^.]|www\.[^w])`),
	} {
		if m := bad.FindString(page); m != "" {
			t.Fatalf("page refers to something outside itself: %q", m)
		}
	}
	start := strings.Index(page, `<script type="application/json" id="data">`)
	end := strings.Index(page[start:], "</script>")
	if start < 0 || end < 0 {
		t.Fatal("no data block")
	}
	var back Data
	raw := page[start+len(`<script type="application/json" id="data">`) : start+end]
	if err := json.Unmarshal([]byte(raw), &back); err != nil {
		t.Fatalf("data block: %v", err)
	}
	if len(back.Msgs) != len(col.Data.Msgs) || back.Focus.Invariant != "S1" {
		t.Fatalf("data block lost content: %d msgs, focus %q", len(back.Msgs), back.Focus.Invariant)
	}
	// A detail holding "</script>" cannot end the data block early.
	d := *col.Data
	d.Viols = append([]Viol{{Invariant: "X", Detail: "</script><script>alert(1)</script>"}}, d.Viols...)
	buf.Reset()
	if err := Render(&buf, &d); err != nil {
		t.Fatal(err)
	}
	if strings.Count(buf.String(), "</script>") != strings.Count(page, "</script>") {
		t.Fatal("a detail's </script> reached the page")
	}
}

// Every trace event kind a run emits has a legend line (walraft help
// trace): add one in legend.go when you add a kind.
func TestLegendCoversTrace(t *testing.T) {
	_, col := mustCollect(t)
	seen := map[string]bool{}
	for _, e := range col.Result.Trace {
		if !seen[e.Kind] {
			seen[e.Kind] = true
			if Describe(e.Kind) == "" {
				t.Errorf("trace kind %q has no legend entry in report/legend.go", e.Kind)
			}
		}
	}
	if len(seen) < 10 {
		t.Fatalf("only %d kinds seen", len(seen))
	}
}

// A violation that names no op is focused on the writes of the first record
// where two nodes' final logs disagree.
func TestFocusOnFirstDivergentRecord(t *testing.T) {
	_, col := mustCollect(t)
	res := *col.Result
	var vs []scenarios.Violation
	for _, v := range res.Violations {
		if v.Invariant == "S2" {
			v.Ops = nil
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		t.Skip("no S2 violation in this run")
	}
	res.Violations = vs
	d, ok := firstDivergence(res.History)
	if !ok || len(d.writeOps) == 0 {
		t.Fatalf("no divergence found in a run that violated S2: %+v", d)
	}
	f, err := FindFocus(&res, nil, Select{})
	if err != nil {
		t.Fatal(err)
	}
	if f.Invariant != "S2" || len(f.Ops) == 0 || !slices.Contains(d.writeOps, f.Ops[0]) || f.Center >= f.ViolationAt {
		t.Fatalf("focus %+v, divergence %v", f, d)
	}
	found := false
	for _, e := range f.Evidence {
		found = found || strings.HasPrefix(e, "first divergent record: ")
	}
	if !found {
		t.Fatalf("evidence %v lacks the divergent record", f.Evidence)
	}
}

// TestLegendCoversSource: every trace kind the code emits under a literal
// name (node and WAL traces, sim world events, harness events) has a legend
// entry, including kinds that TestLegendCoversTrace's one run never reaches
// (pipelined-path, corruption and trigger events).
func TestLegendCoversSource(t *testing.T) {
	emit := regexp.MustCompile(`(?:\b(?:trace|event|text|onEvent|emit)\(\s*(?:[a-z]+,\s*)?|Kind:\s*|kind\s*:?=\s*)"([a-z]+(?:\.[a-z_]+)+)"`)
	seen := map[string]bool{}
	for _, dir := range []string{"../core", "../sim", "../scenarios"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range emit.FindAllSubmatch(b, -1) {
				k := string(m[1])
				if !seen[k] {
					seen[k] = true
					if Describe(k) == "" {
						t.Errorf("trace kind %q (emitted in %s) has no legend entry in report/legend.go", k, path)
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) < 30 {
		t.Fatalf("found only %d emitted kinds: the pattern no longer matches the code", len(seen))
	}
}

// noFaultCase is a failing case with an empty schedule, what minimize
// writes when a bug needs no fault: ack-before-fsync answers acks=1 writes
// before their fsync on any run. The schedule is nil, as a minimized case
// file decodes ("schedule": null).
var noFaultCase = sync.OnceValues(func() (*scenarios.Case, error) {
	sc, err := scenarios.Lookup("default")
	if err != nil {
		return nil, err
	}
	o := sc.Draw(2)
	o.Variant = "ack-before-fsync"
	o.SafetyDuration = 500 * time.Millisecond
	res, err := scenarios.Run(o, scenarios.RunConfig{Variant: o.Variant, UseSchedule: true})
	if err != nil {
		return nil, err
	}
	c := &scenarios.Case{Version: scenarios.CaseVersion, Scenario: o.Scenario, Seed: o.Seed, Variant: o.Variant,
		Commit: "test", TraceHash: scenarios.FormatTraceHash(res.TraceHash), Options: res.Options}
	for _, v := range res.Violations {
		c.Violations = append(c.Violations, scenarios.CaseViolation{Invariant: v.Invariant, Detail: v.Detail, Time: v.Time})
	}
	return c, nil
})

// The page's script iterates over every list of the data, so no list may
// be JSON null: a case with no faults (no lane states, no drop reasons, no
// faults in focus) once left the page without a diagram. This walks the
// data block of the rendered page for both a faulty and a no-fault case.
func TestRenderHasNoNullLists(t *testing.T) {
	nf, err := noFaultCase()
	if err != nil {
		t.Fatal(err)
	}
	if len(nf.Schedule) != 0 || len(nf.Violations) == 0 {
		t.Fatalf("no-fault case has %d faults and %d violations: want 0 faults and some violations", len(nf.Schedule), len(nf.Violations))
	}
	colNF, err := Collect(nil, nf, "case.json", "test", Select{})
	if err != nil {
		t.Fatal(err)
	}
	_, col := mustCollect(t)
	for _, tc := range []struct {
		name string
		d    *Data
	}{{"no faults", colNF.Data}, {"faults", col.Data}} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Render(&buf, tc.d); err != nil {
				t.Fatal(err)
			}
			page := buf.String()
			const open = `<script type="application/json" id="data">`
			start := strings.Index(page, open) + len(open)
			end := strings.Index(page[start:], "</script>")
			var v map[string]any
			if err := json.Unmarshal([]byte(page[start:start+end]), &v); err != nil {
				t.Fatal(err)
			}
			delete(v, "options") // the run's options as the case holds them, shown as text only
			for _, p := range nullPaths(v, "") {
				t.Errorf("data has null at %s: the page's script would throw", p)
			}
		})
	}
}

// nullPaths lists where a decoded JSON value holds null.
func nullPaths(v any, at string) []string {
	var out []string
	switch x := v.(type) {
	case nil:
		out = append(out, at)
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			if k == "fields" { // a fault's own JSON, shown as text
				continue
			}
			out = append(out, nullPaths(x[k], at+"."+k)...)
		}
	case []any:
		for i, e := range x {
			out = append(out, nullPaths(e, fmt.Sprintf("%s[%d]", at, i))...)
		}
	}
	return out
}

// A fault is evidence of a violation only if it fired before the violation
// was detected; only a minimized schedule's faults are "kept" ones.
func TestFocusFaultsFiredBeforeViolation(t *testing.T) {
	at := func(ss ...float64) scenarios.Schedule {
		var s scenarios.Schedule
		for _, x := range ss {
			s = append(s, scenarios.Fault{At: time.Duration(x * float64(time.Second)), Kind: scenarios.FaultHeal})
		}
		return s
	}
	five := at(0.5, 1, 2, 3, 4)
	tests := []struct {
		name      string
		sched     scenarios.Schedule
		violation time.Duration // 0: the run holds
		sel       Select
		want      []int
		kept      bool
	}{
		{"nearest before the violation", five, 1500 * time.Millisecond, Select{}, []int{1}, false},
		{"violation before every fault", five, 100 * time.Millisecond, Select{}, nil, false},
		{"-at past the violation", five, 1500 * time.Millisecond, Select{At: 3500 * time.Millisecond}, []int{1}, false},
		{"-at before the violation", five, 3500 * time.Millisecond, Select{At: 1500 * time.Millisecond}, []int{1, 2}, false},
		{"minimized: all that fired", five, 2500 * time.Millisecond, Select{Minimized: true}, []int{0, 1, 2}, true},
		{"short schedule", at(0.5, 3), 1500 * time.Millisecond, Select{}, []int{0}, false},
		{"no violation: nearest -at", five, 0, Select{At: 2500 * time.Millisecond}, []int{2, 3}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := &scenarios.Result{Schedule: tc.sched, SimTime: 10 * time.Second}
			if tc.violation > 0 {
				res.Violations = []scenarios.Violation{{Invariant: "S5", Time: tc.violation, Detail: "test"}}
			}
			f, err := FindFocus(res, nil, tc.sel)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(f.Faults, tc.want) || f.KeptByMinimize != tc.kept {
				t.Fatalf("faults %v kept %v, want %v kept %v (evidence %q)", f.Faults, f.KeptByMinimize, tc.want, tc.kept, f.Evidence)
			}
		})
	}
}
