// This file is the Raft loop of the pipelined path: etcd raft's
// asynchronous storage writes (raft.Config.AsyncStorageWrites; etcd raft's
// doc.go, "Usage with Asynchronous Storage Writes").
//
// With one Ready in flight (ready.go) a node takes no new Ready while its
// Raft-log fsync runs, so on a busy leader every step waits for the sync in
// progress: a new proposal waits to be sent, and a follower's acknowledgement
// waits to be counted, each for half a sync on average. The pipelined path
// exists to take fsyncs off the critical path, so here Readys are handled as
// they come, and storage is driven by raft's local messages:
//
//   - messages to other nodes leave at once (a leader's appends, heartbeats;
//     raft keeps every message that depends on the node's own durability
//     among the responses of a storage append);
//   - a MsgStorageAppend (to raft.LocalAppendThread) is written to the Raft
//     log at once; if it carries responses, a sync is queued behind the
//     syncs already queued (the record log runs one fsync at a time, and a
//     sync not yet started covers every record written before it starts),
//     and its responses are delivered when that sync completes, in order:
//     local ones (the storage acknowledgement, a leader's own append
//     acknowledgement, a candidate's own vote) are stepped, the others sent.
//     A MsgStorageAppend without responses (a commit index that moved)
//     needs no sync: the next sync carries it, as on the one-Ready path.
//     Nor does one whose responses promise nothing new (a follower's
//     acknowledgement of an append that carried only a commit index: no
//     entries, the same term and vote, raft.MustSync false): its
//     responses are delivered at once if nothing is being synced, or with
//     the last sync queued, which covers every record they depend on.
//     Without this every commit-index update a leader sends costs each
//     follower an fsync, and the next append's fsync waits behind it;
//   - a MsgStorageApply (to raft.LocalApplyThread) is applied at once, then
//     its responses are stepped. Raft hands over only entries this node has
//     durably (with asynchronous writes it never applies unstable entries),
//     so everything applied is in the node's synced log, which recovery and
//     S9 rely on.
//
// Messages to one target are handled in the order raft emits them, and a
// storage append's responses are delivered in order too, so raft's ordering
// contract holds. An acknowledgement of an older term can still promise
// entries that a newer term replaced before the sync that was to cover
// them (two appends written before one sync); staleAppResp drops it, as on
// the one-Ready path.

package node

import (
	"fmt"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"walraft/core/statemach"
)

// asyncStorage reports whether this node runs the Raft loop with
// asynchronous storage writes: the pipelined path does.
func (n *Node) asyncStorage() bool { return n.pipelined() }

// readyAsync handles every Ready raft has, as it comes (see the file doc).
// It is not reentrant: a call from inside the loop (a callback of an apply,
// say) returns at once and the loop takes the Ready it wanted, so that
// messages to one local thread are handled in order.
func (n *Node) readyAsync() {
	if n.readyInFlight {
		return
	}
	n.readyInFlight = true
	defer func() { n.readyInFlight = false }()
	for !n.standalone && !n.closed && n.failed == nil && n.rn.HasReady() {
		rd := n.rn.Ready()
		n.noteReady(rd)
		for _, m := range rd.Messages {
			switch m.GetTo() {
			case raft.LocalAppendThread:
				n.localAppend(m)
			case raft.LocalApplyThread:
				n.localApply(m)
			default:
				n.sendWhenTermDurable(m)
			}
			if n.closed || n.failed != nil {
				return
			}
		}
	}
}

// noteReady takes from a Ready what the node tracks whatever the loop:
// its role, its term, the proposer's index for each of its batches, and a
// recovering node's cut where a leader overwrites its log.
func (n *Node) noteReady(rd raft.Ready) {
	if rd.SoftState != nil {
		n.onSoftState(*rd.SoftState)
	}
	if rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState) && rd.HardState.GetTerm() != n.term {
		n.term = rd.HardState.GetTerm()
		n.trace("raft.term", int64(n.term), int64(n.lead), 0, 0)
	}
	if n.bugs.GateBeforeApply && n.role == RoleLeader && !n.gate {
		n.openGate()
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
}

// localAppend writes a MsgStorageAppend's HardState and entries to the Raft
// log and delivers its responses once they are durable.
func (n *Node) localAppend(m *pb.Message) {
	var hs *pb.HardState
	prev := n.storage.HardState()
	if m.Term != nil {
		hs = &pb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}
		n.writtenTerm = m.GetTerm()
	}
	if err := n.storage.Save(hs, m.GetEntries()); err != nil {
		n.fail(err)
		return
	}
	if hs == nil {
		hs = prev
	}
	if raft.MustSync(hs, prev, len(m.GetEntries())) {
		n.mustSync = true
	}
	resps := m.GetResponses()
	if len(resps) == 0 {
		return // nothing waits on it: the next sync carries it
	}
	if n.bugs.VoteBeforeSync || n.bugs.AppRespBeforeSync {
		resps = n.sendBuggy(resps)
	}
	if !n.mustSync {
		if n.syncsOut == 0 {
			// Every record the responses depend on is durable: at most a
			// commit index is written and not synced.
			n.deliver(resps)
			return
		}
		// The last sync queued covers every record they depend on.
		s := n.lastSync
		s.resps = append(s.resps[:len(s.resps):len(s.resps)], resps...) // never into raft's array
		return
	}
	n.syncAsync(resps)
}

// asyncSync is a Raft-log sync queued by syncAsync and the responses that
// wait for it.
type asyncSync struct {
	resps []*pb.Message
}

// syncAsync queues a Raft-log sync and delivers resps when it completes.
func (n *Node) syncAsync(resps []*pb.Message) {
	n.syncsOut++
	n.updateCutHold()
	n.mustSync = false // the sync covers every record written so far
	term := n.writtenTerm
	s := &asyncSync{resps: resps}
	n.lastSync = s
	n.storage.Sync(func(err error) {
		n.syncsOut--
		if n.lastSync == s {
			n.lastSync = nil
		}
		n.updateCutHold()
		if n.closed || n.failed != nil {
			return
		}
		if err != nil {
			n.fail(fmt.Errorf("raft log sync: %w", err))
			return
		}
		n.durableTerm = max(n.durableTerm, term)
		n.deliver(s.resps)
		n.sendHeld()
		n.maybeReady()
	})
}

// sendWhenTermDurable sends a message to another node, unless it is a
// leader's message of a term not yet durable here: then it is held until a
// sync makes the term durable (and every message after it is held too, so
// that messages to one peer keep their order).
//
// etcd raft's asynchronous writes let a candidate become leader on its
// peers' votes alone, before its own term and vote are synced, and send
// its appends at once. A leader that then crashes comes back in an older
// term, may win the same term again on the same voters and fill the same
// indexes with other entries of the same term: entries that Raft's log
// matching takes to be equal. The harness's S9 found those appends (a
// leader's messages promise that its term is durable, scenarios' oracle);
// holding them costs one sync after an election.
func (n *Node) sendWhenTermDurable(m *pb.Message) {
	if n.bugs.LeaderBeforeTermSync || (len(n.held) == 0 && (!leaderMsg(m) || m.GetTerm() <= n.durableTerm)) {
		n.send(m)
		return
	}
	if len(n.held) == 0 {
		// raft.hold: A=term of the held message B=durable term
		n.trace("raft.hold", int64(m.GetTerm()), int64(n.durableTerm), 0, 0)
	}
	n.held = append(n.held, m)
	if n.syncsOut == 0 {
		n.syncAsync(nil)
	}
}

// sendHeld sends the held messages whose term is durable now, in order,
// up to the first that must still wait.
func (n *Node) sendHeld() {
	k := 0
	for ; k < len(n.held); k++ {
		m := n.held[k]
		if leaderMsg(m) && m.GetTerm() > n.durableTerm {
			break
		}
		n.send(m)
	}
	n.held = n.held[k:]
	if len(n.held) > 0 && n.syncsOut == 0 {
		n.syncAsync(nil)
	}
}

// leaderMsg reports whether m is a message only a leader sends.
func leaderMsg(m *pb.Message) bool {
	switch m.GetType() {
	case pb.MsgApp, pb.MsgHeartbeat, pb.MsgSnap, pb.MsgTimeoutNow:
		return true
	}
	return false
}

// localApply applies a MsgStorageApply's committed entries, then steps its
// responses.
func (n *Node) localApply(m *pb.Message) {
	if !n.applyCommitted(m.GetEntries()) {
		return
	}
	n.deliver(m.GetResponses())
}

// deliver steps the responses addressed to this node (or to its local
// threads' peers: raft addresses the storage acknowledgements to the node
// itself) and sends the others, in order, dropping a stale append
// acknowledgement (staleAppResp).
func (n *Node) deliver(msgs []*pb.Message) {
	term := n.rn.BasicStatus().HardState.GetTerm()
	for _, r := range msgs {
		if n.closed || n.failed != nil {
			return
		}
		if r.GetTo() == n.cfg.ID {
			if n.repeatedStableAck(r) {
				continue
			}
			// Errors here are expected (a response of a term raft moved
			// past) and leave raft unchanged.
			_ = n.rn.Step(r)
			n.syncRole()
			continue
		}
		if n.staleAppResp(r, term) {
			// raft.stale.resp: A=to B=acknowledged index C=its term D=our term.
			n.trace("raft.stale.resp", int64(r.GetTo()), int64(r.GetIndex()), int64(r.GetTerm()), int64(term))
			continue
		}
		n.send(r)
	}
}

// repeatedStableAck reports whether r is a storage acknowledgement of the
// very entry the last one stepped acknowledged, and notes r otherwise.
//
// While entries are being written, etcd raft attaches the last entry's id
// to every storage append's acknowledgement, a commit-index-only append's
// too, which rides on the sync of those entries (localAppend). Stepped
// second, it names an entry raft has already marked stable: a no-op that
// raft reports with an Info line ("entry at index N missing from unstable
// log; ignoring") once per batch on every node. The same (index, term)
// names the same entry (Raft's log matching), so such a repeat carries
// nothing and is dropped. A snapshot acknowledgement is always stepped.
func (n *Node) repeatedStableAck(r *pb.Message) bool {
	if r.GetType() != pb.MsgStorageAppendResp || r.GetIndex() == 0 || r.Snapshot != nil {
		return false
	}
	id := [2]uint64{r.GetIndex(), r.GetLogTerm()}
	if id == n.stableAck {
		return true
	}
	n.stableAck = id
	return false
}

// updateCutHold holds a pipelined leader's WALs from cutting batches while
// its Raft-log sync runs, and releases them when no sync is queued or the
// node stops leading (wal.WAL.HoldCuts).
//
// The leader writes its acks=-1 appends without a WAL fsync of their own
// (produce.go): they are answered on commit and apply, when a majority's
// synced Raft logs, the leader's included, hold them (pipeline.go). What
// gathered them into batches was that fsync: without it the WAL cuts a
// batch in every event and Raft gets entries of a few records (README).
// The leader's Raft-log sync takes its place: a batch is cut and proposed,
// its entry is synced, and what queued meanwhile is the next batch. So the
// leader pays one fsync per batch instead of two (its WAL and its Raft
// log, which compete for the same disk).
func (n *Node) updateCutHold() {
	on := n.pipelined() && n.role == RoleLeader && n.syncsOut > 0 && !n.closed && n.failed == nil
	if on == n.cutsHeld {
		return
	}
	n.cutsHeld = on
	for _, k := range n.sm.Keys() {
		n.wals[k].HoldCuts(on)
	}
}
