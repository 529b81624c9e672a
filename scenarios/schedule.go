package scenarios

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// FaultKind names a fault event.
type FaultKind string

// The fault kinds a schedule can hold. Each is applied by the harness at its
// time; "window" faults (stall, drop, dup, pause) end by themselves after
// Dur.
const (
	// FaultCrash crashes Node (memory and unsynced data lost, a clean crash)
	// and restarts it after Dur.
	FaultCrash FaultKind = "crash"
	// FaultKill kills Node's process with its machine up (kill -9, a
	// panic): memory lost, the page cache kept (sim.World.Kill), and
	// restarts it after Dur. Generated schedules do not draw it: a drawn
	// crash is a kill with Options.KillProb instead.
	FaultKill FaultKind = "kill"
	// FaultTornCrash is a crash whose disk keeps a seeded subset of the
	// unsynced blocks (torn, out-of-order persistence), restarted after Dur.
	FaultTornCrash FaultKind = "torn-crash"
	// FaultCrashAll crashes every node at once (each loses its unsynced
	// data), restarting each after Dur.
	FaultCrashAll FaultKind = "crash-all"
	// FaultPause pauses Node's process for Dur (its clock runs on).
	FaultPause FaultKind = "pause"
	// FaultPartition splits the nodes into Groups (symmetric).
	FaultPartition FaultKind = "partition"
	// FaultIsolate cuts Node off from every other node.
	FaultIsolate FaultKind = "isolate"
	// FaultOneWay cuts the link from Node to Peer only.
	FaultOneWay FaultKind = "one-way"
	// FaultBridge splits the nodes into Groups[0] and Groups[1] that reach
	// each other only through Node, which talks to both.
	FaultBridge FaultKind = "bridge"
	// FaultHeal removes every partition and cut.
	FaultHeal FaultKind = "heal"
	// FaultStall stalls Node's fsyncs for Dur.
	FaultStall FaultKind = "stall"
	// FaultStallLog stalls the fsyncs of one of Node's logs for Dur, the
	// one Log names (CorruptRaft, the default, or CorruptWAL: every WAL),
	// while its other logs' fsyncs go on (sim.Disk.StallPrefixUntil): a
	// stuck device queue or a long writeback behind one log. A node's
	// hung-disk check must time the oldest outstanding sync, and a node
	// must not start before every log's recovery sync.
	FaultStallLog FaultKind = "stall-log"
	// FaultSyncEIO makes Node's next Count fsyncs fail with EIO (with a
	// Log, only its syncs: sim.Disk.FailNextSyncsUnder).
	FaultSyncEIO FaultKind = "sync-eio"
	// FaultWriteEIO makes Node's next Count writes fail with EIO (with a
	// Log, only its writes).
	FaultWriteEIO FaultKind = "write-eio"
	// FaultDrop drops messages with probability Prob for Dur.
	FaultDrop FaultKind = "drop"
	// FaultDup duplicates messages with probability Prob for Dur.
	FaultDup FaultKind = "dup"
	// FaultSkew sets Node's clock rate to Rate.
	FaultSkew FaultKind = "skew"
	// FaultCorrupt flips bytes of Node's synced data (latent corruption)
	// in the log Target names: "raft" (the Raft log) or "wal" (a partition
	// WAL); "" is either. The harness picks a spot whose durability the
	// log's own format proves (see corrupt.go). Corruption on a minority of
	// the nodes is inside the fault budget: the corrupted node must refuse
	// to open (it is then down by design) or repair itself. On a majority
	// it is beyond the budget (the run is labelled, not counted).
	FaultCorrupt FaultKind = "corrupt"
	// FaultNoSpace makes Node's next Count writes fail with ENOSPC
	// (env.ErrNoSpace), each after a seeded prefix.
	FaultNoSpace FaultKind = "enospc"
	// FaultReadEIO crashes Node (clean) and restarts it after Dur with its
	// next Count reads failing with EIO: recovery must fail cleanly (the
	// node is restarted again, as after a failed boot) and never take a
	// read error for the end of its data.
	FaultReadEIO FaultKind = "read-eio"
	// FaultHang hangs Node's disk for Dur: syncs complete no earlier than
	// its end, and a sync issued meanwhile blocks the node's event loop (no
	// ticks, no messages, no requests) until it completes.
	FaultHang FaultKind = "hang"
	// FaultClockStep steps Node's clock by Step (negative: back), as the
	// node's monotonic clock can move (sim.NodeClock.Step).
	FaultClockStep FaultKind = "clock-step"
	// FaultLink sets the directed link Node->Peer to Latency, Jitter, loss
	// Prob and duplication Dup for Dur.
	FaultLink FaultKind = "link"
	// FaultTransferLeader asks the current leader to hand leadership to
	// Node (etcd raft's leadership transfer); a no-op without a leader or
	// when Node leads already.
	FaultTransferLeader FaultKind = "transfer-leader"
	// FaultCrashAtDiskEvent crashes Node right at its disk event number
	// Count (1-based over the run, as a crash-point sweep's dry run counts
	// them: crashpoint.go), a clean crash, and restarts it after Dur. It is
	// armed from the start of the run; it fires only if that event happens
	// at or after At and in the safety phase.
	FaultCrashAtDiskEvent FaultKind = "crash-at-disk-event"
	// FaultTornCrashAtDiskEvent is FaultCrashAtDiskEvent with a torn
	// crash: the disk keeps each unsynced block with probability Prob
	// (0 means 0.5).
	FaultTornCrashAtDiskEvent FaultKind = "torn-crash-at-disk-event"
	// FaultKillAtDiskEvent is FaultCrashAtDiskEvent with a process kill
	// instead of a power loss (FaultKill): the page cache and the syncs in
	// flight survive.
	FaultKillAtDiskEvent FaultKind = "kill-at-disk-event"
)

// maxClockStep bounds a clock-step fault: a jump beyond a minute is not a
// step a clock-discipline daemon or a VM resume makes.
const maxClockStep = time.Minute

// takesLog reports whether f's kind takes f.Log as it is.
func (f Fault) takesLog() bool {
	switch f.Kind {
	case FaultCorrupt, FaultWriteEIO:
		return f.Log == CorruptRaft || f.Log == CorruptWAL
	case FaultStallLog, FaultSyncEIO:
		return f.Log == CorruptRaft || f.Log == CorruptWAL || f.Log == StallDir
	}
	return false
}

// Targets of FaultCorrupt, and of FaultStallLog, which takes StallDir too.
const (
	CorruptRaft = "raft"
	CorruptWAL  = "wal"
	// StallDir is FaultStallLog's directory syncs: every SyncDir of the
	// node stalls while its file syncs go on (sim.Disk.StallDirSyncsUntil).
	StallDir = "dir"
)

// faultKinds lists every kind, for validation and generators.
var faultKinds = []FaultKind{FaultCrash, FaultTornCrash, FaultCrashAll, FaultPause, FaultPartition, FaultIsolate,
	FaultOneWay, FaultBridge, FaultHeal, FaultStall, FaultSyncEIO, FaultWriteEIO, FaultDrop, FaultDup, FaultSkew, FaultCorrupt,
	FaultNoSpace, FaultReadEIO, FaultHang, FaultClockStep, FaultLink, FaultTransferLeader,
	FaultCrashAtDiskEvent, FaultTornCrashAtDiskEvent, FaultKill, FaultKillAtDiskEvent, FaultStallLog}

// Fault is one fault event, timed or triggered. Fields that a kind does not
// use are zero (and omitted from JSON). Target, when set, names whom the
// fault hits instead of Node (or Groups), resolved when it fires (see
// targets.go); Trigger, when set, makes At the time the fault is armed and
// the fault fire on an event (see triggers.go).
type Fault struct {
	At     time.Duration `json:"at"`
	Kind   FaultKind     `json:"kind"`
	Node   uint64        `json:"node,omitempty"`
	Peer   uint64        `json:"peer,omitempty"`
	Groups [][]uint64    `json:"groups,omitempty"`
	Dur    time.Duration `json:"dur,omitempty"`
	Prob   float64       `json:"prob,omitempty"`
	Rate   float64       `json:"rate,omitempty"`
	Count  int           `json:"count,omitempty"`
	// Step is a clock-step's jump (negative: backward).
	Step time.Duration `json:"step,omitempty"`
	// Latency, Jitter and Dup (with Prob as the loss) are a link fault's
	// quality.
	Latency time.Duration `json:"latency,omitempty"`
	Jitter  time.Duration `json:"jitter,omitempty"`
	Dup     float64       `json:"dup,omitempty"`
	Target  Target        `json:"target,omitempty"`
	// Trigger is a pointer so that a timed fault's JSON has no trigger
	// field at all (case files written before triggers existed decode).
	Trigger *Trigger `json:"trigger,omitempty"`
	// Log names the log a FaultCorrupt damages, a FaultStallLog stalls or
	// a FaultSyncEIO or FaultWriteEIO fails: CorruptRaft or CorruptWAL
	// (StallDir too for FaultStallLog and FaultSyncEIO).
	Log string `json:"log,omitempty"`
}

// String renders the fault on one line, stably.
func (f Fault) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%9.3fs %s", f.At.Seconds(), f.Kind)
	if f.Node != 0 {
		fmt.Fprintf(&b, " n%d", f.Node)
	}
	if f.Peer != 0 {
		fmt.Fprintf(&b, "->n%d", f.Peer)
	}
	if len(f.Groups) > 0 {
		fmt.Fprintf(&b, " %v", f.Groups)
	}
	if f.Dur != 0 {
		fmt.Fprintf(&b, " for %v", f.Dur)
	}
	if f.Prob != 0 {
		fmt.Fprintf(&b, " p=%.3f", f.Prob)
	}
	if f.Rate != 0 {
		fmt.Fprintf(&b, " rate=%.3f", f.Rate)
	}
	if f.Count != 0 {
		fmt.Fprintf(&b, " x%d", f.Count)
	}
	if f.Step != 0 {
		fmt.Fprintf(&b, " step=%v", f.Step)
	}
	if f.Latency != 0 || f.Jitter != 0 {
		fmt.Fprintf(&b, " latency=%v+%v", f.Latency, f.Jitter)
	}
	if f.Dup != 0 {
		fmt.Fprintf(&b, " dup=%.3f", f.Dup)
	}
	if f.Target != "" {
		fmt.Fprintf(&b, " @%s", f.Target)
	}
	if f.Trigger != nil {
		fmt.Fprintf(&b, " [%s]", f.Trigger)
	}
	if f.Log != "" {
		fmt.Fprintf(&b, " log=%s", f.Log)
	}
	return b.String()
}

// BeyondBudget reports whether the fault is outside what the design promises
// to survive (DESIGN.md section 5).
func (f Fault) BeyondBudget() bool { return f.Kind == FaultCorrupt }

// Validate checks the fault against a cluster of nodes 1..n.
func (f Fault) Validate(n int) error {
	known := false
	for _, k := range faultKinds {
		known = known || k == f.Kind
	}
	if !known {
		return fmt.Errorf("unknown fault kind %q", f.Kind)
	}
	if f.At < 0 || f.Dur < 0 || f.Count < 0 || f.Prob < 0 || f.Prob > 1 || f.Rate < 0 ||
		f.Latency < 0 || f.Jitter < 0 || f.Dup < 0 || f.Dup > 1 || f.Step < -maxClockStep || f.Step > maxClockStep {
		return fmt.Errorf("fault %s: negative or out-of-range value", f)
	}
	okNode := func(id uint64) bool { return id >= 1 && id <= uint64(n) }
	if f.Trigger != nil {
		if err := f.Trigger.Validate(n); err != nil {
			return fmt.Errorf("fault %s: %w", f, err)
		}
	}
	if f.Target != "" {
		// The target replaces the fixed node (and groups); the checks
		// below that need them apply to untargeted faults only.
		if err := f.validateTarget(); err != nil {
			return err
		}
		if (f.Kind == FaultOneWay || f.Kind == FaultLink) && f.Peer != 0 && !okNode(f.Peer) {
			return fmt.Errorf("fault %s: peer %d not in 1..%d", f, f.Peer, n)
		}
		if f.Kind == FaultSkew && (f.Rate < 0.5 || f.Rate > 2) {
			return fmt.Errorf("fault %s: clock rate must be in [0.5, 2]", f)
		}
		return nil
	}
	switch f.Kind {
	case FaultCrash, FaultTornCrash, FaultKill, FaultPause, FaultIsolate, FaultStall, FaultStallLog, FaultSyncEIO, FaultWriteEIO, FaultSkew, FaultCorrupt,
		FaultNoSpace, FaultReadEIO, FaultHang, FaultClockStep, FaultTransferLeader:
		if !okNode(f.Node) {
			return fmt.Errorf("fault %s: node %d not in 1..%d", f, f.Node, n)
		}
	case FaultOneWay, FaultLink:
		if !okNode(f.Node) || !okNode(f.Peer) || f.Node == f.Peer {
			return fmt.Errorf("fault %s: bad link %d->%d", f, f.Node, f.Peer)
		}
	case FaultPartition, FaultBridge:
		for _, g := range f.Groups {
			for _, id := range g {
				if !okNode(id) {
					return fmt.Errorf("fault %s: node %d not in 1..%d", f, id, n)
				}
			}
		}
		if f.Kind == FaultBridge && (len(f.Groups) != 2 || !okNode(f.Node)) {
			return fmt.Errorf("fault %s: a bridge needs two groups and a bridge node", f)
		}
	}
	if err := f.validateDiskEventCrash(n); err != nil {
		return err
	}
	if f.Log != "" && !f.takesLog() {
		return fmt.Errorf("fault %s: log %q (corrupt, stall-log, sync-eio and write-eio take %q or %q; stall-log and sync-eio also %q)", f, f.Log, CorruptRaft, CorruptWAL, StallDir)
	}
	if f.Kind == FaultSkew && (f.Rate < 0.5 || f.Rate > 2) {
		return fmt.Errorf("fault %s: clock rate must be in [0.5, 2]", f)
	}
	return nil
}

// canTakeEffect reports a fault of a hand-written schedule that could
// never do anything: due after the safety phase (faults apply in the
// safety phase only), a window fault with no duration, a fault with no
// count, probability or step where its kind needs one. Fault.Validate
// leaves these alone (generators and rapid may draw them); a case file is
// held to them, since a schedule whose faults never act holds for nothing.
func (f Fault) canTakeEffect(safety time.Duration) error {
	switch {
	case f.At > safety: // a fault at the phase's last instant still applies
		return fmt.Errorf("at %v is after the safety phase (%v long), where faults apply", f.At, safety)
	}
	switch f.Kind {
	case FaultPause, FaultStall, FaultStallLog, FaultHang, FaultDrop, FaultDup, FaultLink:
		if f.Dur <= 0 {
			return fmt.Errorf("%s needs a positive dur (nanoseconds)", f.Kind)
		}
	}
	switch f.Kind {
	case FaultSyncEIO, FaultWriteEIO, FaultNoSpace, FaultReadEIO, FaultCrashAtDiskEvent, FaultTornCrashAtDiskEvent, FaultKillAtDiskEvent:
		if f.Count <= 0 {
			return fmt.Errorf("%s needs a count of at least 1", f.Kind)
		}
	case FaultDrop, FaultDup:
		if f.Prob <= 0 {
			return fmt.Errorf("%s needs a prob in (0, 1]", f.Kind)
		}
	case FaultClockStep:
		if f.Step == 0 {
			return fmt.Errorf("clock-step needs a non-zero step (nanoseconds; negative steps back)")
		}
	case FaultSkew:
		if f.Rate == 1 {
			return fmt.Errorf("skew at rate 1 changes nothing")
		}
	}
	return nil
}

// Schedule is a fault schedule: fault events in time order. It is plain data:
// generated from a seed or drawn by rapid, printed, saved in case files and
// loaded again.
type Schedule []Fault

// Sort orders the schedule by time (stably).
func (s Schedule) Sort() {
	sort.SliceStable(s, func(i, j int) bool { return s[i].At < s[j].At })
}

// Validate checks every fault for a cluster of n nodes.
func (s Schedule) Validate(n int) error {
	for i, f := range s {
		if err := f.Validate(n); err != nil {
			return fmt.Errorf("schedule[%d]: %w", i, err)
		}
		if i > 0 && f.At < s[i-1].At {
			return fmt.Errorf("schedule[%d]: not in time order", i)
		}
	}
	return nil
}

// BeyondBudgetFor returns a reason if the schedule goes beyond the fault
// budget of a cluster of n nodes (DESIGN.md section 5): latent corruption
// of synced data on half the nodes or more (on a minority it is in budget).
func (s Schedule) BeyondBudgetFor(n int) string {
	var nodes []uint64
	var first Fault
	for _, f := range s {
		if f.Kind == FaultCorrupt && !slices.Contains(nodes, f.Node) {
			if len(nodes) == 0 {
				first = f
			}
			nodes = append(nodes, f.Node)
		}
	}
	if len(nodes) == 0 || 2*len(nodes) < n {
		return ""
	}
	slices.Sort(nodes)
	return fmt.Sprintf("latent corruption of synced data on %d of %d nodes %v, not a minority (first: %s)", len(nodes), n, nodes, first)
}

// BeyondBudget returns a reason if any fault could be outside the fault
// budget whatever the cluster size: any latent corruption. Runs use
// BeyondBudgetFor, which knows that corruption on a minority is in budget.
func (s Schedule) BeyondBudget() string {
	for _, f := range s {
		if f.BeyondBudget() {
			return fmt.Sprintf("latent corruption of synced data (%s)", f)
		}
	}
	return ""
}

// String renders the schedule one fault per line.
func (s Schedule) String() string {
	if len(s) == 0 {
		return "(no faults)\n"
	}
	var b strings.Builder
	for _, f := range s {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// MarshalSchedule encodes a schedule as JSON.
func MarshalSchedule(s Schedule) ([]byte, error) { return json.MarshalIndent(s, "", "  ") }

// UnmarshalSchedule decodes and validates a schedule for n nodes.
func UnmarshalSchedule(b []byte, n int) (Schedule, error) {
	var s Schedule
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("schedule: %w", err)
	}
	if err := s.Validate(n); err != nil {
		return nil, err
	}
	return s, nil
}
