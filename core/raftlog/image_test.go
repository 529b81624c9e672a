package raftlog

import (
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"

	"walraft/core/reclog"
	"walraft/sim"
)

// TestImageMatchesOpen saves entries (with overwrites) and hard states,
// syncs some of them and crashes with torn writes; at every crash the
// Image, updated incrementally after every step, must equal what Open
// recovers: the same HardState and the same entries.
func TestImageMatchesOpen(t *testing.T) {
	opts := reclog.Options{SegmentBytes: 4 << 10}
	crashes, overwrites := 0, 0
	for seed := uint64(1); seed <= 8; seed++ {
		cfg := sim.DefaultDiskConfig()
		cfg.TornKeepProb = 0.5
		r := newRig(seed, cfg)
		rng := sim.NewStreams(seed).Stream("test")
		im, err := NewImage("raft", opts)
		if err != nil {
			t.Fatal(err)
		}
		st, err := Open(r.fs, "raft", []uint64{1, 2, 3}, Options{Log: opts})
		if err != nil {
			t.Fatal(err)
		}
		term := uint64(1)
		for step := 0; step < 200; step++ {
			switch x := rng.IntN(10); {
			case x < 5:
				last, _ := st.LastIndex()
				from := last + 1
				if last > 0 && rng.Chance(0.2) {
					from = 1 + uint64(rng.IntN(int(last)))
					term++
					overwrites++
				}
				var ents []*pb.Entry
				for i := range 1 + rng.IntN(4) {
					ents = append(ents, ent(from+uint64(i), term, string(make([]byte, rng.IntN(900)))+"x"))
				}
				var h *pb.HardState
				if rng.Chance(0.3) {
					h = hs(term, uint64(1+rng.IntN(3)), from-1)
				}
				if err := st.Save(h, ents); err != nil {
					t.Fatal(err)
				}
				if rng.Chance(0.7) {
					st.Sync(func(error) {})
				}
			case x < 8:
				r.s.RunUntil(r.s.Now() + rng.Duration(0, 2*cfg.SyncMax))
			default:
				r.crash()
				crashes++
				if err := im.Update(r.disk.DurableSource()); err != nil {
					t.Fatalf("seed %d step %d: Update: %v", seed, step, err)
				}
				st, err = Open(r.fs, "raft", []uint64{1, 2, 3}, Options{Log: opts})
				if err != nil {
					t.Fatalf("seed %d step %d: Open: %v", seed, step, err)
				}
				got := st.HardState()
				gt, gv, gc := im.HardState()
				if got.GetTerm() != gt || got.GetVote() != gv || got.GetCommit() != gc {
					t.Fatalf("seed %d step %d: image hard state %d/%d/%d, Open %v", seed, step, gt, gv, gc, got)
				}
				last, _ := st.LastIndex()
				if last != im.LastIndex() {
					t.Fatalf("seed %d step %d: image last index %d, Open %d", seed, step, im.LastIndex(), last)
				}
				for i := uint64(1); i <= last; i++ {
					want, _ := st.Term(i)
					if got, ok := im.Term(i); !ok || got != want {
						t.Fatalf("seed %d step %d: entry %d: image term %d, Open %d", seed, step, i, got, want)
					}
					es, _ := st.Entries(i, i+1, 1<<30)
					if e, _ := im.Entry(i); string(e.Data) != string(es[0].GetData()) || e.Type != es[0].GetType() {
						t.Fatalf("seed %d step %d: entry %d: image data differs from Open's", seed, step, i)
					}
				}
				term = max(term, gt) + 1
			}
			if err := im.Update(r.disk.DurableSource()); err != nil {
				t.Fatalf("seed %d step %d: Update: %v", seed, step, err)
			}
		}
	}
	if crashes == 0 || overwrites == 0 {
		t.Fatalf("crashes %d overwrites %d: the test reached nothing", crashes, overwrites)
	}
}
