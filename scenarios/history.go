// Package scenarios runs walraft nodes in the simulator as a cluster, drives
// workloads and fault schedules against them, records what every client and
// node saw as a History, and checks that history against the safety and
// liveness invariants of DESIGN.md section 6 (S1-S8, L1-L2).
//
// This file holds the history model: the record of one run that the cluster
// harness fills while the run happens (through a Recorder) and the checkers
// in check*.go judge afterwards. A History serialises to JSON lines so
// external checkers (porcupine-style linearizability checkers, Elle-style
// anomaly finders) can read it without linking Go code.
package scenarios

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"walraft/core/env"
)

// NodeID names a node (non-zero), as in core/env.
type NodeID = env.NodeID

// OpID names one client operation in a history. IDs start at 1 and grow in
// invocation order; 0 means "no operation" (for example Op.RetryOf when the
// op is not a retry).
type OpID uint64

// Mode says how the run was deployed.
type Mode string

// Modes.
const (
	// ModeStandalone: one node, no Raft; acks=-1 behaves as acks=1 and the
	// HWM covers fsynced data only.
	ModeStandalone Mode = "standalone"
	// ModeCluster: several nodes replicating through Raft.
	ModeCluster Mode = "cluster"
)

// PartKey names a partition.
type PartKey struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// String renders the key as topic/partition.
func (k PartKey) String() string { return fmt.Sprintf("%s/%d", k.Topic, k.Partition) }

func cmpPartKey(a, b PartKey) int {
	if a.Topic != b.Topic {
		if a.Topic < b.Topic {
			return -1
		}
		return 1
	}
	switch {
	case a.Partition < b.Partition:
		return -1
	case a.Partition > b.Partition:
		return 1
	}
	return 0
}

// RunInfo holds the facts of a run that every checker needs.
type RunInfo struct {
	// Mode is standalone or cluster.
	Mode Mode `json:"mode"`
	// Seed is the simulation seed (informational: replays the run).
	Seed uint64 `json:"seed"`
	// Nodes lists every node id of the run, sorted. Standalone runs have one.
	Nodes []NodeID `json:"nodes"`
	// Partitions lists every partition the run hosts (on every node).
	Partitions []PartKey `json:"partitions"`
	// AcksTimeout is the nodes' acks=-1 waiter timeout (DESIGN.md 3.3:
	// default 30 s), used by L2.
	AcksTimeout time.Duration `json:"acks_timeout_ns"`
	// TimeoutSlack is how much later than AcksTimeout an acks=-1 answer may
	// arrive before L2 fires. Zero means DefaultTimeoutSlack(AcksTimeout).
	TimeoutSlack time.Duration `json:"timeout_slack_ns,omitempty"`
	// End is the virtual time the run ended (after the liveness phase). No
	// event of the history is later.
	End time.Duration `json:"end_ns"`
	// BeyondBudget is true when the fault schedule injected faults the
	// design does not promise to survive (DESIGN.md section 5): latent
	// corruption of synced data, or loss of synced data on a majority.
	// Violations are still reported but not counted as bugs.
	BeyondBudget bool `json:"beyond_budget,omitempty"`
	// BeyondBudgetWhy says which faults went beyond the budget, one reason
	// per entry (for example "t=12s: latent corruption of n2 wal segment 3").
	BeyondBudgetWhy []string `json:"beyond_budget_why,omitempty"`
	// Path is the nodes' proposal path, "batch" or "legacy" ("" reads as
	// batch). S12 (atomic requests) is judged on every path but legacy,
	// where a request of several records is several Raft entries.
	Path string `json:"path,omitempty"`
	// FaultFree is true when the run injected no fault and drew none: an
	// empty schedule and a disk without stalls, EIO or torn persistence.
	// The whole run is then a fault-free stretch (L3) and its latencies are
	// judged (L4).
	FaultFree bool `json:"fault_free,omitempty"`
	// LatencyBound is L4's bound on the latency of one successful acks=1 or
	// acks=-1 produce in a fault-free run (0: not judged). The harness
	// derives it from the options (see latencyBound).
	LatencyBound time.Duration `json:"latency_bound_ns,omitempty"`
}

// DefaultTimeoutSlack is the slack L2 allows past the acks=-1 timeout when
// RunInfo.TimeoutSlack is zero: 5% of the timeout plus one second. The 5%
// covers the simulator's per-node clock-rate skew (the waiter's timer runs
// on the leader's own clock, the history on global virtual time); the second
// covers delivering the reply and the event loop running the timer.
func DefaultTimeoutSlack(acksTimeout time.Duration) time.Duration {
	return acksTimeout/20 + time.Second
}

// slack returns the effective L2 slack.
func (r *RunInfo) slack() time.Duration {
	if r.TimeoutSlack > 0 {
		return r.TimeoutSlack
	}
	return DefaultTimeoutSlack(r.AcksTimeout)
}

// OpKind is the kind of a client operation.
type OpKind string

// Operation kinds.
const (
	KindProduce OpKind = "produce"
	KindFetch   OpKind = "fetch"
)

// Outcome is how a client operation ended.
type Outcome string

// Outcomes.
const (
	// OutcomePending: no answer by the end of the run.
	OutcomePending Outcome = "pending"
	// OutcomeOK: success (for a produce with acks 1 or -1: Offset is set).
	OutcomeOK Outcome = "ok"
	// OutcomeFail: a definite failure: the write did not and will not
	// happen (NotLeader before append, stale batch, replaced entry, ...).
	OutcomeFail Outcome = "fail"
	// OutcomeIndeterminate: a timeout, or an error after which the write
	// may or may not happen (fsync failure, crash of the node mid-request).
	OutcomeIndeterminate Outcome = "indeterminate"
	// OutcomeNone: an acks=0 produce; the client learns nothing.
	OutcomeNone Outcome = "none"
)

// Evidence is what the harness read from the replying node's own state at
// the instant it replied to a produce, so the checkers can judge S5, S7 and
// S8 without trusting the node's word.
type Evidence struct {
	// At is the simulated time the node answered, the instant the rest is
	// read at; the client gets the answer a client latency later
	// (Op.Complete). 0: not recorded (histories written before it was).
	At time.Duration `json:"at_ns,omitempty"`
	// Term is the replying node's Raft term when it accepted the request
	// (0 in standalone): an acks=1 write accepted in a term may be lost once
	// a later term begins, even if the ack was sent after that.
	Term uint64 `json:"term,omitempty"`
	// DurableEnd (acks=1): the end offset of the partition's fsynced WAL
	// data on the leader at reply time (one past the last durable record).
	DurableEnd int64 `json:"durable_end,omitempty"`
	// HWM (acks=-1): the leader's HWM for the partition at reply time.
	HWM int64 `json:"hwm,omitempty"`
	// EntryTerm and EntryIndex (acks=-1, cluster): the Raft entry the
	// waiter was resolved by.
	EntryTerm  uint64 `json:"entry_term,omitempty"`
	EntryIndex uint64 `json:"entry_index,omitempty"`
	// Truth (acks=1, and acks=-1 in standalone mode): DurableEnd was read
	// from the replying node's durable WAL image (ground truth: the end of
	// the durable records, cut at the first replied record the image does
	// not hold as replied), and ReportedDurableEnd is the durable end the
	// node reported for itself at the same instant (S10 compares them).
	Truth              bool  `json:"truth,omitempty"`
	ReportedDurableEnd int64 `json:"reported_durable_end,omitempty"`
}

// Rec is one record as seen by a reader: its offset and payload id.
type Rec struct {
	Offset  int64  `json:"o"`
	Payload uint64 `json:"p"`
}

// FetchReply is what a fetch returned.
type FetchReply struct {
	// Records are the returned records, offsets strictly ascending.
	Records []Rec `json:"records,omitempty"`
	// HWM and LogEnd are the values the node reported with the records,
	// or with its error: a fetch refused as out of range reports them too
	// (as Kafka's fetch response does), and that HWM is a report of the
	// node's HWM like any other (S3), so the op then has OutcomeFail and a
	// FetchReply without records.
	HWM    int64 `json:"hwm"`
	LogEnd int64 `json:"log_end"`
	// At is the virtual time the node served the fetch (between the op's
	// invoke and complete; 0 if unknown). HWM and LogEnd are the node's
	// state at that instant, so checkers order them by At, not by the
	// later moment the reply reached the client.
	At time.Duration `json:"at_ns,omitempty"`
}

// servedAt returns when a fetch's reply state was read on the node: At if
// the harness recorded it, else the completion time.
func (o *Op) servedAt() time.Duration {
	if o.Fetch != nil && o.Fetch.At > 0 {
		return o.Fetch.At
	}
	return o.Complete
}

// Op is one client operation: a produce or a fetch. The invoke half is
// recorded when the client sends it, the completion half when the answer
// arrives (or never: OutcomePending).
type Op struct {
	// ID is the op's id (1, 2, ... in invocation order).
	ID OpID `json:"id"`
	// Client is the id of the client that issued the op.
	Client uint64 `json:"client"`
	// Node is the node the op was sent to.
	Node NodeID `json:"node"`
	// Kind is produce or fetch.
	Kind OpKind `json:"kind"`
	// Topic and Partition name the partition.
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Acks is the produce's acks level: 0, 1 or -1 (0 for fetches).
	Acks int8 `json:"acks"`
	// Payloads holds one payload id per produced record, in order. Every
	// record's bytes start with its payload id (see NewPayload), so it can
	// be recognised in any node's log. Empty for fetches.
	Payloads []uint64 `json:"payloads,omitempty"`
	// From is the fetch's start offset (0 for produces).
	From int64 `json:"from,omitempty"`
	// Invoke is the virtual time the client sent the op.
	Invoke time.Duration `json:"invoke_ns"`
	// Complete is the virtual time the answer arrived (0 while pending).
	Complete time.Duration `json:"complete_ns,omitempty"`
	// Outcome is how the op ended.
	Outcome Outcome `json:"outcome"`
	// Err is the error text of a failed or indeterminate op.
	Err string `json:"err,omitempty"`
	// Offset is the base offset a successful produce was given.
	Offset int64 `json:"offset,omitempty"`
	// RetryOf is the earlier op whose payloads this produce re-sends after
	// that op's outcome was indeterminate (0: not a retry).
	RetryOf OpID `json:"retry_of,omitempty"`
	// Evidence is the replying node's state at reply time (produces with
	// outcome OK; nil when the harness captured none).
	Evidence *Evidence `json:"evidence,omitempty"`
	// Fetch is a successful fetch's reply.
	Fetch *FetchReply `json:"fetch,omitempty"`
	// Served is the node's side of a produce that reached a node: when it
	// took the request and when it answered, on the node's own clock,
	// recorded even after the client gave up (L2 judges the node's
	// timeout, which a client's shorter one would hide). Nil when the
	// request never reached a node.
	Served *Served `json:"served,omitempty"`
}

// Served is the node's side of one produce. Times are readings of the
// node's own monotonic clock (env.Clock), the clock its timers run on, so
// a clock-rate skew or a backward step (which holds the clock still) does
// not count against it.
type Served struct {
	// At is the node's clock when Produce was called.
	At time.Duration `json:"at_ns"`
	// Answered is the node's clock when it answered (0: never).
	Answered time.Duration `json:"answered_ns,omitempty"`
	// Until is, for a request still unanswered when the run ended, the
	// node's clock then.
	Until time.Duration `json:"until_ns,omitempty"`
	// Interrupted is set when the node's process was paused or crashed,
	// or its clock stepped, while it held the request unanswered: a
	// stopped process runs no timers, and a stepped clock fires them
	// early or late by design, so L2 does not judge it.
	Interrupted bool `json:"interrupted,omitempty"`
	// TimedOut is set when the node's answer was its own acks timeout
	// (node.ErrTimeout): L2 then also judges that it did not give up
	// before AcksTimeout had passed on its clock.
	TimedOut bool `json:"timed_out,omitempty"`
	// Definite is set when the node's answer was a definite failure (an
	// error without Indeterminate): the records must then never become
	// visible, which S6 judges even when the client gave up first and
	// recorded the op as indeterminate.
	Definite bool `json:"definite,omitempty"`
}

// Key returns the op's partition.
func (o *Op) Key() PartKey { return PartKey{Topic: o.Topic, Partition: o.Partition} }

// Last returns the offset of a successful produce's last record.
func (o *Op) Last() int64 { return o.Offset + int64(len(o.Payloads)) - 1 }

// Role is a node's Raft role as observed.
type Role string

// Roles. Standalone nodes report RoleLeader.
const (
	RoleLeader       Role = "leader"
	RoleFollower     Role = "follower"
	RoleCandidate    Role = "candidate"
	RolePreCandidate Role = "pre-candidate"
	// RoleNone: unknown, or the node is down.
	RoleNone Role = ""
)

// PartState is one partition's HWM and log end on one node.
type PartState struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	HWM       int64  `json:"hwm"`
	LogEnd    int64  `json:"log_end"`
}

// Key returns the partition.
func (p *PartState) Key() PartKey { return PartKey{Topic: p.Topic, Partition: p.Partition} }

// Observation is a node's externally visible state at one instant. The
// harness records one whenever any field changes. An observation of an up
// node is the state it would answer clients with: a restarting node is
// observed up only once it serves requests (DESIGN.md 3.8: after it
// re-applied its durable committed entries).
type Observation struct {
	// Time is the virtual time of the observation.
	Time time.Duration `json:"t_ns"`
	// Node is the observed node.
	Node NodeID `json:"node"`
	// Incarnation counts the node's process starts (1 for the first).
	Incarnation uint64 `json:"inc"`
	// Up is false while the node is crashed or not yet serving; the other
	// fields are then ignored.
	Up bool `json:"up"`
	// Role, Term and Leader are the node's Raft view (Leader 0: unknown).
	Role   Role   `json:"role,omitempty"`
	Term   uint64 `json:"term,omitempty"`
	Leader NodeID `json:"leader,omitempty"`
	// Parts holds every hosted partition's HWM and log end.
	Parts []PartState `json:"parts,omitempty"`
}

// EntryKind is the kind of a committed Raft entry.
type EntryKind string

// Entry kinds.
const (
	// EntryBatch: a `batch` format entry (a whole WAL batch).
	EntryBatch EntryKind = "batch"
	// EntryCanonical: a legacy one-record `canonical` entry.
	EntryCanonical EntryKind = "canonical"
	// EntryEmpty: an empty entry (a new leader's first entry).
	EntryEmpty EntryKind = "empty"
	// EntryConf: a configuration change.
	EntryConf EntryKind = "conf"
)

// RaftEntry is one committed Raft entry as the final state reports it.
type RaftEntry struct {
	Index uint64    `json:"index"`
	Term  uint64    `json:"term"`
	Kind  EntryKind `json:"kind"`
	// Topic, Partition and Base describe a batch or canonical entry: the
	// partition and the offset of its first record.
	Topic     string `json:"topic,omitempty"`
	Partition int32  `json:"partition,omitempty"`
	Base      int64  `json:"base,omitempty"`
	// Payloads are the payload ids of the records the entry carried (empty
	// for a metadata-only entry of the known-bad variant).
	Payloads []uint64 `json:"payloads,omitempty"`
}

// FinalPart is one partition of one node at the end of the run.
type FinalPart struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	HWM       int64  `json:"hwm"`
	LogEnd    int64  `json:"log_end"`
	// Records are the records below the HWM, contiguous and ascending,
	// ending at HWM-1 (they start above 0 only if the log start was
	// truncated by retention). They end earlier only when the node reports
	// a HWM past the records it can serve, which S3 reports.
	Records []Rec `json:"records,omitempty"`
}

// Key returns the partition.
func (p *FinalPart) Key() PartKey { return PartKey{Topic: p.Topic, Partition: p.Partition} }

// at returns the payload at off and whether the node holds off below its HWM.
func (p *FinalPart) at(off int64) (uint64, bool) {
	if len(p.Records) == 0 || off < p.Records[0].Offset || off >= p.HWM || off-p.Records[0].Offset >= int64(len(p.Records)) {
		return 0, false
	}
	return p.Records[off-p.Records[0].Offset].Payload, true
}

// FinalNode is one node's state at the end of the run.
type FinalNode struct {
	Node        NodeID `json:"node"`
	Incarnation uint64 `json:"inc"`
	Up          bool   `json:"up"`
	// Parts holds every hosted partition.
	Parts []FinalPart `json:"parts,omitempty"`
	// RaftFirst is the index of the first committed entry in Raft (entries
	// below it were compacted); 0 in standalone mode.
	RaftFirst uint64 `json:"raft_first,omitempty"`
	// Raft holds the committed Raft entries, indexes contiguous from
	// RaftFirst.
	Raft []RaftEntry `json:"raft,omitempty"`
}

// raftAt returns the committed entry at index, if the node holds it.
func (n *FinalNode) raftAt(index uint64) (*RaftEntry, bool) {
	if len(n.Raft) == 0 || index < n.RaftFirst || index-n.RaftFirst >= uint64(len(n.Raft)) {
		return nil, false
	}
	return &n.Raft[index-n.RaftFirst], true
}

// raftEnd returns one past the node's last committed index.
func (n *FinalNode) raftEnd() uint64 { return n.RaftFirst + uint64(len(n.Raft)) }

// FinalState is every node's state after the liveness phase.
type FinalState struct {
	// Time is the virtual time the state was captured.
	Time time.Duration `json:"t_ns"`
	// Nodes holds one entry per node, sorted by id.
	Nodes []FinalNode `json:"nodes"`
}

// LivenessReport is the harness's account of the liveness phase (L1): after
// the last fault healed, all nodes up and disks fast, did the cluster
// converge within the bound?
type LivenessReport struct {
	// HealedAt is when healing finished (last fault removed).
	HealedAt time.Duration `json:"healed_ns"`
	// Bound is the simulated time the cluster was given to converge.
	Bound time.Duration `json:"bound_ns"`
	// ConvergedAt is when all conditions below first held together (0:
	// never within the bound).
	ConvergedAt time.Duration `json:"converged_ns,omitempty"`
	// OneLeader: exactly one leader, known to every node.
	OneLeader bool   `json:"one_leader"`
	Leader    NodeID `json:"leader,omitempty"`
	// HWMsAtCommitEnd: every node's HWM equals the committed end, for every
	// partition.
	HWMsAtCommitEnd bool `json:"hwms_at_commit_end"`
	// WaitersResolved: no acks=-1 waiter is pending on any node.
	WaitersResolved bool `json:"waiters_resolved"`
	// ProbeOp is the probe acks=-1 produce (recorded as an op); ProbeOK is
	// whether it succeeded within the bound.
	ProbeOp OpID `json:"probe_op,omitempty"`
	ProbeOK bool `json:"probe_ok"`
	// CalmFrom is when the liveness phase's own fault-free workload
	// started: the harness runs it once the cluster converged after
	// healing, lets its requests end by themselves, and only then sends the
	// probe. Every produce invoked from then on must end without a timeout
	// or an indeterminate answer (L3). 0: the workload never started.
	CalmFrom time.Duration `json:"calm_ns,omitempty"`
	// Stranded, when set, says what the leader still held accepted but not
	// committed (or not durable) when the liveness bound ran out, with no
	// request left in flight: a system that moves only when poked (L1).
	Stranded string `json:"stranded,omitempty"`
	// Rotation, when set, names the node that could not take over: once
	// converged, leadership is handed to every other live node in turn,
	// and each must lead with its produce gate open and serve an acks=-1
	// write (L1): a node left unable to lead or serve (a health mark never
	// cleared, a gate that never opens) costs the cluster its fault
	// tolerance though a single leader serves. "" when every node did, or
	// when the rotation was not reached.
	Rotation string `json:"rotation,omitempty"`
	// Detail is the harness's free-text explanation of a failure.
	Detail string `json:"detail,omitempty"`
}

// History is the record of one run.
type History struct {
	// Run holds the run's facts.
	Run RunInfo
	// Ops holds every client op, in invocation (= ID) order.
	Ops []Op
	// Obs holds node observations in the order they happened (times
	// non-decreasing).
	Obs []Observation
	// Final is the state after the liveness phase (nil if the run did not
	// get that far).
	Final *FinalState
	// Live is the liveness phase's report (nil if there was none).
	Live *LivenessReport
	// Avail is the ground truth A1 is judged against (nil: not recorded,
	// A1 not applicable).
	Avail *AvailTruth
}

// ErrMalformed: a history (or its JSON-lines form) is inconsistent. Wrapped
// with the position of the problem.
var ErrMalformed = errors.New("scenarios: malformed history")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// maxOffset bounds offsets and counts so offset arithmetic cannot overflow.
const maxOffset = int64(1) << 62

// maxTime bounds times and durations (about 146 years) so sums of two of
// them cannot overflow.
const maxTime = time.Duration(1) << 62

// Validate checks the history's structure: known mode, nodes and
// partitions, ids in order, outcomes that fit their op, times within the
// run, records ascending. The checkers rely on it; Check calls it first.
func (h *History) Validate() error {
	r := &h.Run
	if r.Mode != ModeStandalone && r.Mode != ModeCluster {
		return malformed("run: mode %q", r.Mode)
	}
	if len(r.Nodes) == 0 {
		return malformed("run: no nodes")
	}
	if r.Mode == ModeStandalone && len(r.Nodes) != 1 {
		return malformed("run: standalone with %d nodes", len(r.Nodes))
	}
	nodes := make(map[NodeID]bool, len(r.Nodes))
	for _, n := range r.Nodes {
		if n == 0 || nodes[n] {
			return malformed("run: node id %d zero or repeated", n)
		}
		nodes[n] = true
	}
	parts := make(map[PartKey]bool, len(r.Partitions))
	for _, p := range r.Partitions {
		if parts[p] {
			return malformed("run: partition %v repeated", p)
		}
		parts[p] = true
	}
	if r.LatencyBound < 0 || r.LatencyBound > maxTime {
		return malformed("run: latency bound %v", r.LatencyBound)
	}
	if r.AcksTimeout <= 0 || r.TimeoutSlack < 0 || r.End < 0 || r.AcksTimeout > maxTime || r.TimeoutSlack > maxTime || r.End > maxTime {
		return malformed("run: acks timeout %v, slack %v, end %v", r.AcksTimeout, r.TimeoutSlack, r.End)
	}
	inRun := func(t time.Duration) bool { return t >= 0 && t <= r.End }
	for i := range h.Ops {
		if err := h.validateOp(i, nodes, parts, inRun); err != nil {
			return err
		}
	}
	var prev time.Duration
	for i := range h.Obs {
		o := &h.Obs[i]
		if !nodes[o.Node] || !inRun(o.Time) || o.Time < prev {
			return malformed("obs %d: node %d at %v (previous %v, end %v)", i, o.Node, o.Time, prev, r.End)
		}
		prev = o.Time
		for _, p := range o.Parts {
			if !parts[p.Key()] || p.HWM < 0 || p.LogEnd < 0 || p.HWM > maxOffset || p.LogEnd > maxOffset {
				return malformed("obs %d: partition %v hwm %d log end %d", i, p.Key(), p.HWM, p.LogEnd)
			}
		}
	}
	if h.Final != nil {
		if err := h.validateFinal(nodes, parts, inRun); err != nil {
			return err
		}
	}
	if l := h.Live; l != nil {
		if !inRun(l.HealedAt) || l.Bound < 0 || l.Bound > maxTime || (l.ConvergedAt != 0 && !inRun(l.ConvergedAt)) || !inRun(l.CalmFrom) {
			return malformed("live: healed %v bound %v converged %v", l.HealedAt, l.Bound, l.ConvergedAt)
		}
		if l.ProbeOp != 0 && (l.ProbeOp > OpID(len(h.Ops)) || h.Ops[l.ProbeOp-1].Kind != KindProduce) {
			return malformed("live: probe op %d is not a recorded produce", l.ProbeOp)
		}
	}
	if h.Avail != nil {
		if err := h.Avail.validate(nodes, inRun); err != nil {
			return err
		}
	}
	return nil
}

func (h *History) validateOp(i int, nodes map[NodeID]bool, parts map[PartKey]bool, inRun func(time.Duration) bool) error {
	o := &h.Ops[i]
	if o.ID != OpID(i+1) {
		return malformed("op at position %d has id %d (want %d)", i, o.ID, i+1)
	}
	if !nodes[o.Node] || !parts[o.Key()] {
		return malformed("op %d: node %d / partition %v not in the run", o.ID, o.Node, o.Key())
	}
	switch o.Outcome {
	case OutcomePending:
		if o.Complete != 0 {
			return malformed("op %d: pending with completion time %v", o.ID, o.Complete)
		}
	case OutcomeOK, OutcomeFail, OutcomeIndeterminate, OutcomeNone:
		if o.Complete < o.Invoke || !inRun(o.Complete) {
			return malformed("op %d: completion %v before invoke %v or after end", o.ID, o.Complete, o.Invoke)
		}
	default:
		return malformed("op %d: outcome %q", o.ID, o.Outcome)
	}
	if !inRun(o.Invoke) {
		return malformed("op %d: invoke time %v outside the run", o.ID, o.Invoke)
	}
	if o.RetryOf != 0 {
		if o.RetryOf >= o.ID || o.Kind != KindProduce || h.Ops[o.RetryOf-1].Kind != KindProduce {
			return malformed("op %d: retry of %d is not an earlier produce", o.ID, o.RetryOf)
		}
	}
	switch o.Kind {
	case KindProduce:
		if o.Acks != 0 && o.Acks != 1 && o.Acks != -1 {
			return malformed("op %d: acks %d not in {0, 1, -1}", o.ID, o.Acks)
		}
		if len(o.Payloads) == 0 || o.Fetch != nil || o.From != 0 {
			return malformed("op %d: produce with %d payloads / fetch fields", o.ID, len(o.Payloads))
		}
		if (o.Outcome == OutcomeNone) != (o.Acks == 0 && o.Outcome != OutcomePending && o.Outcome != OutcomeFail) {
			return malformed("op %d: outcome %q with acks %d", o.ID, o.Outcome, o.Acks)
		}
		if o.Offset < 0 || o.Offset > maxOffset || (o.Offset != 0 && o.Outcome != OutcomeOK) {
			return malformed("op %d: offset %d with outcome %q", o.ID, o.Offset, o.Outcome)
		}
		if o.Evidence != nil && o.Outcome != OutcomeOK {
			return malformed("op %d: evidence with outcome %q", o.ID, o.Outcome)
		}
		if e := o.Evidence; e != nil && (e.DurableEnd < 0 || e.HWM < 0 || e.DurableEnd > maxOffset || e.HWM > maxOffset) {
			return malformed("op %d: evidence durable end %d hwm %d", o.ID, e.DurableEnd, e.HWM)
		}
		if e := o.Evidence; e != nil && e.At != 0 && (e.At < o.Invoke || e.At > o.Complete) {
			return malformed("op %d: evidence at %v outside the op's [%v, %v]", o.ID, e.At, o.Invoke, o.Complete)
		}
		if e := o.Evidence; e != nil && (e.ReportedDurableEnd < 0 || e.ReportedDurableEnd > maxOffset || (!e.Truth && e.ReportedDurableEnd != 0)) {
			return malformed("op %d: evidence reported durable end %d (truth %v)", o.ID, e.ReportedDurableEnd, e.Truth)
		}
	case KindFetch:
		if o.Acks != 0 || len(o.Payloads) != 0 || o.Offset != 0 || o.Evidence != nil {
			return malformed("op %d: fetch with produce fields", o.ID)
		}
		if o.From < 0 || o.From > maxOffset {
			return malformed("op %d: fetch from %d", o.ID, o.From)
		}
		// A failed fetch may carry the HWM and log end its error reported
		// (an offset out of range), never records.
		if (o.Fetch == nil && o.Outcome == OutcomeOK) ||
			(o.Fetch != nil && o.Outcome != OutcomeOK && (o.Outcome != OutcomeFail || len(o.Fetch.Records) > 0)) {
			return malformed("op %d: fetch outcome %q with reply %v", o.ID, o.Outcome, o.Fetch != nil)
		}
		if f := o.Fetch; f != nil {
			if f.HWM < 0 || f.LogEnd < 0 || f.HWM > maxOffset || f.LogEnd > maxOffset {
				return malformed("op %d: fetch hwm %d log end %d", o.ID, f.HWM, f.LogEnd)
			}
			prev := int64(-1)
			for _, rec := range f.Records {
				if rec.Offset <= prev || rec.Offset > maxOffset {
					return malformed("op %d: fetched offsets not ascending at %d", o.ID, rec.Offset)
				}
				prev = rec.Offset
			}
		}
	default:
		return malformed("op %d: kind %q", o.ID, o.Kind)
	}
	return nil
}

func (h *History) validateFinal(nodes map[NodeID]bool, parts map[PartKey]bool, inRun func(time.Duration) bool) error {
	f := h.Final
	if !inRun(f.Time) {
		return malformed("final: time %v outside the run", f.Time)
	}
	seen := make(map[NodeID]bool, len(f.Nodes))
	for i := range f.Nodes {
		n := &f.Nodes[i]
		if !nodes[n.Node] || seen[n.Node] {
			return malformed("final: node %d unknown or repeated", n.Node)
		}
		seen[n.Node] = true
		seenPart := make(map[PartKey]bool, len(n.Parts))
		for j := range n.Parts {
			p := &n.Parts[j]
			if !parts[p.Key()] || seenPart[p.Key()] {
				return malformed("final: node %d partition %v unknown or repeated", n.Node, p.Key())
			}
			seenPart[p.Key()] = true
			if p.HWM < 0 || p.LogEnd < 0 || p.HWM > maxOffset || p.LogEnd > maxOffset {
				return malformed("final: node %d %v hwm %d log end %d", n.Node, p.Key(), p.HWM, p.LogEnd)
			}
			if k := len(p.Records); k > 0 {
				first := p.Records[0].Offset
				if first < 0 || first+int64(k) > p.HWM {
					return malformed("final: node %d %v records [%d, +%d) go past hwm %d", n.Node, p.Key(), first, k, p.HWM)
				}
				for x, rec := range p.Records {
					if rec.Offset != first+int64(x) {
						return malformed("final: node %d %v records not contiguous at %d", n.Node, p.Key(), rec.Offset)
					}
				}
			}
		}
		if len(n.Raft) > 0 && n.RaftFirst == 0 {
			return malformed("final: node %d raft entries from index 0", n.Node)
		}
		for x := range n.Raft {
			e := &n.Raft[x]
			if e.Index != n.RaftFirst+uint64(x) {
				return malformed("final: node %d raft index %d not contiguous from %d", n.Node, e.Index, n.RaftFirst)
			}
			if e.Base < 0 || e.Base > maxOffset {
				return malformed("final: node %d raft index %d base %d", n.Node, e.Index, e.Base)
			}
		}
	}
	return nil
}

// Reply is the completion half of an op, as the harness hands it to
// Recorder.Complete.
type Reply struct {
	Outcome  Outcome
	Err      string
	Offset   int64
	Evidence *Evidence
	Fetch    *FetchReply
}

// Recorder fills a History while a run happens. Every method is O(1)
// amortised (Observe is O(partitions)); slices passed in are owned by the
// recorder afterwards. It is not safe for concurrent use; the simulator is
// single-threaded.
type Recorder struct {
	h       History
	lastObs map[NodeID]int // index in h.Obs of each node's latest observation
}

// NewRecorder starts a history for a run. run.End is set by End.
func NewRecorder(run RunInfo) *Recorder {
	return &Recorder{h: History{Run: run}, lastObs: make(map[NodeID]int)}
}

// Invoke records a client op being sent and returns its id. The op's ID,
// Outcome and completion fields are set by the recorder.
func (r *Recorder) Invoke(op Op) OpID {
	op.ID = OpID(len(r.h.Ops) + 1)
	op.Outcome = OutcomePending
	op.Complete = 0
	r.h.Ops = append(doubled(r.h.Ops), op)
	return op.ID
}

// doubled returns s with room for at least one more element, doubling its
// capacity when full. append grows a large slice by about a quarter at a
// time, and an Op or an Observation is a few hundred bytes with pointers:
// a run's history would be copied (and left to the collector) about ten
// times over instead of about twice.
func doubled[T any](s []T) []T {
	if len(s) < cap(s) {
		return s
	}
	return slices.Grow(s, max(len(s), 64))
}

// Complete records the answer to op id at time at. Completing an unknown op
// or one already completed is a harness bug and panics.
func (r *Recorder) Complete(id OpID, at time.Duration, rep Reply) {
	if id == 0 || id > OpID(len(r.h.Ops)) {
		panic(fmt.Sprintf("scenarios: Complete of unknown op %d (%d recorded)", id, len(r.h.Ops)))
	}
	o := &r.h.Ops[id-1]
	if o.Outcome != OutcomePending || rep.Outcome == OutcomePending || rep.Outcome == "" {
		panic(fmt.Sprintf("scenarios: op %d completed with %q after %q", id, rep.Outcome, o.Outcome))
	}
	o.Complete = at
	o.Outcome = rep.Outcome
	o.Err = rep.Err
	o.Offset = rep.Offset
	o.Evidence = rep.Evidence
	o.Fetch = rep.Fetch
}

// Observe records a node observation unless it equals the node's previous
// one in everything but time (so the harness may call it after every event
// cheaply). It reports whether the observation was recorded.
func (r *Recorder) Observe(o Observation) bool {
	if i, ok := r.lastObs[o.Node]; ok {
		p := &r.h.Obs[i]
		if p.Incarnation == o.Incarnation && p.Up == o.Up && p.Role == o.Role && p.Term == o.Term &&
			p.Leader == o.Leader && slices.Equal(p.Parts, o.Parts) {
			return false
		}
	}
	r.lastObs[o.Node] = len(r.h.Obs)
	r.h.Obs = append(doubled(r.h.Obs), o)
	return true
}

// MarkBeyondBudget labels the run as having injected a fault beyond the
// fault budget, with the reason.
func (r *Recorder) MarkBeyondBudget(why string) {
	r.h.Run.BeyondBudget = true
	r.h.Run.BeyondBudgetWhy = append(r.h.Run.BeyondBudgetWhy, why)
}

// SetFinal records the final state.
func (r *Recorder) SetFinal(f FinalState) { r.h.Final = &f }

// SetAvail records the availability ground truth.
func (r *Recorder) SetAvail(t *AvailTruth) { r.h.Avail = t }

// SetLiveness records the liveness report.
func (r *Recorder) SetLiveness(l LivenessReport) { r.h.Live = &l }

// End records the virtual time the run ended.
func (r *Recorder) End(at time.Duration) { r.h.Run.End = at }

// History returns the recorded history (shared with the recorder, not a
// copy).
func (r *Recorder) History() *History { return &r.h }

// PayloadIDSize is the size of the payload-id prefix of every record.
const PayloadIDSize = 8

// ErrShortRecord: a record is too short to carry a payload id.
var ErrShortRecord = errors.New("scenarios: record shorter than a payload id")

// NewPayload returns a record of size bytes (at least PayloadIDSize) that
// starts with id, big-endian, followed by filler derived from id (so the
// bytes are deterministic and differ between payloads).
func NewPayload(id uint64, size int) []byte {
	size = max(size, PayloadIDSize)
	b := make([]byte, size)
	binary.BigEndian.PutUint64(b, id)
	// Byte i is byte(id>>(8*(i%8))) ^ byte(i). Eight at a time: for i =
	// 8q+r the low byte of i is 8q%256 + r without a carry, so a word is
	// id (little-endian) XOR 0x0706050403020100 + (8q%256) * 0x0101...01.
	i := PayloadIDSize
	for ; i+8 <= size; i += 8 {
		pat := 0x0706050403020100 + uint64(byte(i))*0x0101010101010101
		binary.LittleEndian.PutUint64(b[i:], id^pat)
	}
	for ; i < size; i++ {
		b[i] = byte(id>>(8*(i%8))) ^ byte(i)
	}
	return b
}

// PayloadIDOf returns the payload id a record starts with.
func PayloadIDOf(rec []byte) (uint64, error) {
	if len(rec) < PayloadIDSize {
		return 0, fmt.Errorf("%w: %d bytes", ErrShortRecord, len(rec))
	}
	return binary.BigEndian.Uint64(rec), nil
}

// MaxJSONLLine bounds the size of one JSON line ReadJSONL accepts.
const MaxJSONLLine = 64 << 20

// jsonLine is one line of the JSON-lines form: exactly one field is set.
//
// The stream is: one "run" line; then "op" lines in id order and "obs" lines
// in time order (WriteJSONL writes all ops, then all observations); then
// optionally one "final" line (time only) followed by one "final_node" line
// per node; then optionally one "live" line. Times are nanoseconds of
// virtual time.
type jsonLine struct {
	Run       *RunInfo        `json:"run,omitempty"`
	Op        *Op             `json:"op,omitempty"`
	Obs       *Observation    `json:"obs,omitempty"`
	Final     *finalHeader    `json:"final,omitempty"`
	FinalNode *FinalNode      `json:"final_node,omitempty"`
	Live      *LivenessReport `json:"live,omitempty"`
	Avail     *AvailTruth     `json:"avail,omitempty"`
}

type finalHeader struct {
	Time time.Duration `json:"t_ns"`
}

// WriteJSONL writes the history as JSON lines (see jsonLine for the order).
func (h *History) WriteJSONL(w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	put := func(l jsonLine) error { return enc.Encode(l) } // Encode ends each value with '\n'
	if err := put(jsonLine{Run: &h.Run}); err != nil {
		return err
	}
	for i := range h.Ops {
		if err := put(jsonLine{Op: &h.Ops[i]}); err != nil {
			return err
		}
	}
	for i := range h.Obs {
		if err := put(jsonLine{Obs: &h.Obs[i]}); err != nil {
			return err
		}
	}
	if h.Final != nil {
		if err := put(jsonLine{Final: &finalHeader{Time: h.Final.Time}}); err != nil {
			return err
		}
		for i := range h.Final.Nodes {
			if err := put(jsonLine{FinalNode: &h.Final.Nodes[i]}); err != nil {
				return err
			}
		}
	}
	if h.Live != nil {
		if err := put(jsonLine{Live: h.Live}); err != nil {
			return err
		}
	}
	if h.Avail != nil {
		if err := put(jsonLine{Avail: h.Avail}); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// ReadJSONL reads a history written by WriteJSONL (or an external tool
// following the same format) and validates it. Unknown fields are rejected
// (a misspelt field would otherwise read as zero and mislead the checkers).
// Errors wrap ErrMalformed and name the line.
func ReadJSONL(r io.Reader) (*History, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxJSONLLine)
	h := &History{}
	lineNo, haveRun := 0, false
	for sc.Scan() {
		lineNo++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var l jsonLine
		if err := dec.Decode(&l); err != nil {
			return nil, malformed("line %d: %v", lineNo, err)
		}
		if dec.More() {
			return nil, malformed("line %d: more than one value", lineNo)
		}
		set := 0
		for _, p := range []bool{l.Run != nil, l.Op != nil, l.Obs != nil, l.Final != nil, l.FinalNode != nil, l.Live != nil, l.Avail != nil} {
			if p {
				set++
			}
		}
		if set != 1 {
			return nil, malformed("line %d: %d record kinds on one line (want 1)", lineNo, set)
		}
		if !haveRun && l.Run == nil {
			return nil, malformed("line %d: first record is not the run", lineNo)
		}
		switch {
		case l.Run != nil:
			if haveRun {
				return nil, malformed("line %d: second run record", lineNo)
			}
			h.Run, haveRun = *l.Run, true
		case l.Op != nil:
			h.Ops = append(h.Ops, *l.Op)
		case l.Obs != nil:
			h.Obs = append(h.Obs, *l.Obs)
		case l.Final != nil:
			if h.Final != nil {
				return nil, malformed("line %d: second final record", lineNo)
			}
			h.Final = &FinalState{Time: l.Final.Time}
		case l.FinalNode != nil:
			if h.Final == nil {
				return nil, malformed("line %d: final_node before final", lineNo)
			}
			h.Final.Nodes = append(h.Final.Nodes, *l.FinalNode)
		case l.Live != nil:
			if h.Live != nil {
				return nil, malformed("line %d: second live record", lineNo)
			}
			h.Live = l.Live
		case l.Avail != nil:
			if h.Avail != nil {
				return nil, malformed("line %d: second avail record", lineNo)
			}
			h.Avail = l.Avail
		}
	}
	if err := sc.Err(); err != nil {
		return nil, malformed("after line %d: %v", lineNo, err)
	}
	if !haveRun {
		return nil, malformed("no run record")
	}
	if err := h.Validate(); err != nil {
		return nil, err
	}
	return h, nil
}
