package main

import (
	"fmt"
	"io"
	"slices"
	"time"

	"walraft/scenarios"
)

// availJSON is a run's availability under its faults (A1, DESIGN.md
// section 6) in -json output and campaign worker replies.
type availJSON struct {
	// Judged is false when A1 did not apply (no healthy-majority window or
	// no acks=-1 load); the other fields are then zero.
	Judged bool `json:"judged"`
	// Held is false when A1 was violated.
	Held bool `json:"held"`
	// BoundSeconds is A1's bound T.
	BoundSeconds float64 `json:"bound_seconds"`
	// LongestSeconds is the longest stretch inside a healthy-majority
	// window without a successful acks=-1 reply; LongestAtSeconds is where
	// it began.
	LongestSeconds   float64 `json:"longest_seconds"`
	LongestAtSeconds float64 `json:"longest_at_seconds"`
	// HealthySeconds is how long a healthy majority existed.
	HealthySeconds float64 `json:"healthy_seconds"`
	// UnservedShare is the share of the safety phase in which a healthy
	// majority existed but no acks=-1 write had succeeded for 100 ms.
	UnservedShare float64 `json:"unserved_share"`
}

func newAvailJSON(s scenarios.AvailSummary) availJSON {
	if !s.Judged {
		return availJSON{Held: true}
	}
	return availJSON{Judged: true, Held: s.Held, BoundSeconds: s.Bound.Seconds(), LongestSeconds: s.Longest.Seconds(),
		LongestAtSeconds: s.LongestAt.Seconds(), HealthySeconds: s.Healthy.Seconds(), UnservedShare: s.UnservedShare}
}

// printAvail prints a run's availability line.
func printAvail(w io.Writer, a availJSON) {
	if !a.Judged {
		fmt.Fprintln(w, "availability: A1 not applicable (no healthy-majority window with acks=-1 load)")
		return
	}
	verdict := "held"
	if !a.Held {
		verdict = "VIOLATED"
	}
	fmt.Fprintf(w, "availability: longest unavailability %.3fs at %.3fs (A1 bound %.3fs, %s); healthy majority %.3fs; unserved %.2f%% of the safety phase\n",
		a.LongestSeconds, a.LongestAtSeconds, a.BoundSeconds, verdict, a.HealthySeconds, 100*a.UnservedShare)
}

// availDistJSON is the campaign's distribution of availability numbers
// over the runs in which A1 was judged.
type availDistJSON struct {
	Judged int `json:"judged"`
	Held   int `json:"held"`
	// Longest holds every judged run's longest unavailability in seconds,
	// sorted (the distribution's percentiles are read from it).
	Longest []float64 `json:"longest_seconds"`
	// Unserved holds every judged run's unserved share, sorted.
	Unserved []float64 `json:"unserved_share"`
	// WorstSeed and WorstScenario name the run with the longest window.
	WorstSeed     uint64 `json:"worst_seed"`
	WorstScenario string `json:"worst_scenario"`
}

func (d *availDistJSON) add(r *runJSON) {
	a := r.Avail
	if !a.Judged {
		return
	}
	d.Judged++
	if a.Held {
		d.Held++
	}
	if len(d.Longest) == 0 || a.LongestSeconds > d.Longest[len(d.Longest)-1] {
		d.WorstSeed, d.WorstScenario = r.Seed, r.Scenario
	}
	i, _ := slices.BinarySearch(d.Longest, a.LongestSeconds)
	d.Longest = slices.Insert(d.Longest, i, a.LongestSeconds)
	j, _ := slices.BinarySearch(d.Unserved, a.UnservedShare)
	d.Unserved = slices.Insert(d.Unserved, j, a.UnservedShare)
}

// quantile returns the q-quantile of sorted xs (nearest rank).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return xs[min(len(xs)-1, int(q*float64(len(xs))))]
}

// printAvailDist prints the campaign's availability distribution.
func printAvailDist(w io.Writer, d availDistJSON) {
	if d.Judged == 0 {
		fmt.Fprintln(w, "availability (A1): not applicable in any run")
		return
	}
	sec := func(x float64) string {
		return time.Duration(x * float64(time.Second)).Round(time.Millisecond).String()
	}
	fmt.Fprintf(w, "availability (A1): judged in %d runs, held in %d\n", d.Judged, d.Held)
	fmt.Fprintf(w, "  longest unavailability  p50 %s  p90 %s  p99 %s  max %s (seed %d, %s)\n",
		sec(quantile(d.Longest, 0.5)), sec(quantile(d.Longest, 0.9)), sec(quantile(d.Longest, 0.99)),
		sec(d.Longest[len(d.Longest)-1]), d.WorstSeed, d.WorstScenario)
	fmt.Fprintf(w, "  unserved share          p50 %.2f%%  p90 %.2f%%  p99 %.2f%%  max %.2f%%\n",
		100*quantile(d.Unserved, 0.5), 100*quantile(d.Unserved, 0.9), 100*quantile(d.Unserved, 0.99), 100*d.Unserved[len(d.Unserved)-1])
}

// merge adds another shard's distribution.
func (d *availDistJSON) merge(o availDistJSON) {
	if len(o.Longest) > 0 && (len(d.Longest) == 0 || o.Longest[len(o.Longest)-1] > d.Longest[len(d.Longest)-1]) {
		d.WorstSeed, d.WorstScenario = o.WorstSeed, o.WorstScenario
	}
	d.Judged += o.Judged
	d.Held += o.Held
	d.Longest = append(d.Longest, o.Longest...)
	slices.Sort(d.Longest)
	d.Unserved = append(d.Unserved, o.Unserved...)
	slices.Sort(d.Unserved)
}
