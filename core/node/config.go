package node

import (
	"errors"
	"fmt"
	"time"

	"walraft/core/reclog"
	"walraft/core/wal"
)

// Path selects how the leader proposes produced records to Raft.
type Path int

const (
	// PathBatch proposes one `batch` entry per WAL batch (the design).
	PathBatch Path = iota
	// PathLegacy proposes one `canonical` entry per record (the
	// pre-batching design), kept so both can be measured and a log written
	// before the upgrade replays after it.
	PathLegacy
	// PathPipelined proposes one `batch` entry per WAL batch as soon as the
	// batch is written, so the leader's WAL fsync runs while the entry
	// replicates (see pipeline.go for the rules and why they are safe).
	// Standalone mode has no Raft and runs it as PathBatch.
	PathPipelined
)

// String names the path as the CLI spells it.
func (p Path) String() string {
	switch p {
	case PathLegacy:
		return "legacy"
	case PathPipelined:
		return "pipelined"
	}
	return "batch"
}

// TopicConfig declares a topic and its partition count.
type TopicConfig struct {
	Name       string
	Partitions int32
}

// Config configures one node. Zero fields get the documented defaults (see
// withDefaults); Validate reports what cannot be defaulted.
type Config struct {
	// ID is this node's id (non-zero).
	ID uint64
	// Peers lists every voter's id, this node's included. A single peer
	// means standalone mode: no Raft, acks=-1 behaves as acks=1 and the HWM
	// follows the fsynced end.
	Peers []uint64
	// Topics this node hosts (every node of a cluster must have the same).
	Topics []TopicConfig
	// Dir prefixes every file name the node creates ("" = the FS root).
	Dir string

	// WAL configures each partition's write-ahead log.
	WAL wal.Config
	// RaftLog configures the Raft log's record log.
	RaftLog reclog.Options

	// TickInterval is the Raft tick on the node's clock (default 10ms).
	TickInterval time.Duration
	// ElectionTicks (default 10) and HeartbeatTicks (default 2).
	ElectionTicks, HeartbeatTicks int
	// MaxSizePerMsg bounds a Raft append message (default 1 MiB);
	// MaxInflightMsgs the append messages in flight per follower (default 256).
	MaxSizePerMsg   uint64
	MaxInflightMsgs int
	// MaxCommittedSizePerReady bounds the entries applied per Ready (default 4 MiB).
	MaxCommittedSizePerReady uint64

	// AcksTimeout ends an unanswered acks=1 or acks=-1 request as
	// indeterminate (default 30s).
	AcksTimeout time.Duration
	// MaxRecordBytes bounds one record (default 1 MiB).
	MaxRecordBytes int
	// MaxRequestRecords bounds the records in one produce request (default 10000).
	MaxRequestRecords int
	// MaxPendingBatches bounds the batches proposed and not yet resolved;
	// beyond it produce answers ErrBackpressure (default 4096).
	MaxPendingBatches int
	// MaxQueuedUnits bounds produce requests accepted but not yet proposed
	// (default 65536).
	MaxQueuedUnits int
	// Path selects batch, legacy or pipelined proposals (default batch).
	Path Path
	// DiskStallTimeout bounds how long a WAL or Raft-log fsync (or
	// directory sync) may stay outstanding before the node counts its disk
	// as hung (default 1s; DESIGN.md 3.9). A leader whose disk is hung
	// transfers leadership to its most caught-up follower, and a node with
	// a hung disk does not campaign, until the sync completes. It must be
	// at least two ticks (a tick checks it) and below AcksTimeout (else
	// every held request would time out first).
	DiskStallTimeout time.Duration
}

// Standalone reports whether the config is a single node without Raft.
func (c Config) Standalone() bool { return len(c.Peers) == 1 }

func (c Config) withDefaults() Config {
	if c.TickInterval == 0 {
		c.TickInterval = 10 * time.Millisecond
	}
	if c.ElectionTicks == 0 {
		c.ElectionTicks = 10
	}
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = 2
	}
	if c.MaxSizePerMsg == 0 {
		c.MaxSizePerMsg = 1 << 20
	}
	if c.MaxInflightMsgs == 0 {
		c.MaxInflightMsgs = 256
	}
	if c.MaxCommittedSizePerReady == 0 {
		c.MaxCommittedSizePerReady = 4 << 20
	}
	if c.AcksTimeout == 0 {
		c.AcksTimeout = 30 * time.Second
	}
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = 1 << 20
	}
	if c.MaxRequestRecords == 0 {
		c.MaxRequestRecords = 10000
	}
	if c.MaxPendingBatches == 0 {
		c.MaxPendingBatches = 4096
	}
	if c.MaxQueuedUnits == 0 {
		c.MaxQueuedUnits = 65536
	}
	if c.DiskStallTimeout == 0 {
		c.DiskStallTimeout = time.Second
	}
	if c.WAL.MaxRecordBytes == 0 || c.WAL.MaxRecordBytes < c.MaxRecordBytes {
		c.WAL.MaxRecordBytes = c.MaxRecordBytes
	}
	return c
}

// Validate reports a configuration that cannot run.
func (c Config) Validate() error {
	if c.ID == 0 {
		return errors.New("node: ID must be non-zero")
	}
	if len(c.Peers) == 0 {
		return errors.New("node: Peers must list at least this node")
	}
	seen := map[uint64]bool{}
	self := false
	for _, p := range c.Peers {
		if p == 0 {
			return errors.New("node: peer id 0")
		}
		if seen[p] {
			return fmt.Errorf("node: peer %d listed twice", p)
		}
		seen[p] = true
		self = self || p == c.ID
	}
	if !self {
		return fmt.Errorf("node: Peers %v do not include ID %d", c.Peers, c.ID)
	}
	if len(c.Topics) == 0 {
		return errors.New("node: no topics")
	}
	names := map[string]bool{}
	for _, t := range c.Topics {
		if t.Name == "" || t.Partitions <= 0 {
			return fmt.Errorf("node: bad topic %q with %d partitions", t.Name, t.Partitions)
		}
		if names[t.Name] {
			return fmt.Errorf("node: topic %q declared twice", t.Name)
		}
		names[t.Name] = true
	}
	d := c.withDefaults()
	if d.TickInterval < 0 || d.AcksTimeout < 0 || d.ElectionTicks <= d.HeartbeatTicks || d.HeartbeatTicks <= 0 {
		return fmt.Errorf("node: bad timing: tick %v, election %d ticks, heartbeat %d ticks, acks timeout %v",
			d.TickInterval, d.ElectionTicks, d.HeartbeatTicks, d.AcksTimeout)
	}
	if d.DiskStallTimeout < 2*d.TickInterval || d.DiskStallTimeout >= d.AcksTimeout {
		return fmt.Errorf("node: DiskStallTimeout %v must be at least two ticks (%v) and below the acks timeout %v",
			d.DiskStallTimeout, 2*d.TickInterval, d.AcksTimeout)
	}
	if d.MaxRecordBytes < 0 || d.MaxRequestRecords < 0 || d.MaxPendingBatches < 0 || d.MaxQueuedUnits < 0 {
		return errors.New("node: negative limit")
	}
	if c.Path != PathBatch && c.Path != PathLegacy && c.Path != PathPipelined {
		return fmt.Errorf("node: unknown path %d", c.Path)
	}
	return d.WAL.Validate()
}

// Bugs are the known-bad variants of DESIGN.md section 6: deliberate bugs the
// harness must catch. They are reachable only through NewWithBugs, never
// from a Config. The zero value is the correct system.
type Bugs struct {
	// MetadataOnly: Raft entries carry offsets but no records (the original
	// note's design): followers never hold the bytes.
	MetadataOnly bool
	// AckBeforeFsync: acks=1 is answered at enqueue.
	AckBeforeFsync bool
	// NoticeBeforeFsync: a batch is proposed when appended, before its fsync.
	NoticeBeforeFsync bool
	// HWMBeforeCommit: the leader moves the HWM when it proposes.
	HWMBeforeCommit bool
	// NoTruncateOnLeaderChange: a new leader keeps its uncommitted suffix
	// and applying keeps whatever the log holds.
	NoTruncateOnLeaderChange bool
	// WaiterByIndexOnly: acks=-1 waiters are resolved by whatever entry
	// applies at their index.
	WaiterByIndexOnly bool
	// InMemoryRaftLog: the Raft log is never written to disk.
	InMemoryRaftLog bool
	// RetryFsyncAssumeSuccess: a WAL whose fsync fails retries it and, when
	// the retry succeeds, answers and proposes the batch as durable
	// (DESIGN.md 3.5 forbids it): on Linux the failed blocks are gone and
	// the retry succeeds without them (fsyncgate).
	RetryFsyncAssumeSuccess bool
	// GateBeforeApply: a new leader opens its produce gate (truncating its
	// WAL at the committed end it has applied so far) as soon as it leads,
	// instead of after it applied an entry of its own term (DESIGN.md 3.2):
	// it then assigns offsets that entries of earlier terms in its log,
	// committed later, also hold, and only the stale-batch rule keeps the
	// committed log whole.
	GateBeforeApply bool
	// AcceptStaleBatch: a committed batch whose base is not the partition's
	// committed end (a deposed leader's entry, DESIGN.md 3.2) is applied at
	// its own base instead of being rejected as stale.
	AcceptStaleBatch bool
	// RaftLogDropsLast: Raft log recovery replays every record but the
	// last (an off-by-one), forgetting the last synced HardState or
	// entries at each restart.
	RaftLogDropsLast bool
	// WALLostWakeup: a WAL whose batch fsync completed does not cut the
	// appends that queued meanwhile; they wait for the next Append (a lost
	// wakeup in the batcher).
	WALLostWakeup bool
	// KeepTornRequest: WAL recovery keeps the first records of a produce
	// request whose last records a torn crash lost.
	KeepTornRequest bool
	// CutAtCorruption: recovery of the WAL and the Raft log cuts each at
	// damaged synced data and carries on with the shorter log, instead of
	// refusing to open.
	CutAtCorruption bool
	// FetchPastHWM: Fetch returns every record its read brought back,
	// including those at or past the HWM (uncommitted ones).
	FetchPastHWM bool
	// Acks1WaitsCommit: an acks=1 request is answered when its entry
	// commits, like acks=-1, instead of after the leader's fsync.
	Acks1WaitsCommit bool
	// VoteBeforeSync: a vote response leaves before the Ready's new term
	// and vote are synced (etcd raft's Ready contract broken).
	VoteBeforeSync bool
	// AppRespBeforeSync: an append response leaves before the appended
	// entries are synced.
	AppRespBeforeSync bool
	// LeaderBeforeTermSync: with asynchronous storage writes (the
	// pipelined path), a new leader sends its appends and heartbeats at
	// once, as etcd raft hands them out, before its own term and vote are
	// synced (async.go).
	LeaderBeforeTermSync bool
	// WALJoinInflightSync: the WAL writes the next batch while a batch's
	// fsync is in flight and lets that older fsync complete both.
	WALJoinInflightSync bool
	// WALIgnoreSyncError: the WAL treats a failed fsync as success.
	WALIgnoreSyncError bool
	// RecoverCutsCorruption: the Raft log's recovery treats damage to
	// synced data as a torn tail and cuts the log there instead of
	// refusing to open.
	RecoverCutsCorruption bool
	// NoStepDownOnHungDisk: a node ignores its hung fsyncs: a leader keeps
	// leading (and accepting writes it cannot make durable), a follower
	// keeps campaigning (hashicorp/raft #503, etcd #13527).
	NoStepDownOnHungDisk bool
	// StepDownMayPickSelf: a leader stepping aside from a hung disk may
	// name itself as the transferee (its own Progress is active), which
	// raft ignores: it keeps leading until an election ends it.
	StepDownMayPickSelf bool
	// HungFollowerCampaigns: only a leader heeds its hung fsyncs (it steps
	// aside); a follower or candidate whose disk hangs keeps ticking, so
	// it campaigns and may win, then leads on a disk that takes no writes.
	HungFollowerCampaigns bool
	// HungMarkSticky: once a node finds its disk hung it never clears the
	// mark when the disk returns: it stops ticking and taking writes for
	// good (until restarted), so the cluster keeps one node fewer able to
	// lead.
	HungMarkSticky bool
	// FetchRangeBeforeRecovering: Fetch checks the offset range before the
	// recovering state, so a restarted node still withholding its HWM
	// refuses a fetch past its re-applied (lower) HWM as out of range and
	// reports that HWM.
	FetchRangeBeforeRecovering bool
	// SendStaleAppResp: an append acknowledgement of an older term is sent
	// after its sync even when a newer leader's entries replaced what it
	// acknowledged (no staleAppResp drop).
	SendStaleAppResp bool
	// RecoveryEndsLate: a restarted node ends its recovery only once it
	// applied past the Raft log it recovered (> for >=), so it withholds
	// its HWMs and refuses fetches until some later entry applies.
	RecoveryEndsLate bool
	// StartBeforeRecoverySync: the node starts as soon as its logs are
	// open: it re-applies, runs Raft, takes writes and exposes HWMs (its
	// WALs claim every recovered record durable) before the recovery syncs
	// complete, though after a process kill what it read back may be only
	// in the page cache.
	StartBeforeRecoverySync bool
	// RecoveryNoRewrite: log recovery syncs the unproven tail it read back
	// without writing it again, so pages a failed fsync of the killed
	// process left clean never reach the disk (reclog.Bugs).
	RecoveryNoRewrite bool
	// WALCutKeepsDurableMark: a WAL truncation keeps the record log's old,
	// higher durable mark, so chunks written after it claim their own
	// unsynced bytes durable (reclog.Bugs.CutKeepsDurableMark).
	WALCutKeepsDurableMark bool
	// RaftRecoveryNotAwaited: the node waits for its WALs' recovery syncs
	// but not its Raft log's, so it starts, and acknowledges entries it
	// read back, while they may still be only in the page cache.
	RaftRecoveryNotAwaited bool
	// HungTakesTimeoutNow: a node whose disk hangs still campaigns when a
	// leader's transfer hands it leadership (MsgTimeoutNow); it only stops
	// its own election timer.
	HungTakesTimeoutNow bool
	// TransferNotAborted: a batch that reaches its proposal during a
	// leadership transfer does not abort the transfer, so raft drops the
	// proposal and the node truncates the batch from its WAL, though its
	// acks=1 requests may have been answered.
	TransferNotAborted bool
	// GateKeptOnLeaderLoss: a leader that loses leadership does not close
	// its produce gate, so elected again in a later term it takes writes
	// at once, before it applied an entry of its new term (DESIGN.md 3.2).
	GateKeptOnLeaderLoss bool
	// StandaloneDefiniteFsyncError (standalone): a batch whose WAL write
	// or fsync failed is answered as a definite failure, though a failed
	// fsync may have written the records back all the same and the
	// restarted node then serves them.
	StandaloneDefiniteFsyncError bool
	// DropMessageContext: a received Raft message loses its Context field
	// in decoding, so a transferee's vote request loses etcd raft's
	// campaign-transfer mark and voters still in the old leader's lease
	// ignore it: a leadership transfer ends only through a later,
	// disruptive election.
	DropMessageContext bool
	// AcksTimerUsesStallTimeout: a request's acks timer is armed with
	// DiskStallTimeout instead of AcksTimeout (the wrong field), so held
	// requests end as timeouts well before the configured acks timeout.
	AcksTimerUsesStallTimeout bool
	// StandaloneNoticeKeepsQueue (standalone): a batch's fsync notice moves
	// the HWM and answers its requests but never removes them from the
	// produce queue, so the queue (and its MaxQueuedUnits count) only
	// grows until the node refuses every write.
	StandaloneNoticeKeepsQueue bool
	// HoldWaitersOnLeaderLoss: a deposed leader keeps the requests it holds
	// until their fsync, their entry or the acks timeout answers them.
	HoldWaitersOnLeaderLoss bool
	// PipelinedDefiniteFsyncError (pipelined path): a WAL fsync error after
	// the batch was proposed is answered as a definite failure, as if the
	// batch had never been proposed, though its entry may still commit.
	PipelinedDefiniteFsyncError bool
	// TrustOwnBatches: applying an entry this node proposed itself never
	// rewrites its records, even after a restart, on the belief that a
	// node's own batches are always in its WAL. That holds on the batch
	// path (the WAL fsync precedes the proposal) and not on the pipelined
	// path, whose WAL may lose a batch the Raft log holds: the WAL suffix
	// is then not rebuilt on recovery.
	TrustOwnBatches bool
	// ProposeOnlyWhileAccepting: a written batch is proposed only while the
	// node takes new writes (not while its disk is marked hung or a
	// leadership transfer runs); otherwise its acks=-1 requests fail and
	// the batch stays in the WAL unproposed, though the node may still lead
	// its term: acks=1 is answered at its fsync and nothing commits it.
	// core/node's TestHungStepDownStrandsNoWrite catches it; it is not in
	// the harness's catalogue, because its window (a leader still leading
	// its term when its hung disk returns) is rare in the drawn scenarios:
	// 1 catching seed of 200 in pipelined-fsync, none of 200 in gray.
	ProposeOnlyWhileAccepting bool
	// ApplyBeforeSync: every committed entry of a Ready applies (and moves
	// the HWM) while the Ready's sync runs, including entries that Ready
	// itself saves: a follower exposes an HWM over entries it does not
	// yet hold durably.
	ApplyBeforeSync bool
	// GateOnAnyEntry: a new leader opens its produce gate (and truncates
	// its suffix) at the first entry it applies, not at the first entry of
	// its own term.
	GateOnAnyEntry bool
	// DeferProduceSync (pipelined path): produce appends are written like
	// applied records (wal.WAL.AppendDeferred), on the belief that the
	// Raft log covers them; but acks=1 promises the leader's WAL, so it is
	// answered after the write, before any fsync.
	DeferProduceSync bool
	// StandaloneReadsPath: the deferred acks=-1 append is chosen by
	// Config.Path alone, so a standalone node configured with the
	// pipelined path (which must run as the batch path) answers acks=-1
	// before its WAL fsync.
	StandaloneReadsPath bool
	// WALBgSyncOverclaims (pipelined path): the WAL's background fsync of
	// applied records is taken to cover the records still queued
	// (wal.Bugs.BgSyncCoversQueued): the node reports a durable end its
	// disk does not hold. Harmless on its own (recovery rewrites applied
	// records), but a report that disagrees with the disk is S10.
	WALBgSyncOverclaims bool
}
