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
// The produce handler lives in this package rather than in a package of its
// own because the leadership gate, the Raft loop and the WAL notices share
// state that would otherwise need a second copy.
//
// The Raft loop follows etcd raft's Ready contract with one Ready in flight:
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
	"google.golang.org/protobuf/proto"

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
	// ErrNotReady: the node has not finished recovery. Definite.
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
	tick          env.Timer
	role          Role
	term, lead    uint64
	gate          bool
	applied       uint64
	// recoverTo is the Raft index a restarted node must apply before it
	// exposes its HWM again (0: not recovering). See the package doc.
	recoverTo uint64
	batchSeq  uint64
	failed    error
	closed    bool
}

// New opens (recovering from disk) and starts a node.
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
	logs := make(map[statemach.Key]statemach.PartitionLog)
	for _, t := range cfg.Topics {
		for p := int32(0); p < t.Partitions; p++ {
			k := statemach.Key{Topic: t.Name, Partition: p}
			dir := fmt.Sprintf("%swal/%s/%d", cfg.Dir, t.Name, p)
			w, err := wal.Open(e, dir, t.Name, p, cfg.WAL, func(nt wal.BatchNotice) { n.onNotice(k, nt) })
			if err != nil {
				n.closeLogs()
				return nil, fmt.Errorf("node %d: open WAL %s/%d: %w", cfg.ID, t.Name, p, err)
			}
			n.wals[k] = w
			logs[k] = w
		}
	}
	n.sm = statemach.New(logs, statemach.Options{NoTruncate: bugs.NoTruncateOnLeaderChange, HWMAhead: bugs.HWMBeforeCommit}, n.fail)
	if n.standalone {
		n.role = RoleStandalone
		for _, k := range n.sm.Keys() {
			n.sm.Partition(k).SetDurable(n.wals[k].DurableEnd())
		}
		n.trace("node.start", 0, 0, 0, 0)
		return n, nil
	}
	if err := n.openRaft(); err != nil {
		n.closeLogs()
		return nil, err
	}
	n.armTick()
	n.trace("node.start", int64(n.applied), int64(n.storage.HardState().GetTerm()), 0, 0)
	return n, nil
}

// openRaft recovers the Raft log, re-applies every durably committed entry
// (so the HWM is back where it was before the node answers anything), and
// builds the RawNode.
func (n *Node) openRaft() error {
	st, err := raftlog.Open(n.env.FS, n.cfg.Dir+"raft", n.cfg.Peers, raftlog.Options{Log: n.cfg.RaftLog, InMemory: n.bugs.InMemoryRaftLog})
	if err != nil {
		return fmt.Errorf("node %d: %w", n.cfg.ID, err)
	}
	n.storage = st
	hs := st.HardState()
	commit := hs.GetCommit()
	if commit > 0 {
		ents, err := st.Entries(1, commit+1, 1<<62)
		if err != nil {
			return fmt.Errorf("node %d: read committed entries up to %d: %w", n.cfg.ID, commit, err)
		}
		for _, e := range ents {
			if err := n.applyEntry(e); err != nil {
				return fmt.Errorf("node %d: re-apply entry %d: %w", n.cfg.ID, e.GetIndex(), err)
			}
		}
	}
	n.applied = commit
	n.term = hs.GetTerm()
	last, err := st.LastIndex()
	if err != nil {
		return fmt.Errorf("node %d: raft log last index: %w", n.cfg.ID, err)
	}
	if last > commit {
		// Entries past the durable commit index may have been applied
		// (and their HWM exposed) before the crash.
		n.recoverTo = last
		n.trace("node.recovering", int64(last), int64(commit), 0, 0)
	}
	rc := &raft.Config{
		ID:                        n.cfg.ID,
		ElectionTick:              n.cfg.ElectionTicks,
		HeartbeatTick:             n.cfg.HeartbeatTicks,
		Storage:                   st,
		Applied:                   commit,
		MaxSizePerMsg:             n.cfg.MaxSizePerMsg,
		MaxCommittedSizePerReady:  n.cfg.MaxCommittedSizePerReady,
		MaxInflightMsgs:           n.cfg.MaxInflightMsgs,
		CheckQuorum:               true,
		PreVote:                   true,
		DisableProposalForwarding: true,
		Logger:                    &raftLogger{n: n},
	}
	rn, err := raft.NewRawNode(rc)
	if err != nil {
		return fmt.Errorf("node %d: raft: %w", n.cfg.ID, err)
	}
	n.rn = rn
	return nil
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

// Status returns the node's observable state.
func (n *Node) Status() Status {
	return Status{ID: n.cfg.ID, Role: n.role, Term: n.term, Lead: n.lead, Gate: n.acceptsProduce(),
		Applied: n.applied, Ready: true, Recovering: n.recoverTo > 0, Failed: n.failed}
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

func (n *Node) acceptsProduce() bool {
	return n.failed == nil && !n.closed && (n.standalone || (n.role == RoleLeader && n.gate))
}

// Produce handles a produce request. reply is called exactly once: before
// Produce returns for acks=0 and for requests refused at once, later from an
// event for the rest.
func (n *Node) Produce(req ProduceRequest, reply func(ProduceResponse)) {
	defer n.maybeReady()
	k := statemach.Key{Topic: req.Topic, Partition: req.Partition}
	w := n.wals[k]
	switch {
	case n.failed != nil || n.closed:
		reply(ProduceResponse{Err: ErrNodeFailed})
		return
	case w == nil:
		reply(ProduceResponse{Err: fmt.Errorf("%w: %s/%d", ErrUnknownPartition, req.Topic, req.Partition)})
		return
	case req.Acks != AcksNone && req.Acks != AcksLeader && req.Acks != AcksAll:
		reply(ProduceResponse{Err: fmt.Errorf("%w: acks %d", ErrInvalid, req.Acks)})
		return
	case len(req.Records) == 0 || len(req.Records) > n.cfg.MaxRequestRecords:
		reply(ProduceResponse{Err: fmt.Errorf("%w: %d records (1 to %d allowed)", ErrInvalid, len(req.Records), n.cfg.MaxRequestRecords)})
		return
	}
	for i, r := range req.Records {
		if len(r) > n.cfg.MaxRecordBytes {
			reply(ProduceResponse{Err: fmt.Errorf("%w: record %d is %d bytes (max %d)", ErrInvalid, i, len(r), n.cfg.MaxRecordBytes)})
			return
		}
	}
	if !n.acceptsProduce() {
		reply(ProduceResponse{Err: ErrNotLeader, LeaderHint: n.lead})
		return
	}
	if n.nqueued >= n.cfg.MaxQueuedUnits || (!n.standalone && n.prop.Full()) {
		reply(ProduceResponse{Err: ErrBackpressure})
		return
	}
	u := &unit{key: k, n: len(req.Records), term: n.term, acks: req.Acks, reply: reply}
	base, err := w.Append(req.Records, func(err error) { n.onDurable(u, err) })
	if err != nil {
		reply(ProduceResponse{Err: n.walError(err)})
		if errors.Is(err, wal.ErrFailed) {
			// The WAL stopped on its own I/O (a recovery sync, say):
			// stop the node so that it is restarted and recovers.
			n.fail(fmt.Errorf("WAL %s/%d: %w", k.Topic, k.Partition, err))
		}
		return
	}
	u.base = base
	n.queued[k] = append(n.queued[k], u)
	n.nqueued++
	n.trace("produce", int64(k.Partition), base, int64(u.n), int64(req.Acks))
	if req.Acks == AcksNone || (req.Acks == AcksLeader && n.bugs.AckBeforeFsync) {
		n.answer(u, ProduceResponse{BaseOffset: base})
	} else {
		u.timer = n.env.Clock.AfterFunc(n.cfg.AcksTimeout, func() {
			n.answer(u, ProduceResponse{Err: ErrTimeout, Indeterminate: true})
		})
	}
	if n.bugs.NoticeBeforeFsync && !n.standalone {
		n.propose(k, []*unit{u}, req.Records)
	}
}

// walError maps a WAL error to a produce error.
func (n *Node) walError(err error) error {
	switch {
	case errors.Is(err, wal.ErrTooLarge):
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	case errors.Is(err, wal.ErrBackpressure):
		return fmt.Errorf("%w: %v", ErrBackpressure, err)
	case errors.Is(err, wal.ErrFailed):
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	return err
}

// answer ends a unit once.
func (n *Node) answer(u *unit, r ProduceResponse) {
	if u.done {
		return
	}
	u.done = true
	if u.timer != nil {
		u.timer.Stop()
	}
	if r.Err == nil && r.BaseOffset == 0 {
		r.BaseOffset = u.base
	}
	if r.Err != nil {
		n.trace("produce.fail", int64(u.key.Partition), u.base, int64(u.n), int64(u.acks))
	} else {
		n.trace("produce.ok", int64(u.key.Partition), u.base, int64(u.n), int64(u.acks))
	}
	u.reply(r)
}

// onDurable runs when the WAL finished (or failed) the batch holding u.
func (n *Node) onDurable(u *unit, err error) {
	if n.closed {
		return
	}
	if err != nil {
		n.dequeue(u)
		// In a cluster a batch whose fsync failed is never proposed, so the
		// write will not happen (unless it is reproposed by a buggy
		// variant). In standalone mode the records may still be found on
		// disk after a restart: the outcome is unknown.
		n.answer(u, ProduceResponse{Err: n.walError(err), Indeterminate: n.standalone && errors.Is(err, wal.ErrFailed)})
		if errors.Is(err, wal.ErrFailed) {
			// Stop the node in an event of its own, after the WAL has
			// answered every unit of the failed batch (definitely).
			n.env.Clock.AfterFunc(0, func() {
				n.fail(fmt.Errorf("WAL %s/%d: %w", u.key.Topic, u.key.Partition, err))
			})
		}
		return
	}
	if n.standalone {
		// Standalone: what is fsynced is committed. Move the HWM before
		// answering so an acks=-1 reply never precedes its HWM.
		if p := n.sm.Partition(u.key); n.wals[u.key].DurableEnd() > p.HWM() {
			p.SetDurable(n.wals[u.key].DurableEnd())
		}
	}
	if u.acks == AcksLeader || (n.standalone && u.acks == AcksAll) {
		n.answer(u, ProduceResponse{})
	}
}

// dequeue removes u from its partition's queue.
func (n *Node) dequeue(u *unit) {
	q := n.queued[u.key]
	for i, x := range q {
		if x == u {
			n.queued[u.key] = append(q[:i], q[i+1:]...)
			n.nqueued--
			return
		}
	}
}

// onNotice runs after a WAL batch's fsync completed and its waiters were
// answered.
func (n *Node) onNotice(k statemach.Key, nt wal.BatchNotice) {
	if n.closed {
		return
	}
	defer n.maybeReady()
	n.trace("wal.notice", int64(k.Partition), nt.Base, nt.Last, int64(nt.Seq))
	// The batch may also hold records the state machine appended (a
	// follower's apply writes, or committed entries still queued when the
	// leader's first produce arrived): only the produce units in it are
	// proposed, and they are a contiguous run at the batch's end.
	q := n.queued[k]
	i := 0
	for i < len(q) && q[i].base <= nt.Last {
		i++
	}
	units := q[:i:i]
	n.queued[k] = q[i:]
	n.nqueued -= i
	if n.standalone {
		if p := n.sm.Partition(k); n.wals[k].DurableEnd() > p.HWM() {
			p.SetDurable(n.wals[k].DurableEnd())
		}
		n.trace("hwm", int64(k.Partition), n.sm.Partition(k).HWM(), 0, 0)
		return
	}
	if len(units) == 0 || n.bugs.NoticeBeforeFsync {
		return // a follower's apply write, or already proposed
	}
	contiguous := units[0].base >= nt.Base && units[len(units)-1].end() == nt.Last+1
	for j := 1; j < len(units); j++ {
		contiguous = contiguous && units[j].base == units[j-1].end()
	}
	if !contiguous || !n.acceptsProduce() {
		n.failUnproposed(units)
		return
	}
	for _, u := range units {
		if u.term != n.term {
			n.failUnproposed(units)
			return
		}
	}
	n.propose(k, units, nt.Records[units[0].base-nt.Base:])
}

// failUnproposed ends the acks=-1 units of a batch that will not be
// proposed (this node is no longer the leader of the term that accepted
// them): definite, since no entry carries them.
func (n *Node) failUnproposed(units []*unit) {
	for _, u := range units {
		if u.acks == AcksAll {
			n.answer(u, ProduceResponse{Err: ErrNotLeader, LeaderHint: n.lead})
		}
	}
}

// propose proposes units' records (offsets units[0].base onward) as one batch
// entry, or one canonical entry per record on the legacy path.
func (n *Node) propose(k statemach.Key, units []*unit, records [][]byte) {
	base := units[0].base
	p := n.sm.Partition(k)
	type prop struct {
		off     int64 // offset of the entry's first record
		id      statemach.BatchID
		data    []byte
		waiters []proposer.Waiter
	}
	var props []prop
	legacy := n.cfg.Path == PathLegacy
	waiter := func(u *unit) proposer.Waiter {
		return func(r proposer.Result) {
			if r.Err != nil {
				// A node that stopped may still see the entry commit
				// elsewhere: that outcome is unknown. On the legacy path a
				// request of several records is several entries, resolved
				// by the last: when it fails, earlier ones may have
				// committed (the per-record design is not atomic). Every
				// other proposer error is definite.
				indet := errors.Is(r.Err, ErrNodeFailed) || (legacy && u.n > 1)
				n.answer(u, ProduceResponse{Err: r.Err, Indeterminate: indet})
				return
			}
			n.answer(u, ProduceResponse{Term: r.Term, Index: r.Index})
		}
	}
	if n.cfg.Path == PathLegacy {
		ui := 0
		for i, rec := range records {
			n.batchSeq++
			id := statemach.BatchID{Node: n.cfg.ID, Term: n.term, Seq: n.batchSeq}
			pr := prop{off: base + int64(i), id: id, data: statemach.EncodeCanonical(id, k.Topic, k.Partition, base+int64(i), rec)}
			for ui < len(units) && units[ui].end() == base+int64(i)+1 {
				if units[ui].acks == AcksAll {
					pr.waiters = append(pr.waiters, waiter(units[ui]))
				}
				ui++
			}
			props = append(props, pr)
		}
	} else {
		n.batchSeq++
		id := statemach.BatchID{Node: n.cfg.ID, Term: n.term, Seq: n.batchSeq}
		pr := prop{off: base, id: id, data: statemach.EncodeBatch(id, k.Topic, k.Partition, base, records, n.bugs.MetadataOnly)}
		for _, u := range units {
			if u.acks == AcksAll {
				pr.waiters = append(pr.waiters, waiter(u))
			}
		}
		props = append(props, pr)
	}
	for i, pr := range props {
		// Only entries with acks=-1 waiters are tracked (and count against
		// MaxPendingBatches); an acks=0/1-only entry needs no bookkeeping.
		err := error(nil)
		if len(pr.waiters) > 0 {
			err = n.prop.Add(pr.id, pr.waiters)
		}
		if err == nil {
			if n.cfg.Path == PathBatch {
				p.NoteOwn(base, pr.id)
			}
			if perr := n.rn.Propose(pr.data); perr != nil {
				n.prop.Fail(pr.id, fmt.Errorf("%w: %v", ErrProposalDropped, perr))
				err = ErrProposalDropped
				pr.waiters = nil
			}
		}
		if err != nil {
			// This entry is not in the Raft log, and later offsets can
			// never apply after a gap: fail it and what follows, and reuse
			// the offsets from here.
			for _, rest := range props[i:] {
				for _, w := range rest.waiters {
					w(proposer.Result{Err: err})
				}
			}
			n.dropSuffix(k, pr.off)
			return
		}
		n.trace("propose", int64(k.Partition), pr.off, int64(len(records)), int64(pr.id.Seq))
		if n.bugs.HWMBeforeCommit {
			p.BugHWMAhead(base + int64(len(records)))
		}
	}
}

// dropSuffix truncates a partition's WAL at off, failing every queued unit
// at or beyond it.
func (n *Node) dropSuffix(k statemach.Key, off int64) {
	w := n.wals[k]
	if w.End() <= off {
		return
	}
	n.trace("wal.truncate", int64(k.Partition), off, w.End(), 0)
	n.sm.Partition(k).ForgetOwnFrom(off)
	w.Truncate(off, func(err error) {
		if err != nil {
			n.fail(fmt.Errorf("truncate WAL %s/%d at %d: %w", k.Topic, k.Partition, off, err))
		}
	})
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

// Fetch reads committed records (below the HWM) of a partition. Any node
// answers, leader or not.
func (n *Node) Fetch(req FetchRequest) FetchResponse {
	k := statemach.Key{Topic: req.Topic, Partition: req.Partition}
	p := n.sm.Partition(k)
	if p == nil {
		return FetchResponse{Err: fmt.Errorf("%w: %s/%d", ErrUnknownPartition, req.Topic, req.Partition)}
	}
	if n.failed != nil || n.closed {
		return FetchResponse{Err: ErrNodeFailed}
	}
	if n.recoverTo > 0 {
		return FetchResponse{Err: ErrRecovering}
	}
	w := n.wals[k]
	resp := FetchResponse{HWM: p.HWM(), LogEnd: w.End()}
	if req.Offset < w.Start() || req.Offset > resp.HWM {
		resp.Err = fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, req.Offset, w.Start(), resp.HWM)
		return resp
	}
	if req.Offset == resp.HWM {
		return resp
	}
	maxBytes := req.MaxBytes
	if maxBytes <= 0 {
		maxBytes = 1 << 20
	}
	recs, err := w.Read(req.Offset, maxBytes)
	if err != nil {
		resp.Err = err
		return resp
	}
	for i, r := range recs {
		off := req.Offset + int64(i)
		if off >= resp.HWM {
			break
		}
		resp.Records = append(resp.Records, Record{Offset: off, Value: r})
	}
	return resp
}

// Receive handles a message from another node.
func (n *Node) Receive(from uint64, msg []byte) {
	if n.standalone || n.closed || n.failed != nil {
		return
	}
	m, err := decodeMessage(msg)
	if err != nil {
		n.trace("msg.bad", int64(from), int64(len(msg)), 0, 0)
		return
	}
	if m.GetFrom() != from || m.GetTo() != n.cfg.ID || raft.IsLocalMsg(m.GetType()) {
		n.trace("msg.misaddressed", int64(from), int64(m.GetFrom()), int64(m.GetTo()), 0)
		return
	}
	// Errors here are expected (a message for an unknown peer, a stale
	// local message) and leave raft unchanged.
	_ = n.rn.Step(m)
	n.maybeReady()
}

func (n *Node) armTick() {
	n.tick = n.env.Clock.AfterFunc(n.cfg.TickInterval, func() {
		if n.closed || n.failed != nil {
			return
		}
		n.rn.Tick()
		n.armTick()
		n.maybeReady()
	})
}

// maybeReady handles the next Ready if none is in flight.
func (n *Node) maybeReady() {
	if n.standalone || n.readyInFlight || n.closed || n.failed != nil || !n.rn.HasReady() {
		return
	}
	rd := n.rn.Ready()
	n.readyInFlight = true
	if rd.SoftState != nil {
		n.onSoftState(*rd.SoftState)
	}
	if rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState) && rd.HardState.GetTerm() != n.term {
		n.term = rd.HardState.GetTerm()
		n.trace("raft.term", int64(n.term), int64(n.lead), 0, 0)
	}
	for _, e := range rd.Entries {
		if e.GetType() == pb.EntryNormal && len(e.Data) > 0 {
			if id, ok := statemach.PeekID(e.Data); ok && id.Node == n.cfg.ID {
				n.prop.Assigned(id, e.GetTerm(), e.GetIndex())
			}
		}
	}
	if len(rd.Entries) > 0 && rd.Entries[0].GetIndex() <= n.recoverTo {
		// A leader overwrites our log from this index: our entries from
		// here on were never committed, so no HWM we exposed covered them.
		n.recoverTo = rd.Entries[0].GetIndex() - 1
		n.trace("node.recover.cut", int64(n.recoverTo), int64(n.applied), 0, 0)
		n.checkRecovered()
	}
	prev := n.storage.HardState()
	if err := n.storage.Save(rd.HardState, rd.Entries); err != nil {
		n.fail(err)
		return
	}
	// Only new entries and a new term or vote must be durable before the
	// Ready's messages leave and its entries apply (raft.MustSync). A
	// commit-index change alone is written now and synced with the next
	// Ready that needs a sync; a crash before then makes the restarted node
	// recover (package doc) instead of exposing a lower HWM.
	hs := rd.HardState
	if hs == nil {
		hs = prev
	}
	if n.storage.Dirty() && raft.MustSync(hs, prev, len(rd.Entries)) {
		// A leader may send its appends while its own copy of the same
		// entries is being persisted (etcd raft's doc.go, and the Raft
		// thesis 10.2.1): its own acknowledgement still waits for the sync
		// (raft counts it at Advance). Only when the term and vote are
		// unchanged: a new vote or term must be durable before any
		// message that depends on it leaves.
		if n.role == RoleLeader && (rd.HardState == nil ||
			(rd.HardState.GetTerm() == prev.GetTerm() && rd.HardState.GetVote() == prev.GetVote())) {
			rd.Messages = n.sendEarly(rd.Messages)
		}
		n.storage.Sync(func(err error) { n.afterPersist(rd, err) })
		return
	}
	n.afterPersist(rd, nil)
}

// sendEarly sends a leader's append and heartbeat messages now and returns
// the rest, in order, for after the sync.
func (n *Node) sendEarly(msgs []*pb.Message) []*pb.Message {
	var rest []*pb.Message
	for _, m := range msgs {
		switch m.GetType() {
		case pb.MsgApp, pb.MsgHeartbeat:
			n.send(m)
		default:
			rest = append(rest, m)
		}
	}
	return rest
}

func (n *Node) send(m *pb.Message) {
	b, err := encodeMessage(m)
	if err != nil {
		panic(fmt.Sprintf("node %d: marshal %s: %v", n.cfg.ID, raft.DescribeMessage(m, nil), err))
	}
	n.env.Net.Send(m.GetTo(), b)
}

func (n *Node) afterPersist(rd raft.Ready, err error) {
	if n.closed || n.failed != nil {
		return
	}
	if err != nil {
		n.fail(fmt.Errorf("raft log sync: %w", err))
		return
	}
	for _, m := range rd.Messages {
		n.send(m)
	}
	for _, e := range rd.CommittedEntries {
		if err := n.applyEntry(e); err != nil {
			n.fail(err)
		}
		if n.failed != nil {
			return // a log write failed while applying: the node stops here
		}
		n.applied = e.GetIndex()
		n.checkRecovered()
		if n.role == RoleLeader && !n.gate && e.GetTerm() == n.term {
			n.openGate()
		}
	}
	n.rn.Advance(rd)
	n.readyInFlight = false
	n.maybeReady()
}

// applyEntry applies one committed entry to the state machine and resolves
// waiters.
func (n *Node) applyEntry(e *pb.Entry) error {
	if e.GetType() != pb.EntryNormal || len(e.Data) == 0 {
		n.prop.Applied(e.GetTerm(), e.GetIndex(), statemach.BatchID{}, statemach.Stale)
		return nil
	}
	ent, err := statemach.Decode(e.Data)
	if err != nil {
		return fmt.Errorf("entry %d (term %d): %w", e.GetIndex(), e.GetTerm(), err)
	}
	res, err := n.sm.Apply(&ent)
	if err != nil {
		return fmt.Errorf("entry %d (term %d): %w", e.GetIndex(), e.GetTerm(), err)
	}
	// apply: A=index B=term C=base D=result (0 applied, 1 stale);
	// "apply.legacy" for a canonical (one record) entry.
	kind := "apply"
	if ent.Tag == statemach.TagCanonical {
		kind = "apply.legacy"
	}
	n.trace(kind, int64(e.GetIndex()), int64(e.GetTerm()), ent.Base, int64(res))
	n.prop.Applied(e.GetTerm(), e.GetIndex(), ent.ID, res)
	return nil
}

// checkRecovered ends recovery once the node applied up to recoverTo.
func (n *Node) checkRecovered() {
	if n.recoverTo > 0 && n.applied >= n.recoverTo {
		n.recoverTo = 0
		n.trace("node.recovered", int64(n.applied), 0, 0, 0)
	}
}

// onSoftState tracks leadership.
func (n *Node) onSoftState(ss raft.SoftState) {
	role := RoleFollower
	switch ss.RaftState {
	case raft.StateLeader:
		role = RoleLeader
	case raft.StateCandidate, raft.StatePreCandidate:
		role = RoleCandidate
	}
	if role != n.role || ss.Lead != n.lead {
		if role != RoleLeader {
			n.gate = false
		}
		n.role, n.lead = role, ss.Lead
		n.trace("raft.role", int64(role), int64(ss.Lead), int64(n.rn.BasicStatus().GetTerm()), 0)
	}
}

// openGate runs when a leader applied an entry of its own term: everything
// committed before its term is applied, so any local suffix beyond the
// committed end was never committed: truncate it (DESIGN.md 3.2), then
// accept produce.
func (n *Node) openGate() {
	n.gate = true
	n.trace("gate.open", int64(n.term), int64(n.applied), 0, 0)
	if n.bugs.NoTruncateOnLeaderChange {
		return
	}
	for _, k := range n.sm.Keys() {
		n.dropSuffix(k, n.sm.Partition(k).Committed())
	}
}

func (n *Node) trace(kind string, a, b, c, d int64) {
	n.env.Tracer.Trace(env.Event{Kind: kind, A: a, B: b, C: c, D: d})
}

// marshal encodes raft messages deterministically: their bytes cross the
// simulated network and must be the same for the same seed.
var marshal = proto.MarshalOptions{Deterministic: true}

func sortedKeys(m map[statemach.Key]*wal.WAL) []statemach.Key {
	keys := make([]statemach.Key, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortKeys(keys)
	return keys
}

// raftLogger routes etcd raft's log lines into the trace: its messages are
// deterministic (ids in hex, terms and indexes), unlike wall-clock loggers.
// Debug lines are dropped for speed; Fatal and Panic panic.
type raftLogger struct{ n *Node }

func (l *raftLogger) Debug(...interface{})                {}
func (l *raftLogger) Debugf(string, ...interface{})       {}
func (l *raftLogger) Info(v ...interface{})               { l.text("raft.info", fmt.Sprint(v...)) }
func (l *raftLogger) Infof(f string, v ...interface{})    { l.text("raft.info", fmt.Sprintf(f, v...)) }
func (l *raftLogger) Warning(v ...interface{})            { l.text("raft.warn", fmt.Sprint(v...)) }
func (l *raftLogger) Warningf(f string, v ...interface{}) { l.text("raft.warn", fmt.Sprintf(f, v...)) }
func (l *raftLogger) Error(v ...interface{})              { l.text("raft.error", fmt.Sprint(v...)) }
func (l *raftLogger) Errorf(f string, v ...interface{})   { l.text("raft.error", fmt.Sprintf(f, v...)) }
func (l *raftLogger) Fatal(v ...interface{})              { panic(fmt.Sprint(v...)) }
func (l *raftLogger) Fatalf(f string, v ...interface{})   { panic(fmt.Sprintf(f, v...)) }
func (l *raftLogger) Panic(v ...interface{})              { panic(fmt.Sprint(v...)) }
func (l *raftLogger) Panicf(f string, v ...interface{})   { panic(fmt.Sprintf(f, v...)) }

func (l *raftLogger) text(kind, s string) {
	l.n.env.Tracer.Trace(env.Event{Kind: kind, Text: s})
}
