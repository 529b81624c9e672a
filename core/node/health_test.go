package node_test

import (
	"errors"
	"testing"
	"time"

	"walraft/core/env"
	"walraft/core/node"
	"walraft/sim"
)

// newBugCluster is newCluster with known-bad variants switched on (bugs zero
// is the correct system).
func newBugCluster(t *testing.T, seed uint64, n int, mod func(*node.Config), bugs node.Bugs) *tcluster {
	t.Helper()
	w, err := sim.NewWorld(seed, sim.WorldConfig{Net: sim.LinkConfig{Latency: time.Millisecond, Jitter: time.Millisecond}, ClockSkewPPM: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	c := &tcluster{t: t, w: w, nodes: map[uint64]*node.Node{}}
	for i := 1; i <= n; i++ {
		c.ids = append(c.ids, uint64(i))
	}
	c.cfg = func(id uint64) node.Config {
		cfg := node.Config{ID: id, Peers: c.ids, Topics: []node.TopicConfig{{Name: "t", Partitions: 1}}, AcksTimeout: 5 * time.Second}
		if mod != nil {
			mod(&cfg)
		}
		return cfg
	}
	for _, id := range c.ids {
		boot := func(id env.NodeID, e env.Env) (sim.Receiver, error) {
			nd, err := node.NewWithBugs(c.cfg(id), e, bugs)
			if err != nil {
				return nil, err
			}
			c.nodes[id] = nd
			return nd, nil
		}
		if err := w.AddNode(id, boot, sim.DefaultDiskConfig()); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return c
}

// others returns every node but id.
func (c *tcluster) others(id uint64) []uint64 {
	var out []uint64
	for _, x := range c.ids {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}

// TestHungDiskLeaderStepsAside: a leader whose WAL fsync hangs (its Raft
// loop is free, so heartbeats flow and CheckQuorum is satisfied: the
// hashicorp/raft #503 and etcd #13527 shape) hands leadership to a healthy
// follower within DiskStallTimeout plus an election, answers the request it
// holds at once as indeterminate, does not campaign while its disk hangs,
// and the new leader takes acks=-1 writes. The variant without the step-down
// keeps leading through the whole stall, which is what the test catches.
func TestHungDiskLeaderStepsAside(t *testing.T) {
	const bound = 300 * time.Millisecond
	const stall = 4 * time.Second
	for _, tc := range []struct {
		name     string
		bugs     node.Bugs
		stepDown bool
	}{
		{name: "correct", stepDown: true},
		{name: "no-step-down", bugs: node.Bugs{NoStepDownOnHungDisk: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newBugCluster(t, 7, 3, func(cfg *node.Config) { cfg.DiskStallTimeout = bound }, tc.bugs)
			l := c.leader()
			if r := c.produce(l, node.AcksAll, "before"); !c.wait(r, time.Second) || r.resp.Err != nil {
				t.Fatalf("acks=all before the stall: %+v", r)
			}
			c.run(50 * time.Millisecond) // no Raft-log sync in flight
			start := c.w.Now()
			c.w.Disk(l).StallSyncsUntil(start + stall)
			held := c.produce(l, node.AcksAll, "held")
			// Election timeout 100 ms, so 2x the bound is ample.
			c.run(2 * bound)
			newLeader := uint64(0)
			for _, id := range c.others(l) {
				if c.nodes[id].Status().Gate {
					newLeader = id
				}
			}
			if !tc.stepDown {
				if newLeader != 0 || c.nodes[l].Status().Role != node.RoleLeader {
					t.Fatalf("without the step-down n%d should still lead; n%d took over", l, newLeader)
				}
				if held.done {
					t.Fatalf("without the step-down the held request should wait for the disk: %+v", held)
				}
				return
			}
			if newLeader == 0 {
				t.Fatalf("%v after a hung fsync on leader n%d no other node leads (n%d role %v)",
					c.w.Now()-start, l, l, c.nodes[l].Status().Role)
			}
			if !held.done || !held.resp.Indeterminate || !errors.Is(held.resp.Err, node.ErrLeadershipLost) {
				t.Fatalf("the deposed leader must answer the request it holds at once, indeterminate: %+v", held)
			}
			if r := c.produce(newLeader, node.AcksAll, "after"); !c.wait(r, time.Second) || r.resp.Err != nil {
				t.Fatalf("acks=all on the new leader n%d: %+v", newLeader, r)
			}
			// While its disk hangs the old leader never campaigns: its term
			// does not pass the new leader's.
			c.run(stall / 2)
			if st, nst := c.nodes[l].Status(), c.nodes[newLeader].Status(); st.Role != node.RoleFollower || st.Term > nst.Term || !nst.Gate {
				t.Fatalf("during the stall n%d is %v in term %d, new leader n%d in term %d gate %v",
					l, st.Role, st.Term, newLeader, nst.Term, nst.Gate)
			}
			// A node that knows the new leader names it.
			if r := c.produce(l, node.AcksAll, "hint"); !c.wait(r, time.Second) || !errors.Is(r.resp.Err, node.ErrNotLeader) || r.resp.LeaderHint != newLeader {
				t.Fatalf("NotLeader from n%d should name n%d: %+v", l, newLeader, r)
			}
		})
	}
}

// TestDeposedLeaderAnswersHeldWaiters: a leader that can send but not
// receive (an asymmetric partition) holds an acks=-1 request whose entry
// reached the followers; CheckQuorum deposes it within an election timeout
// or two, and it must then answer the request at once, indeterminate (the
// new leader may commit the entry), not at the 5 s acks timeout. The
// variant that holds waiters answers only at the timeout.
func TestDeposedLeaderAnswersHeldWaiters(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bugs    node.Bugs
		answers bool
	}{
		{name: "correct", answers: true},
		{name: "hold-waiters", bugs: node.Bugs{HoldWaitersOnLeaderLoss: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newBugCluster(t, 11, 3, nil, tc.bugs)
			l := c.leader()
			for _, f := range c.others(l) {
				if err := c.w.Net().Cut(f, l); err != nil {
					t.Fatal(err)
				}
			}
			r := c.produce(l, node.AcksAll, "held")
			c.run(time.Second)
			if st := c.nodes[l].Status(); st.Role == node.RoleLeader {
				t.Fatalf("n%d still leads 1s after it stopped hearing its followers", l)
			}
			if !tc.answers {
				if r.done {
					t.Fatalf("the hold-waiters variant answered at once: %+v", r)
				}
				return
			}
			if !r.done || !r.resp.Indeterminate || !errors.Is(r.resp.Err, node.ErrLeadershipLost) {
				t.Fatalf("a deposed leader must answer its held acks=-1 request at once, indeterminate: %+v", r)
			}
		})
	}
}

// TestDiskStallTimeoutValidated: the bound must allow a tick to check it
// and must end before the acks timeout.
func TestDiskStallTimeoutValidated(t *testing.T) {
	base := node.Config{ID: 1, Peers: []uint64{1, 2, 3}, Topics: []node.TopicConfig{{Name: "t", Partitions: 1}}, AcksTimeout: 5 * time.Second}
	for _, tc := range []struct {
		d  time.Duration
		ok bool
	}{
		{0, true}, // default 1s
		{20 * time.Millisecond, true},
		{10 * time.Millisecond, false}, // one tick
		{5 * time.Second, false},       // not below the acks timeout
	} {
		cfg := base
		cfg.DiskStallTimeout = tc.d
		if err := cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("DiskStallTimeout %v: Validate() = %v, want ok %v", tc.d, err, tc.ok)
		}
	}
	if d := base.Defaults().DiskStallTimeout; d != time.Second {
		t.Errorf("default DiskStallTimeout %v, want 1s", d)
	}
}
