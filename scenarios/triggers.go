package scenarios

// Triggered faults: a fault may fire on an event instead of at its time.
// Its At is then the time the trigger is armed; from then on the harness
// watches the trace (harness.onTrace sees every sim.TraceEvent) for the
// trigger's event, and on the Nth match applies the fault after Delay. A
// trigger fires at most once; a trigger that never fires leaves its fault
// unapplied. Dangerous moments are short (right after a vote grant, between
// a write and its fsync, during a rotation or a truncation, just after a
// restart), and time-scheduled faults almost never land in them.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"walraft/core/env"
	"walraft/core/node"
	"walraft/sim"
)

// TriggerEvent names an event a trigger waits for.
type TriggerEvent string

// The events a trigger can wait for, and the trace event each is read from.
const (
	// OnVoteGrant: the node sends a (real) vote grant ("raft.vote").
	OnVoteGrant TriggerEvent = "vote-grant"
	// OnTermChange: the node's Raft term changes ("raft.term").
	OnTermChange TriggerEvent = "term-change"
	// OnBecomeLeader: the node becomes leader ("raft.role", A=leader).
	OnBecomeLeader TriggerEvent = "become-leader"
	// OnFsync: the node issues an fsync of a file ("fs.sync"); with Nth =
	// k, its k-th fsync after the trigger is armed.
	OnFsync TriggerEvent = "fsync"
	// OnWALWrite: the node wrote a WAL batch whose fsync is now pending
	// ("wal.batch").
	OnWALWrite TriggerEvent = "wal-write"
	// OnSegment: the node creates a segment file of its WAL or Raft log,
	// a rotation once it runs ("fs.create" of a ".seg" file).
	OnSegment TriggerEvent = "segment"
	// OnTruncate: the node starts truncating a WAL suffix ("wal.trunc").
	OnTruncate TriggerEvent = "truncate"
	// OnRestart: the node started (booted and recovered) after a crash
	// ("node.start" after the first boot).
	OnRestart TriggerEvent = "restart"
	// OnFsyncError: an fsync of the node's failed ("fs.sync.err").
	OnFsyncError TriggerEvent = "fsync-error"
	// OnBoot: the node's process boots again after a crash or kill
	// ("proc.boot" of an incarnation after the first), before it opens
	// its logs: a fault fired here meets its recovery (a log's recovery
	// sync stalled, say), where OnRestart fires once it has started. A
	// failed-sync, -write or -read fault or ENOSPC with no delay applies
	// in the boot event itself, so its budget meets the recovery's first
	// operations (bootDiskFault).
	OnBoot TriggerEvent = "boot"
)

// triggerEvents lists every trigger event, simplest first (rapid shrinks
// toward the start).
var triggerEvents = []TriggerEvent{OnBecomeLeader, OnTermChange, OnVoteGrant, OnRestart, OnWALWrite, OnFsync,
	OnSegment, OnTruncate, OnFsyncError, OnBoot}

// traceKinds maps each trigger event to the trace event kind it reads.
var traceKinds = map[TriggerEvent]string{
	OnVoteGrant: "raft.vote", OnTermChange: "raft.term", OnBecomeLeader: "raft.role", OnFsync: "fs.sync",
	OnWALWrite: "wal.batch", OnSegment: "fs.create", OnTruncate: "wal.trunc", OnRestart: "node.start",
	OnFsyncError: "fs.sync.err", OnBoot: "proc.boot",
}

// Trigger makes a fault fire on an event. The zero Node and Role match any
// node.
type Trigger struct {
	// On is the event waited for.
	On TriggerEvent `json:"on"`
	// Node, if non-zero, is the only node whose events match.
	Node uint64 `json:"node,omitempty"`
	// Role, if set ("leader" or "follower"), matches only events of a node
	// that has that role when the event happens.
	Role Target `json:"role,omitempty"`
	// Nth fires on the Nth matching event after arming (0 and 1: the first).
	Nth int `json:"nth,omitempty"`
	// Delay is the simulated time from the event to the fault (0: in the
	// next scheduler event, never inside the node's own call).
	Delay time.Duration `json:"delay,omitempty"`
}

// String renders the trigger stably, e.g. "on 3rd fsync of n2 +5ms".
func (t Trigger) String() string {
	var b strings.Builder
	b.WriteString("on ")
	if t.Nth > 1 {
		fmt.Fprintf(&b, "#%d ", t.Nth)
	}
	b.WriteString(string(t.On))
	if t.Node != 0 {
		fmt.Fprintf(&b, " of n%d", t.Node)
	}
	if t.Role != "" {
		fmt.Fprintf(&b, " of a %s", t.Role)
	}
	if t.Delay != 0 {
		fmt.Fprintf(&b, " +%v", t.Delay)
	}
	return b.String()
}

// Validate checks the trigger for a cluster of nodes 1..n.
func (t Trigger) Validate(n int) error {
	switch {
	case !slices.Contains(triggerEvents, t.On):
		return fmt.Errorf("trigger %s: unknown event %q", t, t.On)
	case t.Node > uint64(n):
		return fmt.Errorf("trigger %s: node %d not in 1..%d", t, t.Node, n)
	case t.Role != "" && t.Role != TargetLeader && t.Role != TargetFollower:
		return fmt.Errorf("trigger %s: role %q (want leader or follower)", t, t.Role)
	case t.Nth < 0 || t.Nth > 1_000_000 || t.Delay < 0 || t.Delay > maxCasePhase:
		return fmt.Errorf("trigger %s: count or delay out of range", t)
	}
	return nil
}

// armed is a trigger waiting for its event.
type armed struct {
	f    Fault
	seen int
}

// arm starts watching for f's trigger.
func (h *harness) arm(f Fault) {
	h.armed = append(h.armed, &armed{f: f})
	h.probe("trigger-armed")
}

// watch is harness.onTrace's hook: it tracks the last voter and the
// leaders, and matches the event against the armed triggers, in arming
// order.
func (h *harness) watch(e sim.TraceEvent) {
	if e.Kind == "raft.vote" {
		h.lastVoter = uint64(e.Node)
	}
	if e.Kind == "raft.role" && e.A == int64(node.RoleLeader) {
		h.leaders = append(h.leaders, leaderTerm{uint64(e.Node), uint64(e.C)})
	}
	if e.Kind == "node.start" {
		h.boots[uint64(e.Node)]++
	}
	if e.Kind == "fs.create" && segmentRotated(e.Text) {
		h.probe("segment-rotated")
	}
	if len(h.armed) == 0 || h.inLive {
		return
	}
	var now []Fault // fired inside this event, after the loop
	defer func() {
		for _, f := range now {
			h.fire(f, uint64(e.Node))
		}
	}()
	for i := 0; i < len(h.armed); i++ {
		a := h.armed[i]
		if !h.matches(a.f.Trigger, e) {
			continue
		}
		a.seen++
		if a.seen < max(a.f.Trigger.Nth, 1) {
			continue
		}
		h.armed = slices.Delete(h.armed, i, i+1)
		i--
		f, ev := a.f, uint64(e.Node)
		h.w.Emit(e.Node, env.Event{Kind: "fault.trigger", A: int64(ev), B: int64(f.Trigger.Delay), Text: string(f.Kind) + " " + f.Trigger.String()})
		h.probe("trigger-fired")
		h.probe("trigger-" + string(f.Trigger.On))
		if f.Trigger.On == OnBoot && f.Trigger.Delay == 0 && bootDiskFault(f.Kind) {
			// Before the booting node opens its logs (proc.boot comes
			// first): a sync fault must meet the recovery syncs, whose
			// results the disk draws as they are issued.
			now = append(now, f)
			continue
		}
		h.s.After(f.Trigger.Delay, func() { h.fire(f, ev) })
	}
}

// bootDiskFault reports whether a boot trigger without delay applies kind
// inside the boot event itself: the disk's fault budgets (failed syncs,
// writes and reads), which the disk draws as an operation is issued. A
// stall applies to syncs in flight too, and keeps firing in an event of
// its own, as every other fault does.
func bootDiskFault(kind FaultKind) bool {
	switch kind {
	case FaultSyncEIO, FaultWriteEIO, FaultReadEIO, FaultNoSpace:
		return true
	}
	return false
}

// matches reports whether trace event e is t's event.
func (h *harness) matches(t *Trigger, e sim.TraceEvent) bool {
	if e.Node == 0 || e.Kind != traceKinds[t.On] || (t.Node != 0 && uint64(e.Node) != t.Node) {
		return false
	}
	switch t.On {
	case OnBecomeLeader:
		if e.A != int64(node.RoleLeader) {
			return false
		}
	case OnSegment:
		if !strings.HasSuffix(e.Text, ".seg") {
			return false
		}
	case OnRestart:
		if h.boots[uint64(e.Node)] < 2 {
			return false
		}
	case OnBoot:
		if e.A < 2 { // proc.boot A=incarnation
			return false
		}
	}
	if t.Role != "" {
		n := h.nodes[e.Node-1]
		if n == nil {
			return false
		}
		r := n.Status().Role
		leads := r == node.RoleLeader || r == node.RoleStandalone
		if leads != (t.Role == TargetLeader) {
			return false
		}
	}
	return true
}

// fire applies f now: its target resolved (eventNode is the node whose
// event fired its trigger, 0 for a timed fault).
func (h *harness) fire(f Fault, eventNode uint64) {
	if h.inLive {
		return
	}
	for _, g := range h.aim(f, eventNode) {
		h.apply(g)
	}
}

// segmentRotated reports whether a created file is a segment after a log's
// first (reclog names segments <dir>/<20-digit id>.seg, the first id 1).
func segmentRotated(name string) bool {
	base, ok := strings.CutSuffix(name, ".seg")
	if !ok || len(base) < 20 {
		return false
	}
	id, err := strconv.ParseUint(base[len(base)-20:], 10, 64)
	return err == nil && id > 1
}

// traceFS wraps a node's FS so that the disk events triggers need are in
// the trace: "fs.sync" (A = the incarnation's count of fsyncs issued),
// "fs.sync.err" (A = that fsync's number) and "fs.create" (Text = the file
// name). It changes nothing else; the events go through the node's own
// tracer, so a crashed incarnation's late completions leave no event.
type traceFS struct {
	env.FS
	tr    env.Tracer
	syncs int64
}

func (fs *traceFS) Create(name string) (env.File, error) {
	f, err := fs.FS.Create(name)
	if err != nil {
		return f, err
	}
	fs.tr.Trace(env.Event{Kind: "fs.create", Text: name})
	return &traceFile{File: f, fs: fs}, nil
}

func (fs *traceFS) Open(name string) (env.File, error) {
	f, err := fs.FS.Open(name)
	if err != nil {
		return f, err
	}
	return &traceFile{File: f, fs: fs}, nil
}

type traceFile struct {
	env.File
	fs *traceFS
}

func (f *traceFile) Sync(done func(error)) {
	f.fs.syncs++
	k := f.fs.syncs
	f.fs.tr.Trace(env.Event{Kind: "fs.sync", A: k})
	f.File.Sync(func(err error) {
		if err != nil {
			f.fs.tr.Trace(env.Event{Kind: "fs.sync.err", A: k})
		}
		done(err)
	})
}

// dropTriggers is a minimize pass: it tries each triggered fault as a
// plain timed fault at its arming time (a fault aimed at the trigger's
// event node is aimed at the trigger's fixed node instead, and kept
// triggered when the trigger names none).
func (m *minimizer) dropTriggers() {
	for i := 0; i < len(m.best.Schedule) && !m.exhausted(); i++ {
		f := m.best.Schedule[i]
		if f.Trigger == nil || (f.Target == TargetEventNode && f.Trigger.Node == 0) {
			continue
		}
		cand := cloneSchedule(m.best.Schedule)
		if f.Target == TargetEventNode {
			cand[i].Target, cand[i].Node = "", f.Trigger.Node
		}
		cand[i].Trigger = nil
		if cand.Validate(m.best.Options.Nodes) != nil {
			continue
		}
		m.try(fmt.Sprintf("untriggered %s", f), m.best.Options, cand)
	}
}
