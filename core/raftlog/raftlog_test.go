package raftlog

import (
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"walraft/core/env"
	"walraft/sim"
)

type rig struct {
	s    *sim.Scheduler
	disk *sim.Disk
	fs   env.FS
}

func newRig(seed uint64, cfg sim.DiskConfig) *rig {
	s := sim.NewScheduler()
	d := sim.NewDisk(s, sim.NewStreams(seed).Stream("disk"), cfg)
	r := &rig{s: s, disk: d}
	r.fs = d.FS(func(fn func()) { s.After(0, fn) })
	return r
}

func (r *rig) crash() {
	r.disk.Crash()
	r.fs = r.disk.FS(func(fn func()) { r.s.After(0, fn) })
}

func ent(index, term uint64, data string) *pb.Entry {
	return &pb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(term), Type: pb.EntryNormal.Enum(), Data: []byte(data)}
}

func hs(term, vote, commit uint64) *pb.HardState {
	return &pb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(vote), Commit: proto.Uint64(commit)}
}

func (r *rig) sync(t *testing.T, st *Storage) {
	t.Helper()
	var got error
	done := false
	st.Sync(func(err error) { got, done = err, true })
	r.s.RunWhile(func() bool { return !done }, r.s.Now()+time.Minute)
	if !done || got != nil {
		t.Fatalf("sync: done=%v err=%v", done, got)
	}
}

func entries(t *testing.T, st *Storage) []string {
	t.Helper()
	first, _ := st.FirstIndex()
	last, _ := st.LastIndex()
	if last < first {
		return nil
	}
	ents, err := st.Entries(first, last+1, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, string(e.Data)+"@"+string(rune('0'+e.GetTerm())))
	}
	return out
}

func TestRecoverAfterCrash(t *testing.T) {
	tests := []struct {
		name    string
		torn    float64
		syncAll bool
		want    []string
		wantHS  *pb.HardState
	}{
		{"synced survives", 0, true, []string{"a@1", "b@1", "c@2"}, hs(2, 1, 3)},
		{"unsynced tail lost cleanly", 0, false, []string{"a@1", "b@1"}, hs(1, 1, 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(1, sim.DefaultDiskConfig())
			st, err := Open(r.fs, "raft", []uint64{1, 2, 3}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Save(hs(1, 1, 2), []*pb.Entry{ent(1, 1, "a"), ent(2, 1, "b")}); err != nil {
				t.Fatal(err)
			}
			r.sync(t, st)
			if err := st.Save(hs(2, 1, 3), []*pb.Entry{ent(3, 2, "c")}); err != nil {
				t.Fatal(err)
			}
			if tt.syncAll {
				r.sync(t, st)
			}
			r.crash()
			st2, err := Open(r.fs, "raft", []uint64{1, 2, 3}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := entries(t, st2); len(got) != len(tt.want) || (len(got) > 0 && got[len(got)-1] != tt.want[len(tt.want)-1]) {
				t.Fatalf("entries %v, want %v", got, tt.want)
			}
			if !proto.Equal(st2.HardState(), tt.wantHS) {
				t.Fatalf("hard state %v, want %v", st2.HardState(), tt.wantHS)
			}
			h, c, _ := st2.InitialState()
			if !proto.Equal(h, tt.wantHS) || len(c.Voters) != 3 {
				t.Fatalf("InitialState %v %v", h, c)
			}
		})
	}
}

func TestOverwriteReplays(t *testing.T) {
	r := newRig(2, sim.DefaultDiskConfig())
	st, err := Open(r.fs, "raft", []uint64{1}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Save(hs(1, 1, 0), []*pb.Entry{ent(1, 1, "a"), ent(2, 1, "b"), ent(3, 1, "c")})
	// A new leader overwrites index 2 onward.
	st.Save(hs(2, 2, 1), []*pb.Entry{ent(2, 2, "x")})
	want := []string{"a@1", "x@2"}
	if got := entries(t, st); len(got) != 2 || got[1] != want[1] {
		t.Fatalf("live entries %v, want %v", got, want)
	}
	r.sync(t, st)
	r.crash()
	st2, err := Open(r.fs, "raft", []uint64{1}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := entries(t, st2); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("replayed entries %v, want %v", got, want)
	}
}

func TestTornCrashNeverInventsEntries(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		cfg := sim.DefaultDiskConfig()
		cfg.TornKeepProb = 0.5
		r := newRig(seed, cfg)
		st, err := Open(r.fs, "raft", []uint64{1}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		idx := uint64(0)
		synced := 0
		for i := 0; i < 20; i++ {
			idx++
			st.Save(hs(1, 1, idx), []*pb.Entry{ent(idx, 1, string(rune('a'+i%26)))})
			if i%3 == 0 {
				r.sync(t, st)
				synced = int(idx)
			}
		}
		r.crash()
		st2, err := Open(r.fs, "raft", []uint64{1}, Options{})
		if err != nil {
			t.Fatalf("seed %d: reopen after torn crash: %v", seed, err)
		}
		last, _ := st2.LastIndex()
		if last < uint64(synced) {
			t.Fatalf("seed %d: lost synced entries: last %d < synced %d", seed, last, synced)
		}
		if st2.HardState().GetCommit() > last {
			t.Fatalf("seed %d: commit %d beyond last entry %d", seed, st2.HardState().GetCommit(), last)
		}
	}
}

func TestInMemoryForgetsEverything(t *testing.T) {
	r := newRig(3, sim.DefaultDiskConfig())
	st, _ := Open(r.fs, "raft", []uint64{1}, Options{InMemory: true})
	st.Save(hs(1, 1, 1), []*pb.Entry{ent(1, 1, "a")})
	if st.Dirty() {
		t.Fatal("the in-memory variant must not ask for a sync")
	}
	r.crash()
	st2, _ := Open(r.fs, "raft", []uint64{1}, Options{InMemory: true})
	if last, _ := st2.LastIndex(); last != 0 || st2.HardState().GetTerm() != 0 {
		t.Fatalf("in-memory log survived a restart: last %d term %d", last, st2.HardState().GetTerm())
	}
}

// TestRecoveredReportsTheSync: OnRecovered reports the outcome of the
// log's recovery sync, a failure included: what Open read back may be only
// in a page cache, and a node must not start on it if the sync failed.
func TestRecoveredReportsTheSync(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(map[bool]string{false: "ok", true: "failed"}[fail], func(t *testing.T) {
			r := newRig(4, sim.DefaultDiskConfig())
			st, err := Open(r.fs, "raft", []uint64{1}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Save(hs(1, 1, 0), []*pb.Entry{ent(1, 1, "a")}); err != nil {
				t.Fatal(err)
			}
			r.sync(t, st)
			st.Close()
			if fail {
				r.disk.FailNextSyncs(1)
			}
			st, err = Open(r.fs, "raft", []uint64{1}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !st.Recovering() {
				t.Fatal("not recovering right after Open")
			}
			var got error
			called := false
			st.OnRecovered(func(err error) { got, called = err, true })
			r.s.RunWhile(func() bool { return !called }, r.s.Now()+time.Minute)
			if !called || st.Recovering() {
				t.Fatalf("recovery sync never reported (called %v, recovering %v)", called, st.Recovering())
			}
			if (got != nil) != fail {
				t.Fatalf("OnRecovered(%v), want an error: %v", got, fail)
			}
		})
	}
}
