package scenarios

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"walraft/core/node"
)

// availHistory is validCluster with availability truth: a healthy majority
// from 1 s to 5 s and from 60 s to 95 s, bound 2 s. Its acks=-1 successes
// complete at 2.1 s and 91.1 s (52.1 s is the liveness probe, outside the
// windows anyway), so the gaps are 1.1 s and 2.9 s in the first window and
// 31.1 s and 3.9 s in the second.
func availHistory() *History {
	h := validCluster()
	h.Avail = &AvailTruth{Bound: 2 * sec, Until: 95 * sec, Offered: true, Windows: []HealthyWindow{
		{From: 1 * sec, To: 5 * sec, Nodes: []NodeID{1, 2, 3}},
		{From: 60 * sec, To: 95 * sec, Nodes: []NodeID{1, 2}},
	}}
	return h
}

func TestCheckA1(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(h *History)
		want   Verdict
		detail string // a substring of the first A1 violation
	}{
		{name: "no truth recorded", mutate: func(h *History) { h.Avail = nil }, want: VerdictNA},
		{name: "no acks=-1 load offered", mutate: func(h *History) { h.Avail.Offered = false }, want: VerdictNA},
		{name: "no healthy window", mutate: func(h *History) { h.Avail.Windows = nil }, want: VerdictNA},
		{name: "served within the bound", mutate: func(h *History) {
			h.Avail.Windows = h.Avail.Windows[:1]
			h.Avail.Windows[0].To = 4 * sec // gaps 1.1 s and 1.9 s
		}, want: VerdictOK},
		{name: "stretch after the last success too long", mutate: func(h *History) {
			h.Avail.Windows = h.Avail.Windows[:1] // 2.1 s to 5 s: 2.9 s
		}, want: VerdictViolated, detail: "no successful acks=-1 reply for 2.9s (bound 2s) from 2.1s to 5s"},
		{name: "first success too late after the window opened", mutate: func(h *History) {
			h.Avail.Windows = []HealthyWindow{{From: 88 * sec, To: 92 * sec, Nodes: []NodeID{2, 3}}}
		}, want: VerdictViolated, detail: "for 3.1s (bound 2s) from 1m28s to 1m31.1s"},
		{name: "the liveness probe does not count", mutate: func(h *History) {
			h.Avail.Windows = []HealthyWindow{{From: 51 * sec, To: 54 * sec, Nodes: []NodeID{1, 2}}}
		}, want: VerdictViolated, detail: "for 3s"},
		{name: "a failed or indeterminate write does not count", mutate: func(h *History) {
			h.Avail.Windows = []HealthyWindow{{From: 59 * sec, To: 91 * sec, Nodes: []NodeID{1, 2}}}
		}, want: VerdictViolated, detail: "for 32s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := availHistory()
			tc.mutate(h)
			rep := Check(h)
			if rep.Err != nil {
				t.Fatal(rep.Err)
			}
			if got := rep.Verdict(InvA1); got != tc.want {
				t.Fatalf("A1 = %s, want %s\n%s", got, tc.want, rep.String())
			}
			for _, v := range rep.Violations {
				if v.Invariant != InvA1 {
					t.Errorf("unexpected %s", v)
				}
			}
			if tc.detail != "" && !strings.Contains(rep.Violations[0].Detail, tc.detail) {
				t.Errorf("detail %q lacks %q", rep.Violations[0].Detail, tc.detail)
			}
			s := SummarizeAvail(h)
			if s.Judged != (tc.want != VerdictNA) || s.Held != (tc.want != VerdictViolated) {
				t.Errorf("summary %+v disagrees with verdict %s", s, tc.want)
			}
		})
	}
}

func TestSummarizeAvail(t *testing.T) {
	s := SummarizeAvail(availHistory())
	// Gaps: 1.1 s, 2.9 s (first window); 31.1 s, 3.9 s (second).
	if !s.Judged || s.Held || s.Longest != 31100*time.Millisecond || s.LongestAt != 60*sec || s.Healthy != 39*sec {
		t.Fatalf("summary %+v", s)
	}
	unserved := (1100 + 2900 + 31100 + 3900 - 4*100) * time.Millisecond
	if s.Unserved != unserved || s.UnservedShare != float64(unserved)/float64(95*sec) {
		t.Fatalf("unserved %v share %v, want %v", s.Unserved, s.UnservedShare, unserved)
	}
}

func TestAvailTruthValidatedAndRoundTrips(t *testing.T) {
	h := availHistory()
	var b bytes.Buffer
	if err := h.WriteJSONL(&b); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSONL(&b)
	if err != nil {
		t.Fatal(err)
	}
	if back.Avail == nil || len(back.Avail.Windows) != 2 || back.Avail.Bound != 2*sec {
		t.Fatalf("avail after a round trip: %+v", back.Avail)
	}
	for name, mutate := range map[string]func(*AvailTruth){
		"overlapping windows": func(a *AvailTruth) { a.Windows[1].From = 4 * sec },
		"empty window":        func(a *AvailTruth) { a.Windows[0].To = a.Windows[0].From },
		"past the phase":      func(a *AvailTruth) { a.Windows[1].To = 96 * sec },
		"unknown node":        func(a *AvailTruth) { a.Windows[0].Nodes = []NodeID{9} },
		"zero bound":          func(a *AvailTruth) { a.Bound = 0 },
	} {
		h := availHistory()
		mutate(h.Avail)
		if err := h.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, h.Avail)
		}
	}
}

// TestA1Bound pins the formula's value for the harness's settings, and
// that it stays below a 3.5 s hung fsync (the regression case) so that a
// leader that sits on its hung disk is caught.
func TestA1Bound(t *testing.T) {
	o, err := Lookup("calm")
	if err != nil {
		t.Fatal(err)
	}
	opts := o.Draw(1)
	opts.RequestTimeout = ClientTimeout // the bound with the usual (impatient) clients
	nc := node.Config{DiskStallTimeout: diskStallTimeout}.Defaults()
	got := A1Bound(opts, nc)
	want := time.Duration(1.25*float64(diskStallTimeout+10*time.Millisecond)) + time.Duration(1.25*float64(400*time.Millisecond)) +
		8*(opts.NetLatency+opts.NetJitter) + 4*5*time.Millisecond + opts.RequestTimeout + opts.ThinkMax + notLeaderBackoffMax + 4*opts.ClientLatency
	if got != want || got >= 3500*time.Millisecond {
		t.Fatalf("A1Bound = %v, want %v (and below 3.5s)", got, want)
	}
}
