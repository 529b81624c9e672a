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
// when it was issued. A follower whose Raft-log sync is in flight (its
// commit index moved) becomes leader on its peers' votes; when that older
// sync completes, its new term is still not durable, so its appends and
// heartbeats must stay held until a later sync. Reading the durable term
// when the sync completes instead of when it was issued lets them leave.
func TestOlderSyncDoesNotMakeNewTermDurable(t *testing.T) {
	gates := newGates(3, "raft")
	c := newGatedCluster(t, 31, 3, node.PathPipelined, gates, node.Bugs{})
	l := c.leader()
	x := c.others(l)[0]
	old := c.nodes[l].Status().Term
	r := c.produce(l, node.AcksAll, "before")
	if !c.wait(r, 2*time.Second) || r.resp.Err != nil {
		t.Fatalf("acks=-1 on n%d: answered %v, err %v", l, r.done, r.resp.Err)
	}
	// The commit of that entry reaches x with the next heartbeat or
	// append: the HardState it writes is synced by a sync held here.
	gates[x].hold = true
	c.w.Sched().RunWhile(func() bool { return len(gates[x].held) == 0 }, c.w.Now()+time.Second)
	if len(gates[x].held) == 0 {
		t.Fatalf("n%d issued no Raft-log sync after the commit index moved", x)
	}
	lw := watchNewLeader(c, x, old)
	if !c.nodes[l].TransferLeadership(x) {
		t.Fatalf("n%d declined to transfer leadership to n%d", l, x)
	}
	c.w.Sched().RunWhile(func() bool { return !lw.elected }, c.w.Now()+time.Second)
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
