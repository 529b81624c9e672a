package bench

import (
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func u64(v uint64) *uint64 { return &v }

func TestPeekMessage(t *testing.T) {
	app, resp, vote := pb.MsgApp, pb.MsgAppResp, pb.MsgVote
	entry := func(i uint64) *pb.Entry { return &pb.Entry{Term: u64(3), Index: u64(i), Data: []byte("payload")} }
	rej := true
	cases := []struct {
		name   string
		m      *pb.Message
		typ    pb.MessageType
		index  uint64
		last   uint64
		reject bool
	}{
		{"append with entries", &pb.Message{Type: &app, To: u64(2), Index: u64(9), Entries: []*pb.Entry{entry(10), entry(11)}, Commit: u64(8)}, pb.MsgApp, 9, 11, false},
		{"commit-only append", &pb.Message{Type: &app, To: u64(2), Index: u64(11), Commit: u64(11)}, pb.MsgApp, 11, 0, false},
		{"accepting response", &pb.Message{Type: &resp, Index: u64(11)}, pb.MsgAppResp, 11, 0, false},
		{"rejecting response", &pb.Message{Type: &resp, Index: u64(4), Reject: &rej, RejectHint: u64(3)}, pb.MsgAppResp, 4, 0, true},
		{"vote", &pb.Message{Type: &vote, Index: u64(7), LogTerm: u64(2)}, pb.MsgVote, 7, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := proto.Marshal(c.m)
			if err != nil {
				t.Fatal(err)
			}
			typ, index, last, reject, ok := peekMessage(b)
			if !ok || typ != c.typ || index != c.index || last != c.last || reject != c.reject {
				t.Fatalf("peek = %v %d %d %v %v, want %v %d %d %v true", typ, index, last, reject, ok, c.typ, c.index, c.last, c.reject)
			}
			if _, _, _, _, ok := peekMessage(b[:len(b)-1]); ok && len(c.m.Entries) > 0 {
				t.Fatalf("a truncated message parsed")
			}
		})
	}
}

// TestCriticalPathAnalyze follows two batches through hand-made events:
// one whose quorum waits for a follower, one whose quorum waits for the
// leader's own fsync.
func TestCriticalPathAnalyze(t *testing.T) {
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	r := newPathRecorder()
	r.on = true
	ev := func(at float64, node, peer uint64, kind int, a, b uint64) {
		r.evs = append(r.evs, pathEvent{at: ms(at), node: node, peer: peer, kind: kind, a: a, b: b})
	}
	// Batch at base 100, index 5: leader 1 syncs 0.1-1.5; followers get it
	// at 0.3 and 0.4, sync 0.3-0.8 and 0.5-1.0, acks reach the leader at
	// 0.9 and 1.1: quorum at 1.1 (the later of 0.9 and 1.1; the leader's
	// 1.5 is last), applied at 1.6.
	ev(0, 1, 0, pePropose, 100, 0)
	ev(0.05, 1, 2, peAppSend, 5, 0)
	ev(0.06, 1, 3, peAppSend, 5, 0)
	ev(0.1, 1, 0, peSyncStart, 0, 0)
	ev(0.3, 2, 1, peAppRecv, 5, 0)
	ev(0.3, 2, 0, peSyncStart, 0, 0)
	ev(0.4, 3, 1, peAppRecv, 5, 0)
	ev(0.5, 3, 0, peSyncStart, 0, 0)
	ev(0.8, 2, 0, peSyncDone, 0, 0)
	ev(0.85, 2, 1, peRespSend, 5, 0)
	ev(0.9, 1, 2, peRespRecv, 5, 0)
	ev(1.0, 3, 0, peSyncDone, 0, 0)
	ev(1.1, 1, 3, peRespRecv, 5, 0)
	ev(1.5, 1, 0, peSyncDone, 0, 0)
	ev(1.6, 1, 0, peApply, 5, 100)
	// Batch at base 200, index 6: the leader's fsync (2.1-2.4) is the
	// second ack after follower 2's (2.3); follower 3 answers late.
	ev(2.0, 1, 0, pePropose, 200, 0)
	ev(2.0, 1, 2, peAppSend, 6, 0)
	ev(2.0, 1, 3, peAppSend, 6, 0)
	ev(2.1, 1, 0, peSyncStart, 0, 0)
	ev(2.1, 2, 1, peAppRecv, 6, 0)
	ev(2.1, 2, 0, peSyncStart, 0, 0)
	ev(2.2, 2, 0, peSyncDone, 0, 0)
	ev(2.3, 1, 2, peRespRecv, 6, 0)
	ev(2.4, 1, 0, peSyncDone, 0, 0)
	ev(2.45, 1, 0, peApply, 6, 200)
	ev(2.5, 3, 1, peAppRecv, 6, 0)
	ev(2.5, 3, 0, peSyncStart, 0, 0)
	ev(2.9, 3, 0, peSyncDone, 0, 0)
	ev(3.0, 1, 3, peRespRecv, 6, 0)
	// A proposal never applied is not counted.
	ev(3.1, 1, 0, pePropose, 300, 0)

	cp := r.analyze(1, []uint64{1, 2, 3})
	near := func(got, want float64) bool { return got > want-1e-6 && got < want+1e-6 }
	if cp.Batches != 2 {
		t.Fatalf("batches %d, want 2: %+v", cp.Batches, cp)
	}
	// Medians of two values take the upper one.
	checks := []struct {
		name      string
		got, want float64
	}{
		{"leader sync start", cp.LeaderSyncStart, 0.1},
		{"leader sync", cp.LeaderSync, 1.4},
		{"propose -> apply", cp.ProposeToApply, 1.6},
		{"quorum -> apply", cp.QuorumToApply, 0.5},
		{"leader last %", cp.LeaderLastPct, 50},
		{"follower sync", cp.FollowerSync, 0.5}, // 0.5, 0.5, 0.1, 0.4
		{"net out", cp.NetOut, 0.34},            // 0.25, 0.34, 0.1, 0.5: the upper median
		{"follower queue", cp.FollowerQueue, 0}, // 0, 0.1, 0, 0
	}
	for _, c := range checks {
		if !near(c.got, c.want) {
			t.Errorf("%s = %v, want %v (%+v)", c.name, c.got, c.want, cp)
		}
	}
	if cp := r.analyze(1, []uint64{1, 2}); cp.Batches != 0 {
		t.Errorf("a 2-node cluster analyzed %d batches, want 0", cp.Batches)
	}
}
