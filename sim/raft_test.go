package sim

import (
	"fmt"
	"io"
	"log"
	"strconv"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"walraft/core/env"
)

// This file drives a real etcd raft cluster (three RawNodes) with the
// simulator, to show that a seed replays raft exactly — which needs the
// crypto/rand hook, because raft draws election timeouts from
// crypto/rand.Reader — and that without the hook it does not.

// raftVoters is the cluster's configuration.
var raftVoters = []uint64{1, 2, 3}

// raftCluster is the harness: each node's MemoryStorage stands in for its
// durable Raft log (it is kept across crashes; the node appends to it
// before sending the messages that acknowledge the entries, so it holds
// exactly what a durable log would).
type raftCluster struct {
	w        *World
	storages map[env.NodeID]*raft.MemoryStorage
	nodes    map[env.NodeID]*raftNode // the current incarnation of each
}

// raftNode is one incarnation of a node: a RawNode on its env.
type raftNode struct {
	id      env.NodeID
	e       env.Env
	rn      *raft.RawNode
	st      *raft.MemoryStorage
	lead    uint64
	state   raft.StateType
	applied []string // "index/term/data" of every entry applied by this incarnation
}

var raftMarshal = proto.MarshalOptions{Deterministic: true}

const raftTick = 10 * time.Millisecond

func (c *raftCluster) boot(id env.NodeID, e env.Env) (Receiver, error) {
	st := c.storages[id]
	if st == nil {
		// Bootstrap as etcd raft recommends: a storage whose first index is
		// 2 and whose initial ConfState holds the voters.
		st = raft.NewMemoryStorage()
		err := st.ApplySnapshot(&pb.Snapshot{Metadata: &pb.SnapshotMetadata{
			ConfState: &pb.ConfState{Voters: raftVoters}, Index: new(uint64(1)), Term: new(uint64(1)),
		}})
		if err != nil {
			return nil, err
		}
		c.storages[id] = st
	}
	rn, err := raft.NewRawNode(&raft.Config{
		ID:              id,
		ElectionTick:    10,
		HeartbeatTick:   1,
		Storage:         st,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		CheckQuorum:     true,
		PreVote:         true,
		Logger:          &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)},
	})
	if err != nil {
		return nil, err
	}
	n := &raftNode{id: id, e: e, rn: rn, st: st}
	c.nodes[id] = n
	n.armTick()
	return n, nil
}

// armTick ticks raft from the node's own (skewed) clock.
func (n *raftNode) armTick() {
	n.e.Clock.AfterFunc(raftTick, func() {
		n.rn.Tick()
		n.handleReady()
		n.armTick()
	})
}

// Receive steps a message from the network.
func (n *raftNode) Receive(from env.NodeID, msg []byte) {
	m := &pb.Message{}
	if err := proto.Unmarshal(msg, m); err != nil {
		panic(fmt.Sprintf("node %d: bad message from %d: %v", n.id, from, err))
	}
	_ = n.rn.Step(m) // an error is a stale or foreign message: raft ignores it
	n.handleReady()
}

// propose proposes data and traces whether raft took it.
func (n *raftNode) propose(k int, data string) {
	res := int64(0)
	if err := n.rn.Propose([]byte(data)); err != nil {
		res = 1
	}
	n.e.Tracer.Trace(env.Event{Kind: "raft.propose", A: int64(k), B: res})
	n.handleReady()
}

// handleReady follows the Ready contract in order: persist, send, apply,
// advance.
func (n *raftNode) handleReady() {
	for n.rn.HasReady() {
		rd := n.rn.Ready()
		if ss := rd.SoftState; ss != nil && (ss.Lead != n.lead || ss.RaftState != n.state) {
			n.lead, n.state = ss.Lead, ss.RaftState
			// raft.soft: A=lead B=raft state C=term.
			n.e.Tracer.Trace(env.Event{Kind: "raft.soft", A: int64(ss.Lead), B: int64(ss.RaftState),
				C: int64(n.rn.BasicStatus().GetTerm())})
		}
		if !raft.IsEmptyHardState(rd.HardState) {
			if err := n.st.SetHardState(rd.HardState); err != nil {
				panic(fmt.Sprintf("node %d: SetHardState: %v", n.id, err))
			}
		}
		if err := n.st.Append(rd.Entries); err != nil {
			panic(fmt.Sprintf("node %d: Append: %v", n.id, err))
		}
		for _, m := range rd.Messages {
			b, err := raftMarshal.Marshal(m)
			if err != nil {
				panic(fmt.Sprintf("node %d: marshal %s: %v", n.id, raft.DescribeMessage(m, nil), err))
			}
			n.e.Net.Send(m.GetTo(), b)
		}
		for _, e := range rd.CommittedEntries {
			// raft.apply: A=index B=term C=entry type, Text=the payload
			// (stable text, never proto %v).
			n.e.Tracer.Trace(env.Event{Kind: "raft.apply", A: int64(e.GetIndex()), B: int64(e.GetTerm()),
				C: int64(e.GetType()), Text: string(e.GetData())})
			n.applied = append(n.applied, strconv.FormatUint(e.GetIndex(), 10)+"/"+
				strconv.FormatUint(e.GetTerm(), 10)+"/"+string(e.GetData()))
		}
		n.rn.Advance(rd)
	}
}

// raftRun is what one run of the raft scenario leaves behind.
type raftRun struct {
	hash     uint64
	events   []TraceEvent
	oldLead  env.NodeID   // the leader that was isolated
	newLeads []env.NodeID // leaders elected while it was isolated
	crashed  env.NodeID
	applied  map[env.NodeID][]string
	leaders  int // raft.soft events that name a leader
}

// runRaft runs the scenario: elect a leader, propose steadily, isolate the
// leader (a new one must be elected), heal, crash and restart a follower,
// let everything catch up.
func runRaft(t *testing.T, seed uint64, hook bool) raftRun {
	t.Helper()
	cfg := DefaultWorldConfig()
	cfg.Net.DropProb = 0.01
	cfg.Trace.Record = true
	cfg.osCryptoRand = !hook
	w, err := NewWorld(seed, cfg)
	must(t, err)
	defer w.Close()
	c := &raftCluster{w: w, storages: map[env.NodeID]*raft.MemoryStorage{}, nodes: map[env.NodeID]*raftNode{}}
	for _, id := range raftVoters {
		must(t, w.AddNode(id, c.boot, DefaultDiskConfig()))
	}
	must(t, w.Start())
	s := w.Sched()
	var r raftRun
	leader := func() env.NodeID {
		for _, id := range raftVoters {
			if n := c.nodes[id]; w.Process(id).State() == StateUp && n.state == raft.StateLeader {
				return id
			}
		}
		return 0
	}
	// Proposals every 25ms from 0.5s to 7s, round robin over the nodes
	// (followers forward to the leader; a proposal to a down node fails).
	k := 0
	for at := 500 * time.Millisecond; at < 7*time.Second; at += 25 * time.Millisecond {
		s.At(at, func() {
			k++
			n := k
			id := raftVoters[n%len(raftVoters)]
			_ = w.Post(id, 0, func() { c.nodes[id].propose(n, "p-"+strconv.Itoa(n)) })
		})
	}
	s.At(2*time.Second, func() {
		r.oldLead = leader()
		if r.oldLead == 0 {
			t.Fatal("no leader after 2s")
		}
		must(t, w.Net().Isolate(r.oldLead))
	})
	s.At(4*time.Second, func() {
		if l := leader(); l != 0 && l != r.oldLead {
			r.newLeads = append(r.newLeads, l)
		}
		w.Net().Heal()
	})
	s.At(5*time.Second, func() {
		for _, id := range raftVoters {
			if id != leader() {
				r.crashed = id
				break
			}
		}
		must(t, w.Crash(r.crashed))
		must(t, w.RestartAfter(r.crashed, 300*time.Millisecond))
	})
	s.RunUntil(8 * time.Second)

	r.hash = w.Trace().Hash()
	r.events = w.Trace().Events()
	r.applied = map[env.NodeID][]string{}
	for _, id := range raftVoters {
		if st := w.Process(id).State(); st != StateUp {
			t.Fatalf("node %d is %v at the end", id, st)
		}
		r.applied[id] = c.nodes[id].applied
	}
	for _, e := range r.events {
		if e.Kind == "raft.soft" && e.A != 0 {
			r.leaders++
		}
	}
	return r
}

func TestRaftReplaysWithCryptoHook(t *testing.T) {
	start := time.Now()
	a := runRaft(t, 2024, true)
	b := runRaft(t, 2024, true)
	if i, diff := FirstDivergence(a.events, b.events); diff {
		t.Fatalf("same seed diverged at event %d:\n  a: %s\n  b: %s", i, at(a.events, i), at(b.events, i))
	}
	if a.hash != b.hash {
		t.Fatalf("same seed, hashes %x and %x", a.hash, b.hash)
	}

	// The run did what the scenario says, so the comparison means something.
	if len(a.newLeads) == 0 {
		t.Errorf("no new leader elected while leader %d was isolated", a.oldLead)
	}
	if a.leaders < 3 {
		t.Errorf("only %d leadership events", a.leaders)
	}
	ref := a.applied[1]
	if len(ref) < 150 {
		t.Errorf("only %d entries applied", len(ref))
	}
	for _, id := range raftVoters {
		got := a.applied[id]
		if len(got) != len(ref) {
			t.Errorf("node %d applied %d entries, node 1 %d", id, len(got), len(ref))
			continue
		}
		for i := range got {
			if got[i] != ref[i] {
				t.Fatalf("node %d applied %s at position %d, node 1 %s", id, got[i], i, ref[i])
			}
		}
	}
	t.Logf("seed 2024: %d events, hash %x, %d entries applied, leader %d isolated, new leader(s) %v, node %d crashed; two runs in %v",
		len(a.events), a.hash, len(ref), a.oldLead, a.newLeads, a.crashed, time.Since(start))

	// A different seed is a different run.
	if c := runRaft(t, 2025, true); c.hash == a.hash {
		t.Errorf("seeds 2024 and 2025 have the same hash")
	}
}

func TestRaftDoesNotReplayWithoutCryptoHook(t *testing.T) {
	a := runRaft(t, 2024, false)
	b := runRaft(t, 2024, false)
	if a.hash == b.hash {
		t.Fatalf("without the crypto/rand hook two runs of one seed have the same hash %x: "+
			"raft's election timeouts no longer come from crypto/rand.Reader?", a.hash)
	}
	i, _ := FirstDivergence(a.events, b.events)
	t.Logf("without the hook the runs diverge at event %d:\n  a: %s\n  b: %s", i, at(a.events, i), at(b.events, i))
}
