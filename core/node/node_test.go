package node_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"walraft/core/env"
	"walraft/core/node"
	"walraft/sim"
)

// tcluster is a small driver: n nodes on a sim.World, produce and fetch
// through the world's event loops.
type tcluster struct {
	t     *testing.T
	w     *sim.World
	nodes map[uint64]*node.Node
	ids   []uint64
	cfg   func(id uint64) node.Config
}

func newCluster(t *testing.T, seed uint64, n int, mod func(*node.Config)) *tcluster {
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
			nd, err := node.New(c.cfg(id), e)
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

func (c *tcluster) run(d time.Duration) { c.w.Sched().RunFor(d) }

// leader waits for a leader with an open gate and returns it.
func (c *tcluster) leader() uint64 {
	c.t.Helper()
	var id uint64
	ok := c.w.Sched().RunWhile(func() bool {
		id = 0
		for _, x := range c.ids {
			if n := c.up(x); n != nil && n.Status().Gate {
				id = x
			}
		}
		return id == 0
	}, c.w.Now()+10*time.Second)
	if ok {
		return id
	}
	c.t.Fatalf("no leader within 10s")
	return 0
}

func (c *tcluster) up(id uint64) *node.Node {
	if c.w.Process(id).State() == sim.StateDown {
		return nil
	}
	return c.nodes[id]
}

// produce sends one request to node id and returns a pointer that is set
// when the reply arrives.
func (c *tcluster) produce(id uint64, acks node.Acks, vals ...string) *reply {
	r := &reply{}
	recs := make([][]byte, len(vals))
	for i, v := range vals {
		recs[i] = []byte(v)
	}
	if err := c.w.Post(id, 0, func() {
		c.nodes[id].Produce(node.ProduceRequest{Topic: "t", Partition: 0, Acks: acks, Records: recs}, func(resp node.ProduceResponse) {
			r.done, r.resp, r.at = true, resp, c.w.Now()
		})
	}); err != nil {
		c.t.Fatal(err)
	}
	return r
}

type reply struct {
	done bool
	resp node.ProduceResponse
	at   time.Duration
}

// wait runs until r is answered (or d passes).
func (c *tcluster) wait(r *reply, d time.Duration) bool {
	return c.w.Sched().RunWhile(func() bool { return !r.done }, c.w.Now()+d)
}

// log returns node id's records below its HWM, once it has caught up.
func (c *tcluster) log(id uint64) []string {
	c.caughtUp(id)
	n := c.up(id)
	var out []string
	off := int64(0)
	for {
		resp := n.Fetch(node.FetchRequest{Topic: "t", Offset: off})
		if resp.Err != nil {
			c.t.Fatalf("fetch n%d at %d: %v", id, off, resp.Err)
		}
		if len(resp.Records) == 0 {
			return out
		}
		for _, r := range resp.Records {
			out = append(out, string(r.Value))
		}
		off = resp.Records[len(resp.Records)-1].Offset + 1
	}
}

// caughtUp runs until node id is no longer recovering (see the node
// package doc) and fails the test if that takes more than 10 s.
func (c *tcluster) caughtUp(id uint64) {
	c.t.Helper()
	recovering := func() bool { return c.up(id) != nil && c.nodes[id].Status().Recovering }
	c.w.Sched().RunWhile(recovering, c.w.Now()+10*time.Second)
	if recovering() {
		c.t.Fatalf("n%d still recovering after 10s", id)
	}
}

func (c *tcluster) hwm(id uint64) int64 {
	ps, _ := c.up(id).PartitionStatus("t", 0)
	return ps.HWM
}

func TestStandaloneAcks(t *testing.T) {
	c := newCluster(t, 1, 1, nil)
	id := c.leader()
	for _, acks := range []node.Acks{node.AcksNone, node.AcksLeader, node.AcksAll} {
		t.Run(acks.String(), func(t *testing.T) {
			d := c.w.Disk(id)
			d.StallSyncsUntil(c.w.Now() + 200*time.Millisecond)
			r := c.produce(id, acks, "x-"+acks.String())
			c.run(100 * time.Millisecond)
			if acks == node.AcksNone {
				if !r.done || r.resp.Err != nil {
					t.Fatalf("acks=0 must be answered at enqueue: %+v", r)
				}
				return
			}
			if r.done {
				t.Fatalf("acks=%s answered at %v during an fsync stall", acks, r.at)
			}
			if !c.wait(r, time.Second) || r.resp.Err != nil {
				t.Fatalf("acks=%s: %+v", acks, r)
			}
			if hw := c.hwm(id); hw != r.resp.BaseOffset+1 {
				t.Fatalf("HWM %d after acks=%s reply at offset %d", hw, acks, r.resp.BaseOffset)
			}
		})
	}
}

func TestClusterAcksAllNeedsMajority(t *testing.T) {
	c := newCluster(t, 2, 3, nil)
	l := c.leader()
	var followers []uint64
	for _, id := range c.ids {
		if id != l {
			followers = append(followers, id)
		}
	}
	// One follower paused: a majority (leader + one) still commits.
	c.w.Pause(followers[0])
	r := c.produce(l, node.AcksAll, "a")
	if !c.wait(r, 2*time.Second) || r.resp.Err != nil || r.resp.Index == 0 {
		t.Fatalf("acks=all with a majority up: %+v", r)
	}
	// Both followers paused: no majority can persist the entry, so acks=all
	// gets no success; acks=1 needs only the leader's fsync. (Within an
	// election timeout: after that CheckQuorum deposes the lone leader.)
	c.w.Pause(followers[1])
	r2 := c.produce(l, node.AcksAll, "b")
	r1 := c.produce(l, node.AcksLeader, "c")
	c.run(50 * time.Millisecond)
	if !r1.done || r1.resp.Err != nil {
		t.Fatalf("acks=1 needs only the leader's fsync: %+v", r1)
	}
	c.run(time.Second)
	if r2.done && r2.resp.Err == nil {
		t.Fatalf("acks=all succeeded without a majority: %+v", r2)
	}
	c.w.Resume(followers[0])
	c.w.Resume(followers[1])
	// Its entry may still commit (the old leader can win again with the
	// longest log) or be replaced; either way it ends by the acks timeout.
	if !c.wait(r2, 6*time.Second) {
		t.Fatalf("acks=all never answered after the followers resumed")
	}
	if r2.resp.Err == nil {
		nl := c.leader()
		if got := c.log(nl); int64(len(got)) <= r2.resp.BaseOffset || got[r2.resp.BaseOffset] != "b" {
			t.Fatalf("acks=all success at %d but leader n%d log is %q", r2.resp.BaseOffset, nl, got)
		}
	}
}

func TestLeaderCrashKeepsAckedRecord(t *testing.T) {
	c := newCluster(t, 3, 3, nil)
	l := c.leader()
	r := c.produce(l, node.AcksAll, "keep-me")
	if !c.wait(r, 2*time.Second) || r.resp.Err != nil {
		t.Fatalf("%+v", r)
	}
	if err := c.w.Crash(l); err != nil {
		t.Fatal(err)
	}
	l2 := c.leader()
	if l2 == l {
		t.Fatalf("crashed leader still leads")
	}
	got := c.log(l2)
	if int64(len(got)) <= r.resp.BaseOffset || got[r.resp.BaseOffset] != "keep-me" {
		t.Fatalf("new leader n%d log %q lacks the acked record at %d", l2, got, r.resp.BaseOffset)
	}
}

func TestDeposedLeaderSuffixTruncated(t *testing.T) {
	c := newCluster(t, 4, 3, nil)
	l := c.leader()
	base := c.produce(l, node.AcksAll, "base")
	c.wait(base, 2*time.Second)
	c.w.Net().Isolate(l)
	// Accepted and fsynced on the isolated leader: acks=1 succeeds, but the
	// batch can never commit.
	orphan := c.produce(l, node.AcksLeader, "orphan")
	waiter := c.produce(l, node.AcksAll, "orphan-all")
	if !c.wait(orphan, time.Second) || orphan.resp.Err != nil {
		t.Fatalf("acks=1 on the isolated leader: %+v", orphan)
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
	if !c.wait(fresh, 2*time.Second) || fresh.resp.Err != nil {
		t.Fatalf("%+v", fresh)
	}
	if fresh.resp.BaseOffset != orphan.resp.BaseOffset {
		t.Fatalf("new leader wrote at %d, orphan was at %d: offsets must be reused", fresh.resp.BaseOffset, orphan.resp.BaseOffset)
	}
	c.w.Net().Heal()
	c.run(2 * time.Second)
	want := c.log(l2)
	for _, id := range c.ids {
		if got := c.log(id); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("n%d log %q, leader n%d has %q", id, got, l2, want)
		}
	}
	if ps, _ := c.up(l).PartitionStatus("t", 0); ps.LogEnd != ps.HWM {
		t.Errorf("old leader keeps an uncommitted suffix: HWM %d log end %d", ps.HWM, ps.LogEnd)
	}
	// The acks=-1 waiter of the deposed leader ended when it lost
	// leadership, indeterminate (DESIGN.md 3.9): never a success for
	// another term's entry at its index.
	if !waiter.done || !errors.Is(waiter.resp.Err, node.ErrLeadershipLost) || !waiter.resp.Indeterminate {
		t.Fatalf("waiter of the deposed leader: %+v, want an indeterminate ErrLeadershipLost", waiter)
	}
}

func TestRestartKeepsHWM(t *testing.T) {
	for _, path := range []node.Path{node.PathBatch, node.PathLegacy, node.PathPipelined} {
		t.Run(path.String(), func(t *testing.T) {
			c := newCluster(t, 5, 3, func(cfg *node.Config) { cfg.Path = path })
			l := c.leader()
			for i := 0; i < 5; i++ {
				r := c.produce(l, node.AcksAll, fmt.Sprint("r", i), fmt.Sprint("s", i))
				if !c.wait(r, 2*time.Second) || r.resp.Err != nil {
					t.Fatalf("%+v", r)
				}
			}
			c.run(500 * time.Millisecond)
			before := map[uint64]int64{}
			for _, id := range c.ids {
				before[id] = c.hwm(id)
				c.w.Crash(id)
			}
			recovering := 0
			for _, id := range c.ids {
				if err := c.w.Restart(id); err != nil {
					t.Fatal(err)
				}
				// A restarted node either exposes an HWM at least as
				// high as before, or withholds it until it caught up.
				n := c.nodes[id]
				if n.Status().Recovering {
					recovering++
					if resp := n.Fetch(node.FetchRequest{Topic: "t"}); !errors.Is(resp.Err, node.ErrRecovering) {
						t.Fatalf("n%d fetch while recovering: %+v, want ErrRecovering", id, resp)
					}
					continue
				}
				if hw := c.hwm(id); hw < before[id] {
					t.Fatalf("n%d HWM %d after restart, was %d", id, hw, before[id])
				}
			}
			// The last commit index of an idle cluster is written but
			// never synced: at least one node must have gone through
			// recovery, or this test does not test it.
			if recovering == 0 {
				t.Fatalf("no node recovered: the recovery path went untested")
			}
			for _, id := range c.ids {
				c.caughtUp(id)
				if hw := c.hwm(id); hw < before[id] {
					t.Fatalf("n%d HWM %d after recovery, was %d", id, hw, before[id])
				}
			}
		})
	}
}

func TestMixedLogReplays(t *testing.T) {
	path := node.PathLegacy
	c := newCluster(t, 6, 3, func(cfg *node.Config) { cfg.Path = path })
	l := c.leader()
	for i := 0; i < 3; i++ {
		c.wait(c.produce(l, node.AcksAll, fmt.Sprint("legacy", i)), 2*time.Second)
	}
	// Upgrade: every node restarts on the batch path; the canonical entries
	// written before must replay.
	path = node.PathBatch
	for _, id := range c.ids {
		c.w.Crash(id)
		if err := c.w.Restart(id); err != nil {
			t.Fatal(err)
		}
	}
	l = c.leader()
	c.wait(c.produce(l, node.AcksAll, "batch0", "batch1"), 2*time.Second)
	c.run(500 * time.Millisecond)
	want := []string{"legacy0", "legacy1", "legacy2", "batch0", "batch1"}
	for _, id := range c.ids {
		c.w.Crash(id)
		if err := c.w.Restart(id); err != nil {
			t.Fatal(err)
		}
		if got := c.log(id); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("n%d replayed %q, want %q", id, got, want)
		}
	}
}

func TestBadRequests(t *testing.T) {
	c := newCluster(t, 7, 1, func(cfg *node.Config) { cfg.MaxRecordBytes = 100 })
	id := c.leader()
	tests := []struct {
		name string
		req  node.ProduceRequest
		want error
	}{
		{"unknown topic", node.ProduceRequest{Topic: "nope", Acks: 1, Records: [][]byte{{1}}}, node.ErrUnknownPartition},
		{"unknown partition", node.ProduceRequest{Topic: "t", Partition: 3, Acks: 1, Records: [][]byte{{1}}}, node.ErrUnknownPartition},
		{"no records", node.ProduceRequest{Topic: "t", Acks: 1}, node.ErrInvalid},
		{"oversized record", node.ProduceRequest{Topic: "t", Acks: 1, Records: [][]byte{make([]byte, 101)}}, node.ErrInvalid},
		{"bad acks", node.ProduceRequest{Topic: "t", Acks: 2, Records: [][]byte{{1}}}, node.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got error
			c.w.Post(id, 0, func() {
				c.nodes[id].Produce(tt.req, func(r node.ProduceResponse) { got = r.Err })
			})
			c.run(time.Millisecond)
			if !errors.Is(got, tt.want) {
				t.Fatalf("err = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFollowerAnswersNotLeader(t *testing.T) {
	c := newCluster(t, 8, 3, nil)
	l := c.leader()
	f := l%3 + 1
	r := c.produce(f, node.AcksAll, "x")
	c.wait(r, time.Second)
	if !errors.Is(r.resp.Err, node.ErrNotLeader) || r.resp.LeaderHint != l || r.resp.Indeterminate {
		t.Fatalf("follower answer %+v, want NotLeader with hint %d", r.resp, l)
	}
}

// TestTransferKeepsAckedRecords: raft drops proposals during a leadership
// transfer. A leader must not accept writes it cannot propose: while a
// transfer runs the produce gate is closed (NotLeader, definite), a
// transfer is declined while accepted writes wait for their fsync, and when
// the transfer fails (its target is cut off) the same leader goes on with
// every acknowledged record in place. Before the gate closed, an acks=1
// write accepted during the transfer was answered, then truncated when its
// proposal was dropped, and its offset reused: lost without a leader change.
func TestTransferKeepsAckedRecords(t *testing.T) {
	c := newCluster(t, 5, 3, nil)
	l := c.leader()
	to := l%3 + 1
	a := c.produce(l, node.AcksLeader, "a")
	if !c.wait(a, 5*time.Second) || a.resp.Err != nil {
		t.Fatalf("acks=1 a: %+v", a.resp)
	}
	// A write still waiting for its fsync: the transfer is declined.
	var declined, accepted bool
	var during *reply
	if err := c.w.Post(l, 0, func() {
		c.nodes[l].Produce(node.ProduceRequest{Topic: "t", Acks: node.AcksLeader, Records: [][]byte{[]byte("q")}}, func(node.ProduceResponse) {})
		declined = !c.nodes[l].TransferLeadership(to)
	}); err != nil {
		t.Fatal(err)
	}
	c.run(200 * time.Millisecond)
	if !declined {
		t.Fatalf("n%d accepted a transfer with a write waiting for its fsync", l)
	}
	// Cut the target off so the transfer cannot finish, then transfer.
	if err := c.w.Net().Isolate(to); err != nil {
		t.Fatal(err)
	}
	if err := c.w.Post(l, 0, func() { accepted = c.nodes[l].TransferLeadership(to) }); err != nil {
		t.Fatal(err)
	}
	c.run(time.Millisecond)
	if !accepted {
		t.Fatalf("n%d declined a transfer with nothing queued", l)
	}
	during = c.produce(l, node.AcksLeader, "b")
	if !c.wait(during, 5*time.Second) || !errors.Is(during.resp.Err, node.ErrNotLeader) || during.resp.Indeterminate {
		t.Fatalf("acks=1 b during the transfer: %+v, want a definite NotLeader", during.resp)
	}
	// Raft abandons the transfer after an election timeout; heal, and the
	// same leader takes writes again.
	c.run(time.Second)
	c.w.Net().Heal()
	if got := c.leader(); got != l {
		t.Fatalf("leader n%d after the failed transfer, want n%d", got, l)
	}
	d := c.produce(l, node.AcksAll, "d")
	if !c.wait(d, 5*time.Second) || d.resp.Err != nil {
		t.Fatalf("acks=-1 d: %+v", d.resp)
	}
	if got := c.log(l); !slices.Equal(got, []string{"a", "q", "d"}) {
		t.Fatalf("log %v, want [a q d]: an acknowledged record went missing", got)
	}
}

// TestBackpressureIsDefinite: MaxPendingBatches is enforced when a request
// is accepted, with a definite ErrBackpressure; a request once accepted is
// always proposed, on the legacy path too, where a request of several
// records is several entries. (Refusing entries at proposal time answered
// such requests indeterminate in a calm run, L3, and truncated WAL batches
// whose acks=1 requests were answered, S5: a rapid campaign found both.)
func TestBackpressureIsDefinite(t *testing.T) {
	c := newCluster(t, 5, 3, func(cfg *node.Config) { cfg.Path, cfg.MaxPendingBatches = node.PathLegacy, 2 })
	l := c.leader()
	var rs []*reply
	for i := range 40 {
		acks := node.AcksAll
		if i%3 == 0 {
			acks = node.AcksLeader
		}
		rs = append(rs, c.produce(l, acks, fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)))
		c.run(50 * time.Microsecond)
	}
	c.run(2 * time.Second)
	full, ok := 0, 0
	for i, r := range rs {
		switch {
		case !r.done:
			t.Fatalf("request %d never answered", i)
		case r.resp.Err == nil:
			ok++
		case errors.Is(r.resp.Err, node.ErrBackpressure) && !r.resp.Indeterminate:
			full++
		default:
			t.Errorf("request %d: %v (indeterminate %v): only definite back-pressure may fail a request here", i, r.resp.Err, r.resp.Indeterminate)
		}
	}
	if full == 0 || ok == 0 {
		t.Fatalf("%d requests succeeded, %d ran into back-pressure: want some of each", ok, full)
	}
	log := fmt.Sprint(c.log(l))
	for i, r := range rs {
		if r.resp.Err == nil && !strings.Contains(log, fmt.Sprintf("a%d b%d", i, i)) {
			t.Errorf("request %d succeeded but its records are not in the log %s", i, log)
		}
	}
}

// A standalone node killed with its machine up (the page cache kept) reads
// back a record its disk never got. It must not start, and so not expose an
// HWM covering the record, before its recovery sync makes the record
// durable: a power loss in between would take the record, and the HWM,
// back.
func TestKilledNodeStartsAfterRecoverySync(t *testing.T) {
	for _, powerLoss := range []bool{false, true} {
		name := map[bool]string{false: "recovery sync completes", true: "power loss before it"}[powerLoss]
		t.Run(name, func(t *testing.T) {
			c := newCluster(t, 3, 1, nil)
			id := c.leader()
			d := c.w.Disk(id)
			d.StallSyncsUntil(c.w.Now() + time.Second)
			r := c.produce(id, node.AcksNone, "a")
			c.run(5 * time.Millisecond)
			if !r.done || r.resp.Err != nil {
				t.Fatalf("acks=0: %+v", r)
			}
			if err := c.w.Kill(id); err != nil {
				t.Fatal(err)
			}
			if err := c.w.Restart(id); err != nil {
				t.Fatal(err)
			}
			c.run(10 * time.Millisecond)
			n := c.up(id)
			if st := n.Status(); st.Ready || !st.Recovering {
				t.Fatalf("started while its recovery sync is stalled: %+v", st)
			}
			if resp := n.Fetch(node.FetchRequest{Topic: "t", Offset: 0}); !errors.Is(resp.Err, node.ErrRecovering) {
				t.Fatalf("Fetch before the recovery sync = %+v, want ErrRecovering", resp)
			}
			p := c.produce(id, node.AcksLeader, "b")
			c.run(time.Millisecond)
			if !p.done || !errors.Is(p.resp.Err, node.ErrNotReady) || p.resp.Indeterminate {
				t.Fatalf("Produce before the recovery sync = %+v, want a definite ErrNotReady", p)
			}
			want := []string{"a"}
			if powerLoss {
				if err := c.w.Crash(id); err != nil {
					t.Fatal(err)
				}
				d.ClearFaults()
				if err := c.w.Restart(id); err != nil {
					t.Fatal(err)
				}
				want = nil
			}
			c.run(2 * time.Second)
			if st := c.up(id).Status(); !st.Ready {
				t.Fatalf("not started once its disk is back: %+v", st)
			}
			if got := c.log(id); !slices.Equal(got, want) {
				t.Fatalf("log %q, want %q", got, want)
			}
		})
	}
}
