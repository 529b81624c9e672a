package sim

import (
	"container/heap"
	"fmt"
	"time"
)

// Scheduler is the single event queue of a simulation. Events run in order
// of (virtual time, sequence number): two events at the same instant run in
// the order they were scheduled, which is what makes a run reproducible.
// It is not safe for concurrent use; a simulation is single-threaded.
type Scheduler struct {
	now   time.Duration
	seq   uint64
	q     eventQueue
	steps uint64
}

// NewScheduler returns an empty scheduler at virtual time zero.
func NewScheduler() *Scheduler { return &Scheduler{} }

// Item is a scheduled event; Cancel removes it.
type Item struct {
	at    time.Duration
	seq   uint64
	fn    func()
	index int // heap index; -1 once run or cancelled
}

// Cancel removes the event from the queue. It reports whether the event was
// still pending.
func (it *Item) Cancel(s *Scheduler) bool {
	if it == nil || it.index < 0 {
		return false
	}
	heap.Remove(&s.q, it.index)
	it.index = -1
	it.fn = nil
	return true
}

// Pending reports whether the event is still queued.
func (it *Item) Pending() bool { return it != nil && it.index >= 0 }

// Now returns the current virtual time.
func (s *Scheduler) Now() time.Duration { return s.now }

// Steps returns how many events have run.
func (s *Scheduler) Steps() uint64 { return s.steps }

// Len returns how many events are queued.
func (s *Scheduler) Len() int { return len(s.q) }

// At schedules fn at virtual time t. A time in the past is clamped to now
// (it runs after every event already queued for now).
func (s *Scheduler) At(t time.Duration, fn func()) *Item {
	if fn == nil {
		panic("sim: Scheduler.At with nil func")
	}
	if t < s.now {
		t = s.now
	}
	s.seq++
	it := &Item{at: t, seq: s.seq, fn: fn}
	heap.Push(&s.q, it)
	return it
}

// After schedules fn d after now.
func (s *Scheduler) After(d time.Duration, fn func()) *Item {
	if d < 0 {
		d = 0
	}
	return s.At(s.now+d, fn)
}

// Step runs the next event. It reports false when the queue is empty.
func (s *Scheduler) Step() bool {
	if len(s.q) == 0 {
		return false
	}
	it := heap.Pop(&s.q).(*Item)
	if it.at < s.now {
		panic(fmt.Sprintf("sim: event at %v runs after now %v", it.at, s.now))
	}
	s.now = it.at
	fn := it.fn
	it.fn = nil
	s.steps++
	fn()
	return true
}

// RunUntil runs every event scheduled at or before t, then sets the clock to
// t.
func (s *Scheduler) RunUntil(t time.Duration) {
	for len(s.q) > 0 && s.q[0].at <= t {
		s.Step()
	}
	if t > s.now {
		s.now = t
	}
}

// RunFor runs events for d of virtual time.
func (s *Scheduler) RunFor(d time.Duration) { s.RunUntil(s.now + d) }

// RunWhile runs events while cond holds, the queue is not empty and the
// clock has not passed deadline. It reports whether cond became false.
func (s *Scheduler) RunWhile(cond func() bool, deadline time.Duration) bool {
	for cond() {
		if len(s.q) == 0 || s.q[0].at > deadline {
			if deadline > s.now {
				s.now = deadline
			}
			return false
		}
		s.Step()
	}
	return true
}

type eventQueue []*Item

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index = i
	q[j].index = j
}
func (q *eventQueue) Push(x any) {
	it := x.(*Item)
	it.index = len(*q)
	*q = append(*q, it)
}
func (q *eventQueue) Pop() any {
	old := *q
	n := len(old)
	it := old[n-1]
	old[n-1] = nil
	it.index = -1
	*q = old[:n-1]
	return it
}
