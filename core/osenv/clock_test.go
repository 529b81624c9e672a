package osenv

import (
	"bytes"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"walraft/core/env"
)

func TestClockAfterFuncFiresOnLoop(t *testing.T) {
	l := NewLoop()
	defer l.Close()
	c := NewClock(l)
	const d = 20 * time.Millisecond
	type fired struct {
		at     time.Duration
		onLoop bool
	}
	ch := make(chan fired, 1)
	var start time.Duration
	l.Do(func() {
		start = c.Now()
		c.AfterFunc(d, func() { ch <- fired{c.Now(), l.onLoop()} })
	})
	select {
	case f := <-ch:
		if !f.onLoop {
			t.Fatal("timer func ran off the loop goroutine")
		}
		if el := f.at - start; el < d || el > d+2*time.Second {
			t.Fatalf("timer fired after %v, want about %v", el, d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("timer never fired")
	}
}

func TestClockStop(t *testing.T) {
	l := NewLoop()
	defer l.Close()
	c := NewClock(l)
	var ran atomic.Bool
	tm := c.AfterFunc(20*time.Millisecond, func() { ran.Store(true) })
	if !tm.Stop() {
		t.Fatal("Stop of a pending timer reported false")
	}
	if tm.Stop() {
		t.Fatal("second Stop reported true")
	}
	time.Sleep(60 * time.Millisecond)
	l.Do(func() {})
	if ran.Load() {
		t.Fatal("a stopped timer fired")
	}

	done := make(chan struct{})
	tm = c.AfterFunc(time.Millisecond, func() { close(done) })
	<-done
	if tm.Stop() {
		t.Fatal("Stop after the timer fired reported true")
	}
}

// TestClockStopRace races Stop (on the loop, like the core) against firing:
// Stop true must mean the func never runs, Stop false that it ran.
func TestClockStopRace(t *testing.T) {
	l := NewLoop()
	defer l.Close()
	c := NewClock(l)
	const n = 300
	var ran [n]atomic.Bool
	var stopped [n]bool
	timers := make([]env.Timer, n)
	l.Do(func() {
		for i := range n {
			timers[i] = c.AfterFunc(time.Duration(i%5)*time.Millisecond, func() { ran[i].Store(true) })
		}
	})
	time.Sleep(2 * time.Millisecond)
	l.Do(func() {
		for i := range n {
			stopped[i] = timers[i].Stop()
		}
	})
	// Every timer Stop lost to must run; wait for them, then no stopped
	// timer may have run (the stopped ones were due long before).
	deadline := time.Now().Add(5 * time.Second)
	for i := range n {
		for !stopped[i] && !ran[i].Load() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	time.Sleep(10 * time.Millisecond)
	l.Do(func() {})
	for i := range n {
		if stopped[i] == ran[i].Load() {
			t.Fatalf("timer %d: Stop() = %v but ran = %v", i, stopped[i], ran[i].Load())
		}
	}
}

func TestClockZeroDelayIsNotSynchronous(t *testing.T) {
	l := NewLoop()
	defer l.Close()
	c := NewClock(l)
	var order []string
	l.Do(func() {
		l.Post(func() { order = append(order, "queued-before") })
		c.AfterFunc(0, func() { order = append(order, "timer") })
		c.AfterFunc(-time.Second, func() { order = append(order, "timer-neg") })
		order = append(order, "caller")
	})
	l.Do(func() {})
	want := "caller,queued-before,timer,timer-neg"
	if got := strings.Join(order, ","); got != want {
		t.Fatalf("order %q, want %q", got, want)
	}
}

func TestClockNowMonotonic(t *testing.T) {
	l := NewLoop()
	defer l.Close()
	c := NewClock(l)
	prev := c.Now()
	if prev < 0 {
		t.Fatalf("Now() = %v < 0", prev)
	}
	for range 1000 {
		n := c.Now()
		if n < prev {
			t.Fatalf("Now went backward: %v after %v", n, prev)
		}
		prev = n
	}
}

func TestRand(t *testing.T) {
	a, b, other := NewRand(7), NewRand(7), NewRand(8)
	same, diff := true, false
	for range 100 {
		x, y, z := a.Uint64(), b.Uint64(), other.Uint64()
		same = same && x == y
		diff = diff || x != z
	}
	if !same {
		t.Fatal("one seed gave two sequences")
	}
	if !diff {
		t.Fatal("seeds 7 and 8 gave the same sequence")
	}
}

func TestSlogTracer(t *testing.T) {
	l := NewLoop()
	defer l.Close()
	var buf bytes.Buffer
	debug := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	NewSlogTracer(debug, 3, NewClock(l)).Trace(env.Event{Kind: "wal.sync", A: 5, Text: "ok"})
	out := buf.String()
	for _, want := range []string{"msg=wal.sync", "node=3", "a=5", "text=ok", " t="} {
		if !strings.Contains(out, want) {
			t.Fatalf("trace line %q lacks %q", out, want)
		}
	}

	buf.Reset()
	info := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	NewSlogTracer(info, 3, nil).Trace(env.Event{Kind: "wal.sync"})
	(&SlogTracer{}).Trace(env.Event{Kind: "x"}) // nil logger discards
	if buf.Len() != 0 {
		t.Fatalf("tracer logged below the handler level: %q", buf.String())
	}
}

func TestNewEnv(t *testing.T) {
	l := NewLoop()
	defer l.Close()
	fs, err := NewFS(t.TempDir(), l)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTransport(TransportConfig{ID: 1}, l, func(env.NodeID, []byte) {})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	e := NewEnv(l, fs, tr, 1, nil)
	if err := e.Validate(); err != nil {
		t.Fatalf("NewEnv: %v", err)
	}
	if _, ok := e.Tracer.(NopTracer); !ok {
		t.Fatalf("nil tracer became %T, want NopTracer", e.Tracer)
	}
}
