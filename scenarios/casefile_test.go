package scenarios

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"walraft/sim"
)

// testCase builds a valid case from a real draw of the default scenario and
// its generated schedule.
func testCase(t *testing.T) *Case {
	t.Helper()
	sc, err := Lookup("default")
	if err != nil {
		t.Fatal(err)
	}
	o := sc.Draw(42)
	o.Variant = "ack-before-fsync"
	s := GenerateSchedule(o, sim.NewStreams(42).Stream("faults"))
	if len(s) == 0 {
		t.Fatal("seed 42 drew no faults; pick a seed with faults")
	}
	return &Case{
		Version: CaseVersion, Scenario: o.Scenario, Seed: o.Seed, Variant: o.Variant,
		Commit: "0123456789abcdef0123456789abcdef01234567", TraceHash: FormatTraceHash(0xdeadbeef01234567),
		Options: o, Schedule: s,
		Violations: []CaseViolation{{Invariant: "S1", Detail: "acks=-1 op 17 lost at offset 4", Time: 3 * time.Second}},
	}
}

func TestCaseRoundTrip(t *testing.T) {
	c := testCase(t)
	b, err := MarshalCase(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeCase(b)
	if err != nil {
		t.Fatalf("decode: %v\n%s", err, b)
	}
	if d := cmp.Diff(c, got); d != "" {
		t.Fatalf("round trip changed the case (-want +got):\n%s", d)
	}

	path := filepath.Join(t.TempDir(), "sub", c.FileName())
	if err := WriteCase(path, c); err != nil {
		t.Fatal(err)
	}
	got, err = ReadCase(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(c, got); d != "" {
		t.Fatalf("file round trip changed the case (-want +got):\n%s", d)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".case-*")); len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
}

func TestCaseFileName(t *testing.T) {
	c := testCase(t)
	if got, want := c.FileName(), "default-ack-before-fsync-seed42.json"; got != want {
		t.Errorf("FileName = %q, want %q", got, want)
	}
	c.Variant, c.Scenario = "", "a/b"
	if got, want := c.FileName(), "a_b-correct-seed42.json"; got != want {
		t.Errorf("FileName = %q, want %q", got, want)
	}
}

// mutate decodes the valid case into a generic tree, applies f and
// re-encodes it, so each bad-input case states only its one change.
func mutate(t *testing.T, f func(m map[string]any)) []byte {
	t.Helper()
	b, err := MarshalCase(testCase(t))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDecodeCaseRejects(t *testing.T) {
	valid, err := MarshalCase(testCase(t))
	if err != nil {
		t.Fatal(err)
	}
	opts := func(m map[string]any) map[string]any { return m["options"].(map[string]any) }
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "empty file"},
		{"blank", []byte(" \n\t"), "empty file"},
		{"not json", []byte("hello"), "not valid JSON"},
		{"array", []byte("[1,2]"), "is expected"},
		{"truncated", valid[:len(valid)/2], "truncated"},
		{"trailing data", append(append([]byte(nil), valid...), []byte(`{"x":1}`)...), "data after"},
		{"missing version", mutate(t, func(m map[string]any) { delete(m, "version") }), `missing field "version"`},
		{"newer version", mutate(t, func(m map[string]any) { m["version"] = 2; m["future"] = true }), "newer than this walraft"},
		{"old version", mutate(t, func(m map[string]any) { m["version"] = 0 }), "not supported"},
		{"version as string", mutate(t, func(m map[string]any) { m["version"] = "1" }), `"version"`},
		{"unknown field", mutate(t, func(m map[string]any) { m["extra"] = 1 }), `unknown field "extra"`},
		{"unknown nested field", mutate(t, func(m map[string]any) { opts(m)["Bogus"] = 1 }), `options: unknown field "Bogus"`},
		{"misspelt field", mutate(t, func(m map[string]any) { m["shedule"] = m["schedule"]; delete(m, "schedule") }), `unknown field "shedule" (did you mean "schedule"?)`},
		{"misspelt option", mutate(t, func(m map[string]any) { opts(m)["Prodcers"] = 1 }), `options: unknown field "Prodcers" (did you mean "Producers"?)`},
		{"missing seed", mutate(t, func(m map[string]any) { delete(m, "seed") }), `missing field "seed"`},
		{"missing option", mutate(t, func(m map[string]any) { delete(opts(m), "Producers") }), `missing field "options.Producers"`},
		{"missing disk option", mutate(t, func(m map[string]any) { delete(opts(m)["Disk"].(map[string]any), "SyncMax") }), `missing field "options.Disk.SyncMax"`},
		{"missing fault kind", mutate(t, func(m map[string]any) { delete(m["schedule"].([]any)[0].(map[string]any), "kind") }), `missing field "schedule[0].kind"`},
		{"missing violation detail", mutate(t, func(m map[string]any) { delete(m["violations"].([]any)[0].(map[string]any), "detail") }), `missing field "violations[0].detail"`},
		{"wrong type", mutate(t, func(m map[string]any) { m["seed"] = "42" }), `field "seed"`},
		{"seed disagrees", mutate(t, func(m map[string]any) { m["seed"] = 43 }), "disagrees"},
		{"variant disagrees", mutate(t, func(m map[string]any) { m["variant"] = "" }), "disagrees"},
		{"unknown variant", mutate(t, func(m map[string]any) { m["variant"] = "nope"; opts(m)["Variant"] = "nope" }), "unknown variant"},
		{"no violations", mutate(t, func(m map[string]any) { m["violations"] = []any{} }), "no violations"},
		{"bad trace hash", mutate(t, func(m map[string]any) { m["trace_hash"] = "xyz" }), "trace hash"},
		{"empty commit", mutate(t, func(m map[string]any) { m["commit"] = "" }), "empty commit"},
		{"bad fault node", mutate(t, func(m map[string]any) {
			m["schedule"] = []any{map[string]any{"at": 1, "kind": "crash", "node": 7}}
		}), "not in 1..3"},
		{"unknown fault kind", mutate(t, func(m map[string]any) { m["schedule"] = []any{map[string]any{"at": 1, "kind": "meteor"}} }), "unknown fault kind"},
		{"invalid options", mutate(t, func(m map[string]any) { opts(m)["Nodes"] = 0 }), "nodes 0"},
		{"huge workload", mutate(t, func(m map[string]any) { opts(m)["Producers"] = 1 << 40 }), "producers"},
		{"huge phase", mutate(t, func(m map[string]any) { opts(m)["SafetyDuration"] = int64(1000 * time.Hour) }), "phases"},
		{"too large", bytes.Repeat([]byte(" "), MaxCaseFileSize+1), "at most"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DecodeCase(tc.in)
			if err == nil {
				t.Fatalf("decoded %+v, want an error", c)
			}
			if !errors.Is(err, ErrBadCase) {
				t.Errorf("error %v does not wrap ErrBadCase", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// Every strict prefix of a valid case file is rejected with ErrBadCase,
// never decoded or a panic.
func TestDecodeCaseEveryTruncation(t *testing.T) {
	valid, err := MarshalCase(testCase(t))
	if err != nil {
		t.Fatal(err)
	}
	valid = bytes.TrimSpace(valid)
	for i := 0; i < len(valid); i++ {
		if _, err := DecodeCase(valid[:i]); !errors.Is(err, ErrBadCase) {
			t.Fatalf("prefix of %d/%d bytes: error %v, want ErrBadCase", i, len(valid), err)
		}
	}
}

func TestReadCaseMissingFile(t *testing.T) {
	_, err := ReadCase(filepath.Join(t.TempDir(), "nope.json"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("error %v, want os.ErrNotExist", err)
	}
}

func TestTraceHashFormat(t *testing.T) {
	for _, h := range []uint64{0, 1, 0xdeadbeef, ^uint64(0)} {
		s := FormatTraceHash(h)
		got, err := ParseTraceHash(s)
		if err != nil || got != h {
			t.Errorf("ParseTraceHash(%q) = %x, %v; want %x", s, got, err, h)
		}
	}
	for _, s := range []string{"", "12", "zzzzzzzzzzzzzzzz", "00000000000000000"} {
		if _, err := ParseTraceHash(s); err == nil {
			t.Errorf("ParseTraceHash(%q) succeeded", s)
		}
	}
}

// A schedule file is a case file whose run-recording fields (commit,
// trace_hash, violations) may be left out; everything else is as strict.
func TestDecodeScheduleFile(t *testing.T) {
	full, err := MarshalCase(testCase(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeScheduleFile(full); err != nil {
		t.Errorf("a case file is not accepted as a schedule file: %v", err)
	}
	bare := func(m map[string]any) {
		for _, k := range scheduleFileOptional {
			delete(m, k)
		}
	}
	c, err := DecodeScheduleFile(mutate(t, bare))
	if err != nil {
		t.Fatalf("schedule file without %v: %v", scheduleFileOptional, err)
	}
	if want := testCase(t); c.Commit != "" || c.TraceHash != "" || len(c.Violations) != 0 || !cmp.Equal(c.Options, want.Options) || !cmp.Equal(c.Schedule, want.Schedule) {
		t.Errorf("decoded %+v", c)
	}
	if _, err := DecodeCase(mutate(t, bare)); err == nil {
		t.Error("DecodeCase accepted a case without violations, commit and trace hash")
	}
	opts := func(m map[string]any) map[string]any { return m["options"].(map[string]any) }
	tests := []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"unknown field", func(m map[string]any) { bare(m); m["faults"] = 1 }, `unknown field "faults"`},
		{"missing options", func(m map[string]any) { bare(m); delete(m, "options") }, `missing field "options"`},
		{"missing schedule", func(m map[string]any) { bare(m); delete(m, "schedule") }, `missing field "schedule"`},
		{"missing seed", func(m map[string]any) { bare(m); delete(m, "seed") }, `missing field "seed"`},
		{"bad trace hash given", func(m map[string]any) { bare(m); m["trace_hash"] = "xyz" }, "trace hash"},
		{"unknown scenario", func(m map[string]any) { bare(m); m["scenario"] = "x"; opts(m)["Scenario"] = "x" }, `unknown scenario "x"`},
		{"bad target", func(m map[string]any) {
			bare(m)
			m["schedule"] = []any{map[string]any{"at": 1, "kind": "crash", "target": "queen"}}
		}, `unknown target "queen"`},
		{"bad trigger", func(m map[string]any) {
			bare(m)
			m["schedule"] = []any{map[string]any{"at": 1, "kind": "crash", "node": 1, "trigger": map[string]any{"on": "never"}}}
		}, `unknown event "never"`},
		{"bad expect", func(m map[string]any) { bare(m); m["expect"] = "ok" }, `expect "ok"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeScheduleFile(mutate(t, tc.edit))
			if !errors.Is(err, ErrBadCase) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want ErrBadCase mentioning %q", err, tc.want)
			}
		})
	}
}

// TestFaultCanTakeEffect: a case file's fault that could never act (due
// after the safety phase, a window with no duration, a budget of zero) is
// refused; one at the phase's last instant still applies.
func TestFaultCanTakeEffect(t *testing.T) {
	safety := 6 * time.Second
	tests := []struct {
		name string
		f    Fault
		ok   bool
	}{
		{"crash inside", Fault{At: time.Second, Kind: FaultCrash, Node: 1}, true},
		{"heal at the last instant", Fault{At: safety, Kind: FaultHeal}, true},
		{"crash after the phase", Fault{At: safety + 1, Kind: FaultCrash, Node: 1}, false},
		{"stall without dur", Fault{At: time.Second, Kind: FaultStall, Node: 1}, false},
		{"stall", Fault{At: time.Second, Kind: FaultStall, Node: 1, Dur: time.Millisecond}, true},
		{"drop without prob", Fault{At: time.Second, Kind: FaultDrop, Dur: time.Second}, false},
		{"sync-eio without count", Fault{At: time.Second, Kind: FaultSyncEIO, Node: 1}, false},
		{"sync-eio", Fault{At: time.Second, Kind: FaultSyncEIO, Node: 1, Count: 1}, true},
		{"clock step of zero", Fault{At: time.Second, Kind: FaultClockStep, Node: 1}, false},
		{"skew at rate 1", Fault{At: time.Second, Kind: FaultSkew, Node: 1, Rate: 1}, false},
		{"crash at disk event 0", Fault{Kind: FaultCrashAtDiskEvent, Node: 1}, false},
	}
	for _, tc := range tests {
		if err := tc.f.canTakeEffect(safety); (err == nil) != tc.ok {
			t.Errorf("%s: canTakeEffect = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

// TestUnfiredFaults: a fault whose trigger never fires is reported in
// Result.Unfired; one that fires is not.
func TestUnfiredFaults(t *testing.T) {
	s := Schedule{
		{At: 100 * time.Millisecond, Kind: FaultCrash, Target: TargetEventNode, Dur: 50 * time.Millisecond, Trigger: &Trigger{On: OnBecomeLeader, Nth: 1000}},
		{At: time.Second, Kind: FaultPause, Node: 2, Dur: 10 * time.Millisecond},
	}
	res := smallRun(t, s, nil)
	if len(res.Unfired) != 1 || res.Unfired[0].Trigger == nil || res.Unfired[0].Trigger.Nth != 1000 {
		t.Fatalf("Unfired = %v, want the become-leader trigger alone", res.Unfired)
	}
}
