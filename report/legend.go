package report

// legend documents the trace's event kinds: what each of A, B, C, D and
// Text hold. Kinds not listed here still render (as a=.. b=.. c=.. d=..);
// TestLegendCoversTrace fails when a run emits a kind missing here, so the
// list cannot silently fall behind the code.
var legend = []LegendEntry{
	// The world's events (sim/doc.go).
	{"proc.boot", "A=incarnation: the node's process started"},
	{"proc.boot_error", "A=incarnation: the node failed to start"},
	{"proc.crash", "A=incarnation B=held events dropped: crash (memory and unsynced data lost)"},
	{"proc.kill", "A=incarnation B=held events dropped: process killed, machine up (memory lost, page cache and syncs in flight kept)"},
	{"proc.pause", "A=incarnation: the process is paused (its clock runs on)"},
	{"proc.resume", "A=incarnation B=held events to run"},
	{"proc.restart_skip", "A=incarnation: a scheduled restart found the node up"},
	{"clock.rate", "A=the node's new clock rate in ppm (1000000 = true time)"},
	{"net.partition", "A=cut links, Text=groups (\"1,2|3\")"},
	{"net.bridge", "A=cut links B=bridge node, Text=the two groups"},
	{"net.cut", "A=from B=to: one directed link cut"},
	{"net.isolate", "A=node: cut off from every other node"},
	{"net.heal", "every partition and cut removed"},
	{"net.deliver", "A=from B=to C=bytes D=message id: a message reached its destination"},
	{"net.drop", "A=from B=to C=reason (1 cut, 2 loss, 3 down, 4 stale sender, 5 unknown) D=bytes"},
	{"net.dup", "A=from B=to C=bytes: the network duplicated a message"},
	// The node's events (core/node, core/wal).
	{"node.start", "A=applied index B=durable term: the node opened its logs and recovered"},
	{"node.fail", "the node stopped (fail-stop after a WAL or Raft log error); the harness restarts it"},
	{"node.recovering", "A=last log index B=durable commit index: Fetch answers ErrRecovering until caught up"},
	{"node.recovered", "A=applied index: recovery done, HWMs exposed again"},
	{"node.recover.cut", "A=recover-to index B=applied: a leader overwrote the log, recovery ends there"},
	{"raft.role", "A=role (0 follower, 1 candidate, 2 leader, 3 pre-candidate) B=leader C=term"},
	{"raft.term", "A=new term B=leader"},
	{"raft.info", "Text=etcd raft's log line"},
	{"raft.warn", "Text=etcd raft's log line"},
	{"raft.error", "Text=etcd raft's log line"},
	{"raft.vote", "A=candidate B=term: the node sends a vote grant (a real vote, not a pre-vote)"},
	{"raft.stale.resp", "A=to B=acknowledged index C=its term D=the node's term: an append acknowledgement of an older term whose entries the log no longer holds, dropped after the sync"},
	{"raft.transfer", "A=transferee B=term: the leader starts a leadership transfer"},
	{"raft.transfer.declined", "A=transferee B=term C=units waiting for their fsync: a transfer declined while writes wait to be proposed"},
	{"raft.transfer.abort", "A=transferee B=term C=partition D=batch base: the leader aborts its transfer to propose a batch it wrote in its term (raft would drop it)"},
	{"fs.create", "Text=file name: the node created a file (a new segment when it rotates)"},
	{"fs.sync", "A=the incarnation's count of fsyncs issued: the node issued an fsync"},
	{"fs.sync.err", "A=that fsync's number: the fsync failed"},
	{"fault.trigger", "A=the node whose event fired the trigger B=delay in ns before the fault, Text=fault kind and trigger as written"},
	{"node.refused.corrupt", "the node refused to open a log whose synced data is damaged (fail-stop; the harness keeps it down)"},
	{"clock.step", "A=step in ns (negative: backward): the node's clock jumped"},
	{"fault.target", "A=the node an aimed fault hit (0: nobody), Text=kind and target as written"},
	{"disk.hung", "A=1 hung, 0 recovered B=raft state: an fsync outstanding past DiskStallTimeout (the node stops ticking; a leader steps aside)"},
	{"leader.transfer", "A=transferee B=term: a leader with a hung disk hands leadership to its most caught-up follower"},
	{"leader.lost", "A=requests answered at once (indeterminate) B=batches failed C=the leader hint given: the node lost leadership"},
	{"gate.open", "A=term B=applied index: the new leader applied an entry of its term and accepts produce"},
	{"msg.bad", "A=from B=bytes: a message that does not decode"},
	{"msg.misaddressed", "A=from B=message's from C=message's to"},
	{"produce", "A=partition B=base offset C=records D=acks: a produce request appended to the commit queue"},
	{"produce.ok", "A=partition B=base offset C=records D=acks: answered success"},
	{"produce.fail", "A=partition B=base offset C=records D=acks: answered failure"},
	{"propose", "A=partition B=base offset C=records D=WAL batch seq: one Raft proposal per WAL batch"},
	{"apply", "A=Raft index B=term C=base offset D=result (0 applied, 1 stale, rejected)"},
	{"apply.legacy", "as apply, for a canonical (one record per entry) entry"},
	{"hwm", "A=partition B=new HWM"},
	{"wal.open", "A=partition B=log start C=log end, Text=topic: the WAL recovered (durable once wal.recovered follows)"},
	{"raft.timeoutnow.ignored", "A=from B=term: a leadership transfer's MsgTimeoutNow dropped because this node's disk hangs (it must not campaign)"},
	{"wal.recovered", "A=partition B=durable end, Text=topic: recovery's first sync done: what the WAL read back is durable"},
	{"wal.batch", "A=partition B=base C=last offset D=records, Text=topic: a batch written, fsync issued"},
	{"wal.sync.done", "A=partition B=base C=last offset D=batch seq, Text=topic: the batch is durable"},
	{"wal.mixed", "A=partition B=base C=last offset D=deferred appends, Text=topic: a batch fsynced for produce appends also holds applied records written without an fsync; its fsync covers them"},
	{"wal.deferred", "A=partition B=base C=last offset D=batch seq, Text=topic: a batch of applied records written and answered without an fsync (the Raft log holds them)"},
	{"wal.bgsync", "A=partition B=durable end C=end to sync, Text=topic: a background fsync of applied records started"},
	{"wal.bgsync.done", "A=partition B=durable end C=end synced, Text=topic: the background fsync completed"},
	{"wal.write", "A=partition B=base C=last D=batch seq: pipelined path, the batch is written and its fsync started; proposed now"},
	{"wal.open.partial", "A=first B=end offset: recovery drops the records of an append a torn crash kept only in part"},
	{"pipe.fail", "A=partition B=base C=records D=acks: pipelined path, a WAL error after the batch was proposed; its answers are indeterminate"},
	{"pipe.apply.early", "A=partition B=base C=end D=WAL durable end: pipelined path, the node's own batch applies before its WAL fsync completed"},
	{"raft.hold", "A=term B=durable term: a new leader holds its messages until its term is durable (asynchronous storage writes)"},
	{"pipe.reapply.rebuild", "A=partition B=base C=end D=WAL end: pipelined path, a restarted node re-applying its committed entries rewrites another node's batch its WAL lost"},
	{"pipe.apply.rebuild", "A=partition B=base C=end D=WAL end: pipelined path, the WAL lost records the Raft log holds; applying rewrites them"},
	{"wal.notice", "A=partition B=base C=last D=batch seq: BatchNotice to the proposer"},
	{"wal.fail", "A=partition B=base C=last D=units, Text=topic: fsync or write failed, the WAL stops"},
	{"wal.trunc", "A=partition B=from offset C=old end D=records dropped, Text=topic"},
	{"wal.truncate", "A=partition B=from offset C=WAL end: the new leader drops an uncommitted suffix"},
	// The harness's events (scenarios).
	{"obs", "A=partition B=HWM C=log end D=term: a node's externally visible state changed"},
}

// Legend returns the documented trace event kinds, one entry per kind, in
// the order of `walraft help trace`.
func Legend() []LegendEntry { return append([]LegendEntry(nil), legend...) }

// Describe returns the legend's field description of kind ("" if unknown).
func Describe(kind string) string {
	for _, e := range legend {
		if e.Kind == kind {
			return e.Fields
		}
	}
	return ""
}
