package scenarios

import (
	"fmt"
	"strings"

	"walraft/core/node"
)

// Variant is a known-bad version of the system (DESIGN.md section 6): a
// deliberate bug the harness must catch. The harness proves it can fail by
// catching each one within a bounded number of seeds.
type Variant struct {
	Name    string
	Summary string
	// Scenario is the scenario in which the variant is expected to be
	// caught (its bug needs the faults of that scenario to show).
	Scenario string
	bugs     node.Bugs
}

var variants = []Variant{
	{Name: "metadata-only", Summary: "Raft entries carry offsets but no records (the original note's design): followers never hold the bytes",
		Scenario: "default", bugs: node.Bugs{MetadataOnly: true}},
	{Name: "ack-before-fsync", Summary: "acks=1 is answered when the write is queued, before its fsync",
		Scenario: "default", bugs: node.Bugs{AckBeforeFsync: true}},
	{Name: "notice-before-fsync", Summary: "a batch is proposed to Raft when appended, before its fsync completes",
		Scenario: "fsync", bugs: node.Bugs{NoticeBeforeFsync: true}},
	{Name: "hwm-before-commit", Summary: "the leader moves the HWM when it proposes, before the entry commits",
		Scenario: "default", bugs: node.Bugs{HWMBeforeCommit: true}},
	{Name: "no-truncate", Summary: "a new leader keeps its uncommitted local suffix; applying keeps whatever the log holds",
		Scenario: "default", bugs: node.Bugs{NoTruncateOnLeaderChange: true}},
	// A deposed leader answers the waiters it holds at once (DESIGN.md
	// 3.9), which leaves a waiter matched by index alone nothing to match
	// after a leader change: the bug is only reachable in a node that also
	// holds its waiters, as the original note's design did.
	{Name: "waiter-by-index", Summary: "acks=-1 waiters are resolved by whatever entry applies at their index (and a deposed leader holds them)",
		Scenario: "default", bugs: node.Bugs{WaiterByIndexOnly: true, HoldWaitersOnLeaderLoss: true}},
	{Name: "memory-raft-log", Summary: "the Raft log (HardState and entries) is kept in memory only",
		Scenario: "crashes", bugs: node.Bugs{InMemoryRaftLog: true}},
	{Name: "fsync-retry", Summary: "a failed WAL fsync is retried and, when the retry succeeds, the batch is taken as durable (fsyncgate)",
		Scenario: "fsync", bugs: node.Bugs{RetryFsyncAssumeSuccess: true}},
	{Name: "raft-log-drops-last", Summary: "Raft log recovery replays every record but the last (an off-by-one): a restart forgets its last synced vote, commit index or entries",
		Scenario: "crashes", bugs: node.Bugs{RaftLogDropsLast: true}},
	{Name: "wal-lost-wakeup", Summary: "the WAL does not cut the next batch when an fsync completes; queued appends wait for the next request",
		Scenario: "calm", bugs: node.Bugs{WALLostWakeup: true}},
	{Name: "torn-request-kept", Summary: "WAL recovery keeps the first records of a request whose last records a torn crash lost",
		Scenario: "standalone", bugs: node.Bugs{KeepTornRequest: true}},
	{Name: "cut-at-corruption", Summary: "recovery cuts a log at damaged synced data and carries on with the shorter log instead of refusing to open",
		Scenario: "corrupt", bugs: node.Bugs{CutAtCorruption: true}},
	{Name: "fetch-past-hwm", Summary: "Fetch returns the records its read brought back past the HWM (uncommitted ones)",
		Scenario: "legacy", bugs: node.Bugs{FetchPastHWM: true}},
	{Name: "acks1-waits-commit", Summary: "acks=1 is answered when the entry commits (as acks=-1), not after the leader's fsync",
		Scenario: "calm", bugs: node.Bugs{Acks1WaitsCommit: true}},
	{Name: "vote-before-sync", Summary: "a vote is granted on the wire before the new term and vote are synced",
		Scenario: "default", bugs: node.Bugs{VoteBeforeSync: true}},
	{Name: "appresp-before-sync", Summary: "a follower acknowledges appended entries before they are synced",
		Scenario: "default", bugs: node.Bugs{AppRespBeforeSync: true}},
	{Name: "wal-join-inflight-sync", Summary: "the WAL writes the next batch during an fsync and lets that older fsync complete it",
		Scenario: "default", bugs: node.Bugs{WALJoinInflightSync: true}},
	{Name: "wal-ignore-fsync-error", Summary: "the WAL treats a failed fsync as success and answers acks=1",
		Scenario: "fsync", bugs: node.Bugs{WALIgnoreSyncError: true}},
	{Name: "no-step-down", Summary: "a leader whose fsyncs hang keeps leading and taking writes it cannot make durable (hashicorp/raft #503, etcd #13527)",
		Scenario: "gray", bugs: node.Bugs{NoStepDownOnHungDisk: true}},
	{Name: "deposed-leader-holds-requests", Summary: "a leader that loses leadership keeps the requests it holds until their fsync, entry or timeout answers them, instead of sending their clients to the new leader at once",
		Scenario: "gray", bugs: node.Bugs{HoldWaitersOnLeaderLoss: true}},
	{Name: "hung-mark-sticky", Summary: "a node never clears its hung-disk mark once the disk returns: it never ticks, campaigns or takes writes again until restarted",
		Scenario: "fsync", bugs: node.Bugs{HungMarkSticky: true}},
	{Name: "recovering-fetch-hwm", Summary: "a recovering node checks a fetch's offset range first and refuses it as out of range with its withheld, lower HWM: a client sees the HWM move back across the restart",
		Scenario: "crashes", bugs: node.Bugs{FetchRangeBeforeRecovering: true}},
	{Name: "stale-ack-sent", Summary: "a follower sends an older term's append acknowledgement after its sync although a newer leader replaced the entries it acknowledges",
		Scenario: "overwrite", bugs: node.Bugs{SendStaleAppResp: true}},
	{Name: "start-before-recovery-sync", Summary: "a restarted node starts as soon as its logs are open: it acknowledges, applies and exposes what it read back before the recovery syncs, though a process killed with its machine up leaves unsynced writes in the page cache",
		Scenario: "fsync", bugs: node.Bugs{StartBeforeRecoverySync: true}},
	{Name: "recovery-sync-only", Summary: "log recovery syncs the unproven tail it read back without writing it again: pages a killed process's failed fsync left clean are never written (fsyncgate across a restart)",
		Scenario: "fsync", bugs: node.Bugs{RecoveryNoRewrite: true}},
	{Name: "cut-keeps-durable-mark", Summary: "a WAL truncation keeps the record log's old, higher durable mark: chunks written after it claim their own unsynced bytes durable, and a torn crash leaves what recovery must take for damage to synced data",
		Scenario: "zombie", bugs: node.Bugs{WALCutKeepsDurableMark: true}},
	{Name: "raft-recovery-not-awaited", Summary: "a restarted node waits for its WALs' recovery syncs but not its Raft log's: it acknowledges entries a killed process left only in the page cache",
		Scenario: "pipelined-restart", bugs: node.Bugs{RaftRecoveryNotAwaited: true}},
	{Name: "standalone-reads-path", Summary: "a standalone node configured with the pipelined path writes acks=-1 records without a WAL fsync, as a pipelined cluster leader does, and answers them before they are durable",
		Scenario: "standalone", bugs: node.Bugs{StandaloneReadsPath: true}},
	{Name: "stepdown-picks-self", Summary: "a leader stepping aside from a hung disk may name itself as the transferee (raft ignores it), so it keeps leading until the followers' election ends it",
		Scenario: "gray", bugs: node.Bugs{StepDownMayPickSelf: true}},
	{Name: "hung-takes-timeoutnow", Summary: "a node whose disk hangs stops its election timer but still campaigns when a leader's transfer hands it leadership",
		Scenario: "gray", bugs: node.Bugs{HungTakesTimeoutNow: true}},
	{Name: "recovery-ends-late", Summary: "a restarted node ends its recovery one entry late: it withholds its HWMs and refuses fetches until an entry past its recovered log applies",
		Scenario: "crashes", bugs: node.Bugs{RecoveryEndsLate: true}},
	{Name: "transfer-not-aborted", Summary: "a batch that reaches its proposal during a leadership transfer does not abort it: raft drops the proposal and the batch, acks=1 answered, is truncated",
		Scenario: "stepdown", bugs: node.Bugs{TransferNotAborted: true}},
	{Name: "gate-kept-on-leader-loss", Summary: "a deposed leader never closes its produce gate: elected again it takes writes before it applied an entry of its new term",
		Scenario: "zombie", bugs: node.Bugs{GateKeptOnLeaderLoss: true}},
	{Name: "standalone-definite-eio", Summary: "standalone: a batch whose WAL fsync failed is answered as a definite failure, though the failed fsync may have written it back and the restarted node serves it",
		Scenario: "standalone", bugs: node.Bugs{StandaloneDefiniteFsyncError: true}},
	{Name: "transfer-mark-dropped", Summary: "the message decoder drops a message's context, so a transferee's vote request loses raft's campaign-transfer mark: voters in the old leader's lease ignore it and a leadership transfer ends only through a later election",
		Scenario: "calm", bugs: node.Bugs{DropMessageContext: true}},
	{Name: "early-acks-timeout", Summary: "a request's acks timer is armed with the disk-stall timeout instead of the acks timeout: held requests end as indeterminate timeouts seconds early",
		Scenario: "gray", bugs: node.Bugs{AcksTimerUsesStallTimeout: true}},
	{Name: "standalone-queue-leak", Summary: "standalone: a batch's fsync notice answers its requests but never removes them from the produce queue, which grows until the node refuses every write",
		Scenario: "standalone", bugs: node.Bugs{StandaloneNoticeKeepsQueue: true}},
	{Name: "hung-follower-campaigns", Summary: "only a leader heeds its hung fsyncs: a follower whose disk hangs keeps ticking, campaigns and may win, then leads on a disk that takes no writes",
		Scenario: "fsync", bugs: node.Bugs{HungFollowerCampaigns: true}},
	{Name: "gate-before-apply", Summary: "a new leader takes writes before it applied an entry of its own term (the stale-batch rule is the last defence)",
		Scenario: "zombie", bugs: node.Bugs{GateBeforeApply: true}},
	{Name: "gate-before-apply-accept-stale", Summary: "gate-before-apply, and a committed batch at a stale base is applied over the committed records there",
		Scenario: "zombie", bugs: node.Bugs{GateBeforeApply: true, AcceptStaleBatch: true}},
	{Name: "pipelined-definite-eio", Summary: "pipelined path: a WAL fsync error after the proposal is answered as a definite failure, though the entry may commit",
		Scenario: "pipelined-fsync", bugs: node.Bugs{PipelinedDefiniteFsyncError: true}},
	{Name: "pipelined-no-rebuild", Summary: "pipelined path: a node never rewrites its own batches when applying them, trusting its WAL to hold them, so a WAL suffix lost in a crash is not rebuilt from the Raft log",
		Scenario: "pipelined-crashes", bugs: node.Bugs{TrustOwnBatches: true}},
	{Name: "gate-on-any-entry", Summary: "a new leader opens its produce gate at the first entry it applies, not at the first entry of its own term (DESIGN.md 3.2)",
		Scenario: "double-failover", bugs: node.Bugs{GateOnAnyEntry: true}},
	{Name: "apply-before-sync", Summary: "committed entries apply while the Ready's sync runs, including the entries that Ready saves: a follower exposes an HWM over entries not yet durable on it",
		Scenario: "crashes", bugs: node.Bugs{ApplyBeforeSync: true}},
	{Name: "pipelined-leader-before-term-sync", Summary: "pipelined path: a leader elected on its peers' votes sends its appends before its own term and vote are synced (etcd raft's asynchronous writes allow it)",
		Scenario: "pipelined-fsync", bugs: node.Bugs{LeaderBeforeTermSync: true}},
	{Name: "pipelined-deferred-produce", Summary: "pipelined path: produce appends are written without an fsync, like the records a node applies, on the belief that the Raft log covers them; acks=1 is answered before the leader's WAL holds the records",
		Scenario: "pipelined-crashes", bugs: node.Bugs{DeferProduceSync: true}},
	{Name: "pipelined-bgsync-overclaims", Summary: "pipelined path: a background fsync of applied records is taken to cover the records still queued, so the node reports a durable end its disk does not hold",
		Scenario: "pipelined", bugs: node.Bugs{WALBgSyncOverclaims: true}},
}

// Variants returns the known-bad variants in catalogue order.
func Variants() []Variant { return append([]Variant(nil), variants...) }

// LookupVariant finds a variant by name; "" is the correct system.
func LookupVariant(name string) (Variant, error) {
	if name == "" {
		return Variant{}, nil
	}
	var names []string
	for _, v := range variants {
		if v.Name == name {
			return v, nil
		}
		names = append(names, v.Name)
	}
	return Variant{}, fmt.Errorf("unknown variant %q (known: %s)", name, strings.Join(names, ", "))
}
