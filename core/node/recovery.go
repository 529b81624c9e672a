// This file is recovery and the leadership gate: rebuilding the Raft log
// and the state machine on restart, the recovering state that withholds the
// HWM, role tracking, and the gate a new leader opens once it applied an
// entry of its own term.

package node

import (
	"fmt"

	"go.etcd.io/raft/v3"

	"walraft/core/raftlog"
)

// openRaft recovers the Raft log and builds the RawNode; start re-applies
// the durably committed entries (reapply) once the log's recovery sync
// completed.
func (n *Node) openRaft() error {
	st, err := raftlog.Open(n.env.FS, RaftLogDir(n.cfg), n.cfg.Peers, raftlog.Options{Log: n.cfg.RaftLog, InMemory: n.bugs.InMemoryRaftLog,
		DropLastRecord: n.bugs.RaftLogDropsLast, CutAtCorruption: n.bugs.CutAtCorruption || n.bugs.RecoverCutsCorruption,
		NoRecoveryRewrite: n.bugs.RecoveryNoRewrite})
	if err != nil {
		return fmt.Errorf("node %d: %w", n.cfg.ID, err)
	}
	n.storage = st
	if st.Recovering() && !n.bugs.StartBeforeRecoverySync && !n.bugs.RaftRecoveryNotAwaited {
		n.booting++
		st.OnRecovered(n.logRecovered)
	}
	hs := st.HardState()
	commit := hs.GetCommit()
	n.term = hs.GetTerm()
	n.writtenTerm, n.durableTerm = n.term, n.term
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
		AsyncStorageWrites:        n.asyncStorage(),
		Logger:                    &raftLogger{n: n},
	}
	rn, err := raft.NewRawNode(rc)
	if err != nil {
		return fmt.Errorf("node %d: raft: %w", n.cfg.ID, err)
	}
	n.rn = rn
	return nil
}

// reapply re-applies every durably committed entry (so the HWM is back
// where it was before the node answers anything) and enters the recovering
// state if the log holds entries past the commit index.
func (n *Node) reapply() error {
	st := n.storage
	commit := st.HardState().GetCommit()
	if commit > 0 {
		ents, err := st.Entries(1, commit+1, 1<<62)
		if err != nil {
			return fmt.Errorf("node %d: read committed entries up to %d: %w", n.cfg.ID, commit, err)
		}
		n.reapplying = true
		for _, e := range ents {
			if err := n.applyEntry(e); err != nil {
				return fmt.Errorf("node %d: re-apply entry %d: %w", n.cfg.ID, e.GetIndex(), err)
			}
		}
		n.reapplying = false
	}
	n.applied = commit
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
	return nil
}

// checkRecovered ends recovery once the node applied up to recoverTo.
func (n *Node) checkRecovered() {
	if n.recoverTo > 0 && (n.applied > n.recoverTo || (n.applied == n.recoverTo && !n.bugs.RecoveryEndsLate)) {
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
		if role != RoleLeader && !n.bugs.GateKeptOnLeaderLoss {
			n.gate = false
		}
		was := n.role
		n.role, n.lead = role, ss.Lead
		n.trace("raft.role", int64(role), int64(ss.Lead), int64(n.rn.BasicStatus().GetTerm()), 0)
		if was == RoleLeader && role != RoleLeader {
			n.lostLeadership()
		}
		n.updateCutHold()
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
		if n.pipelined() {
			// The records it applied as a follower were written without
			// an fsync (statemach.Options.DeferApplySync): make them
			// durable now, so that a leader's durable end again means
			// "everything it took in" (and the next acks=1 fsync need
			// not carry them all).
			n.wals[k].SyncDeferred()
		}
	}
}

// TransferLeadership asks this node, if it leads, to hand leadership to peer
// to (etcd raft's leadership transfer: the leader stops taking proposals,
// brings to up to date and tells it to campaign at once). It reports whether
// the request was passed to raft: false when the node is not the leader, is
// standalone, has failed, or to is itself or not a peer, and false while
// produce requests are accepted and not yet proposed. Raft abandons a
// transfer that does not finish within an election timeout.
//
// Raft drops every proposal while a transfer is in progress, and the node
// would then truncate the batch from its WAL; a transfer that fails leaves
// the same leader in the same term, so an acks=1 write already answered
// would be lost without a leader change (S5; the transfer-leader fault found
// this). So the produce gate stays closed during a transfer (see
// acceptsProduce), and a transfer is declined while units wait for their
// fsync to be proposed. Should a batch of this term reach its proposal
// during a transfer all the same, proposable (produce.go) aborts the
// transfer rather than let raft drop it.
func (n *Node) TransferLeadership(to uint64) bool {
	if n.standalone || n.closed || n.failed != nil || n.role != RoleLeader || to == n.cfg.ID {
		return false
	}
	if n.nqueued > 0 {
		n.trace("raft.transfer.declined", int64(to), int64(n.term), int64(n.nqueued), 0)
		return false
	}
	known := false
	for _, p := range n.cfg.Peers {
		known = known || p == to
	}
	if !known {
		return false
	}
	n.trace("raft.transfer", int64(to), int64(n.term), 0, 0)
	n.rn.TransferLeader(to)
	n.maybeReady()
	return true
}
