package node_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"walraft/core/env"
	"walraft/core/node"
	"walraft/sim"
)

// The pipelined path's interleavings (pipeline.go's doc comment): each test
// forces one order of the leader's WAL fsync (W), its Raft log sync (R),
// commit (C) and a crash (X) by holding or failing the fsyncs of one kind
// of file on one node, then checks the answers and what survives.

// syncGate holds or fails the fsyncs of one node's files whose names start
// with prefix ("wal/" for the WALs, "raft" for the Raft log). The prefix is
// read at each sync, so a test may aim the gate once it knows the roles.
type syncGate struct {
	prefix string
	hold   bool
	fail   int      // fail the next fail syncs with env.ErrIO, without syncing
	held   []func() // held syncs, issued in order on release
	clock  env.Clock
}

// release issues every held sync (on the node's event loop) and stops
// holding.
func (g *syncGate) release(w *sim.World, id uint64) {
	g.hold = false
	held := g.held
	g.held = nil
	if err := w.Post(id, 0, func() {
		for _, f := range held {
			f()
		}
	}); err != nil {
		panic(err)
	}
}

// releaseFirst issues the oldest held sync (on the node's event loop) and
// keeps holding the others and those to come.
func (g *syncGate) releaseFirst(w *sim.World, id uint64) {
	if len(g.held) == 0 {
		return
	}
	f := g.held[0]
	g.held = g.held[1:]
	if err := w.Post(id, 0, f); err != nil {
		panic(err)
	}
}

type gateFS struct {
	env.FS
	g *syncGate
}

func (f gateFS) wrap(fl env.File, err error) (env.File, error) {
	if err != nil {
		return fl, err
	}
	return gateFile{File: fl, g: f.g}, nil
}

func (f gateFS) Create(name string) (env.File, error) { return f.wrap(f.FS.Create(name)) }
func (f gateFS) Open(name string) (env.File, error)   { return f.wrap(f.FS.Open(name)) }

type gateFile struct {
	env.File
	g *syncGate
}

func (f gateFile) Sync(done func(error)) {
	switch {
	case !strings.HasPrefix(f.Name(), f.g.prefix):
		f.File.Sync(done)
	case f.g.fail > 0:
		f.g.fail--
		f.g.clock.AfterFunc(0, func() { done(fmt.Errorf("gate: %w", env.ErrIO)) })
	case f.g.hold:
		f.g.held = append(f.g.held, func() { f.File.Sync(done) })
	default:
		f.File.Sync(done)
	}
}

// newGates returns a passive syncGate with prefix for nodes 1..n.
func newGates(n int, prefix string) map[uint64]*syncGate {
	gates := map[uint64]*syncGate{}
	for id := uint64(1); id <= uint64(n); id++ {
		gates[id] = &syncGate{prefix: prefix}
	}
	return gates
}

// newGatedCluster is newCluster on the given path with a syncGate per
// node (nil: none) and the given bugs on every node.
func newGatedCluster(t *testing.T, seed uint64, n int, path node.Path, gates map[uint64]*syncGate, bugs node.Bugs) *tcluster {
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
		return node.Config{ID: id, Peers: c.ids, Topics: []node.TopicConfig{{Name: "t", Partitions: 1}},
			AcksTimeout: 5 * time.Second, Path: path}
	}
	for _, id := range c.ids {
		boot := func(id env.NodeID, e env.Env) (sim.Receiver, error) {
			if g := gates[id]; g != nil {
				// A crash dropped the held syncs; the new incarnation
				// starts ungated.
				g.held, g.hold, g.fail, g.clock = nil, false, 0, e.Clock
				e.FS = gateFS{FS: e.FS, g: g}
			}
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

// gatedLeader starts a 3-node pipelined cluster with a gate on every
// node's files with prefix (passive until held or failed), waits for its
// leader and returns the leader's gate.
func gatedLeader(t *testing.T, seed uint64, prefix string, bugs node.Bugs) (*tcluster, uint64, *syncGate) {
	return gatedLeaderOn(t, seed, node.PathPipelined, prefix, bugs)
}

// gatedLeaderOn is gatedLeader on the given path.
func gatedLeaderOn(t *testing.T, seed uint64, path node.Path, prefix string, bugs node.Bugs) (*tcluster, uint64, *syncGate) {
	t.Helper()
	gates := newGates(3, prefix)
	c := newGatedCluster(t, seed, 3, path, gates, bugs)
	l := c.leader()
	return c, l, gates[l]
}

// TestPipelinedAcksWhileWALFsyncHeld: with the leader's WAL fsync held,
// acks=-1 succeeds on the pipelined path (commit and apply, R and C
// before W) and acks=1 waits for the fsync; on the batch path nothing is
// proposed before W, so acks=-1 waits too.
func TestPipelinedAcksWhileWALFsyncHeld(t *testing.T) {
	tests := []struct {
		path           node.Path
		wantAllBeforeW bool
	}{
		{node.PathPipelined, true},
		{node.PathBatch, false},
	}
	for _, tt := range tests {
		t.Run(tt.path.String(), func(t *testing.T) {
			c, l, g := gatedLeaderOn(t, 11, tt.path, "wal/", node.Bugs{})
			g.hold = true
			all := c.produce(l, node.AcksAll, "all")
			one := c.produce(l, node.AcksLeader, "one")
			// Shorter than DiskStallTimeout: held longer, the leader's disk
			// counts as hung and it steps aside (health.go).
			c.wait(all, 500*time.Millisecond)
			if all.done != tt.wantAllBeforeW || (all.done && (all.resp.Err != nil || all.resp.Index == 0)) {
				t.Fatalf("acks=all with the leader's WAL fsync held: %+v, want success before the fsync: %v", all, tt.wantAllBeforeW)
			}
			if one.done {
				t.Fatalf("acks=1 answered before its WAL fsync: %+v", one)
			}
			if ps, _ := c.up(l).PartitionStatus("t", 0); tt.wantAllBeforeW && (ps.HWM != 2 || ps.DurableEnd != 0) {
				t.Fatalf("leader HWM %d durable WAL end %d, want HWM 2 over a WAL with nothing durable", ps.HWM, ps.DurableEnd)
			}
			g.release(c.w, l)
			if !c.wait(one, time.Second) || one.resp.Err != nil {
				t.Fatalf("acks=1 after the fsync: %+v", one)
			}
			if !c.wait(all, 2*time.Second) || all.resp.Err != nil {
				t.Fatalf("acks=all after the fsync: %+v", all)
			}
			if got := c.log(l); fmt.Sprint(got) != "[all one]" {
				t.Fatalf("leader log %q", got)
			}
		})
	}
}

// TestPipelinedCrashBeforeWALFsync: R and C happen, the leader answers
// acks=-1 and crashes before W. Its WAL lost the batch; its Raft log holds
// it, so recovery rewrites the WAL suffix. With the TrustOwnBatches bug
// (a node's own batches are taken to be in its WAL) the record is missing
// after the restart: the test would catch it.
func TestPipelinedCrashBeforeWALFsync(t *testing.T) {
	tests := []struct {
		name        string
		bugs        node.Bugs
		wantRebuilt bool
	}{
		{"correct", node.Bugs{}, true},
		{"trust-own-batches bug", node.Bugs{TrustOwnBatches: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, l, g := gatedLeader(t, 12, "wal/", tt.bugs)
			g.hold = true
			// Three requests in one batch: the WAL has one fsync in
			// flight, so a second batch would wait for the held one.
			var rs []*reply
			for i := 0; i < 3; i++ {
				rs = append(rs, c.produce(l, node.AcksAll, fmt.Sprint("keep", i)))
			}
			for i, r := range rs {
				if !c.wait(r, 2*time.Second) || r.resp.Err != nil {
					t.Fatalf("acks=all %d: %+v", i, r)
				}
			}
			if err := c.w.Crash(l); err != nil {
				t.Fatal(err)
			}
			if err := c.w.Restart(l); err != nil {
				t.Fatal(err)
			}
			// The WAL kept nothing of the held batches: what the node
			// serves after recovery comes from its Raft log.
			if ps, _ := c.up(l).PartitionStatus("t", 0); ps.DurableEnd != 0 {
				t.Fatalf("restarted leader's WAL kept offsets up to %d: the crash did not lose the suffix", ps.DurableEnd)
			}
			c.caughtUp(l)
			c.run(500 * time.Millisecond)
			n := c.up(l)
			for i, r := range rs {
				want := fmt.Sprint("keep", i)
				resp := n.Fetch(node.FetchRequest{Topic: "t", Offset: r.resp.BaseOffset, MaxBytes: 1})
				ok := resp.Err == nil && len(resp.Records) > 0 && string(resp.Records[0].Value) == want
				if ok != tt.wantRebuilt {
					t.Fatalf("n%d at offset %d after recovery: %+v; want %q there: %v", l, r.resp.BaseOffset, resp, want, tt.wantRebuilt)
				}
			}
		})
	}
}

// TestPipelinedCrashAllBeforeWALFsync: the whole cluster crashes while the
// leader's WAL fsync is held: every acknowledged acks=-1 record is back on
// every node after the restart (they were in a majority's Raft logs).
func TestPipelinedCrashAllBeforeWALFsync(t *testing.T) {
	c, l, g := gatedLeader(t, 13, "wal/", node.Bugs{})
	g.hold = true
	var want []string
	var rs []*reply
	for i := 0; i < 4; i++ {
		v := fmt.Sprint("r", i)
		rs = append(rs, c.produce(l, node.AcksAll, v)) // one batch (see above)
		want = append(want, v)
	}
	for _, r := range rs {
		if !c.wait(r, 2*time.Second) || r.resp.Err != nil {
			t.Fatalf("%+v", r)
		}
	}
	for _, id := range c.ids {
		c.w.Crash(id)
	}
	for _, id := range c.ids {
		if err := c.w.Restart(id); err != nil {
			t.Fatal(err)
		}
	}
	c.leader()
	c.run(time.Second)
	for _, id := range c.ids {
		if got := c.log(id); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("n%d log %q after a crash of all nodes, want %q", id, got, want)
		}
	}
}

// TestPipelinedFsyncErrorAfterProposal: W fails after the batch was
// proposed. Every answer of the batch is indeterminate, the node stops, and
// the entry still commits through the followers: a definite failure would
// have been a lie. With the PipelinedDefiniteFsyncError bug the answer is
// definite: the test would catch it.
func TestPipelinedFsyncErrorAfterProposal(t *testing.T) {
	tests := []struct {
		name      string
		bugs      node.Bugs
		wantIndet bool
	}{
		{"correct", node.Bugs{}, true},
		{"definite-fsync-error bug", node.Bugs{PipelinedDefiniteFsyncError: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, l, g := gatedLeader(t, 14, "wal/", tt.bugs)
			g.fail = 1
			one := c.produce(l, node.AcksLeader, "x")
			all := c.produce(l, node.AcksAll, "y")
			c.wait(one, time.Second)
			c.wait(all, time.Second)
			for _, r := range []*reply{one, all} {
				if !r.done || r.resp.Err == nil {
					t.Fatalf("answer after a failed WAL fsync: %+v, want an error", r)
				}
				if r.resp.Indeterminate != tt.wantIndet {
					t.Fatalf("answer %+v: indeterminate %v, want %v", r.resp, r.resp.Indeterminate, tt.wantIndet)
				}
			}
			c.run(50 * time.Millisecond)
			if c.up(l).Failed() == nil {
				t.Fatalf("n%d still running after its WAL fsync failed (fail-stop)", l)
			}
			// The supervisor restarts it; the entry was replicated before
			// the fsync failed, so it commits.
			c.w.Crash(l)
			if err := c.w.Restart(l); err != nil {
				t.Fatal(err)
			}
			nl := c.leader()
			c.wait(c.produce(nl, node.AcksAll, "after"), 2*time.Second)
			c.run(500 * time.Millisecond)
			for _, id := range c.ids {
				if got := c.log(id); fmt.Sprint(got) != "[x y after]" {
					t.Fatalf("n%d log %q, want the batch whose fsync failed committed, then \"after\"", id, got)
				}
			}
		})
	}
}

// TestPipelinedWALFsyncBeforeRaftSync: W completes (acks=1 answered) while
// the leader's Raft log sync is held, then the leader crashes (X before
// R). Its WAL holds the batch, its Raft log does not; the followers got the
// entry (appends leave before the leader's own sync), so the next leader
// commits it and the restarted node applies it over identical WAL bytes:
// every log agrees, the record once at its offset.
func TestPipelinedWALFsyncBeforeRaftSync(t *testing.T) {
	c, l, g := gatedLeader(t, 15, "raft", node.Bugs{})
	g.hold = true
	one := c.produce(l, node.AcksLeader, "w")
	if !c.wait(one, time.Second) || one.resp.Err != nil {
		t.Fatalf("acks=1 with the Raft log sync held: %+v (W alone decides acks=1)", one)
	}
	c.w.Crash(l)
	if err := c.w.Restart(l); err != nil {
		t.Fatal(err)
	}
	// The WAL claims what it recovered once its recovery sync is done.
	c.run(10 * time.Millisecond)
	if ps, _ := c.up(l).PartitionStatus("t", 0); ps.DurableEnd != one.resp.BaseOffset+1 {
		t.Fatalf("restarted node's WAL ends at %d, want the acks=1 record durable (end %d)", ps.DurableEnd, one.resp.BaseOffset+1)
	}
	nl := c.leader()
	c.wait(c.produce(nl, node.AcksAll, "next"), 2*time.Second)
	c.run(500 * time.Millisecond)
	for _, id := range c.ids {
		if got := c.log(id); fmt.Sprint(got) != "[w next]" {
			t.Fatalf("n%d log %q, want [w next]", id, got)
		}
	}
}

// TestPipelinedDeposedBeforeWALFsync: the leader is cut off after it
// proposed a batch and before W. acks=1 is still answered at W (the term
// that accepted it is what counts), acks=-1 ends when its own entry is
// replaced; the new leader reuses the offsets and every log agrees.
func TestPipelinedDeposedBeforeWALFsync(t *testing.T) {
	c, l, g := gatedLeader(t, 16, "wal/", node.Bugs{})
	g.hold = true
	c.w.Net().Isolate(l)
	one := c.produce(l, node.AcksLeader, "orphan")
	all := c.produce(l, node.AcksAll, "orphan-all")
	c.run(50 * time.Millisecond)
	if one.done || all.done {
		t.Fatalf("answered before W and without a quorum: %+v %+v", one, all)
	}
	g.release(c.w, l)
	if !c.wait(one, time.Second) || one.resp.Err != nil {
		t.Fatalf("acks=1 at W on the isolated leader: %+v", one)
	}
	var l2 uint64
	c.w.Sched().RunWhile(func() bool {
		for _, id := range c.ids {
			if n := c.up(id); id != l && n.Status().Gate {
				l2 = id
			}
		}
		return l2 == 0
	}, c.w.Now()+10*time.Second)
	if l2 == 0 {
		t.Fatal("no new leader in the majority")
	}
	fresh := c.produce(l2, node.AcksAll, "fresh")
	if !c.wait(fresh, 2*time.Second) || fresh.resp.Err != nil || fresh.resp.BaseOffset != one.resp.BaseOffset {
		t.Fatalf("new leader's write %+v, want success at the orphan's offset %d", fresh, one.resp.BaseOffset)
	}
	c.w.Net().Heal()
	if !c.wait(all, 6*time.Second) || all.resp.Err == nil {
		t.Fatalf("acks=all of the deposed leader: %+v, want a failure", all)
	}
	c.run(2 * time.Second)
	for _, id := range c.ids {
		if got := c.log(id); fmt.Sprint(got) != "[fresh]" {
			t.Errorf("n%d log %q, want [fresh]", id, got)
		}
	}
}

// TestPipelinedLeaderBatchesOnRaftSync: a pipelined leader writes acks=-1
// appends without a WAL fsync of their own (they are answered on commit
// and apply), and its Raft-log sync gathers them into batches instead: while
// the sync of one batch's entry runs, no batch is cut, and the appends that
// queued meanwhile go into one batch once it completes.
func TestPipelinedLeaderBatchesOnRaftSync(t *testing.T) {
	c, l, g := gatedLeader(t, 41, "raft", node.Bugs{})
	batches, fsyncs := 0, 0
	c.w.Trace().SetListener(func(e sim.TraceEvent) {
		if e.Node != l {
			return
		}
		switch e.Kind {
		case "wal.batch":
			batches++
		case "wal.sync.done":
			fsyncs++
		}
	})
	g.hold = true
	first := c.produce(l, node.AcksAll, "first")
	c.run(50 * time.Millisecond)
	if batches != 1 || len(g.held) == 0 {
		t.Fatalf("n%d cut %d batches and queued %d Raft-log syncs for one request, want 1 and some", l, batches, len(g.held))
	}
	var rest []*reply
	for _, v := range []string{"a", "b", "c"} {
		rest = append(rest, c.produce(l, node.AcksAll, v))
	}
	c.run(50 * time.Millisecond)
	if batches != 1 {
		t.Fatalf("n%d cut %d batches while its Raft-log sync was held, want 1", l, batches)
	}
	g.release(c.w, l)
	for _, r := range append([]*reply{first}, rest...) {
		if !c.wait(r, 2*time.Second) || r.resp.Err != nil {
			t.Fatalf("acks=-1 on n%d: answered %v, err %v", l, r.done, r.resp.Err)
		}
	}
	if batches != 2 {
		t.Fatalf("n%d cut %d batches for the requests that queued behind its Raft-log sync, want 2", l, batches)
	}
	if fsyncs != 0 {
		t.Fatalf("n%d fsynced its WAL %d times for acks=-1 batches, want 0", l, fsyncs)
	}
}

// TestPipelinedStorageAcksNotRepeated: on the pipelined path a
// commit-index-only storage append rides on the sync of the entries written
// before it, and etcd raft attaches those entries' id to its
// acknowledgement too. Stepped after the entries' own acknowledgement it
// is a no-op that raft reports as an Info line on every node for every
// batch; the node drops such repeats (repeatedStableAck). The cluster
// must still commit and answer every request.
func TestPipelinedStorageAcksNotRepeated(t *testing.T) {
	c := newGatedCluster(t, 7, 3, node.PathPipelined, nil, node.Bugs{})
	l := c.leader()
	var repeats, stable []string
	c.w.Trace().SetListener(func(e sim.TraceEvent) {
		if e.Kind == "raft.info" && strings.Contains(e.Text, "missing from unstable log") {
			repeats = append(repeats, e.String())
		}
		if e.Kind == "apply" {
			stable = append(stable, e.String())
		}
	})
	var replies []*reply
	for i := 0; i < 40; i++ {
		replies = append(replies, c.produce(l, node.AcksAll, fmt.Sprintf("v%d", i)))
		c.run(time.Duration(i%3) * time.Millisecond)
	}
	for _, r := range replies {
		if !c.wait(r, 5*time.Second) || r.resp.Err != nil {
			t.Fatalf("acks=-1 on n%d: answered %v, err %v", l, r.done, r.resp.Err)
		}
	}
	c.run(100 * time.Millisecond) // followers learn the last commit index
	if len(stable) == 0 {
		t.Fatal("no entry applied: the test did not run the pipelined path")
	}
	if len(repeats) > 0 {
		t.Fatalf("%d repeated storage acknowledgements stepped, first: %s", len(repeats), repeats[0])
	}
}
