// Package node composes one walraft node: per-partition group-commit WALs,
// the Raft batch proposer, an etcd raft RawNode with durable storage, the
// state machine and the produce/fetch handler, all driven by the node's
// environment (package core/env) from a single event loop.
//
// The produce path (DESIGN.md section 2):
//
//	Produce → leadership gate → WAL.Append (offsets assigned)
//	   acks=0 answered now
//	WAL fsync done → acks=1 answered; BatchNotice
//	BatchNotice → one Raft proposal per batch (batch id registered first)
//	Raft commit → StateMachine.Apply on every node → HWM; acks=-1 answered
//
// The pipelined path (Config.Path == PathPipelined, pipeline.go) proposes a
// batch when the WAL has written it, so its fsync overlaps replication;
// pipeline.go's doc says what each answer then means and why recovery keeps
// every rule of DESIGN.md section 3.
//
// The produce handler lives in this package rather than in a package of its
// own because the leadership gate, the Raft loop and the WAL notices share
// state that would otherwise need a second copy.
//
// On the batch and legacy paths the Raft loop follows etcd raft's Ready
// contract with one Ready in flight (the pipelined path uses asynchronous
// storage writes instead, async.go):
// save HardState and entries, sync when raft.MustSync says so (new entries,
// a new term or vote), then send the Ready's messages, apply its committed
// entries, and Advance. A Ready that only moves the commit index is written
// but not synced before its entries are applied: the next sync carries it.
//
// That makes the HWM a node exposed able to run ahead of its durable commit
// index, and a restarted node re-applies only what its durable commit index
// covers. So that no client ever sees a node's HWM move backward (DESIGN.md
// S3, restarts included), a restarted node whose log holds entries past its
// durable commit index is recovering: it withholds its HWM (Fetch answers
// ErrRecovering, Status.Recovering is true) until it has applied up to that
// log end, or up to the point where a leader overwrote its log (an entry
// overwritten was never committed, so no HWM exposed before the crash covered
// it). Everything a node applies is in its synced log, so the HWM it exposed
// before a crash never exceeds the log end it recovers.
package node

import (
	"errors"
	"fmt"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"walraft/core/env"
	"walraft/core/proposer"
	"walraft/core/raftlog"
	"walraft/core/statemach"
	"walraft/core/wal"
)

// Errors a produce or fetch can end with. Whether a produce error is
// definite (the write did not and will not happen) or indeterminate is in
// ProduceResponse.Indeterminate.
var (
	// ErrNotLeader: this node does not accept produce now; LeaderHint names
	// the leader it knows (0 if none). Definite.
	ErrNotLeader = errors.New("node: not leader")
	// ErrTimeout: no answer within AcksTimeout. Indeterminate.
	ErrTimeout = errors.New("node: request timed out")
	// ErrStorage: the partition's WAL failed (fsync error): fail-stop.
	ErrStorage = errors.New("node: storage error")
	// ErrInvalid: a bad request (no records, too many, too large).
	ErrInvalid = errors.New("node: invalid request")
	// ErrUnknownPartition: no such topic or partition.
	ErrUnknownPartition = statemach.ErrUnknownPartition
	// ErrBackpressure: too much is pending; retry later. Definite.
	ErrBackpressure = errors.New("node: back-pressure")
	// ErrNotReady: the node has not started yet: what it recovered is not
	// durable yet (see New). Definite.
	ErrNotReady = errors.New("node: not ready")
	// ErrNodeFailed: the node stopped after a storage failure (it must be
	// restarted). Indeterminate for requests in flight.
	ErrNodeFailed = errors.New("node: failed")
	// ErrRecovering: the node restarted and has not yet applied every
	// entry its durable log may have exposed before the crash; it withholds
	// its HWM until then (see the package doc). Retriable: ask another node
	// or later.
	ErrRecovering = errors.New("node: recovering")
	// ErrOffsetOutOfRange: a fetch offset beyond the HWM.
	ErrOffsetOutOfRange = errors.New("node: offset out of range")
	// ErrProposalDropped: Raft refused the proposal. Definite.
	ErrProposalDropped = errors.New("node: proposal dropped")
)

// Acks is the produce acknowledgement level.
type Acks int8

// The three acks levels.
const (
	AcksNone   Acks = 0
	AcksLeader Acks = 1
	AcksAll    Acks = -1
)

// String renders the level as Kafka spells it.
func (a Acks) String() string {
	switch a {
	case AcksNone:
		return "0"
	case AcksLeader:
		return "1"
	case AcksAll:
		return "all"
	}
	return fmt.Sprintf("acks(%d)", int8(a))
}

// ProduceRequest appends records to one partition.
type ProduceRequest struct {
	Topic     string
	Partition int32
	Acks      Acks
	Records   [][]byte
}

// ProduceResponse answers a produce.
type ProduceResponse struct {
	// Err is nil on success.
	Err error
	// Indeterminate is true when the write may or may not have happened.
	Indeterminate bool
	// BaseOffset is the offset of the first record (valid on success, and
	// for acks=0 the offset the leader assigned).
	BaseOffset int64
	// LeaderHint names the leader this node knows (with ErrNotLeader).
	LeaderHint uint64
	// Term and Index of the Raft entry that resolved an acks=-1 request.
	Term, Index uint64
}

// FetchRequest reads a partition from an offset.
type FetchRequest struct {
	Topic     string
	Partition int32
	Offset    int64
	MaxBytes  int
}

// Record is one fetched record.
type Record struct {
	Offset int64
	Value  []byte
}

// FetchResponse holds records below the HWM, and the HWM and log end the
// node had when it answered.
type FetchResponse struct {
	Err     error
	Records []Record
	HWM     int64
	LogEnd  int64
}

// Role is the node's Raft role.
type Role int

// Roles.
const (
	RoleFollower Role = iota
	RoleCandidate
	RoleLeader
	RoleStandalone
)

// String names the role.
func (r Role) String() string {
	return [...]string{"follower", "candidate", "leader", "standalone"}[r]
}

// PartitionStatus is one partition's state on a node.
type PartitionStatus struct {
	Topic      string
	Partition  int32
	HWM        int64
	Committed  int64
	LogEnd     int64
	DurableEnd int64
}

// Status is a node's observable state.
type Status struct {
	ID      uint64
	Role    Role
	Term    uint64
	Lead    uint64
	Gate    bool // accepts produce
	Applied uint64
	Ready   bool
	// Recovering: restarted and not yet caught up with what it may have
	// exposed before the crash; HWMs are withheld from clients until then.
	Recovering bool
	Failed     error
	// Queued: produce requests taken and still in a partition's queue
	// (waiting for their WAL batch's fsync notice, or cut by a truncation
	// and not yet removed). Pending: batches the proposer tracks for
	// acks=-1 waiters. Both are 0 on a node that has nothing in flight:
	// the harness's liveness check (L1) requires it once everything healed
	// and every client was answered, so that a request the node answered
	// but kept (a leak that ends in permanent back-pressure) shows.
	Queued, Pending int
}

type unit struct {
	key   statemach.Key
	base  int64
	n     int
	term  uint64
	acks  Acks
	reply func(ProduceResponse)
	timer env.Timer
	done  bool
	// proposed: the pipelined path proposed the unit's batch before its
	// fsync completed (pipeline.go); handled: onWrite has seen it.
	proposed, handled bool
}

func (u *unit) end() int64 { return u.base + int64(u.n) }

// Node is one walraft node. It is not safe for concurrent use: every method
// must be called from the node's event loop.
type Node struct {
	cfg        Config
	env        env.Env
	bugs       Bugs
	standalone bool

	wals    map[statemach.Key]*wal.WAL
	sm      *statemach.StateMachine
	prop    *proposer.Proposer
	storage *raftlog.Storage
	rn      *raft.RawNode

	queued  map[statemach.Key][]*unit // accepted, not yet noticed, by base
	nqueued int

	readyInFlight bool
	// syncsOut counts Raft-log syncs queued by the pipelined path's
	// asynchronous storage writes and not yet completed (async.go);
	// lastSync is the last of them while it runs, and mustSync says that
	// records a response must wait for (entries, a new term or vote) were
	// written since it was queued.
	syncsOut int
	lastSync *asyncSync
	mustSync bool
	// stableAck is the (index, term) of the last storage acknowledgement
	// (MsgStorageAppendResp) stepped, so that a repeat is not (deliver).
	stableAck [2]uint64
	// cutsHeld: the WALs hold their cuts while a pipelined leader's
	// Raft-log sync runs (updateCutHold).
	cutsHeld bool
	// writtenTerm and durableTerm are the terms of the Raft log's last
	// HardState written and synced; held are messages waiting for their
	// term to be durable (async.go).
	writtenTerm, durableTerm uint64
	held                     []*pb.Message
	tick                     env.Timer
	role                     Role
	term, lead               uint64
	gate                     bool
	applied                  uint64
	// reapplying is set while openRaft re-applies the durably committed
	// entries (pipeline.go traces the WAL records this rewrites).
	reapplying bool
	// recoverTo is the Raft index a restarted node must apply before it
	// exposes its HWM again (0: not recovering). See the package doc.
	recoverTo uint64
	// booting counts the logs whose recovery sync is still out; the node
	// starts (started) when the last one completes (see New).
	booting  int
	started  bool
	batchSeq uint64
	failed   error
	closed   bool
	// syncs tracks outstanding fsyncs; hung is set while one is older than
	// DiskStallTimeout (health.go).
	syncs *syncWatch
	hung  bool
}

// New opens a node, recovering its logs from disk. The node starts
// (Status.Ready) once the first sync of every log completes: recovery reads
// through the page cache, which after a process killed with its machine up
// holds writes that never reached the disk, and nothing the node read back
// may be acknowledged, applied or exposed before it is durable.
func New(cfg Config, e env.Env) (*Node, error) { return NewWithBugs(cfg, e, Bugs{}) }

// NewWithBugs is New with known-bad variants switched on. It exists for the
// harness's self-test (scenarios' variants); never use it to run a system.
func NewWithBugs(cfg Config, e env.Env, bugs Bugs) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	n := &Node{
		cfg: cfg, env: e, bugs: bugs, standalone: cfg.Standalone(),
		wals:   make(map[statemach.Key]*wal.WAL),
		queued: make(map[statemach.Key][]*unit),
		prop:   proposer.New(proposer.Config{MaxPending: cfg.MaxPendingBatches, ByIndexOnly: bugs.WaiterByIndexOnly}),
	}
	e = n.watchSyncs(e)
	n.env = e
	logs := make(map[statemach.Key]statemach.PartitionLog)
	for _, t := range cfg.Topics {
		for p := int32(0); p < t.Partitions; p++ {
			k := statemach.Key{Topic: t.Name, Partition: p}
			w, err := wal.OpenWithBugs(e, WALDir(cfg, t.Name, p), t.Name, p, cfg.WAL, func(nt wal.BatchNotice) { n.onNotice(k, nt) },
				wal.Bugs{RetryFailedSync: bugs.RetryFsyncAssumeSuccess, NoCutAfterSync: bugs.WALLostWakeup, KeepPartialAppend: bugs.KeepTornRequest,
					CutAtCorruption: bugs.CutAtCorruption, JoinInflightSync: bugs.WALJoinInflightSync, IgnoreSyncError: bugs.WALIgnoreSyncError,
					BgSyncCoversQueued: bugs.WALBgSyncOverclaims, DurableAtOpen: bugs.StartBeforeRecoverySync, NoRecoveryRewrite: bugs.RecoveryNoRewrite, CutKeepsDurableMark: bugs.WALCutKeepsDurableMark})
			if err != nil {
				n.closeLogs()
				return nil, fmt.Errorf("node %d: open WAL %s/%d: %w", cfg.ID, t.Name, p, err)
			}
			if n.pipelined() {
				w.OnWrite(func(nt wal.BatchNotice) { n.onWrite(k, nt) })
			}
			n.wals[k] = w
			logs[k] = w
		}
	}
	n.sm = statemach.New(logs, statemach.Options{NoTruncate: bugs.NoTruncateOnLeaderChange, HWMAhead: bugs.HWMBeforeCommit, AcceptStale: bugs.AcceptStaleBatch, TrustOwn: bugs.TrustOwnBatches,
		DeferApplySync: n.pipelined()}, n.fail)
	for _, k := range n.sm.Keys() {
		if w := n.wals[k]; w.Recovering() && !bugs.StartBeforeRecoverySync {
			n.booting++
			w.OnRecovered(n.logRecovered)
		}
	}
	if n.standalone {
		n.role = RoleStandalone
	} else if err := n.openRaft(); err != nil {
		n.closeLogs()
		return nil, err
	}
	if n.booting == 0 {
		n.start()
	}
	return n, nil
}

// logRecovered is the end of one log's recovery sync (see New): the node
// starts after the last one, or stops if one failed.
func (n *Node) logRecovered(err error) {
	if n.closed || n.failed != nil {
		return
	}
	if err != nil {
		n.fail(fmt.Errorf("node %d: recovery sync: %w", n.cfg.ID, err))
		return
	}
	if n.booting--; n.booting == 0 {
		n.start()
	}
}

// start runs once what the node recovered is durable: a standalone node
// moves its HWMs to the WALs' durable ends; a cluster node re-applies its
// durably committed entries and starts its Raft loop. Until then it
// answers nothing (Produce: ErrNotReady; Fetch: ErrRecovering) and drops
// Raft messages, so it never acknowledges, applies or exposes what a
// process killed with its machine up left only in the page cache.
func (n *Node) start() {
	n.started = true
	if n.standalone {
		for _, k := range n.sm.Keys() {
			n.sm.Partition(k).SetDurable(n.wals[k].DurableEnd())
		}
		n.trace("node.start", 0, 0, 0, 0)
		return
	}
	if err := n.reapply(); err != nil {
		n.fail(err)
		return
	}
	n.armTick()
	n.trace("node.start", int64(n.applied), int64(n.storage.HardState().GetTerm()), 0, 0)
	n.maybeReady()
}

// ID returns the node's id.
func (n *Node) ID() uint64 { return n.cfg.ID }

// Config returns the node's configuration with defaults filled in.
func (n *Node) Config() Config { return n.cfg }

// Close stops the node and closes its files. Pending callbacks that still
// arrive are ignored.
func (n *Node) Close() {
	if n.closed {
		return
	}
	n.closed = true
	if n.tick != nil {
		n.tick.Stop()
	}
	n.closeLogs()
}

func (n *Node) closeLogs() {
	for _, k := range sortedKeys(n.wals) {
		n.wals[k].Close()
	}
	if n.storage != nil {
		n.storage.Close()
	}
}

// Failed returns the error that stopped the node, or nil.
func (n *Node) Failed() error { return n.failed }

// Healthy returns the error that stopped the node, or else the first
// failure of one of its logs that the node has not run into yet (a WAL or
// Raft log sync it issued on its own failed: the next request would stop
// it), or nil. A supervisor restarts a node that is not healthy.
func (n *Node) Healthy() error {
	if n.failed != nil {
		return n.failed
	}
	for _, k := range n.sm.Keys() {
		if err := n.wals[k].Err(); err != nil {
			return err
		}
	}
	if n.storage != nil {
		return n.storage.Err()
	}
	return nil
}

// Status returns the node's observable state.
func (n *Node) Status() Status {
	return Status{ID: n.cfg.ID, Role: n.role, Term: n.term, Lead: n.lead, Gate: n.acceptsProduce(),
		Applied: n.applied, Ready: n.started, Recovering: n.recoverTo > 0 || !n.started, Failed: n.failed,
		Queued: n.nqueued, Pending: n.prop.Len()}
}

// Partitions returns every partition's state, sorted by topic and partition.
func (n *Node) Partitions() []PartitionStatus {
	out := make([]PartitionStatus, 0, len(n.wals))
	for _, k := range n.sm.Keys() {
		out = append(out, n.partitionStatus(k))
	}
	return out
}

// PartitionStatus returns one partition's state (ok false if unknown).
func (n *Node) PartitionStatus(topic string, partition int32) (PartitionStatus, bool) {
	k := statemach.Key{Topic: topic, Partition: partition}
	if n.sm.Partition(k) == nil {
		return PartitionStatus{}, false
	}
	return n.partitionStatus(k), true
}

func (n *Node) partitionStatus(k statemach.Key) PartitionStatus {
	p, w := n.sm.Partition(k), n.wals[k]
	return PartitionStatus{Topic: k.Topic, Partition: k.Partition, HWM: p.HWM(), Committed: p.Committed(),
		LogEnd: w.End(), DurableEnd: w.DurableEnd()}
}

// RaftEntries returns the committed Raft entries in [lo, hi) (for checkers).
func (n *Node) RaftEntries(lo, hi uint64) ([]*pb.Entry, error) {
	if n.storage == nil {
		return nil, nil
	}
	if hi > n.applied+1 {
		hi = n.applied + 1
	}
	if lo >= hi {
		return nil, nil
	}
	return n.storage.Entries(lo, hi, 1<<62)
}

// fail stops the node after a storage failure: it answers nothing more, and
// every request in flight ends indeterminate. The process must be
// restarted (recovery reopens the logs).
func (n *Node) fail(err error) {
	if err == nil || n.failed != nil {
		return
	}
	n.failed = err
	n.gate = false
	n.trace("node.fail", 0, 0, 0, 0)
	if n.tick != nil {
		n.tick.Stop()
	}
	for _, k := range n.sm.Keys() {
		for _, u := range n.queued[k] {
			n.answer(u, ProduceResponse{Err: ErrNodeFailed, Indeterminate: true})
		}
	}
	for _, id := range n.prop.IDs() {
		n.prop.Fail(id, ErrNodeFailed)
	}
}

func (n *Node) trace(kind string, a, b, c, d int64) {
	n.env.Tracer.Trace(env.Event{Kind: kind, A: a, B: b, C: c, D: d})
}

func sortedKeys(m map[statemach.Key]*wal.WAL) []statemach.Key {
	keys := make([]statemach.Key, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortKeys(keys)
	return keys
}
