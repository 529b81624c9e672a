// This file is the pipelined produce path (Config.Path == PathPipelined):
// a batch is proposed to Raft when the WAL has written it and started its
// fsync, so the leader's WAL fsync and the replication of the entry run at
// the same time, instead of one after the other as on the WAL-first batch
// path (DESIGN.md section 2, "a second, pipelined path").
//
//	Produce → leadership gate → WAL.Append (offsets assigned, as on the batch path)
//	   acks=0 answered now
//	WAL cuts a batch: write, fsync started → OnWrite → one Raft proposal (onWrite)
//	WAL fsync done → acks=1 answered (onDurable); the notice proposes nothing
//	Raft commit → StateMachine.Apply → HWM; acks=-1 answered (proposer waiter)
//
// # What each answer means
//
// acks=1 keeps its meaning: it is answered when the batch's WAL fsync
// completed, whatever Raft did meanwhile (S5, S7).
//
// acks=-1 is answered after commit and apply, and does NOT wait for the
// leader's own WAL fsync. Why that is enough:
//
//   - Commit means the entry, records included (DESIGN.md 3.1), is in the
//     synced Raft logs of a majority. With asynchronous storage writes
//     (async.go) raft hands the leader only entries its own Raft log holds
//     durably, so at the reply the records are durable in the leader's Raft
//     log too. No in-budget
//     crash pattern can lose them; the WAL copy adds no durability.
//   - The WAL is, for committed offsets, the materialised state of the Raft
//     log. Followers have always applied committed entries into a WAL that
//     is synced later; on this path the leader's WAL is in the same
//     position. Recovery already rebuilds it: a restarted node re-applies
//     every entry up to its durable commit index (recovery.go), and the
//     state machine rewrites whatever the WAL lost at those offsets (a
//     suffix: the WAL keeps a prefix of what it wrote); entries past the
//     durable commit index are re-applied, and their lost records rewritten,
//     when the leader's commit index reaches them, and until then the node
//     is "recovering" and withholds its HWM (node.go package doc), so no
//     client sees an HWM above what the node can serve.
//   - So what recovery needs is that the Raft log holds every entry whose
//     records the WAL may lack. It does: the log is never compacted. A
//     future log compaction must keep that true: it may drop entries only
//     below the WAL's durable end, never below the commit index alone.
//   - Waiting would also turn answers worse: a WAL fsync error after the
//     entry committed would make a committed write indeterminate.
//
// What acks=-1 no longer promises is the literal "the records are in the
// leader's WAL file at reply time"; its promise (committed on a majority)
// is stronger than acks=1's for every crash the design survives.
//
// # Failures after the proposal
//
// A WAL fsync (or write) error after the proposal is fail-stop for the node
// (DESIGN.md 3.5), and every answer for the batch that is still open is
// indeterminate (durableErrIndeterminate): its entry is in the Raft log and
// may commit through the followers whatever this node does next. A batch
// whose proposal was refused was truncated from the WAL before its fsync
// completed and is answered as on the batch path (definite: no entry
// carries it). A unit truncated because a committed entry took its offsets
// fails definitely: its own entry can only apply after that one, where its
// base is below the committed end, so it is stale forever (DESIGN.md 3.2).
//
// # Interleavings of WAL fsync (W), Raft log sync on the leader (R),
// commit (C) and a crash (X) of the leader, for one batch B
//
//   - W, R, C in any order, no crash: acks=1 at W, acks=-1 at C (after R,
//     which apply needs). Nothing else differs from the batch path.
//   - X before W and R: B is in no durable log of the leader. If the
//     followers got B (the leader sends appends before its own sync) it may
//     still commit: its clients were answered nothing or indeterminate
//     (their connection dropped). Otherwise it is gone and its offsets are
//     reused by the next leader (3.2): nobody was promised anything.
//   - W, X before R: the WAL holds B, the Raft log does not. acks=1 was
//     answered; B may commit through the followers (the restarted node then
//     applies it over identical bytes) or not, and then the next leader
//     truncates or overwrites it (3.2: acks=1 data lost through a leader
//     change, never visible: the HWM never covered it). As on the batch
//     path, where W precedes the proposal.
//   - R, X before W: the Raft log holds B, the WAL lost it (possibly with
//     more batches after it, all a suffix). acks=1 was not answered. If C
//     happened, acks=-1 may have been answered and the HWM exposed: on
//     restart the node re-applies B from its Raft log, rewriting the WAL
//     suffix, before it exposes any HWM at or past B (recovering state if
//     the commit index covering B was not yet synced). If C did not
//     happen, B is an ordinary uncommitted entry of the Raft log: it
//     commits later (and is rewritten into the WAL when applied) or is
//     overwritten by a new leader; the WAL then needs nothing from it.
//   - C before W on the leader, then W fails: the acks=-1 answers given at
//     C stand (the entry is committed); every other answer of B is
//     indeterminate; the node stops; after restart the WAL (which may have
//     dropped B's dirty blocks: Linux fsync semantics) is rewritten from
//     the Raft log as above.
//   - A leader change between the write and W: acks=1 is still answered at
//     W (the term that accepted it is what S5 judges), acks=-1 waits for
//     its own entry (3.3), which applies or turns out stale or replaced. A
//     new leader's gate opens only after it applied an entry of its own
//     term, so every surviving entry of B's term is applied (and its
//     records rewritten) first, and only then is the uncommitted WAL
//     suffix truncated (3.2).
//
// The HWM rules (3.8) hold because the HWM moves only at apply, applied
// entries are in the node's synced Raft log, and the WAL's volatile image
// (what Fetch reads) holds every applied record.

package node

import (
	"errors"

	"walraft/core/statemach"
	"walraft/core/wal"
)

// pipelined reports whether this node proposes batches before their WAL
// fsync. Standalone mode has no Raft: it runs the batch path.
func (n *Node) pipelined() bool { return n.cfg.Path == PathPipelined && !n.standalone }

// onWrite runs when the WAL has written a batch and started its fsync
// (pipelined path): the produce units in it are proposed now. As in
// onNotice, the batch may also hold records the state machine appended;
// only the units the produce handler queued are proposed, and they must be
// a contiguous run that ends the batch, accepted in this leader's term.
func (n *Node) onWrite(k statemach.Key, nt wal.BatchNotice) {
	if n.closed || n.failed != nil || n.bugs.NoticeBeforeFsync {
		return // (that variant proposed each append already)
	}
	defer n.maybeReady()
	n.trace("wal.write", int64(k.Partition), nt.Base, nt.Last, int64(nt.Seq))
	var units []*unit
	for _, u := range n.queued[k] {
		if u.base > nt.Last {
			break
		}
		if u.base >= nt.Base && !u.handled {
			u.handled = true
			units = append(units, u)
		}
	}
	if len(units) == 0 {
		return
	}
	if !n.proposable(units, nt.Base, nt.Last) {
		return
	}
	if n.propose(k, units, nt.Records[units[0].base-nt.Base:]) {
		for _, u := range units {
			u.proposed = true
		}
	}
}

// durableErrIndeterminate says whether a WAL error that ended u's append
// leaves the write's outcome unknown. A fsync or write failure
// (wal.ErrFailed) is unknown in standalone mode (the records may be found
// on disk after the restart) and for a batch already proposed (its entry
// may commit); in a cluster, a batch that was never proposed will never
// happen. A truncation is definite (see the file doc). With trace set, a
// failure after the proposal is traced:
//
//	pipe.fail  A=partition B=base C=records D=acks
func (n *Node) durableErrIndeterminate(u *unit, err error, trace bool) bool {
	if !errors.Is(err, wal.ErrFailed) {
		return false
	}
	if u.proposed && trace {
		n.trace("pipe.fail", int64(u.key.Partition), u.base, int64(u.n), int64(u.acks))
	}
	if u.proposed && n.bugs.PipelinedDefiniteFsyncError {
		return false
	}
	return (n.standalone && !n.bugs.StandaloneDefiniteFsyncError) || u.proposed
}

// traceApply traces the states the pipelined path adds when this node is
// about to apply a batch: the first two for a batch it proposed itself,
// the third for another node's batch (the harness counts them as probes):
//
//	pipe.apply.early    A=partition B=base C=end D=WAL durable end
//	    applied (and its acks=-1 answered) before its WAL fsync completed
//	pipe.apply.rebuild  A=partition B=base C=end D=WAL end
//	    the WAL lost records the Raft log holds (a crash before the WAL
//	    fsync): applying rewrites them
//	pipe.reapply.rebuild  A=partition B=base C=end D=WAL end
//	    a restarted node, re-applying its durably committed entries,
//	    rewrites another node's batch its WAL no longer holds (applied
//	    records are written without an fsync of their own on this path)
func (n *Node) traceApply(e *statemach.Entry) {
	k := statemach.Key{Topic: e.Topic, Partition: e.Partition}
	p, w := n.sm.Partition(k), n.wals[k]
	if e.Tag != statemach.TagBatch || p == nil || e.Base != p.Committed() {
		return
	}
	if e.ID.Node != n.cfg.ID {
		if end := e.Base + e.Count; n.reapplying && w.End() < end {
			n.trace("pipe.reapply.rebuild", int64(k.Partition), e.Base, end, w.End())
		}
		return
	}
	switch end := e.Base + e.Count; {
	case w.End() < end:
		n.trace("pipe.apply.rebuild", int64(k.Partition), e.Base, end, w.End())
	case w.DurableEnd() < end:
		n.trace("pipe.apply.early", int64(k.Partition), e.Base, end, w.DurableEnd())
	}
}

// bugNoteOwn is the TrustOwnBatches variant: every entry this node
// proposed, in this incarnation or an earlier one, is taken to be in its
// WAL already, so applying it writes nothing.
func (n *Node) bugNoteOwn(e *statemach.Entry) {
	if e.Tag == statemach.TagBatch && e.ID.Node == n.cfg.ID {
		if p := n.sm.Partition(statemach.Key{Topic: e.Topic, Partition: e.Partition}); p != nil {
			p.NoteOwn(e.Base, e.ID)
		}
	}
}
