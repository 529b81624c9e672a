package sim

import (
	"fmt"
	"time"
)

// Scheduler is the single event queue of a simulation. Events run in order
// of (virtual time, sequence number): two events at the same instant run in
// the order they were scheduled, which is what makes a run reproducible.
// It is not safe for concurrent use; a simulation is single-threaded.
type Scheduler struct {
	now       time.Duration
	seq       uint64
	q         eventQueue
	lane      []qent // far-future entries in (at, seq) order, from laneHead on
	laneHead  int    // index of the lane's first entry
	live      int    // queued events not cancelled (Len)
	staleHeap int    // cancelled entries still in q
	staleLane int    // cancelled entries still in the lane
	steps     uint64

	// The storm guard (SetStormGuard): stormLimit units of work (events,
	// plus what Charge adds) within less than stormWindow of virtual time
	// stop the run.
	stormLimit  uint64
	stormWindow time.Duration
	work        uint64        // events run plus units charged
	winWork     uint64        // work at the window's start
	winStart    time.Duration // virtual time at the window's start
}

// EventStorm is the panic value of a scheduler whose storm guard tripped:
// Work units of work (events run, plus the KiB of messages sent: Charge)
// between virtual times From and To, less than the guard's window apart.
// A system in a livelock (messages or timers that keep scheduling each
// other, or a leader re-sending an ever longer log) keeps the clock nearly
// still while the work piles up, so without the guard a run would spin and
// grow without bound instead of ending with a replayable failure.
type EventStorm struct {
	Work     uint64
	From, To time.Duration
}

func (e *EventStorm) Error() string {
	return fmt.Sprintf("sim: storm: %d units of work (events and KiB sent) between %v and %v of virtual time: a livelock",
		e.Work, e.From, e.To)
}

// SetStormGuard makes the scheduler panic with an *EventStorm when limit
// units of work (each event one, plus Charge) run within less than window
// of virtual time (0 turns it off). It is checked when the work crosses
// the limit, so it never changes which events run or when.
func (s *Scheduler) SetStormGuard(limit uint64, window time.Duration) {
	s.stormLimit, s.stormWindow = limit, window
	s.winWork, s.winStart = s.work, s.now
}

// Charge adds units of work for the storm guard (the network charges one
// per KiB sent).
func (s *Scheduler) Charge(units uint64) { s.work += units }

// laneMin is how far ahead an event must be to go to the scheduler's lane.
//
// The lane is a FIFO of entries in (at, seq) order next to the heap: an
// event at least laneMin ahead whose time is not before the lane's last
// entry is appended to it instead of pushed on the heap, and the next event
// is the earlier of the two heads. Timeouts that are always the same
// distance ahead (every client request parks one, seconds ahead, and
// thousands are pending) arrive in order, so they stay out of the heap,
// which then holds only the near events and is a few levels deep. The
// merge of two ordered sequences is the same single order, so which
// structure holds an entry never changes what runs when.
const laneMin = time.Second

// NewScheduler returns an empty scheduler at virtual time zero.
func NewScheduler() *Scheduler { return &Scheduler{} }

// Item is a scheduled event; Cancel removes it.
//
// Inside the package an Item may also be embedded in the object that the
// event acts on (a disk sync, a timer, a message delivery) and queued with
// schedule, running that object's fire method: one allocation per event
// instead of an object, a closure and an Item.
type Item struct {
	at     time.Duration
	seq    uint64 // of the queue entry that is this item's live one
	fn     func()
	ev     firer // runs instead of fn when fn is nil
	queued bool  // pending: queued and neither run nor cancelled
	inLane bool  // where its live entry is, while queued
}

// firer is an event object queued with Scheduler.schedule.
type firer interface{ fire() }

// Cancel removes the event from the queue. It reports whether the event was
// still pending.
//
// The queue entry stays behind, dead, and is dropped when it reaches the
// head, or with all the others once they make up a quarter of the heap
// (half of the lane): removing it now would mean keeping every item's heap
// index up to date on every move, which costs a scattered memory write per
// level of every push and pop. Dead entries deepen the heap that every
// event walks down, and a run cancels timers a few hundred milliseconds
// out all the time, so the heap is compacted early (a compaction costs
// about four heap moves per dead entry).
func (it *Item) Cancel(s *Scheduler) bool {
	if it == nil || !it.queued {
		return false
	}
	it.queued = false
	it.fn, it.ev = nil, nil
	s.live--
	if it.inLane {
		s.staleLane++
		if n := len(s.lane) - s.laneHead; s.staleLane > 256 && 2*s.staleLane > n {
			s.compactLane()
		}
	} else {
		s.staleHeap++
		if s.staleHeap > 16 && 4*s.staleHeap > len(s.q) {
			s.q.compact()
			s.staleHeap = 0
		}
	}
	return true
}

// Pending reports whether the event is still queued.
func (it *Item) Pending() bool { return it != nil && it.queued }

// Now returns the current virtual time.
func (s *Scheduler) Now() time.Duration { return s.now }

// Steps returns how many events have run.
func (s *Scheduler) Steps() uint64 { return s.steps }

// Len returns how many events are queued.
func (s *Scheduler) Len() int { return s.live }

// At schedules fn at virtual time t. A time in the past is clamped to now
// (it runs after every event already queued for now).
func (s *Scheduler) At(t time.Duration, fn func()) *Item {
	if fn == nil {
		panic("sim: Scheduler.At with nil func")
	}
	it := &Item{fn: fn}
	s.push(it, t)
	return it
}

// schedule queues it, which must not be pending, to run ev.fire at t
// (clamped to now like At). The caller owns it and may queue it again once
// it has run or been cancelled.
func (s *Scheduler) schedule(it *Item, t time.Duration, ev firer) {
	if ev == nil {
		panic("sim: Scheduler.schedule with nil event")
	}
	if it.queued {
		panic(fmt.Sprintf("sim: Scheduler.schedule of an item already queued at %v", it.at))
	}
	it.fn, it.ev = nil, ev
	s.push(it, t)
}

// push queues it at t (clamped to now) with the next sequence number.
func (s *Scheduler) push(it *Item, t time.Duration) {
	if t < s.now {
		t = s.now
	}
	s.seq++
	it.at, it.seq, it.queued = t, s.seq, true
	s.live++
	e := qent{at: t, seq: s.seq, it: it}
	it.inLane = t-s.now >= laneMin && (s.laneHead == len(s.lane) || !before(&e, &s.lane[len(s.lane)-1]))
	if it.inLane {
		s.lane = append(s.lane, e)
		return
	}
	s.q.push(e)
}

// After schedules fn d after now.
func (s *Scheduler) After(d time.Duration, fn func()) *Item {
	if d < 0 {
		d = 0
	}
	return s.At(s.now+d, fn)
}

// head returns the first live entry, dropping dead ones on the way, or nil
// when no event is queued; inLane says where it is.
func (s *Scheduler) head() (e *qent, inLane bool) {
	for len(s.q) > 0 && !s.q[0].live() {
		s.q.pop()
		s.staleHeap--
	}
	for s.laneHead < len(s.lane) && !s.lane[s.laneHead].live() {
		s.lanePop()
		s.staleLane--
	}
	var h, l *qent
	if len(s.q) > 0 {
		h = &s.q[0]
	}
	if s.laneHead < len(s.lane) {
		l = &s.lane[s.laneHead]
	}
	switch {
	case l == nil:
		return h, false
	case h == nil || before(l, h):
		return l, true
	}
	return h, false
}

// lanePop removes the lane's first entry and returns its item.
func (s *Scheduler) lanePop() *Item {
	it := s.lane[s.laneHead].it
	s.lane[s.laneHead] = qent{}
	s.laneHead++
	switch {
	case s.laneHead == len(s.lane):
		s.lane, s.laneHead = s.lane[:0], 0
	case s.laneHead >= 1024 && 2*s.laneHead >= len(s.lane):
		n := copy(s.lane, s.lane[s.laneHead:])
		clear(s.lane[n:])
		s.lane, s.laneHead = s.lane[:n], 0
	}
	return it
}

// compactLane drops every dead entry from the lane.
func (s *Scheduler) compactLane() {
	n := 0
	for _, e := range s.lane[s.laneHead:] {
		if e.live() {
			s.lane[n] = e
			n++
		}
	}
	clear(s.lane[n:])
	s.lane, s.laneHead = s.lane[:n], 0
	s.staleLane = 0
}

// Step runs the next event. It reports false when the queue is empty.
func (s *Scheduler) Step() bool {
	e, inLane := s.head()
	if e == nil {
		return false
	}
	s.runHead(inLane)
	return true
}

// runHead runs the first live entry, which head just found (in the lane
// when inLane).
func (s *Scheduler) runHead(inLane bool) {
	var it *Item
	if inLane {
		it = s.lanePop()
	} else {
		it = s.q.pop()
	}
	if it.at < s.now {
		panic(fmt.Sprintf("sim: event at %v runs after now %v", it.at, s.now))
	}
	s.now = it.at
	fn, ev := it.fn, it.ev
	it.fn, it.ev, it.queued = nil, nil, false
	s.live--
	s.steps++
	s.work++
	if s.stormLimit > 0 && s.work-s.winWork >= s.stormLimit {
		if s.now-s.winStart < s.stormWindow {
			panic(&EventStorm{Work: s.work - s.winWork, From: s.winStart, To: s.now})
		}
		s.winWork, s.winStart = s.work, s.now
	}
	if fn != nil {
		fn()
	} else {
		ev.fire()
	}
}

// RunUntil runs every event scheduled at or before t, then sets the clock to
// t.
func (s *Scheduler) RunUntil(t time.Duration) {
	for {
		e, inLane := s.head()
		if e == nil || e.at > t {
			break
		}
		s.runHead(inLane)
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
		e, inLane := s.head()
		if e == nil || e.at > deadline {
			if deadline > s.now {
				s.now = deadline
			}
			return false
		}
		s.runHead(inLane)
	}
	return true
}

// eventQueue is a 4-ary min-heap of entries ordered by (at, seq). It is
// written out rather than built on container/heap: the interface calls and
// boxing of container/heap cost a noticeable share of a run, and every
// event goes through here twice. Four children per node halve the depth of
// a binary heap: the queue holds thousands of entries (every client request
// parks a timeout), and a pop walks down the whole depth. Each entry
// carries its key, so a sift reads and writes the heap array only, never
// the items scattered over memory. (at, seq) is a total order, so any
// correct heap pops the same sequence.
type eventQueue []qent

// qent is one heap entry: an item and the key it was queued with. It is
// the item's live entry while the item is queued with that sequence number;
// otherwise (cancelled, or cancelled and queued again) it is dead.
type qent struct {
	at  time.Duration
	seq uint64
	it  *Item
}

func (e *qent) live() bool { return e.it.queued && e.it.seq == e.seq }

// before reports whether a runs before b.
func before(a, b *qent) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

// push adds e.
func (q *eventQueue) push(e qent) {
	*q = append(*q, qent{})
	q.up(len(*q)-1, e)
}

// pop removes the first entry and returns its item.
func (q *eventQueue) pop() *Item {
	h := *q
	n := len(h) - 1
	top := h[0].it
	last := h[n]
	h[n] = qent{}
	*q = h[:n]
	if n > 0 {
		q.down(0, last)
	}
	return top
}

// compact drops every dead entry and restores the heap order.
func (q *eventQueue) compact() {
	h := *q
	n := 0
	for _, e := range h {
		if e.live() {
			h[n] = e
			n++
		}
	}
	clear(h[n:])
	h = h[:n]
	*q = h
	if n < 2 {
		return
	}
	for i := (n - 2) / 4; i >= 0; i-- {
		q.down(i, h[i])
	}
}

// up places e, which belongs at hole index i or above, moving parents
// down.
func (q eventQueue) up(i int, e qent) {
	for i > 0 {
		p := (i - 1) / 4
		if !before(&e, &q[p]) {
			break
		}
		q[i] = q[p]
		i = p
	}
	q[i] = e
}

// down places e, which belongs at hole index i or below, moving children
// up. A node with all four children (every level but the last) compares
// them pairwise, in a tournament the compiler keeps in registers.
func (q eventQueue) down(i int, e qent) {
	n := len(q)
	for {
		first := 4*i + 1
		var c int
		if first+3 < n {
			kids := q[first : first+4 : first+4]
			a, b := 0, 2
			if before(&kids[1], &kids[0]) {
				a = 1
			}
			if before(&kids[3], &kids[2]) {
				b = 3
			}
			if before(&kids[b], &kids[a]) {
				a = b
			}
			c = first + a
		} else {
			if first >= n {
				break
			}
			c = first
			for k := first + 1; k < n; k++ {
				if before(&q[k], &q[c]) {
					c = k
				}
			}
		}
		if !before(&q[c], &e) {
			break
		}
		q[i] = q[c]
		i = c
	}
	q[i] = e
}
