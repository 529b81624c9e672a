// This file is the produce handler (DESIGN.md section 2): the leadership
// gate, the acks=0/1/-1 answers, the WAL notices that become Raft proposals,
// suffix truncation, and Fetch.

package node

import (
	"errors"
	"fmt"

	"go.etcd.io/raft/v3"

	"walraft/core/proposer"
	"walraft/core/statemach"
	"walraft/core/wal"
)

func (n *Node) acceptsProduce() bool {
	return n.failed == nil && !n.closed && n.started && (n.standalone || (n.role == RoleLeader && n.gate && !n.transferring() && (!n.hung || n.bugs.NoStepDownOnHungDisk)))
}

// transferring reports whether a leadership transfer is in progress (raft
// drops proposals until it ends; see TransferLeadership).
func (n *Node) transferring() bool { return n.rn.BasicStatus().LeadTransferee != 0 }

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
	if !n.started {
		reply(ProduceResponse{Err: ErrNotReady})
		return
	}
	if !n.acceptsProduce() {
		reply(ProduceResponse{Err: ErrNotLeader, LeaderHint: n.leaderHint()})
		return
	}
	if n.nqueued >= n.cfg.MaxQueuedUnits || (!n.standalone && n.prop.Full()) {
		reply(ProduceResponse{Err: ErrBackpressure})
		return
	}
	u := &unit{key: k, n: len(req.Records), term: n.term, acks: req.Acks, reply: reply}
	// acks=0 and acks=1 appends are fsynced: acks=1 is answered on that
	// fsync. The pipelined path answers acks=-1 on commit and apply, when
	// the records are in a majority's synced Raft logs, the leader's
	// included (pipeline.go), so it writes them without a WAL fsync of
	// their own, like the records a follower applies; the leader's
	// Raft-log sync gathers them into batches instead (updateCutHold).
	// A batch that also holds an fsynced append is fsynced whole.
	appendFn := w.Append
	pipelined := n.pipelined() || (n.bugs.StandaloneReadsPath && n.cfg.Path == PathPipelined)
	if pipelined && (req.Acks == AcksAll || n.bugs.DeferProduceSync) {
		appendFn = w.AppendDeferred
	}
	base, err := appendFn(req.Records, func(err error) { n.onDurable(u, err) })
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
		timeout := n.cfg.AcksTimeout
		if n.bugs.AcksTimerUsesStallTimeout {
			timeout = n.cfg.DiskStallTimeout
		}
		u.timer = n.env.Clock.AfterFunc(timeout, func() {
			n.answer(u, ProduceResponse{Err: ErrTimeout, Indeterminate: true})
		})
	}
	if n.bugs.NoticeBeforeFsync && !n.standalone {
		n.propose(k, []*unit{u}, req.Records)
	}
}

// waitsCommit reports whether u is answered when its entry commits and
// applies (acks=-1 in a cluster; acks=1 too under the known-bad
// Acks1WaitsCommit).
func (n *Node) waitsCommit(u *unit) bool {
	return !n.standalone && (u.acks == AcksAll || (u.acks == AcksLeader && n.bugs.Acks1WaitsCommit))
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
		n.answer(u, ProduceResponse{Err: n.walError(err), Indeterminate: n.durableErrIndeterminate(u, err, true)})
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
	if (u.acks == AcksLeader && !n.waitsCommit(u)) || (n.standalone && u.acks == AcksAll) {
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
	if n.standalone && n.bugs.StandaloneNoticeKeepsQueue {
		if p := n.sm.Partition(k); n.wals[k].DurableEnd() > p.HWM() {
			p.SetDurable(n.wals[k].DurableEnd())
		}
		n.trace("hwm", int64(k.Partition), n.sm.Partition(k).HWM(), 0, 0)
		return
	}
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
	if len(units) == 0 || n.bugs.NoticeBeforeFsync || n.pipelined() {
		return // a follower's apply write, or already proposed (pipeline.go)
	}
	if !n.proposable(units, nt.Base, nt.Last) {
		return
	}
	n.propose(k, units, nt.Records[units[0].base-nt.Base:])
}

// failUnproposed ends the acks=-1 units of a batch that will not be
// proposed (this node is no longer the leader of the term that accepted
// them): definite, since no entry carries them.
func (n *Node) failUnproposed(units []*unit) {
	for _, u := range units {
		if n.waitsCommit(u) {
			n.answer(u, ProduceResponse{Err: ErrNotLeader, LeaderHint: n.leaderHint()})
		}
	}
}

// propose proposes units' records (offsets units[0].base onward) as one batch
// entry, or one canonical entry per record on the legacy path. It reports
// whether every entry reached the Raft log.
func (n *Node) propose(k statemach.Key, units []*unit, records [][]byte) bool {
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
				indet := errors.Is(r.Err, ErrNodeFailed) || errors.Is(r.Err, ErrLeadershipLost) || (legacy && u.n > 1)
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
				if n.waitsCommit(units[ui]) {
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
			if n.waitsCommit(u) {
				pr.waiters = append(pr.waiters, waiter(u))
			}
		}
		props = append(props, pr)
	}
	for i, pr := range props {
		// Only entries with acks=-1 waiters are tracked (and count against
		// MaxPendingBatches); an acks=0/1-only entry needs no bookkeeping.
		//
		// MaxPendingBatches is enforced when a request is accepted
		// (Produce); here the proposer admits every entry, beyond the
		// bound if need be (by at most MaxQueuedUnits requests): refusing
		// one would truncate a WAL batch whose acks=1 requests may have
		// been answered already, losing them with no leader change (S5),
		// and answer a multi-record legacy request indeterminate in a calm
		// run (L3). A rapid property campaign found both.
		err := error(nil)
		if len(pr.waiters) > 0 {
			err = n.prop.Add(pr.id, pr.waiters)
		}
		if err == nil {
			if n.cfg.Path != PathLegacy {
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
			return false
		}
		n.trace("propose", int64(k.Partition), pr.off, int64(len(records)), int64(pr.id.Seq))
		if n.bugs.HWMBeforeCommit {
			p.BugHWMAhead(base + int64(len(records)))
		}
	}
	return true
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
	if !n.started || (n.recoverTo > 0 && !n.bugs.FetchRangeBeforeRecovering) {
		return FetchResponse{Err: ErrRecovering}
	}
	w := n.wals[k]
	resp := FetchResponse{HWM: p.HWM(), LogEnd: w.End()}
	if req.Offset < w.Start() || req.Offset > resp.HWM {
		resp.Err = fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, req.Offset, w.Start(), resp.HWM)
		return resp
	}
	if n.recoverTo > 0 {
		return FetchResponse{Err: ErrRecovering}
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
		if off >= resp.HWM && !n.bugs.FetchPastHWM {
			break
		}
		resp.Records = append(resp.Records, Record{Offset: off, Value: r})
	}
	return resp
}

// proposable reports whether units, the appends a batch [base, last]
// carries, may be proposed as one entry, and makes sure Raft will take the
// proposal when they may. Both the WAL-first path (after the fsync) and the
// pipelined path (at write time) ask it.
//
// They may when they fill the batch exactly, the node has not stopped, and
// Raft says this node leads the term that accepted every one of them.
// Otherwise they are failed (definitely: nothing was proposed) and false is
// returned; the node is then no longer the leader of their term, so their
// records, still in the WAL, can only be lost through a leader change, and
// the next leader's gate (or its entries, on a follower) truncates them
// (DESIGN.md 3.2).
//
// Whether the node takes new writes (acceptsProduce) does not decide it: a
// leader refuses new writes while its disk is marked hung or while it
// transfers leadership, yet a batch it already wrote must still be
// proposed. A batch left unproposed by a leader that stays the leader of
// its term is stranded: acks=1 was (or will be, at its fsync) answered,
// nothing ever commits it, and every later batch of the partition applies
// as stale behind the gap. The hung mark in particular clears only at the
// next tick, so the batches written between a hung disk's return and that
// tick used to be stranded this way.
//
// Raft drops a proposal (ErrProposalDropped) when the node is not the
// leader (no leader, a follower, a candidate: handled above, a leader
// change), while a leadership transfer is in progress, when the leader was
// removed from the configuration, and past MaxUncommittedEntriesSize; the
// node never changes the configuration nor sets that limit, and a pending
// configuration change makes raft drop only a second configuration change,
// not a normal entry. So the transfer is the one drop a leader of the term
// can meet, and a transfer in progress is aborted here (raft aborts it when
// asked to transfer to the leader itself): the written batch is proposed
// and this node stays the leader, unless the transferee already got its
// MsgTimeoutNow, and then that is a leader change. TransferLeadership
// never lets it come to this (it declines while writes wait and closes the
// gate during a transfer); the step-down of a leader whose disk hangs
// (health.go) transfers with writes waiting on the hung disk, and those
// abort it when the disk returns, when the node no longer needs to step
// aside.
//
//	raft.transfer.abort  A=transferee B=term C=partition D=batch base
func (n *Node) proposable(units []*unit, base, last int64) bool {
	contiguous := units[0].base >= base && units[len(units)-1].end() == last+1
	for j := 1; j < len(units); j++ {
		contiguous = contiguous && units[j].base == units[j-1].end()
	}
	st := n.rn.BasicStatus()
	term := st.HardState.GetTerm()
	leads := n.failed == nil && !n.closed && st.RaftState == raft.StateLeader
	if n.bugs.ProposeOnlyWhileAccepting {
		leads = leads && n.acceptsProduce()
	}
	if !contiguous || !leads {
		n.failUnproposed(units)
		return false
	}
	for _, u := range units {
		if u.term != term {
			n.failUnproposed(units)
			return false
		}
	}
	if st.LeadTransferee != raft.None {
		n.trace("raft.transfer.abort", int64(st.LeadTransferee), int64(term), int64(units[0].key.Partition), base)
		if !n.bugs.TransferNotAborted {
			n.rn.TransferLeader(n.cfg.ID)
		}
	}
	return true
}
