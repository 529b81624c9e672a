package sim

import (
	"fmt"
	"io"
	"log"
	"testing"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// BenchmarkRaftEntryCost measures what etcd raft alone costs per entry in a
// three-node cluster: no disk, no simulator, no WAL or state machine, the
// messages handed from node to node in memory (wire=true: each marshalled
// and unmarshalled with the protobuf runtime; walraft's nodes write the same
// bytes with a cheaper codec of their own, core/node/codec.go). One op is one proposal of a 465 B
// entry (the calm scenario's mean record), run until every node applied
// it: the least work one record costs a 3-node cluster when it travels in
// an entry of its own, as records do at low load. It caps the
// simulator's speed: at 1,000 records per simulated second, a
// speed-up of S over real time leaves 1 ms / S of CPU per record.
//
//	go test ./sim -run '^$' -bench RaftEntryCost -cpu 1
func BenchmarkRaftEntryCost(b *testing.B) {
	for _, wire := range []bool{false, true} {
		b.Run(fmt.Sprintf("wire=%v", wire), func(b *testing.B) {
			c := newCostCluster(b, wire)
			payload := make([]byte, 465)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := c.nodes[0].rn.Propose(payload); err != nil {
					b.Fatal(err)
				}
				c.pump()
			}
			b.StopTimer()
			for _, n := range c.nodes {
				if n.applied < uint64(b.N) {
					b.Fatalf("node %d applied %d of %d entries", n.id, n.applied, b.N)
				}
			}
		})
	}
}

// costCluster is three RawNodes on MemoryStorage with an in-memory
// message queue.
type costCluster struct {
	tb    testing.TB
	wire  bool
	nodes []*costNode
	queue []*pb.Message
}

type costNode struct {
	id      uint64
	rn      *raft.RawNode
	st      *raft.MemoryStorage
	applied uint64 // normal entries with data applied
}

func newCostCluster(tb testing.TB, wire bool) *costCluster {
	tb.Helper()
	c := &costCluster{tb: tb, wire: wire}
	for id := uint64(1); id <= 3; id++ {
		st := raft.NewMemoryStorage()
		err := st.ApplySnapshot(&pb.Snapshot{Metadata: &pb.SnapshotMetadata{
			ConfState: &pb.ConfState{Voters: raftVoters}, Index: new(uint64(1)), Term: new(uint64(1)),
		}})
		if err != nil {
			tb.Fatal(err)
		}
		rn, err := raft.NewRawNode(&raft.Config{
			ID: id, ElectionTick: 10, HeartbeatTick: 1, Storage: st,
			MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, CheckQuorum: true, PreVote: true,
			Logger: &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)},
		})
		if err != nil {
			tb.Fatal(err)
		}
		c.nodes = append(c.nodes, &costNode{id: id, rn: rn, st: st})
	}
	if err := c.nodes[0].rn.Campaign(); err != nil {
		tb.Fatal(err)
	}
	c.pump()
	if st := c.nodes[0].rn.BasicStatus(); st.RaftState != raft.StateLeader {
		tb.Fatalf("node 1 did not win the election: %v", st.RaftState)
	}
	return c
}

// pump handles Readys and delivers messages until the cluster is quiet.
func (c *costCluster) pump() {
	for {
		busy := false
		for _, n := range c.nodes {
			if !n.rn.HasReady() {
				continue
			}
			busy = true
			rd := n.rn.Ready()
			if err := n.st.Append(rd.Entries); err != nil {
				c.tb.Fatal(err)
			}
			if rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState) {
				if err := n.st.SetHardState(rd.HardState); err != nil {
					c.tb.Fatal(err)
				}
			}
			c.queue = append(c.queue, rd.Messages...)
			for _, e := range rd.CommittedEntries {
				if e.GetType() == pb.EntryNormal && len(e.Data) > 0 {
					n.applied++
				}
			}
			n.rn.Advance(rd)
		}
		for len(c.queue) > 0 {
			busy = true
			m := c.queue[0]
			c.queue = c.queue[1:]
			if c.wire {
				buf, err := raftMarshal.Marshal(m)
				if err != nil {
					c.tb.Fatal(err)
				}
				m = &pb.Message{}
				if err := proto.Unmarshal(buf, m); err != nil {
					c.tb.Fatal(err)
				}
			}
			_ = c.nodes[m.GetTo()-1].rn.Step(m)
		}
		if !busy {
			return
		}
	}
}
