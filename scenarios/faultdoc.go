package scenarios

// The schedule format's reference for people (walraft help schedule): what
// each fault kind does and which fields it reads, what each trigger event
// and target means. TestFaultDocsCoverKinds keeps it complete.

// FaultDoc describes one fault kind.
type FaultDoc struct {
	Kind FaultKind
	// Does says what the fault does.
	Does string
	// Fields are the fields the kind reads besides "at" and "kind":
	// "node|target" means either a fixed node or a target; a field in
	// brackets is optional.
	Fields string
}

// FaultDocs returns the reference of every fault kind, in faultKinds order.
func FaultDocs() []FaultDoc {
	return []FaultDoc{
		{FaultCrash, "power loss of a node: memory and unsynced writes lost, restarted after dur (a kill instead, with Options.KillProb)", "node|target, [dur]"},
		{FaultTornCrash, "power loss that keeps a seeded subset of the unsynced blocks (torn, out-of-order persistence), restarted after dur", "node|target, [dur]"},
		{FaultCrashAll, "power loss of every node at once, each restarted after dur", "[dur]"},
		{FaultPause, "the node's process stops for dur (its clock runs on): a GC pause, SIGSTOP", "node|target, dur"},
		{FaultPartition, "symmetric partition into groups (until heal)", "groups|target (minority/majority)"},
		{FaultIsolate, "cut the node off from every other node (until heal)", "node|target"},
		{FaultOneWay, "cut the link node->peer only (until heal)", "node|target, peer"},
		{FaultBridge, "groups[0] and groups[1] reach each other only through node (until heal)", "groups (two), node"},
		{FaultHeal, "remove every partition and cut", ""},
		{FaultStall, "the node's fsyncs complete no earlier than dur from now; its event loop runs on", "node|target, dur"},
		{FaultSyncEIO, "the node's next count fsyncs fail with EIO (fsyncgate semantics per seed); with log, only those of one log (raft, wal: every WAL, dir: directory syncs); with a boot trigger and no delay, they meet the recovery syncs", "node|target, count, [log]"},
		{FaultWriteEIO, "the node's next count writes fail with EIO; with log, only those of one log (raft, wal)", "node|target, count, [log]"},
		{FaultDrop, "every message is lost with probability prob for dur", "prob, dur"},
		{FaultDup, "every message is duplicated with probability prob for dur", "prob, dur"},
		{FaultSkew, "the node's clock runs at rate (0.5 to 2) from now on", "node|target, rate"},
		{FaultCorrupt, "flip bytes of the node's synced data in one log (beyond the fault budget on a majority)", "node|target, [log: raft|wal]"},
		{FaultNoSpace, "the node's next count writes fail with ENOSPC after a seeded prefix", "node|target, count"},
		{FaultReadEIO, "power loss, then a restart after dur whose next count reads fail with EIO: recovery must fail cleanly", "node|target, count, [dur]"},
		{FaultHang, "the node's disk hangs for dur, and a sync issued meanwhile blocks its event loop too (no ticks, messages or requests)", "node|target, dur"},
		{FaultClockStep, "the node's clock jumps by step (negative: back; the node's clock stays monotonic)", "node|target, step"},
		{FaultLink, "the link node->peer gets latency, jitter, loss prob and duplication dup for dur", "node|target, peer, dur, [latency], [jitter], [prob], [dup]"},
		{FaultTransferLeader, "ask the leader to hand leadership to node (etcd raft's transfer); a leader with writes waiting for their fsync declines it (trace raft.transfer.declined)", "node|target"},
		{FaultCrashAtDiskEvent, "power loss of the node right at its count-th disk event of the run (a crash point), restarted after dur", "node, count, [dur]"},
		{FaultTornCrashAtDiskEvent, "the same with a torn crash keeping each unsynced block with probability prob (0: 0.5)", "node, count, [dur], [prob]"},
		{FaultKill, "kill the node's process with its machine up: memory lost, page cache kept, syncs in flight complete; restarted after dur", "node|target, [dur]"},
		{FaultKillAtDiskEvent, "the same as crash-at-disk-event with a process kill", "node, count, [dur]"},
		{FaultStallLog, "stall the syncs of one log of the node (log: raft, the default; wal: every WAL; dir: its directory syncs) for dur while its other syncs go on", "node|target, dur, [log]"},
	}
}

// TriggerDoc describes one trigger event.
type TriggerDoc struct {
	On   TriggerEvent
	Does string
}

// TriggerDocs returns the reference of every trigger event.
func TriggerDocs() []TriggerDoc {
	return []TriggerDoc{
		{OnBecomeLeader, "a node becomes leader"},
		{OnTermChange, "a node's term changes"},
		{OnVoteGrant, "a node grants a (real) vote"},
		{OnRestart, "a node has started again (booted and recovered) after a crash or kill"},
		{OnWALWrite, "a node writes a WAL batch"},
		{OnFsync, "a node issues an fsync"},
		{OnSegment, "a node creates a log segment file (a rotation)"},
		{OnTruncate, "a node starts truncating a WAL suffix"},
		{OnFsyncError, "an fsync of a node fails"},
		{OnBoot, "a node's process boots again, before it opens its logs"},
	}
}

// TargetDoc describes one target.
type TargetDoc struct {
	Target Target
	Does   string
}

// TargetDocs returns the reference of every target.
func TargetDocs() []TargetDoc {
	return []TargetDoc{
		{TargetLeader, "the node leading now (highest term among leaders)"},
		{TargetFollower, "a seeded choice among the running non-leaders"},
		{TargetMostCaughtUp, "the follower with the longest data log"},
		{TargetLeastCaughtUp, "the follower with the shortest data log"},
		{TargetLastVoter, "the node that last granted a vote"},
		{TargetPreviousLeader, "the node that became leader last before the current leader did (a deposed leader), if it is running"},
		{TargetLastHit, "the node the most recent aimed one-node fault hit, if it is running (a second fault at the same follower)"},
		{TargetEventNode, "the node whose event fired the trigger (triggered faults only)"},
		{TargetMinority, "(n-1)/2 running nodes holding the leader: cut off for partition/isolate, every member hit for crash, torn-crash, pause"},
		{TargetMajority, "the complement of minority"},
	}
}

// OptionDoc describes one field of a run's options a schedule author
// edits often: Name is its JSON spelling under "options" (a dotted path
// for a nested field).
type OptionDoc struct {
	Name, Does string
}

// KnobDocs returns the reference of every knob (options "Knobs", JSON
// names as Knobs spells them); a zero or missing knob keeps the node's
// default. TestOptionDocsComplete keeps it complete.
func KnobDocs() []OptionDoc {
	return []OptionDoc{
		{"wal_segment_bytes", "each partition's WAL segment size in bytes (at least 4 KiB; small ones rotate often)"},
		{"raft_segment_bytes", "the Raft log's segment size in bytes (at least 4 KiB)"},
		{"batch_bytes", "a WAL batch is cut at this many payload bytes"},
		{"batch_records", "a WAL batch is cut at this many records"},
		{"linger", "how long an idle WAL waits for more appends before it cuts a batch (ns, node clock)"},
		{"election_ticks", "Raft's election timeout in 10 ms ticks (more than heartbeat_ticks)"},
		{"heartbeat_ticks", "Raft's heartbeat interval in 10 ms ticks"},
		{"max_pending_batches", "proposed, unresolved acks=-1 batches a leader holds before it refuses writes"},
		{"max_queued_units", "accepted, unproposed requests a leader holds before it refuses writes"},
		{"wal_pending_bytes", "bytes a WAL queues before it refuses appends (back-pressure)"},
		{"committed_per_ready", "etcd raft's MaxCommittedSizePerReady in bytes: small values split a backlog of committed entries over Readies"},
		{"raft_record_bytes", "the Raft log's record limit in bytes: a save above it is split into several records (at least the largest entry the workload can make)"},
	}
}

// DiskDocs returns the reference of the simulated disk's settings
// (options "Disk", sim.DiskConfig; durations in ns). TestOptionDocsComplete
// keeps it complete.
func DiskDocs() []OptionDoc {
	return []OptionDoc{
		{"SyncMin, SyncMax", "an fsync's latency, uniform between them"},
		{"StallProb, StallMin, StallMax", "with probability StallProb an fsync also stalls for a time between StallMin and StallMax"},
		{"WriteEIOProb", "each write fails with EIO with this probability, after a seeded prefix of its bytes"},
		{"SyncEIOProb", "each fsync fails with EIO with this probability and makes nothing durable"},
		{"TornKeepProb", "at a power loss each unsynced block (and an unsynced shrink) survives with this probability; 0 keeps exactly what was synced"},
		{"BlockSize", "the granularity of torn persistence in bytes (0: 512)"},
		{"FailedSync", "what a failed fsync does to its blocks: 0 keep (they stay dirty; the next fsync writes them), 1 linux-drop (reverted to what the disk holds), 2 linux-clean (marked clean: the next fsync succeeds without them, fsyncgate)"},
		{"FailedSyncKeepProb", "Linux modes: each block of a failed fsync reached the disk anyway with this probability"},
	}
}
