package sim

import (
	"cmp"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"time"

	"walraft/core/env"
)

// Clock rates are integers in parts per million of global virtual time, not
// floats: the Go spec lets a compiler fuse a multiply and an add into one
// instruction on some architectures, which would round differently and
// break cross-platform replay of a seed. Integer arithmetic replays
// everywhere.
const (
	// RateOne is a clock that runs exactly at global virtual time.
	RateOne int64 = 1_000_000
	// MinRatePPM and MaxRatePPM bound a clock's rate (0.1x to 10x).
	MinRatePPM = RateOne / 10
	MaxRatePPM = RateOne * 10
)

// NodeClock is one node's hardware clock. Its time is derived from the
// scheduler's global virtual time:
//
//	local = offset + (global - t0) * rate
//
// where rate is in parts per million. Changing the rate re-anchors
// (offset, t0) at the current instant, so the clock never goes backward.
// The clock survives process crashes (it is the machine's, not the
// process's); each process incarnation gets its own env.Clock handle whose
// timers die with the incarnation.
//
// # Steps
//
// The clock a node sees (env.Clock) is its machine's MONOTONIC clock, as
// Go's runtime timers and time.Since use (CLOCK_MONOTONIC), and env.Clock
// promises it never goes backward. Step (a clock-step fault) moves it as a
// real monotonic clock can move:
//
//   - Forward by D: the clock jumps (as a guest's clock catches up after a
//     VM is resumed or migrated). Every timer whose deadline was jumped
//     over fires at once, each ONCE, in deadline order; a timer the node
//     re-arms from its handler (the Raft tick) counts from the new time.
//     So a jump gives one late tick, not D/tick ticks: that is what Go's
//     runtime does (an AfterFunc fires once; a Ticker drops missed ticks).
//   - Backward by D: a monotonic clock cannot go back, so the reading holds
//     still until the underlying hardware clock, stepped back by D, catches
//     up (Now = max(reading at the step, hardware)): for D of local time
//     nothing elapses and every timer is D late. This is what a runtime
//     that clamps a stepped wall clock into a monotone one sees, and the
//     worst a backward step can do to a correct monotonic user.
//
// Either way, durations the node measures on one incarnation stay
// non-negative; a forward step makes every pending timeout expire early
// (relative to global time), a backward step makes them late.
type NodeClock struct {
	s      *Scheduler
	ppm    int64
	offset time.Duration // hardware time at global time t0
	t0     time.Duration
	// floor is the reading a backward Step held the clock at: Now never
	// returns less (0 when no step is being caught up).
	floor time.Duration

	// timers are the timers queued in the scheduler, so a rate change can
	// move them and a crash can cancel them. A slice in no particular
	// order (each timer knows its slot) rather than a map: timers come and
	// go several times per simulated message.
	timers    []*timer
	nextTimer uint64
}

// newNodeClock returns a clock that reads offset at the scheduler's current
// time and runs at ppm.
func newNodeClock(s *Scheduler, ppm int64, offset time.Duration) *NodeClock {
	if err := validRate(ppm); err != nil {
		panic(err.Error())
	}
	return &NodeClock{s: s, ppm: ppm, offset: offset, t0: s.Now()}
}

func validRate(ppm int64) error {
	if ppm < MinRatePPM || ppm > MaxRatePPM {
		return fmt.Errorf("sim clock: rate %d ppm out of range [%d, %d]: %w", ppm, MinRatePPM, MaxRatePPM, ErrInvalidConfig)
	}
	return nil
}

// Now returns the clock's current local time.
func (c *NodeClock) Now() time.Duration { return max(c.floor, c.localAt(c.s.Now())) }

// Held reports whether the clock is holding still after a backward step
// (its reading stays put, and every timer waits, until global time catches
// up with the step).
func (c *NodeClock) Held() bool { return c.floor != 0 && c.localAt(c.s.Now()) < c.floor }

// RatePPM returns the clock's rate in parts per million of global time.
func (c *NodeClock) RatePPM() int64 { return c.ppm }

// PendingTimers returns how many timers are queued in the scheduler (held
// timers of a paused process are not counted: they already fired).
func (c *NodeClock) PendingTimers() int { return len(c.timers) }

// setRatePPM changes the clock's rate from now on. Local time stays
// continuous (and so monotone), and every queued timer is moved to the
// global instant at which the clock now reaches its local deadline.
func (c *NodeClock) setRatePPM(ppm int64) error {
	if err := validRate(ppm); err != nil {
		return err
	}
	// Re-anchor the hardware reading (not the clamped one: a backward step
	// still being caught up stays in force).
	c.offset = c.localAt(c.s.Now())
	c.t0 = c.s.Now()
	c.ppm = ppm
	c.rearm()
	return nil
}

// Step moves the clock by d (see the type's doc: forward jumps, backward
// holds still for -d). Pending timers move to the global instant at which
// the clock now reaches their deadline (at once, for deadlines jumped
// over). |d| is bounded by MaxClockStep.
func (c *NodeClock) Step(d time.Duration) error {
	if d < -MaxClockStep || d > MaxClockStep {
		return fmt.Errorf("sim clock: step %v outside [-%v, %v]: %w", d, MaxClockStep, MaxClockStep, ErrInvalidConfig)
	}
	cur := c.Now()
	c.t0 = c.s.Now()
	if d >= 0 {
		c.offset, c.floor = cur+d, 0
	} else {
		c.offset, c.floor = cur+d, cur
	}
	c.rearm()
	return nil
}

// SettleStep ends the hold of a backward step still being caught up: the
// clock runs on from its current reading (it neither jumps nor goes back).
// The liveness phase heals a clock step with it.
func (c *NodeClock) SettleStep() {
	if c.floor == 0 || c.localAt(c.s.Now()) >= c.floor {
		c.floor = 0
		return
	}
	c.offset, c.t0, c.floor = c.floor, c.s.Now(), 0
	c.rearm()
}

// MaxClockStep bounds one Step.
const MaxClockStep = time.Hour

// rearm moves every queued timer to the global instant at which the clock
// now reaches its deadline.
func (c *NodeClock) rearm() {
	// Registration order, so timers due at the same instant keep it.
	ts := slices.Clone(c.timers)
	slices.SortFunc(ts, func(a, b *timer) int { return cmp.Compare(a.id, b.id) })
	for _, t := range ts {
		t.item.Cancel(c.s)
		c.s.schedule(&t.item, c.globalAt(t.deadline), t)
	}
}

// localAt converts a global time (not before t0) to local time.
func (c *NodeClock) localAt(g time.Duration) time.Duration {
	e := uint64(g - c.t0)
	return satAdd(c.offset, mulDiv(e, uint64(c.ppm), uint64(RateOne), false))
}

// globalAt returns the first global time at which the clock reads at least
// l. Rounding up is what makes a timer never fire early.
func (c *NodeClock) globalAt(l time.Duration) time.Duration {
	if l <= c.floor {
		return c.s.Now() // the held reading already covers it
	}
	if l <= c.offset {
		return c.t0
	}
	return satAdd(c.t0, mulDiv(uint64(l-c.offset), uint64(RateOne), uint64(c.ppm), true))
}

// mulDiv returns a*b/c rounded down (or up), saturated to math.MaxInt64.
func mulDiv(a, b, c uint64, up bool) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return math.MaxInt64
	}
	q, r := bits.Div64(hi, lo, c)
	if up && r != 0 {
		q++
	}
	return min(q, math.MaxInt64)
}

// satAdd returns base + d for a non-negative d (as uint64), saturated to the
// largest Duration. Timers far beyond any run's horizon land there instead
// of wrapping into the past.
func satAdd(base time.Duration, d uint64) time.Duration {
	if d > uint64(math.MaxInt64-base) {
		return math.MaxInt64
	}
	return base + time.Duration(d)
}

// cancelTimers cancels every queued timer: their incarnation crashed.
func (c *NodeClock) cancelTimers() {
	// Any order: which event runs when depends on (time, sequence)
	// alone, not on the order items leave the queue.
	for _, t := range c.timers {
		t.item.Cancel(c.s)
		t.stopped = true
	}
	clear(c.timers)
	c.timers = c.timers[:0]
}

// addTimer registers a queued timer.
func (c *NodeClock) addTimer(t *timer) {
	t.slot = len(c.timers)
	c.timers = append(c.timers, t)
}

// removeTimer unregisters a queued timer: the last one takes its slot.
func (c *NodeClock) removeTimer(t *timer) {
	last := len(c.timers) - 1
	if t.slot > last || c.timers[t.slot] != t {
		panic(fmt.Sprintf("sim clock: timer %d is not registered", t.id))
	}
	c.timers[t.slot] = c.timers[last]
	c.timers[t.slot].slot = t.slot
	c.timers[last] = nil
	c.timers = c.timers[:last]
}

// clockHandle is the env.Clock of one process incarnation.
type clockHandle struct {
	c     *NodeClock
	p     *Process
	epoch uint64
}

var _ env.Clock = (*clockHandle)(nil)

// Now implements env.Clock.
func (h *clockHandle) Now() time.Duration { return h.c.Now() }

// AfterFunc implements env.Clock. A timer registered through the handle of
// a crashed incarnation never fires.
func (h *clockHandle) AfterFunc(d time.Duration, f func()) env.Timer {
	if f == nil {
		panic(fmt.Sprintf("sim: node %d: AfterFunc with nil func", h.p.id))
	}
	c := h.c
	t := &timer{c: c, fn: f, p: h.p, epoch: h.epoch}
	if !h.p.live(h.epoch) {
		return t
	}
	now := c.Now()
	t.deadline = satAdd(now, uint64(max(d, 0)))
	c.nextTimer++
	t.id = c.nextTimer
	c.addTimer(t)
	// d <= 0 lands at the current instant: the next event, never inline.
	c.s.schedule(&t.item, c.globalAt(t.deadline), t)
	return t
}

// timer is a pending AfterFunc. Its life: queued in the scheduler (item
// set, in c.timers), then expired into the process's event loop (which may
// hold it while paused), then run. Stop works at any point before the run.
type timer struct {
	c        *NodeClock
	id       uint64
	slot     int           // index in c.timers while queued
	deadline time.Duration // local
	item     Item          // queued in the scheduler while Pending
	fn       func()
	p        *Process
	epoch    uint64
	stopped  bool
	fired    bool
}

var _ env.Timer = (*timer)(nil)

// Stop implements env.Timer.
func (t *timer) Stop() bool {
	if t.stopped || t.fired {
		return false
	}
	t.stopped = true
	if t.item.Pending() {
		t.item.Cancel(t.c.s)
		t.c.removeTimer(t)
	}
	return true
}

// fire is the timer's scheduler event: it expires into the process's
// event loop.
func (t *timer) fire() {
	t.c.removeTimer(t)
	t.p.dispatchEvent(t.epoch, t)
}

// drop is the timer's fate when its incarnation is gone: nothing.
func (t *timer) drop() {}

// run is the timer's event on the process's loop.
func (t *timer) run() {
	if t.stopped {
		return
	}
	t.fired = true
	t.fn()
}
