package node_test

import (
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"walraft/core/node"
	"walraft/sim"
)

// TestStaleAppendAckDropped: a follower steps appends of two terms into
// one Ready (its previous Ready is held by a stalled sync). The first, of
// term T+1, appends entries up to index I+3 and queues their
// acknowledgement; the second, of term T+2, replaces them from I+1, so the
// Ready's sync makes only the term-(T+2) entry durable. The queued term-T+1
// acknowledgement of I+3 promises entries that were never durable (S9, and
// a deposed leader of T+1 could count it toward a commit): the node must
// drop it, and still send the term-(T+2) acknowledgement. The zombie
// scenario's seed 67 found it (a paused leader resumed into two newer
// terms' appends). It runs on the one-Ready loop (batch path) and on the
// pipelined path's asynchronous storage writes, where the acknowledgement
// waits for a sync as a MsgStorageAppend response and the node drops it
// in deliver (async.go).
func TestStaleAppendAckDropped(t *testing.T) {
	for _, path := range []node.Path{node.PathBatch, node.PathPipelined} {
		t.Run(path.String(), func(t *testing.T) {
			testStaleAppendAckDropped(t, path)
		})
	}
}

func testStaleAppendAckDropped(t *testing.T, path node.Path) {
	c := newCluster(t, 3, 3, func(cfg *node.Config) { cfg.Path = path })
	lead := c.leader()
	r := c.produce(lead, 1, "a", "b")
	if !c.wait(r, 2*time.Second) || r.resp.Err != nil {
		t.Fatalf("produce: %+v", r)
	}
	c.run(300 * time.Millisecond) // every node applies and idles
	var f, other uint64
	for _, id := range c.ids {
		if id != lead {
			if f == 0 {
				f = id
			} else {
				other = id
			}
		}
	}
	n := c.nodes[f]
	term, last := n.Status().Term, n.Status().Applied
	if _, ok := n.RaftLogTerm(last); !ok {
		t.Fatalf("n%d: no entry at its applied index %d", f, last)
	}
	if _, ok := n.RaftLogTerm(last + 1); ok {
		t.Fatalf("n%d: entries past its applied index %d; the cluster did not idle", f, last)
	}
	// The crafted appends speak for the old leader (term+1) and the other
	// follower (term+2); both are down, so only our messages reach f.
	for _, id := range []uint64{lead, other} {
		if err := c.w.Crash(id); err != nil {
			t.Fatal(err)
		}
	}
	type ack struct {
		to          uint64
		term, index uint64
	}
	var acks []ack
	c.w.Net().SetTap(func(e sim.MsgEvent) {
		if e.From != f || (e.Op != sim.MsgSend && e.Op != sim.MsgDrop) {
			return
		}
		var m pb.Message
		if err := proto.Unmarshal(e.Msg, &m); err != nil {
			t.Errorf("tap: %v", err)
			return
		}
		if m.GetType() == pb.MsgAppResp && !m.GetReject() {
			acks = append(acks, ack{m.GetTo(), m.GetTerm(), m.GetIndex()})
		}
	})
	app := func(from, t, prevTerm, prev uint64, terms ...uint64) {
		m := &pb.Message{Type: pb.MsgApp.Enum(), From: new(from), To: new(f), Term: new(t), LogTerm: new(prevTerm), Index: new(prev)}
		for i, et := range terms {
			m.Entries = append(m.Entries, &pb.Entry{Type: pb.EntryNormal.Enum(), Term: new(et), Index: new(prev + 1 + uint64(i))})
		}
		b, err := proto.Marshal(m)
		if err != nil {
			panic(err)
		}
		if err := c.w.Post(f, 0, func() { n.Receive(from, b) }); err != nil {
			panic(err)
		}
	}
	c.w.Disk(f).StallSyncsUntil(c.w.Now() + 50*time.Millisecond)
	app(lead, term+1, term, last, term+1) // held by the stalled sync
	c.run(time.Millisecond)
	app(lead, term+1, term+1, last+1, term+1, term+1) // acknowledges last+3
	app(other, term+2, term, last, term+2)            // replaces last+1 onward
	c.run(200 * time.Millisecond)

	if lt, ok := n.RaftLogTerm(last + 1); !ok || lt != term+2 {
		t.Fatalf("n%d: entry %d has term %d (ok %v), want %d", f, last+1, lt, ok, term+2)
	}
	if _, ok := n.RaftLogTerm(last + 2); ok {
		t.Fatalf("n%d: entry %d survived the term-%d append", f, last+2, term+2)
	}
	sawNew := false
	for _, a := range acks {
		if a.term == term+1 && a.index > last+1 {
			t.Errorf("n%d acknowledged index %d to n%d in term %d, but its log ends at %d with term %d: %+v", f, a.index, a.to, a.term, last+1, term+2, acks)
		}
		sawNew = sawNew || (a.to == other && a.term == term+2 && a.index == last+1)
	}
	if !sawNew {
		t.Errorf("n%d never acknowledged the term-%d append: %+v", f, term+2, acks)
	}
}
