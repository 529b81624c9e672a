package sim

import (
	"errors"
	"slices"
	"testing"
	"time"

	"walraft/core/env"
)

func TestProcLifecycleErrors(t *testing.T) {
	type op struct {
		name string
		do   func(w *World) error
		want error
	}
	crash := func(w *World) error { return w.Crash(1) }
	restart := func(w *World) error { return w.Restart(1) }
	pause := func(w *World) error { return w.Pause(1) }
	resume := func(w *World) error { return w.Resume(1) }
	post := func(w *World) error { return w.Post(1, 0, func() {}) }
	tests := []struct {
		name  string
		setup []func(w *World) error
		ops   []op
	}{
		{"up", nil, []op{
			{"restart", restart, ErrNodeRunning},
			{"resume", resume, ErrNodeNotPaused},
			{"post", post, nil},
			{"pause", pause, nil},
		}},
		{"paused", []func(*World) error{pause}, []op{
			{"pause", pause, ErrNodePaused},
			{"restart", restart, ErrNodeRunning},
			{"post", post, nil},
			{"resume", resume, nil},
		}},
		{"down", []func(*World) error{crash}, []op{
			{"crash", crash, ErrNodeDown},
			{"pause", pause, ErrNodeDown},
			{"resume", resume, ErrNodeDown},
			{"post", post, ErrNodeDown},
			{"restart", restart, nil},
		}},
		{"paused then crashed", []func(*World) error{pause, crash}, []op{
			{"resume", resume, ErrNodeDown},
			{"restart", restart, nil},
		}},
		{"unknown node", nil, []op{
			{"crash", func(w *World) error { return w.Crash(9) }, ErrUnknownNode},
			{"restart", func(w *World) error { return w.Restart(9) }, ErrUnknownNode},
			{"restart after", func(w *World) error { return w.RestartAfter(9, 0) }, ErrUnknownNode},
			{"pause", func(w *World) error { return w.Pause(9) }, ErrUnknownNode},
			{"resume", func(w *World) error { return w.Resume(9) }, ErrUnknownNode},
			{"post", func(w *World) error { return w.Post(9, 0, func() {}) }, ErrUnknownNode},
			{"post nil", func(w *World) error { return w.Post(1, 0, nil) }, ErrInvalidArgument},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCluster(t, 1, WorldConfig{}, 1)
			for _, s := range tt.setup {
				must(t, s(c.w))
			}
			for _, o := range tt.ops {
				err := o.do(c.w)
				if o.want == nil && err != nil || o.want != nil && !errors.Is(err, o.want) {
					t.Fatalf("%s: %v, want %v", o.name, err, o.want)
				}
			}
		})
	}
}

// loopNode is a test node whose every event appends a label to a log
// shared across incarnations.
type loopNode struct {
	e   env.Env
	inc uint64
	log *[]string
}

func (n *loopNode) Receive(_ env.NodeID, msg []byte) { n.add("msg:" + string(msg)) }

func (n *loopNode) add(s string) { *n.log = append(*n.log, s) }

func TestProcHeldEventsRunInArrivalOrder(t *testing.T) {
	w, err := NewWorld(1, WorldConfig{Net: LinkConfig{Latency: 30 * time.Millisecond}})
	must(t, err)
	defer w.Close()
	var log []string
	nodes := map[env.NodeID]*loopNode{}
	boot := func(id env.NodeID, e env.Env) (Receiver, error) {
		n := &loopNode{e: e, inc: w.Process(id).Incarnation(), log: &log}
		nodes[id] = n
		return n, nil
	}
	disk := DiskConfig{SyncMin: 25 * time.Millisecond, SyncMax: 25 * time.Millisecond}
	must(t, w.AddNode(1, boot, disk))
	must(t, w.AddNode(2, boot, disk))
	must(t, w.Start())
	n2 := nodes[2]
	f, err := n2.e.FS.Create("f")
	must(t, err)
	_, err = f.Write([]byte("x"))
	must(t, err)
	s := w.Sched()
	// Due while paused: timer 20ms, sync 25ms, message 30ms, post 40ms.
	n2.e.Clock.AfterFunc(20*time.Millisecond, func() { n2.add("timer") })
	f.Sync(func(err error) { n2.add("sync") })
	nodes[1].e.Net.Send(2, []byte("m"))
	must(t, w.Post(2, 40*time.Millisecond, func() { n2.add("post40") }))
	// Queued for 100ms before the Resume: held too.
	must(t, w.Post(2, 100*time.Millisecond, func() { n2.add("post100a") }))
	s.At(10*time.Millisecond, func() { must(t, w.Pause(2)) })
	s.At(100*time.Millisecond, func() { must(t, w.Resume(2)) })
	// Queued for 100ms after the Resume, so it arrives while the held
	// events drain: it must wait behind them.
	must(t, w.Post(2, 100*time.Millisecond, func() {
		n2.add("post100b")
		// An event the running one schedules for the same instant.
		n2.e.Clock.AfterFunc(0, func() { n2.add("timer0") })
	}))
	s.RunUntil(99 * time.Millisecond)
	if len(log) != 0 || w.Process(2).Held() != 4 {
		t.Fatalf("while paused: ran %v, held %d (want nothing run, 4 held)", log, w.Process(2).Held())
	}
	s.RunFor(time.Second)
	want := []string{"timer", "sync", "msg:m", "post40", "post100a", "post100b", "timer0"}
	if !slices.Equal(log, want) {
		t.Fatalf("order %v, want %v", log, want)
	}
}

func TestProcCrashDropsEverythingOfTheIncarnation(t *testing.T) {
	w, err := NewWorld(1, WorldConfig{Net: LinkConfig{Latency: 30 * time.Millisecond}})
	must(t, err)
	defer w.Close()
	var log []string
	nodes := map[env.NodeID]*loopNode{}
	boot := func(id env.NodeID, e env.Env) (Receiver, error) {
		n := &loopNode{e: e, inc: w.Process(id).Incarnation(), log: &log}
		nodes[id] = n
		return n, nil
	}
	disk := DiskConfig{SyncMin: 25 * time.Millisecond, SyncMax: 25 * time.Millisecond}
	must(t, w.AddNode(1, boot, disk))
	must(t, w.AddNode(2, boot, disk))
	must(t, w.Start())
	s := w.Sched()
	old := nodes[2]
	f, err := old.e.FS.Create("f")
	must(t, err)
	f.Sync(func(error) { old.add("sync-early") }) // completes at 25ms: held (paused at 10ms)
	old.e.Clock.AfterFunc(20*time.Millisecond, func() { old.add("timer-held") })
	nodes[1].e.Net.Send(2, []byte("held"))
	old.e.Clock.AfterFunc(200*time.Millisecond, func() { old.add("timer-late") })
	must(t, w.Post(2, 200*time.Millisecond, func() { old.add("post-late") }))
	s.At(10*time.Millisecond, func() { must(t, w.Pause(2)) })
	s.At(50*time.Millisecond, func() {
		f.Sync(func(error) { old.add("sync-late") }) // pending at the crash
		must(t, w.Crash(2))
	})
	s.At(60*time.Millisecond, func() { must(t, w.Restart(2)) })
	s.At(70*time.Millisecond, func() { nodes[2].add("new-up") })
	s.RunFor(time.Second)
	if want := []string{"new-up"}; !slices.Equal(log, want) {
		t.Fatalf("ran %v, want only %v", log, want)
	}
	if got := w.Net().Stats().DroppedBy[DropDown]; got != 1 {
		t.Fatalf("held message drops counted %d, want 1", got)
	}
	if nodes[2].inc != 2 || w.Process(2).Incarnation() != 2 || w.Process(2).Held() != 0 {
		t.Fatalf("incarnation %d/%d, held %d", nodes[2].inc, w.Process(2).Incarnation(), w.Process(2).Held())
	}
	if s.Len() != 0 {
		t.Fatalf("%d events left in the queue", s.Len())
	}
}

func TestProcBootErrors(t *testing.T) {
	errBoom := errors.New("boom")
	w, err := NewWorld(1, WorldConfig{})
	must(t, err)
	defer w.Close()
	var fail error
	nilRecv := false
	leaked := false
	boot := func(id env.NodeID, e env.Env) (Receiver, error) {
		if fail != nil || nilRecv {
			// A failed boot may have armed timers before failing: they
			// must die with it.
			e.Clock.AfterFunc(time.Millisecond, func() { leaked = true })
			if nilRecv {
				return nil, nil
			}
			return nil, fail
		}
		return &recNode{w: w}, nil
	}
	must(t, w.AddNode(1, boot, DiskConfig{}))
	must(t, w.Start())
	must(t, w.Crash(1))
	fail = errBoom
	if err := w.Restart(1); !errors.Is(err, errBoom) {
		t.Fatalf("Restart = %v, want boom", err)
	}
	p := w.Process(1)
	if p.State() != StateDown || !errors.Is(p.BootErr(), errBoom) {
		t.Fatalf("after failed boot: state %v, BootErr %v", p.State(), p.BootErr())
	}
	fail, nilRecv = nil, true
	if err := w.Restart(1); !errors.Is(err, ErrNilReceiver) {
		t.Fatalf("Restart with nil receiver = %v, want ErrNilReceiver", err)
	}
	nilRecv = false
	// RestartAfter boots later; a boot error is kept, not returned.
	fail = errBoom
	must(t, w.RestartAfter(1, 10*time.Millisecond))
	w.Sched().RunFor(20 * time.Millisecond)
	if !errors.Is(p.BootErr(), errBoom) || p.State() != StateDown {
		t.Fatalf("RestartAfter with failing boot: state %v, BootErr %v", p.State(), p.BootErr())
	}
	fail = nil
	must(t, w.RestartAfter(1, 10*time.Millisecond))
	w.Sched().RunFor(20 * time.Millisecond)
	if p.State() != StateUp || p.BootErr() != nil || p.Incarnation() != 5 {
		t.Fatalf("after RestartAfter: state %v, BootErr %v, incarnation %d", p.State(), p.BootErr(), p.Incarnation())
	}
	w.Sched().RunFor(time.Second)
	if leaked {
		t.Fatal("a timer of a failed boot fired")
	}
}

func TestProcRestartAfter(t *testing.T) {
	c := newTestCluster(t, 1, WorldConfig{}, 1)
	w := c.w
	s := w.Sched()
	s.At(10*time.Millisecond, func() {
		must(t, w.Crash(1))
		must(t, w.RestartAfter(1, 50*time.Millisecond))
	})
	s.RunUntil(59 * time.Millisecond)
	if st := w.Process(1).State(); st != StateDown {
		t.Fatalf("at 59ms state %v, want down", st)
	}
	s.RunUntil(60 * time.Millisecond)
	if st, inc := w.Process(1).State(), w.Process(1).Incarnation(); st != StateUp || inc != 2 {
		t.Fatalf("at 60ms state %v incarnation %d, want up 2", st, inc)
	}
	// A RestartAfter that finds the node up does nothing; an explicit
	// Restart cancels a pending one.
	must(t, w.RestartAfter(1, 10*time.Millisecond))
	s.RunFor(20 * time.Millisecond)
	must(t, w.Crash(1))
	must(t, w.RestartAfter(1, 10*time.Millisecond))
	must(t, w.Restart(1))
	must(t, w.Crash(1))
	s.RunFor(time.Second)
	if st, inc := w.Process(1).State(), w.Process(1).Incarnation(); st != StateDown || inc != 3 {
		t.Fatalf("state %v incarnation %d, want down 3 (cancelled RestartAfter must not boot)", st, inc)
	}
}

func TestProcPost(t *testing.T) {
	c := newTestCluster(t, 1, WorldConfig{}, 1)
	w := c.w
	var ranAt []time.Duration
	must(t, w.Post(1, 30*time.Millisecond, func() { ranAt = append(ranAt, w.Now()) }))
	must(t, w.Post(1, 0, func() { ranAt = append(ranAt, w.Now()) }))
	if len(ranAt) != 0 {
		t.Fatal("Post ran fn synchronously")
	}
	must(t, w.Post(1, 50*time.Millisecond, func() { t.Error("a post to a crashed incarnation ran") }))
	w.Sched().At(40*time.Millisecond, func() {
		must(t, w.Crash(1))
		must(t, w.Restart(1))
	})
	w.Sched().RunFor(time.Second)
	if !slices.Equal(ranAt, []time.Duration{0, 30 * time.Millisecond}) {
		t.Fatalf("posts ran at %v, want [0 30ms]", ranAt)
	}
}

func TestProcStateString(t *testing.T) {
	for st, want := range map[ProcState]string{StateDown: "down", StateUp: "up", StatePaused: "paused", 7: "ProcState(7)"} {
		if got := st.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", st, got, want)
		}
	}
}
