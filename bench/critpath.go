package bench

import (
	"slices"
	"strings"
	"sync"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
)

// CriticalPath breaks the Raft part of the leader's acks=all path down,
// batch by batch, into the steps that can hold a batch up: medians, in ms,
// over the leader's batches of the measured window that every step was
// seen for. It answers "where does the time go" between a proposal and its
// apply, which Stages.RaftMs only totals:
//
//	propose --(LeaderSyncStart)--> the leader's Raft-log fsync --(LeaderSync)--> own ack
//	propose --(Send)--> MsgApp on the wire --(NetOut)--> follower --(FollowerQueue)-->
//	    its Raft-log fsync --(FollowerSync)--> --(AckBack: respond, wire)--> leader
//	quorum (the later of the 2 earliest acks of 3, counting the leader's own) --(QuorumToApply)--> apply
//
// A follower's numbers are over both followers' copies of every batch.
// LeaderLastPct is the share of batches whose quorum waited for the
// leader's own fsync (it was the later of the two acks that made the
// quorum), the rest waited for a follower.
//
// Measured with Config.CriticalPath on a cluster with one partition: the
// bench then decodes the type and indexes of every Raft message sent and
// received (protobuf wire format, no copy), which costs some CPU.
type CriticalPath struct {
	Batches         int     `json:"batches"`
	LeaderSyncStart float64 `json:"leader_sync_start_ms"` // propose -> its Raft-log fsync is issued
	LeaderSync      float64 `json:"leader_sync_ms"`       // that fsync
	Send            float64 `json:"send_ms"`              // propose -> the MsgApp carrying it is handed to the transport
	NetOut          float64 `json:"net_out_ms"`           // handed to the transport -> received by the follower
	FollowerQueue   float64 `json:"follower_queue_ms"`    // received -> the follower's fsync covering it is issued
	FollowerSync    float64 `json:"follower_sync_ms"`     // that fsync
	AckBack         float64 `json:"ack_back_ms"`          // the follower's fsync done -> its acknowledgement reaches the leader
	QuorumToApply   float64 `json:"quorum_to_apply_ms"`   // the quorum's acks -> applied on the leader
	ProposeToApply  float64 `json:"propose_to_apply_ms"`  // the whole, for the same batches
	LeaderLastPct   float64 `json:"leader_last_pct"`
}

// Kinds of path events.
const (
	pePropose   = iota // a: base offset of the batch proposed
	peApply            // a: Raft index applied, b: the batch's base offset
	peSyncStart        // a Raft-log File.Sync issued
	peSyncDone         // ... and completed
	peAppSend          // a MsgApp handed to the transport; a: last entry index, peer: to
	peAppRecv          // a MsgApp received; a: last entry index, peer: from
	peRespSend         // an accepting MsgAppResp sent; a: index, peer: to
	peRespRecv         // ... received; peer: from
)

// pathEvent is one timed step on one node.
type pathEvent struct {
	at   time.Duration // since the recorder started
	node uint64
	peer uint64
	kind int
	a, b uint64
}

// pathRecorder collects path events while on. Safe for concurrent use.
type pathRecorder struct {
	start time.Time
	mu    sync.Mutex
	on    bool
	evs   []pathEvent
}

// maxPathEvents bounds the recorder: about 20 events per batch, so a
// million covers 50,000 batches (a minute at 800 batches/s); later events
// are dropped and the batches they would finish are not counted.
const maxPathEvents = 1 << 20

func newPathRecorder() *pathRecorder { return &pathRecorder{start: time.Now()} }

func (r *pathRecorder) setOn(on bool) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.on = on
	r.mu.Unlock()
}

func (r *pathRecorder) add(node, peer uint64, kind int, a uint64) { r.add2(node, peer, kind, a, 0) }

func (r *pathRecorder) add2(node, peer uint64, kind int, a, b uint64) {
	if r == nil {
		return
	}
	at := time.Since(r.start)
	r.mu.Lock()
	if r.on && len(r.evs) < maxPathEvents {
		r.evs = append(r.evs, pathEvent{at: at, node: node, peer: peer, kind: kind, a: a, b: b})
	}
	r.mu.Unlock()
}

// file notes a Raft-log sync's start or completion (WAL files are not on
// the Raft path).
func (r *pathRecorder) file(node uint64, name string, done bool) {
	if r == nil || !strings.HasPrefix(name, "raft") {
		return
	}
	k := peSyncStart
	if done {
		k = peSyncDone
	}
	r.add(node, 0, k, 0)
}

// message notes a Raft message sent by node to peer (or received by node
// from peer) if it is an append with entries or an accepting append
// response.
func (r *pathRecorder) message(node, peer uint64, msg []byte, recv bool) {
	if r == nil {
		return
	}
	typ, index, last, reject, ok := peekMessage(msg)
	if !ok {
		return
	}
	switch {
	case typ == pb.MsgApp && last > 0:
		k := peAppSend
		if recv {
			k = peAppRecv
		}
		r.add(node, peer, k, last)
	case typ == pb.MsgAppResp && !reject:
		k := peRespSend
		if recv {
			k = peRespRecv
		}
		r.add(node, peer, k, index)
	}
}

// peekMessage reads a protobuf-encoded raftpb.Message's type, index,
// reject flag and the index of its last entry (0 without entries), without
// copying: fields 1 (type), 6 (index), 7 (entries; Entry field 3 is the
// index) and 10 (reject). ok is false on bytes that do not parse.
func peekMessage(b []byte) (typ pb.MessageType, index, last uint64, reject, ok bool) {
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, 0, 0, false, false
		}
		b = b[n:]
		switch {
		case wt == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return 0, 0, 0, false, false
			}
			switch num {
			case 1:
				typ = pb.MessageType(v)
			case 6:
				index = v
			case 10:
				reject = v != 0
			}
			b = b[m:]
		case wt == protowire.BytesType && num == 7:
			e, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return 0, 0, 0, false, false
			}
			if i, ok := peekEntryIndex(e); ok {
				last = max(last, i)
			}
			b = b[m:]
		default:
			m := protowire.ConsumeFieldValue(num, wt, b)
			if m < 0 {
				return 0, 0, 0, false, false
			}
			b = b[m:]
		}
	}
	return typ, index, last, reject, true
}

// peekEntryIndex reads a raftpb.Entry's index (field 3).
func peekEntryIndex(b []byte) (uint64, bool) {
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, false
		}
		b = b[n:]
		if num == 3 && wt == protowire.VarintType {
			v, m := protowire.ConsumeVarint(b)
			return v, m >= 0
		}
		m := protowire.ConsumeFieldValue(num, wt, b)
		if m < 0 {
			return 0, false
		}
		b = b[m:]
	}
	return 0, false
}

// analyze follows each of leader's proposals through the events (in time
// order) and returns the medians. Only a leader of a 3-node cluster is
// analyzed (a quorum of 2 of 3: the leader and one follower, or both
// followers); other sizes return Batches 0.
func (r *pathRecorder) analyze(leader uint64, nodes []uint64) CriticalPath {
	if r == nil || len(nodes) != 3 {
		return CriticalPath{}
	}
	r.mu.Lock()
	evs := slices.Clone(r.evs)
	r.mu.Unlock()
	slices.SortStableFunc(evs, func(a, b pathEvent) int { return int(a.at - b.at) })
	var followers []uint64
	for _, id := range nodes {
		if id != leader {
			followers = append(followers, id)
		}
	}

	// Per node, the times of its Raft-log syncs (start, done), in order.
	type sync struct{ start, done time.Duration }
	syncs := map[uint64][]sync{}
	open := map[uint64][]int{} // started, not yet done (a node's syncs complete in order)
	for _, e := range evs {
		switch e.kind {
		case peSyncStart:
			open[e.node] = append(open[e.node], len(syncs[e.node]))
			syncs[e.node] = append(syncs[e.node], sync{start: e.at, done: -1})
		case peSyncDone:
			if q := open[e.node]; len(q) > 0 {
				syncs[e.node][q[0]].done = e.at
				open[e.node] = q[1:]
			}
		}
	}
	// firstSync returns the first sync of node issued at or after t.
	firstSync := func(node uint64, t time.Duration) (sync, bool) {
		s := syncs[node]
		k, _ := slices.BinarySearchFunc(s, t, func(x sync, t time.Duration) int { return int(x.start - t) })
		if k == len(s) || s[k].done < 0 {
			return sync{}, false
		}
		return s[k], true
	}
	// first returns the time of the first event of kind on node (with
	// peer, if non-zero) at or after t whose index is at least i.
	first := func(kind int, node, peer uint64, t time.Duration, i uint64) (time.Duration, bool) {
		k, _ := slices.BinarySearchFunc(evs, t, func(x pathEvent, t time.Duration) int { return int(x.at - t) })
		for ; k < len(evs); k++ {
			e := evs[k]
			if e.kind == kind && e.node == node && (peer == 0 || e.peer == peer) && e.a >= i {
				return e.at, true
			}
		}
		return 0, false
	}

	// The leader's applies by the batch's base offset: its Raft index and
	// when it was applied.
	type apply struct {
		index uint64
		at    time.Duration
	}
	applied := map[uint64]apply{}
	for _, e := range evs {
		if e.kind == peApply && e.node == leader {
			if _, dup := applied[e.b]; !dup {
				applied[e.b] = apply{e.a, e.at}
			}
		}
	}
	var lss, ls, send, out, fq, fs, back, qa, whole []time.Duration
	leaderLast := 0
	for _, e := range evs {
		if e.kind != pePropose || e.node != leader {
			continue
		}
		a, ok := applied[e.a]
		if !ok {
			continue
		}
		i, p, ap := a.index, e.at, a.at
		own, ok := firstSync(leader, p)
		if !ok {
			continue
		}
		acks := []time.Duration{own.done}
		var fSend, fOut, fQueue, fSync, fBack []time.Duration
		complete := true
		for _, f := range followers {
			s, ok1 := first(peAppSend, leader, f, p, i)
			rv, ok2 := first(peAppRecv, f, leader, s, i)
			fsy, ok3 := firstSync(f, rv)
			ar, ok4 := first(peRespRecv, leader, f, rv, i)
			if !ok1 || !ok2 || !ok3 || !ok4 || fsy.done > ar {
				complete = false
				break
			}
			fSend, fOut = append(fSend, s-p), append(fOut, rv-s)
			fQueue, fSync = append(fQueue, fsy.start-rv), append(fSync, fsy.done-fsy.start)
			fBack = append(fBack, ar-fsy.done)
			acks = append(acks, ar)
		}
		if !complete {
			continue
		}
		sorted := slices.Clone(acks)
		slices.Sort(sorted)
		quorum := sorted[1] // the later of the two earliest of three
		if acks[0] == quorum {
			leaderLast++
		}
		lss, ls = append(lss, own.start-p), append(ls, own.done-own.start)
		send, out = append(send, fSend...), append(out, fOut...)
		fq, fs, back = append(fq, fQueue...), append(fs, fSync...), append(back, fBack...)
		qa, whole = append(qa, ap-quorum), append(whole, ap-p)
	}
	cp := CriticalPath{Batches: len(whole)}
	if cp.Batches == 0 {
		return cp
	}
	cp.LeaderSyncStart, cp.LeaderSync = medianMs(lss), medianMs(ls)
	cp.Send, cp.NetOut = medianMs(send), medianMs(out)
	cp.FollowerQueue, cp.FollowerSync, cp.AckBack = medianMs(fq), medianMs(fs), medianMs(back)
	cp.QuorumToApply, cp.ProposeToApply = medianMs(qa), medianMs(whole)
	cp.LeaderLastPct = 100 * float64(leaderLast) / float64(cp.Batches)
	return cp
}

// medianMs returns the median of ds in ms (ds is reordered).
func medianMs(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return float64(ds[len(ds)/2]) / float64(time.Millisecond)
}
