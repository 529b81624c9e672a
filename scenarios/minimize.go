package scenarios

import (
	"errors"
	"fmt"
	"time"
)

// ErrNotReproduced is returned by Minimize when the starting run does not
// fail: there is nothing to shrink (the bug is fixed, or the code changed
// so the case no longer reaches it).
var ErrNotReproduced = errors.New("the case does not fail the same way")

// Oracle runs one candidate (options and fault schedule) and reports
// whether it still fails the way being minimised (the same invariant). An
// error means the candidate could not run; Minimize counts it as "does not
// fail" for candidates and returns it for the starting point.
type Oracle func(o Options, s Schedule) (bool, error)

// MinimizeConfig bounds a minimisation.
type MinimizeConfig struct {
	// MaxRuns bounds the number of oracle calls, the starting run included
	// (values < 1 mean DefaultMinimizeRuns).
	MaxRuns int
	// MinDur is the shortest fault duration, and MinSafety the shortest
	// safety phase, that shortening tries (0 means 1ms and 100ms).
	MinDur, MinSafety time.Duration
	// Progress, when set, is called after every accepted step.
	Progress func(step string, o Options, s Schedule)
}

// DefaultMinimizeRuns is the run budget when MinimizeConfig.MaxRuns is unset.
const DefaultMinimizeRuns = 200

// Minimized is the outcome of Minimize: the smallest failing candidate
// found and what it took.
type Minimized struct {
	Options  Options
	Schedule Schedule
	// Runs is the number of oracle calls made.
	Runs int
	// Exhausted reports that the run budget ran out before no step could
	// shrink the candidate any further.
	Exhausted bool
}

// Minimize shrinks a failing run while oracle keeps reporting the same
// failure: first the fault schedule by delta debugging (drop halves, then
// smaller chunks down to single faults), then fault durations and counts
// (halved while it still fails), then the workload (fewer producers and
// consumers, a shorter safety phase, dropping faults that fall after it);
// it repeats the passes until a whole round shrinks nothing or the run
// budget is spent. It never returns a candidate the oracle did not confirm.
func Minimize(o Options, s Schedule, oracle Oracle, cfg MinimizeConfig) (Minimized, error) {
	if cfg.MaxRuns < 1 {
		cfg.MaxRuns = DefaultMinimizeRuns
	}
	if cfg.MinDur <= 0 {
		cfg.MinDur = time.Millisecond
	}
	if cfg.MinSafety <= 0 {
		cfg.MinSafety = 100 * time.Millisecond
	}
	m := &minimizer{cfg: cfg, oracle: oracle, best: Minimized{Options: o, Schedule: cloneSchedule(s)}}
	fails, err := oracle(o, m.best.Schedule)
	m.best.Runs = 1
	if err != nil {
		return m.best, fmt.Errorf("minimize: the starting run: %w", err)
	}
	if !fails {
		return m.best, ErrNotReproduced
	}
	for {
		before := m.size()
		m.scheduleDD()
		m.dropTriggers()
		m.shortenFaults()
		m.shrinkWorkload()
		if m.exhausted() || m.size() == before {
			break
		}
	}
	m.best.Exhausted = m.exhausted()
	return m.best, nil
}

// minimizer holds the current best candidate and the run budget.
type minimizer struct {
	cfg    MinimizeConfig
	oracle Oracle
	best   Minimized
}

// size orders candidates: a step is progress only when it lowers this.
type candSize struct {
	faults, producers, consumers int
	safety, durs                 time.Duration
	counts                       int
	triggers                     int
}

func (m *minimizer) size() candSize {
	c := candSize{faults: len(m.best.Schedule), producers: m.best.Options.Producers,
		consumers: m.best.Options.Consumers, safety: m.best.Options.SafetyDuration}
	for _, f := range m.best.Schedule {
		c.durs += f.Dur
		c.counts += f.Count
		if f.Trigger != nil {
			c.triggers++
		}
	}
	return c
}

func (m *minimizer) exhausted() bool { return m.best.Runs >= m.cfg.MaxRuns }

// try runs a candidate; when it still fails it becomes the best. It reports
// false without running when the budget is spent.
func (m *minimizer) try(step string, o Options, s Schedule) bool {
	if m.exhausted() {
		return false
	}
	m.best.Runs++
	fails, err := m.oracle(o, s)
	if err != nil || !fails {
		return false
	}
	m.best.Options, m.best.Schedule = o, s
	if m.cfg.Progress != nil {
		m.cfg.Progress(step, o, s)
	}
	return true
}

// scheduleDD is ddmin's complement-removal loop: split the schedule in n
// chunks and try it without each chunk; on success keep the smaller
// schedule at a coarser split, otherwise refine, down to single faults.
func (m *minimizer) scheduleDD() {
	n := 2
	for len(m.best.Schedule) > 0 && !m.exhausted() {
		s := m.best.Schedule
		if n > len(s) {
			n = len(s)
		}
		removed := false
		for i := 0; i < n && !m.exhausted(); i++ {
			lo, hi := i*len(s)/n, (i+1)*len(s)/n
			cand := make(Schedule, 0, len(s)-(hi-lo))
			cand = append(cand, s[:lo]...)
			cand = append(cand, s[hi:]...)
			if m.try(fmt.Sprintf("dropped %d of %d faults", hi-lo, len(s)), m.best.Options, cand) {
				removed = true
				break
			}
		}
		switch {
		case removed:
			n = max(n-1, 2)
		case n >= len(s):
			return
		default:
			n = min(2*n, len(s))
		}
	}
}

// shortenFaults halves each fault's duration (down to MinDur) and count
// (down to 1) while the run still fails.
func (m *minimizer) shortenFaults() {
	for i := 0; i < len(m.best.Schedule) && !m.exhausted(); i++ {
		for m.best.Schedule[i].Dur/2 >= m.cfg.MinDur && !m.exhausted() {
			cand := cloneSchedule(m.best.Schedule)
			cand[i].Dur /= 2
			if !m.try(fmt.Sprintf("shortened %s", cand[i]), m.best.Options, cand) {
				break
			}
		}
		for m.best.Schedule[i].Count > 1 && !m.exhausted() {
			cand := cloneSchedule(m.best.Schedule)
			cand[i].Count /= 2
			if !m.try(fmt.Sprintf("fewer repeats %s", cand[i]), m.best.Options, cand) {
				break
			}
		}
	}
}

// shrinkWorkload lowers the producer and consumer counts and the safety
// phase, each by bisection between the smallest value tried and the
// current one.
func (m *minimizer) shrinkWorkload() {
	m.bisect("producers", 1, func(o Options) int { return o.Producers }, func(o *Options, v int) { o.Producers = v })
	m.bisect("consumers", 0, func(o Options) int { return o.Consumers }, func(o *Options, v int) { o.Consumers = v })
	m.shortenSafety()
}

// bisect finds a smaller failing value of one integer option: it tries the
// floor first, then halves the gap between the last failing value and the
// largest value known not to fail.
func (m *minimizer) bisect(name string, floor int, get func(Options) int, set func(*Options, int)) {
	lo := floor - 1 // the largest value known not to fail (none yet)
	for !m.exhausted() {
		cur := get(m.best.Options)
		if cur-lo <= 1 {
			return // cur is the smallest value that can still fail
		}
		v := floor
		if lo >= floor {
			v = lo + (cur-lo)/2
		}
		o := m.best.Options
		set(&o, v)
		if !m.try(fmt.Sprintf("%s %d -> %d", name, cur, v), o, m.best.Schedule) {
			lo = v
		}
	}
}

// shortenSafety tries a safety phase that ends shortly after the last
// fault's effect, then halves it while the run still fails; faults that
// fall after the new end are dropped (the harness only applies faults in
// the safety phase).
func (m *minimizer) shortenSafety() {
	tried := map[time.Duration]bool{}
	tryLen := func(d time.Duration) bool {
		cur := m.best.Options.SafetyDuration
		if d < m.cfg.MinSafety || d >= cur || tried[d] {
			return false
		}
		tried[d] = true
		o := m.best.Options
		o.SafetyDuration = d
		var s Schedule
		for _, f := range m.best.Schedule {
			if f.At < d {
				s = append(s, f)
			}
		}
		return m.try(fmt.Sprintf("safety phase %v -> %v", cur, d), o, s)
	}
	var end time.Duration
	for _, f := range m.best.Schedule {
		end = max(end, f.At+f.Dur)
	}
	tryLen((end + 100*time.Millisecond).Round(100 * time.Millisecond))
	for !m.exhausted() {
		d := (m.best.Options.SafetyDuration / 2).Round(time.Millisecond)
		if !tryLen(d) {
			return
		}
	}
}

func cloneSchedule(s Schedule) Schedule {
	if s == nil {
		return nil
	}
	out := make(Schedule, len(s))
	copy(out, s)
	for i := range out {
		if out[i].Trigger != nil {
			t := *out[i].Trigger
			out[i].Trigger = &t
		}
		if out[i].Groups != nil {
			g := make([][]uint64, len(out[i].Groups))
			for j := range g {
				g[j] = append([]uint64(nil), out[i].Groups[j]...)
			}
			out[i].Groups = g
		}
	}
	return out
}
