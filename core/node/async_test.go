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
			elected, released := false, false
			var early, late int
			c.w.Trace().SetListener(func(e sim.TraceEvent) {
				if e.Node == x && e.Kind == "raft.role" && e.A == int64(node.RoleLeader) {
					elected = true
				}
			})
			c.w.Net().SetTap(func(e sim.MsgEvent) {
				if e.Op != sim.MsgSend || e.From != x {
					return
				}
				m, err := node.PeekMessage(e.Msg)
				if err != nil || m.Term <= old || (m.Type != pb.MsgApp && m.Type != pb.MsgHeartbeat) {
					return
				}
				if released {
					late++
				} else {
					early++
				}
			})
			gates[x].hold = true
			if !c.nodes[l].TransferLeadership(x) {
				t.Fatalf("n%d declined to transfer leadership to n%d", l, x)
			}
			c.w.Sched().RunWhile(func() bool { return !elected }, c.w.Now()+time.Second)
			if !elected {
				t.Fatalf("n%d was not elected on its peers' votes while its Raft-log syncs were held", x)
			}
			c.run(100 * time.Millisecond)
			if got := early > 0; got != tc.early {
				t.Fatalf("n%d leads term %d with its term not durable: sent %d appends or heartbeats of the new term (want any: %v)",
					x, c.nodes[x].Status().Term, early, tc.early)
			}
			released = true
			gates[x].release(c.w, x)
			c.w.Sched().RunWhile(func() bool { return !c.nodes[x].Status().Gate }, c.w.Now()+2*time.Second)
			r := c.produce(x, node.AcksAll, "after")
			if !c.wait(r, 2*time.Second) || r.resp.Err != nil {
				t.Fatalf("acks=-1 on n%d once its term is durable: answered %v, err %v", x, r.done, r.resp.Err)
			}
			if late == 0 {
				t.Fatalf("n%d sent no append of its term after the sync", x)
			}
		})
	}
}
