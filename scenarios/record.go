package scenarios

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"walraft/core/env"
	"walraft/core/node"
	"walraft/core/statemach"
)

// recorder connects the harness to the history Recorder: it translates node
// responses and states into history records.
type recorder struct {
	h *harness
	r *Recorder
	// durable is observe's scratch: the WAL durable ends a node reports,
	// parallel to the observation's parts (S10, oracle.observeDurable).
	durable []int64

	healedAt  time.Duration
	calmFrom  time.Duration
	probeOp   OpID
	rotation  string // LivenessReport.Rotation, while the rotation is stuck
	lastLive  liveState
	converged time.Duration
	leader    uint64
}

// clientOp is a produce in flight.
type clientOp struct {
	id      OpID
	req     node.ProduceRequest
	retryOf int
}

func newRecorder(h *harness) *recorder {
	info := RunInfo{Mode: ModeCluster, Seed: h.o.Seed, AcksTimeout: h.o.AcksTimeout, Path: h.o.Path.String()}
	if faultFree(h.o, h.sched) {
		info.FaultFree, info.LatencyBound = true, latencyBound(h.o)
	}
	if h.o.Nodes == 1 {
		info.Mode = ModeStandalone
	}
	for i := 1; i <= h.o.Nodes; i++ {
		info.Nodes = append(info.Nodes, NodeID(i))
	}
	for _, t := range h.o.Topics {
		for p := int32(0); p < t.Partitions; p++ {
			info.Partitions = append(info.Partitions, PartKey{Topic: t.Name, Partition: p})
		}
	}
	rec := &recorder{h: h, r: NewRecorder(info)}
	if why := h.sched.BeyondBudgetFor(h.o.Nodes); why != "" {
		rec.r.MarkBeyondBudget(why)
	}
	return rec
}

func (rec *recorder) invoke(client int, to uint64, topic string, part int32, acks node.Acks, recs [][]byte, probe bool) *clientOp {
	pids := make([]uint64, len(recs))
	for i, r := range recs {
		pids[i] = payloadID(r)
	}
	op := &clientOp{req: node.ProduceRequest{Topic: topic, Partition: part, Acks: acks, Records: recs}}
	op.id = rec.r.Invoke(Op{Client: uint64(client), Node: to, Kind: KindProduce, Topic: topic, Partition: part,
		Acks: int8(acks), Payloads: pids, Invoke: rec.h.s.Now()})
	if probe {
		rec.probeOp = op.id
	}
	return op
}

// retry marks op as re-sending the payloads of an earlier indeterminate op.
func (rec *recorder) retry(op *clientOp, of int) {
	if of > 0 {
		rec.r.History().Ops[op.id-1].RetryOf = OpID(of)
	}
}

func (rec *recorder) complete(op *clientOp, resp node.ProduceResponse, ev evidence) {
	rep := Reply{}
	switch {
	case op.req.Acks == node.AcksNone && (resp.Err == nil || resp.Indeterminate):
		// An acks=0 client waits for nothing: it learns nothing either way.
		rep.Outcome = OutcomeNone
	case resp.Err == nil:
		rep.Outcome = OutcomeOK
		rep.Offset = resp.BaseOffset
		rep.Evidence = &Evidence{At: ev.At, Term: ev.Term, DurableEnd: ev.DurableEnd, HWM: ev.HWM, EntryTerm: resp.Term, EntryIndex: resp.Index,
			Truth: ev.Truth, ReportedDurableEnd: ev.ReportedDurableEnd}
	case resp.Indeterminate:
		rep.Outcome = OutcomeIndeterminate
		rep.Err = resp.Err.Error()
	default:
		rep.Outcome = OutcomeFail
		rep.Err = resp.Err.Error()
	}
	if errors.Is(resp.Err, node.ErrTimeout) || errors.Is(resp.Err, errClientTimeout) {
		rec.h.probe("request-timeout")
	}
	rec.r.Complete(op.id, rec.h.s.Now(), rep)
}

func (rec *recorder) fetch(client int, to uint64, topic string, part int32, from int64, invoked, served time.Duration, resp node.FetchResponse) {
	id := rec.r.Invoke(Op{Client: uint64(client), Node: to, Kind: KindFetch, Topic: topic, Partition: part, From: from, Invoke: invoked})
	if resp.Err != nil {
		r := Reply{Outcome: OutcomeFail, Err: resp.Err.Error()}
		if errors.Is(resp.Err, node.ErrOffsetOutOfRange) {
			// The refusal reports the node's HWM and log end: judged
			// like any other report of them (FetchReply).
			r.Fetch = &FetchReply{HWM: resp.HWM, LogEnd: resp.LogEnd, At: served}
		}
		rec.r.Complete(id, rec.h.s.Now(), r)
		return
	}
	fr := &FetchReply{HWM: resp.HWM, LogEnd: resp.LogEnd, At: served}
	for _, r := range resp.Records {
		fr.Records = append(fr.Records, Rec{Offset: r.Offset, Payload: payloadID(r.Value)})
	}
	rec.r.Complete(id, rec.h.s.Now(), Reply{Outcome: OutcomeOK, Fetch: fr})
}

var roleNames = map[node.Role]Role{node.RoleLeader: RoleLeader, node.RoleFollower: RoleFollower,
	node.RoleCandidate: RoleCandidate, node.RoleStandalone: RoleLeader}

func (rec *recorder) observe(id uint64, n *node.Node) {
	st := n.Status()
	rec.h.oracle.checkRecovering(id, st)
	o := Observation{Time: rec.h.s.Now(), Node: id, Incarnation: rec.h.w.Process(id).Incarnation(), Up: st.Failed == nil,
		Role: roleNames[st.Role], Term: st.Term, Leader: st.Lead}
	if st.Role == node.RoleStandalone {
		o.Leader = id
	}
	// A recovering node withholds its HWMs from clients (node package
	// doc): it is up, but there is nothing to observe until it caught up.
	if o.Up && !st.Recovering {
		rec.durable = rec.durable[:0]
		for _, p := range n.Partitions() {
			o.Parts = append(o.Parts, PartState{Topic: p.Topic, Partition: p.Partition, HWM: p.HWM, LogEnd: p.LogEnd})
			rec.durable = append(rec.durable, p.DurableEnd)
		}
		rec.h.oracle.observe(id, o.Parts)
		rec.h.oracle.observeDurable(id, o.Parts, rec.durable)
	} else {
		o.Role, o.Term, o.Leader = RoleNone, 0, 0
	}
	if rec.r.Observe(o) {
		// Put each changed observation in the trace too, so a replay's
		// timeline shows every node's HWM and log end.
		for _, p := range o.Parts {
			rec.h.w.Emit(id, env.Event{Kind: "obs", A: int64(p.Partition), B: p.HWM, C: p.LogEnd, D: int64(o.Term)})
		}
	}
}

func (rec *recorder) down(id uint64) {
	rec.r.Observe(Observation{Time: rec.h.s.Now(), Node: id, Incarnation: rec.h.w.Process(id).Incarnation()})
}

func (rec *recorder) livenessStart(t time.Duration) { rec.healedAt = t }

func (rec *recorder) live(t time.Duration, leader uint64) {
	rec.converged, rec.leader = t, leader
}

// liveState is one evaluation of the L1 conditions.
type liveState struct {
	allUp, oneLeader, hwms, waiters, probe bool
	// drained: the leader holds nothing accepted but uncommitted or not
	// durable (stranded says what it holds otherwise).
	drained  bool
	stranded string
	leader   uint64
	detail   string
}

// finish captures the final state and the liveness report and ends the
// history.
func (rec *recorder) finish() {
	h := rec.h
	now := h.s.Now()
	final := FinalState{Time: now}
	// The previous node's committed entries, raw and described: nodes
	// mostly hold the same entries, and an equal entry (same index, term,
	// type and bytes) gets the same description without decoding it again.
	var prevEnts []*pb.Entry
	var prevRaft []RaftEntry
	for _, id := range h.ids {
		fn := FinalNode{Node: id, Incarnation: h.w.Process(id).Incarnation()}
		n := h.node(id)
		if n != nil && n.Failed() == nil {
			fn.Up = true
			// A node still recovering (only when liveness failed) withholds
			// its HWMs and records: it has no partition state to check.
			for _, ps := range n.Partitions() {
				if n.Status().Recovering {
					break
				}
				fn.Parts = append(fn.Parts, rec.finalPart(id, n, ps))
			}
			if h.o.Nodes > 1 {
				ents, err := n.RaftEntries(1, n.Status().Applied+1)
				if err != nil {
					panic(fmt.Sprintf("scenarios: node %d raft entries: %v", id, err))
				}
				if len(ents) > 0 {
					fn.RaftFirst = ents[0].GetIndex()
				}
				fn.Raft = make([]RaftEntry, 0, len(ents))
				for _, e := range ents {
					fn.Raft = append(fn.Raft, describeLike(e, prevEnts, prevRaft))
				}
				prevEnts, prevRaft = ents, fn.Raft
			}
		}
		final.Nodes = append(final.Nodes, fn)
	}
	rec.r.SetFinal(final)
	ls := rec.lastLive
	lr := LivenessReport{HealedAt: rec.healedAt, Bound: h.o.LivenessDuration, ProbeOp: rec.probeOp,
		OneLeader: ls.oneLeader, Leader: ls.leader, HWMsAtCommitEnd: ls.hwms, WaitersResolved: ls.waiters, ProbeOK: ls.probe,
		Detail: ls.detail, CalmFrom: rec.calmFrom, Rotation: rec.rotation}
	if ls.allUp && ls.oneLeader && ls.hwms && ls.waiters && !ls.drained {
		lr.Stranded = ls.stranded
	}
	if rec.converged > 0 || h.liveAt >= 0 {
		lr.ConvergedAt = max(h.liveAt, 1)
		lr.OneLeader, lr.Leader, lr.HWMsAtCommitEnd, lr.WaitersResolved, lr.ProbeOK = true, rec.leader, true, true, true
		lr.Detail, lr.Stranded, lr.Rotation = "", "", ""
	}
	rec.r.SetLiveness(lr)
	rec.r.SetAvail(h.avail.finish())
	for id, held := range h.held { // order-free: sets a field on each
		for _, sv := range held {
			sv.Until = h.nodeClock(id)
		}
	}
	rec.r.End(now)
}

// finalPart reads every record below the HWM. A read that returns records
// at or past the HWM is a consumer reading past the HWM: reported as S4
// (named by the harness, since the final state keeps records below the HWM
// only), and those records are left out.
func (rec *recorder) finalPart(id uint64, n *node.Node, ps node.PartitionStatus) FinalPart {
	fp := FinalPart{Topic: ps.Topic, Partition: ps.Partition, HWM: ps.HWM, LogEnd: ps.LogEnd}
	off := int64(0)
	for off < ps.HWM {
		resp := n.Fetch(node.FetchRequest{Topic: ps.Topic, Partition: ps.Partition, Offset: off, MaxBytes: 1 << 20})
		if resp.Err != nil || len(resp.Records) == 0 {
			break // the checkers see the gap (S3: HWM beyond what the node holds)
		}
		for _, r := range resp.Records {
			if r.Offset >= ps.HWM || r.Offset < off {
				rec.h.harnessViolation(InvS4, fmt.Sprintf("the final read of n%d %s/%d from offset %d returned offset %d, at or past the HWM %d or out of order",
					id, ps.Topic, ps.Partition, off, r.Offset, ps.HWM))
				break
			}
			fp.Records = append(fp.Records, Rec{Offset: r.Offset, Payload: payloadID(r.Value)})
			off = r.Offset + 1
		}
		if len(fp.Records) == 0 || fp.Records[len(fp.Records)-1].Offset+1 != off {
			break
		}
	}
	return fp
}

// describeLike describes e as raftEntry does, reusing the description of
// the entry of prev (whose descriptions are prevRaft) at e's index when
// that entry is the same bytes; the payload ids are copied, so no two
// nodes' final states share memory.
func describeLike(e *pb.Entry, prev []*pb.Entry, prevRaft []RaftEntry) RaftEntry {
	if len(prev) > 0 {
		if j := e.GetIndex() - prev[0].GetIndex(); j < uint64(len(prev)) {
			if p := prev[j]; p.GetIndex() == e.GetIndex() && p.GetTerm() == e.GetTerm() && p.GetType() == e.GetType() && bytes.Equal(p.Data, e.Data) {
				re := prevRaft[j]
				re.Payloads = slices.Clone(re.Payloads)
				return re
			}
		}
	}
	return raftEntry(e)
}

// raftEntry describes a committed entry for the final state.
func raftEntry(e *pb.Entry) RaftEntry {
	re := RaftEntry{Index: e.GetIndex(), Term: e.GetTerm(), Kind: EntryEmpty}
	if e.GetType() != pb.EntryNormal {
		re.Kind = EntryConf
		return re
	}
	if len(e.Data) == 0 {
		return re
	}
	ent, err := statemach.Decode(e.Data)
	if err != nil {
		panic(fmt.Sprintf("scenarios: committed entry %d does not decode: %v", e.GetIndex(), err))
	}
	re.Kind = EntryBatch
	if ent.Tag == statemach.TagCanonical {
		re.Kind = EntryCanonical
	}
	re.Topic, re.Partition, re.Base = ent.Topic, ent.Partition, ent.Base
	for _, r := range ent.Records {
		re.Payloads = append(re.Payloads, payloadID(r))
	}
	return re
}
