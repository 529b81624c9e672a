package osenv

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLoopRunsPostsInOrder(t *testing.T) {
	l := NewLoop()
	defer l.Close()

	const producers, per = 4, 2000
	var got [producers][]int // touched only on the loop
	var onLoop atomic.Bool
	onLoop.Store(true)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				l.Post(func() {
					if !l.onLoop() {
						onLoop.Store(false)
					}
					got[p] = append(got[p], i)
				})
			}
		}()
	}
	wg.Wait()
	l.Do(func() {}) // everything posted before has run
	if !onLoop.Load() {
		t.Fatal("a posted func ran off the loop goroutine")
	}
	for p := range producers {
		if len(got[p]) != per {
			t.Fatalf("producer %d: %d funcs ran, want %d", p, len(got[p]), per)
		}
		for i, v := range got[p] {
			if v != i {
				t.Fatalf("producer %d: func %d ran at position %d (post order broken)", p, v, i)
			}
		}
	}
}

func TestLoopDoWaits(t *testing.T) {
	l := NewLoop()
	defer l.Close()
	x := 0
	l.Do(func() {
		time.Sleep(10 * time.Millisecond)
		x = 42 // the race detector flags this if Do does not wait
	})
	if x != 42 {
		t.Fatalf("Do returned before its func ran: x = %d", x)
	}
}

func TestLoopDoOnLoopPanics(t *testing.T) {
	l := NewLoop()
	defer l.Close()
	var r any
	l.Do(func() {
		defer func() { r = recover() }()
		l.Do(func() {})
	})
	if r == nil {
		t.Fatal("Do from the loop goroutine did not panic")
	}
}

func TestLoopCloseDrains(t *testing.T) {
	l := NewLoop()
	var ran atomic.Int64
	for range 1000 {
		l.Post(func() {
			ran.Add(1)
		})
	}
	l.Close()
	if n := ran.Load(); n != 1000 {
		t.Fatalf("Close returned after %d of 1000 queued funcs ran", n)
	}
	l.Post(func() { ran.Add(1) })
	if l.TryPost(func() { ran.Add(1) }) {
		t.Fatal("TryPost after Close reported true")
	}
	l.Do(func() { ran.Add(1) }) // must return, not hang
	if n := ran.Load(); n != 1000 {
		t.Fatalf("a post after Close ran (%d funcs ran)", n)
	}
	if d := l.Dropped(); d != 3 {
		t.Fatalf("Dropped() = %d, want 3", d)
	}
	l.Close() // idempotent
	if !l.Closed() {
		t.Fatal("Closed() = false after Close")
	}
}

func TestLoopCloseFromLoop(t *testing.T) {
	l := NewLoop()
	ran := make(chan int, 3)
	l.Post(func() {
		l.Close() // must not wait for itself
		ran <- 1
	})
	l.Post(func() { ran <- 2 }) // queued before Close: still runs
	select {
	case <-l.done:
	case <-time.After(5 * time.Second):
		t.Fatal("loop did not stop after Close from a loop func")
	}
	if len(ran) != 2 {
		t.Fatalf("%d funcs ran, want 2", len(ran))
	}
}

func TestLoopBackpressure(t *testing.T) {
	l := NewLoopCap(4)
	defer l.Close()
	release := make(chan struct{})
	l.Post(func() { <-release }) // the loop takes it and blocks: the queue is empty again
	time.Sleep(10 * time.Millisecond)

	var ran atomic.Int64
	for i := range 4 {
		if !l.TryPost(func() { ran.Add(1) }) {
			t.Fatalf("TryPost %d failed below capacity", i)
		}
	}
	if l.TryPost(func() { ran.Add(1) }) {
		t.Fatal("TryPost succeeded on a full queue")
	}
	posted := make(chan struct{})
	go func() {
		l.Post(func() { ran.Add(1) }) // blocks: full, and not on the loop
		close(posted)
	}()
	select {
	case <-posted:
		t.Fatal("Post on a full queue from another goroutine did not block")
	case <-time.After(30 * time.Millisecond):
	}
	close(release)
	select {
	case <-posted:
	case <-time.After(5 * time.Second):
		t.Fatal("blocked Post never got room")
	}
	l.Do(func() {})
	if n := ran.Load(); n != 5 {
		t.Fatalf("%d funcs ran, want 5 (4 TryPost + 1 Post)", n)
	}
	if d := l.Dropped(); d != 1 {
		t.Fatalf("Dropped() = %d, want 1", d)
	}

	// A func on the loop posting past the capacity must not deadlock.
	var order []int
	l.Do(func() {
		for i := range 20 {
			l.Post(func() { order = append(order, i) })
		}
	})
	l.Do(func() {})
	if len(order) != 20 {
		t.Fatalf("%d of 20 overflow posts ran", len(order))
	}
	for i, v := range order {
		if v != i {
			t.Fatalf("overflow post %d ran at position %d", v, i)
		}
	}
}

func TestNewLoopCapRejectsZero(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewLoopCap(0) did not panic")
		}
	}()
	NewLoopCap(0)
}

func TestGoroutineID(t *testing.T) {
	a := goroutineID()
	if a == 0 {
		t.Fatal("goroutineID() = 0")
	}
	ch := make(chan uint64)
	go func() { ch <- goroutineID() }()
	if b := <-ch; b == a {
		t.Fatalf("two goroutines share id %d", a)
	}
	if goroutineID() != a {
		t.Fatal("goroutineID() changed within one goroutine")
	}
}
