package sim

import (
	"errors"
	"fmt"
	"time"

	"walraft/core/env"
)

// Errors of process lifecycle calls; test with errors.Is.
var (
	// ErrUnknownNode: no node with that id was added.
	ErrUnknownNode = errors.New("sim: unknown node")
	// ErrNodeDown: the call needs a running (or paused) node.
	ErrNodeDown = errors.New("sim: node is down")
	// ErrNodeRunning: the call needs a node that is down (Restart).
	ErrNodeRunning = errors.New("sim: node is running")
	// ErrNodePaused: Pause of a node that is already paused.
	ErrNodePaused = errors.New("sim: node is paused")
	// ErrNodeNotPaused: Resume of a node that is not paused.
	ErrNodeNotPaused = errors.New("sim: node is not paused")
	// ErrNilReceiver: a BootFunc returned neither a Receiver nor an error.
	ErrNilReceiver = errors.New("sim: boot returned a nil Receiver")
)

// Receiver is a node's network entry point: the simulator calls Receive on
// the node's event loop for every message delivered to it. The node owns
// msg.
type Receiver interface {
	Receive(from env.NodeID, msg []byte)
}

// BootFunc builds one incarnation of a node from its environment: it
// recovers from e.FS, arms its timers on e.Clock, and returns its network
// entry point. An error leaves the node down.
type BootFunc func(id env.NodeID, e env.Env) (Receiver, error)

// ProcState is a process's lifecycle state.
type ProcState uint8

// Process states.
const (
	// StateDown: not running (never booted, crashed, or boot failed).
	StateDown ProcState = iota
	// StateUp: running; its events run as they arrive.
	StateUp
	// StatePaused: running but stopped (a GC pause, SIGSTOP, a VM
	// migration): its events are held in order until Resume, while its
	// clock keeps running.
	StatePaused
)

// String names the state.
func (s ProcState) String() string {
	switch s {
	case StateDown:
		return "down"
	case StateUp:
		return "up"
	case StatePaused:
		return "paused"
	}
	return fmt.Sprintf("ProcState(%d)", uint8(s))
}

// Process is one node's machine: its disk and clock (which survive
// crashes), its random stream, and the current incarnation of the node
// program with its event loop.
//
// Every event for the node (timer, disk completion, message delivery,
// posted work) carries the epoch it was created in. The epoch changes at
// every boot and every crash, so an event of an incarnation that has since
// crashed is recognised and dropped without having to find and cancel it.
type Process struct {
	w     *World
	id    env.NodeID
	boot  BootFunc
	disk  *Disk
	clock *NodeClock
	rng   *Rand

	state    ProcState
	epoch    uint64
	boots    uint64
	receiver Receiver
	env      env.Env
	bootErr  error

	// held are events that arrived while paused, or while earlier held
	// events were still draining after Resume; they run in arrival order.
	held    []procEvent
	drain   *Item // the pending drain step, if any
	restart *Item // the pending RestartAfter, if any

	// blocked: the incarnation's loop is stuck in a hung fsync
	// (Disk.HangSyncsUntil) until the unblock event: its events are held
	// as while paused. Independent of Pause: a paused, blocked process
	// runs again once it is both resumed and unblocked.
	blocked    bool
	blockTill  time.Duration
	unblock    *Item
	blockCount uint64 // how many times a hung sync blocked the loop

	// initial clock draws, for Params
	rate0   int64
	offset0 time.Duration
	diskCfg DiskConfig
}

// procEvent is an event for a process's event loop: run runs it; drop runs
// instead when the event is discarded because its incarnation is gone (the
// network counts dropped messages this way). The simulator's own hot events
// (message deliveries, timers, disk completions, posts) implement it on the
// object they already have, so dispatching them allocates nothing.
type procEvent interface {
	run()
	drop()
}

// funcEvent is a procEvent made of funcs; onDrop may be nil.
type funcEvent struct {
	fn     func()
	onDrop func()
}

func (e *funcEvent) run() { e.fn() }

func (e *funcEvent) drop() {
	if e.onDrop != nil {
		e.onDrop()
	}
}

// ID returns the node id.
func (p *Process) ID() env.NodeID { return p.id }

// State returns the lifecycle state.
func (p *Process) State() ProcState { return p.state }

// Incarnation returns how many times the node has been booted (the current
// incarnation's number while it is up).
func (p *Process) Incarnation() uint64 { return p.boots }

// Receiver returns the current incarnation's network entry point (nil while
// down). The harness uses it to reach the node object.
func (p *Process) Receiver() Receiver { return p.receiver }

// Disk returns the node's disk.
func (p *Process) Disk() *Disk { return p.disk }

// Clock returns the node's clock.
func (p *Process) Clock() *NodeClock { return p.clock }

// BootErr returns the error of the last boot (nil if it succeeded).
func (p *Process) BootErr() error { return p.bootErr }

// Held returns how many events wait for the process to resume.
func (p *Process) Held() int { return len(p.held) }

// live reports whether epoch is the running incarnation's.
func (p *Process) live(epoch uint64) bool {
	return epoch == p.epoch && p.state != StateDown
}

// dispatch is the process's event loop: it runs fn now, holds it while the
// process is paused (or older held events are still draining), or drops it
// when its incarnation is gone.
func (p *Process) dispatch(epoch uint64, fn, onDrop func()) {
	if !p.live(epoch) {
		if onDrop != nil {
			onDrop()
		}
		return
	}
	if p.state == StatePaused || p.blocked || len(p.held) > 0 {
		p.held = append(p.held, &funcEvent{fn: fn, onDrop: onDrop})
		return
	}
	fn()
}

// dispatchEvent is dispatch for an event object.
func (p *Process) dispatchEvent(epoch uint64, ev procEvent) {
	if !p.live(epoch) {
		ev.drop()
		return
	}
	if p.state == StatePaused || p.blocked || len(p.held) > 0 {
		p.held = append(p.held, ev)
		return
	}
	ev.run()
}

// drainStep runs the oldest held event, one per scheduler event, so each
// keeps the one-callback-per-event rule and a Pause or Crash from inside an
// event stops the drain.
func (p *Process) drainStep() {
	p.drain = nil
	if p.state != StateUp || p.blocked || len(p.held) == 0 {
		return
	}
	h := p.held[0]
	p.held[0] = nil
	p.held = p.held[1:]
	if len(p.held) == 0 {
		p.held = nil
	} else {
		// Before running h: anything h schedules for this instant comes
		// after the older held events.
		p.drain = p.w.sched.After(0, p.drainStep)
	}
	h.run()
}

// newEnv builds the environment of the incarnation with the current epoch.
func (p *Process) newEnv() env.Env {
	epoch := p.epoch
	return env.Env{
		Clock:  &clockHandle{c: p.clock, p: p, epoch: epoch},
		FS:     p.disk.procFS(p, epoch),
		Net:    &netHandle{n: p.w.net, p: p, epoch: epoch},
		Rand:   p.rng,
		Tracer: &nodeTracer{p: p, epoch: epoch},
	}
}

// bootNow boots a fresh incarnation of a down process.
func (p *Process) bootNow() error {
	w := p.w
	p.epoch++
	p.boots++
	p.state = StateUp
	p.bootErr = nil
	e := p.newEnv()
	w.event(p.id, "proc.boot", int64(p.boots), 0, 0, 0)
	epoch := p.epoch
	r, err := p.boot(p.id, e)
	if p.epoch != epoch {
		// The incarnation was crashed from inside its own boot (a crash
		// point during recovery, see DiskEventHook): Crash already took
		// it down and dropped its events; whatever boot returned belongs
		// to a process that no longer exists.
		return nil
	}
	if err == nil && r == nil {
		err = ErrNilReceiver
	}
	if err != nil {
		// The failed incarnation's timers die and anything else it
		// scheduled is dropped (new epoch). Its disk is not crashed: a
		// process exit keeps the OS page cache.
		p.epoch++
		p.state = StateDown
		p.clock.cancelTimers()
		p.clearBlock()
		p.bootErr = fmt.Errorf("sim: boot node %d (incarnation %d): %w", p.id, p.boots, err)
		w.event(p.id, "proc.boot_error", int64(p.boots), 0, 0, 0)
		return p.bootErr
	}
	p.receiver = r
	p.env = e
	return nil
}

// Crash kills node id as a power loss would: its memory is gone (the node
// object is forgotten), its disk loses unsynced data (Disk.Crash), and every
// pending event of the incarnation (timers, disk completions, message
// deliveries, posted work, held events) is dropped. The node stays down
// until Restart. Crashing a paused node is allowed.
func (w *World) Crash(id env.NodeID) error { return w.stop(id, false) }

// Kill kills node id's process while its machine stays up (kill -9, a
// panic, a supervisor restarting a process that exited): as Crash, except
// that the disk keeps its page cache (Disk.ProcessExit): the next
// incarnation reads the unsynced writes, and syncs in flight still
// complete. The node stays down until Restart. Killing a paused node is
// allowed.
func (w *World) Kill(id env.NodeID) error { return w.stop(id, true) }

func (w *World) stop(id env.NodeID, kill bool) error {
	p, err := w.proc(id)
	if err != nil {
		return err
	}
	verb, kind := "crash", "proc.crash"
	if kill {
		verb, kind = "kill", "proc.kill"
	}
	if p.state == StateDown {
		return fmt.Errorf("sim: %s node %d: %w", verb, id, ErrNodeDown)
	}
	w.event(id, kind, int64(p.boots), int64(len(p.held)), 0, 0)
	p.epoch++
	p.state = StateDown
	p.receiver = nil
	p.env = env.Env{}
	p.clock.cancelTimers()
	if p.drain != nil {
		p.drain.Cancel(w.sched)
		p.drain = nil
	}
	p.clearBlock()
	held := p.held
	p.held = nil
	for _, h := range held {
		h.drop()
	}
	if kill {
		p.disk.ProcessExit()
	} else {
		p.disk.Crash()
	}
	return nil
}

// Restart boots a fresh incarnation of a down node now, with a fresh env
// (clock handle, FS handle on the surviving disk, network handle, tracer;
// the node's random stream continues). It returns the boot error, if any,
// and cancels a pending RestartAfter.
func (w *World) Restart(id env.NodeID) error {
	p, err := w.proc(id)
	if err != nil {
		return err
	}
	if p.state != StateDown {
		return fmt.Errorf("sim: restart node %d (%s): %w", id, p.state, ErrNodeRunning)
	}
	if p.restart != nil {
		p.restart.Cancel(w.sched)
		p.restart = nil
	}
	return p.bootNow()
}

// RestartAfter restarts node id after global delay d, replacing an earlier
// pending RestartAfter. If the node is not down by then, nothing happens
// (traced as proc.restart_skip). A boot error is traced and kept in
// Process.BootErr.
func (w *World) RestartAfter(id env.NodeID, d time.Duration) error {
	p, err := w.proc(id)
	if err != nil {
		return err
	}
	if p.restart != nil {
		p.restart.Cancel(w.sched)
	}
	p.restart = w.sched.After(d, func() {
		p.restart = nil
		if p.state != StateDown {
			w.event(id, "proc.restart_skip", int64(p.boots), 0, 0, 0)
			return
		}
		_ = p.bootNow() // kept in p.bootErr and traced
	})
	return nil
}

// Pause stops node id: from now on every event for it is held, in order,
// until Resume. Its clock keeps running, so its timers are late when it
// resumes, as after a long GC pause.
func (w *World) Pause(id env.NodeID) error {
	p, err := w.proc(id)
	if err != nil {
		return err
	}
	switch p.state {
	case StateDown:
		return fmt.Errorf("sim: pause node %d: %w", id, ErrNodeDown)
	case StatePaused:
		return fmt.Errorf("sim: pause node %d: %w", id, ErrNodePaused)
	}
	p.state = StatePaused
	if p.drain != nil {
		p.drain.Cancel(w.sched)
		p.drain = nil
	}
	w.event(id, "proc.pause", int64(p.boots), 0, 0, 0)
	return nil
}

// Resume restarts a paused node: its held events run, in arrival order, one
// per scheduler event starting at the current instant, before any event
// that arrives later.
func (w *World) Resume(id env.NodeID) error {
	p, err := w.proc(id)
	if err != nil {
		return err
	}
	switch p.state {
	case StateDown:
		return fmt.Errorf("sim: resume node %d: %w", id, ErrNodeDown)
	case StateUp:
		return fmt.Errorf("sim: resume node %d: %w", id, ErrNodeNotPaused)
	}
	p.state = StateUp
	w.event(id, "proc.resume", int64(p.boots), int64(len(p.held)), 0, 0)
	if len(p.held) > 0 && p.drain == nil && !p.blocked {
		p.drain = w.sched.After(0, p.drainStep)
	}
	return nil
}

// Blocked reports whether the process's loop is blocked in a hung sync.
func (p *Process) Blocked() bool { return p.blocked }

// Blocks returns how many times a hung sync blocked the process's loop.
func (p *Process) Blocks() uint64 { return p.blockCount }

// blockUntil blocks incarnation epoch's event loop until global time t
// (extending a block already in force): the event running now finishes,
// as the code before a blocking call has run, and every later event is
// held, in arrival order, until t. The clock runs on, so timers are late
// when the loop resumes. Traced as proc.block (A=incarnation, B=until in
// ns of global time) and proc.unblock (A=incarnation, B=events held).
func (p *Process) blockUntil(epoch uint64, t time.Duration) {
	if !p.live(epoch) || t <= p.w.sched.Now() || (p.blocked && t <= p.blockTill) {
		return
	}
	if p.unblock != nil {
		p.unblock.Cancel(p.w.sched)
	}
	if !p.blocked {
		p.blockCount++
		if p.drain != nil {
			p.drain.Cancel(p.w.sched)
			p.drain = nil
		}
	}
	p.blocked, p.blockTill = true, t
	p.w.event(p.id, "proc.block", int64(p.boots), int64(t), 0, 0)
	p.unblock = p.w.sched.At(t, p.endBlock)
}

// endBlock is the unblock event: the hung sync returned.
func (p *Process) endBlock() {
	p.unblock = nil
	p.blocked = false
	p.w.event(p.id, "proc.unblock", int64(p.boots), int64(len(p.held)), 0, 0)
	if p.state == StateUp && len(p.held) > 0 && p.drain == nil {
		p.drain = p.w.sched.After(0, p.drainStep)
	}
}

// clearBlock forgets a block: the incarnation is gone.
func (p *Process) clearBlock() {
	if p.unblock != nil {
		p.unblock.Cancel(p.w.sched)
		p.unblock = nil
	}
	p.blocked = false
}

// Post runs fn on node id's event loop after global delay d (the harness
// uses it to deliver client requests). fn belongs to the current
// incarnation: it is dropped if the node crashes first, held while the node
// is paused. Posting to a down node fails with ErrNodeDown.
func (w *World) Post(id env.NodeID, d time.Duration, fn func()) error {
	if fn == nil {
		return fmt.Errorf("sim: post to node %d: nil func: %w", id, ErrInvalidArgument)
	}
	p, err := w.proc(id)
	if err != nil {
		return err
	}
	if p.state == StateDown {
		return fmt.Errorf("sim: post to node %d: %w", id, ErrNodeDown)
	}
	e := &postEvent{p: p, epoch: p.epoch, fn: fn}
	w.sched.schedule(&e.item, w.sched.Now()+max(d, 0), e)
	return nil
}

// postEvent is work posted with World.Post.
type postEvent struct {
	item  Item
	p     *Process
	epoch uint64
	fn    func()
}

func (e *postEvent) fire() { e.p.dispatchEvent(e.epoch, e) }
func (e *postEvent) run()  { e.fn() }
func (e *postEvent) drop() {}

// SetClockRate changes node id's clock rate (parts per million of global
// time, in [MinRatePPM, MaxRatePPM]) from now on. The clock's reading stays
// continuous, so it never goes backward, and every pending timer moves to
// the global instant at which the clock now reaches its deadline.
func (w *World) SetClockRate(id env.NodeID, ppm int64) error {
	p, err := w.proc(id)
	if err != nil {
		return err
	}
	if err := p.clock.setRatePPM(ppm); err != nil {
		return fmt.Errorf("sim: node %d: %w", id, err)
	}
	w.event(id, "clock.rate", ppm, 0, 0, 0)
	return nil
}

// StepClock steps node id's clock by d (NodeClock.Step: forward jumps,
// backward holds the reading still for -d). Traced as clock.step (A=d in
// ns).
func (w *World) StepClock(id env.NodeID, d time.Duration) error {
	p, err := w.proc(id)
	if err != nil {
		return err
	}
	if err := p.clock.Step(d); err != nil {
		return fmt.Errorf("sim: node %d: %w", id, err)
	}
	w.event(id, "clock.step", int64(d), 0, 0, 0)
	return nil
}

// proc looks a process up.
func (w *World) proc(id env.NodeID) (*Process, error) {
	p, ok := w.procs[id]
	if !ok {
		return nil, fmt.Errorf("sim: node %d: %w", id, ErrUnknownNode)
	}
	return p, nil
}
