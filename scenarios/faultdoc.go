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
		{FaultSyncEIO, "the node's next count fsyncs fail with EIO (fsyncgate semantics per seed); with a boot trigger and no delay, they meet the recovery syncs", "node|target, count"},
		{FaultWriteEIO, "the node's next count writes fail with EIO", "node|target, count"},
		{FaultDrop, "every message is lost with probability prob for dur", "prob, dur"},
		{FaultDup, "every message is duplicated with probability prob for dur", "prob, dur"},
		{FaultSkew, "the node's clock runs at rate (0.5 to 2) from now on", "node|target, rate"},
		{FaultCorrupt, "flip bytes of the node's synced data in one log (beyond the fault budget on a majority)", "node|target, [log: raft|wal]"},
		{FaultNoSpace, "the node's next count writes fail with ENOSPC after a seeded prefix", "node|target, count"},
		{FaultReadEIO, "power loss, then a restart after dur whose next count reads fail with EIO: recovery must fail cleanly", "node|target, count, [dur]"},
		{FaultHang, "the node's disk hangs for dur, and a sync issued meanwhile blocks its event loop too (no ticks, messages or requests)", "node|target, dur"},
		{FaultClockStep, "the node's clock jumps by step (negative: back; the node's clock stays monotonic)", "node|target, step"},
		{FaultLink, "the link node->peer gets latency, jitter, loss prob and duplication dup for dur", "node|target, peer, dur, [latency], [jitter], [prob], [dup]"},
		{FaultTransferLeader, "ask the leader to hand leadership to node (etcd raft's transfer)", "node|target"},
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
		{TargetEventNode, "the node whose event fired the trigger (triggered faults only)"},
		{TargetMinority, "(n-1)/2 running nodes holding the leader: cut off for partition/isolate, every member hit for crash, torn-crash, pause"},
		{TargetMajority, "the complement of minority"},
	}
}
