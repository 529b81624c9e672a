// Package osenv is walraft's real environment: it adapts the operating system
// (files with fsync, the wall clock, TCP on loopback) to the core/env
// interfaces so the sans-I/O core runs unchanged outside the simulator.
//
// It is the one package under core/ that uses goroutines, channels, mutexes,
// the wall clock and the OS. Everything it hands back to the core (a timer
// firing, an fsync completing, a message arriving) is posted to the node's
// Loop, a single goroutine that runs posted funcs one at a time in post
// order, so the core's single-threaded callback rules (see package env) hold
// exactly as they do in the simulator.
//
// Thread-safety: the env objects built here (FS, File, Clock, Rand, Tracer,
// Env) are meant to be called from the node's Loop goroutine; FS, File,
// Clock and Transport are nevertheless safe for concurrent use so tests and
// benchmark drivers may call them from other goroutines too. Rand is not.
package osenv

import (
	"bytes"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
)

// DefaultLoopCap is the queue capacity of a Loop made by NewLoop.
const DefaultLoopCap = 1 << 16

// Loop is a node's event loop: one goroutine runs posted funcs one at a
// time, in post order.
//
// Every env callback (timer, sync completion, received message) is posted
// to the loop, so the core's single-threaded rules hold.
//
// The queue is bounded by a capacity. What happens at the capacity depends
// on who posts:
//   - Post from any goroutine other than the loop's blocks until the loop
//     takes the queued funcs (it takes them all at once when it finishes
//     its current batch, so the wait is at most that batch's run time).
//     This is backpressure on timers, fsync workers and drivers, whose
//     funcs must never be dropped.
//   - Post from the loop goroutine itself (a func that posts) never blocks:
//     blocking would deadlock, and what one func posts is bounded by the
//     func itself, so the queue may exceed its capacity by that much.
//   - TryPost never blocks: it drops the func and reports false. The
//     transport uses it for received messages, which the network is
//     allowed to drop and raft retries.
type Loop struct {
	mu       sync.Mutex
	nonEmpty sync.Cond // the loop waits here for work or Close
	notFull  sync.Cond // blocked posters wait here for room or Close
	q        []func()
	spare    []func() // the batch slice the loop last ran, reused as the next queue
	capacity int
	closed   bool

	gid     atomic.Uint64 // goroutine id of the loop goroutine
	dropped atomic.Uint64
	done    chan struct{}
}

// NewLoop starts a loop with capacity DefaultLoopCap.
func NewLoop() *Loop { return NewLoopCap(DefaultLoopCap) }

// NewLoopCap starts a loop whose queue holds capacity funcs (see Loop for
// the policy at the capacity). capacity < 1 panics.
func NewLoopCap(capacity int) *Loop {
	if capacity < 1 {
		panic(fmt.Sprintf("osenv: NewLoopCap(%d): capacity must be >= 1", capacity))
	}
	l := &Loop{capacity: capacity, done: make(chan struct{})}
	l.nonEmpty.L = &l.mu
	l.notFull.L = &l.mu
	started := make(chan struct{})
	go l.run(started)
	<-started // so gid is set before anyone can ask onLoop
	return l
}

func (l *Loop) run(started chan<- struct{}) {
	l.gid.Store(goroutineID())
	close(started)
	defer close(l.done)
	for {
		l.mu.Lock()
		for len(l.q) == 0 && !l.closed {
			l.nonEmpty.Wait()
		}
		if len(l.q) == 0 { // closed and drained
			l.mu.Unlock()
			return
		}
		// Take the whole queue at once: one lock round trip per batch
		// instead of per func, and every blocked poster gets room.
		batch := l.q
		l.q = l.spare[:0]
		l.spare = nil
		l.notFull.Broadcast()
		l.mu.Unlock()

		for i, fn := range batch {
			batch[i] = nil // let the closure be collected once it ran
			fn()
		}

		l.mu.Lock()
		l.spare = batch[:0]
		l.mu.Unlock()
	}
}

// Post queues fn to run on the loop after every func posted before it. It
// blocks while the queue is full unless called from the loop goroutine
// itself (see Loop). After Close, fn is dropped.
func (l *Loop) Post(fn func()) {
	l.post(fn, true)
}

// TryPost queues fn like Post, but never blocks: when the queue is full or
// the loop is closed it drops fn and reports false.
func (l *Loop) TryPost(fn func()) bool {
	return l.post(fn, false)
}

func (l *Loop) post(fn func(), block bool) bool {
	if fn == nil {
		panic("osenv: Loop.Post with nil func")
	}
	l.mu.Lock()
	for !l.closed && len(l.q) >= l.capacity {
		if !block {
			l.mu.Unlock()
			l.dropped.Add(1)
			return false
		}
		if l.onLoop() {
			break // a func on the loop posts: overflow rather than deadlock
		}
		l.notFull.Wait()
	}
	if l.closed {
		l.mu.Unlock()
		l.dropped.Add(1)
		return false
	}
	l.q = append(l.q, fn)
	l.nonEmpty.Signal()
	l.mu.Unlock()
	return true
}

// Do posts fn and waits until it ran. It is for tests and benchmark setup.
// If the loop is closed, fn is dropped and Do returns at once. Calling Do
// from the loop goroutine would wait for itself forever, so it panics.
func (l *Loop) Do(fn func()) {
	if l.onLoop() {
		panic("osenv: Loop.Do called from the loop goroutine (it would wait for itself)")
	}
	ran := make(chan struct{})
	if !l.post(func() { defer close(ran); fn() }, true) {
		return
	}
	<-ran
}

// Close stops the loop after it has run every func already queued; later
// posts are dropped. Called from outside the loop it waits until the loop
// goroutine has exited; called from a func on the loop it returns at once
// (the loop exits after the current batch drains). Close is idempotent.
func (l *Loop) Close() {
	l.mu.Lock()
	l.closed = true
	l.nonEmpty.Broadcast()
	l.notFull.Broadcast()
	l.mu.Unlock()
	if l.onLoop() {
		return
	}
	<-l.done
}

// Closed reports whether Close has been called.
func (l *Loop) Closed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Dropped returns how many funcs were dropped: TryPost on a full queue, and
// any post after Close.
func (l *Loop) Dropped() uint64 { return l.dropped.Load() }

// onLoop reports whether the caller runs on the loop goroutine. It costs a
// runtime.Stack call, so it is only used on slow paths (full queue, Do,
// Close).
func (l *Loop) onLoop() bool {
	return goroutineID() == l.gid.Load()
}

// goroutineID parses the current goroutine's id from the first line of its
// stack trace ("goroutine 123 [running]:"). Go deliberately hides goroutine
// ids; the loop needs one only to tell "a func on the loop posts" (must not
// block) from "another goroutine posts" (may block).
func goroutineID() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	b := bytes.TrimPrefix(buf[:n], []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		panic(fmt.Sprintf("osenv: cannot parse goroutine id from %q: %v", buf[:n], err))
	}
	return id
}
