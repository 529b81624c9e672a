package osenv

import (
	"math/rand/v2"
	"sync/atomic"
	"time"

	"walraft/core/env"
)

var (
	_ env.Clock = (*clock)(nil)
	_ env.Timer = (*timer)(nil)
)

// NewClock returns an env.Clock on the wall clock's monotonic reading: Now
// is the time since NewClock was called, and AfterFunc posts f to loop once
// d has elapsed.
func NewClock(loop *Loop) env.Clock {
	if loop == nil {
		panic("osenv: NewClock with nil loop")
	}
	return &clock{loop: loop, start: time.Now()}
}

type clock struct {
	loop  *Loop
	start time.Time // carries Go's monotonic reading, so Now never goes backward
}

// Now implements env.Clock.
func (c *clock) Now() time.Duration { return time.Since(c.start) }

// AfterFunc implements env.Clock.
func (c *clock) AfterFunc(d time.Duration, f func()) env.Timer {
	if f == nil {
		panic("osenv: Clock.AfterFunc with nil func")
	}
	t := &timer{f: f}
	fire := func() {
		// The CAS decides the race between Stop and firing on the loop:
		// exactly one of them wins, so after Stop returns true f never
		// runs, and after f started Stop returns false.
		if t.state.CompareAndSwap(timerPending, timerFired) {
			t.f()
		}
	}
	if d <= 0 {
		// Straight onto the queue: it runs as the next event, after
		// what is already queued, never inside this call.
		c.loop.Post(fire)
		return t
	}
	t.t = time.AfterFunc(d, func() { c.loop.Post(fire) })
	return t
}

const (
	timerPending int32 = iota
	timerFired
	timerStopped
)

type timer struct {
	state atomic.Int32
	f     func()
	t     *time.Timer // nil for d <= 0
}

// Stop implements env.Timer.
func (t *timer) Stop() bool {
	if !t.state.CompareAndSwap(timerPending, timerStopped) {
		return false
	}
	if t.t != nil {
		t.t.Stop() // frees the runtime timer; if it already fired, the posted func sees timerStopped
	}
	t.f = nil
	return true
}

// NewRand returns an env.Rand: a PCG generator from math/rand/v2 seeded with
// seed. It is not safe for concurrent use (a node uses it on its loop). The
// real runtime seeds it from the wall clock (see WallSeed); tests pass a
// fixed seed.
func NewRand(seed uint64) env.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// WallSeed returns a seed taken from the wall clock, for NewRand and NewEnv
// in the real runtime.
func WallSeed() uint64 { return uint64(time.Now().UnixNano()) }
