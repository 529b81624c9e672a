package sim

import (
	"slices"
	"testing"
	"time"
)

// schedRef is the obviously right scheduler: a list kept sorted by
// (at, seq).
type schedRef struct {
	now time.Duration
	seq uint64
	q   []refEvent
}

type refEvent struct {
	at  time.Duration
	seq uint64
	id  int
}

func (r *schedRef) at(t time.Duration, id int) {
	t = max(t, r.now)
	r.seq++
	r.q = append(r.q, refEvent{t, r.seq, id})
	slices.SortFunc(r.q, func(a, b refEvent) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		return int(a.seq) - int(b.seq)
	})
}

func (r *schedRef) cancel(id int) bool {
	for i, e := range r.q {
		if e.id == id {
			r.q = slices.Delete(r.q, i, i+1)
			return true
		}
	}
	return false
}

func (r *schedRef) step() (int, bool) {
	if len(r.q) == 0 {
		return 0, false
	}
	e := r.q[0]
	r.q = r.q[1:]
	r.now = e.at
	return e.id, true
}

// idEvent is an event object for Scheduler.schedule that records its id.
type idEvent struct {
	item Item
	id   int
	ran  *[]int
}

func (e *idEvent) fire() { *e.ran = append(*e.ran, e.id) }

// delay draws an event's distance ahead: mostly within a few milliseconds
// (often equal, so sequence numbers decide), sometimes a second or more
// ahead, in or out of order, so events go to both the heap and the lane.
func delay(rng *Rand) time.Duration {
	d := time.Duration(rng.IntN(4)) * time.Millisecond
	if rng.Chance(0.3) {
		d += laneMin + time.Duration(rng.IntN(3))*time.Millisecond
	}
	return d
}

// TestSchedulerMatchesReference drives the scheduler and the reference with
// the same random mix of At, schedule (embedded items, re-queued after they
// run or are cancelled), Cancel and Step, and compares the order events run
// in, Cancel's results and Len.
func TestSchedulerMatchesReference(t *testing.T) {
	for seed := range uint64(30) {
		rng := NewStreams(seed).Stream("sched")
		s := NewScheduler()
		var ref schedRef
		var ran []int
		var items []*Item // by id
		var objs []*idEvent
		for step := 0; step < 2000; step++ {
			switch op := rng.IntN(100); {
			case op < 35: // At, often at the same instant
				id := len(items)
				d := delay(rng)
				if rng.Chance(0.1) {
					d = -time.Millisecond // in the past: clamped to now
				}
				items = append(items, s.At(s.Now()+d, func() { ran = append(ran, id) }))
				objs = append(objs, nil)
				ref.at(ref.now+d, id)
			case op < 50: // schedule a fresh or an idle embedded item
				var e *idEvent
				for _, o := range objs {
					if o != nil && !o.item.Pending() && rng.Chance(0.3) {
						e = o
						break
					}
				}
				if e == nil {
					e = &idEvent{id: len(items), ran: &ran}
					items = append(items, &e.item)
					objs = append(objs, e)
				}
				d := delay(rng)
				s.schedule(&e.item, s.Now()+d, e)
				ref.at(ref.now+d, e.id)
			case op < 70 && len(items) > 0: // Cancel, pending or not
				id := rng.IntN(len(items))
				got, want := items[id].Cancel(s), ref.cancel(id)
				if got != want {
					t.Fatalf("seed %d step %d: Cancel(%d) = %v, want %v", seed, step, id, got, want)
				}
			default:
				n := len(ran)
				ok := s.Step()
				id, wantOK := ref.step()
				if ok != wantOK {
					t.Fatalf("seed %d step %d: Step = %v, want %v", seed, step, ok, wantOK)
				}
				if ok && (len(ran) != n+1 || ran[n] != id) {
					t.Fatalf("seed %d step %d: ran %v, want event %d", seed, step, ran[n:], id)
				}
				if s.Now() != ref.now {
					t.Fatalf("seed %d step %d: Now = %v, want %v", seed, step, s.Now(), ref.now)
				}
			}
			if s.Len() != len(ref.q) {
				t.Fatalf("seed %d step %d: Len = %d, want %d", seed, step, s.Len(), len(ref.q))
			}
			if step%50 != 0 {
				continue
			}
			for id, it := range items {
				pending := slices.ContainsFunc(ref.q, func(e refEvent) bool { return e.id == id })
				if it.Pending() != pending {
					t.Fatalf("seed %d step %d: item %d Pending = %v, want %v", seed, step, id, it.Pending(), pending)
				}
			}
		}
	}
}

// TestSchedulerCompactsCancelled cancels most of a large queue, which
// makes the scheduler drop its dead entries and rebuild the heap, and
// checks that the survivors still run in (time, sequence) order and that
// cancelled items never run.
func TestSchedulerCompactsCancelled(t *testing.T) {
	for _, keepEvery := range []int{1, 2, 7, 5000} {
		rng := NewStreams(uint64(keepEvery)).Stream("compact")
		s := NewScheduler()
		var ref schedRef
		var ran []int
		var items []*Item
		for id := range 5000 {
			d := time.Duration(rng.IntN(50)) * time.Millisecond
			if id%3 == 0 {
				d = laneMin + time.Duration(id)*time.Microsecond // in order: the lane
			}
			items = append(items, s.At(d, func() { ran = append(ran, id) }))
			ref.at(d, id)
		}
		for id, it := range items {
			if id%keepEvery != 0 {
				it.Cancel(s)
				ref.cancel(id)
			}
		}
		if s.Len() != len(ref.q) {
			t.Fatalf("keep 1/%d: Len = %d, want %d", keepEvery, s.Len(), len(ref.q))
		}
		// Dead entries may stay only while they are at most half of their
		// structure (or few).
		for _, part := range []struct {
			name string
			es   []qent
		}{{"heap", s.q}, {"lane", s.lane[s.laneHead:]}} {
			dead := 0
			for i := range part.es {
				if !part.es[i].live() {
					dead++
				}
			}
			if dead > 256 && 2*dead > len(part.es) {
				t.Fatalf("keep 1/%d: %d of %d %s entries are dead, want them dropped", keepEvery, dead, len(part.es), part.name)
			}
		}
		var want []int
		for _, e := range ref.q {
			want = append(want, e.id)
		}
		for s.Step() {
		}
		if !slices.Equal(ran, want) {
			t.Fatalf("keep 1/%d: ran %d events in a different order than the reference (%d)", keepEvery, len(ran), len(want))
		}
		if s.Len() != 0 || s.Step() {
			t.Fatalf("keep 1/%d: queue not empty after running everything", keepEvery)
		}
	}
}

func TestSchedulerScheduleQueuedItemPanics(t *testing.T) {
	s := NewScheduler()
	var ran []int
	e := &idEvent{ran: &ran}
	s.schedule(&e.item, time.Second, e)
	defer func() {
		if recover() == nil {
			t.Fatal("schedule of a queued item did not panic")
		}
	}()
	s.schedule(&e.item, 2*time.Second, e)
}

// BenchmarkScheduler measures a steady queue of about 5,000 pending events
// (a run's parked client timeouts) with one event scheduled per event run.
func BenchmarkScheduler(b *testing.B) {
	s := NewScheduler()
	rng := NewStreams(1).Stream("bench")
	fn := func() {}
	for range 5000 {
		s.After(time.Duration(rng.IntN(6e9)), fn)
	}
	b.ResetTimer()
	for range b.N {
		s.After(time.Duration(rng.IntN(6e9)), fn)
		s.Step()
	}
}

// TestStormGuard: work (events plus Charge) past the limit within less
// than the window of virtual time panics with an *EventStorm; the same
// work spread over more than the window does not.
func TestStormGuard(t *testing.T) {
	tests := []struct {
		name      string
		gap       time.Duration // virtual time between events
		charge    uint64        // units charged per event
		events    int
		wantStorm bool
	}{
		{"zero-delay events storm", 0, 0, 5000, true},
		{"events 2ms apart are not a storm", 2 * time.Millisecond, 0, 5000, false},
		{"large messages storm", 100 * time.Microsecond, 99, 500, true},
		{"the same traffic spread out is not", 200 * time.Millisecond, 99, 500, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewScheduler()
			s.SetStormGuard(1000, time.Second)
			left := tt.events
			var tick func()
			tick = func() {
				s.Charge(tt.charge)
				if left--; left > 0 {
					s.After(tt.gap, tick)
				}
			}
			s.After(0, tick)
			var storm *EventStorm
			func() {
				defer func() {
					if r := recover(); r != nil {
						var ok bool
						if storm, ok = r.(*EventStorm); !ok {
							panic(r)
						}
					}
				}()
				s.RunUntil(time.Hour)
			}()
			if (storm != nil) != tt.wantStorm {
				t.Fatalf("storm %v, want %v (ran to %v, %d steps)", storm, tt.wantStorm, s.Now(), s.Steps())
			}
			if storm != nil && (storm.Work < 1000 || storm.To-storm.From >= time.Second) {
				t.Errorf("storm %+v: want at least 1000 units within less than 1s", storm)
			}
		})
	}
}
