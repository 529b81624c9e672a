package scenarios

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"walraft/sim"
)

// bigCase returns default-scenario options and a long generated schedule
// with two planted faults that the synthetic oracles below need.
func bigCase(t *testing.T) (Options, Schedule) {
	t.Helper()
	sc, err := Lookup("default")
	if err != nil {
		t.Fatal(err)
	}
	o := sc.Draw(7)
	o.SafetyDuration = 10 * time.Second
	o.FaultEvery = 300 * time.Millisecond
	o.Producers, o.Consumers = 12, 3
	s := GenerateSchedule(o, sim.NewStreams(7).Stream("faults"))
	s = append(s,
		Fault{At: 2 * time.Second, Kind: FaultPartition, Groups: [][]uint64{{1}, {2, 3}}},
		Fault{At: 4 * time.Second, Kind: FaultCrash, Node: 2, Dur: 1500 * time.Millisecond})
	s.Sort()
	if len(s) < 15 {
		t.Fatalf("only %d faults; the test wants a long schedule", len(s))
	}
	return o, s
}

// needs reports whether s holds the planted partition and a crash of node 2
// at 4s lasting at least 40ms.
func needs(s Schedule) bool {
	var part, crash bool
	for _, f := range s {
		part = part || (f.Kind == FaultPartition && f.At == 2*time.Second && len(f.Groups) == 2 && len(f.Groups[0]) == 1)
		crash = crash || (f.Kind == FaultCrash && f.Node == 2 && f.At == 4*time.Second && f.Dur >= 40*time.Millisecond)
	}
	return part && crash
}

func TestMinimizeShrinks(t *testing.T) {
	o, s := bigCase(t)
	var confirmed []Schedule
	oracle := func(o Options, s Schedule) (bool, error) {
		if err := s.Validate(o.Nodes); err != nil {
			t.Fatalf("minimizer produced an invalid schedule: %v", err)
		}
		fails := needs(s) && o.Producers >= 3 && o.SafetyDuration > 4*time.Second
		if fails {
			confirmed = append(confirmed, s)
		}
		return fails, nil
	}
	m, err := Minimize(o, s, oracle, MinimizeConfig{MaxRuns: 400})
	if err != nil {
		t.Fatal(err)
	}
	if m.Exhausted {
		t.Fatalf("ran out of budget after %d runs", m.Runs)
	}
	if len(m.Schedule) != 2 || !needs(m.Schedule) {
		t.Fatalf("schedule shrank from %d to:\n%s", len(s), m.Schedule)
	}
	if d := m.Schedule[1].Dur; d < 40*time.Millisecond || d >= 80*time.Millisecond {
		t.Errorf("crash duration %v, want it halved down to [40ms, 80ms)", d)
	}
	if m.Options.Producers != 3 || m.Options.Consumers != 0 {
		t.Errorf("producers %d consumers %d, want 3 and 0", m.Options.Producers, m.Options.Consumers)
	}
	if sd := m.Options.SafetyDuration; sd <= 4*time.Second || sd >= o.SafetyDuration {
		t.Errorf("safety phase %v, want shortened but above 4s", sd)
	}
	// The result is a candidate the oracle confirmed, not an extrapolation.
	if d := cmp.Diff(confirmed[len(confirmed)-1], m.Schedule); d != "" {
		t.Errorf("result is not the last confirmed candidate:\n%s", d)
	}
	if m.Runs > 400 {
		t.Errorf("%d runs, budget 400", m.Runs)
	}
	t.Logf("faults %d -> %d in %d runs", len(s), len(m.Schedule), m.Runs)
}

func TestMinimizeBudget(t *testing.T) {
	o, s := bigCase(t)
	runs := 0
	oracle := func(o Options, s Schedule) (bool, error) {
		runs++
		return needs(s), nil
	}
	m, err := Minimize(o, s, oracle, MinimizeConfig{MaxRuns: 5})
	if err != nil {
		t.Fatal(err)
	}
	if runs != 5 || m.Runs != 5 || !m.Exhausted {
		t.Fatalf("oracle ran %d times, Runs %d, Exhausted %v; want 5, 5, true", runs, m.Runs, m.Exhausted)
	}
	if !needs(m.Schedule) {
		t.Fatalf("budget-limited result does not fail:\n%s", m.Schedule)
	}
}

func TestMinimizeStart(t *testing.T) {
	o, s := bigCase(t)
	boom := errors.New("boom")
	tests := []struct {
		name   string
		oracle Oracle
		want   error
	}{
		{"passes", func(Options, Schedule) (bool, error) { return false, nil }, ErrNotReproduced},
		{"errors", func(Options, Schedule) (bool, error) { return false, boom }, boom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Minimize(o, s, tc.oracle, MinimizeConfig{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if m.Runs != 1 || len(m.Schedule) != len(s) {
				t.Fatalf("Runs %d, %d faults; want 1 run and the schedule untouched", m.Runs, len(m.Schedule))
			}
		})
	}
}

// Candidates the oracle cannot run count as not failing.
func TestMinimizeCandidateErrors(t *testing.T) {
	o, s := bigCase(t)
	first := true
	oracle := func(o Options, s Schedule) (bool, error) {
		if first {
			first = false
			return true, nil
		}
		return true, errors.New("cannot run")
	}
	m, err := Minimize(o, s, oracle, MinimizeConfig{MaxRuns: 50})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Schedule) != len(s) || m.Options.Producers != o.Producers {
		t.Fatalf("accepted a candidate that errored: %d faults, %d producers", len(m.Schedule), m.Options.Producers)
	}
}

// With an oracle that fails exactly when a hidden set of faults is
// present, delta debugging finds exactly that set (ddmin's 1-minimality).
func TestMinimizeFindsHiddenSet(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 40).Draw(t, "faults")
		s := make(Schedule, n)
		for i := range s {
			s[i] = Fault{At: time.Duration(i+1) * time.Millisecond, Kind: FaultCrash, Node: uint64(1 + i%3), Dur: time.Second}
		}
		var need []int
		for i := range s {
			if rapid.Bool().Draw(t, "need") {
				need = append(need, i)
			}
		}
		o := Options{Nodes: 3, Producers: 4, Consumers: 1, SafetyDuration: time.Second}
		oracle := func(o Options, c Schedule) (bool, error) {
			have := map[time.Duration]bool{}
			for _, f := range c {
				have[f.At] = true
			}
			for _, i := range need {
				if !have[s[i].At] {
					return false, nil
				}
			}
			return true, nil
		}
		m, err := Minimize(o, s, oracle, MinimizeConfig{MaxRuns: 2000})
		if err != nil {
			t.Fatal(err)
		}
		if m.Exhausted {
			t.Fatalf("budget exhausted after %d runs", m.Runs)
		}
		var got []int
		for _, f := range m.Schedule {
			got = append(got, int(f.At/time.Millisecond)-1)
		}
		if !cmp.Equal(got, need) {
			t.Fatalf("kept faults %v, want exactly %v", got, need)
		}
	})
}
