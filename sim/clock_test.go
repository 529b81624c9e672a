package sim

import (
	"errors"
	"testing"
	"time"
)

func TestClockMeasuresAtItsRate(t *testing.T) {
	tests := []struct {
		ppm    int64
		global time.Duration
		want   time.Duration // local elapsed
	}{
		{RateOne, 10 * time.Second, 10 * time.Second},
		{950_000, 10 * time.Second, 9500 * time.Millisecond},
		{1_050_000, 10 * time.Second, 10500 * time.Millisecond},
		{1_234_567, time.Second, 1_234_567_000},
		{MinRatePPM, time.Second, 100 * time.Millisecond},
		{MaxRatePPM, time.Second, 10 * time.Second},
		{1_000_001, 999, 999}, // floor: 999.000999ns reads 999
	}
	for _, tt := range tests {
		c := newTestCluster(t, 1, WorldConfig{ClockOffsetMax: time.Hour}, 1)
		must(t, c.w.SetClockRate(1, tt.ppm))
		e := c.nodes[1].e
		start := e.Clock.Now()
		c.w.Sched().RunFor(tt.global)
		if got := e.Clock.Now() - start; got != tt.want {
			t.Errorf("rate %d ppm over %v global: local elapsed %v, want %v", tt.ppm, tt.global, got, tt.want)
		}
		c.w.Close()
	}
}

func TestClockTimerFiresAtGlobalTime(t *testing.T) {
	tests := []struct {
		ppm        int64
		d          time.Duration // local
		wantGlobal time.Duration
	}{
		{RateOne, 100 * time.Millisecond, 100 * time.Millisecond},
		{1_250_000, 100 * time.Millisecond, 80 * time.Millisecond},
		{800_000, 100 * time.Millisecond, 125 * time.Millisecond},
		{3 * RateOne, 10, 4}, // ceil(10/3): never early
		{RateOne, 0, 0},      // next event, not inline
		{RateOne, -time.Second, 0},
	}
	for _, tt := range tests {
		c := newTestCluster(t, 1, WorldConfig{ClockOffsetMax: time.Hour}, 1)
		must(t, c.w.SetClockRate(1, tt.ppm))
		clk := c.w.Process(1).Clock()
		e := c.nodes[1].e
		deadline := e.Clock.Now() + max(tt.d, 0)
		fired := time.Duration(-1)
		var localAtFire time.Duration
		e.Clock.AfterFunc(tt.d, func() { fired, localAtFire = c.w.Now(), e.Clock.Now() })
		if fired != -1 {
			t.Fatalf("rate %d d %v: AfterFunc ran f synchronously", tt.ppm, tt.d)
		}
		c.w.Sched().RunFor(time.Second)
		if fired != tt.wantGlobal {
			t.Errorf("rate %d d %v: fired at global %v, want %v", tt.ppm, tt.d, fired, tt.wantGlobal)
		}
		if localAtFire < deadline {
			t.Errorf("rate %d d %v: fired early: local %v < deadline %v", tt.ppm, tt.d, localAtFire, deadline)
		}
		if fired > 0 && clk.localAt(fired-1) >= deadline {
			t.Errorf("rate %d d %v: fired late: local reached %v at global %v", tt.ppm, tt.d, deadline, fired-1)
		}
		c.w.Close()
	}
}

func TestClockRateChangeKeepsNowMonotoneAndMovesTimers(t *testing.T) {
	c := newTestCluster(t, 1, WorldConfig{ClockOffsetMax: time.Hour}, 1)
	w := c.w
	e := c.nodes[1].e
	t0 := e.Clock.Now()
	var fired []string
	var firedAt []time.Duration
	timer := func(name string, d time.Duration) {
		e.Clock.AfterFunc(d, func() { fired = append(fired, name); firedAt = append(firedAt, w.Now()) })
	}
	// Both due at local t0+100ms. At global 50ms (local +50ms) the clock
	// halves: the remaining 50ms local take 100ms global.
	timer("a", 100*time.Millisecond)
	timer("b", 100*time.Millisecond)
	c.at(50*time.Millisecond, func() { must(t, w.SetClockRate(1, RateOne/2)) })
	w.Sched().RunFor(time.Second)
	if len(fired) != 2 || fired[0] != "a" || fired[1] != "b" || firedAt[0] != 150*time.Millisecond || firedAt[1] != 150*time.Millisecond {
		t.Fatalf("timers fired %v at %v, want [a b] at 150ms", fired, firedAt)
	}
	if got, want := e.Clock.Now()-t0, 50*time.Millisecond+950*time.Millisecond/2; got != want {
		t.Fatalf("local elapsed %v, want %v", got, want)
	}

	// Random rate changes between random samples: Now never goes back.
	rng := NewStreams(3).Stream("test/rates")
	last := e.Clock.Now()
	for i := 0; i < 2000; i++ {
		w.Sched().RunFor(rng.Duration(0, 3*time.Millisecond))
		if rng.Chance(0.3) {
			must(t, w.SetClockRate(1, MinRatePPM+rng.Int64N(MaxRatePPM-MinRatePPM+1)))
		}
		now := e.Clock.Now()
		if now < last {
			t.Fatalf("step %d: clock went back from %v to %v", i, last, now)
		}
		last = now
	}

	for _, bad := range []int64{0, -1, MinRatePPM - 1, MaxRatePPM + 1} {
		if err := w.SetClockRate(1, bad); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("SetClockRate(%d) = %v, want ErrInvalidConfig", bad, err)
		}
	}
	if err := w.SetClockRate(9, RateOne); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("SetClockRate(unknown) = %v, want ErrUnknownNode", err)
	}
}

func TestClockCrashedIncarnationTimerNeverFires(t *testing.T) {
	c := newTestCluster(t, 1, WorldConfig{}, 1)
	w := c.w
	old := c.nodes[1].e
	oldFired, staleFired, newFired := false, false, false
	old.Clock.AfterFunc(100*time.Millisecond, func() { oldFired = true })
	c.at(50*time.Millisecond, func() {
		must(t, w.Crash(1))
		if n := w.Process(1).Clock().PendingTimers(); n != 0 {
			t.Errorf("%d timers still queued after crash", n)
		}
		// A timer armed through the dead incarnation's handle.
		tm := old.Clock.AfterFunc(10*time.Millisecond, func() { staleFired = true })
		if !tm.Stop() {
			t.Error("Stop of a stale timer = false, want true (it never fired)")
		}
	})
	c.at(60*time.Millisecond, func() {
		must(t, w.Restart(1))
		c.nodes[1].e.Clock.AfterFunc(100*time.Millisecond, func() { newFired = true })
	})
	w.Sched().RunFor(time.Second)
	if oldFired || staleFired {
		t.Fatalf("crashed incarnation's timer fired (old %v, stale handle %v)", oldFired, staleFired)
	}
	if !newFired {
		t.Fatal("new incarnation's timer did not fire")
	}
}

func TestClockPausedTimerFiresAfterResume(t *testing.T) {
	c := newTestCluster(t, 1, WorldConfig{}, 1)
	w := c.w
	e := c.nodes[1].e
	var firedAt []time.Duration
	stoppedFired := false
	e.Clock.AfterFunc(50*time.Millisecond, func() { firedAt = append(firedAt, w.Now()) })
	held := e.Clock.AfterFunc(60*time.Millisecond, func() { stoppedFired = true })
	c.at(10*time.Millisecond, func() { must(t, w.Pause(1)) })
	c.at(100*time.Millisecond, func() {
		if got := w.Process(1).Held(); got != 2 {
			t.Errorf("held %d events while paused, want 2", got)
		}
		// Stop of a timer that expired while paused: it has not run yet.
		if !held.Stop() {
			t.Error("Stop of a held timer = false, want true")
		}
	})
	c.at(200*time.Millisecond, func() { must(t, w.Resume(1)) })
	w.Sched().RunFor(time.Second)
	if len(firedAt) != 1 || firedAt[0] != 200*time.Millisecond {
		t.Fatalf("paused timer fired at %v, want once at 200ms", firedAt)
	}
	if stoppedFired {
		t.Fatal("a timer stopped while held fired")
	}
}

func TestTimerStop(t *testing.T) {
	tests := []struct {
		name     string
		stopAt   time.Duration // global; the timer is due at 100ms
		twice    bool
		wantStop bool
		wantRun  bool
	}{
		{"before fire", 50 * time.Millisecond, false, true, false},
		{"after fire", 150 * time.Millisecond, false, false, true},
		{"twice", 50 * time.Millisecond, true, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCluster(t, 1, WorldConfig{}, 1)
			ran := false
			tm := c.nodes[1].e.Clock.AfterFunc(100*time.Millisecond, func() { ran = true })
			var got bool
			c.at(tt.stopAt, func() {
				got = tm.Stop()
				if tt.twice {
					got = tm.Stop()
				}
			})
			c.w.Sched().RunFor(time.Second)
			if got != tt.wantStop || ran != tt.wantRun {
				t.Fatalf("Stop() = %v, ran = %v; want %v, %v", got, ran, tt.wantStop, tt.wantRun)
			}
		})
	}
}

func TestClockHandlesShareTheNodeClock(t *testing.T) {
	// The machine's clock survives a crash: the next incarnation reads on.
	c := newTestCluster(t, 5, WorldConfig{ClockSkewPPM: 50_000, ClockOffsetMax: time.Hour}, 1)
	w := c.w
	before := c.nodes[1].e.Clock.Now()
	w.Sched().RunFor(time.Second)
	must(t, w.Crash(1))
	must(t, w.Restart(1))
	after := c.nodes[1].e.Clock.Now()
	p := w.Params().Nodes[0]
	want := p.ClockOffset + time.Duration(int64(time.Second)*p.ClockRatePPM/RateOne)
	if after != want || after <= before {
		t.Fatalf("clock after restart %v (before %v), want %v", after, before, want)
	}
}
