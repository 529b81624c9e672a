package sim

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// Clock steps on the node's monotonic clock (NodeClock's doc): a forward
// jump fires each jumped-over timer once and a re-armed tick once, not a
// storm; a backward step holds the reading still for the step's size.
func TestClockStep(t *testing.T) {
	const tick = 10 * time.Millisecond
	tests := []struct {
		name string
		step time.Duration
		// ticks counted in global [0, 1s] with the step at 300ms.
		wantTicks int
		// local elapsed over the second.
		wantElapsed time.Duration
		// when a one-shot 100ms timer armed at 250ms fires (global).
		wantOneShot time.Duration
	}{
		// No step: 100 ticks, timer at 350ms.
		{"none", 0, 100, time.Second, 350 * time.Millisecond},
		// Forward 2s at 300ms: the tick due at 310ms fires at once (one
		// tick, not 200), then ticks run from the new time; the timer,
		// jumped over, fires at 300ms.
		{"forward 2s", 2 * time.Second, 100, time.Second + 2*time.Second, 300 * time.Millisecond},
		// Back 200ms at 300ms: the clock holds still 200ms of global
		// time: 20 ticks fewer, the timer 200ms late.
		{"back 200ms", -200 * time.Millisecond, 80, 800 * time.Millisecond, 550 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCluster(t, 1, WorldConfig{ClockOffsetMax: time.Hour}, 1)
			w, e := c.w, c.nodes[1].e
			t0 := e.Clock.Now()
			ticks := 0
			var arm func()
			arm = func() {
				e.Clock.AfterFunc(tick, func() { ticks++; arm() })
			}
			arm()
			var oneShot time.Duration = -1
			c.at(250*time.Millisecond, func() {
				e.Clock.AfterFunc(100*time.Millisecond, func() { oneShot = w.Now() })
			})
			var readings []time.Duration
			sample := func() { readings = append(readings, e.Clock.Now()) }
			for g := time.Duration(0); g <= time.Second; g += 5 * time.Millisecond {
				c.at(g, sample)
			}
			if tt.step != 0 {
				c.at(300*time.Millisecond, func() { must(t, w.StepClock(1, tt.step)) })
			}
			w.Sched().RunUntil(time.Second)
			// The tick due at exactly 1s may or may not have run: count
			// the ones strictly before.
			if ticks < tt.wantTicks-1 || ticks > tt.wantTicks {
				t.Errorf("ticks = %d, want %d (no storm on a forward jump, none during a backward hold)", ticks, tt.wantTicks)
			}
			if got := e.Clock.Now() - t0; got != tt.wantElapsed {
				t.Errorf("local elapsed = %v, want %v", got, tt.wantElapsed)
			}
			if oneShot != tt.wantOneShot {
				t.Errorf("one-shot timer fired at %v, want %v", oneShot, tt.wantOneShot)
			}
			if !slices.IsSorted(readings) {
				t.Errorf("the clock went backward: %v", readings)
			}
		})
	}
}

// Held is true exactly while a backward step holds the clock still (A1
// counts such a node as stuck).
func TestClockHeld(t *testing.T) {
	c := newTestCluster(t, 1, WorldConfig{ClockOffsetMax: time.Hour}, 1)
	w := c.w
	clk := w.Process(1).Clock()
	var got []bool
	c.at(100*time.Millisecond, func() { got = append(got, clk.Held()); must(t, w.StepClock(1, -200*time.Millisecond)) })
	for _, g := range []time.Duration{150, 299, 301, 400} {
		c.at(g*time.Millisecond, func() { got = append(got, clk.Held()) })
	}
	w.Sched().RunUntil(time.Second)
	if want := []bool{false, true, true, false, false}; !slices.Equal(got, want) {
		t.Fatalf("Held at 100 (before the step), 150, 299, 301, 400 ms = %v, want %v", got, want)
	}
}

// SettleStep ends a backward hold without a jump; a rate change during a
// hold keeps it.
func TestClockSettleStep(t *testing.T) {
	c := newTestCluster(t, 1, WorldConfig{}, 1)
	w, e := c.w, c.nodes[1].e
	w.Sched().RunUntil(100 * time.Millisecond)
	must(t, w.StepClock(1, -time.Second))
	held := e.Clock.Now()
	w.Sched().RunUntil(200 * time.Millisecond)
	must(t, w.SetClockRate(1, RateOne))
	w.Sched().RunUntil(300 * time.Millisecond)
	if e.Clock.Now() != held {
		t.Fatalf("the hold ended early (rate change): %v, want %v", e.Clock.Now(), held)
	}
	fired := time.Duration(-1)
	e.Clock.AfterFunc(50*time.Millisecond, func() { fired = w.Now() })
	w.Process(1).Clock().SettleStep()
	w.Sched().RunUntil(400 * time.Millisecond)
	if got := e.Clock.Now() - held; got != 100*time.Millisecond {
		t.Fatalf("after SettleStep the clock ran %v in 100ms, want 100ms", got)
	}
	if fired != 350*time.Millisecond {
		t.Fatalf("timer fired at %v, want 350ms", fired)
	}
	for _, bad := range []time.Duration{MaxClockStep + 1, -MaxClockStep - 1} {
		if err := w.StepClock(1, bad); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("StepClock(%v) = %v, want ErrInvalidConfig", bad, err)
		}
	}
	if err := w.StepClock(9, time.Second); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("StepClock(unknown) = %v, want ErrUnknownNode", err)
	}
}
