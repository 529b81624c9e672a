package scenarios

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"walraft/sim"
)

// TestFaultDocsCoverKinds: the schedule reference (walraft help schedule)
// names every fault kind, trigger event and target, once each.
func TestFaultDocsCoverKinds(t *testing.T) {
	kinds := map[FaultKind]int{}
	for _, d := range FaultDocs() {
		kinds[d.Kind]++
		if d.Does == "" {
			t.Errorf("fault %s: no description", d.Kind)
		}
	}
	for _, k := range faultKinds {
		if kinds[k] != 1 {
			t.Errorf("fault kind %s documented %d times, want 1", k, kinds[k])
		}
	}
	if len(kinds) != len(faultKinds) {
		t.Errorf("%d kinds documented, %d exist", len(kinds), len(faultKinds))
	}
	on := map[TriggerEvent]int{}
	for _, d := range TriggerDocs() {
		on[d.On]++
	}
	for _, e := range triggerEvents {
		if on[e] != 1 {
			t.Errorf("trigger %s documented %d times, want 1", e, on[e])
		}
	}
	if len(on) != len(triggerEvents) {
		t.Errorf("%d trigger events documented, %d exist", len(on), len(triggerEvents))
	}
	tg := map[Target]int{}
	for _, d := range TargetDocs() {
		tg[d.Target]++
	}
	for _, x := range targets {
		if tg[x] != 1 {
			t.Errorf("target %s documented %d times, want 1", x, tg[x])
		}
	}
	if len(tg) != len(targets) {
		t.Errorf("%d targets documented, %d exist", len(tg), len(targets))
	}
}

// TestOptionDocsComplete: every knob (by its JSON name) and every disk
// setting is documented once, and nothing else is.
func TestOptionDocsComplete(t *testing.T) {
	check := func(what string, typ reflect.Type, docs []OptionDoc, name func(reflect.StructField) string) {
		t.Helper()
		want := map[string]bool{}
		for i := 0; i < typ.NumField(); i++ {
			if f := typ.Field(i); f.IsExported() {
				want[name(f)] = true
			}
		}
		seen := map[string]int{}
		for _, d := range docs {
			if d.Does == "" {
				t.Errorf("%s %s: no description", what, d.Name)
			}
			for _, n := range strings.Split(d.Name, ", ") {
				seen[n]++
				if !want[n] {
					t.Errorf("%s %s is documented but does not exist", what, n)
				}
			}
		}
		for n := range want {
			if seen[n] != 1 {
				t.Errorf("%s %s documented %d times, want 1", what, n, seen[n])
			}
		}
	}
	check("knob", reflect.TypeOf(Knobs{}), KnobDocs(), func(f reflect.StructField) string {
		return strings.Split(f.Tag.Get("json"), ",")[0]
	})
	check("disk setting", reflect.TypeOf(sim.DiskConfig{}), DiskDocs(), func(f reflect.StructField) string { return f.Name })
}

// TestFaultLogValidate: which kinds take which log.
func TestFaultLogValidate(t *testing.T) {
	tests := []struct {
		kind FaultKind
		log  string
		ok   bool
	}{
		{FaultCorrupt, CorruptWAL, true}, {FaultCorrupt, StallDir, false},
		{FaultStallLog, StallDir, true}, {FaultStallLog, CorruptRaft, true},
		{FaultSyncEIO, CorruptWAL, true}, {FaultSyncEIO, StallDir, true}, {FaultSyncEIO, "disk", false},
		{FaultWriteEIO, CorruptRaft, true}, {FaultWriteEIO, StallDir, false},
		{FaultCrash, CorruptWAL, false}, {FaultNoSpace, CorruptWAL, false},
	}
	for _, tc := range tests {
		f := Fault{At: time.Second, Kind: tc.kind, Node: 1, Log: tc.log, Dur: time.Second, Count: 1}
		if err := (Schedule{f}).Validate(3); (err == nil) != tc.ok {
			t.Errorf("%s log %q: err %v, want ok %v", tc.kind, tc.log, err, tc.ok)
		}
	}
}
