// This file is the Raft loop: incoming messages, ticks, and etcd raft's
// Ready contract (persist, sync when raft.MustSync says so, send, apply,
// Advance), and the applying of committed entries.

package node

import (
	"fmt"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"walraft/core/env"
	"walraft/core/statemach"
)

// Receive handles a message from another node.
func (n *Node) Receive(from uint64, msg []byte) {
	if n.standalone || n.closed || n.failed != nil || !n.started {
		return
	}
	m, err := decodeMessage(msg)
	if err != nil {
		n.trace("msg.bad", int64(from), int64(len(msg)), 0, 0)
		return
	}
	if n.bugs.DropMessageContext {
		m.Context = nil
	}
	if m.GetFrom() != from || m.GetTo() != n.cfg.ID || raft.IsLocalMsg(m.GetType()) {
		n.trace("msg.misaddressed", int64(from), int64(m.GetFrom()), int64(m.GetTo()), 0)
		return
	}
	if m.GetType() == pb.MsgTimeoutNow && n.diskHung() && !n.bugs.HungFollowerCampaigns && !n.bugs.HungTakesTimeoutNow {
		// A node whose disk hangs does not campaign (DESIGN.md 3.9), not
		// even when a leader hands it leadership: the leader cannot see
		// this node's disk. The transfer times out and the leader keeps
		// leading, or steps aside to another node.
		n.trace("raft.timeoutnow.ignored", int64(from), int64(m.GetTerm()), 0, 0)
		return
	}
	// Errors here are expected (a message for an unknown peer, a stale
	// local message) and leave raft unchanged.
	_ = n.rn.Step(m)
	n.syncRole()
	n.maybeReady()
}

func (n *Node) armTick() {
	n.tick = n.env.Clock.AfterFunc(n.cfg.TickInterval, func() {
		if n.closed || n.failed != nil {
			return
		}
		n.onTick()
		n.syncRole()
		n.armTick()
		n.maybeReady()
	})
}

// maybeReady handles the next Ready if none is in flight.
func (n *Node) maybeReady() {
	if !n.started {
		return // start runs the first Ready
	}
	if n.asyncStorage() {
		n.readyAsync()
		return
	}
	if n.standalone || n.readyInFlight || n.closed || n.failed != nil || !n.rn.HasReady() {
		return
	}
	rd := n.rn.Ready()
	n.readyInFlight = true
	n.noteReady(rd)
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
		if n.bugs.VoteBeforeSync || n.bugs.AppRespBeforeSync {
			rd.Messages = n.sendBuggy(rd.Messages)
		}
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
		// Committed entries this node already holds durably apply while
		// the sync runs (etcd raft's doc.go: the Ready's steps may run in
		// parallel, except sending). Without this a commit learned while
		// one sync runs waits for that sync and the next one before its
		// acks=-1 answer: two fsyncs of latency for nothing.
		early := n.durableCommitted(rd)
		if !n.applyCommitted(rd.CommittedEntries[:early]) {
			return
		}
		rd.CommittedEntries = rd.CommittedEntries[early:]
		n.storage.Sync(func(err error) { n.afterPersist(rd, err) })
		return
	}
	n.afterPersist(rd, nil)
}

// durableCommitted returns how many of rd's committed entries this node
// holds durably in its Raft log: those below the first entry rd saves.
// Only one Ready is in flight and each one that saves entries syncs them
// before the next Ready starts, so every entry saved before rd is synced,
// and rd's own entries (a follower may learn an entry and its commit in
// one Ready) are not yet. Applying only these keeps the HWM at or below
// the node's durable log end, which recovery relies on (openRaft withholds
// the HWM up to the durable last index).
func (n *Node) durableCommitted(rd raft.Ready) int {
	if n.bugs.ApplyBeforeSync {
		return len(rd.CommittedEntries)
	}
	if len(rd.Entries) == 0 {
		return len(rd.CommittedEntries)
	}
	first := rd.Entries[0].GetIndex()
	k := 0
	for k < len(rd.CommittedEntries) && rd.CommittedEntries[k].GetIndex() < first {
		k++
	}
	return k
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
	if m.GetType() == pb.MsgVoteResp && !m.GetReject() {
		// raft.vote: A=candidate B=term. A (real, not pre-) vote granted
		// and leaving now: its HardState is durable (S9), and the harness
		// aims faults at the last voter and triggers on grants.
		n.trace("raft.vote", int64(m.GetTo()), int64(m.GetTerm()), 0, 0)
	}
	n.env.Net.Send(m.GetTo(), b)
}

// staleAppResp reports whether m acknowledges, for a leader of a term
// older than this node's term now, entries this node's log no longer
// holds. One Ready can hold the responses to appends of two terms: a MsgApp
// of term 6 is appended and answered, then, before the Ready is taken, a
// MsgApp of term 7 replaces those entries, and the Ready's sync makes only
// the term-7 log durable. etcd raft keeps the term-6 acknowledgement queued
// (a term change does not clear it); sent after the sync, it would promise
// the term-6 leader entries that were never durable here (S9), which that
// deposed leader, not yet aware of term 7, could count toward a commit.
// The entries it acknowledged are gone when the log ends before its index
// or holds an entry of a later term there (entries of term 6 can only be
// replaced by a later term's). Such a message is dropped: Raft tolerates
// any lost message. An older-term acknowledgement the log still backs is
// sent as before.
func (n *Node) staleAppResp(m *pb.Message, term uint64) bool {
	if n.bugs.SendStaleAppResp {
		return false
	}
	if m.GetType() != pb.MsgAppResp || m.GetReject() || m.GetTerm() >= term || m.GetIndex() == 0 {
		return false
	}
	lt, ok := n.RaftLogTerm(m.GetIndex())
	return !ok || lt > m.GetTerm()
}

func (n *Node) afterPersist(rd raft.Ready, err error) {
	if n.closed || n.failed != nil {
		return
	}
	if err != nil {
		n.fail(fmt.Errorf("raft log sync: %w", err))
		return
	}
	term := n.rn.BasicStatus().HardState.GetTerm()
	for _, m := range rd.Messages {
		if n.staleAppResp(m, term) {
			// raft.stale.resp: A=to B=acknowledged index C=its term D=our term.
			n.trace("raft.stale.resp", int64(m.GetTo()), int64(m.GetIndex()), int64(m.GetTerm()), int64(term))
			continue
		}
		n.send(m)
	}
	if !n.applyCommitted(rd.CommittedEntries) {
		return
	}
	n.rn.Advance(rd)
	n.readyInFlight = false
	n.maybeReady()
}

// applyCommitted applies committed entries in order; false when the node
// failed doing so (a log write failed while applying) and must stop here.
func (n *Node) applyCommitted(ents []*pb.Entry) bool {
	for _, e := range ents {
		if err := n.applyEntry(e); err != nil {
			n.fail(err)
		}
		if n.failed != nil {
			return false
		}
		n.applied = e.GetIndex()
		n.checkRecovered()
		if n.role == RoleLeader && !n.gate && (e.GetTerm() == n.term || n.bugs.GateOnAnyEntry) {
			n.openGate()
		}
	}
	return true
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
	if n.bugs.TrustOwnBatches {
		n.bugNoteOwn(&ent)
	}
	if n.pipelined() {
		n.traceApply(&ent)
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

// marshal encodes raft messages deterministically: their bytes cross the
// simulated network and must be the same for the same seed.
var marshal = proto.MarshalOptions{Deterministic: true}

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
