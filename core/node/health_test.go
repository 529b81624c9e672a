package node_test

import (
	"errors"
	"fmt"
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

// TestHungStepDownStrandsNoWrite: a leader whose WAL fsync hangs steps
// aside by a leadership transfer that cannot finish (the target's Raft-log
// sync is held too, so the vote request it campaigns with never leaves),
// and its disk returns while the transfer runs. The writes it accepted
// before the hang then reach the proposal step (on the batch path after
// their fsync, on the pipelined path at write time) while the node still
// leads their term: each must be proposed, and commit. The variant that
// proposes only while the node takes new writes declines them instead (its
// hung mark clears only at the next tick, and raft drops every proposal
// during a transfer): acks=1 is answered at the fsync, nothing ever commits
// the batch, and the next entry applies as stale behind the gap, so the
// leader takes no write again (pipelined-fsync seed 124 found it: S5, L1).
func TestHungStepDownStrandsNoWrite(t *testing.T) {
	for _, tc := range []struct {
		name     string
		path     node.Path
		bugs     node.Bugs
		stranded bool
	}{
		{name: "batch", path: node.PathBatch},
		{name: "pipelined", path: node.PathPipelined},
		{name: "legacy", path: node.PathLegacy},
		{name: "batch/propose-only-while-accepting", path: node.PathBatch, bugs: node.Bugs{ProposeOnlyWhileAccepting: true}, stranded: true},
		{name: "pipelined/propose-only-while-accepting", path: node.PathPipelined, bugs: node.Bugs{ProposeOnlyWhileAccepting: true}, stranded: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gates := newGates(3, "(none yet)")
			c := newGatedCluster(t, 21, 3, tc.path, gates, tc.bugs)
			l := c.leader()
			// Both followers are caught up at the step-down, so the
			// transfer goes to the lower id (mostCaughtUp).
			x, y := c.others(l)[0], c.others(l)[1]
			transferTo, aborted := uint64(0), 0
			c.w.Trace().SetListener(func(e sim.TraceEvent) {
				switch {
				case e.Node == l && e.Kind == "leader.transfer":
					transferTo = uint64(e.A)
				case e.Node == l && e.Kind == "raft.transfer.abort":
					aborted++
				case e.Node == x && e.Kind == "raft.role" && e.A == int64(node.RoleCandidate) && transferTo != 0:
					// x's vote requests must not arrive: with asynchronous
					// storage writes (the pipelined path) a candidate sends
					// them before its own term is durable, and a request of
					// a higher term would depose l.
					for _, to := range []uint64{l, y} {
						if err := c.w.Net().Cut(x, to); err != nil {
							t.Fatal(err)
						}
					}
				}
			})
			gates[l].prefix, gates[l].hold = "wal/", true
			a := c.produce(l, node.AcksLeader, "a")
			c.run(5 * time.Millisecond)
			acked, want := []*reply{a}, []string{"a"}
			// b waits behind a's fsync: on the pipelined path it is
			// written, and proposed, only when the disk returns.
			b := c.produce(l, node.AcksLeader, "b")
			acked, want = append(acked, b), append(want, "b", "d")
			c.run(500 * time.Millisecond)
			gates[x].prefix, gates[x].hold = "raft", true
			c.run(700 * time.Millisecond) // past DiskStallTimeout (1 s)
			if transferTo != x || anyDone(acked) {
				t.Fatalf("setup: n%d with a hung WAL transferred to n%d (want n%d); a write answered before the disk returned (a %+v, b %+v)",
					l, transferTo, x, a, b)
			}
			gates[l].release(c.w, l)
			for _, r := range acked {
				if !c.wait(r, time.Second) || r.resp.Err != nil {
					t.Fatalf("acks=1 when the disk returned: answered %v, err %v", r.done, r.resp.Err)
				}
			}
			c.run(300 * time.Millisecond) // a transfer raft abandons ends here
			if st := c.nodes[l].Status(); st.Role != node.RoleLeader {
				t.Fatalf("setup: n%d no longer leads (%v): the transfer went through", l, st.Role)
			}
			d := c.produce(l, node.AcksAll, "d")
			c.wait(d, 2*time.Second)
			if tc.stranded {
				if d.resp.Err == nil && fmt.Sprint(c.log(l)) == fmt.Sprint(want) {
					t.Fatalf("the variant should strand a batch of its own term: d answered %v, err %v, log %q", d.done, d.resp.Err, c.log(l))
				}
				return
			}
			if d.resp.Err != nil || aborted == 0 {
				t.Fatalf("acks=-1 d on the same leader: answered %v, err %v (transfers aborted: %d)", d.done, d.resp.Err, aborted)
			}
			c.run(100 * time.Millisecond) // the follower learns the commit index
			for _, id := range []uint64{l, y} {
				if got := c.log(id); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("n%d log %q, want %q", id, got, want)
				}
			}
			// Let the target's campaign out; every log converges.
			c.w.Net().Heal()
			gates[x].release(c.w, x)
			c.run(3 * time.Second)
			for _, id := range c.ids {
				if got := c.log(id); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("n%d log %q after the target's campaign, want %q", id, got, want)
				}
			}
		})
	}
}

func anyDone(rs []*reply) bool {
	for _, r := range rs {
		if r.done {
			return true
		}
	}
	return false
}
