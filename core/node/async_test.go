package node_test

import (
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"

	"walraft/core/node"
	"walraft/sim"
)

// TestNewLeaderSpeaksInDurableTermOnly: with asynchronous storage writes
// (the pipelined path) etcd raft makes a candidate leader as soon as its
// peers' votes form a quorum, before its own term and vote are synced, and
// hands out its appends at once. A leader that sent them and then crashed
// would come back in an older term and could lead the same term again with
// other entries at the same indexes, so the node holds them until its term
// is durable. The test holds the new leader's Raft-log syncs: no append or
// heartbeat of the new term may leave until they are released; the
// LeaderBeforeTermSync variant sends them at once.
func TestNewLeaderSpeaksInDurableTermOnly(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bugs  node.Bugs
		early bool
	}{
		{name: "correct"},
		{name: "leader-before-term-sync", bugs: node.Bugs{LeaderBeforeTermSync: true}, early: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gates := newGates(3, "raft")
			c := newGatedCluster(t, 31, 3, node.PathPipelined, gates, tc.bugs)
			l := c.leader()
			x := c.others(l)[0]
			old := c.nodes[l].Status().Term
			lw := watchNewLeader(c, x, old)
			gates[x].hold = true
			if !c.nodes[l].TransferLeadership(x) {
				t.Fatalf("n%d declined to transfer leadership to n%d", l, x)
			}
			c.w.Sched().RunWhile(func() bool { return !lw.elected }, c.w.Now()+time.Second)
			if !lw.elected {
				t.Fatalf("n%d was not elected on its peers' votes while its Raft-log syncs were held", x)
			}
			c.run(100 * time.Millisecond)
			early := lw.sent
			if got := early > 0; got != tc.early {
				t.Fatalf("n%d leads term %d with its term not durable: sent %d appends or heartbeats of the new term (want any: %v)",
					x, c.nodes[x].Status().Term, early, tc.early)
			}
			gates[x].release(c.w, x)
			c.w.Sched().RunWhile(func() bool { return !c.nodes[x].Status().Gate }, c.w.Now()+2*time.Second)
			r := c.produce(x, node.AcksAll, "after")
			if !c.wait(r, 2*time.Second) || r.resp.Err != nil {
				t.Fatalf("acks=-1 on n%d once its term is durable: answered %v, err %v", x, r.done, r.resp.Err)
			}
			if lw.sent == early {
				t.Fatalf("n%d sent no append of its term after the sync", x)
			}
		})
	}
}

// TestOlderSyncDoesNotMakeNewTermDurable: a sync covers what was written
// when it was issued. A follower whose Raft-log sync is in flight (it
// appended an entry) becomes leader on its peers' votes; when that older
// sync completes, its new term is still not durable, so its appends and
// heartbeats must stay held until a later sync. Reading the durable term
// when the sync completes instead of when it was issued lets them leave.
//
// A follower syncs only for entries, a term or a vote (a commit-only
// append rides on the sync in flight), and while its sync of an entry runs
// its leader does not count it as caught up, so it cannot be the target of
// a leadership transfer. So the test uses five nodes: the leader is
// isolated and the other three followers hear only x, so that only x can
// gather a quorum of votes without its own.
func TestOlderSyncDoesNotMakeNewTermDurable(t *testing.T) {
	gates := newGates(5, "raft")
	c := newGatedCluster(t, 31, 5, node.PathPipelined, gates, node.Bugs{})
	l := c.leader()
	others := c.others(l)
	x, rest := others[0], others[1:]
	old := c.nodes[l].Status().Term
	r := c.produce(l, node.AcksAll, "before")
	if !c.wait(r, 2*time.Second) || r.resp.Err != nil {
		t.Fatalf("acks=-1 on n%d: answered %v, err %v", l, r.done, r.resp.Err)
	}
	c.run(100 * time.Millisecond)
	// The next entry reaches x, which syncs it by a sync held here (the
	// entry commits through the other followers).
	gates[x].hold = true
	r = c.produce(l, node.AcksAll, "held")
	if !c.wait(r, 2*time.Second) || r.resp.Err != nil {
		t.Fatalf("acks=-1 on n%d with n%d's sync held: answered %v, err %v", l, x, r.done, r.resp.Err)
	}
	if len(gates[x].held) == 0 {
		t.Fatalf("n%d issued no Raft-log sync after it appended an entry", x)
	}
	lw := watchNewLeader(c, x, old)
	if err := c.w.Net().Isolate(l); err != nil {
		t.Fatal(err)
	}
	for _, a := range rest {
		for _, b := range rest {
			if a != b {
				if err := c.w.Net().Cut(a, b); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	c.w.Sched().RunWhile(func() bool { return !lw.elected }, c.w.Now()+5*time.Second)
	if !lw.elected {
		t.Fatalf("n%d was not elected while its Raft-log sync was held", x)
	}
	gates[x].releaseFirst(c.w, x) // the sync issued before the term
	c.run(100 * time.Millisecond)
	if lw.sent > 0 {
		t.Fatalf("n%d sent %d appends or heartbeats of term %d after a sync issued before that term completed",
			x, lw.sent, c.nodes[x].Status().Term)
	}
	gates[x].release(c.w, x)
	c.w.Sched().RunWhile(func() bool { return lw.sent == 0 }, c.w.Now()+time.Second)
	if lw.sent == 0 {
		t.Fatalf("n%d sent nothing of its term once its syncs were released", x)
	}
}

// TestCommitOnlyAppendRidesOnSync: a leader tells its followers that an
// entry committed in an append that carries no entries. Acknowledging it
// promises nothing the follower has not promised already, so it costs no
// Raft-log sync of its own; but the acknowledgement names the follower's
// last index, so it must not leave before the sync of the entries up to
// there. The test holds a follower's sync of an entry while the entry
// commits through the third node: no new sync may be queued for the
// commit-only append, and no acknowledgement of the entry's index may
// leave, until the held sync completes.
func TestCommitOnlyAppendRidesOnSync(t *testing.T) {
	gates := newGates(3, "raft")
	c := newGatedCluster(t, 31, 3, node.PathPipelined, gates, node.Bugs{})
	l := c.leader()
	x := c.others(l)[0]
	r := c.produce(l, node.AcksAll, "before")
	if !c.wait(r, 2*time.Second) || r.resp.Err != nil {
		t.Fatalf("acks=-1 on n%d: answered %v, err %v", l, r.done, r.resp.Err)
	}
	c.run(100 * time.Millisecond) // every node holds and has applied it
	idx := c.nodes[l].Status().Applied + 1
	acked := 0 // x's acknowledgements of index idx or later
	c.w.Net().SetTap(func(e sim.MsgEvent) {
		if e.Op != sim.MsgSend || e.From != x {
			return
		}
		if m, err := node.PeekMessage(e.Msg); err == nil && m.Type == pb.MsgAppResp && !m.Reject && m.Index >= idx {
			acked++
		}
	})
	gates[x].hold = true
	r = c.produce(l, node.AcksAll, "held")
	if !c.wait(r, 2*time.Second) || r.resp.Err != nil {
		t.Fatalf("acks=-1 on n%d with n%d's sync held: answered %v, err %v", l, x, r.done, r.resp.Err)
	}
	c.run(100 * time.Millisecond) // the commit reaches x
	if got := c.nodes[l].Status().Applied; got != idx {
		t.Fatalf("n%d applied up to %d, want the held entry's index %d", l, got, idx)
	}
	if len(gates[x].held) != 1 {
		t.Fatalf("n%d queued %d Raft-log syncs for one entry and its commit, want 1", x, len(gates[x].held))
	}
	if acked > 0 {
		t.Fatalf("n%d acknowledged index %d %d times before its sync of that entry completed", x, idx, acked)
	}
	gates[x].release(c.w, x)
	c.run(100 * time.Millisecond)
	if acked < 2 {
		t.Fatalf("n%d acknowledged index %d %d times once its sync completed, want 2 (the entry and its commit)", x, idx, acked)
	}
}

// leaderWatch follows node x as it takes over from a leader of term old:
// whether it became leader, and how many appends and heartbeats of a
// newer term it sent.
type leaderWatch struct {
	elected bool
	sent    int
}

func watchNewLeader(c *tcluster, x, old uint64) *leaderWatch {
	lw := &leaderWatch{}
	c.w.Trace().SetListener(func(e sim.TraceEvent) {
		if e.Node == x && e.Kind == "raft.role" && e.A == int64(node.RoleLeader) {
			lw.elected = true
		}
	})
	c.w.Net().SetTap(func(e sim.MsgEvent) {
		if e.Op != sim.MsgSend || e.From != x {
			return
		}
		if m, err := node.PeekMessage(e.Msg); err == nil && m.Term > old && (m.Type == pb.MsgApp || m.Type == pb.MsgHeartbeat) {
			lw.sent++
		}
	})
	return lw
}
